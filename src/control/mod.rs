//! Wire protocols: translate wire messages <-> store commands and events. Nothing here
//! knows about audio samples.

pub mod protocol;
pub mod session;
pub mod ws;
pub mod osc; // branch osc
