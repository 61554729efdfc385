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

    /// Checks every field (ranges, overflow, cross-field rules); called after CLI
    /// overrides too. The error is one line naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use crate::limits::{frame_len_of_ms, frame_ms_list, MAX_CHANNELS, MAX_CLIENTS};
        let s = &self.server;
        text("server.name", &s.name, 1, 64)?;
        for (what, v) in [
            ("server.header_timeout_secs", s.header_timeout_secs),
            ("server.request_timeout_secs", s.request_timeout_secs),
        ] {
            within(what, v, 0.1, 3600.0)?;
        }
        count("server.max_connections", s.max_connections, 1, 65_536)?;
        count(
            "server.max_connections_per_ip",
            s.max_connections_per_ip,
            1,
            s.max_connections,
        )?;

        let a = &self.audio;
        if let Err(e) = a.input.parse::<crate::audio::InputSpec>() {
            return Err(invalid(format!("audio.input = {:?}: {e}", a.input)));
        }
        count("audio.channels", a.channels, 0, MAX_CHANNELS)?;
        if frame_len_of_ms(a.frame_ms).is_none() {
            return Err(invalid(format!(
                "audio.frame_ms = {} (allowed: {})",
                a.frame_ms,
                frame_ms_list()
            )));
        }
        count(
            "audio.channel_names",
            a.channel_names.len(),
            0,
            MAX_CHANNELS,
        )?;
        for n in &a.channel_names {
            // Empty names are allowed: they fall back to "Ch N".
            text("audio.channel_names", n, 0, 32)?;
        }

        count("engine.max_mixes", self.engine.max_mixes, 1, 1024)?;

        let st = &self.state;
        if st.path.as_os_str().is_empty() {
            return Err(invalid("state.path is empty".into()));
        }
        let max_debounce = crate::state::persist::MAX_DEBOUNCE.as_millis() as u64;
        if st.debounce_ms > max_debounce {
            return Err(invalid(format!(
                "state.debounce_ms = {} (0..={max_debounce}: a change must reach disk within 100 ms, fsync included)",
                st.debounce_ms
            )));
        }
        count("state.max_clients", st.max_clients, 1, MAX_CLIENTS)?;

        let sec = &self.security;
        text("security.admin_pin", &sec.admin_pin, 0, 64)?;
        for t in &sec.engineer_tokens {
            text("security.engineer_tokens", t, 8, 256)?;
        }
        for o in &sec.allowed_origins {
            text("security.allowed_origins", o, 1, 256)?;
        }
        for h in &sec.allowed_hosts {
            text("security.allowed_hosts", h, 1, 253)?;
        }
        count(
            "security.max_sessions_per_ip",
            sec.max_sessions_per_ip,
            1,
            4096,
        )?;

        let o = &self.osc;
        if !(o.lease_secs > 0.0 && o.lease_secs <= 3600.0) {
            return Err(invalid(format!(
                "osc.lease_secs = {} (0 < x <= 3600)",
                o.lease_secs
            )));
        }
        within("osc.meter_hz", o.meter_hz, 0.0, 100.0)?;
        text("osc.touchosc_mix", &o.touchosc_mix, 1, 64)?;
        if let Err(e) = crate::allow_list::AllowList::parse(&o.allow) {
            return Err(invalid(format!("osc.allow: {e}")));
        }
        count("osc.max_subscribers", o.max_subscribers, 1, 1024)?;
        for p in &o.performer {
            if let Err(e) = crate::allow_list::AllowList::parse(std::slice::from_ref(&p.source)) {
                return Err(invalid(format!("osc.performer.source: {e}")));
            }
            if p.mix.trim().is_empty() {
                return Err(invalid("osc.performer.mix is empty".into()));
            }
        }
        let m = &self.mdns;
        if m.host_name.is_empty()
            || m.host_name.len() > 63
            || !m
                .host_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(invalid(format!(
                "mdns.host_name = {:?} (one DNS label: 1..=63 of a-z, 0-9, '-')",
                m.host_name
            )));
        }
        for i in &m.interfaces {
            text("mdns.interfaces", i, 1, 64)?;
        }

        let sm = &self.stream;
        count(
            "stream.bitrate_kbps",
            sm.bitrate_kbps as usize,
            crate::limits::BITRATE_KBPS_MIN as usize,
            crate::limits::BITRATE_KBPS_MAX as usize,
        )?;
        count(
            "stream.complexity",
            usize::from(sm.complexity),
            0,
            crate::limits::OPUS_COMPLEXITY_MAX as usize,
        )?;
        count("stream.max_listeners", sm.max_listeners, 1, 4096)?;
        Ok(())
    }

    /// Samples per channel in one engine frame at 48 kHz.
    pub fn frame_len(&self) -> usize {
        crate::limits::frame_len_of_ms(self.audio.frame_ms)
            .unwrap_or(crate::limits::DEFAULT_FRAME_LEN)
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

fn invalid(msg: String) -> ConfigError {
    ConfigError::Invalid(msg)
}

/// `field` must be a finite number in `lo..=hi`.
fn within(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(format!("{field} = {v} ({lo}..={hi})")))
    }
}

/// `field` must be a whole number in `lo..=hi`.
fn count(field: &str, v: usize, lo: usize, hi: usize) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(format!("{field} = {v} ({lo}..={hi})")))
    }
}

/// `field` must be `min..=max` characters with no control characters.
fn text(field: &str, v: &str, min: usize, max: usize) -> Result<(), ConfigError> {
    let n = v.chars().count();
    if !(min..=max).contains(&n) {
        Err(invalid(format!(
            "{field} = {v:?} is {n} characters ({min}..={max})"
        )))
    } else if v.chars().any(char::is_control) {
        Err(invalid(format!("{field} = {v:?} has control characters")))
    } else {
        Ok(())
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

    /// Every field is checked; the error is one line that names it, and nothing wraps.
    #[test]
    fn every_field_is_range_checked() {
        for (toml, field) in [
            ("[stream]\nbitrate_kbps = 4294967", "stream.bitrate_kbps"),
            ("[stream]\nbitrate_kbps = 32", "stream.bitrate_kbps"),
            ("[stream]\ncomplexity = 11", "stream.complexity"),
            ("[stream]\nmax_listeners = 0", "stream.max_listeners"),
            (
                "[security]\nmax_sessions_per_ip = 0",
                "security.max_sessions_per_ip",
            ),
            (
                "[security]\nengineer_tokens = [\"\"]",
                "security.engineer_tokens",
            ),
            ("[state]\ndebounce_ms = 100", "state.debounce_ms"),
            ("[state]\nmax_clients = 0", "state.max_clients"),
            ("[state]\npath = \"\"", "state.path"),
            ("[audio]\nchannels = 65", "audio.channels"),
            ("[audio]\nframe_ms = nan", "audio.frame_ms"),
            ("[audio]\ninput = \"telepathy\"", "audio.input"),
            ("[server]\nname = \"\"", "server.name"),
            (
                "[server]\nheader_timeout_secs = inf",
                "server.header_timeout_secs",
            ),
            (
                "[server]\nmax_connections = 4\nmax_connections_per_ip = 5",
                "server.max_connections_per_ip",
            ),
            ("[osc]\nmeter_hz = nan", "osc.meter_hz"),
            ("[osc]\nmax_subscribers = 0", "osc.max_subscribers"),
            ("[osc]\ntouchosc_mix = \"\"", "osc.touchosc_mix"),
            ("[mdns]\nhost_name = \"my monmix\"", "mdns.host_name"),
            ("[engine]\nmax_mixes = 0", "engine.max_mixes"),
        ] {
            let e = Config::parse(toml).unwrap_err().to_string();
            assert!(e.contains(field), "{toml}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        // The limits themselves are accepted.
        let ok = "[stream]\nbitrate_kbps = 256\ncomplexity = 10\n[state]\ndebounce_ms = 50\n[audio]\nchannels = 64\nframe_ms = 20";
        Config::parse(ok).unwrap();
    }
}
