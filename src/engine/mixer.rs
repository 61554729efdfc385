//! The mixing kernel: pure and synchronous, no threads or clocks, so every audible rule
//! (solo, pan, ramps, limiter, meters) is testable by feeding frames and reading frames.
//!
//! Everything is preallocated in [`Mixer::new`]; `set_params`, `process_input` and `mix`
//! never allocate, which is what lets the engine thread call them in real time.

use std::sync::Arc;

use super::kernel::{self, Coef};
use super::limiter::Limiter;
use super::pan::pan_gains;
use super::params::{EngineParams, MixParams};
use crate::audio::SAMPLE_RATE;
use crate::meters::{BlockStats, MeterBank, Meters};

/// Meters publish about every 50 ms (20 Hz readers see a fresh value each time).
const METER_WINDOW_SECONDS: f64 = 0.05;

const SILENT: Coef = [0.0, 0.0];

pub struct Mixer {
    channels: usize,
    frame_len: usize,
    max_mixes: usize,
    /// The current input frame, planar (channel c at `c·frame_len..`): mix loops read
    /// contiguous slices, which is what lets them vectorize.
    input: Vec<f32>,
    /// `(i+1)/frame_len`: the shape of a one-frame linear parameter ramp.
    ramp: Vec<f32>,
    /// Per slot × channel: where the coefficients should be (from the latest params).
    target: Vec<Coef>,
    /// Per slot × channel: where the last mixed frame of that slot ended. A ramp runs from
    /// here to `target`, so a change is smoothed even if params changed several times.
    current: Vec<Coef>,
    limiters: Vec<Limiter>,
    /// Planar stereo accumulators for the mix being computed.
    left: Vec<f32>,
    right: Vec<f32>,
    /// Scratch: channels with a constant non-zero coefficient in this frame (capacity
    /// `channels`, so pushing never allocates).
    flat: Vec<(usize, Coef)>,
    meters: MeterBank,
}

impl Mixer {
    /// Sizes are clamped to at least 1.
    pub fn new(channels: usize, frame_len: usize, max_mixes: usize) -> Self {
        let (channels, frame_len, max_mixes) =
            (channels.max(1), frame_len.max(1), max_mixes.max(1));
        let window = (METER_WINDOW_SECONDS * f64::from(SAMPLE_RATE) / frame_len as f64).round();
        Mixer {
            channels,
            frame_len,
            max_mixes,
            input: vec![0.0; channels * frame_len],
            ramp: (1..=frame_len)
                .map(|i| i as f32 / frame_len as f32)
                .collect(),
            target: vec![SILENT; max_mixes * channels],
            current: vec![SILENT; max_mixes * channels],
            limiters: vec![Limiter::new(SAMPLE_RATE as f32); max_mixes],
            left: vec![0.0; frame_len],
            right: vec![0.0; frame_len],
            flat: Vec::with_capacity(channels),
            meters: MeterBank::new(channels, max_mixes, window as usize),
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    pub fn max_mixes(&self) -> usize {
        self.max_mixes
    }

    /// The meters this mixer publishes to.
    pub fn meters(&self) -> &Arc<Meters> {
        self.meters.shared()
    }

    /// Takes a new snapshot: computes the target coefficients
    /// `gain · audible · master · pan(L|R)` of every slot and channel. Slots missing or
    /// `None` in `params`, and channels a mix does not list, are silent. The change is
    /// heard from the next `mix` of each slot, ramped across that frame.
    pub fn set_params(&mut self, params: &EngineParams) {
        self.update_params(params, None);
    }

    /// Like [`Mixer::set_params`], but skips the slots whose mix is the very same `Arc` as
    /// in `prev` (the snapshot these targets were computed from, still alive): one fader
    /// move recomputes one mix. Identity, not equality: nothing is compared channel by
    /// channel.
    pub fn update_params(&mut self, params: &EngineParams, prev: Option<&EngineParams>) {
        for (slot, targets) in self.target.chunks_exact_mut(self.channels).enumerate() {
            let new = params.mixes.get(slot).and_then(Option::as_ref);
            if let Some(prev) = prev {
                let old = prev.mixes.get(slot).and_then(Option::as_ref);
                let same = match (new, old) {
                    (None, None) => true,
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    _ => false,
                };
                if same {
                    continue;
                }
            }
            match new {
                None => targets.fill(SILENT),
                Some(mix) => fill_targets(mix, targets),
            }
        }
    }

    /// Loads one interleaved input frame (`channels × frame_len` samples) and meters it
    /// (pre-fader). A frame of the wrong length is replaced by silence and `false` returned.
    pub fn process_input(&mut self, frame: &[f32]) -> bool {
        let ok = frame.len() == self.input.len();
        if ok {
            kernel::deinterleave(frame, self.channels, &mut self.input);
        } else {
            self.input.fill(0.0);
        }
        self.meters.begin_frame();
        for (ch, plane) in self.input.chunks_exact(self.frame_len).enumerate() {
            self.meters.add_input(ch, BlockStats::of(plane));
        }
        ok
    }

    /// Writes the current frame of mix `slot` into `out` (stereo interleaved,
    /// `2 × frame_len` samples): the sum of its channels, coefficients ramped from the
    /// previous frame's, then the safety limiter, then the mix meter. Returns `false` (and
    /// writes silence) for a slot out of range or a wrong-sized `out`.
    pub fn mix(&mut self, slot: usize, out: &mut [f32]) -> bool {
        let n = self.frame_len;
        if slot >= self.max_mixes || out.len() != 2 * n {
            out.fill(0.0);
            return false;
        }
        let Mixer {
            channels,
            input,
            ramp,
            target,
            current,
            limiters,
            left,
            right,
            flat,
            meters,
            ..
        } = self;
        let coefs = slot * *channels..(slot + 1) * *channels;
        let plane = |ch: usize| &input[ch * n..(ch + 1) * n];
        left.fill(0.0);
        right.fill(0.0);
        flat.clear();
        for (ch, (cur, &tgt)) in current[coefs.clone()]
            .iter_mut()
            .zip(&target[coefs])
            .enumerate()
        {
            if *cur != tgt {
                kernel::add_ramped(left, right, plane(ch), *cur, tgt, ramp);
                *cur = tgt;
            } else if tgt != SILENT {
                flat.push((ch, tgt));
            }
        }
        let mut quads = flat.chunks_exact(4);
        for q in &mut quads {
            let xs = [plane(q[0].0), plane(q[1].0), plane(q[2].0), plane(q[3].0)];
            kernel::add4(left, right, xs, [q[0].1, q[1].1, q[2].1, q[3].1]);
        }
        for &(ch, c) in quads.remainder() {
            kernel::add1(left, right, plane(ch), c);
        }

        let stats = BlockStats::of(left).merge(BlockStats::of(right));
        let stats = if limiters[slot].process(left, right, stats.peak) {
            BlockStats::of(left).merge(BlockStats::of(right))
        } else {
            stats
        };
        meters.add_mix(slot, stats);
        kernel::interleave(left, right, out);
        true
    }
}

fn fill_targets(mix: &MixParams, targets: &mut [Coef]) {
    let any_solo = mix.any_solo();
    for (t, ch) in targets
        .iter_mut()
        .zip(mix.channels.iter().map(Some).chain(std::iter::repeat(None)))
    {
        *t = match ch {
            Some(c) if c.audible(any_solo) => {
                let g = c.gain * mix.master;
                let (pl, pr) = pan_gains(c.pan);
                [g * pl, g * pr]
            }
            _ => SILENT,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::params::ChannelParams;

    fn one_channel(gain: f32) -> EngineParams {
        let ch = ChannelParams {
            gain,
            pan: 0.0,
            subscribed: true,
            muted: false,
            soloed: false,
        };
        EngineParams::new(vec![Some(MixParams {
            channels: vec![ch],
            master: 1.0,
        })])
    }

    fn max_step(x: &[f32]) -> f32 {
        x.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn gain_change_ramps_without_a_step() {
        let n = 480;
        let mut m = Mixer::new(1, n, 1);
        let dc = vec![0.5f32; n];
        let mut left = Vec::new();
        for gain in [0.0, 1.0, 1.0] {
            m.set_params(&one_channel(gain));
            m.process_input(&dc);
            let mut out = vec![0.0; 2 * n];
            assert!(m.mix(0, &mut out));
            left.extend(out.iter().step_by(2));
        }
        let target = 0.5 * pan_gains(0.0).0;
        let slope = target / n as f32;
        assert!(left[..n].iter().all(|&s| s == 0.0));
        let step = max_step(&left);
        assert!(
            step <= slope * 1.01,
            "largest step {step}, ramp slope {slope}"
        );
        assert!(
            (left[2 * n - 1] - target).abs() < 1e-6,
            "ramp ends on target"
        );
        assert!(
            left[2 * n..].iter().all(|&s| s == target),
            "next frame is flat at the target"
        );
    }

    #[test]
    fn unused_slots_and_unlisted_channels_are_silent() {
        let mut m = Mixer::new(2, 4, 2);
        m.set_params(&one_channel(1.0));
        for _ in 0..2 {
            m.process_input(&[1.0; 8]);
        }
        let mut out = [9.0; 8];
        assert!(m.mix(1, &mut out));
        assert_eq!(out, [0.0; 8], "slot 1 has no params");
        assert!(!m.mix(2, &mut out), "slot out of range");
        assert!(!m.process_input(&[1.0; 3]), "wrong frame length");
    }

    /// A snapshot that shares slot 0 with the previous one and changes slot 1 gives the
    /// same targets as a full rebuild, and slot 0 is not recomputed.
    #[test]
    fn update_recomputes_only_new_mixes() {
        let mix = |gain: f32| {
            Some(Arc::new(MixParams {
                channels: vec![ChannelParams {
                    gain,
                    pan: 0.0,
                    subscribed: true,
                    muted: false,
                    soloed: false,
                }],
                master: 1.0,
            }))
        };
        let p1 = EngineParams {
            mixes: vec![mix(0.5), mix(0.25), None],
        };
        let p2 = EngineParams {
            mixes: vec![p1.mixes[0].clone(), mix(1.5), mix(0.1)],
        };
        let mut full = Mixer::new(1, 480, 3);
        full.set_params(&p2);
        let mut step = Mixer::new(1, 480, 3);
        step.set_params(&p1);
        // Poison slot 0: a recompute would overwrite it, a skip leaves it.
        let poisoned = step.target[0];
        step.target[0] = SILENT;
        step.update_params(&p2, Some(&p1));
        assert_eq!(step.target[0], SILENT, "slot 0 was recomputed");
        step.target[0] = poisoned;
        assert_eq!(step.target, full.target);
    }
}
