//! The real-time core of a playout: one engine mix -> one output device's callback.
//!
//! The engine writes whole stereo frames (`frame_len` samples per channel at 48 kHz) into a
//! [`FrameReader`] pipe on the engine's clock. The output device pulls `N` device frames at a
//! time on *its* clock, `N` arbitrary and varying. [`Playout::render`] bridges the two:
//!
//! - frames are pulled from the pipe only when needed, into a small preallocated FIFO of
//!   stereo samples at the device rate (one engine frame's worth);
//! - [`ClockMode::Shared`]: device and engine run on one clock, frames are copied bit-exact;
//! - [`ClockMode::Adaptive`]: the clocks differ (another device, 44.1/96 kHz, or 48 kHz off by
//!   a few hundred ppm), so a rubato resampler converts each frame and a PI controller steers
//!   its ratio so the buffered audio stays at [`Playout::target_fill`] forever, without drift
//!   into underruns or growing latency;
//! - pre-roll (silence until enough is buffered) at start and after an underrun, and a latency
//!   cap that sheds frames after a burst.
//!
//! Everything is allocated in [`Playout::new`]; `render` and `set_source` never allocate,
//! lock, log or make system calls.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use rubato::{FastFixedIn, PolynomialDegree, Resampler};

use crate::frames::FrameReader;
use crate::limits::SAMPLE_RATE;

/// Largest clock correction the controller applies. Real crystals are within ~100 ppm of
/// each other; 5000 ppm leaves room for a fast acquisition without audible pitch changes.
const MAX_PPM: f64 = 5000.0;
/// The resampler's allowed range around nominal; wider than [`MAX_PPM`] so setting the ratio
/// can never fail.
const RESAMPLER_MAX_RELATIVE: f64 = 1.01;
/// The controller averages the fill over this much device time before each update. The fill
/// seen at callback times is a sawtooth (frames arrive in lumps of `frame_len`, leave in lumps
/// of `N`); averaging over many callbacks gives its mean, an EMA started mid-tooth does not.
const WINDOW_SECS: f64 = 0.5;
/// Fast (acquisition) gains are used at least this long after (re)starting playback.
const FAST_SECS: f64 = 15.0;
/// The pipe must stay above the latency cap this long before frames are shed: a short burst
/// (the engine catching up after a hiccup) is absorbed by the controller instead.
const LATENCY_CAP_SECS: f64 = 0.5;
/// The plant: a correction of 1 ppm changes the fill by this many 48 kHz frames per second.
const PLANT_GAIN: f64 = SAMPLE_RATE as f64 * 1e-6;
/// Natural frequencies (rad/s) of the critically damped loop. Fast: pulls a 0.1 % clock
/// offset in with a fill error well under half a frame. Slow: once settled, so that the
/// residual sawtooth in the fill measurement barely modulates the pitch.
const WN_FAST: f64 = 0.4;
/// Fast gains when the callback phase is locked to the frame phase (e.g. `N` = 480 at
/// 48 kHz): the measured fill then drifts by up to a whole frame as the phase slips, and a
/// faster loop would chase that instead of the clock.
const WN_FAST_LOCKED: f64 = 0.2;
const WN_SLOW: f64 = 0.06;
/// The proportional term may speed playback up (drain excess buffer) by at most this much:
/// too much buffer only costs latency, so it is drained at an inaudible pitch offset
/// (~2 cents) instead of a start-up pitch bend. Refilling (underrun danger) is not limited.
const MAX_DRAIN_PPM: f64 = 1000.0;

/// How the output device's clock relates to the engine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Same clock as the input (same device, same PipeWire graph): no resampling, the ratio
    /// is fixed at 1.0 and the audio passes bit-exact. Requires a 48 kHz device.
    Shared,
    /// Independent clock: a resampler whose ratio the fill controller steers.
    Adaptive,
}

/// Counters and gauges of one playout, written by the callback, read by metrics and tests.
#[derive(Debug, Default)]
pub struct PlayoutStats {
    /// Callbacks (or parts of one) that had to play silence because no frame was there while
    /// a source was set: the one that ran dry, and each one waiting for the pre-roll after
    /// it. The pre-roll of a fresh source is not counted.
    pub underruns: AtomicU64,
    /// Engine frames consumed.
    pub frames_played: AtomicU64,
    /// Engine frames skipped to shed excess latency.
    pub dropped: AtomicU64,
    /// Gauge: buffered audio (pipe + internal FIFO) in 48 kHz sample frames, measured at the
    /// start of the last callback.
    pub fill_samples: AtomicU64,
    /// Gauge: the resample ratio's deviation from nominal, in ppm (0 in `Shared` mode).
    pub ratio_ppm: AtomicI64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Fresh source: silence until the pre-roll is buffered; not an underrun.
    Priming,
    Playing,
    /// Ran dry mid-play: silence (counted) until the pre-roll is buffered again.
    Rebuffering,
}

/// The resampler and its planar input buffer (one engine frame).
struct Adaptive {
    rs: FastFixedIn<f32>,
    input: [Vec<f32>; 2],
}

/// PI controller: fill error (48 kHz frames) -> clock correction (ppm).
///
/// The integral converges to the true clock offset between engine and device, so it is kept
/// across underruns and source changes (every mix runs on the engine's clock).
#[derive(Debug, Default)]
struct Controller {
    /// Integral term, ppm (sign: positive integral = fill too high = consume faster).
    integral: f64,
    /// Current correction, ppm.
    ppm: f64,
    /// Fill integrated over the current window, and the window's length (s).
    acc: f64,
    acc_secs: f64,
    /// Playing time since (re)start, for the fast -> slow hand-over.
    played_secs: f64,
    fast: bool,
    /// Callback and frame phases locked (few distinct phases): see [`WN_FAST_LOCKED`].
    locked: bool,
}

impl Controller {
    /// (Kp in ppm per frame of error, Ki in ppm per frame-second) of a critically damped loop.
    fn gains(&self) -> (f64, f64) {
        let wn = match (self.fast, self.locked) {
            (false, _) => WN_SLOW,
            (true, false) => WN_FAST,
            (true, true) => WN_FAST_LOCKED,
        };
        (2.0 * wn / PLANT_GAIN, wn * wn / PLANT_GAIN)
    }

    /// Playback (re)starts: a new measurement, fast gains, the correction from the integral
    /// alone (no proportional kick from a stale error).
    fn begin(&mut self) {
        self.restart_window();
        self.played_secs = 0.0;
        self.fast = true;
        self.ppm = (-self.integral).clamp(-MAX_PPM, MAX_PPM);
    }

    /// Drops the current window (the fill just stepped, e.g. after shedding frames).
    fn restart_window(&mut self) {
        self.acc = 0.0;
        self.acc_secs = 0.0;
    }

    /// Feeds one callback's fill measurement (`dt` seconds of device time). Returns true when
    /// the correction changed.
    fn update(&mut self, fill: f64, target: f64, frame_len: f64, dt: f64) -> bool {
        self.played_secs += dt;
        self.acc += fill * dt;
        self.acc_secs += dt;
        if self.acc_secs < WINDOW_SECS {
            return false;
        }
        let window = self.acc_secs;
        let e = self.acc / window - target;
        self.restart_window();
        let p_old = p_term(self.gains().0, e);
        if self.fast && self.played_secs >= FAST_SECS && e.abs() < frame_len / 4.0 {
            self.fast = false;
        } else if !self.fast && e.abs() > 2.0 * frame_len {
            self.fast = true;
            self.played_secs = 0.0;
        }
        let (kp, ki) = self.gains();
        let p = p_term(kp, e);
        // Bumpless gain change: the output stays continuous, the integral takes the step.
        self.integral += p - p_old;
        self.integral = (self.integral + ki * e * window).clamp(-MAX_PPM, MAX_PPM);
        self.ppm = (p - self.integral).clamp(-MAX_PPM, MAX_PPM);
        true
    }
}

/// Proportional term (ppm) for error `e`: fill too high -> negative (consume faster).
fn p_term(kp: f64, e: f64) -> f64 {
    (-kp * e).max(-MAX_DRAIN_PPM)
}

/// Feeds one output device's callback from one engine mix. See the module docs.
pub struct Playout {
    frame_len: usize,
    device_rate: u32,
    stats: Arc<PlayoutStats>,
    src: Option<FrameReader>,
    state: State,
    /// `frame_len + frame_len / 2`: the default target.
    base_target: usize,
    /// Effective target (48 kHz frames): grows with the largest callback seen.
    target: usize,
    /// Largest callback seen (device frames).
    max_request: usize,
    /// One interleaved engine frame, as popped.
    scratch: Vec<f32>,
    /// Planar stereo FIFO at the device rate (one converted engine frame) and its read span.
    fifo: [Vec<f32>; 2],
    fifo_pos: usize,
    fifo_len: usize,
    adaptive: Option<Adaptive>,
    ctl: Controller,
    /// How long the pipe has been above the latency cap.
    over_secs: f64,
    /// `Shared` mode: the lowest fill seen at a callback start in the current window, and
    /// the window's length so far (s). See [`Playout::shed_shared_excess`].
    win_min: f64,
    win_secs: f64,
    /// `Shared` mode: the lowest fill of the first window since playback (re)started.
    base_min: Option<f64>,
}

impl Playout {
    /// Allocates everything. `device_rate` any of 44100/48000/88200/96000 etc.; `Shared`
    /// mode requires 48000 (no resampling).
    pub fn new(
        frame_len: usize,
        device_rate: u32,
        mode: ClockMode,
        stats: Arc<PlayoutStats>,
    ) -> Result<Self, String> {
        if !(16..=8192).contains(&frame_len) {
            return Err(format!("frame length {frame_len} out of range 16..=8192"));
        }
        if !(8_000..=768_000).contains(&device_rate) {
            return Err(format!("device rate {device_rate} Hz out of range"));
        }
        let adaptive = match mode {
            ClockMode::Shared if device_rate != SAMPLE_RATE => {
                return Err(format!(
                    "shared clock needs a {SAMPLE_RATE} Hz device, this one runs at {device_rate} Hz"
                ));
            }
            ClockMode::Shared => None,
            ClockMode::Adaptive => {
                // FastFixedIn (cubic): a sinc resampler costs ~10x more per sample; for a
                // monitor feed the polynomial's small high-frequency loss is the better trade.
                let rs = FastFixedIn::new(
                    f64::from(device_rate) / f64::from(SAMPLE_RATE),
                    RESAMPLER_MAX_RELATIVE,
                    PolynomialDegree::Cubic,
                    frame_len,
                    2,
                )
                .map_err(|e| format!("resampler: {e}"))?;
                Some(Adaptive {
                    rs,
                    input: [vec![0.0; frame_len], vec![0.0; frame_len]],
                })
            }
        };
        let fifo_cap = adaptive
            .as_ref()
            .map_or(frame_len, |a| a.rs.output_frames_max())
            .max(frame_len);
        // One clock: the fill does not drift and needs no controller margin, only a callback's
        // worth (added once callbacks are seen) and half a frame for scheduling order.
        let base_target = match mode {
            ClockMode::Shared => frame_len / 2,
            ClockMode::Adaptive => frame_len + frame_len / 2,
        };
        Ok(Self {
            frame_len,
            device_rate,
            stats,
            src: None,
            state: State::Priming,
            base_target,
            target: base_target,
            max_request: 0,
            scratch: vec![0.0; 2 * frame_len],
            fifo: [vec![0.0; fifo_cap], vec![0.0; fifo_cap]],
            fifo_pos: 0,
            fifo_len: 0,
            adaptive,
            ctl: Controller::default(),
            over_secs: 0.0,
            win_min: f64::INFINITY,
            win_secs: 0.0,
            base_min: None,
        })
    }

    /// Target buffered audio in 48 kHz sample frames: `frame_len + frame_len / 2`, or more
    /// once the device asks for callbacks so large (or so phase-locked to the frames) that
    /// this would not cover one callback plus the frame-arrival jitter.
    pub fn target_fill(&self) -> usize {
        self.target
    }

    /// Swaps the source (a new mix routed, or `None` = silence) and returns the previous one,
    /// to be dropped off the real-time thread. Never allocates: callable from the callback.
    /// The new source starts with a pre-roll; leftover audio of the old one is discarded.
    /// A reader whose frames are not `2 * frame_len` samples plays as silence.
    pub fn set_source(&mut self, src: Option<FrameReader>) -> Option<FrameReader> {
        let old = std::mem::replace(&mut self.src, src);
        self.state = State::Priming;
        self.fifo_pos = 0;
        self.fifo_len = 0;
        self.over_secs = 0.0;
        self.restart_min_window();
        self.base_min = None;
        old
    }

    /// True while a source is set (it may still be priming).
    pub fn has_source(&self) -> bool {
        self.src.is_some()
    }

    /// The callback body. `out` is interleaved with `dev_ch` channels; writes the mix's left
    /// into channel `left` and right into `right` (`None`: mono, (L+R)/2 into `left`), and
    /// leaves every other channel untouched. Out-of-range channels are skipped. Real-time
    /// safe; under the crate's test allocator an allocation in here aborts.
    pub fn render(&mut self, out: &mut [f32], dev_ch: usize, left: usize, right: Option<usize>) {
        assert_no_alloc::assert_no_alloc(|| self.render_inner(out, dev_ch, left, right));
    }

    fn render_inner(&mut self, out: &mut [f32], dev_ch: usize, left: usize, right: Option<usize>) {
        if dev_ch == 0 || out.len() < dev_ch {
            return;
        }
        let n = out.len() / dev_ch;
        let out = &mut out[..n * dev_ch];
        if n > self.max_request {
            self.max_request = n;
            self.recompute_target();
        }
        let fl = self.frame_len;
        let mut pipe_frames = match self.src.as_ref() {
            Some(s) if s.frame_samples() == 2 * fl => s.frames_available(),
            _ => {
                write_silence(out, dev_ch, left, right);
                self.stats.fill_samples.store(0, Ordering::Relaxed);
                self.publish_ratio();
                return;
            }
        };
        let mut fill = (pipe_frames * fl) as f64 + self.fifo_level_48k();
        self.stats
            .fill_samples
            .store(fill.round() as u64, Ordering::Relaxed);
        let target = self.target as f64;
        let flf = fl as f64;

        if self.state != State::Playing {
            // Start half a frame above target: the fill crosses the threshold on a frame's
            // arrival, at the top of its sawtooth, so its mean then starts at or above target.
            let start = target + flf / 2.0;
            if fill < start {
                write_silence(out, dev_ch, left, right);
                if self.state == State::Rebuffering {
                    self.stats.underruns.fetch_add(1, Ordering::Relaxed);
                }
                self.publish_ratio();
                return;
            }
            // A burst arrived while waiting: start at the pre-roll, not above it. Whole frames
            // are skipped, the rest is trimmed off the first frame (never heard), so playback
            // starts with the fill exactly at the threshold whatever the arrival pattern.
            let skipped = self.skip_frames(((fill - start) / flf) as usize);
            pipe_frames -= skipped;
            fill -= (skipped * fl) as f64;
            self.begin_playing();
            if fill > start && self.fifo_pos >= self.fifo_len && self.refill() {
                pipe_frames = pipe_frames.saturating_sub(1);
                let per_48k = f64::from(self.device_rate) / f64::from(SAMPLE_RATE);
                let trim = (((fill - start) * per_48k) as usize).min(self.fifo_len - self.fifo_pos);
                self.fifo_pos += trim;
                fill -= trim as f64 / per_48k;
            }
        }

        let dt = n as f64 / f64::from(self.device_rate);
        if let Some(a) = self.adaptive.as_mut() {
            if self.ctl.update(fill, target, flf, dt) {
                // Ramp: the ratio glides across the next frame instead of stepping.
                let _ =
                    a.rs.set_resample_ratio_relative(1.0 + self.ctl.ppm * 1e-6, true);
            }
        }

        if self.adaptive.is_none() {
            self.shed_shared_excess(fill, pipe_frames, dt);
        } else if (pipe_frames * fl) as f64 > target + 2.0 * flf {
            // Latency cap: a burst (the engine catching up after a stall) would otherwise be
            // played out late for as long as the controller needs to drain it.
            self.over_secs += dt;
            if self.over_secs >= LATENCY_CAP_SECS {
                self.skip_frames(((fill - target) / flf) as usize);
                self.ctl.restart_window();
                self.restart_min_window();
                self.over_secs = 0.0;
            }
        } else {
            self.over_secs = 0.0;
        }

        let mut done = 0;
        while done < n {
            if self.fifo_pos >= self.fifo_len && !self.refill() {
                write_silence(&mut out[done * dev_ch..], dev_ch, left, right);
                self.stats.underruns.fetch_add(1, Ordering::Relaxed);
                self.state = State::Rebuffering;
                break;
            }
            let k = (n - done).min(self.fifo_len - self.fifo_pos);
            let span = self.fifo_pos..self.fifo_pos + k;
            let frames = out[done * dev_ch..(done + k) * dev_ch].chunks_exact_mut(dev_ch);
            for ((frame, &l), &r) in frames
                .zip(&self.fifo[0][span.clone()])
                .zip(&self.fifo[1][span])
            {
                put(frame, left, right, l, r);
            }
            self.fifo_pos += k;
            done += k;
        }
        self.publish_ratio();
    }

    /// `Shared` mode's latency guard; returns the frames skipped.
    ///
    /// One clock means the fill never drifts, so audio buffered on top of what playback
    /// started with is latency the band hears for the rest of the gig: e.g. the engine
    /// played a frame of silence while the input stalled under load, and then the late
    /// input frames arrived as well (the adaptive controller would drain that; here nothing
    /// would). So the lowest fill of the
    /// first window after playback (re)starts is the baseline, and when a later window's
    /// lowest fill sits a frame or more above it, that many whole frames are skipped: back
    /// to the baseline, and never below one callback's worth (no underrun).
    fn shed_shared_excess(&mut self, fill: f64, pipe_frames: usize, dt: f64) -> usize {
        self.win_min = self.win_min.min(fill);
        self.win_secs += dt;
        if self.win_secs < LATENCY_CAP_SECS {
            return 0;
        }
        let lowest = self.win_min;
        self.restart_min_window();
        let Some(base) = self.base_min else {
            self.base_min = Some(lowest);
            return 0;
        };
        let fl = self.frame_len as f64;
        // An added frame lifts the lowest fill by one frame, give or take where the
        // callbacks fall on the frame grid: a quarter frame of tolerance.
        let mut k = ((lowest - base) / fl + 0.25).floor().max(0.0) as usize;
        let need = (self.max_request as u64 * u64::from(SAMPLE_RATE))
            .div_ceil(u64::from(self.device_rate)) as f64;
        while k > 0 && lowest - k as f64 * fl < need {
            k -= 1;
        }
        self.skip_frames(k.min(pipe_frames))
    }

    fn restart_min_window(&mut self) {
        self.win_min = f64::INFINITY;
        self.win_secs = 0.0;
    }

    /// Unplayed FIFO audio in 48 kHz frames (nominal ratio: the correction is ppm-small).
    fn fifo_level_48k(&self) -> f64 {
        (self.fifo_len - self.fifo_pos) as f64 * f64::from(SAMPLE_RATE)
            / f64::from(self.device_rate)
    }

    /// The target must cover one callback (`n48`), the frame sawtooth (half a frame) and how
    /// far the mean measured at callback times can sit from the true mean: half a frame over
    /// the number `b` of distinct callback/frame phases (1 when e.g. `N` = 480 at 48 kHz:
    /// the phase then slips only as the clocks drift), plus a quarter frame of margin for
    /// scheduling jitter and the controller's error.
    fn recompute_target(&mut self) {
        let fl = self.frame_len as u64;
        let rate = u64::from(SAMPLE_RATE);
        let dev = u64::from(self.device_rate);
        let n = self.max_request as u64;
        // Callback period / frame period = n * 48000 / (dev * fl), reduced: b phases.
        let period = dev * fl;
        let b = (period / gcd(n * rate, period).max(1)).max(1);
        let n48 = (n * rate).div_ceil(dev);
        let need = if self.adaptive.is_some() {
            n48 + fl / 2 + fl / (2 * b) + fl / 4
        } else {
            n48 + fl / 2
        };
        self.target = self.base_target.max(need as usize);
        self.ctl.locked = b <= 2;
    }

    fn begin_playing(&mut self) {
        self.state = State::Playing;
        self.over_secs = 0.0;
        self.restart_min_window();
        self.base_min = None;
        self.ctl.begin();
        if let Some(a) = self.adaptive.as_mut() {
            // Forget the audio before the gap; keep the learned clock offset.
            a.rs.reset();
            let _ =
                a.rs.set_resample_ratio_relative(1.0 + self.ctl.ppm * 1e-6, false);
        }
    }

    /// Skips up to `k` frames from the pipe, counting them; returns how many.
    fn skip_frames(&mut self, k: usize) -> usize {
        let Some(src) = self.src.as_mut() else {
            return 0;
        };
        let mut skipped = 0;
        while skipped < k && src.skip() {
            skipped += 1;
        }
        self.stats
            .dropped
            .fetch_add(skipped as u64, Ordering::Relaxed);
        skipped
    }

    /// Pops one engine frame into the FIFO (converted in `Adaptive` mode). False when the
    /// pipe is empty.
    fn refill(&mut self) -> bool {
        let Some(src) = self.src.as_mut() else {
            return false;
        };
        if !src.pop(&mut self.scratch) {
            return false;
        }
        self.stats.frames_played.fetch_add(1, Ordering::Relaxed);
        self.fifo_pos = 0;
        match self.adaptive.as_mut() {
            None => {
                deinterleave(&self.scratch, &mut self.fifo);
                self.fifo_len = self.frame_len;
            }
            Some(a) => {
                deinterleave(&self.scratch, &mut a.input);
                // Cannot fail: buffers are sized from the resampler's own maxima and the
                // ratio stays inside its range. Should it, the frame is lost (no panic).
                self.fifo_len =
                    match a
                        .rs
                        .process_into_buffer(&a.input[..], &mut self.fifo[..], None)
                    {
                        Ok((_, produced)) => produced,
                        Err(_) => 0,
                    };
            }
        }
        true
    }

    fn publish_ratio(&self) {
        let ppm = if self.adaptive.is_some() {
            self.ctl.ppm.round() as i64
        } else {
            0
        };
        self.stats.ratio_ppm.store(ppm, Ordering::Relaxed);
    }
}

/// Writes one stereo sample into a device frame's routed channel(s).
#[inline]
fn put(frame: &mut [f32], left: usize, right: Option<usize>, l: f32, r: f32) {
    match right {
        Some(rc) => {
            if let Some(s) = frame.get_mut(left) {
                *s = l;
            }
            if let Some(s) = frame.get_mut(rc) {
                *s = r;
            }
        }
        None => {
            if let Some(s) = frame.get_mut(left) {
                *s = (l + r) * 0.5;
            }
        }
    }
}

fn write_silence(out: &mut [f32], dev_ch: usize, left: usize, right: Option<usize>) {
    for frame in out.chunks_exact_mut(dev_ch) {
        put(frame, left, right, 0.0, 0.0);
    }
}

fn deinterleave(src: &[f32], dst: &mut [Vec<f32>; 2]) {
    let [l, r] = dst;
    for ((s, a), b) in src.chunks_exact(2).zip(l.iter_mut()).zip(r.iter_mut()) {
        *a = s[0];
        *b = s[1];
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{pipe, FrameWriter};

    const FL: usize = 480;

    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }

    /// A 1 kHz sine, both channels: exactly ten periods per 480-sample frame, so one frame
    /// repeated is a seamless tone.
    fn sine_frame(amp: f32) -> Vec<f32> {
        (0..FL)
            .flat_map(|i| {
                let s = amp * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 48_000.0).sin();
                [s, s]
            })
            .collect()
    }

    /// Drives a producer (one frame every 10 ms of true time) and a device (`n`-frame
    /// callbacks every `n / device_true_hz` s), interleaved by simulated time, for `secs`.
    /// `produce(t)` says how many frames the producer pushes at `t` (1 = on time, 0 = a gap,
    /// more = a burst); `check(t, out, playout)` sees every callback.
    #[allow(clippy::too_many_arguments)]
    fn simulate(
        p: &mut Playout,
        w: &mut FrameWriter,
        frame: &[f32],
        device_true_hz: f64,
        n: usize,
        secs: f64,
        mut produce: impl FnMut(f64) -> usize,
        mut check: impl FnMut(f64, &[f32], &Playout),
    ) {
        let mut out = vec![0.0f32; n * 2];
        let (mut k, mut j) = (0u64, 0u64);
        loop {
            let tp = k as f64 * 0.01;
            let td = j as f64 * n as f64 / device_true_hz;
            if tp.min(td) > secs {
                break;
            }
            if tp <= td {
                for _ in 0..produce(tp) {
                    assert!(w.push(frame), "pipe overflow at {tp:.3} s");
                }
                k += 1;
            } else {
                out.fill(0.0);
                p.render(&mut out, 2, 0, Some(1));
                check(td, &out, p);
                j += 1;
            }
        }
    }

    fn clocks_apart(device_true_hz: f64) {
        let st = Arc::new(PlayoutStats::default());
        let mut p = Playout::new(FL, 48_000, ClockMode::Adaptive, st.clone()).unwrap();
        let (mut w, r) = pipe(2 * FL, 8);
        assert!(p.set_source(Some(r)).is_none());
        let frame = sine_frame(0.5);
        let (mut lo, mut hi, mut last_peak) = (u64::MAX, 0u64, 0.0f32);
        simulate(
            &mut p,
            &mut w,
            &frame,
            device_true_hz,
            256,
            600.0,
            |_| 1,
            |t, out, p| {
                if t >= 10.0 {
                    let fill = get(&p.stats.fill_samples);
                    let target = p.target_fill() as u64;
                    assert!(
                        fill + FL as u64 >= target && fill <= target + 2 * FL as u64,
                        "fill {fill} outside [{}, {}] at {t:.2} s",
                        target - FL as u64,
                        target + 2 * FL as u64
                    );
                    lo = lo.min(fill);
                    hi = hi.max(fill);
                    last_peak = out.iter().fold(0.0, |m, s| m.max(s.abs()));
                }
            },
        );
        let expected = (device_true_hz / 48_000.0 - 1.0) * 1e6;
        let ppm = st.ratio_ppm.load(Ordering::Relaxed);
        assert_eq!(get(&st.underruns), 0, "underruns at {device_true_hz} Hz");
        assert_eq!(get(&st.dropped), 0);
        assert_eq!(p.target_fill(), FL + FL / 2);
        assert!(
            (ppm as f64 - expected).abs() < 150.0,
            "ratio {ppm} ppm, expected ~{expected:.0} (fill {lo}..{hi})"
        );
        assert!(last_peak > 0.45 && last_peak < 0.55, "peak {last_peak}");
        // 10 minutes at 100 frames/s, minus what is still buffered.
        assert!(
            get(&st.frames_played) > 59_990,
            "{}",
            get(&st.frames_played)
        );
    }

    #[test]
    fn tracks_a_device_clock_0_1_percent_fast_for_10_minutes() {
        clocks_apart(48_048.0);
    }

    #[test]
    fn tracks_a_device_clock_0_1_percent_slow_for_10_minutes() {
        clocks_apart(48_000.0 / 1.001);
    }

    /// Shared clock: whatever is pushed comes out bit-exact and in order, on the routed
    /// channels only, whatever the callback sizes.
    fn shared_passes_bit_exact(left: usize, right: Option<usize>) {
        const DEV_CH: usize = 8;
        const UNTOUCHED: f32 = 9.0;
        let st = Arc::new(PlayoutStats::default());
        let mut p = Playout::new(FL, 48_000, ClockMode::Shared, st.clone()).unwrap();
        let (mut w, r) = pipe(2 * FL, 8);
        p.set_source(Some(r));
        let mut sent: Vec<(f32, f32)> = Vec::new();
        /// Pushes the next frame of a ramp (distinct, exactly representable values).
        fn push(w: &mut FrameWriter, sent: &mut Vec<(f32, f32)>) {
            let mut frame = Vec::with_capacity(2 * FL);
            for _ in 0..FL {
                let i = sent.len() as f32;
                let (l, r) = (i / 65_536.0, -0.25 - i / 131_072.0);
                frame.extend([l, r]);
                sent.push((l, r));
            }
            assert!(w.push(&frame));
        }
        // Exactly the pre-roll (target + half a frame = two frames): playing starts on the
        // first callback, nothing is trimmed.
        push(&mut w, &mut sent);
        push(&mut w, &mut sent);
        let mut got: Vec<(f32, f32)> = Vec::new();
        let mut consumed = 0usize;
        for &n in [256usize, 100, 333, 64, 480, 17, 300, 129]
            .iter()
            .cycle()
            .take(200)
        {
            while sent.len() < consumed + n + 600 {
                push(&mut w, &mut sent);
            }
            let mut out = vec![UNTOUCHED; n * DEV_CH];
            p.render(&mut out, DEV_CH, left, right);
            for frame in out.chunks_exact(DEV_CH) {
                for (c, &s) in frame.iter().enumerate() {
                    if c != left && Some(c) != right {
                        assert_eq!(s, UNTOUCHED, "channel {c} touched");
                    }
                }
                got.push((frame[left], right.map_or(0.0, |rc| frame[rc])));
            }
            consumed += n;
        }
        assert_eq!(got.len(), consumed);
        // The pre-roll may trim the start (a burst waiting beyond the target): the output is
        // then the input from some point within its first two frames on, bit-exact.
        let want_of = |s: &(f32, f32)| match right {
            Some(_) => *s,
            None => ((s.0 + s.1) * 0.5, 0.0),
        };
        let first = got.iter().position(|g| g.0 != 0.0).unwrap_or(0);
        let offset = (0..2 * FL)
            .find(|&o| {
                (0..64).all(|k| {
                    let (g, w) = (got[first + k], want_of(&sent[o + k]));
                    g.0.to_bits() == w.0.to_bits() && g.1.to_bits() == w.1.to_bits()
                })
            })
            .expect("output is not the input from within its first two frames");
        let got = &got[first..];
        for (i, (g, s)) in got.iter().zip(&sent[offset..]).enumerate() {
            let want = match right {
                Some(_) => *s,
                None => ((s.0 + s.1) * 0.5, 0.0),
            };
            assert!(
                g.0.to_bits() == want.0.to_bits() && g.1.to_bits() == want.1.to_bits(),
                "sample {i}: got {g:?}, want {want:?}"
            );
        }
        assert_eq!(get(&st.underruns), 0);
        assert_eq!(get(&st.dropped), 0);
        assert_eq!(st.ratio_ppm.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn shared_clock_is_bit_exact_on_the_routed_channels() {
        shared_passes_bit_exact(2, Some(5));
    }

    #[test]
    fn shared_clock_mono_is_the_mean_of_left_and_right() {
        shared_passes_bit_exact(3, None);
    }

    #[test]
    fn shared_clock_refuses_a_non_48k_device() {
        let st = Arc::new(PlayoutStats::default());
        assert!(Playout::new(FL, 44_100, ClockMode::Shared, st).is_err());
    }

    /// A 1 kHz tone resampled to 44.1 and 96 kHz stays a 1 kHz tone of the same level.
    #[test]
    fn adaptive_keeps_pitch_and_level_at_other_device_rates() {
        for rate in [44_100u32, 96_000] {
            let st = Arc::new(PlayoutStats::default());
            let mut p = Playout::new(FL, rate, ClockMode::Adaptive, st.clone()).unwrap();
            let (mut w, r) = pipe(2 * FL, 8);
            p.set_source(Some(r));
            let frame = sine_frame(0.5);
            let mut left: Vec<f32> = Vec::new();
            // Measured once settled: start-up may bend the pitch by up to ~0.2 % on purpose.
            simulate(
                &mut p,
                &mut w,
                &frame,
                f64::from(rate),
                512,
                12.0,
                |_| 1,
                |t, out, _| {
                    if t >= 10.0 {
                        left.extend(out.iter().step_by(2));
                    }
                },
            );
            assert_eq!(get(&st.underruns), 0, "{rate} Hz");
            let crossings = left
                .windows(2)
                .filter(|w| w[0] <= 0.0 && w[1] > 0.0)
                .count();
            let hz = crossings as f64 * f64::from(rate) / left.len() as f64;
            assert!(
                (hz - 1000.0).abs() < 3.0,
                "{rate} Hz device: tone at {hz:.1} Hz"
            );
            let rms = (left.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / left.len() as f64)
                .sqrt();
            let db = 20.0 * (rms / (0.5 / 2f64.sqrt())).log10();
            assert!(db.abs() < 0.5, "{rate} Hz device: level {db:+.2} dB");
        }
    }

    /// The producer stops for 50 ms: silence, counted; after the frames return and the
    /// pre-roll refills, the tone plays again and the counting stops.
    #[test]
    fn underrun_plays_silence_and_recovers_after_pre_roll() {
        let st = Arc::new(PlayoutStats::default());
        let mut p = Playout::new(FL, 48_000, ClockMode::Adaptive, st.clone()).unwrap();
        let (mut w, r) = pipe(2 * FL, 8);
        p.set_source(Some(r));
        let frame = sine_frame(0.5);
        let stall = 1.0..1.05;
        let mut log: Vec<(f64, f32, u64)> = Vec::new();
        simulate(
            &mut p,
            &mut w,
            &frame,
            48_000.0,
            256,
            1.5,
            |t| usize::from(!stall.contains(&(t + 1e-9))),
            |t, out, p| {
                let peak = out.iter().step_by(2).fold(0.0f32, |m, s| m.max(s.abs()));
                log.push((t, peak, get(&p.stats.underruns)));
            },
        );
        assert!(
            log.iter()
                .filter(|e| e.0 > 0.1 && e.0 < 1.0)
                .all(|e| e.2 == 0 && e.1 > 0.4),
            "played before the stall"
        );
        let first_silent = log
            .iter()
            .find(|e| e.0 >= 1.0 && e.1 == 0.0)
            .expect("a silent callback during the stall");
        assert!(first_silent.0 < 1.06, "silence at {:.3} s", first_silent.0);
        assert!(first_silent.2 > 0 || get(&st.underruns) > 0);
        let resumed = log
            .iter()
            .find(|e| e.0 > first_silent.0 && e.1 > 0.1)
            .expect("playing again");
        assert!(
            resumed.0 >= 1.05 && resumed.0 < 1.1,
            "resumed at {:.3} s",
            resumed.0
        );
        let underruns = resumed.2;
        assert!(underruns > 0);
        assert!(log
            .iter()
            .filter(|e| e.0 > resumed.0)
            .all(|e| e.2 == underruns && e.1 > 0.4));
        assert_eq!(get(&st.dropped), 0);
    }

    /// `set_source(None)` hands back the reader and plays silence without counting; a new
    /// source plays after its pre-roll.
    #[test]
    fn source_swap_gives_silence_then_the_new_mix() {
        const DEV_CH: usize = 4;
        let st = Arc::new(PlayoutStats::default());
        let mut p = Playout::new(FL, 48_000, ClockMode::Shared, st.clone()).unwrap();
        let render = |p: &mut Playout| {
            let mut out = [9.0f32; 256 * DEV_CH];
            p.render(&mut out, DEV_CH, 1, Some(2));
            assert!(out.chunks_exact(DEV_CH).all(|f| f[0] == 9.0 && f[3] == 9.0));
            (out[1], out[2])
        };
        assert!(!p.has_source());
        assert_eq!(render(&mut p), (0.0, 0.0));

        let (mut wa, ra) = pipe(2 * FL, 8);
        assert!(p.set_source(Some(ra)).is_none());
        let a: Vec<f32> = [0.25f32, -0.25].repeat(FL);
        for _ in 0..4 {
            wa.push(&a);
        }
        assert_eq!(render(&mut p), (0.25, -0.25));
        assert_eq!(render(&mut p), (0.25, -0.25));
        let played = get(&st.frames_played);

        let old = p.set_source(None);
        assert!(old.is_some() && !p.has_source());
        for _ in 0..10 {
            assert_eq!(render(&mut p), (0.0, 0.0));
        }
        assert_eq!(get(&st.underruns), 0);
        assert_eq!(get(&st.frames_played), played);
        drop(old);
        assert!(wa.is_abandoned());

        let (mut wb, rb) = pipe(2 * FL, 8);
        assert!(p.set_source(Some(rb)).is_none());
        let b: Vec<f32> = [0.5f32, 0.75].repeat(FL);
        wb.push(&b);
        assert_eq!(render(&mut p), (0.0, 0.0), "pre-roll");
        wb.push(&b);
        assert_eq!(render(&mut p), (0.5, 0.75));
        assert_eq!(get(&st.underruns), 0);
    }

    /// One clock: audio that arrives on top of the steady fill (the engine played silence
    /// through an input stall, then the late frames came too) is shed within a second, back
    /// to the lowest fill playback started with; a steady stream, with callbacks of any
    /// size, is never cut and never runs dry.
    #[test]
    fn shared_clock_sheds_what_a_stall_added_and_nothing_else() {
        for n in [64, 240, 256, 480, 1024] {
            let st = Arc::new(PlayoutStats::default());
            let mut p = Playout::new(FL, 48_000, ClockMode::Shared, st.clone()).unwrap();
            let (mut w, r) = pipe(2 * FL, 8);
            p.set_source(Some(r));
            let frame = sine_frame(0.5);
            let near = |t: f64, at: f64| (t - at).abs() < 0.004;
            // Lowest fill in each second; a frame at 10 s, three at 20 s.
            let mut lowest = vec![u64::MAX; 31];
            // (The pre-roll may trim a frame off a large first callback.)
            let mut at_start = 0;
            simulate(
                &mut p,
                &mut w,
                &frame,
                48_000.0,
                n,
                30.5,
                |t| 1 + usize::from(near(t, 10.0)) + 3 * usize::from(near(t, 20.0)),
                |t, out, p| {
                    if t < 5.0 {
                        at_start = get(&p.stats.dropped);
                    }
                    let s = lowest.get_mut(t as usize).unwrap();
                    *s = (*s).min(get(&p.stats.fill_samples));
                    let peak = out.iter().fold(0.0f32, |m, s| m.max(s.abs()));
                    assert!(t < 0.1 || peak > 0.45, "n {n}: gap at {t:.3} s");
                },
            );
            // Where the callbacks fall on the frame grid moves the lowest point a little.
            let lo = *lowest[1..10].iter().min().unwrap();
            let hi = *lowest[1..10].iter().max().unwrap();
            assert!(hi - lo < 64, "n {n}: {lowest:?}");
            for after in [&lowest[12..20], &lowest[22..30]] {
                let near = |l: u64| l + 64 > lo && l < hi + 64;
                assert!(after.iter().all(|&l| near(l)), "n {n}: {lowest:?}");
            }
            assert_eq!(get(&st.dropped) - at_start, 4, "n {n}");
            assert_eq!(get(&st.underruns), 0, "n {n}");
        }
    }

    /// Clocks apart: a burst that leaves the pipe well above target for a while is shed down
    /// to target at once, not drained by the controller over half a minute.
    #[test]
    fn latency_cap_sheds_a_burst() {
        let st = Arc::new(PlayoutStats::default());
        let mut p = Playout::new(FL, 48_000, ClockMode::Adaptive, st.clone()).unwrap();
        let (mut w, r) = pipe(2 * FL, 8);
        p.set_source(Some(r));
        let frame = sine_frame(0.5);
        simulate(
            &mut p,
            &mut w,
            &frame,
            48_000.0,
            256,
            1.0,
            |_| 1,
            |_, _, _| {},
        );
        assert_eq!(get(&st.dropped), 0);
        for _ in 0..4 {
            assert!(w.push(&frame));
        }
        simulate(
            &mut p,
            &mut w,
            &frame,
            48_000.0,
            256,
            1.0,
            |_| 1,
            |_, _, _| {},
        );
        // Down to target: three to five frames, depending on where in the frame sawtooth
        // the pre-roll and the cap hit.
        let dropped = get(&st.dropped);
        assert!((3..=5).contains(&dropped), "dropped {dropped}");
        let fill = get(&st.fill_samples) as usize;
        assert!(fill < p.target_fill() + 2 * FL, "fill {fill}");
        assert_eq!(get(&st.underruns), 0);
    }
}
