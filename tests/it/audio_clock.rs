//! Clocked inputs opened through `open()`: real-time rate, content, channel mapping, stop.

use std::time::{Duration, Instant};

use monmix::audio::tones::Tones;
use monmix::audio::{open, AudioError, Generator, InputOptions, InputSpec};

#[test]
fn tones_deliver_100_frames_per_second_at_480() {
    let opts = InputOptions {
        frame_len: 480,
        channels: None,
    };
    let mut input = open(&InputSpec::Tones, &opts).unwrap();
    assert_eq!(input.channels, 8);
    assert_eq!(input.reader.frame_samples(), 8 * 480);
    let mut frame = vec![0.0f32; 8 * 480];

    // The first frame is exactly what `Tones` renders.
    assert!(input
        .reader
        .pop_until(&mut frame, Instant::now() + Duration::from_secs(2)));
    let mut want = vec![0.0f32; 8 * 480];
    Tones::new(8).render(&mut want);
    assert_eq!(frame, want);

    // Count frames over one second of wall time.
    let start = Instant::now();
    let end = start + Duration::from_secs(1);
    let mut n = 0;
    while Instant::now() < end {
        if input.reader.pop_until(&mut frame, end) {
            n += 1;
        }
    }
    assert!((90..=110).contains(&n), "{n} frames in 1 s");
    let stats = input.handle.stats().snapshot();
    assert!(stats.frames_produced >= n as u64);
    assert_eq!(stats.frames_dropped, 0);
}

#[test]
fn channel_option_zero_fills_or_drops() {
    let opts = InputOptions {
        frame_len: 120,
        channels: Some(10),
    };
    // Demo has 8 channels; asking for 10 adds two silent ones.
    let mut input = open(&InputSpec::Demo, &opts).unwrap();
    assert_eq!(input.channels, 10);
    let mut frame = vec![0.0f32; 10 * 120];
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut any_signal = false;
    for _ in 0..50 {
        assert!(input.reader.pop_until(&mut frame, deadline));
        for f in frame.chunks_exact(10) {
            assert_eq!(&f[8..], &[0.0, 0.0]);
            any_signal |= f[..8].iter().any(|&s| s != 0.0);
        }
    }
    assert!(any_signal);

    // Tones with a channel count render that many distinct tones.
    let input = open(
        &InputSpec::Tones,
        &InputOptions {
            frame_len: 240,
            channels: Some(3),
        },
    )
    .unwrap();
    assert_eq!(input.channels, 3);
    assert_eq!(input.reader.frame_samples(), 3 * 240);
}

#[test]
fn dropping_the_handle_stops_the_clock() {
    let input = open(&InputSpec::Tones, &InputOptions::default()).unwrap();
    let mut reader = input.reader;
    let stats = input.handle.stats().clone();
    let t = Instant::now();
    drop(input.handle);
    assert!(t.elapsed() < Duration::from_millis(500), "stop is prompt");
    let mut frame = vec![0.0f32; reader.frame_samples()];
    while reader.pop(&mut frame) {}
    let produced = stats.snapshot().frames_produced;
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        stats.snapshot().frames_produced,
        produced,
        "no frames after stop"
    );
    assert!(reader.is_closed());
}

#[test]
fn engine_that_stops_reading_causes_counted_drops_not_blocking() {
    let input = open(
        &InputSpec::Tones,
        &InputOptions {
            frame_len: 120,
            channels: Some(2),
        },
    )
    .unwrap();
    // Nobody reads: the 8-frame ring fills in 20 ms, then frames are dropped and counted.
    std::thread::sleep(Duration::from_millis(200));
    let s = input.handle.stats().snapshot();
    assert!(s.frames_produced <= 9, "{s:?}");
    assert!(s.frames_dropped > 30, "{s:?}");
}

#[test]
fn bad_options_are_refused() {
    for (frame_len, channels) in [(100, None), (0, None), (480, Some(0)), (480, Some(1000))] {
        let r = open(
            &InputSpec::Tones,
            &InputOptions {
                frame_len,
                channels,
            },
        );
        assert!(
            matches!(r, Err(AudioError::FrameLen(_) | AudioError::Channels(_))),
            "{frame_len} {channels:?}"
        );
    }
}
