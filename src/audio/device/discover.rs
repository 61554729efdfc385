//! Device discovery: listing input and output devices, finding one by name and choosing
//! its configuration.

use cpal::traits::{DeviceTrait, HostTrait};
use cpal::SampleFormat;

use crate::audio::{AudioError, InputOptions, MAX_CHANNELS, SAMPLE_RATE};

/// Sample rates reported by [`list_devices`] when a device accepts a range.
const COMMON_RATES: [u32; 11] = [
    8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 88_200, 96_000, 176_400, 192_000,
];

/// One supported configuration range of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRange {
    pub channels: u16,
    pub min_rate: u32,
    pub max_rate: u32,
    /// cpal sample format, e.g. `f32`, `i16`.
    pub format: String,
}

/// What `monmix devices` prints about one device.
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

/// A side of the audio interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

/// Lists the input devices of the default audio host. A machine without a sound card
/// gives an empty list, not an error; devices that fail to report their configurations
/// are listed with none.
pub fn list_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    Ok(list(Direction::Input))
}

/// Lists the output devices (where wired in-ears are fed from), as [`list_devices`].
pub fn list_output_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    Ok(list(Direction::Output))
}

fn list(dir: Direction) -> Vec<DeviceInfo> {
    let host = cpal::default_host();
    let (default, devices) = match dir {
        Direction::Input => (
            host.default_input_device(),
            host.input_devices()
                .map(|d| Box::new(d) as Box<dyn Iterator<Item = cpal::Device>>),
        ),
        Direction::Output => (
            host.default_output_device(),
            host.output_devices()
                .map(|d| Box::new(d) as Box<dyn Iterator<Item = cpal::Device>>),
        ),
    };
    let default_name = default.and_then(|d| d.name().ok());
    let devices = match devices {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!("cannot enumerate {dir:?} devices: {e}");
            return Vec::new();
        }
    };
    let range = |r: cpal::SupportedStreamConfigRange| ConfigRange {
        channels: r.channels(),
        min_rate: r.min_sample_rate().0,
        max_rate: r.max_sample_rate().0,
        format: r.sample_format().to_string(),
    };
    // A running JACK server is one more device, named `jack` as `device:jack` names it
    // (ALSA's own `jack` PCM, from libasound2-plugins, is shadowed by that name).
    let jack = jack_device(dir).ok().map(|d| (JACK.to_string(), d));
    let named = devices
        .filter_map(|d| d.name().ok().map(|n| (n, d)))
        .filter(|(n, _)| !is_jack(n))
        .chain(jack);
    let mut out = Vec::new();
    for (name, dev) in named {
        let configs: Result<Vec<ConfigRange>, _> = match dir {
            Direction::Input => dev
                .supported_input_configs()
                .map(|c| c.map(range).collect()),
            Direction::Output => dev
                .supported_output_configs()
                .map(|c| c.map(range).collect()),
        };
        let configs = configs.unwrap_or_else(|e| {
            tracing::debug!("{name}: cannot read configurations: {e}");
            Vec::new()
        });
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
    out
}

/// The configuration chosen for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Chosen {
    pub(super) channels: u16,
    pub(super) rate: u32,
    pub(super) format: SampleFormat,
    /// Fixed buffer size to ask for (about one frame), if the device reports a range.
    pub(super) buffer: Option<u32>,
}

/// Preference among the sample formats monmix converts: f32 > i32 > i16; `None` for
/// the others.
pub(crate) fn format_rank(f: SampleFormat) -> Option<u8> {
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

/// Finds a device: the default input for `None`, else by name ([`find_named`]).
fn find_device(host: &cpal::Host, name: Option<&str>) -> Result<cpal::Device, AudioError> {
    let Some(name) = name else {
        return host
            .default_input_device()
            .ok_or_else(|| AudioError::NoDevice("the audio host has no default input".into()));
    };
    find_named(host, name, Direction::Input).map_err(|available| AudioError::DeviceNotFound {
        name: name.to_string(),
        available,
    })
}

/// The device name that means JACK: clients `monmix_in` and `monmix_out` whose ports
/// (`in_0`.., `out_0`..: cpal counts from 0) the JACK graph connects; cpal's JACK host,
/// not ALSA.
pub const JACK: &str = "jack";

/// True for the JACK device name.
pub fn is_jack(name: &str) -> bool {
    name.eq_ignore_ascii_case(JACK)
}

/// monmix's JACK client for `dir`, if a JACK server answers. (cpal connects its ports to
/// the server's system ports, as a JACK application is expected to.)
#[cfg(feature = "jack")]
fn jack_device(dir: Direction) -> Result<cpal::Device, String> {
    use cpal::platform::JackDevice;
    // Made directly: cpal's `JackHost` opens (and names) two throwaway clients first.
    let device = match dir {
        Direction::Input => JackDevice::default_input_device("monmix", true, false),
        Direction::Output => JackDevice::default_output_device("monmix", true, false),
    };
    device
        .map(cpal::Device::from)
        .map_err(|e| format!("no JACK server answers ({e}); start jackd, or PipeWire's JACK"))
}

#[cfg(not(feature = "jack"))]
fn jack_device(_: Direction) -> Result<cpal::Device, String> {
    Err("this monmix was built without JACK (the `jack` feature)".to_string())
}

/// Finds an input or output device by exact name, then by case-insensitive substring
/// (`jack`: the JACK client). Otherwise gives the names there are (`none` when there are
/// none), for the error.
pub(crate) fn find_named(
    host: &cpal::Host,
    name: &str,
    dir: Direction,
) -> Result<cpal::Device, String> {
    if is_jack(name) {
        return jack_device(dir);
    }
    let devices: Vec<(String, cpal::Device)> = match dir {
        Direction::Input => host
            .input_devices()
            .map(|d| d.filter_map(|d| d.name().ok().map(|n| (n, d))).collect()),
        Direction::Output => host
            .output_devices()
            .map(|d| d.filter_map(|d| d.name().ok().map(|n| (n, d))).collect()),
    }
    .unwrap_or_else(|e| {
        tracing::debug!("cannot enumerate {dir:?} devices: {e}");
        Vec::new()
    });
    let lower = name.to_lowercase();
    let idx = devices.iter().position(|(n, _)| n == name).or_else(|| {
        devices
            .iter()
            .position(|(n, _)| n.to_lowercase().contains(&lower))
    });
    let names: Vec<&str> = devices.iter().map(|(n, _)| n.as_str()).collect();
    let available = if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    };
    match idx {
        Some(i) => devices.into_iter().nth(i).map(|(_, d)| d).ok_or(available),
        None => Err(available),
    }
}

/// Looks up the device and its configuration (for the first open and every reopen).
pub(super) fn resolve(
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
}
