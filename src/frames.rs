//! Lock-free frame pipe between real-time threads.
//!
//! Every hop on the audio path (input -> engine, engine -> encoder) is one of these:
//! a single-producer single-consumer `rtrb` ring of interleaved `f32` samples that moves
//! *whole frames* only, plus a wake-up so the reader can sleep instead of spinning.
//! The writer never blocks: when the ring is full the frame is dropped and counted
//! (overload drops work, it never stalls audio).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Counters shared by both ends, readable from anywhere (metrics, tests).
#[derive(Debug, Default)]
pub struct PipeStats {
    /// Frames the writer pushed.
    pub written: AtomicU64,
    /// Frames the writer had to drop because the reader was behind.
    pub dropped: AtomicU64,
}

#[derive(Debug, Default)]
struct Shared {
    /// The reading thread, registered on its first wait; the writer unparks it.
    reader: OnceLock<Thread>,
    stats: PipeStats,
}

/// Writing end. Lives on a real-time thread (device callback, engine).
pub struct FrameWriter {
    ring: rtrb::Producer<f32>,
    frame_samples: usize,
    shared: Arc<Shared>,
}

/// Reading end.
pub struct FrameReader {
    ring: rtrb::Consumer<f32>,
    frame_samples: usize,
    shared: Arc<Shared>,
}

/// Creates a pipe carrying frames of `frame_samples` interleaved samples, holding at most
/// `capacity_frames` frames.
pub fn pipe(frame_samples: usize, capacity_frames: usize) -> (FrameWriter, FrameReader) {
    let frame_samples = frame_samples.max(1);
    let (p, c) = rtrb::RingBuffer::new(frame_samples * capacity_frames.max(1));
    let shared = Arc::new(Shared::default());
    (
        FrameWriter {
            ring: p,
            frame_samples,
            shared: shared.clone(),
        },
        FrameReader {
            ring: c,
            frame_samples,
            shared,
        },
    )
}

impl FrameWriter {
    /// Samples per frame (channels x frame length).
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Pushes one whole frame (`frame.len()` must equal `frame_samples`) and wakes the
    /// reader. Returns false, counting a drop, when the ring has no room or the length is
    /// wrong. Never allocates, never blocks.
    pub fn push(&mut self, frame: &[f32]) -> bool {
        if frame.len() != self.frame_samples {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let ok = match self.ring.write_chunk_uninit(self.frame_samples) {
            Ok(chunk) => {
                chunk.fill_from_iter(frame.iter().copied());
                true
            }
            Err(_) => false,
        };
        if ok {
            self.shared.stats.written.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.wake();
        ok
    }

    /// Wakes the reader without pushing (used on shutdown).
    pub fn wake(&self) {
        if let Some(t) = self.shared.reader.get() {
            t.unpark();
        }
    }

    /// True once the reader was dropped: the writer's owner may retire this pipe.
    pub fn is_abandoned(&self) -> bool {
        self.ring.is_abandoned()
    }

    pub fn stats(&self) -> &PipeStats {
        &self.shared.stats
    }
}

impl FrameReader {
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Whole frames waiting.
    pub fn frames_available(&self) -> usize {
        self.ring.slots() / self.frame_samples
    }

    /// Copies the oldest frame into `out` (length `frame_samples`) if one is there.
    pub fn pop(&mut self, out: &mut [f32]) -> bool {
        if out.len() != self.frame_samples || self.ring.slots() < self.frame_samples {
            return false;
        }
        match self.ring.read_chunk(self.frame_samples) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                out[..a.len()].copy_from_slice(a);
                out[a.len()..].copy_from_slice(b);
                chunk.commit_all();
                true
            }
            Err(_) => false,
        }
    }

    /// Discards the oldest frame (used to shed latency when the reader fell behind).
    pub fn skip(&mut self) -> bool {
        match self.ring.read_chunk(self.frame_samples) {
            Ok(chunk) => {
                chunk.commit_all();
                true
            }
            Err(_) => false,
        }
    }

    /// Waits until a frame is there or `deadline` passes, then pops it.
    /// The waiting thread parks; the writer unparks it.
    pub fn pop_until(&mut self, out: &mut [f32], deadline: Instant) -> bool {
        let _ = self.shared.reader.set(std::thread::current());
        loop {
            if self.pop(out) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || self.ring.is_abandoned() && self.ring.slots() < self.frame_samples
            {
                return false;
            }
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// True once the writer was dropped and nothing is left to read.
    pub fn is_closed(&self) -> bool {
        self.ring.is_abandoned() && self.ring.slots() < self.frame_samples
    }

    pub fn stats(&self) -> &PipeStats {
        &self.shared.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_whole_frames_and_drops_when_full() {
        let (mut w, mut r) = pipe(4, 2);
        assert!(w.push(&[1.0, 2.0, 3.0, 4.0]));
        assert!(w.push(&[5.0, 6.0, 7.0, 8.0]));
        assert!(!w.push(&[9.0; 4]), "third frame does not fit");
        assert!(!w.push(&[1.0; 3]), "partial frame refused");
        assert_eq!(w.stats().dropped.load(Ordering::Relaxed), 2);
        let mut out = [0.0; 4];
        assert!(r.pop(&mut out));
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0]);
        assert!(r.pop(&mut out));
        assert_eq!(out, [5.0, 6.0, 7.0, 8.0]);
        assert!(!r.pop(&mut out));
    }

    #[test]
    fn reader_wakes_when_writer_pushes_from_another_thread() {
        let (mut w, mut r) = pipe(2, 4);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w.push(&[0.5, -0.5]);
            w
        });
        let mut out = [0.0; 2];
        assert!(r.pop_until(&mut out, Instant::now() + Duration::from_secs(5)));
        assert_eq!(out, [0.5, -0.5]);
        drop(t.join());
        assert!(r.is_closed());
    }
}
