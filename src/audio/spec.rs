//! `InputSpec`: the user-facing name of an input, as written on the command line and in
//! the config file (`demo`, `tones`, `file:PATH`, `device`, `device:NAME`).
//!
//! Parsing lives apart from opening so the CLI and config can validate early, before any
//! audio thread starts, and so the same string round-trips through `Display`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Which input produces the stage channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputSpec {
    /// A synthesized band in 8 channels (the default without a sound card).
    Demo,
    /// One test sine per channel at known frequencies (see [`super::tones`]).
    Tones,
    /// A multichannel WAV file, looped forever in real time.
    File(PathBuf),
    /// A cpal input device: `None` is the system default, `Some(name)` matches by exact
    /// name first, then by case-insensitive substring.
    Device(Option<String>),
}

/// Why a spec string was refused; the message lists what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid input {input:?}: {reason} (expected demo, tones, file:PATH, device or device:NAME)"
)]
pub struct SpecError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for InputSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| SpecError {
            input: s.to_string(),
            reason,
        };
        let t = s.trim();
        let (kind, arg) = match t.split_once(':') {
            Some((k, a)) => (k, Some(a)),
            None => (t, None),
        };
        match (kind.to_ascii_lowercase().as_str(), arg) {
            ("demo", None) => Ok(InputSpec::Demo),
            ("tones", None) => Ok(InputSpec::Tones),
            ("demo" | "tones", Some(_)) => Err(err("this input takes no argument")),
            ("file", Some(p)) if !p.is_empty() => Ok(InputSpec::File(PathBuf::from(p))),
            ("file", _) => Err(err("file needs a path, as in file:PATH")),
            ("device", None) => Ok(InputSpec::Device(None)),
            ("device", Some(n)) if !n.trim().is_empty() => {
                Ok(InputSpec::Device(Some(n.to_string())))
            }
            ("device", Some(_)) => Err(err("device name is empty")),
            ("", _) => Err(err("empty input")),
            _ => Err(err("unknown input kind")),
        }
    }
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Demo => f.write_str("demo"),
            InputSpec::Tones => f.write_str("tones"),
            InputSpec::File(p) => write!(f, "file:{}", p.display()),
            InputSpec::Device(None) => f.write_str("device"),
            InputSpec::Device(Some(n)) => write!(f, "device:{n}"),
        }
    }
}
