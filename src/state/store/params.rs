//! The engine-parameter cache: per-slot [`MixParams`] rebuilt from the state, all of them
//! or only the mixes a command touched.

use std::sync::Arc;

use super::{Inner, Store};
use crate::engine::params::{EngineParams, MixParams};
use crate::state::persist::lock;

impl Store {
    /// Every client's engine parameters, built afresh from the state.
    fn fresh_params(&self, g: &Inner) -> Vec<Option<Arc<MixParams>>> {
        let mut mixes = vec![None; self.max_mixes];
        for (id, slot) in &g.slots {
            if let (Some(m), Some(entry)) = (g.state.channels_state.get(id), mixes.get_mut(*slot)) {
                *entry = Some(Arc::new(m.to_params(self.channels)));
            }
        }
        mixes
    }

    /// Rebuilds the engine parameters of the clients in `only` (each O(channels)), or of
    /// every client when `None`.
    pub(super) fn rebuild_params(&self, g: &mut Inner, only: Option<&[&str]>) {
        let Some(ids) = only else {
            g.params = self.fresh_params(g);
            return;
        };
        for id in ids {
            let fresh = g
                .state
                .channels_state
                .get(*id)
                .map(|m| Arc::new(m.to_params(self.channels)));
            if let Some(entry) = g.slots.get(*id).and_then(|s| g.params.get_mut(*s)) {
                *entry = fresh;
            }
        }
    }

    /// The engine snapshot for the current state, built afresh (equal to what `publish`
    /// last received).
    pub fn engine_params(&self) -> EngineParams {
        // Built afresh from the state (not the cached snapshot), so it can check it.
        EngineParams {
            mixes: self.fresh_params(&lock(&self.inner)),
        }
    }
}
