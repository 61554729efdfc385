//! `device[:NAME]`: live capture from a cpal input device (ALSA/JACK on Linux).
//!
//! Threads and ownership:
//! - The **cpal callback** (cpal's real-time thread) converts i16/i32/f32 samples to
//!   `f32`, resamples to 48 kHz when the device cannot run at 48 kHz (rubato, FFT-based,
//!   preallocated buffers), gathers whole frames and pushes them into the pipe. It never
//!   allocates, locks or logs; its error callback only `try_send`s into a bounded channel.
//! - A **supervisor thread** owns the `cpal::Stream` (which is not `Send`), logs stream
//!   errors, and when the device disappears (error callback, or no data for
//!   [`STALL_TIMEOUT`]) drops the stream and reopens it every [`RETRY_INTERVAL`]. While the
//!   device is gone it feeds silent frames on a real-time [`Pacer`], so the engine, which is
//!   clocked by the pipe, keeps ticking and the server keeps serving.
//!
//! The frame sink moves into the callback while a stream runs and comes back to the
//! supervisor when the stream (and so the callback closure) is dropped: the closure's
//! owner sends it back from its `Drop`. No lock is ever shared with the callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamError};
use rubato::{FftFixedInOut, Resampler};

use super::clock::{frame_period, Pacer};
use super::output::{FrameSink, InputStats};
use super::{AudioError, InputOptions, MAX_CHANNELS, RING_FRAMES, SAMPLE_RATE};
use crate::frames::{pipe, FrameReader};

/// How often a lost device is looked for again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A running stream that delivers nothing for this long is treated as lost.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Sample rates reported by [`list_devices`] when a device accepts a range.
const COMMON_RATES: [u32; 11] = [
    8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000,
];

/// One supported input configuration range of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRange {
    pub channels: u16,
    pub min_rate: u32,
    pub max_rate: u32,
    /// cpal sample format, e.g. `f32`, `i16`.
    pub format: String,
}

/// What `monmix devices` prints about one input device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    pub name: String,
    pub is_default: bool,
    /// Most channels any configuration offers (what `device:NAME` opens by default).
    pub channels_max: u16,
    /// Common sample rates the device accepts (48000 means no resampling).
    pub sample_rates: Vec<u32>,
    pub configs: Vec<ConfigRange>,
}

/// Lists the input devices of the default audio host. A machine without a sound card
/// gives an empty list, not an error; devices that fail to report their configurations
/// are listed with none.
pub fn list_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let default_name = host.default_input_device().and_then(|d| d.name().ok());
    let devices = match host.input_devices() {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!("cannot enumerate input devices: {e}");
            return Ok(Vec::new());
        }
    };
    let mut out = Vec::new();
    for dev in devices {
        let Ok(name) = dev.name() else { continue };
        let configs: Vec<ConfigRange> = match dev.supported_input_configs() {
            Ok(c) => c
                .map(|r| ConfigRange {
                    channels: r.channels(),
                    min_rate: r.min_sample_rate().0,
                    max_rate: r.max_sample_rate().0,
                    format: r.sample_format().to_string(),
                })
                .collect(),
            Err(e) => {
                tracing::debug!("{name}: cannot read configurations: {e}");
                Vec::new()
            }
        };
        let channels_max = configs.iter().map(|c| c.channels).max().unwrap_or(0);
        let sample_rates = COMMON_RATES
            .iter()
            .copied()
            .filter(|&r| configs.iter().any(|c| c.min_rate <= r && r <= c.max_rate))
            .collect();
        out.push(DeviceInfo {
            is_default: default_name.as_deref() == Some(name.as_str()),
            name,
            channels_max,
            sample_rates,
            configs,
        });
    }
    Ok(out)
}

/// The configuration chosen for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chosen {
    channels: u16,
    rate: u32,
    format: SampleFormat,
    /// Fixed buffer size to ask for (about one frame), if the device reports a range.
    buffer: Option<u32>,
}

fn format_rank(f: SampleFormat) -> Option<u8> {
    match f {
        SampleFormat::F32 => Some(0),
        SampleFormat::I32 => Some(1),
        SampleFormat::I16 => Some(2),
        _ => None,
    }
}

/// Picks a configuration: the wanted channel count if the device has it, otherwise its
/// largest; 48 kHz if possible (else the rate closest to it); f32 > i32 > i16.
fn choose_config(
    ranges: &[cpal::SupportedStreamConfigRange],
    wanted_channels: Option<usize>,
    frame_len: usize,
) -> Result<Chosen, String> {
    let usable: Vec<&cpal::SupportedStreamConfigRange> = ranges
        .iter()
        .filter(|r| format_rank(r.sample_format()).is_some() && r.channels() > 0)
        .collect();
    if usable.is_empty() {
        return Err("no configuration with f32, i32 or i16 samples".into());
    }
    let max_ch = usable.iter().map(|r| r.channels()).max().unwrap_or(0);
    let channels = wanted_channels
        .and_then(|w| u16::try_from(w).ok())
        .filter(|w| usable.iter().any(|r| r.channels() == *w))
        .unwrap_or(max_ch)
        .min(MAX_CHANNELS as u16);
    let best = usable
        .iter()
        .filter(|r| r.channels() == channels)
        .map(|r| {
            let rate = SAMPLE_RATE.clamp(r.min_sample_rate().0, r.max_sample_rate().0);
            (
                rate.abs_diff(SAMPLE_RATE),
                format_rank(r.sample_format()),
                rate,
                *r,
            )
        })
        .min_by_key(|(dist, rank, rate, _)| (*dist, *rank, u32::MAX - *rate))
        .ok_or("no configuration with the chosen channel count")?;
    let (_, _, rate, range) = best;
    let target = (frame_len as u64 * rate as u64 / SAMPLE_RATE as u64) as u32;
    let buffer = match range.buffer_size() {
        cpal::SupportedBufferSize::Range { min, max } if *min <= target && target <= *max => {
            Some(target)
        }
        _ => None,
    };
    Ok(Chosen {
        channels,
        rate,
        format: range.sample_format(),
        buffer,
    })
}

/// Finds a device: the default input for `None`, else by exact name, then by
/// case-insensitive substring.
fn find_device(host: &cpal::Host, name: Option<&str>) -> Result<cpal::Device, AudioError> {
    let Some(name) = name else {
        return host
            .default_input_device()
            .ok_or_else(|| AudioError::NoDevice("the audio host has no default input".into()));
    };
    let devices: Vec<(String, cpal::Device)> = match host.input_devices() {
        Ok(d) => d.filter_map(|d| d.name().ok().map(|n| (n, d))).collect(),
        Err(e) => {
            tracing::debug!("cannot enumerate input devices: {e}");
            Vec::new()
        }
    };
    let lower = name.to_lowercase();
    let idx = devices.iter().position(|(n, _)| n == name).or_else(|| {
        devices
            .iter()
            .position(|(n, _)| n.to_lowercase().contains(&lower))
    });
    if let Some(i) = idx {
        if let Some((_, d)) = devices.into_iter().nth(i) {
            return Ok(d);
        }
        return Err(AudioError::NoDevice(
            "device list changed while searching".into(),
        ));
    }
    let names: Vec<&str> = devices.iter().map(|(n, _)| n.as_str()).collect();
    Err(AudioError::DeviceNotFound {
        name: name.to_string(),
        available: if names.is_empty() {
            "none".into()
        } else {
            names.join(", ")
        },
    })
}

/// Looks up the device and its configuration (for the first open and every reopen).
fn resolve(
    host: &cpal::Host,
    query: Option<&str>,
    opts: &InputOptions,
) -> Result<(cpal::Device, String, Chosen), AudioError> {
    let device = find_device(host, query)?;
    let name = device.name().unwrap_or_else(|_| "(unnamed)".into());
    let ranges: Vec<_> = match device.supported_input_configs() {
        Ok(r) => r.collect(),
        Err(e) => {
            let problem = format!("cannot read its configurations: {e}");
            return Err(if query.is_none() {
                AudioError::NoDevice(format!("default input {name:?}: {problem}"))
            } else {
                AudioError::Device { name, problem }
            });
        }
    };
    let chosen = choose_config(&ranges, opts.channels, opts.frame_len).map_err(|problem| {
        if query.is_none() && ranges.is_empty() {
            AudioError::NoDevice(format!("default input {name:?}: {problem}"))
        } else {
            AudioError::Device {
                name: name.clone(),
                problem,
            }
        }
    })?;
    Ok((device, name, chosen))
}

/// Resampling stage of the callback: collects `chunk_in` device frames per channel,
/// converts them to `chunk_out` frames at 48 kHz. All buffers allocated up front.
struct Resample {
    rs: FftFixedInOut<f32>,
    inbuf: Vec<Vec<f32>>,
    outbuf: Vec<Vec<f32>>,
    fill: usize,
}

/// Everything the capture callback owns. Gives the sink back to the supervisor on drop.
struct Capture {
    dev_ch: usize,
    out_ch: usize,
    frame_len: usize,
    /// Frame being assembled (`out_ch * frame_len` samples) and how many sample frames it holds.
    frame: Vec<f32>,
    fill: usize,
    resample: Option<Resample>,
    sink: Option<FrameSink>,
    back: mpsc::Sender<FrameSink>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take() {
            let _ = self.back.send(sink);
        }
    }
}

impl Capture {
    /// Appends one 48 kHz sample frame whose channel `c` is `get(c)` (`c < src_ch`).
    #[inline]
    fn put(
        frame: &mut [f32],
        fill: &mut usize,
        out_ch: usize,
        frame_len: usize,
        src_ch: usize,
        sink: &mut Option<FrameSink>,
        get: impl Fn(usize) -> f32,
    ) {
        let base = *fill * out_ch;
        let common = src_ch.min(out_ch);
        for c in 0..common {
            frame[base + c] = get(c);
        }
        frame[base + common..base + out_ch].fill(0.0);
        *fill += 1;
        if *fill == frame_len {
            if let Some(s) = sink.as_mut() {
                s.push(frame);
            }
            *fill = 0;
        }
    }

    /// The data callback body: real-time safe. In debug builds with the
    /// `assert_no_alloc` allocator installed (the crate's unit tests), an allocation or
    /// free in here aborts.
    fn feed<T>(&mut self, data: &[T])
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        assert_no_alloc::assert_no_alloc(|| self.feed_frames(data));
    }

    fn feed_frames<T>(&mut self, data: &[T])
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let dev_ch = self.dev_ch;
        let (out_ch, frame_len) = (self.out_ch, self.frame_len);
        match self.resample.as_mut() {
            None => {
                for src in data.chunks_exact(dev_ch) {
                    Self::put(
                        &mut self.frame,
                        &mut self.fill,
                        out_ch,
                        frame_len,
                        dev_ch,
                        &mut self.sink,
                        |c| f32::from_sample_(src[c]),
                    );
                }
            }
            Some(r) => {
                let chunk_in = r.inbuf.first().map_or(0, |b| b.len());
                let used = r.inbuf.len();
                for src in data.chunks_exact(dev_ch) {
                    for (c, buf) in r.inbuf.iter_mut().enumerate() {
                        buf[r.fill] = f32::from_sample_(src[c]);
                    }
                    r.fill += 1;
                    if r.fill < chunk_in {
                        continue;
                    }
                    r.fill = 0;
                    let n = match r.rs.process_into_buffer(&r.inbuf, &mut r.outbuf, None) {
                        Ok((_, n)) => n,
                        Err(_) => 0,
                    };
                    for i in 0..n {
                        let out = &r.outbuf;
                        Self::put(
                            &mut self.frame,
                            &mut self.fill,
                            out_ch,
                            frame_len,
                            used,
                            &mut self.sink,
                            |c| out[c][i],
                        );
                    }
                }
            }
        }
    }
}

/// What the supervisor needs to (re)open the device.
struct Plan {
    query: Option<String>,
    opts: InputOptions,
    out_ch: usize,
}

/// Builds and starts a stream. The sink is taken out of `sink` only when the callback is
/// built; if building fails afterwards, it comes back through `back`.
fn start_stream(
    plan: &Plan,
    sink: &mut Option<FrameSink>,
    back: &mpsc::Sender<FrameSink>,
    errors: &mpsc::SyncSender<StreamError>,
) -> Result<(cpal::Stream, String), AudioError> {
    let host = cpal::default_host();
    let (device, name, chosen) = resolve(&host, plan.query.as_deref(), &plan.opts)?;
    let dev_ch = chosen.channels as usize;
    let dev_err = |problem: String| AudioError::Device {
        name: name.clone(),
        problem,
    };
    let resample = if chosen.rate == SAMPLE_RATE {
        None
    } else {
        let used = dev_ch.min(plan.out_ch);
        let chunk =
            (plan.opts.frame_len as u64 * chosen.rate as u64 / SAMPLE_RATE as u64).max(1) as usize;
        let rs = FftFixedInOut::<f32>::new(chosen.rate as usize, SAMPLE_RATE as usize, chunk, used)
            .map_err(|e| dev_err(format!("cannot resample from {} Hz: {e}", chosen.rate)))?;
        Some(Resample {
            inbuf: rs.input_buffer_allocate(true),
            outbuf: rs.output_buffer_allocate(true),
            rs,
            fill: 0,
        })
    };
    let Some(s) = sink.take() else {
        return Err(dev_err("internal: frame sink missing".into()));
    };
    let mut capture = Capture {
        dev_ch,
        out_ch: plan.out_ch,
        frame_len: plan.opts.frame_len,
        frame: vec![0.0; plan.out_ch * plan.opts.frame_len],
        fill: 0,
        resample,
        sink: Some(s),
        back: back.clone(),
    };
    let config = cpal::StreamConfig {
        channels: chosen.channels,
        sample_rate: cpal::SampleRate(chosen.rate),
        buffer_size: chosen
            .buffer
            .map_or(cpal::BufferSize::Default, cpal::BufferSize::Fixed),
    };
    let err_tx = errors.clone();
    let on_error = move |e: StreamError| {
        let _ = err_tx.try_send(e);
    };
    let stream = match chosen.format {
        SampleFormat::F32 => device.build_input_stream(
            &config,
            move |d: &[f32], _: &_| capture.feed(d),
            on_error,
            None,
        ),
        SampleFormat::I32 => device.build_input_stream(
            &config,
            move |d: &[i32], _: &_| capture.feed(d),
            on_error,
            None,
        ),
        _ => device.build_input_stream(
            &config,
            move |d: &[i16], _: &_| capture.feed(d),
            on_error,
            None,
        ),
    }
    .map_err(|e| dev_err(format!("cannot open a capture stream: {e}")))?;
    stream
        .play()
        .map_err(|e| dev_err(format!("cannot start capture: {e}")))?;
    let mut desc = format!(
        "device {name:?}: {} ch {} @ {} Hz",
        chosen.channels, chosen.format, chosen.rate
    );
    if chosen.rate != SAMPLE_RATE {
        desc.push_str(", resampled to 48000 Hz");
    }
    if plan.out_ch != dev_ch {
        desc.push_str(&format!(", mapped to {} ch", plan.out_ch));
    }
    Ok((stream, desc))
}

/// Owns the supervisor thread; dropping it closes the stream and joins the thread.
pub type DeviceHandle = super::clock::StopHandle;

/// A started device input (see [`super::open`], which wraps it into an `Input`).
pub struct OpenedDevice {
    pub reader: FrameReader,
    pub channels: usize,
    pub description: String,
    pub stats: Arc<InputStats>,
    pub handle: DeviceHandle,
}

/// Opens a device input and starts its supervisor. Fails with [`AudioError::NoDevice`]
/// when `name` is `None` and the machine has no usable input device, with
/// [`AudioError::DeviceNotFound`] when a named device does not exist.
pub fn open(name: Option<&str>, opts: &InputOptions) -> Result<OpenedDevice, AudioError> {
    let host = cpal::default_host();
    let (_, _, chosen) = resolve(&host, name, opts)?;
    let out_ch = opts.channels.unwrap_or(chosen.channels as usize);
    let (writer, reader) = pipe(out_ch * opts.frame_len, RING_FRAMES);
    let stats = Arc::new(InputStats::default());
    let sink = FrameSink::new(writer, stats.clone());
    let plan = Plan {
        query: name.map(str::to_string),
        opts: *opts,
        out_ch,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (first_tx, first_rx) = mpsc::sync_channel(1);
    let stop_t = stop.clone();
    let thread = std::thread::Builder::new()
        .name("input-device".into())
        .spawn({
            let stats = stats.clone();
            move || supervise(plan, sink, stats, stop_t, first_tx)
        })?;
    let mut handle = DeviceHandle::new(stop, thread, "input device supervisor");
    match first_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(description)) => Ok(OpenedDevice {
            reader,
            channels: out_ch,
            description,
            stats,
            handle,
        }),
        Ok(Err(e)) => {
            handle.shutdown();
            Err(e)
        }
        Err(_) => {
            handle.shutdown();
            Err(AudioError::Device {
                name: name.unwrap_or("default").to_string(),
                problem: "the capture stream did not start within 10 s".into(),
            })
        }
    }
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
    let mut last = count();
    let mut last_change = Instant::now();
    let mut logged = 0u32;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ended::Stopped;
        }
        match errors.recv_timeout(Duration::from_millis(100)) {
            Ok(StreamError::DeviceNotAvailable) => {
                return Ended::Lost("device not available (unplugged?)".into())
            }
            Ok(e) => {
                if logged < 10 {
                    tracing::warn!("input stream error: {e}");
                    logged += 1;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ended::Lost("stream error channel closed".into())
            }
        }
        let now = count();
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() > STALL_TIMEOUT {
            return Ended::Lost(format!("no audio for {} s", STALL_TIMEOUT.as_secs()));
        }
    }
}

/// The supervisor: open, watch, and on loss feed silence and retry every second.
fn supervise(
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
    while !stop.load(Ordering::Relaxed) {
        while err_rx.try_recv().is_ok() {}
        let result = start_stream(&plan, &mut sink, &back_tx, &err_tx);
        match result {
            Ok((stream, desc)) => {
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
                drop(stream);
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
    use cpal::{SampleRate, SupportedBufferSize, SupportedStreamConfigRange};

    fn range(ch: u16, lo: u32, hi: u32, f: SampleFormat) -> SupportedStreamConfigRange {
        SupportedStreamConfigRange::new(
            ch,
            SampleRate(lo),
            SampleRate(hi),
            SupportedBufferSize::Range { min: 64, max: 8192 },
            f,
        )
    }

    #[test]
    fn prefers_48k_f32_and_all_channels() {
        let ranges = [
            range(2, 44_100, 96_000, SampleFormat::F32),
            range(18, 44_100, 48_000, SampleFormat::I32),
            range(18, 48_000, 48_000, SampleFormat::I16),
            range(18, 8_000, 192_000, SampleFormat::U8),
        ];
        let c = choose_config(&ranges, None, 480).unwrap();
        assert_eq!(
            (c.channels, c.rate, c.format, c.buffer),
            (18, 48_000, SampleFormat::I32, Some(480))
        );
        let c = choose_config(&ranges, Some(2), 480).unwrap();
        assert_eq!(
            (c.channels, c.rate, c.format),
            (2, 48_000, SampleFormat::F32)
        );
        // A channel count the device does not offer opens the device's largest.
        assert_eq!(choose_config(&ranges, Some(7), 480).unwrap().channels, 18);
    }

    #[test]
    fn falls_back_to_the_rate_closest_to_48k() {
        let ranges = [
            range(2, 44_100, 44_100, SampleFormat::I16),
            range(2, 96_000, 96_000, SampleFormat::F32),
        ];
        let c = choose_config(&ranges, None, 480).unwrap();
        assert_eq!(
            (c.rate, c.format, c.buffer),
            (44_100, SampleFormat::I16, Some(441))
        );
        assert!(choose_config(&[range(2, 48_000, 48_000, SampleFormat::U16)], None, 480).is_err());
    }

    fn capture(
        dev_ch: usize,
        out_ch: usize,
        rate: u32,
    ) -> (Capture, FrameReader, mpsc::Receiver<FrameSink>) {
        let (w, r) = pipe(out_ch * 480, 128);
        let (tx, rx) = mpsc::channel();
        let resample = (rate != SAMPLE_RATE).then(|| {
            let rs =
                FftFixedInOut::<f32>::new(rate as usize, 48_000, 441, dev_ch.min(out_ch)).unwrap();
            Resample {
                inbuf: rs.input_buffer_allocate(true),
                outbuf: rs.output_buffer_allocate(true),
                rs,
                fill: 0,
            }
        });
        let c = Capture {
            dev_ch,
            out_ch,
            frame_len: 480,
            frame: vec![0.0; out_ch * 480],
            fill: 0,
            resample,
            sink: Some(FrameSink::new(w, Arc::new(InputStats::default()))),
            back: tx,
        };
        (c, r, rx)
    }

    #[test]
    fn callback_assembles_whole_frames_and_maps_channels() {
        let (mut c, mut r, rx) = capture(3, 2, 48_000);
        // i16 callbacks of odd sizes: 1000 frames of 3 channels, value = frame index.
        let data: Vec<i16> = (0..1000).flat_map(|n| [n as i16, -(n as i16), 7]).collect();
        for part in data.chunks(3 * 77) {
            c.feed(part);
        }
        let mut f = vec![0.0f32; 2 * 480];
        for k in 0..2 {
            assert!(r.pop(&mut f));
            for (i, s) in f.chunks_exact(2).enumerate() {
                let n = (k * 480 + i) as f32 / 32768.0;
                assert_eq!(s, [n, -n]);
            }
        }
        assert!(
            !r.pop(&mut f),
            "the 40 leftover samples wait for the next callback"
        );
        drop(c);
        assert!(
            rx.try_recv().is_ok(),
            "dropping the callback hands the sink back"
        );
    }

    #[test]
    fn callback_resamples_44k1_to_48k() {
        let (mut c, mut r, _rx) = capture(1, 1, 44_100);
        let tone: Vec<f32> = (0..44_100)
            .map(|n| 0.5 * (std::f64::consts::TAU * 1000.0 * n as f64 / 44_100.0).sin() as f32)
            .collect();
        for part in tone.chunks(512) {
            c.feed(part);
        }
        let mut out = Vec::new();
        let mut f = vec![0.0f32; 480];
        while r.pop(&mut f) {
            out.extend_from_slice(&f);
        }
        // One second in -> about one second out (minus what the resampler holds back).
        assert!((47_000..=48_000).contains(&out.len()), "{}", out.len());
        // Count zero crossings in the settled part: 1 kHz -> 2000 per second.
        let settled = &out[4800..4800 + 24_000];
        let crossings = settled
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((995..=1005).contains(&crossings), "{crossings} in 0.5 s");
        let peak = settled.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 0.02, "{peak}");
    }

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
