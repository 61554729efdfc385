//! `tones`: channel k carries a sine at 10·p Hz, p the k-th prime from 31
//! (310, 370, 410, 430, 470, 530, 590, 610, 670, 710 Hz, …) at −20 dBFS peak.
//! Tests and outside checkers find channels by these exact frequencies.

use super::{Generator, SAMPLE_RATE};

/// −20 dBFS as a peak amplitude.
pub const TONE_AMPLITUDE: f32 = 0.1;

/// The k-th tone frequency in Hz (k 0-based).
pub fn tone_frequency(k: usize) -> f64 {
    10.0 * nth_prime_from_31(k) as f64
}

fn nth_prime_from_31(k: usize) -> u64 {
    let is_prime = |n: u64| n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0);
    (31..).filter(|&n| is_prime(n)).nth(k).unwrap_or(31)
}

/// Why a rotating phasor and not `sin()` per sample: a 32-channel tones input called `sin`
/// 1.5 million times a second, more than the whole server spends on one listener. The
/// phasor costs four multiplies per sample; it restarts from the exact phase at every
/// `render`, so rounding never accumulates and the frequency stays exact for hours.
pub struct Tones {
    /// Phase increment per sample, per channel, in cycles.
    step: Vec<f64>,
    /// Phase in cycles [0, 1) at the start of the next render; f64 so hours of running
    /// keep the exact frequency.
    phase: Vec<f64>,
    /// (cos, sin) of one sample's rotation, per channel.
    rot: Vec<(f64, f64)>,
}

impl Tones {
    pub fn new(channels: usize) -> Self {
        let step: Vec<f64> = (0..channels)
            .map(|k| tone_frequency(k) / SAMPLE_RATE as f64)
            .collect();
        let rot = step
            .iter()
            .map(|&st: &f64| {
                let w = std::f64::consts::TAU * st;
                (w.cos(), w.sin())
            })
            .collect();
        Tones {
            step,
            phase: vec![0.0; channels],
            rot,
        }
    }
}

impl Generator for Tones {
    fn channels(&self) -> usize {
        self.step.len()
    }

    fn render(&mut self, out: &mut [f32]) {
        let n = self.step.len();
        if n == 0 {
            return;
        }
        let frames = out.len() / n;
        for k in 0..n {
            let w = std::f64::consts::TAU * self.phase[k];
            let (mut c, mut sn) = (w.cos(), w.sin());
            let (rc, rs) = self.rot[k];
            for i in 0..frames {
                out[i * n + k] = TONE_AMPLITUDE * sn as f32;
                let c2 = c * rc - sn * rs;
                sn = sn * rc + c * rs;
                c = c2;
            }
            self.phase[k] = (self.phase[k] + self.step[k] * frames as f64).fract();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_follow_primes_from_31() {
        let f: Vec<f64> = (0..10).map(tone_frequency).collect();
        assert_eq!(
            f,
            [310.0, 370.0, 410.0, 430.0, 470.0, 530.0, 590.0, 610.0, 670.0, 710.0]
        );
    }

    #[test]
    fn renders_minus_20_dbfs_sines() {
        let mut t = Tones::new(2);
        let mut buf = vec![0.0f32; 2 * 4800];
        t.render(&mut buf);
        let peak = buf.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.1).abs() < 1e-3, "peak {peak}");
        // 310 Hz: 31 cycles in 0.1 s -> 62 zero crossings on channel 0
        let ch0: Vec<f32> = buf.iter().step_by(2).copied().collect();
        let crossings = ch0
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((61..=63).contains(&crossings), "{crossings}");
    }

    #[test]
    fn phasor_matches_sin_over_many_renders() {
        let mut t = Tones::new(3);
        let mut buf = vec![0.0f32; 3 * 480];
        let mut n = 0usize;
        for _ in 0..1000 {
            t.render(&mut buf);
            for (i, f) in buf.chunks_exact(3).enumerate() {
                for (k, &v) in f.iter().enumerate() {
                    let ph = tone_frequency(k) * (n + i) as f64 / 48_000.0;
                    let want = 0.1 * (std::f64::consts::TAU * ph).sin();
                    assert!((f64::from(v) - want).abs() < 1e-5, "ch{k} sample {}", n + i);
                }
            }
            n += 480;
        }
    }
}
