//! The capture callback (sample conversion, resampling to 48 kHz, frame assembly) and the
//! cpal stream that runs it.

use std::sync::atomic::Ordering;
use std::sync::mpsc;

use cpal::traits::{DeviceTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamError};
use rubato::{FftFixedInOut, Resampler};

use super::discover::resolve;
use super::duration_samples;
use super::supervisor::Plan;
use crate::audio::output::FrameSink;
use crate::audio::{AudioError, SAMPLE_RATE};

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
    /// Device rate (for the delay gauge).
    rate: u32,
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
    /// Publishes the driver's delay for this callback (see `InputStats::device_delay_samples`).
    fn note_delay(&self, info: &cpal::InputCallbackInfo) {
        let t = info.timestamp();
        if let (Some(d), Some(sink)) = (t.callback.duration_since(&t.capture), self.sink.as_ref()) {
            sink.stats()
                .device_delay_samples
                .store(duration_samples(d, self.rate), Ordering::Relaxed);
        }
    }

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

/// Builds and starts a stream. The sink is taken out of `sink` only when the callback is
/// built; if building fails afterwards, it comes back through `back`.
pub(super) fn start_stream(
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
        rate: chosen.rate,
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
        // About one frame: PipeWire's plugin then runs a matching quantum and hands over
        // small even chunks. With its default ring it delivered 2048 samples every
        // 43 ms, bursts the engine counts as underruns and overruns.
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
            move |d: &[f32], info: &cpal::InputCallbackInfo| {
                capture.note_delay(info);
                capture.feed(d)
            },
            on_error,
            None,
        ),
        SampleFormat::I32 => device.build_input_stream(
            &config,
            move |d: &[i32], info: &cpal::InputCallbackInfo| {
                capture.note_delay(info);
                capture.feed(d)
            },
            on_error,
            None,
        ),
        _ => device.build_input_stream(
            &config,
            move |d: &[i16], info: &cpal::InputCallbackInfo| {
                capture.note_delay(info);
                capture.feed(d)
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::output::InputStats;
    use crate::frames::{pipe, FrameReader};
    use std::sync::Arc;

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
            rate: 48_000,
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
}
