//! OSC logic without sockets: `(now, datagram, source)` in -> store commands applied and
//! datagrams out; store events in -> feedback out; a meter tick -> meter feedback.
//! Leases use the `now` the caller passes, so tests drive the clock.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscType};
use tracing::{debug, info};

use crate::allow_list::AllowList;
use crate::control::protocol::ErrorCode;
use crate::meters::Meters;
use crate::state::{Change, Command, Event, MixState, Op, Store, StoreError};
use crate::taper;

/// Datagrams larger than this are dropped unread.
pub const MAX_DATAGRAM: usize = 8192;
/// Bundles nested deeper than this are dropped before decoding (a top-level bundle is depth 1).
pub const MAX_BUNDLE_DEPTH: usize = 4;
/// dB reported for a gain of 0 (OSC surfaces handle -inf badly).
pub const DB_FLOOR: f32 = -144.0;
/// Sources remembered for log rate limiting.
const LOG_BOOK_MAX: usize = 1024;

/// Why a datagram or message was dropped; each has a counter (`monmix_osc_dropped_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Source address not in `osc.allow`.
    Denied,
    /// Larger than [`MAX_DATAGRAM`].
    Oversize,
    /// Bundles nested deeper than [`MAX_BUNDLE_DEPTH`].
    Nesting,
    /// Not decodable as OSC.
    Malformed,
    /// No such address in the address space.
    UnknownAddress,
    /// `{m}` names no client.
    UnknownMix,
    /// Wrong argument count or type.
    BadType,
    /// NaN, infinity, or outside the parameter's range; unknown channel or preset.
    OutOfRange,
    /// `/subscribe` while `osc.max_subscribers` surfaces are subscribed.
    SubscribersFull,
    /// Any other refusal of the store.
    Rejected,
    /// A write to another mix from a source bound to one performer's mix (`[[osc.performer]]`).
    Forbidden,
}

impl DropReason {
    pub const ALL: [DropReason; 11] = [
        DropReason::Denied,
        DropReason::Oversize,
        DropReason::Nesting,
        DropReason::Malformed,
        DropReason::UnknownAddress,
        DropReason::UnknownMix,
        DropReason::BadType,
        DropReason::OutOfRange,
        DropReason::SubscribersFull,
        DropReason::Rejected,
        DropReason::Forbidden,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Denied => "denied",
            DropReason::Oversize => "oversize",
            DropReason::Nesting => "nesting",
            DropReason::Malformed => "malformed",
            DropReason::UnknownAddress => "unknown_address",
            DropReason::UnknownMix => "unknown_mix",
            DropReason::BadType => "bad_type",
            DropReason::OutOfRange => "out_of_range",
            DropReason::SubscribersFull => "subscribers_full",
            DropReason::Rejected => "rejected",
            DropReason::Forbidden => "forbidden",
        }
    }

    /// A refused store command, through the one store -> wire mapping.
    fn of_store(e: &StoreError) -> DropReason {
        match ErrorCode::from(e) {
            ErrorCode::UnknownClient => DropReason::UnknownMix,
            ErrorCode::UnknownChannel | ErrorCode::OutOfRange => DropReason::OutOfRange,
            _ => DropReason::Rejected,
        }
    }
}

/// Counters, read by `/metrics`.
#[derive(Debug, Default)]
pub struct OscStats {
    pub datagrams: AtomicU64,
    pub messages: AtomicU64,
    pub applied: AtomicU64,
    pub queries: AtomicU64,
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub feedback: AtomicU64,
    pub events_lagged: AtomicU64,
    pub subscribers: AtomicU64,
    dropped: [AtomicU64; 11],
}

impl OscStats {
    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped[why as usize].load(Ordering::Relaxed)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the `monmix_osc_*` metrics in the Prometheus text format.
    pub fn render_prometheus(&self, p: &mut crate::metrics::PromText) {
        use crate::metrics::Kind;
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 8] = [
            (
                "osc_datagrams_total",
                "OSC datagrams received.",
                r(&self.datagrams),
            ),
            (
                "osc_messages_total",
                "OSC messages decoded (bundle contents counted one by one).",
                r(&self.messages),
            ),
            (
                "osc_applied_total",
                "OSC changes applied to the state.",
                r(&self.applied),
            ),
            (
                "osc_queries_total",
                "OSC queries and dumps answered.",
                r(&self.queries),
            ),
            (
                "osc_sent_total",
                "OSC datagrams sent (replies, feedback, meters).",
                r(&self.sent),
            ),
            (
                "osc_send_errors_total",
                "OSC datagrams that could not be sent.",
                r(&self.send_errors),
            ),
            (
                "osc_feedback_total",
                "OSC feedback messages queued to subscribers.",
                r(&self.feedback),
            ),
            (
                "osc_events_lagged_total",
                "Store events the OSC service missed (it fell behind).",
                r(&self.events_lagged),
            ),
        ];
        for (name, help, v) in counters {
            p.single(name, Kind::Counter, help, v);
        }
        p.single(
            "osc_subscribers",
            Kind::Gauge,
            "Surfaces with a live /subscribe lease.",
            r(&self.subscribers),
        );
        p.family(
            "osc_dropped_total",
            Kind::Counter,
            "OSC datagrams or messages dropped, by reason.",
        );
        for d in DropReason::ALL {
            p.sample(
                "osc_dropped_total",
                &[("reason", d.as_str())],
                self.dropped(d),
            );
        }
    }
}

/// What the core needs to know besides the store.
#[derive(Debug, Clone)]
pub struct OscSettings {
    pub server_name: String,
    pub channels: usize,
    pub lease: Duration,
    /// Replies go to this port of the sender's address (None = the sender's port).
    pub reply_port: Option<u16>,
    /// `{m}` of the TouchOSC aliases.
    pub touchosc_mix: String,
    pub allow: AllowList,
    pub max_subscribers: usize,
    /// Sources bound to one performer's mix (`{m}` form): they may change only that mix.
    /// The first matching entry wins; sources matching none are engineer surfaces.
    pub performers: Vec<(AllowList, String)>,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Out {
    pub to: SocketAddr,
    pub msg: OscMessage,
}

/// What a message addresses inside one mix. Channels are 0-based here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Gain(u32),
    Fader(u32),
    Db(u32),
    Pan(u32),
    Mute(u32),
    Solo(u32),
    On(u32),
    MasterFader,
    MasterGain,
    PresetLoad,
    Dump,
}

/// A parsed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    Info,
    Subscribe,
    Unsubscribe,
    /// `/mix/{m}/...` (or a TouchOSC alias, with `m` = `osc.touchosc_mix`).
    Mix {
        m: &'a str,
        target: Target,
    },
}

/// 1-based channel number -> 0-based; `None` for 0 or garbage.
fn channel_no(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().filter(|&n| n >= 1).map(|n| n - 1)
}

/// Parses an OSC address. Pure; no store access.
pub fn parse_address<'a>(addr: &'a str, touchosc_mix: &'a str) -> Option<Route<'a>> {
    let rest = addr.strip_prefix('/')?;
    let mut it = rest.split('/');
    let first = it.next()?;
    let parts: Vec<&str> = it.collect();
    match (first, parts.as_slice()) {
        ("info", []) => Some(Route::Info),
        ("subscribe", []) => Some(Route::Subscribe),
        ("unsubscribe", []) => Some(Route::Unsubscribe),
        ("1", [ctl]) => {
            let target = if let Some(n) = ctl.strip_prefix("fader") {
                Target::Fader(channel_no(n)?)
            } else if let Some(n) = ctl.strip_prefix("toggle") {
                Target::Mute(channel_no(n)?)
            } else {
                return None;
            };
            Some(Route::Mix {
                m: touchosc_mix,
                target,
            })
        }
        ("mix", [m, tail @ ..]) if !m.is_empty() => {
            let target = match tail {
                ["ch", n, what] => {
                    let c = channel_no(n)?;
                    match *what {
                        "gain" => Target::Gain(c),
                        "fader" => Target::Fader(c),
                        "db" => Target::Db(c),
                        "pan" => Target::Pan(c),
                        "mute" => Target::Mute(c),
                        "solo" => Target::Solo(c),
                        "on" => Target::On(c),
                        _ => return None,
                    }
                }
                ["master", "fader"] => Target::MasterFader,
                ["master", "gain"] | ["master"] => Target::MasterGain,
                ["preset", "load"] => Target::PresetLoad,
                ["dump"] => Target::Dump,
                _ => return None,
            };
            Some(Route::Mix { m, target })
        }
        _ => None,
    }
}

/// Scans the raw bytes for bundle nesting deeper than `max` without decoding (rosc
/// recurses on nested bundles). `Err(DropReason::Malformed)` for a broken bundle frame.
pub fn check_nesting(data: &[u8], max: usize) -> Result<(), DropReason> {
    fn scan(data: &[u8], depth: usize, max: usize) -> Result<(), DropReason> {
        if !data.starts_with(b"#bundle\0") {
            return Ok(());
        }
        if depth > max {
            return Err(DropReason::Nesting);
        }
        if data.len() < 16 {
            return Err(DropReason::Malformed);
        }
        let mut pos = 16;
        while pos < data.len() {
            let Some(len_bytes) = data.get(pos..pos + 4) else {
                return Err(DropReason::Malformed);
            };
            let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            let Ok(len) = usize::try_from(len) else {
                return Err(DropReason::Malformed);
            };
            let start = pos + 4;
            let Some(elem) = start.checked_add(len).and_then(|end| data.get(start..end)) else {
                return Err(DropReason::Malformed);
            };
            scan(elem, depth + 1, max)?;
            pos = start + len;
        }
        Ok(())
    }
    scan(data, 1, max)
}

/// The stable origin id of an OSC peer: a hash of its address with the high bit set, so
/// it never equals a WebSocket session id (small counters).
pub fn origin_of(addr: SocketAddr) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    match addr.ip() {
        IpAddr::V4(v4) => v4.octets().into_iter().for_each(&mut eat),
        IpAddr::V6(v6) => v6.octets().into_iter().for_each(&mut eat),
    }
    addr.port().to_be_bytes().into_iter().for_each(&mut eat);
    h | (1 << 63)
}

fn num(args: &[OscType]) -> Result<f64, DropReason> {
    let v = match args {
        [OscType::Float(f)] => f64::from(*f),
        [OscType::Double(d)] => *d,
        [OscType::Int(i)] => f64::from(*i),
        [OscType::Long(l)] => *l as f64,
        _ => return Err(DropReason::BadType),
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(DropReason::OutOfRange)
    }
}

fn boolish(args: &[OscType]) -> Result<bool, DropReason> {
    match args {
        [OscType::Bool(b)] => Ok(*b),
        [OscType::Int(i)] => Ok(*i != 0),
        [OscType::Long(l)] => Ok(*l != 0),
        [OscType::Float(f)] if f.is_finite() => Ok(*f >= 0.5),
        [OscType::Double(d)] if d.is_finite() => Ok(*d >= 0.5),
        [OscType::Float(_)] | [OscType::Double(_)] => Err(DropReason::OutOfRange),
        _ => Err(DropReason::BadType),
    }
}

fn text(args: &[OscType]) -> Result<&str, DropReason> {
    match args {
        [OscType::String(s)] => Ok(s),
        _ => Err(DropReason::BadType),
    }
}

fn msg(addr: String, args: Vec<OscType>) -> OscMessage {
    OscMessage { addr, args }
}

fn f(v: f64) -> OscType {
    OscType::Float(v as f32)
}

fn i(b: bool) -> OscType {
    OscType::Int(i32::from(b))
}

fn db_of(gain: f64) -> f64 {
    taper::gain_to_db(gain).max(f64::from(DB_FLOOR))
}

/// The value of one target, as a query reply carries it.
fn value_of(t: Target, m: &MixState) -> Vec<OscType> {
    match t {
        Target::Gain(c) => vec![f(m.gain(c))],
        Target::Fader(c) => vec![f(taper::gain_to_fader(m.gain(c)))],
        Target::Db(c) => vec![f(db_of(m.gain(c)))],
        Target::Pan(c) => vec![f(m.pan(c))],
        Target::Mute(c) => vec![i(m.muted(c))],
        Target::Solo(c) => vec![i(m.soloed(c))],
        Target::On(c) => vec![i(m.subscribed(c))],
        Target::MasterFader => vec![f(taper::gain_to_fader(m.master_gain))],
        Target::MasterGain => vec![f(m.master_gain)],
        Target::PresetLoad => m
            .presets
            .keys()
            .map(|k| OscType::String(k.clone()))
            .collect(),
        Target::Dump => Vec::new(),
    }
}

struct Subscriber {
    reply_to: SocketAddr,
    origin: u64,
    until: Instant,
    /// Client id of the one mix it follows; None = every mix.
    mix: Option<String>,
}

/// The OSC protocol engine (one per server; owned by the socket task).
pub struct OscCore {
    store: Arc<Store>,
    cfg: OscSettings,
    stats: Arc<OscStats>,
    subs: HashMap<SocketAddr, Subscriber>,
    /// (client id, name) in client order; refreshed after roster events or a miss.
    roster: Vec<(String, String)>,
    roster_dirty: bool,
    log_book: HashMap<IpAddr, Instant>,
}

impl OscCore {
    pub fn new(store: Arc<Store>, cfg: OscSettings) -> OscCore {
        OscCore {
            store,
            cfg,
            stats: Arc::new(OscStats::default()),
            subs: HashMap::new(),
            roster: Vec::new(),
            roster_dirty: true,
            log_book: HashMap::new(),
        }
    }

    pub fn stats(&self) -> &Arc<OscStats> {
        &self.stats
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn settings(&self) -> &OscSettings {
        &self.cfg
    }

    pub fn subscriber_count(&self) -> usize {
        self.subs.len()
    }

    fn reply_addr(&self, from: SocketAddr) -> SocketAddr {
        match self.cfg.reply_port {
            Some(p) => SocketAddr::new(from.ip(), p),
            None => from,
        }
    }

    fn refresh_roster(&mut self) {
        self.roster = self
            .store
            .clients()
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        self.roster_dirty = false;
    }

    fn lookup(&self, m: &str) -> Option<String> {
        if !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()) {
            let p: usize = m.parse().ok()?;
            return self.roster.get(p.checked_sub(1)?).map(|(id, _)| id.clone());
        }
        if let Some((id, _)) = self.roster.iter().find(|(id, _)| id == m) {
            return Some(id.clone());
        }
        self.roster
            .iter()
            .find(|(_, name)| {
                name.eq_ignore_ascii_case(m) || name.to_lowercase() == m.to_lowercase()
            })
            .map(|(id, _)| id.clone())
    }

    /// `{m}` -> client id: a 1-based position, an exact client id, or a name (any case).
    pub fn resolve(&mut self, m: &str) -> Option<String> {
        if self.roster_dirty {
            self.refresh_roster();
            return self.lookup(m);
        }
        if let Some(id) = self.lookup(m) {
            return Some(id);
        }
        self.refresh_roster();
        self.lookup(m)
    }

    fn position_of(&mut self, id: &str) -> Option<usize> {
        if self.roster_dirty {
            self.refresh_roster();
        }
        self.roster.iter().position(|(c, _)| c == id).map(|p| p + 1)
    }

    fn drop_note(&mut self, now: Instant, from: SocketAddr, why: DropReason, detail: &str) {
        OscStats::bump(&self.stats.dropped[why as usize]);
        let ip = from.ip();
        let due = self
            .log_book
            .get(&ip)
            .is_none_or(|t| now.saturating_duration_since(*t) >= Duration::from_secs(60));
        if due {
            if self.log_book.len() >= LOG_BOOK_MAX {
                self.log_book.clear();
            }
            self.log_book.insert(ip, now);
            info!(source = %from, reason = why.as_str(), detail, "osc: dropped (logged once per source per minute)");
        } else {
            debug!(source = %from, reason = why.as_str(), detail, "osc: dropped");
        }
    }

    /// Handles one received datagram; replies are appended to `out`.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        data: &[u8],
        from: SocketAddr,
        out: &mut Vec<Out>,
    ) {
        OscStats::bump(&self.stats.datagrams);
        if !self.cfg.allow.allows(from.ip()) {
            return self.drop_note(now, from, DropReason::Denied, "source not in osc.allow");
        }
        if data.len() > MAX_DATAGRAM {
            return self.drop_note(now, from, DropReason::Oversize, "datagram over 8 KiB");
        }
        if let Err(why) = check_nesting(data, MAX_BUNDLE_DEPTH) {
            return self.drop_note(now, from, why, "bundle nesting");
        }
        let packet = match rosc::decoder::decode_udp(data) {
            Ok((_, p)) => p,
            Err(e) => return self.drop_note(now, from, DropReason::Malformed, &e.to_string()),
        };
        self.packet(now, packet, from, out);
    }

    fn packet(&mut self, now: Instant, p: OscPacket, from: SocketAddr, out: &mut Vec<Out>) {
        match p {
            OscPacket::Message(m) => {
                OscStats::bump(&self.stats.messages);
                if let Err(why) = self.message(now, &m, from, out) {
                    self.drop_note(now, from, why, &m.addr);
                }
            }
            // Time tags are ignored: bundle contents run at once, in order.
            OscPacket::Bundle(b) => {
                for p in b.content {
                    self.packet(now, p, from, out);
                }
            }
        }
    }

    fn message(
        &mut self,
        now: Instant,
        m: &OscMessage,
        from: SocketAddr,
        out: &mut Vec<Out>,
    ) -> Result<(), DropReason> {
        let touchosc = self.cfg.touchosc_mix.clone();
        let route = parse_address(&m.addr, &touchosc).ok_or(DropReason::UnknownAddress)?;
        let to = self.reply_addr(from);
        match route {
            Route::Info => {
                OscStats::bump(&self.stats.queries);
                if self.roster_dirty {
                    self.refresh_roster();
                }
                out.push(Out {
                    to,
                    msg: msg(
                        "/info".into(),
                        vec![
                            OscType::String(self.cfg.server_name.clone()),
                            OscType::String(env!("CARGO_PKG_VERSION").into()),
                            OscType::Int(self.cfg.channels as i32),
                            OscType::Int(self.roster.len() as i32),
                        ],
                    ),
                });
                Ok(())
            }
            Route::Subscribe => self.subscribe(now, &m.args, from, out),
            Route::Unsubscribe => {
                self.subs.remove(&from);
                self.stats
                    .subscribers
                    .store(self.subs.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Route::Mix { m: spec, target } => {
                let id = self.resolve(spec).ok_or(DropReason::UnknownMix)?;
                if target == Target::Dump {
                    if !m.args.is_empty() {
                        return Err(DropReason::BadType);
                    }
                    OscStats::bump(&self.stats.queries);
                    let mix = self.store.mix(&id).ok_or(DropReason::UnknownMix)?;
                    let alias = self.resolve(&touchosc).as_deref() == Some(id.as_str());
                    for msg in self.dump(spec, &mix, alias) {
                        out.push(Out { to, msg });
                    }
                    out.push(Out {
                        to,
                        msg: msg(format!("/mix/{spec}/dump/end"), vec![]),
                    });
                    return Ok(());
                }
                if m.args.is_empty() {
                    OscStats::bump(&self.stats.queries);
                    let mix = self.store.mix(&id).ok_or(DropReason::UnknownMix)?;
                    if let Some(c) = target_channel(target) {
                        if c as usize >= self.cfg.channels {
                            return Err(DropReason::OutOfRange);
                        }
                    }
                    out.push(Out {
                        to,
                        msg: msg(m.addr.clone(), value_of(target, &mix)),
                    });
                    return Ok(());
                }
                let op = to_op(target, &m.args)?;
                self.check_performer(from, &id)?;
                let cmd = Command::new(id, op).from_origin(origin_of(from));
                match self.store.apply(cmd) {
                    Ok(_) => {
                        OscStats::bump(&self.stats.applied);
                        Ok(())
                    }
                    Err(e) => Err(DropReason::of_store(&e)),
                }
            }
        }
    }

    /// A source bound to a performer's mix may change that mix only. (Reading other mixes
    /// stays allowed: a band's mixes are not secret, and surfaces show them.)
    fn check_performer(&mut self, from: SocketAddr, id: &str) -> Result<(), DropReason> {
        let Some(spec) = self
            .cfg
            .performers
            .iter()
            .find(|(net, _)| net.allows(from.ip()))
            .map(|(_, spec)| spec.clone())
        else {
            return Ok(());
        };
        match self.resolve(&spec) {
            Some(own) if own == id => Ok(()),
            _ => Err(DropReason::Forbidden),
        }
    }

    fn subscribe(
        &mut self,
        now: Instant,
        args: &[OscType],
        from: SocketAddr,
        out: &mut Vec<Out>,
    ) -> Result<(), DropReason> {
        self.expire(now);
        let mix = match args {
            [] => None,
            [OscType::String(s)] => Some(self.resolve(s).ok_or(DropReason::UnknownMix)?),
            [OscType::Int(n)] => Some(self.resolve(&n.to_string()).ok_or(DropReason::UnknownMix)?),
            _ => return Err(DropReason::BadType),
        };
        let until = now + self.cfg.lease;
        let is_new = match self.subs.get_mut(&from) {
            Some(s) if s.mix == mix => {
                s.until = until;
                false
            }
            Some(s) => {
                s.until = until;
                s.mix = mix.clone();
                true
            }
            None => {
                if self.subs.len() >= self.cfg.max_subscribers {
                    return Err(DropReason::SubscribersFull);
                }
                self.subs.insert(
                    from,
                    Subscriber {
                        reply_to: self.reply_addr(from),
                        origin: origin_of(from),
                        until,
                        mix: mix.clone(),
                    },
                );
                true
            }
        };
        self.stats
            .subscribers
            .store(self.subs.len() as u64, Ordering::Relaxed);
        let to = self.reply_addr(from);
        out.push(Out {
            to,
            msg: msg("/subscribe".into(), vec![f(self.cfg.lease.as_secs_f64())]),
        });
        // A new subscription to one mix gets that mix's values, so a surface starts in sync.
        if let (true, Some(id)) = (is_new, mix) {
            if let (Some(pos), Some(state)) = (self.position_of(&id), self.store.mix(&id)) {
                let touch = self.cfg.touchosc_mix.clone();
                let alias = self.resolve(&touch).as_deref() == Some(id.as_str());
                for msg in self.dump(&pos.to_string(), &state, alias) {
                    out.push(Out { to, msg });
                }
            }
        }
        Ok(())
    }

    /// Drops subscriptions whose lease ran out.
    pub fn expire(&mut self, now: Instant) {
        let before = self.subs.len();
        self.subs.retain(|_, s| s.until > now);
        if self.subs.len() != before {
            self.stats
                .subscribers
                .store(self.subs.len() as u64, Ordering::Relaxed);
        }
    }

    /// Every value of a mix as messages under `/mix/{m}/...` (plus the TouchOSC aliases).
    fn dump(&self, m: &str, mix: &MixState, alias: bool) -> Vec<OscMessage> {
        let mut v = Vec::with_capacity(4 + self.cfg.channels * 8);
        v.push(msg(
            format!("/mix/{m}/name"),
            vec![OscType::String(mix.name.clone())],
        ));
        v.push(msg(
            format!("/mix/{m}/master/gain"),
            vec![f(mix.master_gain)],
        ));
        v.push(msg(
            format!("/mix/{m}/master/fader"),
            vec![f(taper::gain_to_fader(mix.master_gain))],
        ));
        for c in 0..self.cfg.channels as u32 {
            let n = c + 1;
            for (what, t) in [
                ("gain", Target::Gain(c)),
                ("fader", Target::Fader(c)),
                ("pan", Target::Pan(c)),
                ("mute", Target::Mute(c)),
                ("solo", Target::Solo(c)),
                ("on", Target::On(c)),
            ] {
                v.push(msg(format!("/mix/{m}/ch/{n}/{what}"), value_of(t, mix)));
            }
            if alias {
                v.push(msg(format!("/1/fader{n}"), value_of(Target::Fader(c), mix)));
                v.push(msg(format!("/1/toggle{n}"), value_of(Target::Mute(c), mix)));
            }
        }
        v
    }

    /// Feedback of one store event to every subscriber following that mix, except the
    /// surface that caused it.
    pub fn on_event(&mut self, now: Instant, ev: &Event, out: &mut Vec<Out>) {
        if matches!(
            ev.change,
            Change::ClientAdded { .. }
                | Change::ClientRemoved
                | Change::OrderChanged { .. }
                | Change::Renamed { .. }
        ) {
            self.roster_dirty = true;
        }
        if self.subs.is_empty() {
            return;
        }
        self.expire(now);
        let targets: Vec<SocketAddr> = self
            .subs
            .values()
            .filter(|s| s.origin != ev.origin && s.mix.as_ref().is_none_or(|m| *m == ev.client_id))
            .map(|s| s.reply_to)
            .collect();
        if targets.is_empty() || ev.client_id.is_empty() {
            return;
        }
        let Some(pos) = self.position_of(&ev.client_id) else {
            return;
        };
        let touch = self.cfg.touchosc_mix.clone();
        let alias = self.resolve(&touch).as_deref() == Some(ev.client_id.as_str());
        let p = pos;
        let mut msgs = Vec::new();
        match &ev.change {
            Change::Gain { channel, gain } => {
                let n = channel + 1;
                msgs.push(msg(format!("/mix/{p}/ch/{n}/gain"), vec![f(*gain)]));
                msgs.push(msg(
                    format!("/mix/{p}/ch/{n}/fader"),
                    vec![f(taper::gain_to_fader(*gain))],
                ));
                msgs.push(msg(format!("/mix/{p}/ch/{n}/db"), vec![f(db_of(*gain))]));
                if alias {
                    msgs.push(msg(
                        format!("/1/fader{n}"),
                        vec![f(taper::gain_to_fader(*gain))],
                    ));
                }
            }
            Change::Pan { channel, pan } => msgs.push(msg(
                format!("/mix/{p}/ch/{}/pan", channel + 1),
                vec![f(*pan)],
            )),
            Change::Mute { channel, muted } => {
                msgs.push(msg(
                    format!("/mix/{p}/ch/{}/mute", channel + 1),
                    vec![i(*muted)],
                ));
                if alias {
                    msgs.push(msg(format!("/1/toggle{}", channel + 1), vec![i(*muted)]));
                }
            }
            Change::Solo { channel, soloed } => msgs.push(msg(
                format!("/mix/{p}/ch/{}/solo", channel + 1),
                vec![i(*soloed)],
            )),
            Change::Master { gain } => {
                msgs.push(msg(format!("/mix/{p}/master/gain"), vec![f(*gain)]));
                msgs.push(msg(
                    format!("/mix/{p}/master/fader"),
                    vec![f(taper::gain_to_fader(*gain))],
                ));
            }
            Change::Channels { channels } => {
                for c in 0..self.cfg.channels as u32 {
                    msgs.push(msg(
                        format!("/mix/{p}/ch/{}/on", c + 1),
                        vec![i(channels.contains(&c))],
                    ));
                }
            }
            Change::MixReplaced { mix } => msgs = self.dump(&p.to_string(), mix, alias),
            Change::Renamed { name } => msgs.push(msg(
                format!("/mix/{p}/name"),
                vec![OscType::String(name.clone())],
            )),
            _ => {}
        }
        for to in targets {
            for m in &msgs {
                OscStats::bump(&self.stats.feedback);
                out.push(Out { to, msg: m.clone() });
            }
        }
    }

    /// Meter feedback: `/mix/{m}/meters f f` (rms, peak, linear) for each followed mix and
    /// `/meters/input f...` (rms, peak per input channel) to every subscriber.
    pub fn meter_tick(&mut self, now: Instant, meters: &Meters, out: &mut Vec<Out>) {
        self.expire(now);
        if self.subs.is_empty() {
            return;
        }
        if self.roster_dirty {
            self.refresh_roster();
        }
        let mut inputs = Vec::with_capacity(meters.channels() * 2);
        for ch in 0..meters.channels() {
            let l = meters.input(ch).unwrap_or_default();
            inputs.push(OscType::Float(l.rms));
            inputs.push(OscType::Float(l.peak));
        }
        let mut per_mix: Vec<(String, OscMessage)> = Vec::with_capacity(self.roster.len());
        for (p, (id, _)) in self.roster.iter().enumerate() {
            let level = self
                .store
                .client_slot(id)
                .and_then(|s| meters.mix(s))
                .unwrap_or_default();
            per_mix.push((
                id.clone(),
                msg(
                    format!("/mix/{}/meters", p + 1),
                    vec![OscType::Float(level.rms), OscType::Float(level.peak)],
                ),
            ));
        }
        for s in self.subs.values() {
            for (id, m) in &per_mix {
                if s.mix.as_ref().is_none_or(|x| x == id) {
                    out.push(Out {
                        to: s.reply_to,
                        msg: m.clone(),
                    });
                }
            }
            out.push(Out {
                to: s.reply_to,
                msg: msg("/meters/input".into(), inputs.clone()),
            });
        }
    }
}

fn target_channel(t: Target) -> Option<u32> {
    match t {
        Target::Gain(c)
        | Target::Fader(c)
        | Target::Db(c)
        | Target::Pan(c)
        | Target::Mute(c)
        | Target::Solo(c)
        | Target::On(c) => Some(c),
        _ => None,
    }
}

/// A set message -> store op. Ranges the store does not know (fader position) are checked here.
pub fn to_op(t: Target, args: &[OscType]) -> Result<Op, DropReason> {
    Ok(match t {
        Target::Gain(channel) => Op::SetGain {
            channel,
            gain: num(args)?,
        },
        Target::Fader(channel) => {
            let p = num(args)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(DropReason::OutOfRange);
            }
            Op::SetGain {
                channel,
                gain: taper::fader_to_gain(p),
            }
        }
        Target::Db(channel) => {
            let db = num(args)?;
            if db > 20.0 * 2f64.log10() + 1e-9 {
                return Err(DropReason::OutOfRange);
            }
            Op::SetGain {
                channel,
                gain: taper::db_to_gain(db).min(crate::state::model::GAIN_MAX),
            }
        }
        Target::Pan(channel) => Op::SetPan {
            channel,
            pan: num(args)?,
        },
        Target::Mute(channel) => Op::SetMute {
            channel,
            muted: boolish(args)?,
        },
        Target::Solo(channel) => Op::SetSolo {
            channel,
            soloed: boolish(args)?,
        },
        Target::On(channel) => Op::SetOn {
            channel,
            on: boolish(args)?,
        },
        Target::MasterFader => {
            let p = num(args)?;
            if !(0.0..=1.0).contains(&p) {
                return Err(DropReason::OutOfRange);
            }
            Op::SetMaster {
                gain: taper::fader_to_gain(p),
            }
        }
        Target::MasterGain => Op::SetMaster { gain: num(args)? },
        Target::PresetLoad => Op::LoadPreset {
            name: text(args)?.to_owned(),
        },
        Target::Dump => return Err(DropReason::BadType),
    })
}
