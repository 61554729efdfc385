//! Settings: a TOML file plus CLI overrides. Every field has a working default, so
//! `monmix serve` with no file runs. Settings are what the operator chose; the runtime
//! state (mixes, devices) lives in [`crate::state`] and is a different type on purpose.

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

/// Frame lengths the engine and Opus both accept.
pub const FRAME_MS_ALLOWED: [f32; 4] = [2.5, 5.0, 10.0, 20.0];
/// Most input channels a mix can address (a 64-channel console is the largest we plan for).
pub const MAX_CHANNELS: usize = 64;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub audio: AudioConfig,
    pub engine: EngineConfig,
    pub state: StateConfig,
    pub security: SecurityConfig,
    // --- osc/mdns (branch osc) ---
    pub osc: OscConfig,
    pub mdns: MdnsConfig,
    pub stream: StreamConfig,
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
    /// How long the writer waits to coalesce changes (the file follows within 100 ms).
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

// --- osc/mdns (branch osc) ---
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
            allow: [
                "127.0.0.0/8",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
                "::1/128",
                "fc00::/7",
                "fe80::/10",
            ]
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
// --- end osc/mdns ---

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Opus bitrate per mix in kb/s (64..=256).
    pub bitrate_kbps: u32,
    /// libopus complexity (0..=10); 5 keeps encoding cheap for many mixes.
    pub complexity: u8,
    /// Address offered to phones in the WebRTC answer; default: the HTTP bind address
    /// (every interface when that is 0.0.0.0).
    pub public_ip: Option<std::net::IpAddr>,
    /// Most simultaneous listeners; more get HTTP 503.
    pub max_listeners: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            bitrate_kbps: 128,
            complexity: 5,
            public_ip: None,
            max_listeners: 256,
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

    /// Checks cross-field rules; called after CLI overrides too.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !FRAME_MS_ALLOWED.contains(&self.audio.frame_ms) {
            return Err(ConfigError::Invalid(format!(
                "audio.frame_ms = {} (allowed: 2.5, 5, 10, 20)",
                self.audio.frame_ms
            )));
        }
        if self.audio.channels > MAX_CHANNELS {
            return Err(ConfigError::Invalid(format!(
                "audio.channels = {} (at most {MAX_CHANNELS})",
                self.audio.channels
            )));
        }
        if self.engine.max_mixes == 0 || self.engine.max_mixes > 1024 {
            return Err(ConfigError::Invalid(format!(
                "engine.max_mixes = {} (1..=1024)",
                self.engine.max_mixes
            )));
        }
        if self.state.max_clients == 0 {
            return Err(ConfigError::Invalid("state.max_clients must be > 0".into()));
        }
        if self.state.debounce_ms > 100 {
            return Err(ConfigError::Invalid(format!(
                "state.debounce_ms = {} (at most 100: a change must reach disk within 100 ms)",
                self.state.debounce_ms
            )));
        }
        if let Some(n) = self
            .audio
            .channel_names
            .iter()
            .find(|n| n.chars().count() > 32)
        {
            return Err(ConfigError::Invalid(format!(
                "channel name {n:?} is longer than 32 characters"
            )));
        }
        // --- osc/mdns (branch osc) ---
        if !(self.osc.lease_secs > 0.0 && self.osc.lease_secs <= 3600.0) {
            return Err(ConfigError::Invalid(format!(
                "osc.lease_secs = {} (0 < x <= 3600)",
                self.osc.lease_secs
            )));
        }
        if !(0.0..=100.0).contains(&self.osc.meter_hz) {
            return Err(ConfigError::Invalid(format!(
                "osc.meter_hz = {} (0..=100)",
                self.osc.meter_hz
            )));
        }
        if let Err(e) = crate::control::osc::AllowList::parse(&self.osc.allow) {
            return Err(ConfigError::Invalid(format!("osc.allow: {e}")));
        }
        for (what, v) in [
            (
                "server.header_timeout_secs",
                self.server.header_timeout_secs,
            ),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
        ] {
            if !(0.1..=3600.0).contains(&v) {
                return Err(ConfigError::Invalid(format!("{what} = {v} (0.1 to 3600)")));
            }
        }
        if self.server.max_connections == 0 || self.server.max_connections_per_ip == 0 {
            return Err(ConfigError::Invalid(
                "server.max_connections and max_connections_per_ip must be at least 1".into(),
            ));
        }
        for p in &self.osc.performer {
            if let Err(e) = crate::control::osc::AllowList::parse(std::slice::from_ref(&p.source)) {
                return Err(ConfigError::Invalid(format!("osc.performer.source: {e}")));
            }
            if p.mix.trim().is_empty() {
                return Err(ConfigError::Invalid("osc.performer.mix is empty".into()));
            }
        }
        if self.mdns.host_name.is_empty() || self.mdns.host_name.contains('.') {
            return Err(ConfigError::Invalid(format!(
                "mdns.host_name = {:?} (one label, no dots)",
                self.mdns.host_name
            )));
        }
        // --- end osc/mdns ---
        Ok(())
    }

    /// Samples per channel in one engine frame at 48 kHz.
    pub fn frame_len(&self) -> usize {
        (self.audio.frame_ms * 48.0).round() as usize
    }

    /// Names for `n` channels: configured ones first, then "Ch k".
    pub fn channel_names(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|k| {
                self.audio
                    .channel_names
                    .get(k)
                    .filter(|s| !s.trim().is_empty())
                    .cloned()
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
        assert_eq!(c.channel_names(3), ["Ch 1", "Ch 2", "Ch 3"]);
    }

    #[test]
    fn example_config_parses_and_names_channels() {
        let text = include_str!("../config/monmix.example.toml");
        let c = Config::parse(text).unwrap();
        assert_eq!(c.channel_names(2)[0], "Click");
    }

    #[test]
    fn rejects_bad_values_with_a_clear_message() {
        let e = Config::parse("[audio]\nframe_ms = 7")
            .unwrap_err()
            .to_string();
        assert!(e.contains("frame_ms"), "{e}");
        let e = Config::parse("[audio]\nchanels = 7")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chanels"), "{e}");
        let e = Config::parse("[state]\ndebounce_ms = 500")
            .unwrap_err()
            .to_string();
        assert!(e.contains("100"), "{e}");
        assert_eq!(
            Config::parse("[audio]\nframe_ms = 2.5")
                .unwrap()
                .frame_len(),
            120
        );
    }
}
