//! Audio out: each listened-to mix is Opus-encoded once and its packets go to every
//! WebRTC listener of that mix (a phone, the engineer's cue, a second device), over WHEP.
//!
//! ```text
//! engine tick ─unpark─▶ shard thread (shard.rs): encode each mix once → write to each
//!                       listener's sans-IO peer (str0m_peer.rs) → one sendmmsg (udp.rs)
//! WHEP POST (whep.rs) ──▶ StreamService::open ──▶ AudioTransport::accept (SDP answer)
//!                                              ──▶ command queue ──▶ the mix's shard
//! ```
//!
//! - [`shard`]: the real-time pass; [`udp`]: sockets, the `sendmmsg` batch, STUN demux.
//! - [`transport`]: the [`AudioTransport`]/[`Peer`] seam; [`str0m_peer`]: its str0m
//!   implementation. [`encoder`]: Opus settings and the per-mix encoder.
//! - [`whep`]: the RFC 9725 HTTP endpoints over a [`whep::WhepBackend`] (auth, slots).
//! - [`stats`]: counters and histograms, Prometheus text.
//! - `options`: [`StreamOptions`] and [`udp_addrs_for`]; `error`: [`StreamError`].
//!
//! Placement: a mix lives on one shard (the least loaded when its first listener came), with
//! all its listeners, so its packet is encoded once and fanned out without leaving the
//! thread. Lifecycle: a mix gets an engine tap and an encoder when its first listener
//! connects, and loses both when its last listener leaves (DELETE, ICE/DTLS failure, a
//! peer that never connects or vanishes: see [`shard::Lifecycle`]).

pub mod encoder;
mod error;
mod options;
pub mod shard;
pub mod stats;
pub mod str0m_peer;
pub mod transport;
pub mod udp;
pub mod whep;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

pub use encoder::EncoderConfig;
pub use error::StreamError;
pub use options::{udp_addrs_for, StreamOptions};
pub use shard::Lifecycle;
pub use stats::StreamStats;
pub use str0m_peer::Str0mTransport;
pub use transport::{AudioTransport, ConnState, OpusPacket, Peer, SendOutcome};

use crate::engine::{EngineError, EngineHandle};
use encoder::MixEncoder;
use shard::{Command, Shard};
use udp::Sockets;

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
    key: u64,
    on_end: Option<OnEnd>,
}

struct MixEntry {
    shard: usize,
    listeners: usize,
}

#[derive(Default)]
struct Tables {
    mixes: HashMap<usize, MixEntry>,
    sessions: HashMap<String, Session>,
    by_key: HashMap<u64, String>,
    /// Listeners per shard, for placement.
    load: Vec<usize>,
}

struct ShardHandle {
    commands: Mutex<rtrb::Producer<Command>>,
    thread: std::thread::Thread,
    join: Mutex<Option<JoinHandle<()>>>,
    addrs: Vec<SocketAddr>,
}

struct Inner {
    engine: EngineHandle,
    transport: Arc<dyn AudioTransport>,
    shards: Vec<ShardHandle>,
    stop: Arc<AtomicBool>,
    stats: Arc<StreamStats>,
    /// When `cfg.manual`: the shards' makers, until a driver thread takes them.
    manual: Mutex<Vec<ShardMaker>>,
    tables: Mutex<Tables>,
    next_key: AtomicU64,
    /// Listeners open or being negotiated: bounds the work a flood of POSTs can cause.
    reserved: AtomicUsize,
    cfg: StreamOptions,
}

/// The streaming service: listener sessions, shards, encoders. Cheap to clone.
#[derive(Clone)]
pub struct StreamService(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StreamService {
    /// A service over any transport. Binds the shards' sockets and starts their threads.
    pub fn new(
        engine: EngineHandle,
        mut cfg: StreamOptions,
        transport: Arc<dyn AudioTransport>,
    ) -> Result<Self, StreamError> {
        cfg.encoder.frame_len = engine.config().frame_len;
        cfg.encoder.validate()?;
        if cfg.max_listeners == 0 {
            return Err(StreamError::Config("max_listeners must be at least 1"));
        }
        if cfg.udp_addrs.is_empty() {
            return Err(StreamError::Config("no UDP address to stream from"));
        }
        let n = cfg.shards.max(1);
        let stats = Arc::new(StreamStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (ended_tx, ended_rx) = tokio::sync::mpsc::unbounded_channel();
        let max_mixes = engine.config().max_mixes;
        let mut shards = Vec::with_capacity(n);
        let mut manual = Vec::new();
        for i in 0..n {
            let sockets = Sockets::bind(&cfg.udp_addrs).map_err(|e| {
                StreamError::Transport(format!("cannot bind UDP {:?}: {e}", cfg.udp_addrs))
            })?;
            let addrs = sockets.addrs();
            // Room for every mix's add and remove plus every listener's, twice over.
            let (tx, rx) = rtrb::RingBuffer::new(4 * (max_mixes + cfg.max_listeners) + 16);
            let name = format!("monmix-shard-{i}");
            let make = {
                let (st, sp, en) = (stats.clone(), stop.clone(), ended_tx.clone());
                let (lifecycle, max_listeners) = (cfg.lifecycle, cfg.max_listeners);
                move || {
                    Shard::new(
                        name,
                        rx,
                        sockets,
                        st,
                        sp,
                        en,
                        lifecycle,
                        max_mixes,
                        max_listeners,
                    )
                }
            };
            if cfg.manual {
                manual.push(Box::new(make) as ShardMaker);
                shards.push(ShardHandle {
                    commands: Mutex::new(tx),
                    thread: std::thread::current(),
                    join: Mutex::new(None),
                    addrs,
                });
                continue;
            }
            let join = std::thread::Builder::new()
                .name(format!("monmix-shard-{i}"))
                .spawn(move || make().run())
                .map_err(|e| StreamError::Internal(format!("cannot start shard thread: {e}")))?;
            if !engine.wake_after_tick(join.thread().clone()) {
                tracing::warn!(
                    "engine has no room to wake another stream shard after its ticks; it \
                     runs on its idle timer (uneven packets)"
                );
            }
            shards.push(ShardHandle {
                commands: Mutex::new(tx),
                thread: join.thread().clone(),
                join: Mutex::new(Some(join)),
                addrs,
            });
        }
        drop(ended_tx);
        let svc = StreamService(Arc::new(Inner {
            engine,
            transport,
            stop,
            stats,
            manual: Mutex::new(manual),
            tables: Mutex::new(Tables {
                load: vec![0; n],
                ..Tables::default()
            }),
            shards,
            next_key: AtomicU64::new(1),
            reserved: AtomicUsize::new(0),
            cfg,
        }));
        spawn_reaper(Arc::downgrade(&svc.0), ended_rx)?;
        Ok(svc)
    }

    /// A service on the str0m transport (the one the server uses).
    pub fn with_str0m(engine: EngineHandle, cfg: StreamOptions) -> Result<Self, StreamError> {
        Self::new(engine, cfg, Arc::new(Str0mTransport::new()?))
    }

    pub fn stats(&self) -> &Arc<StreamStats> {
        &self.0.stats
    }

    pub fn config(&self) -> &StreamOptions {
        &self.0.cfg
    }

    /// The UDP addresses each shard streams from (tests aim garbage at them).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.0.shards.iter().flat_map(|s| s.addrs.clone()).collect()
    }

    /// With [`StreamOptions::manual`]: builds the shards on the calling thread, which then
    /// drives them with [`ManualShards::run_pass`]. Empty after the first call, or without
    /// `manual`.
    pub fn take_manual_shards(&self) -> ManualShards {
        let makers = std::mem::take(&mut *lock(&self.0.manual));
        ManualShards(makers.into_iter().map(|m| m()).collect())
    }

    /// Prometheus lines (`monmix_stream_*`) for `/metrics`.
    pub fn render_metrics(&self, p: &mut crate::metrics::PromText) {
        self.0.stats.render_prometheus(p)
    }

    /// Mixes currently held by shards (0 once every listener left and the shards caught up).
    pub fn active_encoders(&self) -> usize {
        StreamStats::get(&self.0.stats.active_mixes) as usize
    }

    /// Open sessions.
    pub fn sessions(&self) -> usize {
        lock(&self.0.tables).sessions.len()
    }

    /// True while session `id` is open.
    pub fn has_session(&self, id: &str) -> bool {
        lock(&self.0.tables).sessions.contains_key(id)
    }

    /// Answers `offer_sdp` and starts sending mix `slot` to the new listener. `on_end` runs
    /// once when the session ends, for any reason. Does not await anything: the answer is
    /// made here (ICE-lite host candidates need no gathering) and the peer handed to its
    /// shard, so a caller that is cancelled cannot leave half a session behind.
    pub async fn open(
        &self,
        slot: usize,
        offer_sdp: &str,
        on_end: OnEnd,
    ) -> Result<OpenedSession, StreamError> {
        let r = self.open_now(slot, offer_sdp, on_end);
        if r.is_err() {
            StreamStats::add(&self.0.stats.sessions_rejected, 1);
        }
        r
    }

    fn open_now(
        &self,
        slot: usize,
        offer_sdp: &str,
        on_end: OnEnd,
    ) -> Result<OpenedSession, StreamError> {
        let inner = &self.0;
        let max = inner.cfg.max_listeners;
        let max_mixes = inner.engine.config().max_mixes;
        if slot >= max_mixes {
            return Err(StreamError::Engine(EngineError::SlotOutOfRange {
                slot,
                max: max_mixes,
            }));
        }
        transport::precheck_offer(offer_sdp)?;
        inner
            .reserved
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| StreamError::TooManyListeners { max })?;
        let r = self.attach(slot, offer_sdp, on_end);
        if r.is_err() {
            inner.reserved.fetch_sub(1, Ordering::AcqRel);
        }
        r
    }

    /// Answers the offer for the mix's shard and hands the peer (and, for a mix's first
    /// listener, its tap and encoder) to that shard.
    fn attach(
        &self,
        slot: usize,
        offer_sdp: &str,
        on_end: OnEnd,
    ) -> Result<OpenedSession, StreamError> {
        let inner = &self.0;
        let mut t = lock(&inner.tables);
        let (shard, new_mix) = match t.mixes.get(&slot) {
            Some(m) => (m.shard, false),
            None => {
                let least = (0..t.load.len()).min_by_key(|&i| t.load[i]).unwrap_or(0);
                (least, true)
            }
        };
        let handle = inner
            .shards
            .get(shard)
            .ok_or_else(|| StreamError::Internal("no shard".into()))?;
        let (answer_sdp, peer) =
            inner
                .transport
                .accept(offer_sdp, &handle.addrs, Instant::now())?;
        let mut q = lock(&handle.commands);
        // A mix's add and its listener's must both fit, or neither is sent.
        if q.slots() < 2 {
            return Err(StreamError::Internal(
                "stream shard is not keeping up".into(),
            ));
        }
        if new_mix {
            let tap = inner.engine.attach(slot).map_err(|e| match e {
                EngineError::TooManyTaps { .. } => StreamError::TooManyListeners {
                    max: inner.cfg.max_listeners,
                },
                e => StreamError::Engine(e),
            })?;
            let encoder = MixEncoder::new(&inner.cfg.encoder)?;
            let _ = q.push(Command::AddMix { slot, tap, encoder });
            t.mixes.insert(
                slot,
                MixEntry {
                    shard,
                    listeners: 0,
                },
            );
        }
        let key = inner.next_key.fetch_add(1, Ordering::Relaxed);
        let _ = q.push(Command::AddPeer { key, slot, peer });
        drop(q);
        handle.thread.unpark();
        if let Some(m) = t.mixes.get_mut(&slot) {
            m.listeners += 1;
        }
        t.load[shard] += 1;
        let id = format!("{:032x}", rand::random::<u128>());
        t.by_key.insert(key, id.clone());
        t.sessions.insert(
            id.clone(),
            Session {
                slot,
                key,
                on_end: Some(on_end),
            },
        );
        StreamStats::add(&inner.stats.listeners, 1);
        StreamStats::add(&inner.stats.sessions_opened, 1);
        Ok(OpenedSession { id, answer_sdp })
    }

    /// Ends a session (WHEP DELETE). False if there was none with this id.
    pub async fn close(&self, id: &str) -> bool {
        self.close_now(id, true)
    }

    /// Removes the session, tells its shard (unless the shard ended it), and with its last
    /// listener drops the mix's tap and encoder. Runs `on_end`.
    fn close_now(&self, id: &str, tell_shard: bool) -> bool {
        let inner = &self.0;
        let mut t = lock(&inner.tables);
        let Some(mut s) = t.sessions.remove(id) else {
            return false;
        };
        t.by_key.remove(&s.key);
        let mut last = None;
        if let Some(m) = t.mixes.get_mut(&s.slot) {
            m.listeners = m.listeners.saturating_sub(1);
            let shard = m.shard;
            if let Some(l) = t.load.get_mut(shard) {
                *l = l.saturating_sub(1);
            }
            if t.mixes.get(&s.slot).is_some_and(|m| m.listeners == 0) {
                t.mixes.remove(&s.slot);
                last = Some(shard);
            }
            if let Some(h) = inner.shards.get(shard) {
                let mut q = lock(&h.commands);
                if tell_shard {
                    // Full only if the shard is stuck; it then drops the peer by its rules.
                    let _ = q.push(Command::RemovePeer { key: s.key });
                }
                if last.is_some() {
                    let _ = q.push(Command::RemoveMix { slot: s.slot });
                }
                drop(q);
                h.thread.unpark();
            }
        }
        drop(t);
        inner.reserved.fetch_sub(1, Ordering::AcqRel);
        StreamStats::sub(&inner.stats.listeners, 1);
        if let Some(f) = s.on_end.take() {
            f(id);
        }
        true
    }

    /// Ends every session and stops the shard threads.
    pub async fn shutdown(&self) {
        let ids: Vec<String> = lock(&self.0.tables).sessions.keys().cloned().collect();
        for id in ids {
            self.close_now(&id, true);
        }
        self.0.stop_shards();
    }
}

/// Builds a shard on the thread that will run it (a shard is `!Send`).
type ShardMaker = Box<dyn FnOnce() -> Shard + Send>;

/// Shards driven by hand (tests, benchmarks): see [`StreamOptions::manual`].
pub struct ManualShards(Vec<Shard>);

impl ManualShards {
    /// Runs one pass of every shard (commands, this tick's audio out, receives, timeouts)
    /// and returns when the next is due.
    pub fn run_pass(&mut self) -> Instant {
        let now = Instant::now();
        self.0
            .iter_mut()
            .map(|s| s.pass(now))
            .min()
            .unwrap_or(now + std::time::Duration::from_millis(20))
    }
}

impl Inner {
    fn stop_shards(&self) {
        self.stop.store(true, Ordering::Release);
        for s in &self.shards {
            s.thread.unpark();
            if let Some(j) = lock(&s.join).take() {
                // A panic there was already reported by the panic hook.
                drop(j.join());
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_shards();
    }
}

/// Ends the sessions whose shard dropped their peer (ICE/DTLS failure, timeouts). A thread,
/// not a task: the service may be built outside a runtime; it ends with the last shard.
fn spawn_reaper(
    svc: Weak<Inner>,
    mut ended: tokio::sync::mpsc::UnboundedReceiver<u64>,
) -> Result<(), StreamError> {
    std::thread::Builder::new()
        .name("monmix-stream-reaper".into())
        .spawn(move || {
            while let Some(key) = ended.blocking_recv() {
                let Some(inner) = svc.upgrade() else { break };
                let svc = StreamService(inner);
                let id = lock(&svc.0.tables).by_key.get(&key).cloned();
                if let Some(id) = id {
                    if svc.close_now(&id, false) {
                        tracing::debug!(session = %id, "listener session ended by its connection");
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(|e| StreamError::Internal(format!("cannot start stream reaper: {e}")))
}
