//! Per-mix safety limiter: protects ears and the Opus encoder from a mix that sums above
//! full scale. It is a *safety* device, not a sound: below the ceiling it must not touch
//! the signal at all (bit-identical), so a correct mix is never coloured by it.

/// −1 dBFS: leaves headroom for the Opus encoder's own overshoot.
pub const CEILING: f32 = 0.891_250_9;

/// Release time constant: fast enough to recover between phrases, slow enough not to
/// modulate a sustained note audibly.
const RELEASE_SECONDS: f32 = 0.05;

/// Once the gain is this close to 1.0 it snaps to exactly 1.0, so the limiter returns to
/// its bit-identical pass-through instead of creeping towards 1.0 forever.
const SNAP: f32 = 1e-4;

/// Stereo-linked (one gain for L and R, so the image does not shift), instant attack,
/// exponential release.
#[derive(Clone, Debug)]
pub struct Limiter {
    /// Gain applied to the last sample; 1.0 = idle.
    gain: f32,
    /// Per-sample release coefficient, from the sample rate.
    release: f32,
}

impl Limiter {
    pub fn new(sample_rate: f32) -> Self {
        Limiter {
            gain: 1.0,
            release: 1.0 - (-1.0 / (RELEASE_SECONDS * sample_rate)).exp(),
        }
    }

    /// Current gain (1.0 when idle).
    pub fn gain(&self) -> f32 {
        self.gain
    }

    /// Limits one planar stereo block in place. `peak` is `max |sample|` over both
    /// channels, which the caller already has from metering; it lets an idle limiter skip
    /// the (serial, unvectorizable) per-sample loop. Returns whether samples were changed.
    pub fn process(&mut self, left: &mut [f32], right: &mut [f32], peak: f32) -> bool {
        if self.gain == 1.0 && peak <= CEILING {
            return false;
        }
        let mut g = self.gain;
        for (l, r) in left.iter_mut().zip(right.iter_mut()) {
            g += (1.0 - g) * self.release;
            if 1.0 - g < SNAP {
                g = 1.0;
            }
            let p = l.abs().max(r.abs());
            if p * g > CEILING {
                g = CEILING / p;
            }
            *l *= g;
            *r *= g;
        }
        self.gain = g;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SR: f32 = 48_000.0;

    fn sine(amplitude: f32, freq: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| amplitude * (std::f32::consts::TAU * freq * i as f32 / SR).sin())
            .collect()
    }

    #[test]
    fn below_ceiling_passes_bit_identical() {
        let mut lim = Limiter::new(SR);
        let orig = sine(0.1, 440.0, 48_000);
        let (mut l, mut r) = (orig.clone(), orig.clone());
        for (bl, br) in l.chunks_mut(480).zip(r.chunks_mut(480)) {
            let peak = bl
                .iter()
                .chain(br.iter())
                .fold(0.0f32, |m, s| m.max(s.abs()));
            assert!(!lim.process(bl, br, peak));
        }
        assert!(l.iter().zip(&orig).all(|(a, b)| a.to_bits() == b.to_bits()));
        assert_eq!(r, orig);
    }

    #[test]
    fn loud_sine_is_held_under_ceiling_then_released_to_exactly_one() {
        let mut lim = Limiter::new(SR);
        let hot = sine(1.995, 430.0, 48_000); // +6 dBFS
        let (mut l, mut r) = (hot.clone(), vec![0.0; hot.len()]);
        for (bl, br) in l.chunks_mut(480).zip(r.chunks_mut(480)) {
            assert!(lim.process(bl, br, 2.0));
        }
        let over = l.iter().skip(1).map(|s| s.abs()).fold(0.0f32, f32::max);
        assert!(over <= 0.8913, "peak {over}");
        let tail_peak = l[40_000..].iter().map(|s| s.abs()).fold(0.0f32, f32::max);
        assert!(tail_peak > 0.88, "settles near the ceiling: {tail_peak}");
        assert!(lim.gain() < 0.9);

        // Back to a quiet signal: the gain returns to exactly 1.0 and then passes it as is.
        let quiet = sine(0.1, 430.0, 48_000);
        let (mut l, mut r) = (quiet.clone(), quiet.clone());
        lim.process(&mut l, &mut r, 0.1);
        assert_eq!(lim.gain(), 1.0);
        let (mut l2, mut r2) = (quiet.clone(), quiet.clone());
        assert!(!lim.process(&mut l2, &mut r2, 0.1));
        assert_eq!(l2, quiet);
    }
}
