//! What the wire layers (WS, OSC, HTTP, CLI) ask of the store, what it answers, and what it
//! tells everyone else. Wire protocols translate to and from these types; they never touch
//! the model directly, so validation lives in one place (the store).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::MixState;

/// One request: `op` applied to the mix of `client_id`.
/// For [`Op::Reorder`] (a store-wide operation) `client_id` is ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: String,
    pub op: Op,
    /// Who sent it (a WebSocket session id, an OSC peer id; 0 = nobody in particular).
    /// Copied into the events so the sender is not sent its own change back.
    #[serde(default)]
    pub origin: u64,
}

impl Command {
    pub fn new(client_id: impl Into<String>, op: Op) -> Self {
        Command {
            client_id: client_id.into(),
            op,
            origin: 0,
        }
    }

    /// The same command, marked as sent by `origin`.
    pub fn from_origin(mut self, origin: u64) -> Self {
        self.origin = origin;
        self
    }
}

/// Operations. Channel numbers are 0-based, gains linear 0..=2, pans -1..=1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The seed's `subscribe`. `channels: None` means "restore my stored mix": nothing
    /// changes (gains/pans are then ignored, the stored mix wins, as in the seed's
    /// `auto_resubscribed`). With `channels`, the list replaces the subscription and the
    /// given gains/pans are merged over the stored ones.
    Subscribe {
        channels: Option<Vec<u32>>,
        #[serde(default)]
        gains: Option<BTreeMap<u32, f64>>,
        #[serde(default)]
        pans: Option<BTreeMap<u32, f64>>,
    },
    SetGain {
        channel: u32,
        gain: f64,
    },
    SetPan {
        channel: u32,
        pan: f64,
    },
    SetMute {
        channel: u32,
        muted: bool,
    },
    SetSolo {
        channel: u32,
        soloed: bool,
    },
    SetMaster {
        gain: f64,
    },
    /// Replaces the subscription (sorted and de-duplicated by the store). Subscribed
    /// channels at or above the current channel count (stored while running with a smaller
    /// interface) are invisible to the client and kept, as for `Subscribe`.
    SetChannels {
        channels: Vec<u32>,
    },
    /// Subscribe (`on`) or unsubscribe one channel (OSC `/mix/m/ch/n/on`).
    SetOn {
        channel: u32,
        on: bool,
    },
    Rename {
        name: String,
    },
    SavePreset {
        name: String,
    },
    LoadPreset {
        name: String,
    },
    DeletePreset {
        name: String,
    },
    /// Creates the client: an empty mix, a device record, last in `client_order`.
    Register {
        token_hash: String,
        name: String,
    },
    /// A device (re)connected: `last_seen = now`, `connection_count += 1`. Bumps the
    /// sequence (the registry is persisted) but not the mix timestamp: the mix did not change.
    Connected,
    /// Gives a client a new token (first claim of an imported client that had none).
    SetToken {
        token_hash: String,
    },
    Delete,
    /// New display order. Must list existing clients without duplicates; it may be a
    /// *prefix*: clients not named keep their relative order after the named ones. This
    /// lets an engineer "move these to the top" without racing a concurrent `Register`.
    Reorder {
        order: Vec<String>,
    },
    /// Store-wide: assigns a mix to the wired output with this key (see
    /// `StateFile::outputs`): a client id, `cue`, or `None` (silence). The key must be a
    /// configured output's, the client must exist.
    AssignOutput {
        output: String,
        mix: Option<String>,
    },
}

impl Op {
    /// The channel a single-channel op addresses.
    pub fn channel(&self) -> Option<u32> {
        match self {
            Op::SetGain { channel, .. }
            | Op::SetPan { channel, .. }
            | Op::SetMute { channel, .. }
            | Op::SetSolo { channel, .. }
            | Op::SetOn { channel, .. } => Some(*channel),
            _ => None,
        }
    }
}

/// A successful command's result: the sequence the state has after it, and the events it
/// produced (empty for a no-op, which keeps the old sequence).
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub sequence: u64,
    pub events: Vec<Event>,
}

/// A change that happened, as broadcast to every listener. All events of one command share
/// its `sequence`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub sequence: u64,
    /// The command's `origin`: the session that caused it.
    #[serde(default)]
    pub origin: u64,
    /// The client whose mix/record changed; empty for store-wide changes (`OrderChanged`).
    pub client_id: String,
    pub change: Change,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Gain {
        channel: u32,
        gain: f64,
    },
    Pan {
        channel: u32,
        pan: f64,
    },
    Mute {
        channel: u32,
        muted: bool,
    },
    Solo {
        channel: u32,
        soloed: bool,
    },
    Master {
        gain: f64,
    },
    Channels {
        channels: Vec<u32>,
    },
    Renamed {
        name: String,
    },
    /// The whole mix was replaced (subscribe with channels, preset load, import).
    MixReplaced {
        mix: Box<MixState>,
    },
    /// Preset names after a save or delete.
    PresetsChanged {
        names: Vec<String>,
    },
    ClientAdded {
        name: String,
        slot: Option<usize>,
    },
    ClientRemoved,
    OrderChanged {
        order: Vec<String>,
    },
    OutputAssigned {
        output: String,
        mix: Option<String>,
    },
    Connected {
        connection_count: u64,
        last_seen: u64,
    },
}

/// Everything that can go wrong. Command errors leave the state untouched.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("client {0:?} already exists")]
    ClientExists(String),
    #[error("invalid client id {0:?}")]
    InvalidClientId(String),
    #[error("unknown channel {channel} (this input has {count} channels)")]
    UnknownChannel { channel: u32, count: usize },
    #[error("{field} {value} out of range")]
    OutOfRange { field: &'static str, value: f64 },
    #[error("{field} is not a finite number")]
    NotFinite { field: &'static str },
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    #[error("invalid token hash (expected 64 hex chars)")]
    InvalidTokenHash,
    #[error("too many clients (max {max})")]
    TooManyClients { max: usize },
    #[error("too many presets (max {max})")]
    TooManyPresets { max: usize },
    #[error("unknown preset {0:?}")]
    UnknownPreset(String),
    #[error("invalid order: {0}")]
    InvalidOrder(String),
    #[error("no wired output {0:?} is configured")]
    UnknownOutput(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unreadable state file: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{path}: format_version {found} is newer than this monmix understands ({supported})")]
    UnsupportedFormat {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("serializing state: {0}")]
    Serialize(String),
    #[error("invalid options: {0}")]
    Options(&'static str),
}

impl StoreError {
    /// A short stable code for wire protocols (`error {code, message}`).
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::UnknownClient(_) => "unknown_client",
            StoreError::ClientExists(_) => "client_exists",
            StoreError::InvalidClientId(_) => "invalid_client_id",
            StoreError::UnknownChannel { .. } => "unknown_channel",
            StoreError::OutOfRange { .. } => "out_of_range",
            StoreError::NotFinite { .. } => "not_finite",
            StoreError::InvalidName(_) => "invalid_name",
            StoreError::InvalidTokenHash => "invalid_token_hash",
            StoreError::TooManyClients { .. } => "too_many_clients",
            StoreError::TooManyPresets { .. } => "too_many_presets",
            StoreError::UnknownPreset(_) => "unknown_preset",
            StoreError::InvalidOrder(_) => "invalid_order",
            StoreError::UnknownOutput(_) => "unknown_output",
            StoreError::Io { .. } => "io",
            StoreError::Corrupt { .. } => "corrupt",
            StoreError::UnsupportedFormat { .. } => "unsupported_format",
            StoreError::Serialize(_) => "serialize",
            StoreError::Options(_) => "options",
        }
    }
}
