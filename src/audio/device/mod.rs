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
//!   device is gone it feeds silent frames on a real-time [`Pacer`](super::clock::Pacer), so
//!   the engine, which is clocked by the pipe, keeps ticking and the server keeps serving.
//!
//! The frame sink moves into the callback while a stream runs and comes back to the
//! supervisor when the stream (and so the callback closure) is dropped: the closure's
//! owner sends it back from its `Drop`. No lock is ever shared with the callback.
//!
//! Files: `discover` (listing devices, finding one by name, choosing its configuration),
//! `capture` (the callback and the cpal stream that runs it), `supervisor` (the supervisor
//! thread and its reopen loop).

mod capture;
mod discover;
pub(crate) mod jack_gate;
pub mod pipewire;
mod supervisor;

use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

pub use discover::{list_devices, list_output_devices, ConfigRange, DeviceInfo, Direction};

use super::output::{FrameSink, InputStats};
use super::{AudioError, InputOptions, RING_FRAMES};
use crate::frames::{pipe, FrameReader};
use discover::resolve;
pub(crate) use discover::{find_named, format_rank, is_jack};
pub(crate) use supervisor::watch_stream;
use supervisor::{supervise, Plan};

/// How often a lost device is looked for again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// A running stream that delivers nothing for this long is treated as lost.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);

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

/// Input ports of monmix's JACK client when `[audio] channels` is not set.
pub const JACK_DEFAULT_CHANNELS: usize = 8;

/// Opens a device input and starts its supervisor. Fails with [`AudioError::NoDevice`]
/// when `name` is `None` and the machine has no usable input device, with
/// [`AudioError::DeviceNotFound`] when a named device does not exist.
pub fn open(name: Option<&str>, opts: &InputOptions) -> Result<OpenedDevice, AudioError> {
    let mut opts = *opts;
    // PipeWire offers any channel count: open the node's own, so nothing is mixed.
    let native = opts
        .channels
        .is_none()
        .then(|| pipewire::native_channels(name))
        .flatten();
    // JACK offers any count too, and has no node to ask: a stage box's eight ports unless
    // `[audio] channels` says otherwise.
    let jack = name
        .is_some_and(discover::is_jack)
        .then_some(JACK_DEFAULT_CHANNELS);
    opts.channels = opts.channels.or(native).or(jack);
    let opts = &opts;
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
        Ok(Ok(mut description)) => Ok(OpenedDevice {
            description: {
                if let Some(n) = native {
                    description.push_str(&format!(" (the PipeWire node's {n} channels)"));
                }
                description
            },
            reader,
            channels: out_ch,
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

/// A driver-reported delay in samples at `rate` (for the delay gauges).
pub(crate) fn duration_samples(d: std::time::Duration, rate: u32) -> u64 {
    (d.as_nanos() * u128::from(rate) / 1_000_000_000) as u64
}
