//! The encoder worker pool: Opus-encodes each listened-to mix once per engine tick and hands
//! the packet to every listener of that mix.
//!
//! Why threads and not tokio tasks: encoding is CPU work on a hard real-time beat; on a
//! blocking-free thread it never waits behind network tasks, and the engine can wake it
//! directly. Each worker is the registered reader of all its mixes' [`MixTap`]s (the frame
//! pipe remembers the first thread that waits on it), so one `unpark` from the engine's
//! push wakes it; it then drains every tap that has a frame, encodes, and fans out.
//!
//! Why the fan-out runs right here, on the worker: a packet reaches a listener's transport
//! through [`ListenerConn::send`], which only queues it (non-blocking). Doing that inline
//! costs one queue push per listener and no extra wake-up; the alternative (a per-mix
//! `broadcast` channel with one async task per listener) adds a task wake-up and a channel
//! receive per listener per packet, which is exactly the per-listener overhead we are
//! trying to remove. A listener whose queue is full skips the packet (counted); it never
//! delays the others.
//!
//! Steady-state allocations on this path: the packet `Bytes` (one per mix per frame); the
//! transport may allocate on its own (the webrtc crate does).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::encoder::{EncoderConfig, MixEncoder};
use super::stats::StreamStats;
use super::transport::{ListenerConn, OpusPacket, SendOutcome};
use super::StreamError;
use crate::engine::MixTap;

/// Frames of backlog a late encoder still encodes (in a burst); older ones are dropped so
/// latency stays bounded after a stall.
const MAX_BURST: usize = 2;
/// Idle wake-up period: only a safety net (the engine and the control side unpark).
const IDLE_PARK: Duration = Duration::from_millis(50);

/// State of one mix shared by the control side and its worker.
pub(crate) struct MixShared {
    /// Current listeners. Replaced (copy on write) by the control side on join/leave; the
    /// worker loads it once per packet without locking.
    pub(crate) listeners: ArcSwap<Vec<Arc<dyn ListenerConn>>>,
    /// Set when the last listener left: the worker drops the tap and encoder.
    pub(crate) retired: AtomicBool,
    /// Index of the worker that encodes this mix.
    pub(crate) worker: usize,
}

/// What a worker owns for one mix.
struct Job {
    shared: Arc<MixShared>,
    tap: MixTap,
    enc: MixEncoder,
    /// Two frame buffers: a burst keeps the last `MAX_BURST` frames popped.
    bufs: [Vec<f32>; MAX_BURST],
    /// Media time of the next frame, in samples.
    timestamp: u32,
    frame_len: u32,
    /// Engine-side drops (tap full) already accounted for.
    tap_drops_seen: u64,
}

struct WorkerHandle {
    tx: mpsc::Sender<Job>,
    thread: Thread,
    join: Option<JoinHandle<()>>,
    /// Mixes on this worker, for placement.
    load: Arc<AtomicUsize>,
}

/// A fixed set of encoder threads.
pub(crate) struct EncoderPool {
    workers: Vec<WorkerHandle>,
    stop: Arc<AtomicBool>,
    stats: Arc<StreamStats>,
    cfg: EncoderConfig,
}

impl EncoderPool {
    pub(crate) fn new(
        n: usize,
        cfg: EncoderConfig,
        stats: Arc<StreamStats>,
    ) -> Result<Self, StreamError> {
        cfg.validate()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for i in 0..n.max(1) {
            let (tx, rx) = mpsc::channel();
            let load = Arc::new(AtomicUsize::new(0));
            let w = Worker {
                rx,
                jobs: Vec::new(),
                stop: stop.clone(),
                stats: stats.clone(),
                load: load.clone(),
            };
            let join = std::thread::Builder::new()
                .name(format!("monmix-enc-{i}"))
                .spawn(move || w.run())
                .map_err(|e| StreamError::Internal(format!("cannot start encoder thread: {e}")))?;
            workers.push(WorkerHandle {
                tx,
                thread: join.thread().clone(),
                join: Some(join),
                load,
            });
        }
        Ok(EncoderPool {
            workers,
            stop,
            stats,
            cfg,
        })
    }

    /// Starts encoding the mix `tap` listens to, on the least loaded worker. Returns the
    /// shared state through which listeners are added and the mix is retired.
    pub(crate) fn add(
        &self,
        tap: MixTap,
        first: Arc<dyn ListenerConn>,
    ) -> Result<Arc<MixShared>, StreamError> {
        let enc = MixEncoder::new(&self.cfg)?;
        let (worker, handle) = self
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.load.load(Ordering::Relaxed))
            .ok_or_else(|| StreamError::Internal("no encoder worker".into()))?;
        let shared = Arc::new(MixShared {
            listeners: ArcSwap::from_pointee(vec![first]),
            retired: AtomicBool::new(false),
            worker,
        });
        let frame_samples = tap.frame_samples();
        let job = Job {
            shared: shared.clone(),
            tap_drops_seen: tap.dropped(),
            tap,
            enc,
            bufs: std::array::from_fn(|_| vec![0.0; frame_samples]),
            timestamp: 0,
            frame_len: (frame_samples / 2) as u32,
        };
        handle.load.fetch_add(1, Ordering::Relaxed);
        StreamStats::add(&self.stats.active_mixes, 1);
        if handle.tx.send(job).is_err() {
            handle.load.fetch_sub(1, Ordering::Relaxed);
            StreamStats::sub(&self.stats.active_mixes, 1);
            return Err(StreamError::Internal("encoder worker stopped".into()));
        }
        handle.thread.unpark();
        Ok(shared)
    }

    /// Tells a mix's worker to let it go (its tap and encoder are freed on that thread).
    pub(crate) fn retire(&self, mix: &MixShared) {
        mix.retired.store(true, Ordering::Release);
        if let Some(w) = self.workers.get(mix.worker) {
            w.thread.unpark();
        }
    }

    /// Mixes currently held by workers (retired ones are counted until the worker drops them).
    pub(crate) fn mixes(&self) -> usize {
        self.workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .sum()
    }

    /// Stops and joins every worker. Idempotent.
    pub(crate) fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        for w in &mut self.workers {
            w.thread.unpark();
            if let Some(j) = w.join.take() {
                // A panic there was already reported by the panic hook.
                drop(j.join());
            }
        }
    }
}

impl Drop for EncoderPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Worker {
    rx: mpsc::Receiver<Job>,
    jobs: Vec<Job>,
    stop: Arc<AtomicBool>,
    stats: Arc<StreamStats>,
    load: Arc<AtomicUsize>,
}

impl Worker {
    fn run(mut self) {
        while !self.stop.load(Ordering::Acquire) {
            while let Ok(mut job) = self.rx.try_recv() {
                // Waiting on the tap (with a deadline already past) registers this thread as
                // its reader, so the engine's pushes unpark us from now on.
                let wake = Instant::now();
                let got = job.tap.recv(&mut job.bufs[0], wake);
                if got {
                    emit(&self.stats, &mut job, 0, wake);
                }
                self.jobs.push(job);
            }
            let mut busy = false;
            let mut i = 0;
            while i < self.jobs.len() {
                if self.jobs[i].shared.retired.load(Ordering::Acquire) {
                    // Dropping the job drops its tap: the engine stops computing the mix.
                    drop(self.jobs.swap_remove(i));
                    self.load.fetch_sub(1, Ordering::Relaxed);
                    StreamStats::sub(&self.stats.active_mixes, 1);
                    continue;
                }
                busy |= self.service(i);
                i += 1;
            }
            if !busy {
                std::thread::park_timeout(IDLE_PARK);
            }
        }
        StreamStats::sub(&self.stats.active_mixes, self.jobs.len() as u64);
        self.load.store(0, Ordering::Relaxed);
    }

    /// Encodes and sends whatever frames job `i` has waiting. True if it had any.
    fn service(&mut self, i: usize) -> bool {
        let wake = Instant::now();
        let job = &mut self.jobs[i];
        let mut n = 0usize;
        while job.tap.try_recv(&mut job.bufs[n % MAX_BURST]) {
            n += 1;
        }
        // Frames the engine could not push because we were late.
        let tap_drops = job.tap.dropped();
        let engine_dropped = tap_drops - job.tap_drops_seen;
        job.tap_drops_seen = tap_drops;
        if n == 0 && engine_dropped == 0 {
            return false;
        }
        let skipped = n.saturating_sub(MAX_BURST) as u64 + engine_dropped;
        if skipped > 0 {
            StreamStats::add(&self.stats.frames_dropped, skipped);
            // Keep media time true to the wall clock: the receiver conceals the gap.
            job.timestamp = job
                .timestamp
                .wrapping_add((skipped as u32).wrapping_mul(job.frame_len));
        }
        let first = n.saturating_sub(MAX_BURST);
        for k in first..n {
            emit(&self.stats, job, k % MAX_BURST, wake);
        }
        true
    }
}

/// Encodes `job.bufs[b]` and hands the packet to every listener.
fn emit(stats: &StreamStats, job: &mut Job, b: usize, wake: Instant) {
    let t0 = Instant::now();
    let encoded = job.enc.encode(&job.bufs[b]);
    stats.encode_time.record(t0.elapsed());
    let ts = job.timestamp;
    job.timestamp = ts.wrapping_add(job.frame_len);
    let payload = match encoded {
        Ok(p) => p,
        Err(_) => {
            StreamStats::add(&stats.encode_errors, 1);
            return;
        }
    };
    StreamStats::add(&stats.frames_encoded, 1);
    let packet = OpusPacket {
        payload,
        timestamp: ts,
        samples: job.frame_len,
    };
    let (mut sent, mut dropped) = (0u64, 0u64);
    for l in job.shared.listeners.load().iter() {
        match l.send(&packet) {
            SendOutcome::Sent => sent += 1,
            SendOutcome::Dropped => dropped += 1,
            SendOutcome::NotReady => {}
        }
    }
    if sent > 0 {
        StreamStats::add(&stats.packets_sent, sent);
        StreamStats::add(&stats.bytes_sent, sent * packet.payload.len() as u64);
        stats.internal_latency.record(wake.elapsed());
    }
    if dropped > 0 {
        StreamStats::add(&stats.packets_dropped, dropped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ChannelParams, Engine, EngineConfig, EngineParams, MixParams};
    use crate::stream::transport::ConnState;
    use std::sync::Mutex;
    use tokio::sync::watch;

    /// Records what it is sent; `full` makes it refuse like a full transport queue.
    struct Fake {
        got: Mutex<Vec<OpusPacket>>,
        full: AtomicBool,
        state: watch::Sender<ConnState>,
    }

    impl Fake {
        fn new() -> Arc<Fake> {
            Arc::new(Fake {
                got: Mutex::new(Vec::new()),
                full: AtomicBool::new(false),
                state: watch::channel(ConnState::Connected).0,
            })
        }
    }

    #[async_trait::async_trait]
    impl ListenerConn for Fake {
        fn send(&self, p: &OpusPacket) -> SendOutcome {
            if self.full.load(Ordering::Relaxed) {
                return SendOutcome::Dropped;
            }
            self.got.lock().expect("lock").push(p.clone());
            SendOutcome::Sent
        }
        fn state(&self) -> watch::Receiver<ConnState> {
            self.state.subscribe()
        }
        async fn close(&self) {}
    }

    #[test]
    fn one_encode_shared_by_all_listeners_and_freed_when_retired() {
        let (mut w, r) = crate::frames::pipe(2 * 480, 16);
        let engine = Engine::spawn(
            EngineConfig {
                channels: 2,
                frame_len: 480,
                max_mixes: 2,
                max_taps: 2,
            },
            r,
        )
        .expect("engine");
        let ch = ChannelParams {
            gain: 1.0,
            pan: 0.0,
            subscribed: true,
            muted: false,
            soloed: false,
        };
        engine.publish(EngineParams {
            mixes: vec![Some(MixParams {
                channels: vec![ch, ch],
                master: 1.0,
            })],
        });
        let stats = Arc::new(StreamStats::default());
        let mut pool = EncoderPool::new(2, EncoderConfig::default(), stats.clone()).expect("pool");
        let (a, b, c) = (Fake::new(), Fake::new(), Fake::new());
        let mix = pool
            .add(engine.attach(0).expect("tap"), a.clone())
            .expect("add");
        mix.listeners.store(Arc::new(vec![
            a.clone() as Arc<dyn ListenerConn>,
            b.clone(),
            c.clone(),
        ]));
        c.full.store(true, Ordering::Relaxed);
        let frame: Vec<f32> = (0..960).map(|i| 0.1 * (i as f32 * 0.03).sin()).collect();
        for _ in 0..50 {
            w.push(&frame);
            std::thread::sleep(Duration::from_millis(2));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while b.got.lock().expect("lock").len() < 40 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (ga, gb) = (a.got.lock().expect("lock"), b.got.lock().expect("lock"));
        assert!(ga.len() >= 40, "{}", ga.len());
        assert_eq!(ga.len(), gb.len());
        for (x, y) in ga.iter().zip(gb.iter()) {
            // The very same buffer: encoded once, shared, not copied per listener.
            assert_eq!(x.payload.as_ptr(), y.payload.as_ptr());
            assert_eq!(x.timestamp, y.timestamp);
        }
        // Media time advances by one frame per packet (no drops here).
        assert!(ga
            .windows(2)
            .all(|p| p[1].timestamp.wrapping_sub(p[0].timestamp) == 480));
        let encoded = StreamStats::get(&stats.frames_encoded);
        assert_eq!(encoded, ga.len() as u64);
        assert_eq!(StreamStats::get(&stats.packets_sent), 2 * encoded);
        assert_eq!(StreamStats::get(&stats.packets_dropped), encoded);
        assert_eq!(stats.encode_time.count(), encoded);
        drop((ga, gb));
        assert_eq!(pool.mixes(), 1);
        pool.retire(&mix);
        let deadline = Instant::now() + Duration::from_secs(2);
        while pool.mixes() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pool.mixes(), 0);
        assert_eq!(StreamStats::get(&stats.active_mixes), 0);
        pool.shutdown();
        engine.shutdown();
    }
}
