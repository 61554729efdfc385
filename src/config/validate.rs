//! Checking a [`Config`]: every field's range and the cross-field rules, with one-line
//! errors that name the field.

use super::{Config, ConfigError};

impl Config {
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
        // A per-address cap above the total is not an error: the total applies first
        // (a one-address load test sets a high per-address cap on purpose).
        count(
            "server.max_connections_per_ip",
            s.max_connections_per_ip,
            1,
            65_536,
        )?;

        let t = &self.tls;
        if t.https.is_some() && !t.self_signed && (t.cert.is_none() || t.key.is_none()) {
            return Err(invalid(
                "tls.https is set: give tls.cert and tls.key, or tls.self_signed = true"
                    .to_string(),
            ));
        }
        if t.https.is_some_and(|h| h == s.http && h.port() != 0) {
            return Err(invalid(format!(
                "tls.https = {} is also server.http",
                s.http
            )));
        }

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
        count(
            "stream.vanish_s",
            usize::try_from(sm.vanish_s).unwrap_or(usize::MAX),
            2,
            120,
        )?;
        self.validate_outputs()
    }

    /// What can be checked without the devices: shapes, and no channel fed twice. Device
    /// names and channel ranges are checked when the outputs open.
    fn validate_outputs(&self) -> Result<(), ConfigError> {
        count(
            "output (entries)",
            self.outputs.len(),
            0,
            crate::limits::MAX_OUTPUTS,
        )?;
        let mut used: Vec<(&str, u16, usize)> = Vec::new();
        for (i, o) in self.outputs.iter().enumerate() {
            let n = i + 1;
            text(&format!("output[{n}].device"), &o.device, 1, 128)?;
            text(&format!("output[{n}].mix"), &o.mix, 0, 64)?;
            if o.channels.is_empty() || o.channels.len() > 2 {
                return Err(invalid(format!(
                    "output[{n}].channels = {:?}: give [left, right] or [mono]",
                    o.channels
                )));
            }
            for &c in &o.channels {
                if c == 0 || usize::from(c) > crate::limits::MAX_CHANNELS {
                    return Err(invalid(format!(
                        "output[{n}].channels: {c} is not a channel (1..={})",
                        crate::limits::MAX_CHANNELS
                    )));
                }
                if let Some((_, _, other)) = used
                    .iter()
                    .find(|(d, u, _)| *d == o.device.as_str() && *u == c)
                {
                    return Err(invalid(format!(
                        "output[{n}].channels: channel {c} of device {:?} is already output[{other}]'s",
                        o.device
                    )));
                }
                used.push((&o.device, c, n));
            }
        }
        Ok(())
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
    fn outputs_are_checked_field_by_field() {
        let ok = "[[output]]\ndevice = \"default\"\nchannels = [1, 2]\nmix = \"Ana\"\n\
                  [[output]]\ndevice = \"default\"\nchannels = [3]\nmix = \"cue\"\n";
        let cfg = Config::parse(ok).unwrap();
        assert_eq!(cfg.outputs.len(), 2);
        assert_eq!(cfg.outputs[1].channels, [3]);
        for (text, want) in [
            (
                "[[output]]\ndevice = \"d\"\nchannels = [1, 2, 3]\nmix = \"A\"",
                "output[1].channels",
            ),
            (
                "[[output]]\ndevice = \"d\"\nchannels = [0]\nmix = \"A\"",
                "output[1].channels: 0",
            ),
            (
                "[[output]]\ndevice = \"\"\nchannels = [1]\nmix = \"A\"",
                "output[1].device",
            ),
            (
                "[[output]]\ndevice = \"d\"\nchannels = [1]\nmix = \"\\u0007\"",
                "output[1].mix",
            ),
            (
                "[[output]]\ndevice = \"d\"\nchannels = [1, 2]\nmix = \"A\"\n\
                 [[output]]\ndevice = \"d\"\nchannels = [2, 3]\nmix = \"B\"",
                "output[2].channels: channel 2 of device \"d\" is already output[1]'s",
            ),
            (
                "[[output]]\ndevice = \"d\"\nchanels = [1]\nmix = \"A\"",
                "chanels",
            ),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
            if want != "chanels" {
                assert_eq!(e.lines().count(), 1, "one line: {e}");
            }
        }
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
            ("[stream]\nvanish_s = 1", "stream.vanish_s"),
            ("[stream]\nvanish_s = 121", "stream.vanish_s"),
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
                "[server]\nmax_connections_per_ip = 0",
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
