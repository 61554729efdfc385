//! Engineer credentials for WHEP bearers: cue tokens (issued to an engineer session,
//! revoked when it ends) and the configured engineer-token check.

use super::Hub;
use crate::config::SecurityConfig;
use crate::state;

impl Hub {
    /// Cue tokens currently valid (one per open engineer session).
    pub fn cue_tokens(&self) -> usize {
        self.cue_tokens.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Revokes the cue token with this hash (its engineer session ended).
    pub(super) fn revoke_cue_token(&self, hash: &str) {
        if let Ok(mut c) = self.cue_tokens.lock() {
            c.remove(hash);
        }
    }

    /// A fresh cue token for an engineer session (WHEP bearer valid for every mix), and
    /// its hash (which [`Hub::leave`] revokes).
    pub(super) fn new_cue_token(&self) -> Option<(String, String)> {
        let t = state::new_token();
        let hash = state::hash_token(&t);
        self.cue_tokens.lock().ok()?.insert(hash.clone());
        Some((t, hash))
    }

    /// True for an engineer credential usable as a WHEP bearer: a cue token or a
    /// configured engineer token.
    pub fn is_engineer_bearer(&self, bearer: &str) -> bool {
        is_configured_engineer_token(&self.security, bearer)
            || self
                .cue_tokens
                .lock()
                .map(|c| c.contains(&state::hash_token(bearer)))
                .unwrap_or(false)
    }
}

/// The one engineer-token check (WebSocket `hello` and WHEP bearers): constant time, and
/// an empty configured token never matches.
pub(super) fn is_configured_engineer_token(security: &SecurityConfig, token: &str) -> bool {
    security
        .engineer_tokens
        .iter()
        .any(|k| !k.is_empty() && state::identity::constant_time_eq(k.as_bytes(), token.as_bytes()))
}
