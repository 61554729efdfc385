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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use super::command::{Applied, Change, Command, Event, Op, StoreError};
use super::identity;
use super::model::{
    client_id_ok, name_problem, now_ms, sanitize, DeviceRecord, MixState, StateFile, GAIN_MAX,
    GAIN_MIN, MAX_CHANNEL_INDEX, MAX_PRESETS, PAN_MAX, PAN_MIN,
};
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
}

impl StoreOptions {
    pub fn new(path: impl Into<PathBuf>, channels: usize) -> Self {
        StoreOptions {
            path: path.into(),
            channels,
            max_mixes: 32,
            max_clients: 64,
            debounce: Duration::from_millis(25),
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

/// What an op did, before sequence numbers are attached.
#[derive(Default)]
struct Outcome {
    changes: Vec<(String, Change)>,
    /// The engine snapshot must be rebuilt.
    engine: bool,
}

impl Outcome {
    fn one(id: &str, change: Change, engine: bool) -> Self {
        Outcome {
            changes: vec![(id.to_string(), change)],
            engine,
        }
    }
}

/// See the module docs.
pub struct Store {
    inner: Arc<Mutex<Inner>>,
    channels: usize,
    max_mixes: usize,
    max_clients: usize,
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

fn check_finite(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), StoreError> {
    if !v.is_finite() {
        return Err(StoreError::NotFinite { field });
    }
    if v < lo || v > hi {
        return Err(StoreError::OutOfRange { field, value: v });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), StoreError> {
    match name_problem(name) {
        Some(p) => Err(StoreError::InvalidName(p)),
        None => Ok(()),
    }
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
            let touched: Vec<&str> = o.changes.iter().map(|(id, _)| id.as_str()).collect();
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
        {
            let topics = lock(&self.topics);
            for e in &events {
                // No receiver is fine.
                let _ = self.tx.send(e.clone());
                if let Some(t) = topics.get(&e.client_id) {
                    let _ = t.send(e.clone());
                }
            }
        }
        drop(g);
        self.persister.mark_dirty();
        Applied { sequence, events }
    }

    fn check_channel(&self, channel: u32) -> Result<(), StoreError> {
        if channel as usize >= self.channels {
            return Err(StoreError::UnknownChannel {
                channel,
                count: self.channels,
            });
        }
        Ok(())
    }

    fn mix_of<'a>(g: &'a mut Inner, id: &str) -> Result<&'a mut MixState, StoreError> {
        g.state
            .channels_state
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownClient(id.to_string()))
    }

    /// Validates fully before mutating anything, so an error leaves the state untouched.
    fn execute(&self, g: &mut Inner, cmd: &Command, now: u64) -> Result<Outcome, StoreError> {
        let id = cmd.client_id.as_str();
        match &cmd.op {
            Op::Reorder { order } => return self.reorder(g, order),
            Op::Register { token_hash, name } => {
                return self.register(g, id, token_hash, name, now)
            }
            _ => {}
        }
        if !g.state.channels_state.contains_key(id) {
            return Err(StoreError::UnknownClient(id.to_string()));
        }
        let outcome = match &cmd.op {
            Op::SetGain { channel, gain } => {
                self.check_channel(*channel)?;
                check_finite("gain", *gain, GAIN_MIN, GAIN_MAX)?;
                let mix = Self::mix_of(g, id)?;
                if mix.gain(*channel) == *gain {
                    return Ok(Outcome::default());
                }
                mix.gains.insert(*channel, *gain);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Gain {
                        channel: *channel,
                        gain: *gain,
                    },
                    true,
                )
            }
            Op::SetPan { channel, pan } => {
                self.check_channel(*channel)?;
                check_finite("pan", *pan, PAN_MIN, PAN_MAX)?;
                let mix = Self::mix_of(g, id)?;
                if mix.pan(*channel) == *pan {
                    return Ok(Outcome::default());
                }
                mix.pans.insert(*channel, *pan);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Pan {
                        channel: *channel,
                        pan: *pan,
                    },
                    true,
                )
            }
            Op::SetMute { channel, muted } => {
                self.check_channel(*channel)?;
                let mix = Self::mix_of(g, id)?;
                if mix.muted(*channel) == *muted {
                    return Ok(Outcome::default());
                }
                mix.mutes.insert(*channel, *muted);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Mute {
                        channel: *channel,
                        muted: *muted,
                    },
                    true,
                )
            }
            Op::SetSolo { channel, soloed } => {
                self.check_channel(*channel)?;
                let mix = Self::mix_of(g, id)?;
                if mix.soloed(*channel) == *soloed {
                    return Ok(Outcome::default());
                }
                mix.solos.insert(*channel, *soloed);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Solo {
                        channel: *channel,
                        soloed: *soloed,
                    },
                    true,
                )
            }
            Op::SetMaster { gain } => {
                check_finite("master_gain", *gain, GAIN_MIN, GAIN_MAX)?;
                let mix = Self::mix_of(g, id)?;
                if mix.master_gain == *gain {
                    return Ok(Outcome::default());
                }
                mix.master_gain = *gain;
                mix.timestamp = now;
                Outcome::one(id, Change::Master { gain: *gain }, true)
            }
            Op::SetChannels { channels } => {
                let mut list = self.channel_list(channels)?;
                let mix = Self::mix_of(g, id)?;
                self.keep_hidden(&mix.channels, &mut list);
                if mix.channels == list {
                    return Ok(Outcome::default());
                }
                mix.channels = list.clone();
                mix.timestamp = now;
                Outcome::one(id, Change::Channels { channels: list }, true)
            }
            Op::SetOn { channel, on } => {
                self.check_channel(*channel)?;
                let mix = Self::mix_of(g, id)?;
                match (mix.channels.binary_search(channel), on) {
                    (Ok(_), true) | (Err(_), false) => return Ok(Outcome::default()),
                    (Ok(i), false) => {
                        mix.channels.remove(i);
                    }
                    (Err(i), true) => mix.channels.insert(i, *channel),
                }
                mix.timestamp = now;
                let channels = mix.channels.clone();
                Outcome::one(id, Change::Channels { channels }, true)
            }
            Op::Subscribe {
                channels,
                gains,
                pans,
            } => {
                let Some(channels) = channels else {
                    // Restore: the stored mix stays as it is.
                    return Ok(Outcome::default());
                };
                let mut list = self.channel_list(channels)?;
                for (ch, v) in gains.iter().flatten() {
                    self.check_channel(*ch)?;
                    check_finite("gain", *v, GAIN_MIN, GAIN_MAX)?;
                }
                for (ch, v) in pans.iter().flatten() {
                    self.check_channel(*ch)?;
                    check_finite("pan", *v, PAN_MIN, PAN_MAX)?;
                }
                let mix = Self::mix_of(g, id)?;
                let mut new = mix.clone();
                self.keep_hidden(&mix.channels, &mut list);
                new.channels = list;
                for (ch, v) in gains.iter().flatten() {
                    new.gains.insert(*ch, *v);
                }
                for (ch, v) in pans.iter().flatten() {
                    new.pans.insert(*ch, *v);
                }
                if new == *mix {
                    return Ok(Outcome::default());
                }
                new.timestamp = now;
                *mix = new.clone();
                Outcome::one(id, Change::MixReplaced { mix: Box::new(new) }, true)
            }
            Op::Rename { name } => {
                check_name(name)?;
                let mix = Self::mix_of(g, id)?;
                let same_mix = mix.name == *name;
                mix.name = name.clone();
                let dev = g.state.devices.entry(id.to_string()).or_default();
                if same_mix && dev.name == *name {
                    return Ok(Outcome::default());
                }
                dev.name = name.clone();
                if let Some(mix) = g.state.channels_state.get_mut(id) {
                    mix.timestamp = now;
                }
                Outcome::one(id, Change::Renamed { name: name.clone() }, false)
            }
            Op::SavePreset { name } => {
                check_name(name)?;
                let mix = Self::mix_of(g, id)?;
                let preset = mix.to_preset();
                match mix.presets.get(name) {
                    Some(p) if *p == preset => return Ok(Outcome::default()),
                    Some(_) => {}
                    None if mix.presets.len() >= MAX_PRESETS => {
                        return Err(StoreError::TooManyPresets { max: MAX_PRESETS })
                    }
                    None => {}
                }
                mix.presets.insert(name.clone(), preset);
                mix.timestamp = now;
                let names = mix.presets.keys().cloned().collect();
                Outcome::one(id, Change::PresetsChanged { names }, false)
            }
            Op::LoadPreset { name } => {
                let mix = Self::mix_of(g, id)?;
                let preset = mix
                    .presets
                    .get(name)
                    .cloned()
                    .ok_or_else(|| StoreError::UnknownPreset(name.clone()))?;
                if mix.to_preset() == preset {
                    return Ok(Outcome::default());
                }
                mix.apply_preset(&preset);
                mix.timestamp = now;
                let mix = Box::new(mix.clone());
                Outcome::one(id, Change::MixReplaced { mix }, true)
            }
            Op::DeletePreset { name } => {
                let mix = Self::mix_of(g, id)?;
                if mix.presets.remove(name).is_none() {
                    return Err(StoreError::UnknownPreset(name.clone()));
                }
                mix.timestamp = now;
                let names = mix.presets.keys().cloned().collect();
                Outcome::one(id, Change::PresetsChanged { names }, false)
            }
            Op::Connected => {
                let dev = g.state.devices.entry(id.to_string()).or_default();
                dev.last_seen = now;
                dev.connection_count = dev.connection_count.saturating_add(1);
                Outcome::one(
                    id,
                    Change::Connected {
                        connection_count: dev.connection_count,
                        last_seen: now,
                    },
                    false,
                )
            }
            Op::SetToken { token_hash } => {
                if !identity::token_hash_ok(token_hash) {
                    return Err(StoreError::InvalidTokenHash);
                }
                let dev = g.state.devices.entry(id.to_string()).or_default();
                dev.token_hash = Some(token_hash.clone());
                Outcome::one(
                    id,
                    Change::Connected {
                        connection_count: dev.connection_count,
                        last_seen: dev.last_seen,
                    },
                    false,
                )
            }
            Op::Delete => {
                g.state.channels_state.remove(id);
                g.state.devices.remove(id);
                g.state.client_order.retain(|c| c != id);
                if let Some(s) = g.slots.remove(id) {
                    g.free.insert(s);
                    // A client that had no slot (more clients than mixes) gets this one.
                    g.assign_slots();
                }
                Outcome::one(id, Change::ClientRemoved, true)
            }
            // Handled (and returned) above; a harmless no-op instead of a panic path.
            Op::Reorder { .. } | Op::Register { .. } => Outcome::default(),
        };
        Ok(outcome)
    }

    fn channel_list(&self, channels: &[u32]) -> Result<Vec<u32>, StoreError> {
        for c in channels {
            self.check_channel(*c)?;
        }
        let mut list = channels.to_vec();
        list.sort_unstable();
        list.dedup();
        Ok(list)
    }

    /// Subscribed channels at or above the current channel count (stored while running with
    /// a smaller interface) are invisible to clients, so a new channel list from a client
    /// cannot mean to drop them: they are kept. Running small must never lose a mix.
    fn keep_hidden(&self, stored: &[u32], list: &mut Vec<u32>) {
        let hidden = stored.iter().filter(|c| **c as usize >= self.channels);
        let before = list.len();
        list.extend(hidden);
        if list.len() != before {
            list.sort_unstable();
            list.dedup();
        }
    }

    fn register(
        &self,
        g: &mut Inner,
        id: &str,
        token_hash: &str,
        name: &str,
        now: u64,
    ) -> Result<Outcome, StoreError> {
        if !client_id_ok(id) {
            return Err(StoreError::InvalidClientId(id.to_string()));
        }
        if g.state.channels_state.contains_key(id) {
            return Err(StoreError::ClientExists(id.to_string()));
        }
        if g.state.channels_state.len() >= self.max_clients {
            return Err(StoreError::TooManyClients {
                max: self.max_clients,
            });
        }
        if !identity::token_hash_ok(token_hash) {
            return Err(StoreError::InvalidTokenHash);
        }
        check_name(name)?;
        g.state.channels_state.insert(
            id.to_string(),
            MixState {
                name: name.to_string(),
                timestamp: now,
                ..MixState::default()
            },
        );
        g.state.devices.insert(
            id.to_string(),
            DeviceRecord {
                name: name.to_string(),
                first_seen: now,
                last_seen: now,
                connection_count: 0,
                token_hash: Some(token_hash.to_ascii_lowercase()),
                role: None,
            },
        );
        g.state.client_order.push(id.to_string());
        g.assign_slots();
        let slot = g.slots.get(id).copied();
        Ok(Outcome::one(
            id,
            Change::ClientAdded {
                name: name.to_string(),
                slot,
            },
            true,
        ))
    }

    fn reorder(&self, g: &mut Inner, order: &[String]) -> Result<Outcome, StoreError> {
        let mut seen = BTreeSet::new();
        for id in order {
            if !g.state.channels_state.contains_key(id) {
                return Err(StoreError::InvalidOrder(format!("unknown client {id:?}")));
            }
            if !seen.insert(id.as_str()) {
                return Err(StoreError::InvalidOrder(format!("{id:?} listed twice")));
            }
        }
        let mut new: Vec<String> = order.to_vec();
        new.extend(
            g.state
                .client_order
                .iter()
                .filter(|c| !seen.contains(c.as_str()))
                .cloned(),
        );
        if new == g.state.client_order {
            return Ok(Outcome::default());
        }
        g.state.client_order = new.clone();
        Ok(Outcome::one("", Change::OrderChanged { order: new }, false))
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
    fn rebuild_params(&self, g: &mut Inner, only: Option<&[&str]>) {
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

    /// A receiver of every event from now on (OSC feedback, tests).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// A receiver of the events of one client from now on: what a session showing that
    /// mix needs, and nothing else. Channels nobody listens to any more are dropped here.
    pub fn client_events(&self, client_id: &str) -> broadcast::Receiver<Event> {
        let mut topics = lock(&self.topics);
        topics.retain(|_, t| t.receiver_count() > 0);
        match topics.get(client_id) {
            Some(t) => t.subscribe(),
            None => {
                let (t, rx) = broadcast::channel(CLIENT_EVENT_CAPACITY);
                topics.insert(client_id.to_owned(), t);
                rx
            }
        }
    }

    pub fn mix(&self, id: &str) -> Option<MixState> {
        lock(&self.inner).state.channels_state.get(id).cloned()
    }

    /// Clients in display order.
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

    /// The engine snapshot for the current state, built afresh (equal to what `publish`
    /// last received).
    pub fn engine_params(&self) -> EngineParams {
        // Built afresh from the state (not the cached snapshot), so it can check it.
        EngineParams {
            mixes: self.fresh_params(&lock(&self.inner)),
        }
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
