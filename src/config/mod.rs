//! Settings: a TOML file plus CLI overrides. Every field has a working default, so
//! `monmix serve` with no file runs. Settings are what the operator chose; the runtime
//! state (mixes, devices) lives in [`crate::state`] and is a different type on purpose.

mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub audio: AudioConfig,
    pub engine: EngineConfig,
    pub state: StateConfig,
    pub security: SecurityConfig,
    pub osc: OscConfig,
    pub mdns: MdnsConfig,
    pub stream: StreamConfig,
    pub tls: TlsConfig,
    /// `[[output]]`: mixes fed to the interface's outputs (wired in-ears).
    #[serde(rename = "output")]
    pub outputs: Vec<OutputConfig>,
}

/// One `[[output]]`: a mix on one or two channels of an output device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// A name from `monmix devices` (an ALSA PCM, PipeWire, JACK).
    pub device: String,
    /// 1-based output channels: left, right; one entry = mono (left and right summed).
    pub channels: Vec<u16>,
    /// Client name, client id or 1-based position; `cue` = what the engineer cues; empty or
    /// absent = nothing until the engineer assigns a mix from the page.
    #[serde(default)]
    pub mix: String,
    /// Whether the device runs on the input's clock (see [`OutputClock`]).
    #[serde(default)]
    pub clock: OutputClock,
}

impl OutputConfig {
    /// The output's identity in `state.json` (`device:channels`, e.g. `ears:3,4`): stable
    /// when `[[output]]`s are reordered, changed when the wiring changes.
    pub fn key(&self) -> String {
        let ch: Vec<String> = self.channels.iter().map(u16::to_string).collect();
        format!("{}:{}", self.device, ch.join(","))
    }
}

/// An output device's clock relative to the input's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputClock {
    /// Shared when the output is the input's device or both are PipeWire; else adaptive.
    #[default]
    Auto,
    /// One clock (one device, one PipeWire or JACK graph): no resampling, bit-exact.
    Shared,
    /// Independent clocks: an adaptive resampler keeps the output buffer centred.
    Adaptive,
}

/// `[tls]`: HTTPS beside plain HTTP. Browsers give a service worker (offline page,
/// install) and the screen wake lock only to a secure context, which a page loaded from
/// `http://10.x.x.x` is not.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The HTTPS listener (page, `/ws`, `/whep`, `/api`); off when absent.
    pub https: Option<SocketAddr>,
    /// PEM certificate chain and private key (relative paths: to the working directory).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Generate a certificate once, for every LAN address, `<mdns.host_name>.local` and
    /// localhost, kept beside the state file and reused (`cert`/`key` are then ignored).
    pub self_signed: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Shown to musicians and announced on the LAN.
    pub name: String,
    /// HTTP + WebSocket + WHEP listener.
    pub http: SocketAddr,
    /// OSC (UDP) listener.
    pub osc: SocketAddr,
    /// Seconds a client has to send a request's headers (also the idle limit between
    /// keep-alive requests): slow or silent sockets are closed after it.
    pub header_timeout_secs: f64,
    /// Seconds a plain HTTP request may take, body included.
    pub request_timeout_secs: f64,
    /// Open HTTP connections in total (upgraded WebSockets are not counted here).
    pub max_connections: usize,
    /// Open HTTP connections from one address.
    pub max_connections_per_ip: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// `demo`, `tones`, `file:PATH`, `device` or `device:NAME`.
    pub input: String,
    /// Input channel count; 0 = what the input provides (demo 8, tones 8, file/device: theirs).
    pub channels: usize,
    /// Engine frame length in ms: 2.5, 5, 10 or 20.
    pub frame_ms: f32,
    /// Channel names shown on every strip, in input order. Missing ones default to "Ch N".
    pub channel_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Most mixes (clients) the engine holds parameters for.
    pub max_mixes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// The one JSON file holding every client's mix.
    pub path: PathBuf,
    /// How long the writer waits to coalesce changes, 0..=50 ms (the file follows within
    /// 100 ms).
    pub debounce_ms: u64,
    /// Most clients kept.
    pub max_clients: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// PIN that grants the engineer role; empty = no PIN login.
    pub admin_pin: String,
    /// Tokens that grant the engineer role (for scripts and fixed tablets).
    pub engineer_tokens: Vec<String>,
    /// Extra Origins allowed on the WebSocket besides the page's own Host.
    pub allowed_origins: Vec<String>,
    /// Host names (besides IP addresses, `localhost` and `<mdns.host_name>.local`) that
    /// requests may name. Any other `Host` is refused with 421: protection against DNS
    /// rebinding by a web page on a phone.
    pub allowed_hosts: Vec<String>,
    /// Most WebSocket sessions from one IP address (a phone needs one; a tablet running
    /// an engineer view and a cue, a few).
    pub max_sessions_per_ip: usize,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            admin_pin: String::new(),
            engineer_tokens: Vec::new(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_sessions_per_ip: 32,
        }
    }
}

/// `[osc]`: the UDP control surface (protocol/osc.md). The listen address is `server.osc`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OscConfig {
    /// Serve OSC at all.
    pub enabled: bool,
    /// Send replies and feedback to this UDP port of the sender's address; 0 = to the
    /// port the message came from.
    pub reply_port: u16,
    /// How long a `/subscribe` lasts, in seconds (surfaces renew every few seconds).
    pub lease_secs: f64,
    /// The mix the TouchOSC aliases `/1/fader{n}` and `/1/toggle{n}` address: a 1-based
    /// position in the client order, a client name or a client id.
    pub touchosc_mix: String,
    /// Source networks allowed to send OSC (CIDR). Others are dropped and counted.
    pub allow: Vec<String>,
    /// Meter feedback rate to subscribers, per second (0 = no meters).
    pub meter_hz: f64,
    /// Most subscribed surfaces at once.
    pub max_subscribers: usize,
    /// Surfaces that belong to one performer (`[[osc.performer]]` tables): a source in
    /// `source` (CIDR or address) may change the mix `mix` (position, name or client id)
    /// and no other. Unlisted allowed sources are engineer surfaces.
    pub performer: Vec<OscPerformer>,
}

/// One `[[osc.performer]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OscPerformer {
    pub source: String,
    pub mix: String,
}

/// `[mdns]`: announcing the server on the LAN.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdnsConfig {
    /// Advertise `_monmix._tcp`, `_http._tcp` and `_osc._udp` (`--no-mdns` turns it off).
    pub enabled: bool,
    /// Host name announced, without `.local.` (`monmix` -> `monmix.local.`).
    pub host_name: String,
    /// Interfaces to announce on, by name (`eth0`) or address; empty = every interface.
    pub interfaces: Vec<String>,
}

impl Default for OscConfig {
    fn default() -> Self {
        OscConfig {
            enabled: true,
            reply_port: 0,
            lease_secs: 10.0,
            touchosc_mix: "1".into(),
            allow: crate::allow_list::PRIVATE_NETWORKS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            meter_hz: 20.0,
            max_subscribers: 64,
            performer: Vec::new(),
        }
    }
}

impl Default for MdnsConfig {
    fn default() -> Self {
        MdnsConfig {
            enabled: true,
            host_name: "monmix".into(),
            interfaces: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Opus bitrate per mix in kb/s ([`crate::limits::BITRATE_KBPS_MIN`]..=[`crate::limits::BITRATE_KBPS_MAX`]).
    pub bitrate_kbps: u32,
    /// libopus complexity (0..=10); 5 keeps encoding cheap for many mixes.
    pub complexity: u8,
    /// Address offered to phones in the WebRTC answer; default: the HTTP bind address
    /// (every interface when that is 0.0.0.0).
    pub public_ip: Option<std::net::IpAddr>,
    /// Most simultaneous listeners; more get HTTP 503.
    pub max_listeners: usize,
    /// Seconds a connected listener may send nothing (no consent check, no RTCP) before
    /// it is freed as gone. Firefox checks only every 4-6 s: below ~12 s a lost packet or
    /// two on stage Wi-Fi drops a healthy phone.
    pub vanish_s: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            bitrate_kbps: 128,
            complexity: 5,
            public_ip: None,
            max_listeners: 256,
            vanish_s: 15,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            name: "monmix".into(),
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            osc: SocketAddr::from(([0, 0, 0, 0], 9000)),
            header_timeout_secs: 10.0,
            request_timeout_secs: 15.0,
            max_connections: 768,
            max_connections_per_ip: 128,
        }
    }
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            input: "demo".into(),
            channels: 0,
            frame_ms: 10.0,
            channel_names: Vec::new(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_mixes: 128 }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            path: PathBuf::from("state.json"),
            debounce_ms: 30,
            max_clients: 128,
        }
    }
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { source, .. } => ConfigError::Parse {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            source: Box::new(e),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Samples per channel in one engine frame at 48 kHz.
    pub fn frame_len(&self) -> usize {
        crate::limits::frame_len_of_ms(self.audio.frame_ms)
            .unwrap_or(crate::limits::DEFAULT_FRAME_LEN)
    }

    /// Names for `n` channels: the configured name first (the engineer's word wins), then
    /// the input's own (`own`: the demo band's parts), then "Ch k".
    pub fn channel_names(&self, n: usize, own: &[String]) -> Vec<String> {
        let named =
            |list: &[String], k: usize| list.get(k).filter(|s| !s.trim().is_empty()).cloned();
        (0..n)
            .map(|k| {
                named(&self.audio.channel_names, k)
                    .or_else(|| named(own, k))
                    .unwrap_or_else(|| format!("Ch {}", k + 1))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_working_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.audio.input, "demo");
        assert_eq!(c.frame_len(), 480);
        assert_eq!(c.channel_names(3, &[]), ["Ch 1", "Ch 2", "Ch 3"]);
    }

    #[test]
    fn configured_names_win_over_the_inputs_own() {
        let c = Config::parse("[audio]\nchannel_names = [\"Vox\", \"\", \"Gtr\"]").unwrap();
        let own: Vec<String> = ["Click", "Kick"].map(String::from).to_vec();
        assert_eq!(c.channel_names(4, &own), ["Vox", "Kick", "Gtr", "Ch 4"]);
    }

    #[test]
    fn example_config_parses_and_names_channels() {
        let text = include_str!("../../config/monmix.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.channel_names(2, &[])[0], "Click");
    }
}
