//! One Opus encoder per listened-to mix.
//!
//! Why these settings: `RESTRICTED_LOWDELAY` (`Application::LowDelay`) drops the SILK
//! path and its look-ahead, so a packet costs only the CELT delay (2.5 ms) on top of the
//! frame; musicians hear themselves, and every millisecond counts. 128 kb/s stereo keeps sines
//! within a fraction of a dB (tests measure levels through it). Complexity 5 halves the
//! encode cost of the default 10 with no audible difference at this bitrate.

use std::sync::Arc;

use super::StreamError;
use crate::audio::SAMPLE_RATE;

/// Largest Opus packet we accept from the encoder (RFC 6716 caps a frame at 1275 bytes).
const MAX_PACKET: usize = 1500;

/// Encoder settings, validated by [`EncoderConfig::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Bits per second, 64 000 ..= 256 000.
    pub bitrate: i32,
    /// libopus complexity 0 ..= 10.
    pub complexity: i32,
    /// Samples per channel per frame: 120, 240, 480 or 960 (2.5/5/10/20 ms at 48 kHz).
    pub frame_len: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            bitrate: 128_000,
            complexity: 5,
            frame_len: 480,
        }
    }
}

impl EncoderConfig {
    pub fn validate(&self) -> Result<(), StreamError> {
        use crate::limits::{BITRATE_KBPS_MAX, BITRATE_KBPS_MIN, FRAME_LENS, OPUS_COMPLEXITY_MAX};
        let kbps = BITRATE_KBPS_MIN as i32 * 1000..=BITRATE_KBPS_MAX as i32 * 1000;
        if !kbps.contains(&self.bitrate) {
            return Err(StreamError::Config("bitrate must be 64000..=256000 b/s"));
        }
        if !(0..=i32::from(OPUS_COMPLEXITY_MAX)).contains(&self.complexity) {
            return Err(StreamError::Config("complexity must be 0..=10"));
        }
        if !FRAME_LENS.contains(&self.frame_len) {
            return Err(StreamError::Config(
                "frame length must be 2.5, 5, 10 or 20 ms (120/240/480/960 samples)",
            ));
        }
        Ok(())
    }
}

/// An Opus encoder with its reusable output buffer.
pub struct MixEncoder {
    enc: opus::Encoder,
    out: Box<[u8; MAX_PACKET]>,
    frame_samples: usize,
}

impl MixEncoder {
    pub fn new(cfg: &EncoderConfig) -> Result<Self, StreamError> {
        cfg.validate()?;
        let map = |e: opus::Error| StreamError::Encoder(e.to_string());
        let mut enc = opus::Encoder::new(
            SAMPLE_RATE,
            opus::Channels::Stereo,
            opus::Application::LowDelay,
        )
        .map_err(map)?;
        enc.set_bitrate(opus::Bitrate::Bits(cfg.bitrate))
            .map_err(map)?;
        enc.set_complexity(cfg.complexity).map_err(map)?;
        Ok(MixEncoder {
            enc,
            out: Box::new([0; MAX_PACKET]),
            frame_samples: 2 * cfg.frame_len,
        })
    }

    /// Encodes one stereo interleaved frame (`2 × frame_len` samples). The only allocation
    /// is the returned packet, which every listener of the mix then shares.
    pub fn encode(&mut self, frame: &[f32]) -> Result<Arc<[u8]>, StreamError> {
        if frame.len() != self.frame_samples {
            return Err(StreamError::Encoder(format!(
                "frame has {} samples, encoder expects {}",
                frame.len(),
                self.frame_samples
            )));
        }
        let n = self
            .enc
            .encode_float(frame, &mut self.out[..])
            .map_err(|e| StreamError::Encoder(e.to_string()))?;
        Ok(Arc::from(&self.out[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_config() {
        for cfg in [
            EncoderConfig {
                bitrate: 8000,
                ..Default::default()
            },
            EncoderConfig {
                complexity: 11,
                ..Default::default()
            },
            EncoderConfig {
                frame_len: 500,
                ..Default::default()
            },
        ] {
            assert!(MixEncoder::new(&cfg).is_err(), "{cfg:?}");
        }
    }

    #[test]
    fn encodes_every_frame_size() {
        for frame_len in crate::limits::FRAME_LENS {
            let cfg = EncoderConfig {
                frame_len,
                ..Default::default()
            };
            let mut e = MixEncoder::new(&cfg).expect("encoder");
            let frame: Vec<f32> = (0..2 * frame_len)
                .map(|i| 0.1 * (i as f32 * 0.05).sin())
                .collect();
            let p = e.encode(&frame).expect("encode");
            assert!(!p.is_empty() && p.len() < MAX_PACKET);
            assert!(e.encode(&frame[1..]).is_err());
        }
    }
}
