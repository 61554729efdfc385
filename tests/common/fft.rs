#![allow(dead_code)] // a shared helper file: each test binary uses part of it
//! Spectrum checks for tests: which tones reach a listener, and how loud.
//! Also included by `examples/whep_listen.rs` (`#[path]`).

use rustfft::{num_complex::Complex, FftPlanner};

pub const SAMPLE_RATE: f64 = 48_000.0;

/// Peak amplitude, in dBFS (1.0 = 0 dBFS), of the sine at `freq` Hz in `samples` (48 kHz).
///
/// Exact for tones on whole-Hz frequencies: the analysed length is the longest prefix
/// holding a whole number of cycles of `freq` (so it sits on an FFT bin), windowed with a
/// periodic Hann window (whose leakage from other on-bin tones two or more bins away is
/// exactly zero, and whose gain is corrected). Returns at least −300 dB.
pub fn tone_level_dbfs(samples: &[f32], freq: f64) -> f64 {
    let n = whole_cycles_len(samples.len(), freq);
    assert!(n > 0, "no samples to analyse");
    let mut buf: Vec<Complex<f64>> = samples[..n]
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            Complex::new(f64::from(s) * w, 0.0)
        })
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let bin = (freq * n as f64 / SAMPLE_RATE).round() as usize;
    // Hann's coherent gain is 1/2: amplitude = 2·|X[k]| / (n/2).
    let amplitude = 4.0 * buf[bin].norm() / n as f64;
    20.0 * amplitude.max(1e-15).log10()
}

/// Longest length ≤ `len` holding a whole number of cycles of an integer `freq`.
fn whole_cycles_len(len: usize, freq: f64) -> usize {
    let sr = SAMPLE_RATE as u64;
    if freq > 0.0 && freq.fract() == 0.0 {
        let period = sr / gcd(sr, freq as u64);
        let n = len / period as usize * period as usize;
        if n > 0 {
            return n;
        }
    }
    len
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Channel `ch` out of `channels`-interleaved samples.
pub fn channel(interleaved: &[f32], channels: usize, ch: usize) -> Vec<f32> {
    interleaved
        .iter()
        .skip(ch)
        .step_by(channels)
        .copied()
        .collect()
}

/// Asserts `level` is within ±`tol` dB of `want`, naming what was measured.
pub fn assert_level(what: &str, level: f64, want: f64, tol: f64) {
    assert!(
        (level - want).abs() <= tol,
        "{what}: {level:.2} dBFS, expected {want:.2} ± {tol}"
    );
}

/// Asserts the tone is absent (below `floor` dBFS).
pub fn assert_absent(what: &str, level: f64, floor: f64) {
    assert!(level < floor, "{what}: {level:.2} dBFS, expected < {floor}");
}
