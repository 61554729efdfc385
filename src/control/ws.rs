//! `GET /ws`: the socket glue around [`Session`]. It checks the Origin before upgrading,
//! bounds everything (message size, rate, outbound queue, handshake and idle time,
//! sessions per IP) and moves frames; the protocol logic lives in `session.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, warn};

use super::protocol::{ErrorCode, WireError};
use super::session::{Hub, Role, Session};
use super::wire::{Mix, ServerMsg, Synced};
use crate::meters::Meters;
use crate::state::Event;

/// What a WebSocket session needs from the rest of the server (the HTTP router builds it
/// from its own state): the hub, the meters it shows, and the shutdown signal.
#[derive(Clone)]
pub struct WsContext {
    pub hub: Arc<Hub>,
    pub meters: Arc<Meters>,
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// True when a browser's `Origin` names this server (same host:port as `Host`) or an
/// allowed origin. Requests without `Origin` come from scripts, not pages, and pass:
/// the Origin check exists to stop *other web pages* from driving a musician's mix.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let bare = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((bare, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

pub async fn handler(
    State(app): State<Arc<WsContext>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let hub = app.hub.clone();
    if !origin_allowed(&headers, &hub.security.allowed_origins) {
        return (StatusCode::FORBIDDEN, "origin not allowed").into_response();
    }
    let Some(admission) = hub.admit(peer.ip()) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many sessions from this address",
        )
            .into_response();
    };
    let max = hub.limits.max_message;
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_failed_upgrade(|e| debug!("websocket upgrade failed: {e}"))
        .on_upgrade(move |socket| async move {
            let mut session = Session::new(admission.id, peer.ip(), &hub.limits, Instant::now());
            run(app.clone(), socket, &mut session).await;
            hub.leave(&session);
            drop(admission);
        })
}

/// The event channels of the mixes a session shows: its own and the one it watches.
/// Only these wake the session (`Store::client_events`), so one fader move wakes the
/// devices of that musician and the engineers watching them, not every session.
#[derive(Default)]
struct Shown {
    own: Option<(String, broadcast::Receiver<Event>)>,
    watched: Option<(String, broadcast::Receiver<Event>)>,
}

impl Shown {
    /// Subscribes to what `session` shows now; returns the ids newly subscribed.
    fn follow(&mut self, hub: &Hub, session: &Session) -> Vec<String> {
        let mut new = Vec::new();
        // Watching its own mix needs no second channel.
        let watched = session
            .watching
            .as_ref()
            .filter(|w| session.client_id.as_ref() != Some(*w));
        for (slot, want) in [
            (&mut self.own, session.client_id.as_ref()),
            (&mut self.watched, watched),
        ] {
            if slot.as_ref().map(|(id, _)| id) != want {
                *slot = want.map(|id| {
                    new.push(id.clone());
                    (id.clone(), hub.store.client_events(id))
                });
            }
        }
        new
    }

    /// The next event of one channel (never resolves for an empty slot).
    async fn recv(
        slot: &mut Option<(String, broadcast::Receiver<Event>)>,
    ) -> (String, Result<Event, broadcast::error::RecvError>) {
        match slot {
            Some((id, rx)) => {
                let ev = rx.recv().await;
                let id = id.clone();
                if matches!(ev, Err(broadcast::error::RecvError::Closed)) {
                    *slot = None; // never poll a closed channel again
                }
                (id, ev)
            }
            None => std::future::pending().await,
        }
    }
}

/// Sends the whole mix of `id` as one `param_sync` (after missed changes).
fn send_mix(hub: &Hub, id: &str, send: &impl Fn(String) -> bool) -> bool {
    match hub.store.mix(id) {
        Some(m) => send(
            ServerMsg::ParamSync {
                client_id: id,
                channel: None,
                sync: Synced::Mix(Mix::from(&m)),
            }
            .to_text(),
        ),
        None => true,
    }
}

/// One event of a shown mix; `false` when the client does not read.
fn on_client_event(
    hub: &Hub,
    session: &Session,
    id: &str,
    ev: Result<Event, broadcast::error::RecvError>,
    send: &impl Fn(String) -> bool,
) -> bool {
    match ev {
        Ok(ev) => session.sync_msg(&ev).is_none_or(|m| send(m.to_text())),
        // Missed changes: resend the whole mix so the page is right again.
        Err(broadcast::error::RecvError::Lagged(_)) => send_mix(hub, id, send),
        // The store outlives every session; nothing to do.
        Err(broadcast::error::RecvError::Closed) => true,
    }
}

/// Why a session ended (logged at debug level; the client sees a close frame).
enum End {
    Closed,
    Idle,
    Handshake,
    SlowReader,
    Shutdown,
}

async fn run(app: Arc<WsContext>, socket: WebSocket, session: &mut Session) {
    let hub: Arc<Hub> = app.hub.clone();
    let limits = hub.limits.clone();
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<Message>(limits.outbound_queue);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let close = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || close {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut shown = Shown::default();
    let mut roster = hub.roster_changes();
    let mut ping = tokio::time::interval(limits.ping_every);
    ping.tick().await;
    let mut meters = tokio::time::interval(std::time::Duration::from_millis(50));
    meters.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = tokio::time::Instant::now();
    let mut last_heard = tokio::time::Instant::now();
    let shutdown = app.shutdown.clone();

    // Queues a text frame; a full queue means the client does not read: drop the session.
    let send = |text: String| -> bool {
        match tx.try_send(Message::Text(text.into())) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => false,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    };

    let end = loop {
        let deadline = if session.role.is_none() {
            started + limits.handshake
        } else {
            last_heard + limits.idle_timeout
        };
        tokio::select! {
            _ = shutdown.cancelled() => break End::Shutdown,
            _ = tokio::time::sleep_until(deadline) => {
                break if session.role.is_none() { End::Handshake } else { End::Idle };
            }
            frame = stream.next() => {
                last_heard = tokio::time::Instant::now();
                match frame {
                    Some(Ok(Message::Text(t))) => {
                        let out = session.handle_text(&hub, t.as_str(), Instant::now());
                        if !out.iter().map(Value::to_string).all(&send) {
                            break End::SlowReader;
                        }
                        // Follow the mixes it shows now; a change that slipped in between
                        // its snapshot and the subscription is covered by a resync.
                        let snapshot = session.snapshot_seq.take();
                        let newer = |seq: u64| seq != hub.store.sequence();
                        let stale = |id: &String| snapshot.is_some_and(newer) && !send_mix(&hub, id, &send);
                        if shown.follow(&hub, session).iter().any(stale) {
                            break End::SlowReader;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let e = WireError::new(ErrorCode::BadJson, "binary frames are not part of the protocol");
                        if !send(ServerMsg::from(&e).to_text()) { break End::SlowReader; }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break End::Closed,
                    Some(Err(e)) => {
                        // Oversized frames end up here: tell the client why before closing.
                        let e = WireError::new(ErrorCode::TooLarge, e.to_string());
                        let _ = send(ServerMsg::from(&e).to_text());
                        break End::Closed;
                    }
                }
            }
            (id, ev) = Shown::recv(&mut shown.own), if shown.own.is_some() => {
                if !on_client_event(&hub, session, &id, ev, &send) { break End::SlowReader; }
            }
            (id, ev) = Shown::recv(&mut shown.watched), if shown.watched.is_some() => {
                if !on_client_event(&hub, session, &id, ev, &send) { break End::SlowReader; }
            }
            r = roster.recv(), if session.role == Some(Role::Engineer) => {
                if !matches!(r, Err(broadcast::error::RecvError::Closed)) {
                    // Coalesce a burst of joins/leaves into one list.
                    while roster.try_recv().is_ok() {}
                    if !send(hub.clients_msg().to_string()) { break End::SlowReader; }
                    // A client renamed, joined or left may change what an output names.
                    if !hub.outputs.is_empty() && !send(hub.outputs_msg().to_string()) {
                        break End::SlowReader;
                    }
                }
            }
            _ = meters.tick(), if session.meters => {
                // Meters are expendable: skip them when the queue is half full.
                if tx.capacity() > limits.outbound_queue / 2 {
                    let _ = send(meter_msg(&app, session));
                }
            }
            _ = ping.tick() => {
                if tx.try_send(Message::Ping(Vec::new().into())).is_err() {
                    break End::SlowReader;
                }
            }
        }
    };
    let (code, reason) = match end {
        End::Closed => (1000, "bye"),
        End::Idle => (1001, "no heartbeat for 15 s"),
        End::Handshake => (1008, "no hello in time"),
        End::SlowReader => (1008, "client too slow"),
        End::Shutdown => (1001, "server shutting down"),
    };
    if matches!(end, End::SlowReader) {
        warn!(
            session = session.id,
            "closing a session whose client does not read"
        );
    }
    // The queue may be full (slow reader): drop it and close directly.
    let _ = tx.try_send(Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })));
    drop(tx);
    // A client that stops reading but keeps its socket would hold the writer (and the
    // socket) in `send` for ever: give it 2 s to take the close frame, then cut it off.
    let abort = writer.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), writer)
        .await
        .is_err()
    {
        abort.abort();
    }
}

fn round4(x: f32) -> f64 {
    (x as f64 * 10_000.0).round() / 10_000.0
}

/// `meters`: input levels pre-fader and this session's mix post-limiter, linear RMS/peak.
fn meter_msg(app: &WsContext, session: &Session) -> String {
    let m = &app.meters;
    let inputs: Vec<[f64; 2]> = (0..app.hub.channel_names.len())
        .map(|c| {
            m.input(c)
                .map_or([0.0, 0.0], |l| [round4(l.rms), round4(l.peak)])
        })
        .collect();
    let mix = session
        .client_id
        .as_deref()
        .or(session.watching.as_deref())
        .and_then(|id| app.hub.store.client_slot(id))
        .and_then(|slot| m.mix(slot))
        .map(|l| [round4(l.rms), round4(l.peak)])
        .unwrap_or([0.0, 0.0]);
    ServerMsg::Meters {
        inputs: &inputs,
        mix,
    }
    .to_text()
}
