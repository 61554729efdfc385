//! Wire protocols: translate wire messages <-> store commands and events. Nothing here
//! knows about audio samples.

pub mod osc;
pub mod protocol;
pub mod session;
pub mod wire;
pub mod ws;
