//! The mixing engine: one real-time thread, clocked by its input, that turns each input
//! frame into one stereo frame per listened-to mix. No I/O, no network, no tokio.
//!
//! - [`params`]: the snapshots the store publishes; [`mixer`]: the pure kernel;
//!   [`kernel`]: its vectorized loops; [`pan`], [`limiter`], [`crate::meters`] (outside, read by control too): one job each;
//!   [`taps`]: listeners of a mix; `worker`: the engine thread's loop.
//!
//! Real-time contract of the engine thread, in the steady state: no allocation, no
//! deallocation, no lock, no logging, no syscall but park/unpark and the clock. Parameter
//! snapshots arrive through an `ArcSwap`; new taps through an `rtrb` control queue; and
//! everything the thread lets go of (old snapshots, writers of dropped taps) goes back
//! through an `rtrb` garbage queue, so memory is only ever freed on control threads.
//! Debug builds run each iteration under `assert_no_alloc` to prove it.

pub mod kernel;
pub mod limiter;
pub mod mixer;
pub mod pan;
pub mod params;
pub mod taps;
mod worker;

pub use crate::meters::{Level, Meters};
pub use limiter::{Limiter, CEILING};
pub use mixer::Mixer;
pub use params::{ChannelParams, EngineParams, MixParams};
pub use taps::MixTap;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::audio::SAMPLE_RATE;
use crate::frames::{self, FrameReader, FrameWriter};
use taps::TapTable;
use worker::Worker;

/// Frames a tap can hold: 80 ms at 10 ms frames, room for a jittery encoder thread.
pub const TAP_CAPACITY: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// Input channels per frame.
    pub channels: usize,
    /// Samples per channel per frame (480 = 10 ms at 48 kHz).
    pub frame_len: usize,
    /// Mix slots (one per client), all preallocated.
    pub max_mixes: usize,
    /// Listeners across all mixes, all preallocated.
    pub max_taps: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            channels: 32,
            frame_len: 480,
            max_mixes: 64,
            max_taps: 128,
        }
    }
}

impl EngineOptions {
    /// Duration of one frame at 48 kHz.
    pub fn frame_period(&self) -> Duration {
        Duration::from_secs_f64(self.frame_len as f64 / f64::from(SAMPLE_RATE))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("invalid engine config: {0}")]
    InvalidConfig(&'static str),
    #[error("input frames have {got} samples, engine expects {expected} (channels x frame_len)")]
    InputShape { expected: usize, got: usize },
    #[error("mix slot {slot} out of range (max {max})")]
    SlotOutOfRange { slot: usize, max: usize },
    #[error("too many listeners (max {max})")]
    TooManyTaps { max: usize },
    #[error("engine thread is not running")]
    Stopped,
    #[error("cannot start engine thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Counters of the engine thread, readable from anywhere (metrics, tests).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Frames processed (input or silence).
    pub ticks: AtomicU64,
    /// Ticks that played silence because no input frame came in time.
    pub underruns: AtomicU64,
    /// Input frames skipped to keep the backlog bounded.
    pub overruns: AtomicU64,
    /// Ticks whose processing took longer than one frame period.
    pub late_ticks: AtomicU64,
    /// Frames dropped because a tap was full (its reader is slow).
    pub tap_drops: AtomicU64,
    /// Longest tick so far, in nanoseconds.
    pub max_tick_ns: AtomicU64,
}

/// A plain copy of [`EngineStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStatsSnapshot {
    pub ticks: u64,
    pub underruns: u64,
    pub overruns: u64,
    pub late_ticks: u64,
    pub tap_drops: u64,
    pub max_tick_ns: u64,
}

impl EngineStats {
    pub fn snapshot(&self) -> EngineStatsSnapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineStatsSnapshot {
            ticks: l(&self.ticks),
            underruns: l(&self.underruns),
            overruns: l(&self.overruns),
            late_ticks: l(&self.late_ticks),
            tap_drops: l(&self.tap_drops),
            max_tick_ns: l(&self.max_tick_ns),
        }
    }

    #[inline]
    fn bump(a: &AtomicU64) {
        a.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the engine thread hands back to be freed elsewhere.
#[expect(dead_code, reason = "held only so it is dropped on a control thread")]
enum Garbage {
    Tap(FrameWriter),
    Params(Arc<EngineParams>),
}

/// State both sides see.
struct Shared {
    /// The latest snapshot; the engine compares its pointer each tick. The engine keeps
    /// its own `Arc` of the snapshot in use and, on a change, hands the old one back
    /// through the garbage queue, so the last reference is always dropped on a control
    /// thread. (Keeping "the last few" published snapshots alive on the publisher side
    /// would only make that likely: a burst of publishes can outrun any fixed history.)
    params: ArcSwap<EngineParams>,
    stats: EngineStats,
    meters: Arc<Meters>,
    stop: AtomicBool,
    /// Taps installed or on their way: bounds the table and the control queue, so the
    /// engine always has room for what it receives.
    taps_in_use: AtomicUsize,
    /// Threads woken once after every tick, when all its mixes are in their taps (the
    /// stream shards): one wake-up per tick, not one per mix.
    tick_waiters: [std::sync::OnceLock<std::thread::Thread>; MAX_TICK_WAITERS],
}

/// Most threads [`EngineHandle::wake_after_tick`] can register.
pub const MAX_TICK_WAITERS: usize = 16;

/// Namespace of [`Engine::spawn`].
pub struct Engine;

impl Engine {
    /// Starts the engine thread reading `input` (frames of `channels × frame_len`
    /// interleaved samples). It runs until [`EngineHandle::shutdown`], the last handle is
    /// dropped, or `input`'s writer is dropped.
    pub fn spawn(cfg: EngineOptions, input: FrameReader) -> Result<EngineHandle, EngineError> {
        if cfg.channels == 0 || cfg.frame_len == 0 || cfg.max_mixes == 0 || cfg.max_taps == 0 {
            return Err(EngineError::InvalidConfig("every size must be at least 1"));
        }
        let expected = cfg.channels * cfg.frame_len;
        if input.frame_samples() != expected {
            return Err(EngineError::InputShape {
                expected,
                got: input.frame_samples(),
            });
        }
        let mixer = Mixer::new(cfg.channels, cfg.frame_len, cfg.max_mixes);
        let shared = Arc::new(Shared {
            params: ArcSwap::from_pointee(EngineParams::default()),
            stats: EngineStats::default(),
            meters: mixer.meters().clone(),
            stop: AtomicBool::new(false),
            taps_in_use: AtomicUsize::new(0),
            tick_waiters: Default::default(),
        });
        let (control_tx, control_rx) = rtrb::RingBuffer::new(cfg.max_taps);
        // Holds every tap (at most max_taps) plus the one snapshot retired between two
        // publishes (publish drains first); the margin is slack.
        let (garbage_tx, garbage_rx) = rtrb::RingBuffer::new(cfg.max_taps + 8);
        let worker = Worker {
            params: shared.params.load_full(),
            mixer,
            input,
            frame: vec![0.0; expected],
            out: vec![0.0; 2 * cfg.frame_len],
            taps: TapTable::new(cfg.max_taps, cfg.max_mixes),
            control: control_rx,
            garbage: garbage_tx,
            shared: shared.clone(),
            period: cfg.frame_period(),
        };
        let thread = std::thread::Builder::new()
            .name("monmix-engine".into())
            .spawn(move || worker.run())?;
        Ok(EngineHandle(Arc::new(Inner {
            cfg,
            shared,
            control: Mutex::new(control_tx),
            garbage: Mutex::new(garbage_rx),
            thread: Mutex::new(Some(thread)),
        })))
    }
}

/// Control-side handle: publish params, attach listeners, read stats and meters.
/// Cheap to clone; the locks inside are only ever taken by control threads.
#[derive(Clone)]
pub struct EngineHandle(Arc<Inner>);

struct Inner {
    cfg: EngineOptions,
    shared: Arc<Shared>,
    control: Mutex<rtrb::Producer<(usize, FrameWriter)>>,
    /// Also serializes publishers, which bounds what the garbage queue can hold.
    garbage: Mutex<rtrb::Consumer<Garbage>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl EngineHandle {
    pub fn config(&self) -> &EngineOptions {
        &self.0.cfg
    }

    pub fn stats(&self) -> &EngineStats {
        &self.0.shared.stats
    }

    pub fn meters(&self) -> &Arc<Meters> {
        &self.0.shared.meters
    }

    /// Wakes `thread` after every tick, once all of the tick's mixes are in their taps.
    /// False if [`MAX_TICK_WAITERS`] threads are registered already.
    pub fn wake_after_tick(&self, thread: std::thread::Thread) -> bool {
        let mut t = Some(thread);
        for w in &self.0.shared.tick_waiters {
            if let Some(th) = t.take() {
                if let Err(th) = w.set(th) {
                    t = Some(th);
                } else {
                    return true;
                }
            }
        }
        false
    }

    /// Makes `params` the engine's snapshot from its next tick on (ramped in over a frame).
    pub fn publish(&self, params: EngineParams) {
        // Held across the swap: publishers are serialized, so between two drains the
        // engine can hand back at most one snapshot (the garbage queue is sized for it).
        let garbage = self.0.collect_garbage();
        // The previous snapshot is freed here, on this thread, unless the engine still
        // uses it; then the engine hands it back through the garbage queue.
        drop(self.0.shared.params.swap(Arc::new(params)));
        drop(garbage);
    }

    /// Starts listening to mix `slot`: frames flow from the next tick on.
    pub fn attach(&self, slot: usize) -> Result<MixTap, EngineError> {
        let Inner { cfg, shared, .. } = &*self.0;
        if slot >= cfg.max_mixes {
            return Err(EngineError::SlotOutOfRange {
                slot,
                max: cfg.max_mixes,
            });
        }
        drop(self.0.collect_garbage());
        if !self.is_running() {
            return Err(EngineError::Stopped);
        }
        shared
            .taps_in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cfg.max_taps).then_some(n + 1)
            })
            .map_err(|_| EngineError::TooManyTaps { max: cfg.max_taps })?;
        let (writer, reader) = frames::pipe(2 * cfg.frame_len, TAP_CAPACITY);
        if lock(&self.0.control).push((slot, writer)).is_err() {
            shared.taps_in_use.fetch_sub(1, Ordering::AcqRel);
            return Err(EngineError::Stopped);
        }
        Ok(MixTap { slot, reader })
    }

    /// True while the engine thread runs.
    pub fn is_running(&self) -> bool {
        lock(&self.0.thread)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Stops the engine thread and waits for it. Idempotent.
    pub fn shutdown(&self) {
        self.0.shutdown();
    }
}

impl Inner {
    /// Frees what the engine thread handed back. Returns the queue, still locked.
    fn collect_garbage(&self) -> MutexGuard<'_, rtrb::Consumer<Garbage>> {
        let mut g = lock(&self.garbage);
        while let Ok(item) = g.pop() {
            drop(item);
        }
        g
    }

    fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::Release);
        let thread = lock(&self.thread).take();
        if let Some(t) = thread {
            t.thread().unpark();
            // A panic on the engine thread was already reported by the panic hook.
            drop(t.join());
        }
        drop(self.collect_garbage());
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_and_tap_can_move_between_threads() {
        fn shareable<T: Clone + Send + Sync>() {}
        fn movable<T: Send>() {}
        shareable::<EngineHandle>();
        movable::<MixTap>();
        shareable::<Arc<Meters>>();
    }
}
