//! monmix: personal monitor mixes for a whole band, from one audio interface to every phone.
//!
//! # Layout
//! Shared facts and small parts:
//! - [`limits`]: sample rate, frame lengths, channel/client limits, the client-id rule.
//! - [`taper`]: fader position <-> gain, the one curve OSC and the page share.
//! - [`tls`]: the HTTPS certificate (PEM files or self-signed, made once).
//! - [`allow_list`]: CIDR allow-lists (OSC sources).
//! - [`metrics`]: the Prometheus text writer every part's `/metrics` lines go through.
//! - [`meters`]: level meters the engine publishes and the control plane reads (lock-free).
//! - [`frames`]: the lock-free frame pipe every audio hop uses.
//! - [`rt`]: real-time scheduling of the audio-path threads.
//!
//! The flow (input -> engine -> stream -> peers; control -> state -> events):
//! - [`audio`]: inputs (demo, tones, WAV file, cpal device) -> frames on a real-time clock.
//! - [`engine`]: the mixer thread: per-mix gain/pan/mute/solo, limiter, meters. No I/O.
//! - [`stream`]: Opus + WebRTC (WHEP) out, on shard threads.
//! - [`state`]: the mix model (seed schema), the single-writer store, crash-safe persistence.
//! - [`control`]: wire protocols (WebSocket, OSC) <-> store commands and events.
//! - [`discovery`]: mDNS announcement and browsing.
//! - [`config`]: TOML settings + CLI overrides; every field has a working default.
//! - [`http`]: the axum router.
//! - [`server`]: wires the parts together and runs until shutdown.
#![forbid(unsafe_code)]

// The crate's own unit tests run with the real-time allocation guard armed: code inside
// `assert_no_alloc` (engine tick, clock thread, cpal callback) aborts if it allocates.
#[cfg(test)]
#[global_allocator]
static ALLOC_GUARD: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

pub mod allow_list;
pub mod audio;
pub mod config;
pub mod control;
pub mod discovery;
pub mod engine;
pub mod frames;
pub mod http;
pub mod limits;
pub mod meters;
pub mod metrics;
pub mod playout;
pub mod rt;
pub mod server;
pub mod state;
pub mod stream;
pub mod taper;
pub mod tls;
