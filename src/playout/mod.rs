//! Output-device playout: the real-time core lives in `core`.
pub mod core;
