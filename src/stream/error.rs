//! The errors of the streaming side.

use crate::engine::EngineError;

/// Errors of the streaming side. Each maps to one HTTP status in [`whep`](super::whep).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The offer cannot be served (400): not SDP, no audio, no Opus…
    #[error("bad offer: {0}")]
    BadOffer(String),
    /// Listener limit reached (503).
    #[error("too many listeners (max {max})")]
    TooManyListeners { max: usize },
    /// No such session (404).
    #[error("no such session")]
    SessionNotFound,
    #[error("invalid stream config: {0}")]
    Config(&'static str),
    #[error("opus encoder: {0}")]
    Encoder(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Internal(String),
}
