//! Inputs: everything that produces the stage channels. Each input yields 48 kHz `f32`
//! frames of N interleaved channels into a [`crate::frames`] pipe on a real-time clock;
//! the engine thread reads that pipe and is clocked by it.
//!
//! Table of inputs, default first: `demo`, `tones`, `file:PATH`, `device[:NAME]`.
//!
//! - [`spec`]: parsing the input name (`InputSpec`).
//! - [`clock`]: the real-time thread that drives synthetic and file inputs.
//! - [`demo`], [`tones`], [`file`]: generators (render on demand, no I/O, no allocation).
//! - [`device`]: cpal capture, resampling to 48 kHz, reconnection after unplugging.
//! - [`output`]: counters and the frame sink every input pushes through.
//!
//! [`open`] is the one entry point: it turns an [`InputSpec`] into a running [`Input`].

pub mod clock;
pub mod demo;
pub mod device;
pub mod file;
pub mod output;
pub mod spec;
pub mod tones;

use std::path::PathBuf;
use std::sync::Arc;

pub use output::{InputStats, InputStatsSnapshot};
pub use spec::{InputSpec, SpecError};

use crate::frames::{pipe, FrameReader};

pub use crate::limits::{DEFAULT_FRAME_LEN, FRAME_LENS, MAX_CHANNELS, SAMPLE_RATE};

/// Frames the input -> engine ring holds. Enough to ride out scheduling jitter of a few
/// periods, small enough that a stalled engine drops stale audio instead of queueing
/// latency.
pub const RING_FRAMES: usize = 8;

/// Channel count of `tones` when no `channels` option is given.
pub const DEFAULT_TONE_CHANNELS: usize = 8;

/// A synthetic or file input that renders samples on demand. A clock thread calls
/// [`Generator::render`] once per frame period, so it must be real-time safe too.
pub trait Generator: Send + 'static {
    /// Channels per sample frame.
    fn channels(&self) -> usize;
    /// Fills `out` (interleaved, `out.len()` a multiple of `channels()`) with the next samples.
    fn render(&mut self, out: &mut [f32]);
    /// What each channel carries, where the source knows (the demo band's parts); empty
    /// otherwise. Shown on the page unless the config names the channel.
    fn channel_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Why an input could not be opened. Every message names what was wrong and, where it
/// helps, what would work instead.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "frame length {0} is not supported: use {lens:?} samples ({ms} ms)",
        lens = FRAME_LENS,
        ms = crate::limits::frame_ms_list()
    )]
    FrameLen(usize),
    #[error("channel count {0} is out of range 1..={MAX_CHANNELS}")]
    Channels(usize),
    #[error("WAV file {}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    #[error("no audio input device named {name:?}; available inputs: {available}")]
    DeviceNotFound { name: String, available: String },
    #[error("no audio input device: {0}")]
    NoDevice(String),
    #[error("audio input device {name:?}: {problem}")]
    Device { name: String, problem: String },
    #[error("cannot start the input thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// How to open an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputOptions {
    /// Samples per frame per channel; one of [`FRAME_LENS`].
    pub frame_len: usize,
    /// Forces the channel count. `None` keeps the input's natural count (tones: 8, demo:
    /// 8, file: the file's, device: the device's). When set, channel k of the source goes
    /// to channel k; missing channels are zero-filled and surplus ones are dropped. For a
    /// device it also picks the opened channel count when the device supports it.
    pub channels: Option<usize>,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            frame_len: DEFAULT_FRAME_LEN,
            channels: None,
        }
    }
}

/// A running input: read frames from `reader`; dropping `handle` stops it.
pub struct Input {
    /// Frames of `channels * frame_len` interleaved samples, at 48 kHz real time.
    pub reader: FrameReader,
    pub channels: usize,
    pub frame_len: usize,
    /// Human-readable summary for logs and the UI (what is playing, format, fallbacks).
    pub description: String,
    /// The source's own names for its channels (index = channel; may be shorter than
    /// `channels`, or empty): see [`crate::config::Config::channel_names`].
    pub channel_names: Vec<String>,
    pub handle: InputHandle,
}

/// Keeps the producing thread or stream alive; stops it on drop.
pub struct InputHandle {
    stats: Arc<InputStats>,
    runner: Runner,
}

enum Runner {
    Clock(clock::ClockHandle),
    Device(device::DeviceHandle),
}

impl InputHandle {
    /// Live counters (frames produced and dropped, device reconnects, clock resyncs).
    pub fn stats(&self) -> &Arc<InputStats> {
        &self.stats
    }

    /// Stops the input now (same as dropping the handle).
    pub fn stop(self) {
        match self.runner {
            Runner::Clock(c) => c.stop(),
            Runner::Device(d) => d.stop(),
        }
    }
}

/// Opens and starts an input. Frames begin to flow at once.
///
/// `device` without a name falls back to `demo` (with a warning) when the machine has
/// no usable input device at all, so the server always has something to play; a device
/// asked for by name that is missing is an error.
pub fn open(spec: &InputSpec, opts: &InputOptions) -> Result<Input, AudioError> {
    if !FRAME_LENS.contains(&opts.frame_len) {
        return Err(AudioError::FrameLen(opts.frame_len));
    }
    if let Some(n) = opts.channels {
        if n == 0 || n > MAX_CHANNELS {
            return Err(AudioError::Channels(n));
        }
    }
    match spec {
        InputSpec::Demo => start_generator(
            Box::new(demo::Demo::new()),
            "demo",
            "demo: synthesized band, 8 channels (click, kick, snare, hi-hat, bass, keys, pad, lead)"
                .to_string(),
            opts,
        ),
        InputSpec::Tones => {
            let n = opts.channels.unwrap_or(DEFAULT_TONE_CHANNELS);
            start_generator(
                Box::new(tones::Tones::new(n)),
                "tones",
                format!("tones: {n} channels of test sines at -20 dBFS"),
                opts,
            )
        }
        InputSpec::File(path) => {
            let wav = file::WavLoop::open(path)?;
            let description = wav.description().to_string();
            start_generator(Box::new(wav), "file", description, opts)
        }
        InputSpec::Device(name) => match device::open(name.as_deref(), opts) {
            Err(AudioError::NoDevice(why)) if name.is_none() => {
                tracing::warn!("no audio input device ({why}); playing the demo band instead");
                let mut input = open(&InputSpec::Demo, opts)?;
                input.description = format!("{} [fallback: no input device]", input.description);
                Ok(input)
            }
            Err(e) => Err(e),
            Ok(dev) => Ok(Input {
                reader: dev.reader,
                channels: dev.channels,
                frame_len: opts.frame_len,
                description: dev.description,
                channel_names: Vec::new(),
                handle: InputHandle {
                    stats: dev.stats,
                    runner: Runner::Device(dev.handle),
                },
            }),
        },
    }
}

fn start_generator(
    generator: Box<dyn Generator>,
    name: &str,
    description: String,
    opts: &InputOptions,
) -> Result<Input, AudioError> {
    let channels = opts.channels.unwrap_or(generator.channels());
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::Channels(channels));
    }
    let mut channel_names = generator.channel_names();
    channel_names.truncate(channels);
    let (writer, reader) = pipe(channels * opts.frame_len, RING_FRAMES);
    let stats = Arc::new(InputStats::default());
    let sink = output::FrameSink::new(writer, stats.clone());
    let clock = clock::spawn(generator, opts.frame_len, sink, name)?;
    Ok(Input {
        reader,
        channels,
        frame_len: opts.frame_len,
        description,
        channel_names,
        handle: InputHandle {
            stats,
            runner: Runner::Clock(clock),
        },
    })
}
