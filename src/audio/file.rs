//! `file:PATH`: a multichannel WAV looped forever in real time.
//!
//! The whole file is decoded to interleaved `f32` at open, and resampled to 48 kHz there
//! if needed (rubato, FFT-based), so the real-time render is a plain copy: no disk I/O,
//! no decoding and no allocation on the clock thread. Resampling treats the file as
//! circular (it warms the filter up with the file's own tail), so the loop point stays
//! seamless after resampling too.

use std::path::Path;

use rubato::{FftFixedInOut, Resampler};

use super::{AudioError, Generator, MAX_CHANNELS, SAMPLE_RATE};

/// Refuse files whose decoded samples would not fit comfortably in memory (1 GiB of f32).
const MAX_SAMPLES: usize = 1 << 28;

/// A WAV file held in memory, played in a loop.
pub struct WavLoop {
    /// Interleaved 48 kHz samples, a whole number of frames, never empty.
    data: Vec<f32>,
    channels: usize,
    /// Read position (sample index into `data`, a multiple of `channels`).
    pos: usize,
    description: String,
}

impl std::fmt::Debug for WavLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavLoop")
            .field("channels", &self.channels)
            .field("frames", &self.frames())
            .field("description", &self.description)
            .finish()
    }
}

fn file_err(path: &Path, problem: impl Into<String>) -> AudioError {
    AudioError::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

impl WavLoop {
    /// Reads and decodes the whole file (16/24/32-bit integer or 32-bit float PCM, any
    /// channel count up to [`MAX_CHANNELS`], any sample rate) and resamples it to 48 kHz if needed.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let mut reader = hound::WavReader::open(path).map_err(|e| {
            file_err(
                path,
                match e {
                    hound::Error::IoError(io) => format!("cannot read: {io}"),
                    hound::Error::FormatError(why) => format!("not a valid WAV file ({why})"),
                    other => format!("unsupported WAV file ({other})"),
                },
            )
        })?;
        let spec = reader.spec();
        let channels = spec.channels as usize;
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(file_err(
                path,
                format!("{channels} channels (1..={MAX_CHANNELS} supported)"),
            ));
        }
        if spec.sample_rate == 0 {
            return Err(file_err(path, "sample rate is 0"));
        }
        let total = reader.len() as usize;
        if total > MAX_SAMPLES {
            return Err(file_err(
                path,
                format!("{total} samples is too large to loop from memory"),
            ));
        }
        let read_err = |e: hound::Error| file_err(path, format!("cannot decode samples: {e}"));
        let mut data: Vec<f32> = Vec::with_capacity(total);
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => {
                for s in reader.samples::<f32>() {
                    data.push(s.map_err(read_err)?);
                }
            }
            (hound::SampleFormat::Int, bits @ 8..=32) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f64;
                for s in reader.samples::<i32>() {
                    data.push((s.map_err(read_err)? as f64 * scale) as f32);
                }
            }
            (fmt, bits) => {
                return Err(file_err(
                    path,
                    format!(
                        "unsupported sample format {fmt:?} {bits}-bit \
                         (use 16/24/32-bit integer or 32-bit float)"
                    ),
                ))
            }
        }
        data.truncate(data.len() / channels * channels);
        if data.is_empty() {
            return Err(file_err(path, "contains no audio samples"));
        }
        if data.iter().any(|s| !s.is_finite()) {
            return Err(file_err(path, "contains NaN or infinite samples"));
        }
        let in_frames = data.len() / channels;
        let rate = spec.sample_rate;
        let (data, note) = if rate == SAMPLE_RATE {
            (data, String::new())
        } else {
            let out = resample_circular(&data, channels, rate as usize, SAMPLE_RATE as usize)
                .map_err(|e| file_err(path, format!("cannot resample {rate} Hz: {e}")))?;
            (out, format!(", resampled from {rate} Hz"))
        };
        let frames = data.len() / channels;
        let description = format!(
            "file {}: {channels} ch, {:.1} s loop{note}",
            path.display(),
            frames as f64 / SAMPLE_RATE as f64
        );
        tracing::debug!(in_frames, frames, "loaded WAV file");
        Ok(WavLoop {
            data,
            channels,
            pos: 0,
            description,
        })
    }

    /// Frames per loop (at 48 kHz).
    pub fn frames(&self) -> usize {
        self.data.len() / self.channels
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The decoded 48 kHz interleaved samples of one loop.
    pub fn samples(&self) -> &[f32] {
        &self.data
    }
}

/// Resamples an interleaved loop from `from` Hz to `to` Hz, treating it as periodic.
///
/// The resampler is warmed up with the loop's tail and fed past the end with its head,
/// then the output is cut to exactly one period, so sample 0 follows the last sample
/// the same way any two neighbours do.
fn resample_circular(
    data: &[f32],
    channels: usize,
    from: usize,
    to: usize,
) -> Result<Vec<f32>, String> {
    let in_frames = data.len() / channels;
    let out_frames = ((in_frames as u128 * to as u128 + from as u128 / 2) / from as u128) as usize;
    let mut rs = FftFixedInOut::<f32>::new(from, to, 1024, channels).map_err(|e| e.to_string())?;
    let chunk_in = rs.input_frames_next();
    let chunk_out = rs.output_frames_next();
    let delay = rs.output_delay();
    // Warm-up: two chunks of the tail, so the first real output has history.
    let warm_chunks = 2;
    let skip = delay + warm_chunks * chunk_out;
    let needed_out = skip + out_frames;
    let chunks = needed_out.div_ceil(chunk_out);
    let start = (in_frames as isize - (warm_chunks * chunk_in) as isize)
        .rem_euclid(in_frames as isize) as usize;
    let mut inbuf = vec![vec![0.0f32; chunk_in]; channels];
    let mut outbuf = vec![vec![0.0f32; chunk_out]; channels];
    let mut out = Vec::with_capacity(out_frames * channels);
    let mut src = start;
    let mut produced = 0usize;
    for _ in 0..chunks {
        for i in 0..chunk_in {
            let frame = &data[src * channels..(src + 1) * channels];
            for (buf, &s) in inbuf.iter_mut().zip(frame) {
                buf[i] = s;
            }
            src += 1;
            if src == in_frames {
                src = 0;
            }
        }
        let (_, n) = rs
            .process_into_buffer(&inbuf, &mut outbuf, None)
            .map_err(|e| e.to_string())?;
        for i in 0..n {
            if produced >= skip && produced < needed_out {
                for ch in &outbuf {
                    out.push(ch[i]);
                }
            }
            produced += 1;
        }
    }
    Ok(out)
}

impl Generator for WavLoop {
    fn channels(&self) -> usize {
        self.channels
    }

    fn render(&mut self, out: &mut [f32]) {
        let mut written = 0;
        while written < out.len() {
            let n = (out.len() - written).min(self.data.len() - self.pos);
            out[written..written + n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            written += n;
            self.pos += n;
            if self.pos == self.data.len() {
                self.pos = 0;
            }
        }
    }
}
