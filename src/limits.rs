//! Facts every layer must agree on, defined once: the sample rate, the frame lengths,
//! the channel and client limits and the client-id rule.
//!
//! Config validation, the audio inputs, the store, WHEP and OSC all read these; a copy
//! elsewhere is a bug waiting to disagree (it did: an id the store accepted got a 404
//! from WHEP, and a channel count the inputs accepted was refused by the config).

/// The engine's one sample rate (Opus's native rate); inputs at other rates are resampled.
pub const SAMPLE_RATE: u32 = 48_000;

/// Frame lengths the engine and Opus both accept, in samples per channel at
/// [`SAMPLE_RATE`]: 2.5, 5, 10 and 20 ms.
pub const FRAME_LENS: [usize; 4] = [120, 240, 480, 960];

/// Default frame length (10 ms).
pub const DEFAULT_FRAME_LEN: usize = 480;

/// Most input channels monmix carries. A 64-channel console (MADI, a full Dante card) is
/// the largest we plan for; an input with more offers its first 64.
pub const MAX_CHANNELS: usize = 64;
/// `[[output]]` entries (each holds one engine tap and a resampler).
pub const MAX_OUTPUTS: usize = 32;

/// Most clients (mixes) the store keeps, an upper bound for `state.max_clients`.
pub const MAX_CLIENTS: usize = 1024;

/// Longest client id, in characters.
pub const MAX_CLIENT_ID_CHARS: usize = 64;

/// Opus bitrate per mix, kb/s: below 64 stereo music audibly degrades on in-ears; above
/// 256 Opus is transparent and the Wi-Fi pays for nothing.
pub const BITRATE_KBPS_MIN: u32 = 64;
/// See [`BITRATE_KBPS_MIN`].
pub const BITRATE_KBPS_MAX: u32 = 256;

/// Highest libopus complexity.
pub const OPUS_COMPLEXITY_MAX: u8 = 10;

/// Samples per channel of a frame `ms` long, if that is one of [`FRAME_LENS`].
pub fn frame_len_of_ms(ms: f32) -> Option<usize> {
    if !ms.is_finite() || ms <= 0.0 {
        return None;
    }
    let n = (f64::from(ms) * f64::from(SAMPLE_RATE) / 1000.0).round() as usize;
    (FRAME_LENS.contains(&n) && (frame_ms_of_len(n) - f64::from(ms)).abs() < 1e-6).then_some(n)
}

/// Milliseconds of a frame of `len` samples per channel.
pub fn frame_ms_of_len(len: usize) -> f64 {
    len as f64 * 1000.0 / f64::from(SAMPLE_RATE)
}

/// The allowed frame lengths in ms, for messages: "2.5, 5, 10, 20".
pub fn frame_ms_list() -> String {
    FRAME_LENS
        .iter()
        .map(|&n| frame_ms_of_len(n).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The client-id rule: 1..=64 characters, no control characters, no whitespace, no `/`.
///
/// Ids are opaque (the seed used whatever the phone generated, and imports keep theirs,
/// such as `ana@ipad`). They appear in URL paths (percent-encoded where needed), OSC
/// string arguments and log lines; whitespace and `/` would make those ambiguous.
pub fn client_id_ok(id: &str) -> bool {
    let n = id.chars().count();
    (1..=MAX_CLIENT_ID_CHARS).contains(&n)
        && !id
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_lengths_round_trip_through_ms() {
        for n in FRAME_LENS {
            assert_eq!(frame_len_of_ms(frame_ms_of_len(n) as f32), Some(n));
        }
        for bad in [0.0, -10.0, 7.0, 2.4, 10.01, f32::NAN, f32::INFINITY] {
            assert_eq!(frame_len_of_ms(bad), None, "{bad}");
        }
        assert_eq!(frame_ms_list(), "2.5, 5, 10, 20");
    }

    #[test]
    fn client_ids() {
        for ok in ["a", "ana@ipad", "Ana-1.2_~", "ñandú", &"x".repeat(64)] {
            assert!(client_id_ok(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "a\nb", "tab\t", &"x".repeat(65)] {
            assert!(!client_id_ok(bad), "{bad:?}");
        }
    }
}
