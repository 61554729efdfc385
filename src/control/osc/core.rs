//! The OSC engine without sockets: `(now, datagram, source)` in -> store commands applied
//! and datagrams out; store events in -> feedback out; a meter tick -> meter feedback.
//! Leases use the `now` the caller passes, so tests drive the clock.
//!
//! This module dispatches; the parts live next to it: limits in `datagram`, the address
//! grammar in `address`, argument coercion in `args`, `{m}` resolution in `roster`,
//! leases in `lease`, outgoing messages in `feedback`, counters in `stats`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscType};
use tracing::{debug, info};

use super::address::target_channel;
use super::feedback::{self, f, msg};
use super::lease::{Leases, Subscriber};
use super::roster::Roster;
use crate::allow_list::AllowList;
use crate::meters::Meters;
use crate::state::{Command, Event, Store};

// Items that lived here before the split; re-exported so `osc::core::…` paths keep working.
pub use super::address::{parse_address, Route, Target};
pub use super::args::to_op;
pub use super::datagram::{check_nesting, MAX_BUNDLE_DEPTH, MAX_DATAGRAM};
pub use super::feedback::DB_FLOOR;
pub use super::stats::{DropReason, OscStats};

/// Sources remembered for log rate limiting.
const LOG_BOOK_MAX: usize = 1024;

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

/// The OSC protocol engine (one per server; owned by the socket task).
pub struct OscCore {
    store: Arc<Store>,
    cfg: OscSettings,
    stats: Arc<OscStats>,
    leases: Leases,
    roster: Roster,
    log_book: HashMap<IpAddr, Instant>,
}

impl OscCore {
    pub fn new(store: Arc<Store>, cfg: OscSettings) -> OscCore {
        let stats = Arc::new(OscStats::default());
        OscCore {
            store,
            cfg,
            leases: Leases::new(stats.clone()),
            stats,
            roster: Roster::new(),
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
        self.leases.len()
    }

    fn reply_addr(&self, from: SocketAddr) -> SocketAddr {
        match self.cfg.reply_port {
            Some(p) => SocketAddr::new(from.ip(), p),
            None => from,
        }
    }

    /// `{m}` -> client id: a 1-based position, an exact client id, or a name (any case).
    pub fn resolve(&mut self, m: &str) -> Option<String> {
        self.roster.resolve(&self.store, m)
    }

    fn position_of(&mut self, id: &str) -> Option<usize> {
        self.roster.position_of(&self.store, id)
    }

    /// Whether client `id` is the mix of the TouchOSC aliases (`osc.touchosc_mix`).
    fn is_touchosc_mix(&mut self, id: &str) -> bool {
        self.roster
            .resolve(&self.store, &self.cfg.touchosc_mix)
            .as_deref()
            == Some(id)
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
                let mixes = self.roster.current(&self.store).len();
                out.push(Out {
                    to,
                    msg: msg(
                        "/info".into(),
                        vec![
                            OscType::String(self.cfg.server_name.clone()),
                            OscType::String(env!("CARGO_PKG_VERSION").into()),
                            OscType::Int(self.cfg.channels as i32),
                            OscType::Int(mixes as i32),
                        ],
                    ),
                });
                Ok(())
            }
            Route::Subscribe => self.subscribe(now, &m.args, from, out),
            Route::Unsubscribe => {
                self.leases.remove(from);
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
                    let alias = self.is_touchosc_mix(&id);
                    for msg in feedback::dump(self.cfg.channels, spec, &mix, alias) {
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
                        msg: msg(m.addr.clone(), feedback::value_of(target, &mix)),
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
        let to = self.reply_addr(from);
        let lease = Subscriber {
            reply_to: to,
            origin: origin_of(from),
            until: now + self.cfg.lease,
            mix: mix.clone(),
        };
        let is_new = self.leases.renew(from, lease, self.cfg.max_subscribers)?;
        out.push(Out {
            to,
            msg: msg("/subscribe".into(), vec![f(self.cfg.lease.as_secs_f64())]),
        });
        // A new subscription to one mix gets that mix's values, so a surface starts in sync.
        if let (true, Some(id)) = (is_new, mix) {
            if let (Some(pos), Some(state)) = (self.position_of(&id), self.store.mix(&id)) {
                let alias = self.is_touchosc_mix(&id);
                for msg in feedback::dump(self.cfg.channels, &pos.to_string(), &state, alias) {
                    out.push(Out { to, msg });
                }
            }
        }
        Ok(())
    }

    /// Drops subscriptions whose lease ran out.
    pub fn expire(&mut self, now: Instant) {
        self.leases.expire(now);
    }

    /// Feedback of one store event to every subscriber following that mix, except the
    /// surface that caused it.
    pub fn on_event(&mut self, now: Instant, ev: &Event, out: &mut Vec<Out>) {
        self.roster.on_change(&ev.change);
        if self.leases.is_empty() {
            return;
        }
        self.expire(now);
        let targets = self.leases.feedback_targets(ev.origin, &ev.client_id);
        if targets.is_empty() || ev.client_id.is_empty() {
            return;
        }
        let Some(p) = self.position_of(&ev.client_id) else {
            return;
        };
        let alias = self.is_touchosc_mix(&ev.client_id);
        let msgs = feedback::event_messages(p, &ev.change, self.cfg.channels, alias);
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
        if self.leases.is_empty() {
            return;
        }
        let roster = self.roster.current(&self.store);
        let inputs = feedback::input_levels(meters);
        let per_mix = feedback::mix_meters(roster, &self.store, meters);
        for s in self.leases.iter() {
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
