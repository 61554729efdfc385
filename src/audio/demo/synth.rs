//! The band's instruments: sound and envelope types, wavetables (harmonic and sung-vowel)
//! and the precomputed drum and click one-shots.

use super::SR;

/// Wavetable length (a power of two; one guard sample is stored after it).
pub(super) const TABLE: usize = 2048;

/// What an event sounds like.
#[derive(Debug, Clone, Copy)]
pub(super) enum Sound {
    /// Plays a precomputed one-shot (drums, click).
    Shot { shot: usize },
    /// Wavetable oscillator with an envelope and optional vibrato.
    Osc {
        table: usize,
        /// Cycles per sample.
        freq: f64,
        env: Env,
        /// Relative frequency deviation of the vibrato (0 = none).
        vibrato: f64,
    },
    /// Two-operator FM at ratio 1 with a decaying index: an electric-piano-like bell.
    Fm { freq: f64, index: f32, env: Env },
}

/// Attack (linear), exponential decay while held, then a linear release.
#[derive(Debug, Clone, Copy)]
pub(super) struct Env {
    attack: u32,
    /// Decay rate per sample (0 = sustain).
    decay: f32,
    hold: u32,
    release: u32,
}

impl Env {
    pub(super) fn new(attack_s: f64, decay_tau_s: f64, hold: u32, release_s: f64) -> Self {
        Env {
            attack: secs(attack_s).max(1),
            decay: if decay_tau_s > 0.0 {
                (1.0 / (decay_tau_s * SR)) as f32
            } else {
                0.0
            },
            hold,
            release: secs(release_s).max(1),
        }
    }

    pub(super) fn len(&self) -> u32 {
        self.hold + self.release
    }

    // Called per sample from `Demo::voice`, now in another module: keep it inlinable.
    #[inline]
    pub(super) fn at(&self, dt: u32) -> f32 {
        let t = dt as f32;
        let a = if dt < self.attack {
            t / self.attack as f32
        } else {
            1.0
        };
        let d = if self.decay > 0.0 {
            (-t * self.decay).exp()
        } else {
            1.0
        };
        let r = if dt >= self.hold {
            (1.0 - (dt - self.hold) as f32 / self.release as f32).max(0.0)
        } else {
            1.0
        };
        a * d * r
    }
}

fn secs(s: f64) -> u32 {
    (s * SR).round() as u32
}

/// MIDI note number to cycles per sample.
pub(super) fn midi(m: i32) -> f64 {
    440.0 * 2f64.powf((m as f64 - 69.0) / 12.0) / SR
}

/// Deterministic white noise (xorshift32), uniform in [-1, 1).
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> f32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x as f64 / u32::MAX as f64 * 2.0 - 1.0) as f32
    }
}

fn normalize(v: &mut [f32]) {
    let peak = v.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    if peak > 0.0 {
        v.iter_mut().for_each(|s| *s /= peak);
    }
}

/// A single-cycle wavetable from (harmonic, amplitude) pairs, peak-normalized.
pub(super) fn harmonic_table(harmonics: &[(usize, f64)]) -> Vec<f32> {
    let mut t: Vec<f32> = (0..=TABLE)
        .map(|i| {
            let x = i as f64 / TABLE as f64 * std::f64::consts::TAU;
            harmonics
                .iter()
                .map(|&(k, a)| a * (k as f64 * x).sin())
                .sum::<f64>() as f32
        })
        .collect();
    normalize(&mut t);
    t
}

/// A sung vowel at `f0` Hz: a 1/k source spectrum shaped by three formant resonances.
pub(super) fn vowel_table(f0: f64, vowel: usize) -> Vec<f32> {
    // (F1, F2, F3) in Hz for a, o, e, u, i (rough adult averages).
    const FORMANTS: [[f64; 3]; 5] = [
        [800.0, 1150.0, 2900.0],
        [450.0, 800.0, 2830.0],
        [530.0, 1840.0, 2480.0],
        [325.0, 700.0, 2530.0],
        [300.0, 2200.0, 3000.0],
    ];
    const GAIN: [f64; 3] = [1.0, 0.6, 0.25];
    const HALF_BW: [f64; 3] = [110.0, 130.0, 180.0];
    let f = FORMANTS[vowel % FORMANTS.len()];
    let max_k = ((4500.0 / f0) as usize).clamp(1, 40);
    let harmonics: Vec<(usize, f64)> = (1..=max_k)
        .map(|k| {
            let fk = k as f64 * f0;
            let shape: f64 = (0..3)
                .map(|i| GAIN[i] / (1.0 + ((fk - f[i]) / HALF_BW[i]).powi(2)))
                .sum();
            (k, (0.15 + shape) / k as f64)
        })
        .collect();
    harmonic_table(&harmonics)
}

// Wavetable ids.
pub(super) const SINE: usize = 0;
pub(super) const BASS: usize = 1;
pub(super) const PAD: usize = 2;

// One-shot ids.
pub(super) const CLICK: usize = 0;
pub(super) const CLICK_ACCENT: usize = 1;
pub(super) const KICK: usize = 2;
pub(super) const SNARE: usize = 3;
pub(super) const HAT_A: usize = 4;
pub(super) const HAT_B: usize = 5;
pub(super) const HAT_OPEN: usize = 6;

pub(super) fn make_shots() -> Vec<Vec<f32>> {
    let mut noise = Noise(0x5eed_1234);
    let tau = std::f64::consts::TAU;
    let click = |hz: f64| -> Vec<f32> {
        let mut v: Vec<f32> = (0..secs(0.03))
            .map(|n| {
                let t = n as f64 / SR;
                ((tau * hz * t).sin() * (-t / 0.006).exp()) as f32
            })
            .collect();
        normalize(&mut v);
        v
    };
    let kick = {
        let mut v: Vec<f32> = (0..secs(0.45))
            .map(|n| {
                let t = n as f64 / SR;
                // f(t) = 48 + 110 e^(-t/0.035) Hz, integrated for the phase.
                let phase = 48.0 * t + 110.0 * 0.035 * (1.0 - (-t / 0.035).exp());
                let env = (t / 0.001).min(1.0) * (-t / 0.16).exp();
                ((tau * phase).sin() * env) as f32
            })
            .collect();
        normalize(&mut v);
        v
    };
    let snare = {
        let mut hp = 0.0f32;
        let mut prev = 0.0f32;
        let mut v: Vec<f32> = (0..secs(0.3))
            .map(|n| {
                let t = n as f64 / SR;
                let body = 0.6 * (tau * 185.0 * t).sin() * (-t / 0.04).exp()
                    + 0.3 * (tau * 330.0 * t).sin() * (-t / 0.03).exp();
                // One-pole high-pass around 1.5 kHz on the noise.
                let x = noise.next();
                hp = 0.82 * (hp + x - prev);
                prev = x;
                let snares = hp as f64 * (-t / 0.07).exp();
                (body + 0.9 * snares) as f32
            })
            .collect();
        normalize(&mut v);
        v
    };
    let mut hat = |dur: f64, tau_s: f64| -> Vec<f32> {
        // Third difference of white noise: a steep (+18 dB/oct) high-pass, so nearly all
        // the energy sits above 5 kHz, like a real hi-hat.
        let (mut x1, mut x2, mut x3) = (0.0f32, 0.0f32, 0.0f32);
        let mut v: Vec<f32> = (0..secs(dur))
            .map(|n| {
                let t = n as f64 / SR;
                let x = noise.next();
                let y = x - 3.0 * x1 + 3.0 * x2 - x3;
                x3 = x2;
                x2 = x1;
                x1 = x;
                (y as f64 * (-t / tau_s).exp()) as f32
            })
            .collect();
        normalize(&mut v);
        v
    };
    let hat_a = hat(0.08, 0.014);
    let hat_b = hat(0.08, 0.014);
    let hat_open = hat(0.4, 0.11);
    vec![
        click(1200.0),
        click(1800.0),
        kick,
        snare,
        hat_a,
        hat_b,
        hat_open,
    ]
}
