#![allow(dead_code)] // also included by a bench that uses part of it
//! A real-time `tones` input: a thread pushing one frame per period, as an audio clock
//! would. The one feeder of the engine tests, the in-process WHEP bench (`whep_client`)
//! and `benches/whep_listeners.rs` (which includes this file by `#[path]`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use monmix::audio::tones::Tones;
use monmix::audio::{Generator, SAMPLE_RATE};
use monmix::frames::{pipe, FrameReader, FrameWriter};

/// Stops its thread when dropped.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<FrameWriter>>,
}

impl Feeder {
    /// Starts pushing `Tones::new(channels)` frames of `frame_len` in real time.
    pub fn start(channels: usize, frame_len: usize) -> (Feeder, FrameReader) {
        let (mut w, r) = pipe(channels * frame_len, 16);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let period = Duration::from_secs_f64(frame_len as f64 / f64::from(SAMPLE_RATE));
        let thread = std::thread::Builder::new()
            .name("test-tones".into())
            .spawn(move || {
                let mut tones = Tones::new(channels);
                let mut frame = vec![0.0; channels * frame_len];
                let mut next = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    tones.render(&mut frame);
                    w.push(&frame);
                    next += period;
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
                w
            })
            .expect("tones thread");
        let feeder = Feeder {
            stop,
            thread: Some(thread),
        };
        (feeder, r)
    }

    /// Stops pushing and returns the writer, so the input stays open (but silent).
    pub fn stop(mut self) -> FrameWriter {
        self.halt().expect("feeder thread")
    }

    fn halt(&mut self) -> Option<FrameWriter> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        drop(self.halt());
    }
}
