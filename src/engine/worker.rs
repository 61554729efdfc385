//! The engine thread: its real-time loop (wait for input, tick, wake the shards), switching
//! to new parameter snapshots and installing or retiring taps.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::taps::TapTable;
use super::{EngineParams, EngineStats, Garbage, Mixer, Shared};
use crate::frames::{FrameReader, FrameWriter};

/// A backlog above this many input frames is shed (oldest first): latency stays bounded
/// after a stall instead of the whole band hearing themselves late from then on.
const MAX_BACKLOG: usize = 3;
/// Without input for this many frame periods, the engine plays a frame of silence.
const UNDERRUN_PERIODS: u32 = 2;

/// Everything the engine thread owns.
pub(super) struct Worker {
    pub(super) mixer: Mixer,
    pub(super) input: FrameReader,
    /// The input frame being processed (interleaved).
    pub(super) frame: Vec<f32>,
    /// The mix frame being sent (stereo interleaved).
    pub(super) out: Vec<f32>,
    pub(super) taps: TapTable,
    /// The snapshot the mixer's targets come from. Held so its pointer identifies it.
    pub(super) params: Arc<EngineParams>,
    pub(super) control: rtrb::Consumer<(usize, FrameWriter)>,
    pub(super) garbage: rtrb::Producer<Garbage>,
    pub(super) shared: Arc<Shared>,
    pub(super) period: Duration,
}

impl Worker {
    pub(super) fn run(mut self) {
        crate::rt::promote_current("monmix-engine", crate::rt::RtRole::Engine);
        // First use of arc-swap on a thread registers a thread-local node (allocates once).
        drop(self.shared.params.load());
        let mut deadline = Instant::now() + self.period * UNDERRUN_PERIODS;
        while !self.shared.stop.load(Ordering::Acquire) {
            // `assert_no_alloc` is a no-op in release builds; in debug builds with its
            // allocator installed, any allocation or free here aborts the process.
            if !assert_no_alloc::assert_no_alloc(|| self.iteration(&mut deadline)) {
                break;
            }
        }
    }

    /// Waits for the next input frame (or plays silence) and processes it. False = stop.
    fn iteration(&mut self, deadline: &mut Instant) -> bool {
        let stats = &self.shared.stats;
        while self.input.frames_available() > MAX_BACKLOG && self.input.skip() {
            EngineStats::bump(&stats.overruns);
        }
        if self.input.pop_until(&mut self.frame, *deadline) {
            *deadline = Instant::now() + self.period * UNDERRUN_PERIODS;
        } else if self.input.is_closed() || self.shared.stop.load(Ordering::Acquire) {
            return false;
        } else {
            // Keep listeners fed at the frame rate while the input is away; after a long
            // stall (suspend) start afresh rather than burst out the missed frames.
            self.frame.fill(0.0);
            EngineStats::bump(&stats.underruns);
            let now = Instant::now();
            *deadline += self.period;
            if *deadline + self.period < now {
                *deadline = now + self.period;
            }
        }
        let start = Instant::now();
        self.tick();
        for t in self
            .shared
            .tick_waiters
            .iter()
            .map_while(std::sync::OnceLock::get)
        {
            t.unpark();
        }
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let stats = &self.shared.stats;
        EngineStats::bump(&stats.ticks);
        stats.max_tick_ns.fetch_max(ns, Ordering::Relaxed);
        if ns > self.period.as_nanos() as u64 {
            EngineStats::bump(&stats.late_ticks);
        }
        true
    }

    fn tick(&mut self) {
        self.apply_params();
        self.mixer.process_input(&self.frame);
        self.service_taps();
        let mut drops = 0;
        for slot in 0..self.mixer.max_mixes() {
            if self.taps.is_active(slot) {
                self.mixer.mix(slot, &mut self.out);
                drops += self.taps.push(slot, &self.out);
            }
        }
        if drops > 0 {
            self.shared
                .stats
                .tap_drops
                .fetch_add(drops, Ordering::Relaxed);
        }
    }

    /// Switches to a newly published snapshot, handing the old one back for freeing.
    fn apply_params(&mut self) {
        // Checked first so the old snapshot can always be handed back; if not, the change
        // waits a tick rather than freeing memory here.
        if self.garbage.slots() == 0 {
            return;
        }
        let latest = self.shared.params.load();
        if Arc::ptr_eq(&latest, &self.params) {
            return;
        }
        let old = std::mem::replace(&mut self.params, Arc::clone(&latest));
        // `latest` may own a reference (arc-swap upgrades a guard when a writer races);
        // `self.params` holds another, so dropping it here never frees.
        drop(latest);
        self.mixer.update_params(&self.params, Some(&old));
        if let Err(rtrb::PushError::Full(g)) = self.garbage.push(Garbage::Params(old)) {
            // Unreachable (slot checked above, and this thread is the only producer);
            // keep it alive rather than free on the audio thread.
            std::mem::forget(g);
        }
    }

    /// Installs new taps and retires abandoned ones.
    fn service_taps(&mut self) {
        while self.taps.has_room() {
            let Ok((slot, w)) = self.control.pop() else {
                break;
            };
            if let Err(w) = self.taps.install(slot, w) {
                // Unreachable (slot checked by attach, room checked above): hand it back.
                self.retire_tap(w);
            }
        }
        while self.garbage.slots() > 0 {
            let Some(w) = self.taps.take_abandoned() else {
                break;
            };
            self.retire_tap(w);
        }
    }

    fn retire_tap(&mut self, w: FrameWriter) {
        self.shared.taps_in_use.fetch_sub(1, Ordering::AcqRel);
        if let Err(rtrb::PushError::Full(g)) = self.garbage.push(Garbage::Tap(w)) {
            std::mem::forget(g); // unreachable: callers checked for a free slot
        }
    }
}
