//! Audio out: each listened-to mix is Opus-encoded once and its packets go to every
//! WebRTC listener of that mix (a phone, the engineer's cue, a second device), over WHEP.
//!
//! ```text
//! engine tick ──MixTap──▶ encoder worker (pool.rs) ──OpusPacket──▶ ListenerConn::send × N
//!                          one encoder per mix                     (transport.rs seam;
//!                                                                   webrtc_peer.rs)
//! WHEP POST (whep.rs) ──▶ StreamService::open ──▶ AudioTransport::open (SDP answer)
//! ```
//!
//! - [`encoder`]: Opus settings and the per-mix encoder; [`pool`]: worker threads and fan-out.
//! - [`transport`]: the [`AudioTransport`]/[`ListenerConn`] seam; [`webrtc_peer`]: its
//!   `webrtc` 0.21 implementation.
//! - [`whep`]: the RFC 9725 HTTP endpoints over a [`whep::WhepBackend`] (auth, slots).
//! - [`stats`]: counters and histograms, Prometheus text.
//! - [`client`]: a WHEP client (tests, `monmix listen`).
//!
//! Lifecycle: a mix gets an engine tap and an encoder when its first listener connects, and
//! loses both when its last listener leaves (DELETE, ICE/DTLS failure, peer close, or a
//! disconnect that outlasts the grace period).

pub mod client;
pub mod encoder;
mod pool;
pub mod stats;
pub mod transport;
pub mod webrtc_peer;
pub mod whep;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

pub use encoder::EncoderConfig;
pub use stats::StreamStats;
pub use transport::{AudioTransport, ConnState, ListenerConn, OpusPacket, SendOutcome};
pub use webrtc_peer::{WebrtcConfig, WebrtcTransport};

use crate::engine::{EngineError, EngineHandle};
use pool::{EncoderPool, MixShared};

/// Errors of the streaming side. Each maps to one HTTP status in [`whep`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The offer cannot be served (400): not SDP, no audio, no Opus…
    #[error("bad offer: {0}")]
    BadOffer(String),
    /// Listener limit reached (503).
    #[error("too many listeners (max {max})")]
    TooManyListeners { max: usize },
    /// No such session (404).
    #[error("no such session")]
    SessionNotFound,
    #[error("invalid stream config: {0}")]
    Config(&'static str),
    #[error("opus encoder: {0}")]
    Encoder(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Internal(String),
}

/// Settings of the streaming service; every field has a working default.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// Opus settings. `frame_len` is taken from the engine.
    pub encoder: EncoderConfig,
    /// Encoder threads (default: number of cores).
    pub workers: usize,
    /// Listeners across all mixes (default 256); more get 503.
    pub max_listeners: usize,
    /// How long a `Disconnected` peer may take to recover before its session ends.
    pub disconnect_grace: Duration,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            encoder: EncoderConfig::default(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_listeners: 256,
            disconnect_grace: Duration::from_secs(5),
        }
    }
}

/// A session just opened.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    /// Unguessable id (128 random bits, hex): the last segment of the WHEP `Location`.
    pub id: String,
    /// SDP answer, ICE gathering complete.
    pub answer_sdp: String,
}

/// Called once with the session id when a session ends, whatever ended it.
pub type OnEnd = Box<dyn FnOnce(&str) + Send + 'static>;

struct Session {
    slot: usize,
    conn: Arc<dyn ListenerConn>,
    on_end: Option<OnEnd>,
}

#[derive(Default)]
struct Tables {
    mixes: HashMap<usize, Arc<MixShared>>,
    sessions: HashMap<String, Session>,
}

struct Inner {
    engine: EngineHandle,
    transport: Arc<dyn AudioTransport>,
    pool: Mutex<EncoderPool>,
    stats: Arc<StreamStats>,
    tables: Mutex<Tables>,
    /// Listeners open or being negotiated: bounds the work a flood of POSTs can cause.
    reserved: AtomicUsize,
    cfg: StreamConfig,
}

/// The streaming service: listener sessions, encoders, fan-out. Cheap to clone.
#[derive(Clone)]
pub struct StreamService(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamService {
    /// A service over any transport. Starts the encoder threads.
    pub fn new(
        engine: EngineHandle,
        mut cfg: StreamConfig,
        transport: Arc<dyn AudioTransport>,
    ) -> Result<Self, StreamError> {
        cfg.encoder.frame_len = engine.config().frame_len;
        if cfg.max_listeners == 0 {
            return Err(StreamError::Config("max_listeners must be at least 1"));
        }
        let stats = Arc::new(StreamStats::default());
        let pool = EncoderPool::new(cfg.workers, cfg.encoder, stats.clone())?;
        Ok(StreamService(Arc::new(Inner {
            engine,
            transport,
            pool: Mutex::new(pool),
            stats,
            tables: Mutex::new(Tables::default()),
            reserved: AtomicUsize::new(0),
            cfg,
        })))
    }

    /// A service on the `webrtc` transport.
    pub fn with_webrtc(
        engine: EngineHandle,
        cfg: StreamConfig,
        webrtc: WebrtcConfig,
    ) -> Result<Self, StreamError> {
        Self::new(engine, cfg, Arc::new(WebrtcTransport::new(webrtc)))
    }

    pub fn stats(&self) -> &Arc<StreamStats> {
        &self.0.stats
    }

    pub fn config(&self) -> &StreamConfig {
        &self.0.cfg
    }

    /// Prometheus lines (`monmix_stream_*`) for `/metrics`.
    pub fn render_metrics(&self) -> String {
        self.0.stats.render_prometheus()
    }

    /// Mixes currently held by encoders (0 once every listener left and the workers caught up).
    pub fn active_encoders(&self) -> usize {
        lock(&self.0.pool).mixes()
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        lock(&self.0.tables).sessions.len()
    }

    /// True while session `id` is open.
    pub fn has_session(&self, id: &str) -> bool {
        lock(&self.0.tables).sessions.contains_key(id)
    }

    /// Answers `offer_sdp` and starts sending mix `slot` to the new listener. Must run
    /// inside a tokio runtime. `on_end` runs once when the session ends, for any reason.
    ///
    /// Not cancellation-safe: dropped before it returns, it leaves its listener
    /// reservation taken and the half-built peer running. A caller that may be cancelled
    /// (an HTTP handler whose client hangs up) runs it in a task of its own, as
    /// `whep::create` does.
    pub async fn open(
        &self,
        slot: usize,
        offer_sdp: &str,
        on_end: OnEnd,
    ) -> Result<OpenedSession, StreamError> {
        let r = self.open_inner(slot, offer_sdp, on_end).await;
        if r.is_err() {
            StreamStats::add(&self.0.stats.sessions_rejected, 1);
        }
        r
    }

    async fn open_inner(
        &self,
        slot: usize,
        offer_sdp: &str,
        on_end: OnEnd,
    ) -> Result<OpenedSession, StreamError> {
        let inner = &self.0;
        let max = inner.cfg.max_listeners;
        if slot >= inner.engine.config().max_mixes {
            return Err(StreamError::Engine(EngineError::SlotOutOfRange {
                slot,
                max: inner.engine.config().max_mixes,
            }));
        }
        transport::precheck_offer(offer_sdp)?;
        inner
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| StreamError::TooManyListeners { max })?;
        let (answer_sdp, conn) = match inner.transport.open(offer_sdp).await {
            Ok(x) => x,
            Err(e) => {
                inner.reserved.fetch_sub(1, Ordering::AcqRel);
                return Err(e);
            }
        };
        let id = format!("{:032x}", rand::random::<u128>());
        if let Err(e) = self.attach(slot, &id, conn.clone(), on_end) {
            inner.reserved.fetch_sub(1, Ordering::AcqRel);
            conn.close().await;
            return Err(e);
        }
        StreamStats::add(&inner.stats.listeners, 1);
        StreamStats::add(&inner.stats.sessions_opened, 1);
        tokio::spawn(watch_session(self.clone(), id.clone(), conn.state()));
        Ok(OpenedSession { id, answer_sdp })
    }

    /// Adds the listener to its mix, starting the mix's encoder if it is the first.
    fn attach(
        &self,
        slot: usize,
        id: &str,
        conn: Arc<dyn ListenerConn>,
        on_end: OnEnd,
    ) -> Result<(), StreamError> {
        let inner = &self.0;
        let mut t = lock(&inner.tables);
        match t.mixes.get(&slot) {
            Some(mix) => {
                let mut list = Vec::clone(&mix.listeners.load());
                list.push(conn.clone());
                mix.listeners.store(Arc::new(list));
            }
            None => {
                let tap = inner.engine.attach(slot).map_err(|e| match e {
                    EngineError::TooManyTaps { .. } => StreamError::TooManyListeners {
                        max: inner.cfg.max_listeners,
                    },
                    e => StreamError::Engine(e),
                })?;
                let mix = lock(&inner.pool).add(tap, conn.clone())?;
                t.mixes.insert(slot, mix);
            }
        }
        t.sessions.insert(
            id.to_owned(),
            Session {
                slot,
                conn,
                on_end: Some(on_end),
            },
        );
        Ok(())
    }

    /// Ends a session (WHEP DELETE). False if there was none with this id.
    pub async fn close(&self, id: &str) -> bool {
        let Some(mut s) = self.detach(id) else {
            return false;
        };
        s.conn.close().await;
        if let Some(f) = s.on_end.take() {
            f(id);
        }
        true
    }

    /// Removes the session and, with its last listener, the mix's encoder and tap.
    fn detach(&self, id: &str) -> Option<Session> {
        let inner = &self.0;
        let mut t = lock(&inner.tables);
        let s = t.sessions.remove(id)?;
        if let Some(mix) = t.mixes.get(&s.slot).cloned() {
            let list: Vec<_> = mix
                .listeners
                .load()
                .iter()
                .filter(|c| !Arc::ptr_eq(c, &s.conn))
                .cloned()
                .collect();
            if list.is_empty() {
                t.mixes.remove(&s.slot);
                lock(&inner.pool).retire(&mix);
            }
            mix.listeners.store(Arc::new(list));
        }
        drop(t);
        inner.reserved.fetch_sub(1, Ordering::AcqRel);
        StreamStats::sub(&inner.stats.listeners, 1);
        Some(s)
    }

    /// Ends every session and stops the encoder threads.
    pub async fn shutdown(&self) {
        let ids: Vec<String> = lock(&self.0.tables).sessions.keys().cloned().collect();
        for id in ids {
            self.close(&id).await;
        }
        lock(&self.0.pool).shutdown();
    }
}

/// Ends the session when its connection closes, or stays disconnected past the grace.
async fn watch_session(svc: StreamService, id: String, mut state: watch::Receiver<ConnState>) {
    let grace = svc.0.cfg.disconnect_grace;
    loop {
        let now = *state.borrow_and_update();
        match now {
            ConnState::Closed => break,
            ConnState::Disconnected => match tokio::time::timeout(grace, state.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => break,
            },
            _ => {
                if state.changed().await.is_err() {
                    break;
                }
            }
        }
    }
    if svc.close(&id).await {
        tracing::debug!(session = %id, "listener session ended by its connection");
    }
}
