//! The producing end shared by every input: counters, channel-count adaptation, and a
//! [`FrameSink`] that pushes whole frames into the pipe and counts what happened.
//!
//! Kept in one place so the clock thread and the device callback behave identically
//! (same counters, same zero-fill/drop rule for channel counts).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::frames::FrameWriter;

/// Live counters of one input, shared with metrics via `Arc`. Plain atomics so the audio
/// thread can bump them without locks.
#[derive(Debug, Default)]
pub struct InputStats {
    /// Frames pushed into the pipe.
    pub frames_produced: AtomicU64,
    /// Frames dropped because the pipe was full (the engine fell behind).
    pub frames_dropped: AtomicU64,
    /// Times a lost device was opened again.
    pub device_reconnects: AtomicU64,
    /// Times a clock thread fell more than a few frames behind and skipped ahead.
    pub resyncs: AtomicU64,
    /// Silent frames fed while a device was gone (included in `frames_produced`).
    pub silence_frames: AtomicU64,
    /// Gauge: how long the audio of the last device callback had waited in the driver
    /// (callback time minus capture time), in device samples. Where latency hides.
    pub device_delay_samples: AtomicU64,
}

/// A plain copy of [`InputStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputStatsSnapshot {
    pub frames_produced: u64,
    pub frames_dropped: u64,
    pub device_reconnects: u64,
    pub resyncs: u64,
    pub silence_frames: u64,
    pub device_delay_samples: u64,
}

impl InputStats {
    pub fn snapshot(&self) -> InputStatsSnapshot {
        InputStatsSnapshot {
            frames_produced: self.frames_produced.load(Ordering::Relaxed),
            frames_dropped: self.frames_dropped.load(Ordering::Relaxed),
            device_reconnects: self.device_reconnects.load(Ordering::Relaxed),
            resyncs: self.resyncs.load(Ordering::Relaxed),
            silence_frames: self.silence_frames.load(Ordering::Relaxed),
            device_delay_samples: self.device_delay_samples.load(Ordering::Relaxed),
        }
    }
}

/// Copies interleaved sample frames from `src_ch` channels to `dst_ch` channels:
/// channel k goes to channel k, extra destination channels are zero-filled and surplus
/// source channels are dropped. Copies as many sample frames as both buffers hold.
/// Real-time safe.
pub fn remap_channels(src: &[f32], src_ch: usize, dst: &mut [f32], dst_ch: usize) {
    if src_ch == 0 || dst_ch == 0 {
        dst.fill(0.0);
        return;
    }
    if src_ch == dst_ch {
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        return;
    }
    let common = src_ch.min(dst_ch);
    for (d, s) in dst.chunks_exact_mut(dst_ch).zip(src.chunks_exact(src_ch)) {
        d[..common].copy_from_slice(&s[..common]);
        d[common..].fill(0.0);
    }
}

/// The writing end of an input: pushes whole frames of the input's *output* channel
/// count and counts produced/dropped frames.
pub struct FrameSink {
    writer: FrameWriter,
    stats: std::sync::Arc<InputStats>,
    silence: Vec<f32>,
}

impl FrameSink {
    pub fn new(writer: FrameWriter, stats: std::sync::Arc<InputStats>) -> Self {
        let silence = vec![0.0; writer.frame_samples()];
        FrameSink {
            writer,
            stats,
            silence,
        }
    }

    /// Samples per frame (output channels x frame length).
    pub fn frame_samples(&self) -> usize {
        self.writer.frame_samples()
    }

    /// Pushes one frame; never blocks or allocates. Returns false if it was dropped.
    pub fn push(&mut self, frame: &[f32]) -> bool {
        let ok = self.writer.push(frame);
        let counter = if ok {
            &self.stats.frames_produced
        } else {
            &self.stats.frames_dropped
        };
        counter.fetch_add(1, Ordering::Relaxed);
        ok
    }

    /// Pushes one frame of silence (used while a device is gone so the engine keeps ticking).
    pub fn push_silence(&mut self) -> bool {
        let ok = self.writer.push(&self.silence);
        if ok {
            self.stats.frames_produced.fetch_add(1, Ordering::Relaxed);
            self.stats.silence_frames.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// True once the reader is gone: the producer may stop.
    pub fn is_abandoned(&self) -> bool {
        self.writer.is_abandoned()
    }

    /// Wakes the reader without pushing (on shutdown, so it notices the pipe closed).
    pub fn wake(&self) {
        self.writer.wake();
    }

    pub fn stats(&self) -> &InputStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remap_zero_fills_and_drops() {
        let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 frames of 3 ch
        let mut wide = [9.0; 8];
        remap_channels(&src, 3, &mut wide, 4);
        assert_eq!(wide, [1.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0, 0.0]);
        let mut narrow = [9.0; 4];
        remap_channels(&src, 3, &mut narrow, 2);
        assert_eq!(narrow, [1.0, 2.0, 4.0, 5.0]);
    }
}
