//! One WebSocket session's logic, sans I/O: text in -> replies out, store events in ->
//! `param_sync` out. The socket glue in `ws.rs` only moves frames; everything here is
//! testable with plain function calls and an explicit clock.
//!
//! Around the session: `hub.rs` (what all sessions share), `pin.rs` (the PIN failure
//! limiter), `cue.rs` (cue tokens and engineer tokens), `ops.rs` (wire ops -> store
//! commands) and `acks.rs` (acks and `param_sync` built from store state).

mod acks;
mod cue;
mod hub;
mod link;
mod ops;
mod pin;
#[cfg(test)]
mod tests;

pub use acks::param_sync;
pub use hub::{Admission, Hub};
pub use link::LinkReport;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::protocol::{self, error_msg, ClientMsg, ErrorCode, Hello, WireError};
use super::wire::{Mix, ServerMsg, StageChannels};
use crate::state::{self, Command, Event, Op};
use cue::is_configured_engineer_token;
use ops::store_err;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Performer,
    Engineer,
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
    /// When this session's last `listen_stats` was taken.
    last_link_report: Option<Instant>,
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
            last_link_report: None,
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
                let reply = ServerMsg::ClientMix {
                    client_id: &id,
                    mix: Mix::from(&mix),
                }
                .to_value();
                self.watching = Some(id);
                Ok(vec![reply])
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
            ClientMsg::AssignOutput { output, mix } => {
                engineer().map_err(|e| e.with_ref("assign_output"))?;
                let key = output
                    .checked_sub(1)
                    .and_then(|i| hub.outputs.get(i))
                    .map(crate::config::OutputConfig::key)
                    .ok_or_else(|| {
                        WireError::new(
                            ErrorCode::OutOfRange,
                            format!(
                                "no output {output}: {} configured (1-based)",
                                hub.outputs.len()
                            ),
                        )
                        .with_ref("assign_output")
                    })?;
                hub.store
                    .apply(Command {
                        origin: self.id,
                        client_id: String::new(),
                        op: Op::AssignOutput { output: key, mix },
                    })
                    .map_err(|e| store_err(e, "assign_output"))?;
                hub.poke_roster();
                Ok(Vec::new())
            }
            ClientMsg::WatchMeters { on } => {
                self.meters = on;
                Ok(Vec::new())
            }
            ClientMsg::Ping { t } => Ok(vec![ServerMsg::Pong { t }.to_value()]),
            ClientMsg::ListenStats {
                latency_ms,
                loss_pct,
            } => {
                let id = self.client_id.clone().ok_or_else(|| {
                    WireError::new(ErrorCode::Forbidden, "this session has no mix of its own")
                        .with_ref("listen_stats")
                })?;
                if self
                    .last_link_report
                    .is_some_and(|t| now.saturating_duration_since(t) < link::MIN_INTERVAL)
                {
                    return Err(WireError::new(
                        ErrorCode::RateLimited,
                        "listen_stats: at most one report per second",
                    )
                    .with_ref("listen_stats"));
                }
                let report = LinkReport::new(latency_ms, loss_pct, now)?;
                self.last_link_report = Some(now);
                hub.report_link(&id, report);
                Ok(Vec::new())
            }
        }
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
        let mix = client_id.as_ref().and_then(|id| hub.store.mix(id));
        let cue = if role == Role::Engineer {
            hub.new_cue_token()
        } else {
            None
        };
        let welcome = ServerMsg::Welcome {
            client_id: client_id.as_deref(),
            token: token.as_deref(),
            role,
            server: &hub.server_name,
            channels: StageChannels(&hub.channel_names),
            sample_rate: crate::limits::SAMPLE_RATE,
            frame_ms: hub.frame_ms,
            mix: mix.as_ref().map(Mix::from),
            session_id: self.id,
            cue_token: cue.as_ref().map(|(t, _)| t.as_str()),
        };
        let mut out = vec![welcome.to_value()];
        if role == Role::Engineer {
            self.cue_token_hash = cue.map(|(_, hash)| hash);
            out.push(hub.clients_msg());
            out.push(hub.outputs_msg());
        }
        Ok(out)
    }

    /// [`Session::sync_msg`] as a JSON value.
    pub fn on_event(&self, ev: &Event) -> Option<Value> {
        self.sync_msg(ev).map(|m| m.to_value())
    }

    /// What this session should see of a store event: `param_sync` if it shows that mix
    /// and did not cause the change itself. Typed, so the socket writes it straight to a
    /// frame (the hot path of a fader move).
    pub fn sync_msg<'e>(&self, ev: &'e Event) -> Option<ServerMsg<'e>> {
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
