//! The server's outbound WebSocket messages as types: each message's JSON is defined once,
//! here, and checked against `protocol/schema/server/<type>.json` by `wire/tests.rs`,
//! instead of a `json!` at every send site. Messages borrow what they show: they are built,
//! serialised and dropped within one call, so nothing is cloned for them.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::Value;

use super::protocol::{ErrorCode, WireError};
use super::session::Role;
use crate::state::{MixPreset, MixState};

/// Every message the server sends; `type` is the variant name in snake_case. Acks carry
/// the `client_id` of the mix they acknowledge (an engineer edits other clients' mixes).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg<'a> {
    /// Answer to `hello`. `client_id`, `token` and `mix` are `null`, never absent, for an
    /// engineer without a mix of its own: the schema requires the keys.
    Welcome {
        client_id: Option<&'a str>,
        token: Option<&'a str>,
        role: Role,
        server: &'a str,
        channels: StageChannels<'a>,
        sample_rate: u32,
        frame_ms: f32,
        mix: Option<Mix<'a>>,
        session_id: u64,
        /// Engineer sessions only.
        #[serde(skip_serializing_if = "Option::is_none")]
        cue_token: Option<&'a str>,
    },
    /// Engineer: every client in the persisted order.
    Clients {
        clients: Vec<ClientRow<'a>>,
    },
    /// Engineer: the wired outputs and what each plays (after `clients`, and on changes).
    Outputs {
        outputs: Vec<OutputRow<'a>>,
    },
    /// Engineer: the mix opened with `watch_client`.
    ClientMix {
        client_id: &'a str,
        mix: Mix<'a>,
    },
    /// `t` is echoed as given, `null` when the ping had none.
    Pong {
        t: Option<f64>,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        ref_type: Option<&'a str>,
    },
    /// `[rms, peak]` per input, and for the mix the session shows.
    Meters {
        inputs: &'a [[f64; 2]],
        mix: [f64; 2],
    },
    /// A change made elsewhere to a mix this session shows.
    ParamSync {
        client_id: &'a str,
        /// Only for per-channel params.
        #[serde(skip_serializing_if = "Option::is_none")]
        channel: Option<u32>,
        #[serde(flatten)]
        sync: Synced<'a>,
    },
    AutoResubscribed {
        client_id: &'a str,
        mix: Mix<'a>,
    },
    Subscribed {
        client_id: &'a str,
        mix: Mix<'a>,
    },
    GainUpdated {
        client_id: &'a str,
        channel: i64,
        gain: f64,
    },
    PanUpdated {
        client_id: &'a str,
        channel: i64,
        pan: f64,
    },
    MuteUpdated {
        client_id: &'a str,
        channel: i64,
        muted: bool,
    },
    SoloUpdated {
        client_id: &'a str,
        channel: i64,
        soloed: bool,
    },
    ChannelsUpdated {
        client_id: &'a str,
        channels: &'a [u32],
    },
    MasterUpdated {
        client_id: &'a str,
        gain: f64,
    },
    Renamed {
        client_id: &'a str,
        name: &'a str,
    },
    PresetLoaded {
        client_id: &'a str,
        name: &'a str,
        mix: Mix<'a>,
    },
    Presets {
        client_id: &'a str,
        presets: Names<'a>,
    },
}

impl ServerMsg<'_> {
    /// As a JSON value, for callers that inspect replies (the session's tests, fuzzing).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|e| unserialisable(&e))
    }

    /// As the text of a frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| unserialisable(&e).to_string())
    }
}

/// Cannot happen with these types (every map key is a string or an integer); if it ever
/// does, the client gets an `internal` error rather than a frame that is not a message.
fn unserialisable(e: &serde_json::Error) -> Value {
    let message = format!("reply not serialisable: {e}");
    tracing::error!("{message}");
    serde_json::to_value(ServerMsg::Error {
        code: ErrorCode::Internal,
        message: &message,
        ref_type: None,
    })
    .unwrap_or(Value::Null)
}

impl<'a> From<&'a WireError> for ServerMsg<'a> {
    fn from(e: &'a WireError) -> Self {
        ServerMsg::Error {
            code: e.code,
            message: &e.message,
            ref_type: e.ref_type.as_deref(),
        }
    }
}

/// `param_sync`'s `param` and `value` as one type, so a param never carries the wrong
/// kind of value.
#[derive(Debug, Serialize)]
#[serde(tag = "param", content = "value", rename_all = "snake_case")]
pub enum Synced<'a> {
    Gain(f64),
    Pan(f64),
    Mute(bool),
    Solo(bool),
    Master(f64),
    Channels(&'a [u32]),
    Name(&'a str),
    /// The whole mix: after a subscribe, a preset load, or missed events.
    Mix(Mix<'a>),
    Presets(&'a [String]),
}

/// The wire form of a mix (`protocol/schema/mix.json`): the stored mix, with its presets
/// as a list of names (their contents never leave the server).
#[derive(Debug, Serialize)]
pub struct Mix<'a> {
    channels: &'a [u32],
    gains: &'a BTreeMap<u32, f64>,
    pans: &'a BTreeMap<u32, f64>,
    mutes: &'a BTreeMap<u32, bool>,
    master_gain: f64,
    timestamp: u64,
    solos: &'a BTreeMap<u32, bool>,
    name: &'a str,
    presets: Names<'a>,
}

impl<'a> From<&'a MixState> for Mix<'a> {
    fn from(m: &'a MixState) -> Self {
        Mix {
            channels: &m.channels,
            gains: &m.gains,
            pans: &m.pans,
            mutes: &m.mutes,
            master_gain: m.master_gain,
            timestamp: m.timestamp,
            solos: &m.solos,
            name: &m.name,
            presets: Names(&m.presets),
        }
    }
}

/// A mix's preset names, in order, written as a JSON array.
#[derive(Debug)]
pub struct Names<'a>(pub &'a BTreeMap<String, MixPreset>);

impl Serialize for Names<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.keys())
    }
}

/// The stage channels of `welcome`: `[{"index": 0, "name": …}, …]`.
#[derive(Debug)]
pub struct StageChannels<'a>(pub &'a [String]);

impl Serialize for StageChannels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Channel<'a> {
            index: usize,
            name: &'a str,
        }
        s.collect_seq(
            self.0
                .iter()
                .enumerate()
                .map(|(index, name)| Channel { index, name }),
        )
    }
}

/// One row of `outputs`.
#[derive(Debug, Serialize)]
pub struct OutputRow<'a> {
    /// 1-based, the `[[output]]`'s position in the config.
    pub output: usize,
    pub device: &'a str,
    pub channels: &'a [u16],
    /// What it plays: a client id (or the config's name or position), `cue`, or null.
    pub mix: Option<&'a str>,
    /// The client `mix` names now; null for `cue`, nothing, or a client not there yet.
    pub client_id: Option<&'a str>,
}

/// One row of `clients`.
#[derive(Debug, Serialize)]
pub struct ClientRow<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub online: bool,
    pub listening: bool,
    pub last_seen: u64,
    /// What the listening page last reported (`listen_stats`), while it is fresh.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f32>,
}

#[cfg(test)]
mod tests;
