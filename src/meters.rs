//! Level meters: per input channel (pre-fader) and per mix (post-limiter), RMS and peak.
//! The engine writes them; the control plane (WebSocket, OSC) and `/metrics` read them.
//! They live outside `engine` so readers depend on the meters, not on the engine.
//!
//! The engine accumulates privately over a ~50 ms window and then publishes each level as
//! `f32` bits in an `AtomicU32`: readers (the ~20 Hz meter broadcaster, /metrics) just load,
//! and the audio thread never waits for them. A torn read across rms/peak is harmless.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Published level, linear full scale (1.0 = 0 dBFS).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Level {
    pub rms: f32,
    pub peak: f32,
}

#[derive(Debug, Default)]
struct AtomicLevel {
    rms: AtomicU32,
    peak: AtomicU32,
}

impl AtomicLevel {
    fn load(&self) -> Level {
        Level {
            rms: f32::from_bits(self.rms.load(Ordering::Relaxed)),
            peak: f32::from_bits(self.peak.load(Ordering::Relaxed)),
        }
    }

    fn store(&self, level: Level) {
        self.rms.store(level.rms.to_bits(), Ordering::Relaxed);
        self.peak.store(level.peak.to_bits(), Ordering::Relaxed);
    }
}

/// The shared, read-side view. Cheap to clone via `Arc`.
#[derive(Debug)]
pub struct Meters {
    inputs: Box<[AtomicLevel]>,
    mixes: Box<[AtomicLevel]>,
}

impl Meters {
    pub fn new(channels: usize, mixes: usize) -> Self {
        Meters {
            inputs: (0..channels).map(|_| AtomicLevel::default()).collect(),
            mixes: (0..mixes).map(|_| AtomicLevel::default()).collect(),
        }
    }

    /// Last published level of input channel `ch`, before any fader.
    pub fn input(&self, ch: usize) -> Option<Level> {
        self.inputs.get(ch).map(AtomicLevel::load)
    }

    /// Last published level of mix `slot`, after the limiter (what the listener hears).
    /// A mix nobody listens to is not computed and reads as silence.
    pub fn mix(&self, slot: usize) -> Option<Level> {
        self.mixes.get(slot).map(AtomicLevel::load)
    }

    pub fn channels(&self) -> usize {
        self.inputs.len()
    }

    pub fn mixes(&self) -> usize {
        self.mixes.len()
    }
}

/// Sum of squares and peak of a block; what the meters and the limiter's fast path need.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BlockStats {
    pub sum_sq: f64,
    pub peak: f32,
    pub samples: usize,
}

impl BlockStats {
    /// One pass over `x`. Eight independent lanes so the compiler can vectorize the
    /// reductions (a single running sum would have to stay in order, i.e. scalar).
    pub fn of(x: &[f32]) -> Self {
        const LANES: usize = 8;
        let mut sq = [0.0f32; LANES];
        let mut pk = [0.0f32; LANES];
        let chunks = x.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for j in 0..LANES {
                sq[j] += c[j] * c[j];
                pk[j] = pk[j].max(c[j].abs());
            }
        }
        for (j, v) in tail.iter().enumerate() {
            sq[j] += v * v;
            pk[j] = pk[j].max(v.abs());
        }
        BlockStats {
            sum_sq: sq.iter().map(|&s| f64::from(s)).sum(),
            peak: pk.iter().fold(0.0, |m, &p| m.max(p)),
            samples: x.len(),
        }
    }

    pub fn merge(self, o: BlockStats) -> Self {
        BlockStats {
            sum_sq: self.sum_sq + o.sum_sq,
            peak: self.peak.max(o.peak),
            samples: self.samples + o.samples,
        }
    }

    fn level(&self) -> Level {
        let rms = if self.samples == 0 {
            0.0
        } else {
            (self.sum_sq / self.samples as f64).sqrt() as f32
        };
        Level {
            rms,
            peak: self.peak,
        }
    }
}

/// Engine-side accumulators behind a [`Meters`]; preallocated, never allocates.
#[derive(Debug)]
pub(crate) struct MeterBank {
    shared: Arc<Meters>,
    inputs: Vec<BlockStats>,
    mixes: Vec<BlockStats>,
    /// Frames accumulated in the current window.
    frames: usize,
    /// Frames per window (~50 ms).
    window: usize,
}

impl MeterBank {
    pub(crate) fn new(channels: usize, mixes: usize, window_frames: usize) -> Self {
        MeterBank {
            shared: Arc::new(Meters::new(channels, mixes)),
            inputs: vec![BlockStats::default(); channels],
            mixes: vec![BlockStats::default(); mixes],
            frames: 0,
            window: window_frames.max(1),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Meters> {
        &self.shared
    }

    /// Starts a new frame; publishes and resets first if the window is complete.
    pub(crate) fn begin_frame(&mut self) {
        if self.frames >= self.window {
            for (acc, out) in self.inputs.iter_mut().zip(self.shared.inputs.iter()) {
                out.store(acc.level());
                *acc = BlockStats::default();
            }
            for (acc, out) in self.mixes.iter_mut().zip(self.shared.mixes.iter()) {
                out.store(acc.level());
                *acc = BlockStats::default();
            }
            self.frames = 0;
        }
        self.frames += 1;
    }

    pub(crate) fn add_input(&mut self, ch: usize, s: BlockStats) {
        if let Some(acc) = self.inputs.get_mut(ch) {
            *acc = acc.merge(s);
        }
    }

    pub(crate) fn add_mix(&mut self, slot: usize, s: BlockStats) {
        if let Some(acc) = self.mixes.get_mut(slot) {
            *acc = acc.merge(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_naive_computation() {
        let x: Vec<f32> = (0..483)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 60.0)
            .collect();
        let s = BlockStats::of(&x);
        let naive: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
        assert!((s.sum_sq - naive).abs() < 1e-3 * naive);
        assert_eq!(s.peak, x.iter().fold(0.0f32, |m, v| m.max(v.abs())));
        assert_eq!(s.samples, 483);
    }

    #[test]
    fn bank_publishes_only_when_a_window_is_complete() {
        let mut bank = MeterBank::new(1, 1, 2);
        let m = bank.shared().clone();
        let block = [0.5f32, -0.5, 0.5, -0.5];
        for _ in 0..2 {
            bank.begin_frame();
            bank.add_input(0, BlockStats::of(&block));
            bank.add_mix(0, BlockStats::of(&[0.25; 4]));
        }
        assert_eq!(m.input(0), Some(Level::default()), "not published yet");
        bank.begin_frame();
        assert_eq!(
            m.input(0),
            Some(Level {
                rms: 0.5,
                peak: 0.5
            })
        );
        assert_eq!(m.mix(0).map(|l| l.peak), Some(0.25));
        assert_eq!(m.input(1), None);
    }
}
