//! The single writer of client state. Every wire layer sends [`Command`]s here; the store
//! validates, applies, bumps `sequence`, broadcasts [`Event`]s, publishes a new engine
//! snapshot and tells the persister. Reads (`mix`, `clients`, `snapshot`) copy out.
//!
//! Locking: one `std::sync::Mutex` around the state, held only for in-memory work (never
//! across file I/O; the persister clones a snapshot under it and serializes outside).
//! `publish` and the broadcast happen *under* the lock so that engine snapshots and events
//! are delivered strictly in sequence order even with concurrent callers; both are
//! non-blocking (`publish` must be a cheap hand-off such as an `ArcSwap::store`, and must
//! not call back into the store).

mod events;
mod execute;
mod params;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use self::execute::Outcome;
use super::command::{Applied, Change, Command, Event, StoreError};
use super::identity;
use super::model::{now_ms, sanitize, DeviceRecord, MixState, StateFile, MAX_CHANNEL_INDEX};
use super::persist::{self, lock, LoadReport, LoadSource, PersistStats, Persister, Writer};
use crate::engine::params::{EngineParams, MixParams};

/// Events buffered per receiver before a slow one starts missing some (it then gets
/// `RecvError::Lagged` and should resync from `snapshot()`).
pub const EVENT_CAPACITY: usize = 1024;
/// Events buffered per client for its sessions; a session further behind resyncs the
/// whole mix.
pub const CLIENT_EVENT_CAPACITY: usize = 256;

/// How the store is set up.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `state.json` path; its directory is created if missing.
    pub path: PathBuf,
    /// Input channel count (commands naming a channel `>=` this are rejected).
    pub channels: usize,
    /// Engine mix slots; clients beyond this have no slot (stored, not mixed).
    pub max_mixes: usize,
    /// Most clients `Register` accepts.
    pub max_clients: usize,
    /// Persist debounce (clamped to [`persist::MAX_DEBOUNCE`]).
    pub debounce: Duration,
    /// Keys of the configured wired outputs (`OutputConfig::key`): what `AssignOutput`
    /// may name.
    pub outputs: Vec<String>,
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>, channels: usize) -> Self {
        StoreOptions {
            path: path.into(),
            channels,
            max_mixes: 32,
            max_clients: 64,
            debounce: Duration::from_millis(25),
            outputs: Vec::new(),
        }
    }
}

/// One client as listed for the engineer view / OSC: position = index in the returned vec.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientInfo {
    pub id: String,
    pub name: String,
    pub slot: Option<usize>,
    pub device: DeviceRecord,
}

/// Receives every new engine snapshot (under the store lock: must be a cheap hand-off).
pub type Publish = Box<dyn Fn(EngineParams) + Send + Sync>;

struct Inner {
    state: StateFile,
    /// client id -> engine mix slot.
    slots: BTreeMap<String, usize>,
    free: BTreeSet<usize>,
    /// The engine snapshot last published, by slot. A command rebuilds only the mixes it
    /// changed; the rest are handed on as the same `Arc`s (the engine skips those).
    params: Vec<Option<Arc<MixParams>>>,
}

impl Inner {
    fn assign_slots(&mut self) {
        let order = self.state.client_order.clone();
        for id in order {
            if self.slots.contains_key(&id) {
                continue;
            }
            match self.free.pop_first() {
                Some(s) => {
                    self.slots.insert(id, s);
                }
                None => break,
            }
        }
    }
}

/// See the module docs.
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    channels: usize,
    max_mixes: usize,
    max_clients: usize,
    /// See [`StoreOptions::outputs`].
    outputs: Vec<String>,
    path: PathBuf,
    tx: broadcast::Sender<Event>,
    /// Per-client event channels ([`Store::client_events`]): a change wakes only the
    /// sessions showing that client's mix, not every session of the server.
    topics: Mutex<HashMap<String, broadcast::Sender<Event>>>,
    publish: Publish,
    stats: Arc<PersistStats>,
    // Declared last: dropped after everything above, so the final write sees the state.
    persister: Persister,
}

impl Store {
    /// Loads `opts.path` (see [`persist::load`]), starts the writer thread and publishes
    /// the first engine snapshot.
    pub fn open(opts: StoreOptions, publish: Publish) -> Result<(Store, LoadReport), StoreError> {
        if opts.channels > MAX_CHANNEL_INDEX as usize + 1 {
            return Err(StoreError::Options("channels above 1024"));
        }
        if opts.max_mixes == 0 || opts.max_clients == 0 {
            return Err(StoreError::Options(
                "max_mixes and max_clients must be >= 1",
            ));
        }
        if let Some(dir) = opts.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
        }
        let (state, report) = persist::load(&opts.path)?;
        let on_disk = match report.source {
            // Nothing to rewrite until something changes.
            LoadSource::Primary | LoadSource::Empty => Some(state.sequence),
            // Recreate the primary from the backup right away.
            LoadSource::Backup => None,
        };
        let mut inner = Inner {
            state,
            slots: BTreeMap::new(),
            free: (0..opts.max_mixes).collect(),
            params: vec![None; opts.max_mixes],
        };
        inner.assign_slots();
        let inner = Arc::new(Mutex::new(inner));
        let stats = Arc::new(PersistStats::default());
        let snap_inner = inner.clone();
        let writer = Arc::new(Writer::new(
            opts.path.clone(),
            on_disk,
            stats.clone(),
            Box::new(move || lock(&snap_inner).state.clone()),
        ));
        let persister = Persister::start(writer, opts.debounce)?;
        if on_disk.is_none() {
            persister.mark_dirty();
        }
        let (tx, _) = broadcast::channel(EVENT_CAPACITY);
        let store = Store {
            inner,
            channels: opts.channels,
            max_mixes: opts.max_mixes,
            max_clients: opts.max_clients,
            outputs: opts.outputs,
            path: opts.path,
            tx,
            topics: Mutex::new(HashMap::new()),
            publish,
            stats,
            persister,
        };
        {
            let mut g = lock(&store.inner);
            store.rebuild_params(&mut g, None);
            (store.publish)(EngineParams {
                mixes: g.params.clone(),
            });
        }
        Ok((store, report))
    }

    /// Validates and applies one command. On `Err` nothing changed. A command that changes
    /// nothing (same value again) succeeds with no events and the unchanged sequence:
    /// acks stay cheap and idempotent, and the file is not rewritten for nothing.
    pub fn apply(&self, cmd: Command) -> Result<Applied, StoreError> {
        let mut g = lock(&self.inner);
        let now = now_ms();
        let outcome = self.execute(&mut g, &cmd, now)?;
        Ok(self.commit(g, outcome, now, cmd.origin))
    }
    fn commit(
        &self,
        mut g: std::sync::MutexGuard<'_, Inner>,
        o: Outcome,
        now: u64,
        origin: u64,
    ) -> Applied {
        if o.changes.is_empty() {
            return Applied {
                sequence: g.state.sequence,
                events: Vec::new(),
            };
        }
        if o.engine {
            // Adding, removing or reordering clients may move slots: rebuild every mix.
            // Anything else touches only the mixes named in its changes.
            let structural = o.changes.iter().any(|(_, c)| {
                matches!(
                    c,
                    Change::ClientAdded { .. }
                        | Change::ClientRemoved
                        | Change::OrderChanged { .. }
                )
            });
            // A batch may touch one mix many times: rebuild each once.
            let mut touched: Vec<&str> = o.changes.iter().map(|(id, _)| id.as_str()).collect();
            touched.sort_unstable();
            touched.dedup();
            self.rebuild_params(&mut g, (!structural).then_some(&touched[..]));
        }
        g.state.sequence += 1;
        g.state.timestamp = now;
        let sequence = g.state.sequence;
        let events: Vec<Event> = o
            .changes
            .into_iter()
            .map(|(client_id, change)| Event {
                sequence,
                origin,
                client_id,
                change,
            })
            .collect();
        if o.engine {
            // O(max_mixes) pointer copies; the mixes themselves are shared.
            (self.publish)(EngineParams {
                mixes: g.params.clone(),
            });
        }
        self.broadcast(&events);
        drop(g);
        self.persister.mark_dirty();
        Applied { sequence, events }
    }

    /// Merges imported clients (from [`persist::import_seed`]): existing ids get their mix
    /// replaced but keep their device record (and so their owner's token), their name if
    /// the import has none, and their presets (merged, imported ones win); new ids are
    /// appended to the order with a token-less device record, to be claimed later. All or
    /// nothing: if the result would exceed `max_clients`, nothing is imported.
    pub fn import(&self, mut file: StateFile) -> Result<Applied, StoreError> {
        sanitize(&mut file);
        let mut g = lock(&self.inner);
        let now = now_ms();
        let new_count = file
            .channels_state
            .keys()
            .filter(|id| !g.state.channels_state.contains_key(*id))
            .count();
        if g.state.channels_state.len() + new_count > self.max_clients {
            return Err(StoreError::TooManyClients {
                max: self.max_clients,
            });
        }
        let mut out = Outcome {
            changes: Vec::new(),
            engine: true,
        };
        for id in &file.client_order {
            let Some(mix) = file.channels_state.get(id) else {
                continue;
            };
            let mut mix = mix.clone();
            mix.timestamp = now;
            if !g.state.channels_state.contains_key(id) {
                let mut dev = file.devices.get(id).cloned().unwrap_or_default();
                dev.token_hash = None;
                if dev.name.is_empty() {
                    dev.name = mix.name.clone();
                }
                g.state.devices.insert(id.clone(), dev);
                g.state.client_order.push(id.clone());
                g.state.channels_state.insert(id.clone(), mix.clone());
                g.assign_slots();
                out.changes.push((
                    id.clone(),
                    Change::ClientAdded {
                        name: mix.name.clone(),
                        slot: g.slots.get(id).copied(),
                    },
                ));
            } else if let Some(existing) = g.state.channels_state.get_mut(id) {
                // The seed format has no names or presets: an import must not erase the
                // ones made here. Imported presets win on a name clash.
                if mix.name.is_empty() {
                    mix.name = existing.name.clone();
                }
                let mut presets = std::mem::take(&mut existing.presets);
                presets.append(&mut mix.presets);
                mix.presets = presets;
                *existing = mix.clone();
            }
            out.changes
                .push((id.clone(), Change::MixReplaced { mix: Box::new(mix) }));
        }
        Ok(self.commit(g, out, now, 0))
    }
    pub fn mix(&self, id: &str) -> Option<MixState> {
        lock(&self.inner).state.channels_state.get(id).cloned()
    }

    /// Clients in display order.
    /// The engineer's output assignments (see `StateFile::outputs`).
    pub fn output_assignments(&self) -> BTreeMap<String, Option<String>> {
        lock(&self.inner).state.outputs.clone()
    }

    pub fn clients(&self) -> Vec<ClientInfo> {
        let g = lock(&self.inner);
        g.state
            .client_order
            .iter()
            .filter_map(|id| {
                let mix = g.state.channels_state.get(id)?;
                Some(ClientInfo {
                    id: id.clone(),
                    name: mix.name.clone(),
                    slot: g.slots.get(id).copied(),
                    device: g.state.devices.get(id).cloned().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The engine mix slot of a client: stable while the server runs; `None` for an
    /// unknown client or when all `max_mixes` slots are taken.
    pub fn client_slot(&self, id: &str) -> Option<usize> {
        lock(&self.inner).slots.get(id).copied()
    }
    /// A copy of the whole state as it would be written.
    pub fn snapshot(&self) -> StateFile {
        lock(&self.inner).state.clone()
    }

    /// Current sequence.
    pub fn sequence(&self) -> u64 {
        lock(&self.inner).state.sequence
    }

    /// Does `token` belong to client `id`? Compares sha256 hashes in constant time; a
    /// client without a token (imported, unclaimed) matches nothing.
    pub fn verify_token(&self, id: &str, token: &str) -> bool {
        let hash = lock(&self.inner)
            .state
            .devices
            .get(id)
            .and_then(|d| d.token_hash.clone());
        match hash {
            Some(h) => identity::token_matches(&h, token),
            None => false,
        }
    }

    /// True if client `id` has a token (imported clients have none until claimed).
    pub fn has_token(&self, id: &str) -> bool {
        lock(&self.inner)
            .state
            .devices
            .get(id)
            .is_some_and(|d| d.token_hash.is_some())
    }

    /// Writes the state now, synchronously (SIGINT/SIGTERM, `monmix state` commands).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.persister.flush()
    }

    pub fn persist_stats(&self) -> Arc<PersistStats> {
        self.stats.clone()
    }

    pub fn channel_count(&self) -> usize {
        self.channels
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
