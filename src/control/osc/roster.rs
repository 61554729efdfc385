//! `{m}` -> client id: a cached copy of the store's client list (order, ids, names),
//! refreshed after roster events or a lookup miss.

use crate::state::{Change, Store};

/// (client id, name) in client order.
pub(super) struct Roster {
    entries: Vec<(String, String)>,
    dirty: bool,
}

impl Roster {
    /// An empty roster, read from the store on first use.
    pub(super) fn new() -> Roster {
        Roster {
            entries: Vec::new(),
            dirty: true,
        }
    }

    /// Marks the copy stale after a change to the client list, its order or a name.
    pub(super) fn on_change(&mut self, change: &Change) {
        if matches!(
            change,
            Change::ClientAdded { .. }
                | Change::ClientRemoved
                | Change::OrderChanged { .. }
                | Change::Renamed { .. }
        ) {
            self.dirty = true;
        }
    }

    fn refresh(&mut self, store: &Store) {
        self.entries = store
            .clients()
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        self.dirty = false;
    }

    /// The entries, refreshed first if stale.
    pub(super) fn current(&mut self, store: &Store) -> &[(String, String)] {
        if self.dirty {
            self.refresh(store);
        }
        &self.entries
    }

    fn lookup(&self, m: &str) -> Option<String> {
        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) {
            let p: usize = m.parse().ok()?;
            return self
                .entries
                .get(p.checked_sub(1)?)
                .map(|(id, _)| id.clone());
        }
        if let Some((id, _)) = self.entries.iter().find(|(id, _)| id == m) {
            return Some(id.clone());
        }
        self.entries
            .iter()
            .find(|(_, name)| {
                name.eq_ignore_ascii_case(m) || name.to_lowercase() == m.to_lowercase()
            })
            .map(|(id, _)| id.clone())
    }

    /// `{m}` -> client id: a 1-based position, an exact client id, or a name (any case).
    pub(super) fn resolve(&mut self, store: &Store, m: &str) -> Option<String> {
        if self.dirty {
            self.refresh(store);
            return self.lookup(m);
        }
        if let Some(id) = self.lookup(m) {
            return Some(id);
        }
        self.refresh(store);
        self.lookup(m)
    }

    /// The 1-based position of a client id.
    pub(super) fn position_of(&mut self, store: &Store, id: &str) -> Option<usize> {
        self.current(store)
            .iter()
            .position(|(c, _)| c == id)
            .map(|p| p + 1)
    }
}
