//! The registry all sessions share ([`Hub`]): presence (online, listening, link reports), roster
//! broadcasts, the `clients` list and per-IP admission of sessions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::broadcast;

use super::link::LinkReport;
use super::pin::PinBook;
use super::{Limits, Session};
use crate::config::SecurityConfig;
use crate::control::wire::{ClientRow, OutputRow, ServerMsg};
use crate::state::Store;

/// Who is connected and listening, per client id; not persisted (it is about now).
#[derive(Debug, Default, Clone, Copy)]
struct Presence {
    sessions: usize,
    listening: usize,
    /// The listening page's last report; dropped when the last listener goes.
    link: Option<LinkReport>,
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
    pub(super) pin_failures: Mutex<PinBook>,
    ip_sessions: Mutex<HashMap<IpAddr, usize>>,
    next_session: AtomicU64,
    /// Pokes engineer sessions to resend the client list (coalesced by the receiver).
    roster: broadcast::Sender<()>,
    /// Hashes of the cue tokens handed to engineer sessions: a WHEP bearer that may
    /// listen to any mix. Each lives as long as the session that received it (a cue
    /// already listening keeps playing; the bearer is only checked when a WHEP session
    /// starts). They used to live as long as the server process: every engineer
    /// (re)connect added one for good, an unbounded set on a long-running server.
    pub(super) cue_tokens: Mutex<std::collections::HashSet<String>>,
    /// The mix slot an engineer last opened over WHEP with an engineer credential (the
    /// cue), or [`crate::playout::NO_CUE`]: `[[output]]`s with `mix = "cue"` follow it,
    /// as a desk's cue bus holds the last selection.
    pub cue_slot: Arc<std::sync::atomic::AtomicUsize>,
    /// The configured wired outputs (`[[output]]`, in order): what `assign_output` names
    /// by position and `outputs` lists.
    pub outputs: Vec<crate::config::OutputConfig>,
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
            cue_slot: Arc::new(std::sync::atomic::AtomicUsize::new(crate::playout::NO_CUE)),
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
            outputs: Vec::new(),
        }
    }

    /// The wired outputs the engineer may assign mixes to.
    pub fn with_outputs(mut self, outputs: Vec<crate::config::OutputConfig>) -> Hub {
        self.outputs = outputs;
        self
    }

    /// The engineer's `outputs` message: each wired output and what it plays now.
    pub fn outputs_msg(&self) -> Value {
        let clients = self.store.clients();
        let assigned = self.store.output_assignments();
        let rows = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let mix = crate::playout::effective_mix(o, &assigned);
                let client = mix
                    .filter(|m| !m.eq_ignore_ascii_case("cue"))
                    .and_then(|m| crate::playout::find_client(m, &clients));
                OutputRow {
                    output: i + 1,
                    device: &o.device,
                    channels: &o.channels,
                    mix,
                    client_id: client.map(|c| c.id.as_str()),
                }
            })
            .collect();
        ServerMsg::Outputs { outputs: rows }.to_value()
    }

    pub fn roster_changes(&self) -> broadcast::Receiver<()> {
        self.roster.subscribe()
    }

    pub(super) fn poke_roster(&self) {
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
            self.revoke_cue_token(hash);
        }
    }

    pub(super) fn set_online(&self, client_id: &str, on: bool) {
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
                if e.listening == 0 {
                    e.link = None;
                }
            }
        }
        self.poke_roster();
    }

    /// A page's `listen_stats` for `client_id` (already checked); engineers see it. Kept
    /// only while the client listens: a page that reports before its WHEP session is up
    /// (or after it ended) has no figure worth showing.
    pub(super) fn report_link(&self, client_id: &str, report: LinkReport) {
        let kept = self
            .presence
            .lock()
            .is_ok_and(|mut p| match p.get_mut(client_id) {
                Some(e) if e.listening > 0 => {
                    e.link = Some(report);
                    true
                }
                _ => false,
            });
        if kept {
            self.poke_roster();
        }
    }

    /// The link a client's page reported, if it is listening and reported lately.
    fn live_link(p: &Presence, now: Instant) -> Option<LinkReport> {
        p.link.filter(|l| p.listening > 0 && l.is_fresh(now))
    }

    /// Every listening client's live report, by client id (for `/metrics`).
    pub fn link_reports(&self, now: Instant) -> Vec<(String, LinkReport)> {
        let Ok(p) = self.presence.lock() else {
            return Vec::new();
        };
        let mut out: Vec<(String, LinkReport)> = p
            .iter()
            .filter_map(|(id, e)| Some((id.clone(), Self::live_link(e, now)?)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn presence_of(&self, client_id: &str) -> Presence {
        self.presence
            .lock()
            .ok()
            .and_then(|p| p.get(client_id).copied())
            .unwrap_or_default()
    }

    /// The `clients` message: every stored client in the persisted order.
    pub fn clients_msg(&self) -> Value {
        let now = Instant::now();
        let clients = self.store.clients();
        let rows = clients
            .iter()
            .map(|c| {
                let p = self.presence_of(&c.id);
                let link = Self::live_link(&p, now);
                ClientRow {
                    client_id: &c.id,
                    name: &c.name,
                    online: p.sessions > 0,
                    listening: p.listening > 0,
                    last_seen: c.device.last_seen,
                    latency_ms: link.map(|l| l.latency_ms),
                    loss_pct: link.map(|l| l.loss_pct),
                }
            })
            .collect();
        ServerMsg::Clients { clients: rows }.to_value()
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
