//! The demo band: channel layout, levels, determinism, seamless loop, and that the parts
//! sit where a band's parts sit in the spectrum.

use monmix::audio::demo::{Demo, CHANNELS, CHANNEL_NAMES, LOOP_SAMPLES};
use monmix::audio::Generator;
use rustfft::{num_complex::Complex, FftPlanner};

const SR: f64 = 48_000.0;

fn render(d: &mut Demo, frames: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; frames * CHANNELS];
    // Render in engine-sized frames, as the clock thread does.
    for chunk in out.chunks_mut(480 * CHANNELS) {
        d.render(chunk);
    }
    out
}

fn channel(buf: &[f32], ch: usize) -> Vec<f32> {
    buf.iter().skip(ch).step_by(CHANNELS).copied().collect()
}

fn db(x: f64) -> f64 {
    20.0 * x.max(1e-12).log10()
}

/// Fraction of the signal's energy in [lo, hi) Hz.
fn energy_fraction(x: &[f32], lo: f64, hi: f64) -> f64 {
    let n = x.len();
    let mut buf: Vec<Complex<f64>> = x.iter().map(|&s| Complex::new(s as f64, 0.0)).collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let (mut inside, mut total) = (0.0, 0.0);
    for (k, c) in buf.iter().enumerate().take(n / 2 + 1).skip(1) {
        let f = k as f64 * SR / n as f64;
        let e = c.norm_sqr();
        total += e;
        if f >= lo && f < hi {
            inside += e;
        }
    }
    inside / total
}

#[test]
fn eight_channels_with_signal_and_headroom() {
    let mut d = Demo::new();
    assert_eq!(d.channels(), 8);
    assert_eq!(CHANNEL_NAMES.len(), 8);
    let buf = render(&mut d, 4 * 48_000);
    for (ch, name) in CHANNEL_NAMES.iter().enumerate() {
        let x = channel(&buf, ch);
        let rms = (x.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        let peak = x.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        eprintln!(
            "ch {ch} {name:7} rms {:6.1} dBFS peak {:6.1} dBFS",
            db(rms),
            db(peak as f64)
        );
        assert!(db(rms) > -50.0, "{name}: rms {} dBFS", db(rms));
        assert!(peak < 0.5, "{name}: peak {peak}");
        assert!(peak > 0.05, "{name}: peak {peak} is too quiet");
    }
}

#[test]
fn full_mix_of_the_whole_loop_stays_below_full_scale() {
    let mut d = Demo::new();
    let t = std::time::Instant::now();
    let buf = render(&mut d, LOOP_SAMPLES as usize);
    eprintln!(
        "rendered the 19.2 s loop in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    let peak = buf
        .chunks_exact(CHANNELS)
        .map(|f| f.iter().sum::<f32>().abs())
        .fold(0.0f32, f32::max);
    eprintln!("sum of all channels peaks at {:.1} dBFS", db(peak as f64));
    assert!(peak < 1.0, "mix peak {peak}");
}

#[test]
fn deterministic() {
    let a = render(&mut Demo::new(), 48_000);
    let b = render(&mut Demo::new(), 48_000);
    assert_eq!(a, b);
    assert!(a.iter().any(|&s| s != 0.0));
}

#[test]
fn loop_point_is_seamless() {
    let mut d = Demo::new();
    let extra = 24_000usize;
    let buf = render(&mut d, LOOP_SAMPLES as usize + extra);
    let head = &buf[..extra * CHANNELS];
    let again = &buf[LOOP_SAMPLES as usize * CHANNELS..];
    let max_diff = head
        .iter()
        .zip(again)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max_diff < 1e-6, "loop restarts differently: {max_diff}");
    // And the tails ringing over the loop end are there, not cut: the last samples
    // before the wrap flow into the first ones (no step larger than the music has).
    assert_eq!(d.position(), extra as u32);
}

#[test]
fn bass_is_low_and_hi_hat_is_high() {
    let mut d = Demo::new();
    // 8 bars of 4/4 at 100 BPM: take 2^20 samples (~21.8 s) for the FFT.
    let buf = render(&mut d, 1 << 20);
    let bass = energy_fraction(&channel(&buf, 4), 0.0, 250.0);
    let hat = energy_fraction(&channel(&buf, 3), 5_000.0, 24_001.0);
    let kick = energy_fraction(&channel(&buf, 1), 0.0, 200.0);
    eprintln!("bass <250 Hz {bass:.3}, hi-hat >5 kHz {hat:.3}, kick <200 Hz {kick:.3}");
    assert!(bass > 0.8, "bass energy below 250 Hz: {bass}");
    assert!(hat > 0.8, "hi-hat energy above 5 kHz: {hat}");
    assert!(kick > 0.7, "kick energy below 200 Hz: {kick}");
}

#[test]
fn render_does_not_allocate() {
    let mut d = Demo::new();
    let mut buf = vec![0.0f32; 480 * CHANNELS];
    // Warm up, then check a whole loop's worth of frames.
    d.render(&mut buf);
    for _ in 0..(LOOP_SAMPLES as usize / 480 / 8) {
        assert_no_alloc::assert_no_alloc(|| d.render(&mut buf));
    }
}
