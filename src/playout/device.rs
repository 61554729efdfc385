//! One output device: its cpal stream, the routes it plays, and a supervisor thread that
//! reopens it when it vanishes.
//!
//! Like the capture side, the callback owns everything it touches (the routes' playouts and
//! their command queues) and gives them back to the supervisor when the stream is dropped,
//! so a lost device keeps every route's state and no lock is ever shared with the callback.
//! New sources (a mix routed, changed, removed) arrive through one `rtrb` queue per route;
//! the readers they replace go back through another, to be dropped off the real-time thread.

use crate::audio::device::jack_gate as gate;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamError};

use super::core::{ClockMode, Playout, PlayoutStats};
use super::PlayoutError;
use crate::audio::device::format_rank;
use crate::frames::FrameReader;
use crate::limits::SAMPLE_RATE;

/// How often a lost output device is looked for again.
const RETRY: Duration = Duration::from_secs(1);
/// How long a freshly opened device is watched for keeping real time before the start
/// is reported, and how much faster than real time it may run in that span (the first
/// callbacks fill the ring at once).
const CLOCK_CHECK: Duration = Duration::from_millis(300);
const CLOCK_CHECK_FACTOR: u64 = 4;
/// Source changes a route can have in flight (the router sends one at a time).
const QUEUE: usize = 4;
/// Largest callback converted through the scratch buffer at once (device frames).
const SCRATCH_FRAMES: usize = 8192;

/// Counters of one output device, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Times the device was opened again after it was lost.
    pub reconnects: AtomicU64,
    /// True while its stream runs.
    pub open: AtomicBool,
    /// Callbacks run (the supervisor watches it for stalls).
    pub callbacks: AtomicU64,
    /// Device frames rendered (the supervisor checks the device keeps real time).
    pub frames: AtomicU64,
    /// Gauge: how far ahead of the speaker the last callback wrote (playback time minus
    /// callback time, as the driver reports it), in device samples.
    pub delay_samples: AtomicU64,
}

/// The callback's side of one route.
pub(super) struct Route {
    playout: Playout,
    left: usize,
    right: Option<usize>,
    commands: rtrb::Consumer<Option<FrameReader>>,
    garbage: rtrb::Producer<FrameReader>,
}

/// The control side of one route: where the router sends new sources.
pub struct RouteControl {
    pub stats: Arc<PlayoutStats>,
    commands: rtrb::Producer<Option<FrameReader>>,
    garbage: rtrb::Consumer<FrameReader>,
}

impl RouteControl {
    /// Hands the callback a new source (or silence). False if its queue is full (the
    /// device is gone and not draining it): try again later.
    pub fn send(&mut self, src: Option<FrameReader>) -> bool {
        self.collect();
        self.commands.push(src).is_ok()
    }

    /// Drops the readers the callback gave back.
    pub fn collect(&mut self) {
        while let Ok(r) = self.garbage.pop() {
            drop(r);
        }
    }
}

/// Builds one route's two halves. `channels` are 1-based (left, right) or (mono).
pub(super) fn route(
    frame_len: usize,
    rate: u32,
    mode: ClockMode,
    channels: &[u16],
) -> Result<(Route, RouteControl), String> {
    let stats = Arc::new(PlayoutStats::default());
    let playout = Playout::new(frame_len, rate, mode, stats.clone())?;
    let (ctx, crx) = rtrb::RingBuffer::new(QUEUE);
    let (gtx, grx) = rtrb::RingBuffer::new(QUEUE + 1);
    let ch = |i: usize| channels.get(i).map(|&c| usize::from(c).saturating_sub(1));
    Ok((
        Route {
            playout,
            left: ch(0).unwrap_or(0),
            right: ch(1),
            commands: crx,
            garbage: gtx,
        },
        RouteControl {
            stats,
            commands: ctx,
            garbage: grx,
        },
    ))
}

/// What the supervisor opens: a device by name, with this many channels at this rate.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) name: String,
    pub(super) channels: u16,
    pub(super) rate: u32,
    pub(super) format: SampleFormat,
    pub(super) buffer: Option<u32>,
}

/// Everything the data callback owns; gives the routes back on drop.
struct Callback {
    routes: Vec<Route>,
    rate: u32,
    /// The driver's thread asks for real-time priority on its first call (see `crate::rt`):
    /// under load a starved output thread lets the engine's frames pile up into latency.
    rt_name: Option<String>,
    channels: usize,
    scratch: Vec<f32>,
    stats: Arc<DeviceStats>,
    back: mpsc::Sender<Vec<Route>>,
}

impl Drop for Callback {
    fn drop(&mut self) {
        let _ = self.back.send(std::mem::take(&mut self.routes));
    }
}

impl Callback {
    /// Bookkeeping outside the no-allocation zone: the one-time promotion (it records the
    /// thread's name), and the driver's delay.
    fn note(&mut self, info: &cpal::OutputCallbackInfo) {
        if let Some(name) = self.rt_name.take() {
            crate::rt::promote_current(&name, crate::rt::RtRole::Output);
        }
        let t = info.timestamp();
        if let Some(d) = t.playback.duration_since(&t.callback) {
            let samples = crate::audio::device::duration_samples(d, self.rate);
            self.stats.delay_samples.store(samples, Ordering::Relaxed);
        }
    }

    fn render_f32(&mut self, out: &mut [f32]) {
        out.fill(0.0);
        for r in &mut self.routes {
            while let Ok(cmd) = r.commands.pop() {
                if let Some(old) = r.playout.set_source(cmd) {
                    // Sized one larger than the command queue: never full here.
                    let _ = r.garbage.push(old);
                }
            }
            r.playout.render(out, self.channels, r.left, r.right);
        }
        let n = out.len() / self.channels.max(1);
        self.stats.frames.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.callbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Integer devices: render into the preallocated scratch, then convert.
    fn render<T: SizedSample + FromSample<f32>>(&mut self, out: &mut [T]) {
        let mut scratch = std::mem::take(&mut self.scratch);
        let step = (SCRATCH_FRAMES * self.channels).max(self.channels);
        for chunk in out.chunks_mut(step) {
            let buf = &mut scratch[..chunk.len()];
            self.render_f32(buf);
            for (d, s) in chunk.iter_mut().zip(buf.iter()) {
                *d = T::from_sample_(*s);
            }
        }
        self.scratch = scratch;
    }
}

/// Finds an output device by name, as inputs are found.
pub(super) fn find(host: &cpal::Host, name: &str) -> Result<cpal::Device, PlayoutError> {
    crate::audio::device::find_named(host, name, crate::audio::device::Direction::Output).map_err(
        |available| PlayoutError::NoDevice {
            name: name.to_string(),
            available,
        },
    )
}

/// Picks the configuration for `needed` channels: the smallest channel count that covers
/// them (a PipeWire or JACK port offers any count; an interface its own), 48 kHz if it
/// can, else the rate closest to it; f32 > i32 > i16.
pub(super) fn plan(
    device: &cpal::Device,
    name: &str,
    needed: u16,
    frame_len: usize,
) -> Result<Plan, PlayoutError> {
    let ranges: Vec<_> = device
        .supported_output_configs()
        .map_err(|e| PlayoutError::Device {
            name: name.to_string(),
            problem: format!("cannot read its configurations: {e}"),
        })?
        .filter(|r| format_rank(r.sample_format()).is_some())
        .collect();
    let mut max = ranges.iter().map(|r| r.channels()).max().unwrap_or(0);
    // A PipeWire node offers any count through the plugin; its own count is the real range.
    if let Some(n) = crate::audio::device::pipewire::node_channels(name) {
        max = max.min(u16::try_from(n).unwrap_or(u16::MAX));
    }
    if needed > max {
        return Err(PlayoutError::Channels {
            name: name.to_string(),
            channel: needed,
            max,
        });
    }
    let best = ranges
        .iter()
        .filter(|r| r.channels() >= needed)
        .map(|r| {
            let rate = SAMPLE_RATE.clamp(r.min_sample_rate().0, r.max_sample_rate().0);
            (
                r.channels(),
                rate.abs_diff(SAMPLE_RATE),
                format_rank(r.sample_format()),
                rate,
                r,
            )
        })
        .min_by_key(|(ch, dist, rk, _, _)| (*ch, *dist, *rk))
        .ok_or_else(|| PlayoutError::Device {
            name: name.to_string(),
            problem: "no f32, i32 or i16 configuration".into(),
        })?;
    let (channels, _, _, rate, range) = best;
    // Half a frame of ring: cpal 0.15's ALSA host makes `Fixed(n)` a ring of `n` frames in
    // four periods, so the device holds half a frame ahead of what it plays (a whole frame
    // measured 10 ms more at 10 ms frames). At least 64: PipeWire's plugin refuses smaller
    // rings (2.5 ms frames would ask 60).
    let target = ((frame_len as u64 * u64::from(rate) / u64::from(SAMPLE_RATE) / 2) as u32).max(64);
    let buffer = match range.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if *min <= target && target <= *max => {
            Some(target)
        }
        _ => None,
    };
    Ok(Plan {
        name: name.to_string(),
        channels,
        rate,
        format: range.sample_format(),
        buffer,
    })
}

fn start(
    plan: &Plan,
    routes: Vec<Route>,
    stats: &Arc<DeviceStats>,
    back: &mpsc::Sender<Vec<Route>>,
    errors: &mpsc::SyncSender<StreamError>,
) -> Result<cpal::Stream, (Vec<Route>, String)> {
    let host = cpal::default_host();
    let device = match find(&host, &plan.name) {
        Ok(d) => d,
        Err(e) => return Err((routes, e.to_string())),
    };
    let channels = usize::from(plan.channels);
    let mut cb = Callback {
        routes,
        rate: plan.rate,
        rt_name: Some(format!("monmix-output-{}", plan.name)),
        channels,
        scratch: vec![0.0; SCRATCH_FRAMES * channels],
        stats: stats.clone(),
        back: back.clone(),
    };
    let config = cpal::StreamConfig {
        channels: plan.channels,
        sample_rate: cpal::SampleRate(plan.rate),
        buffer_size: plan
            .buffer
            .map_or(cpal::BufferSize::Default, cpal::BufferSize::Fixed),
    };
    let err_tx = errors.clone();
    let on_error = move |e: StreamError| {
        let _ = err_tx.try_send(e);
    };
    // On failure the closure (and with it `cb`) is dropped, which sends the routes back.
    let built = match plan.format {
        SampleFormat::F32 => device.build_output_stream(
            &config,
            move |d: &mut [f32], info: &_| {
                cb.note(info);
                assert_no_alloc::assert_no_alloc(|| cb.render_f32(d))
            },
            on_error,
            None,
        ),
        SampleFormat::I32 => device.build_output_stream(
            &config,
            move |d: &mut [i32], info: &_| {
                cb.note(info);
                assert_no_alloc::assert_no_alloc(|| cb.render(d))
            },
            on_error,
            None,
        ),
        _ => device.build_output_stream(
            &config,
            move |d: &mut [i16], info: &_| {
                cb.note(info);
                assert_no_alloc::assert_no_alloc(|| cb.render(d))
            },
            on_error,
            None,
        ),
    };
    // The routes come back through `back` when the closure is dropped.
    let fail = |problem: String| (Vec::new(), problem);
    let stream = built.map_err(|e| fail(format!("cannot open a playback stream: {e}")))?;
    stream
        .play()
        .map_err(|e| fail(format!("cannot start playback: {e}")))?;
    Ok(stream)
}

/// Runs on the supervisor thread until `stop`: open, watch, reopen.
pub(super) fn supervise(
    plan: Plan,
    mut routes: Option<Vec<Route>>,
    stats: Arc<DeviceStats>,
    stop: Arc<AtomicBool>,
    first: mpsc::SyncSender<Result<String, String>>,
) {
    let (back_tx, back_rx) = mpsc::channel::<Vec<Route>>();
    let (err_tx, err_rx) = mpsc::sync_channel::<StreamError>(16);
    let mut first = Some(first);
    let mut lost_at: Option<Instant> = None;
    let mut complained = false;
    let jack = crate::audio::device::is_jack(&plan.name);
    while !stop.load(Ordering::Relaxed) {
        let Some(r) = routes.take().or_else(|| back_rx.try_recv().ok()) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let attempt = if jack && !gate::may_open() {
            Err((r, gate::WAITING.to_string()))
        } else {
            start(&plan, r, &stats, &back_tx, &err_tx)
        };
        match attempt {
            Ok(stream) if first.is_some() && !keeps_time(&stats, plan.rate) => {
                drop(stream);
                let routes = back_rx.recv_timeout(Duration::from_secs(2)).ok();
                drop(routes);
                if let Some(f) = first.take() {
                    let _ = f.send(Err(format!(
                        "it has no clock: it took audio more than {CLOCK_CHECK_FACTOR} times \
                         faster than real time (ALSA's null or file plugin?); an in-ear output \
                         needs a device that plays"
                    )));
                }
                return;
            }
            Ok(stream) => {
                let desc = format!(
                    "output device {:?}: {} ch {} @ {} Hz",
                    plan.name, plan.channels, plan.format, plan.rate
                );
                if let Some(f) = first.take() {
                    let _ = f.send(Ok(desc));
                } else if let Some(t) = lost_at.take() {
                    stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("{desc}: back after {:.1} s", t.elapsed().as_secs_f64());
                }
                complained = false;
                let lease = jack.then(gate::lease);
                stats.open.store(true, Ordering::Relaxed);
                let why = watch(&stats, &err_rx, &stop);
                stats.open.store(false, Ordering::Relaxed);
                if jack && why.is_some() {
                    gate::lost();
                }
                drop(stream);
                drop(lease);
                routes = back_rx.recv_timeout(Duration::from_secs(2)).ok();
                let Some(why) = why else { break };
                tracing::warn!(
                    "output device {:?} lost: {why}; its routes play nothing until it is back",
                    plan.name
                );
                lost_at = Some(Instant::now());
            }
            Err((r, problem)) => {
                routes = if r.is_empty() {
                    back_rx.recv_timeout(Duration::from_secs(2)).ok()
                } else {
                    Some(r)
                };
                if let Some(f) = first.take() {
                    let _ = f.send(Err(problem));
                    return;
                }
                if !complained {
                    tracing::warn!("output device {:?} still unavailable: {problem}", plan.name);
                    complained = true;
                }
                lost_at.get_or_insert_with(Instant::now);
                sleep_unless(&stop, RETRY);
            }
        }
    }
}

/// True when the stream just started consumes audio at most [`CLOCK_CHECK_FACTOR`] times
/// faster than real time over [`CLOCK_CHECK`]. A device without a clock calls back flat
/// out: on a real-time thread that is a core lost to nothing.
fn keeps_time(stats: &DeviceStats, rate: u32) -> bool {
    let f0 = stats.frames.load(Ordering::Relaxed);
    std::thread::sleep(CLOCK_CHECK);
    let frames = stats.frames.load(Ordering::Relaxed).saturating_sub(f0);
    let real = u64::from(rate) * CLOCK_CHECK.as_millis() as u64 / 1000;
    frames <= CLOCK_CHECK_FACTOR * real
}

/// Watches a running stream (see the input side's `watch_stream`); `None` when asked to
/// stop, else why it was given up.
fn watch(
    stats: &DeviceStats,
    errors: &mpsc::Receiver<StreamError>,
    stop: &AtomicBool,
) -> Option<String> {
    let progress = || stats.callbacks.load(Ordering::Relaxed);
    crate::audio::device::watch_stream(&progress, errors, stop, "output", "callback")
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
}
