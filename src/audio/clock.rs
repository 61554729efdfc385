//! Runs a [`Generator`] at real time on its own thread.
//!
//! Synthetic and file inputs have no hardware clock, so this thread *is* their clock:
//! once per frame period it renders one frame into a preallocated buffer and pushes it.
//! Deadlines are absolute (`next += period`, then sleep until `next`), so sleep jitter
//! never accumulates into drift. If the thread falls far behind (suspended laptop, a
//! debugger, an overloaded box) it does not burst dozens of stale frames: it resyncs to
//! "now" and counts that in [`InputStats::resyncs`](super::InputStats::resyncs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::output::{remap_channels, FrameSink};
use super::{Generator, SAMPLE_RATE};

/// Being this many periods late makes the pacer skip ahead instead of catching up.
pub const MAX_LAG_PERIODS: u32 = 4;

/// The duration of `frame_len` samples at 48 kHz.
pub fn frame_period(frame_len: usize) -> Duration {
    Duration::from_nanos(frame_len as u64 * 1_000_000_000 / SAMPLE_RATE as u64)
}

/// Absolute-deadline ticker. Also used by the device supervisor to feed silence.
#[derive(Debug)]
pub struct Pacer {
    period: Duration,
    next: Instant,
}

impl Pacer {
    /// The first deadline is one period from now (the caller produces frame 0 at once).
    pub fn new(period: Duration) -> Self {
        Pacer {
            period,
            next: Instant::now() + period,
        }
    }

    /// Sleeps until the next deadline and advances it by one period. Returns true when it
    /// had fallen more than [`MAX_LAG_PERIODS`] behind and resynced to the present instead.
    /// Less lag than that is caught up by returning at once (a short burst of frames).
    pub fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now > self.next + self.period * MAX_LAG_PERIODS {
            self.next = now + self.period;
            return true;
        }
        if self.next > now {
            std::thread::sleep(self.next - now);
        }
        self.next += self.period;
        false
    }
}

/// Owns an input thread that polls a stop flag (the clock thread, the device
/// supervisor); dropping it stops and joins the thread.
#[derive(Debug)]
pub struct StopHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Named in the log if the thread panicked.
    what: &'static str,
}

/// The clock thread's handle.
pub type ClockHandle = StopHandle;

impl StopHandle {
    pub(crate) fn new(stop: Arc<AtomicBool>, thread: JoinHandle<()>, what: &'static str) -> Self {
        StopHandle {
            stop,
            thread: Some(thread),
            what,
        }
    }

    /// Stops the thread and waits for it (at most about one frame period).
    pub fn stop(mut self) {
        self.shutdown();
    }

    pub(crate) fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("{} thread panicked", self.what);
            }
        }
    }
}

impl Drop for StopHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts a thread that renders `generator` in frames of `frame_len` samples and pushes
/// them into `sink` (whose frame size fixes the output channel count; channels are
/// zero-filled or dropped as in [`remap_channels`]). Runs until the handle is dropped or
/// the reader goes away.
pub fn spawn(
    mut generator: Box<dyn Generator>,
    frame_len: usize,
    mut sink: FrameSink,
    name: &str,
) -> std::io::Result<ClockHandle> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_t = stop.clone();
    let in_ch = generator.channels();
    let out_ch = sink.frame_samples() / frame_len.max(1);
    let period = frame_period(frame_len);
    let thread_name = format!("input-{name}");
    let thread = std::thread::Builder::new()
        .name(thread_name.clone())
        .spawn(move || {
            crate::rt::promote_current(&thread_name, crate::rt::RtRole::Input);
            // All buffers are allocated here, before the loop.
            let mut rendered = vec![0.0f32; in_ch * frame_len];
            let mut frame = vec![0.0f32; out_ch * frame_len];
            let mut pacer = Pacer::new(period);
            while !stop_t.load(Ordering::Relaxed) && !sink.is_abandoned() {
                // Render and push may not allocate, lock or log: with the
                // `assert_no_alloc` allocator installed (debug test builds) they abort.
                assert_no_alloc::assert_no_alloc(|| {
                    if in_ch == out_ch {
                        generator.render(&mut frame);
                    } else {
                        generator.render(&mut rendered);
                        remap_channels(&rendered, in_ch, &mut frame, out_ch);
                    }
                    sink.push(&frame);
                });
                if pacer.wait() {
                    sink.stats().resyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            sink.wake();
        })?;
    Ok(StopHandle::new(stop, thread, "input clock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_exact() {
        assert_eq!(frame_period(120), Duration::from_micros(2500));
        assert_eq!(frame_period(480), Duration::from_millis(10));
        assert_eq!(frame_period(960), Duration::from_millis(20));
    }

    #[test]
    fn pacer_resyncs_after_a_long_stall() {
        let mut p = Pacer::new(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(20));
        assert!(p.wait(), "20 periods late must resync");
        assert!(!p.wait(), "back on time afterwards");
    }
}
