//! One WebSocket session's logic, sans I/O: text in -> replies out, store events in ->
//! `param_sync` out. The socket glue in `ws.rs` only moves frames; everything here is
//! testable with plain function calls and an explicit clock.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::protocol::{self, error_msg, msg, ClientMsg, ErrorCode, Hello, MixOp, WireError};
use crate::config::SecurityConfig;
use crate::state::{self, Change, Command, Event, MixState, Op, Store, StoreError};

/// Limits of the contract (protocol/websocket.md).
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message: usize,
    pub rate_per_sec: u32,
    pub outbound_queue: usize,
    pub handshake: Duration,
    pub ping_every: Duration,
    pub idle_timeout: Duration,
    pub max_sessions_per_ip: usize,
    pub pin_tries_per_min: usize,
    /// Wrong PINs per minute from all addresses together: one attacker with many
    /// addresses (an IPv6 privacy range) gets no more tries than this. Engineer tokens
    /// keep working while PIN login is locked.
    pub pin_tries_per_min_total: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
            rate_per_sec: 200,
            outbound_queue: 512,
            handshake: Duration::from_secs(10),
            ping_every: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
            max_sessions_per_ip: 32,
            pin_tries_per_min: 5,
            pin_tries_per_min_total: 30,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Performer,
    Engineer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Performer => "performer",
            Role::Engineer => "engineer",
        }
    }
}

/// Who is connected and listening, per client id; not persisted (it is about now).
#[derive(Debug, Default, Clone, Copy)]
struct Presence {
    sessions: usize,
    listening: usize,
}

/// What all sessions share: the store, the channel list, presence and rate-limit books.
pub struct Hub {
    pub server_name: String,
    pub store: Arc<Store>,
    pub channel_names: Vec<String>,
    pub frame_ms: f32,
    pub security: SecurityConfig,
    pub limits: Limits,
    presence: Mutex<HashMap<String, Presence>>,
    pin_failures: Mutex<PinBook>,
    ip_sessions: Mutex<HashMap<IpAddr, usize>>,
    next_session: AtomicU64,
    /// Pokes engineer sessions to resend the client list (coalesced by the receiver).
    roster: broadcast::Sender<()>,
    /// Hashes of the cue tokens handed to engineer sessions: a WHEP bearer that may
    /// listen to any mix. Each lives as long as the session that received it (a cue
    /// already listening keeps playing; the bearer is only checked when a WHEP session
    /// starts). They used to live as long as the server process: every engineer
    /// (re)connect added one for good, an unbounded set on a long-running server.
    cue_tokens: Mutex<std::collections::HashSet<String>>,
}

impl Hub {
    pub fn new(
        server_name: String,
        store: Arc<Store>,
        channel_names: Vec<String>,
        frame_ms: f32,
        security: SecurityConfig,
        limits: Limits,
    ) -> Hub {
        Hub {
            server_name,
            store,
            channel_names,
            frame_ms,
            security,
            limits,
            presence: Mutex::new(HashMap::new()),
            pin_failures: Mutex::new(PinBook::default()),
            ip_sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            roster: broadcast::channel(16).0,
            cue_tokens: Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn roster_changes(&self) -> broadcast::Receiver<()> {
        self.roster.subscribe()
    }

    fn poke_roster(&self) {
        let _ = self.roster.send(());
    }

    /// Reserves a session slot for `ip`; None when the per-IP limit is reached. The slot
    /// is released when the returned guard drops, even if the upgrade never completes.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admission> {
        let mut m = self.ip_sessions.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= self.limits.max_sessions_per_ip {
            return None;
        }
        *n += 1;
        Some(Admission {
            hub: self.clone(),
            ip,
            id: self.next_session.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// WebSocket sessions admitted and not yet ended (upgrades in progress included).
    pub fn sessions(&self) -> usize {
        self.ip_sessions
            .lock()
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }

    /// Releases what a [`Session`] took: its client's online mark, its cue token.
    pub fn leave(&self, session: &Session) {
        if let Some(id) = &session.client_id {
            self.set_online(id, false);
        }
        if let Some(hash) = &session.cue_token_hash {
            if let Ok(mut c) = self.cue_tokens.lock() {
                c.remove(hash);
            }
        }
    }

    /// Cue tokens currently valid (one per open engineer session).
    pub fn cue_tokens(&self) -> usize {
        self.cue_tokens.lock().map(|c| c.len()).unwrap_or(0)
    }

    fn set_online(&self, client_id: &str, on: bool) {
        if let Ok(mut p) = self.presence.lock() {
            let e = p.entry(client_id.to_owned()).or_default();
            if on {
                e.sessions += 1;
            } else {
                e.sessions = e.sessions.saturating_sub(1);
            }
        }
        self.poke_roster();
    }

    /// Called by the audio transport when a listener of `client_id`'s mix comes or goes.
    pub fn set_listening(&self, client_id: &str, on: bool) {
        if let Ok(mut p) = self.presence.lock() {
            let e = p.entry(client_id.to_owned()).or_default();
            if on {
                e.listening += 1;
            } else {
                e.listening = e.listening.saturating_sub(1);
            }
        }
        self.poke_roster();
    }

    fn presence_of(&self, client_id: &str) -> Presence {
        self.presence
            .lock()
            .ok()
            .and_then(|p| p.get(client_id).copied())
            .unwrap_or_default()
    }

    /// True if `ip` may try a PIN now (see [`PinBook`]).
    fn pin_allowed(&self, ip: IpAddr, now: Instant) -> bool {
        let Ok(mut b) = self.pin_failures.lock() else {
            return false;
        };
        let l = &self.limits;
        b.allows(ip, now, l.pin_tries_per_min, l.pin_tries_per_min_total)
    }

    fn pin_failed(&self, ip: IpAddr, now: Instant) {
        if let Ok(mut b) = self.pin_failures.lock() {
            b.failed(ip, now);
        }
    }

    /// A fresh cue token for an engineer session (WHEP bearer valid for every mix), and
    /// its hash (which [`Hub::leave`] revokes).
    fn new_cue_token(&self) -> Option<(String, String)> {
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

    /// The `clients` message: every stored client in the persisted order.
    pub fn clients_msg(&self) -> Value {
        let list: Vec<Value> = self
            .store
            .clients()
            .into_iter()
            .map(|c| {
                let p = self.presence_of(&c.id);
                json!({
                    "client_id": c.id,
                    "name": c.name,
                    "online": p.sessions > 0,
                    "listening": p.listening > 0,
                    "last_seen": c.device.last_seen,
                })
            })
            .collect();
        msg("clients", json!({ "clients": list }))
    }

    fn channels_json(&self) -> Value {
        Value::Array(
            self.channel_names
                .iter()
                .enumerate()
                .map(|(i, n)| json!({"index": i, "name": n}))
                .collect(),
        )
    }
}

/// Wrong PINs of the last minute, per source and in total. Sources whose failures are
/// older than a minute are forgotten, so the book stays as small as the attack.
#[derive(Default)]
struct PinBook {
    by_source: HashMap<IpAddr, VecDeque<Instant>>,
    all: VecDeque<Instant>,
}

impl PinBook {
    fn allows(&mut self, ip: IpAddr, now: Instant, per_source: usize, total: usize) -> bool {
        self.expire(now);
        self.all.len() < total
            && self
                .by_source
                .get(&pin_source(ip))
                .is_none_or(|q| q.len() < per_source)
    }

    fn failed(&mut self, ip: IpAddr, now: Instant) {
        self.by_source
            .entry(pin_source(ip))
            .or_default()
            .push_back(now);
        self.all.push_back(now);
    }

    fn expire(&mut self, now: Instant) {
        let old = |t: &Instant| now.duration_since(*t) > Duration::from_secs(60);
        while self.all.front().is_some_and(old) {
            self.all.pop_front();
        }
        self.by_source.retain(|_, q| {
            while q.front().is_some_and(old) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }
}

/// The unit PIN tries are counted by: an IPv4 address, or an IPv6 /64 (one device can
/// take any address of its /64).
fn pin_source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut seg = v6.segments();
                seg[4..].fill(0);
                IpAddr::V6(std::net::Ipv6Addr::from(seg))
            }
        },
    }
}

/// A session slot of one IP address; dropping it frees the slot.
pub struct Admission {
    hub: Arc<Hub>,
    pub ip: IpAddr,
    pub id: u64,
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Ok(mut m) = self.hub.ip_sessions.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// The wire form of a mix: the seed schema plus `solos`, `name` and preset names.
pub fn mix_json(m: &MixState) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "presets".into(),
            Value::Array(m.presets.keys().map(|k| Value::String(k.clone())).collect()),
        );
    }
    v
}

/// A name for a client that did not give one: "Guest" and the end of its id, so two
/// guests are told apart in the engineer's list.
fn guest_name(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("Guest {tail}")
}

/// Token bucket: `rate` messages per second, bursts up to `rate`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One connected WebSocket.
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub ip: IpAddr,
    /// None until a successful `hello`.
    pub role: Option<Role>,
    /// The client this session speaks for (an engineer may have none).
    pub client_id: Option<String>,
    /// Engineer: the client whose mix it has open (gets its `param_sync`).
    pub watching: Option<String>,
    /// The store sequence just before a mix snapshot this session just sent (`welcome`,
    /// `client_mix`), taken by the socket loop: it subscribes to that client's events
    /// after the snapshot, and resyncs if anything changed in between.
    pub snapshot_seq: Option<u64>,
    pub meters: bool,
    /// Engineer: the hash of the cue token its `welcome` carried (revoked when it ends).
    cue_token_hash: Option<String>,
    bucket: Bucket,
    /// When the last `rate_limited` error went out: one per second, not one per message.
    limited_notice: Option<Instant>,
}

fn store_err(e: StoreError, ref_type: &str) -> WireError {
    WireError::new(ErrorCode::from(&e), e.to_string()).with_ref(ref_type)
}

/// Wire channel (JSON integer) -> store channel, refusing negatives and absurd values.
fn channel(c: i64) -> Result<u32, WireError> {
    u32::try_from(c)
        .map_err(|_| WireError::new(ErrorCode::UnknownChannel, format!("no channel {c}")))
}

fn channel_list(cs: &[i64]) -> Result<Vec<u32>, WireError> {
    cs.iter().map(|&c| channel(c)).collect()
}

fn keyed(
    m: &Option<std::collections::BTreeMap<String, f64>>,
) -> Result<Option<std::collections::BTreeMap<u32, f64>>, WireError> {
    let Some(m) = m else { return Ok(None) };
    m.iter()
        .map(|(k, v)| {
            let c: i64 = k.parse().map_err(|_| {
                WireError::new(
                    ErrorCode::BadJson,
                    format!("channel key {k:?} is not a number"),
                )
            })?;
            Ok((channel(c)?, *v))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Wire op -> store op.
fn to_op(op: &MixOp) -> Result<Op, WireError> {
    Ok(match op {
        MixOp::Subscribe {
            channels,
            gains,
            pans,
        } => Op::Subscribe {
            channels: channels.as_deref().map(channel_list).transpose()?,
            gains: keyed(gains)?,
            pans: keyed(pans)?,
        },
        MixOp::UpdateGain { channel: c, gain } => Op::SetGain {
            channel: channel(*c)?,
            gain: *gain,
        },
        MixOp::UpdatePan { channel: c, pan } => Op::SetPan {
            channel: channel(*c)?,
            pan: *pan,
        },
        MixOp::ToggleMute { channel: c, muted } => Op::SetMute {
            channel: channel(*c)?,
            muted: *muted,
        },
        MixOp::ToggleSolo { channel: c, soloed } => Op::SetSolo {
            channel: channel(*c)?,
            soloed: *soloed,
        },
        MixOp::SetOn { channel: c, on } => Op::SetOn {
            channel: channel(*c)?,
            on: *on,
        },
        MixOp::UpdateMaster { gain } => Op::SetMaster { gain: *gain },
        MixOp::SetChannels { channels } => Op::SetChannels {
            channels: channel_list(channels)?,
        },
        MixOp::Rename { name } => Op::Rename { name: name.clone() },
        MixOp::SavePreset { name } => Op::SavePreset { name: name.clone() },
        MixOp::LoadPreset { name } => Op::LoadPreset { name: name.clone() },
        MixOp::DeletePreset { name } => Op::DeletePreset { name: name.clone() },
    })
}

/// The ack for an applied op, in the seed's names.
fn ack(op: &MixOp, client_id: &str, mix: &MixState) -> Value {
    let (ty, body) = match op {
        MixOp::Subscribe { channels: None, .. } => {
            ("auto_resubscribed", json!({"mix": mix_json(mix)}))
        }
        MixOp::Subscribe { .. } => ("subscribed", json!({"mix": mix_json(mix)})),
        MixOp::UpdateGain { channel, .. } => (
            "gain_updated",
            json!({"channel": channel, "gain": mix.gain(*channel as u32)}),
        ),
        MixOp::UpdatePan { channel, .. } => (
            "pan_updated",
            json!({"channel": channel, "pan": mix.pan(*channel as u32)}),
        ),
        MixOp::ToggleMute { channel, .. } => (
            "mute_updated",
            json!({"channel": channel, "muted": mix.muted(*channel as u32)}),
        ),
        MixOp::ToggleSolo { channel, .. } => (
            "solo_updated",
            json!({"channel": channel, "soloed": mix.soloed(*channel as u32)}),
        ),
        MixOp::SetOn { .. } => ("channels_updated", json!({"channels": mix.channels})),
        MixOp::UpdateMaster { .. } => ("master_updated", json!({"gain": mix.master_gain})),
        MixOp::SetChannels { .. } => ("channels_updated", json!({"channels": mix.channels})),
        MixOp::Rename { .. } => ("renamed", json!({"name": mix.name})),
        MixOp::LoadPreset { name } => {
            ("preset_loaded", json!({"name": name, "mix": mix_json(mix)}))
        }
        MixOp::SavePreset { .. } | MixOp::DeletePreset { .. } => (
            "presets",
            json!({"presets": mix.presets.keys().collect::<Vec<_>>()}),
        ),
    };
    let mut v = msg(ty, body);
    if let Some(o) = v.as_object_mut() {
        o.insert("client_id".into(), Value::String(client_id.to_owned()));
    }
    v
}

/// `param_sync` for a store event, as other sessions see it.
pub fn param_sync(ev: &Event) -> Option<Value> {
    let (param, channel, value) = match &ev.change {
        Change::Gain { channel, gain } => ("gain", Some(*channel), json!(gain)),
        Change::Pan { channel, pan } => ("pan", Some(*channel), json!(pan)),
        Change::Mute { channel, muted } => ("mute", Some(*channel), json!(muted)),
        Change::Solo { channel, soloed } => ("solo", Some(*channel), json!(soloed)),
        Change::Master { gain } => ("master", None, json!(gain)),
        Change::Channels { channels } => ("channels", None, json!(channels)),
        Change::Renamed { name } => ("name", None, json!(name)),
        Change::MixReplaced { mix } => ("mix", None, mix_json(mix)),
        Change::PresetsChanged { names } => ("presets", None, json!(names)),
        _ => return None,
    };
    let mut v = json!({
        "type": "param_sync",
        "client_id": ev.client_id,
        "param": param,
        "value": value,
    });
    if let (Some(c), Some(o)) = (channel, v.as_object_mut()) {
        o.insert("channel".into(), json!(c));
    }
    Some(v)
}

impl Session {
    pub fn new(id: u64, ip: IpAddr, limits: &Limits, now: Instant) -> Session {
        Session {
            id,
            ip,
            role: None,
            client_id: None,
            watching: None,
            snapshot_seq: None,
            meters: false,
            bucket: Bucket {
                tokens: limits.rate_per_sec as f64,
                rate: limits.rate_per_sec as f64,
                last: now,
            },
            limited_notice: None,
            cue_token_hash: None,
        }
    }

    /// Handles one text frame; returns the messages for this session.
    pub fn handle_text(&mut self, hub: &Hub, text: &str, now: Instant) -> Vec<Value> {
        if !self.bucket.take(now) {
            let notify = self
                .limited_notice
                .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
            if notify {
                self.limited_notice = Some(now);
                return vec![error_msg(&WireError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "more than {} messages per second; messages are being dropped",
                        hub.limits.rate_per_sec
                    ),
                ))];
            }
            return Vec::new();
        }
        match protocol::parse(text, hub.limits.max_message).and_then(|m| self.handle(hub, m, now)) {
            Ok(out) => out,
            Err(e) => vec![error_msg(&e)],
        }
    }

    fn handle(&mut self, hub: &Hub, m: ClientMsg, now: Instant) -> Result<Vec<Value>, WireError> {
        if let ClientMsg::Hello(h) = m {
            return self.hello(hub, h, now);
        }
        let Some(role) = self.role else {
            return Err(WireError::new(
                ErrorCode::Unauthorized,
                "send `hello` first",
            ));
        };
        let engineer = || {
            if role == Role::Engineer {
                Ok(())
            } else {
                Err(WireError::new(
                    ErrorCode::Forbidden,
                    "engineer role required",
                ))
            }
        };
        match m {
            ClientMsg::Hello(_) => Ok(Vec::new()),
            ClientMsg::Mix(op) => {
                let id = self.client_id.clone().ok_or_else(|| {
                    WireError::new(ErrorCode::Forbidden, "this session has no mix of its own")
                        .with_ref(op.name())
                })?;
                self.apply_mix(hub, &id, &op).map(|a| vec![a])
            }
            ClientMsg::UpdateClientMix { client_id, op } => {
                engineer().map_err(|e| e.with_ref("update_client_mix"))?;
                self.watching = Some(client_id.clone());
                self.apply_mix(hub, &client_id, &op).map(|a| vec![a])
            }
            ClientMsg::WatchClient { client_id } => {
                engineer().map_err(|e| e.with_ref("watch_client"))?;
                let Some(id) = client_id else {
                    self.watching = None;
                    return Ok(Vec::new());
                };
                self.snapshot_seq = Some(hub.store.sequence());
                let mix = hub.store.mix(&id).ok_or_else(|| {
                    WireError::new(ErrorCode::UnknownClient, format!("no client {id}"))
                        .with_ref("watch_client")
                })?;
                self.watching = Some(id.clone());
                Ok(vec![msg(
                    "client_mix",
                    json!({"client_id": id, "mix": mix_json(&mix)}),
                )])
            }
            ClientMsg::ListClients => {
                engineer().map_err(|e| e.with_ref("list_clients"))?;
                Ok(vec![hub.clients_msg()])
            }
            ClientMsg::ReorderClients { order } => {
                engineer().map_err(|e| e.with_ref("reorder_clients"))?;
                hub.store
                    .apply(Command {
                        origin: self.id,
                        client_id: String::new(),
                        op: Op::Reorder { order },
                    })
                    .map_err(|e| store_err(e, "reorder_clients"))?;
                hub.poke_roster();
                Ok(Vec::new())
            }
            ClientMsg::DeleteClient { client_id } => {
                engineer().map_err(|e| e.with_ref("delete_client"))?;
                hub.store
                    .apply(Command {
                        origin: self.id,
                        client_id,
                        op: Op::Delete,
                    })
                    .map_err(|e| store_err(e, "delete_client"))?;
                hub.poke_roster();
                Ok(Vec::new())
            }
            ClientMsg::WatchMeters { on } => {
                self.meters = on;
                Ok(Vec::new())
            }
            ClientMsg::Ping { t } => Ok(vec![msg("pong", json!({ "t": t }))]),
        }
    }

    fn apply_mix(&mut self, hub: &Hub, client_id: &str, op: &MixOp) -> Result<Value, WireError> {
        let ty = op.name();
        let store_op = to_op(op).map_err(|e| e.with_ref(ty))?;
        if let Some(c) = store_op.channel() {
            if c as usize >= hub.channel_names.len() {
                return Err(
                    WireError::new(ErrorCode::UnknownChannel, format!("no channel {c}"))
                        .with_ref(ty),
                );
            }
        }
        let renames = matches!(op, MixOp::Rename { .. });
        hub.store
            .apply(Command {
                origin: self.id,
                client_id: client_id.to_owned(),
                op: store_op,
            })
            .map_err(|e| store_err(e, ty))?;
        if renames {
            hub.poke_roster();
        }
        let mix = hub.store.mix(client_id).unwrap_or_default();
        Ok(ack(op, client_id, &mix))
    }

    fn hello(&mut self, hub: &Hub, h: Hello, now: Instant) -> Result<Vec<Value>, WireError> {
        if self.role.is_some() {
            return Err(
                WireError::new(ErrorCode::BadJson, "`hello` was already sent").with_ref("hello"),
            );
        }
        let unauthorized = |m: &str| WireError::new(ErrorCode::Unauthorized, m).with_ref("hello");
        let mut role = Role::Performer;
        if let Some(pin) = &h.admin_pin {
            if !hub.pin_allowed(self.ip, now) {
                return Err(WireError::new(
                    ErrorCode::RateLimited,
                    "too many wrong PINs from this address; wait a minute",
                )
                .with_ref("hello"));
            }
            let configured = &hub.security.admin_pin;
            if configured.is_empty()
                || !state::identity::constant_time_eq(pin.as_bytes(), configured.as_bytes())
            {
                hub.pin_failed(self.ip, now);
                return Err(unauthorized("wrong admin PIN"));
            }
            role = Role::Engineer;
        }
        if let Some(t) = &h.engineer_token {
            if !is_configured_engineer_token(&hub.security, t) {
                return Err(unauthorized("unknown engineer token"));
            }
            role = Role::Engineer;
        }
        if let Some(name) = &h.name {
            if let Some(problem) = state::model::name_problem(name) {
                return Err(
                    WireError::new(ErrorCode::OutOfRange, format!("name: {problem}"))
                        .with_ref("hello"),
                );
            }
        }

        // Who is this? Existing client with its token, an engineer taking a client over,
        // or somebody new.
        let mut token = h.token.clone();
        let client_id = match &h.client_id {
            Some(id) if hub.store.mix(id).is_some() => {
                let owns = token
                    .as_deref()
                    .is_some_and(|t| hub.store.verify_token(id, t));
                if !owns && role != Role::Engineer {
                    if hub.store.has_token(id) {
                        return Err(unauthorized("wrong or missing token for this client_id"));
                    }
                    // Imported from a seed file: no token yet. First device claims it.
                    let t = state::new_token();
                    hub.store
                        .apply(Command {
                            origin: self.id,
                            client_id: id.clone(),
                            op: Op::SetToken {
                                token_hash: state::hash_token(&t),
                            },
                        })
                        .map_err(|e| store_err(e, "hello"))?;
                    token = Some(t);
                } else if !owns {
                    token = None;
                }
                Some(id.clone())
            }
            // An unknown id (deleted by the engineer, or a lost state file) gets a fresh
            // identity rather than an error loop on the phone.
            _ if role == Role::Engineer && h.client_id.is_none() => None,
            _ => {
                let id = state::new_client_id();
                let t = state::new_token();
                hub.store
                    .apply(Command {
                        origin: self.id,
                        client_id: id.clone(),
                        op: Op::Register {
                            token_hash: state::hash_token(&t),
                            name: h
                                .name
                                .clone()
                                .filter(|n| !n.is_empty())
                                .unwrap_or_else(|| guest_name(&id)),
                        },
                    })
                    .map_err(|e| store_err(e, "hello"))?;
                token = Some(t);
                Some(id)
            }
        };
        if let Some(id) = &client_id {
            let _ = hub.store.apply(Command {
                origin: self.id,
                client_id: id.clone(),
                op: Op::Connected,
            });
            if let Some(name) = h.name.as_ref().filter(|n| !n.is_empty()) {
                let current = hub.store.mix(id).map(|m| m.name).unwrap_or_default();
                if current.is_empty() {
                    let _ = hub.store.apply(Command {
                        origin: self.id,
                        client_id: id.clone(),
                        op: Op::Rename { name: name.clone() },
                    });
                }
            }
            hub.set_online(id, true);
        }
        self.role = Some(role);
        self.client_id = client_id.clone();
        self.snapshot_seq = Some(hub.store.sequence());
        let mix = client_id
            .as_ref()
            .and_then(|id| hub.store.mix(id))
            .map(|m| mix_json(&m));
        let mut out = vec![msg(
            "welcome",
            json!({
                "client_id": client_id,
                "token": token,
                "role": role.as_str(),
                "server": hub.server_name,
                "channels": hub.channels_json(),
                "sample_rate": crate::audio::SAMPLE_RATE,
                "frame_ms": hub.frame_ms,
                "mix": mix,
                "session_id": self.id,
            }),
        )];
        if role == Role::Engineer {
            if let (Some((t, hash)), Some(o)) = (hub.new_cue_token(), out[0].as_object_mut()) {
                o.insert("cue_token".into(), Value::String(t));
                self.cue_token_hash = Some(hash);
            }
            out.push(hub.clients_msg());
        }
        Ok(out)
    }

    /// What this session should see of a store event: `param_sync` if it shows that mix
    /// and did not cause the change itself.
    pub fn on_event(&self, ev: &Event) -> Option<Value> {
        if ev.origin == self.id {
            return None;
        }
        let shows = self.client_id.as_deref() == Some(ev.client_id.as_str())
            || self.watching.as_deref() == Some(ev.client_id.as_str());
        if !shows {
            return None;
        }
        param_sync(ev)
    }
}

/// The one engineer-token check (WebSocket `hello` and WHEP bearers): constant time, and
/// an empty configured token never matches.
fn is_configured_engineer_token(security: &SecurityConfig, token: &str) -> bool {
    security
        .engineer_tokens
        .iter()
        .any(|k| !k.is_empty() && state::identity::constant_time_eq(k.as_bytes(), token.as_bytes()))
}

#[cfg(test)]
mod pin_tests {
    use super::*;

    #[test]
    fn per_source_total_and_ipv6_prefix() {
        let t0 = Instant::now();
        let mut b = PinBook::default();
        let v4 = |n: u8| IpAddr::from([10, 0, 0, n]);
        for _ in 0..5 {
            assert!(b.allows(v4(1), t0, 5, 30));
            b.failed(v4(1), t0);
        }
        assert!(!b.allows(v4(1), t0, 5, 30), "6th try from one address");
        assert!(b.allows(v4(2), t0, 5, 30), "another address may try");
        // Every address of one IPv6 /64 is one source.
        for n in 0..5u16 {
            let ip = IpAddr::from([0xfd00, 0, 0, 1, n, 7, 7, n]);
            assert!(b.allows(ip, t0, 5, 30));
            b.failed(ip, t0);
        }
        assert!(!b.allows(IpAddr::from([0xfd00, 0, 0, 1, 9, 9, 9, 9]), t0, 5, 30));
        assert!(b.allows(IpAddr::from([0xfd00, 0, 0, 2, 9, 9, 9, 9]), t0, 5, 30));
        // Many sources together: locked at the total.
        for n in 3..=22u8 {
            b.failed(v4(n), t0);
        }
        assert_eq!(b.all.len(), 30);
        assert!(!b.allows(v4(200), t0, 5, 30), "total reached");
        // A minute later everything is forgotten, and the book is empty again.
        let later = t0 + Duration::from_secs(61);
        assert!(b.allows(v4(1), later, 5, 30));
        assert!(b.by_source.is_empty() && b.all.is_empty());
    }
}
