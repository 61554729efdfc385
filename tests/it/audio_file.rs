//! `file:PATH` inputs: exact samples, looping, resampling to 48 kHz, clear errors.

use std::path::Path;
use std::time::{Duration, Instant};

use monmix::audio::file::WavLoop;
use monmix::audio::{open, AudioError, InputOptions, InputSpec};
use rustfft::{num_complex::Complex, FftPlanner};

fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize, f: impl Fn(usize, usize) -> f64) {
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..frames {
        for c in 0..spec.channels as usize {
            let x = f(n, c);
            match (spec.sample_format, spec.bits_per_sample) {
                (hound::SampleFormat::Float, _) => w.write_sample(x as f32).unwrap(),
                (_, 16) => w.write_sample((x * 32768.0).round() as i16).unwrap(),
                (_, bits) => w
                    .write_sample((x * (1i64 << (bits - 1)) as f64).round() as i32)
                    .unwrap(),
            }
        }
    }
    w.finalize().unwrap();
}

fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    }
}

/// A distinct, exactly representable value per (frame, channel) in 16 bits.
fn ramp(n: usize, c: usize) -> f64 {
    (((n * 3 + c * 1000) % 2000) as f64 - 1000.0) / 32768.0
}

#[test]
fn three_channel_file_plays_exact_samples_and_loops() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.wav");
    let frames = 1000; // not a multiple of the frame length: the loop wraps mid-frame
    write_wav(&path, spec(3, 48_000, 16, false), frames, ramp);

    let opts = InputOptions {
        frame_len: 240,
        channels: None,
    };
    let mut input = open(&InputSpec::File(path.clone()), &opts).unwrap();
    assert_eq!(input.channels, 3);
    assert!(
        input.description.contains("three.wav"),
        "{}",
        input.description
    );
    let mut got = Vec::new();
    let mut frame = vec![0.0f32; 3 * 240];
    let deadline = Instant::now() + Duration::from_secs(3);
    while got.len() < 3 * 2600 {
        assert!(input.reader.pop_until(&mut frame, deadline));
        got.extend_from_slice(&frame);
    }
    for (i, s) in got.chunks_exact(3).enumerate().take(2600) {
        let n = i % frames;
        for (c, &v) in s.iter().enumerate() {
            assert_eq!(v as f64, ramp(n, c), "frame {i} ch {c}");
        }
    }
}

#[test]
fn all_sample_formats_decode_to_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let value =
        |n: usize, c: usize| ((n as f64 * 0.01 + c as f64).sin() * 0.5 * 256.0).round() / 256.0;
    for (bits, float) in [(16, false), (24, false), (32, false), (32, true)] {
        let path = dir.path().join(format!("f{bits}{float}.wav"));
        write_wav(&path, spec(2, 48_000, bits, float), 500, value);
        let w = WavLoop::open(&path).unwrap();
        assert_eq!(w.frames(), 500);
        for (i, s) in w.samples().chunks_exact(2).enumerate() {
            for (c, &v) in s.iter().enumerate() {
                assert!(
                    (v as f64 - value(i, c)).abs() < 1e-6,
                    "{bits} {float} {i} {c}"
                );
            }
        }
    }
}

fn peak_frequency(x: &[f32], rate: f64) -> f64 {
    let n = x.len();
    let mut buf: Vec<Complex<f64>> = x
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            // Hann window for a clean peak.
            let w = 0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / n as f64).cos();
            Complex::new(s as f64 * w, 0.0)
        })
        .collect();
    FftPlanner::new().plan_fft_forward(n).process(&mut buf);
    let k = (1..n / 2)
        .max_by(|&a, &b| buf[a].norm().total_cmp(&buf[b].norm()))
        .unwrap();
    k as f64 * rate / n as f64
}

#[test]
fn a_44k1_file_comes_out_at_48k_with_the_same_pitch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cd.wav");
    let frames = 44_100; // one second
    write_wav(&path, spec(2, 44_100, 16, false), frames, |n, c| {
        let f = if c == 0 { 1000.0 } else { 440.0 };
        0.5 * (std::f64::consts::TAU * f * n as f64 / 44_100.0).sin()
    });
    let w = WavLoop::open(&path).unwrap();
    assert_eq!(w.frames(), 48_000, "one second at 48 kHz");
    assert!(w.description().contains("resampled from 44100 Hz"));
    let left: Vec<f32> = w.samples().iter().step_by(2).copied().collect();
    let right: Vec<f32> = w.samples().iter().skip(1).step_by(2).copied().collect();
    let fl = peak_frequency(&left, 48_000.0);
    let fr = peak_frequency(&right, 48_000.0);
    assert!((fl - 1000.0).abs() <= 2.0, "left {fl} Hz");
    assert!((fr - 440.0).abs() <= 2.0, "right {fr} Hz");
    // Level preserved and the loop seam is smooth: no sample-to-sample jump larger
    // than a 1 kHz sine at 0.5 can make (2*pi*1000/48000*0.5 = 0.065).
    let peak = left.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!((peak - 0.5).abs() < 0.02, "peak {peak}");
    let mut wrapped = left.clone();
    wrapped.push(left[0]);
    let max_step = wrapped
        .windows(2)
        .map(|p| (p[1] - p[0]).abs())
        .fold(0.0f32, f32::max);
    assert!(max_step < 0.07, "step {max_step}");

    // And through open(): frames flow at 48 kHz framing.
    let mut input = open(&InputSpec::File(path), &InputOptions::default()).unwrap();
    let mut frame = vec![0.0f32; 2 * 480];
    assert!(input
        .reader
        .pop_until(&mut frame, Instant::now() + Duration::from_secs(2)));
}

#[test]
fn garbage_empty_and_missing_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wav");
    std::fs::write(&garbage, b"this is not a wave file at all, just text").unwrap();
    let empty = dir.path().join("empty.wav");
    write_wav(&empty, spec(2, 48_000, 16, false), 0, |_, _| 0.0);
    let missing = dir.path().join("missing.wav");

    for (path, problem) in [
        (&garbage, "not a valid WAV file"),
        (&empty, "no audio"),
        (&missing, "cannot read"),
    ] {
        let err = match open(&InputSpec::File(path.clone()), &InputOptions::default()) {
            Ok(_) => panic!("{} opened", path.display()),
            Err(e) => e,
        };
        assert!(matches!(err, AudioError::File { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains(problem), "{msg}");
    }
}

#[test]
fn channel_option_maps_file_channels() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.wav");
    write_wav(&path, spec(3, 48_000, 16, false), 480, ramp);
    let opts = InputOptions {
        frame_len: 480,
        channels: Some(2),
    };
    let mut input = open(&InputSpec::File(path), &opts).unwrap();
    assert_eq!(input.channels, 2);
    let mut frame = vec![0.0f32; 2 * 480];
    assert!(input
        .reader
        .pop_until(&mut frame, Instant::now() + Duration::from_secs(2)));
    for (n, s) in frame.chunks_exact(2).enumerate() {
        assert_eq!(s[0] as f64, ramp(n, 0));
        assert_eq!(s[1] as f64, ramp(n, 1));
    }
}
