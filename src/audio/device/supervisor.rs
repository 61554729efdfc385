//! The supervisor thread: owns the running stream, watches it for loss or stalls, and
//! while the device is gone feeds silence and reopens it every [`RETRY_INTERVAL`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::StreamError;

use super::capture::start_stream;
use super::{RETRY_INTERVAL, STALL_TIMEOUT};
use crate::audio::clock::{frame_period, Pacer};
use crate::audio::output::{FrameSink, InputStats};
use crate::audio::{AudioError, InputOptions};

/// What the supervisor needs to (re)open the device.
pub(super) struct Plan {
    pub(super) query: Option<String>,
    pub(super) opts: InputOptions,
    pub(super) out_ch: usize,
}

/// Why a running stream was given up.
enum Ended {
    Stopped,
    Lost(String),
}

/// Watches a running stream: logs its errors, notices loss or stalls, obeys `stop`.
fn watch(stats: &InputStats, errors: &mpsc::Receiver<StreamError>, stop: &AtomicBool) -> Ended {
    let count = || {
        stats.frames_produced.load(Ordering::Relaxed) + stats.frames_dropped.load(Ordering::Relaxed)
    };
    match watch_stream(&count, errors, stop, "input", "audio") {
        None => Ended::Stopped,
        Some(why) => Ended::Lost(why),
    }
}

/// Watches any running cpal stream (an input, an output device): logs its first errors,
/// and returns why it was given up (device gone, or `progress` stuck for
/// [`STALL_TIMEOUT`]), or `None` once `stop` is set.
pub(crate) fn watch_stream(
    progress: &dyn Fn() -> u64,
    errors: &mpsc::Receiver<StreamError>,
    stop: &AtomicBool,
    side: &str,
    what: &str,
) -> Option<String> {
    let mut last = progress();
    let mut last_change = Instant::now();
    let mut logged = 0u32;
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        match errors.recv_timeout(Duration::from_millis(100)) {
            Ok(StreamError::DeviceNotAvailable) => {
                return Some("device not available (unplugged?)".into())
            }
            // cpal's JACK host reports the server going away this way (its shutdown
            // notification); reopen now rather than after the stall timeout.
            Ok(StreamError::BackendSpecific { err })
                if err.description.starts_with("JACK was shut down") =>
            {
                return Some(err.description)
            }
            Ok(e) => {
                if logged < 10 {
                    tracing::warn!("{side} stream error: {e}");
                    logged += 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Some("stream error channel closed".into())
            }
        }
        let now = progress();
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > STALL_TIMEOUT {
            return Some(format!("no {what} for {} s", STALL_TIMEOUT.as_secs()));
        }
    }
}

/// The supervisor: open, watch, and on loss feed silence and retry every second.
pub(super) fn supervise(
    plan: Plan,
    sink: FrameSink,
    stats: Arc<InputStats>,
    stop: Arc<AtomicBool>,
    first: mpsc::SyncSender<Result<String, AudioError>>,
) {
    let mut first = Some(first);
    let mut sink = Some(sink);
    let (back_tx, back_rx) = mpsc::channel::<FrameSink>();
    let (err_tx, err_rx) = mpsc::sync_channel::<StreamError>(16);
    let period = frame_period(plan.opts.frame_len);
    let frames_per_retry = (RETRY_INTERVAL.as_nanos() / period.as_nanos().max(1)).max(1) as usize;
    let mut lost_since: Option<Instant> = None;
    let mut last_problem = String::new();
    let mut pacer: Option<Pacer> = None;
    let jack = plan.query.as_deref().is_some_and(super::is_jack);
    while !stop.load(Ordering::Relaxed) {
        while err_rx.try_recv().is_ok() {}
        let result = if jack && !super::jack_gate::may_open() {
            Err(AudioError::Device {
                name: super::discover::JACK.into(),
                problem: super::jack_gate::WAITING.into(),
            })
        } else {
            start_stream(&plan, &mut sink, &back_tx, &err_tx)
        };
        match result {
            Ok((stream, desc)) => {
                let lease = jack.then(super::jack_gate::lease);
                if let Some(f) = first.take() {
                    tracing::info!("audio input: {desc}");
                    let _ = f.send(Ok(desc));
                } else {
                    stats.device_reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        "audio input back after {:.1} s: {desc}",
                        lost_since.map_or(0.0, |t| t.elapsed().as_secs_f64())
                    );
                }
                last_problem.clear();
                pacer = None;
                let ended = watch(&stats, &err_rx, &stop);
                if jack && matches!(ended, Ended::Lost(_)) {
                    super::jack_gate::lost();
                }
                drop(stream);
                drop(lease);
                if sink.is_none() {
                    sink = back_rx.recv_timeout(Duration::from_secs(2)).ok();
                }
                match ended {
                    Ended::Stopped => break,
                    Ended::Lost(why) => {
                        tracing::warn!(
                            "audio input lost: {why}; feeding silence and retrying every {} s",
                            RETRY_INTERVAL.as_secs_f32()
                        );
                        lost_since = Some(Instant::now());
                    }
                }
            }
            Err(e) => {
                if sink.is_none() {
                    sink = back_rx.recv_timeout(Duration::from_secs(2)).ok();
                }
                if let Some(f) = first.take() {
                    let _ = f.send(Err(e));
                    return;
                }
                let problem = e.to_string();
                if problem != last_problem {
                    tracing::warn!("audio input still unavailable: {problem}");
                    last_problem = problem;
                } else {
                    tracing::debug!("audio input still unavailable: {problem}");
                }
            }
        }
        let Some(s) = sink.as_mut() else {
            tracing::error!("the capture callback did not release the frame pipe; input stops");
            break;
        };
        // Back off for one retry interval, feeding silence on a real-time clock so the
        // engine (clocked by this pipe) keeps ticking.
        let p = pacer.get_or_insert_with(|| Pacer::new(period));
        for _ in 0..frames_per_retry {
            if stop.load(Ordering::Relaxed) || s.is_abandoned() {
                break;
            }
            s.push_silence();
            if p.wait() {
                stats.resyncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        if s.is_abandoned() {
            break;
        }
    }
    if let Some(s) = sink {
        s.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_reports_loss_stall_and_stop() {
        let stats = InputStats::default();
        let stop = AtomicBool::new(false);
        let (tx, rx) = mpsc::sync_channel(4);

        // An unplugged device is reported at once; other stream errors are only logged.
        tx.try_send(StreamError::BackendSpecific {
            err: cpal::BackendSpecificError {
                description: "xrun".into(),
            },
        })
        .unwrap();
        tx.try_send(StreamError::DeviceNotAvailable).unwrap();
        assert!(matches!(watch(&stats, &rx, &stop), Ended::Lost(_)));

        // A stream that delivers nothing is given up after the stall timeout.
        let t = Instant::now();
        assert!(matches!(watch(&stats, &rx, &stop), Ended::Lost(w) if w.contains("no audio")));
        assert!(t.elapsed() >= STALL_TIMEOUT);

        // Stopping wins.
        stop.store(true, Ordering::Relaxed);
        assert!(matches!(watch(&stats, &rx, &stop), Ended::Stopped));
    }
}
