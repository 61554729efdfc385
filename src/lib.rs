//! monmix: personal monitor mixes for a whole band, from one audio interface to every phone.
//!
//! # Layout
//! - [`config`]: TOML settings + CLI overrides; every field has a working default.
//! - [`audio`]: inputs (demo, tones, WAV file, cpal device) -> frames on a real-time clock.
//! - [`frames`]: the lock-free frame pipe every audio hop uses.
//! - [`engine`]: the mixer thread: per-mix gain/pan/mute/solo, limiter, meters. No I/O.
//! - [`state`]: the mix model (seed schema), the single-writer store, crash-safe persistence.
//! - [`control`]: wire protocols (WebSocket) <-> store commands and events.
//! - [`http`]: the axum router.
//! - [`server`]: wires the parts together and runs until shutdown.
#![forbid(unsafe_code)]

pub mod audio;
pub mod config;
pub mod control;
pub mod discovery; // branch osc
pub mod engine;
pub mod frames;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod rt;
pub mod server;
pub mod state;
pub mod stream;
