//! The persisted data model. `MixState` is exactly the seed's `channels_state` entry
//! (Fichatech `channels_state.json`), so a file written by the Python mixer loads here and a
//! file written here stays readable by anything that understands the seed schema.
//!
//! Fields we add on top of the seed (`solos`, `name`, `presets`) are `#[serde(default)]`:
//! the seed's own example has none of them and must still load.
//!
//! Numbers are `f64` because the seed stores Python floats; the engine gets `f32`.
//! Non-finite numbers never enter this model: commands are validated by the store, and
//! a file is parsed by serde_json, which refuses `NaN`/`Infinity` tokens and `1e999`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::params::{ChannelParams, MixParams};

/// Version of the `state.json` layout written by this code.
pub const FORMAT_VERSION: u32 = 1;
/// Highest input channel index a stored mix may mention. Channels at or above the current
/// channel count are kept (a smaller interface must never lose a mix), but an index this
/// large can only be garbage, and it would make every engine snapshot huge.
pub const MAX_CHANNEL_INDEX: u32 = 1023;
/// Named presets per client.
pub const MAX_PRESETS: usize = 32;
/// Longest client/preset name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Output assignments a file may hold, and the longest key or value kept.
pub const MAX_OUTPUT_ENTRIES: usize = 256;
pub const MAX_OUTPUT_KEY_CHARS: usize = 300;
/// Highest `sequence` a loaded file keeps (2^53 - 1, exact in a JavaScript number). Each
/// change adds one, so a file near `u64::MAX` (hand-edited, damaged) would overflow on the
/// first command. A larger one is reset to 0: sequences only order the changes of one
/// running server (events, the persister's "already written"), never across restarts.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

pub const GAIN_MIN: f64 = 0.0;
pub const GAIN_MAX: f64 = 2.0;
pub const PAN_MIN: f64 = -1.0;
pub const PAN_MAX: f64 = 1.0;

/// Gain of a channel that has no entry in `gains` (0 dB).
pub const DEFAULT_GAIN: f64 = 1.0;
/// Pan of a channel that has no entry in `pans` (centre).
pub const DEFAULT_PAN: f64 = 0.0;

fn default_master() -> f64 {
    1.0
}

fn default_format_version() -> u32 {
    FORMAT_VERSION
}

/// One client's personal mix, in the seed's `channels_state` schema.
///
/// Maps are keyed by 0-based input channel; serde_json writes integer keys as strings
/// (`"0"`), exactly like the seed. A channel without an entry has gain 1.0, pan 0.0, and is
/// neither muted nor soloed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixState {
    /// Subscribed channels, sorted and unique.
    pub channels: Vec<u32>,
    /// Linear gain per channel, 0.0..=2.0.
    #[serde(default)]
    pub gains: BTreeMap<u32, f64>,
    /// Pan per channel, -1.0..=1.0.
    #[serde(default)]
    pub pans: BTreeMap<u32, f64>,
    #[serde(default)]
    pub mutes: BTreeMap<u32, bool>,
    /// Linear master gain, 0.0..=2.0.
    #[serde(default = "default_master")]
    pub master_gain: f64,
    /// Milliseconds since the Unix epoch of the last change of this mix.
    #[serde(default)]
    pub timestamp: u64,
    /// Not in the seed (it had no solo); defaults to none soloed.
    #[serde(default)]
    pub solos: BTreeMap<u32, bool>,
    /// Display name; not in the seed.
    #[serde(default)]
    pub name: String,
    /// Named snapshots of this mix; not in the seed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub presets: BTreeMap<String, MixPreset>,
}

impl Default for MixState {
    fn default() -> Self {
        MixState {
            channels: Vec::new(),
            gains: BTreeMap::new(),
            pans: BTreeMap::new(),
            mutes: BTreeMap::new(),
            master_gain: 1.0,
            timestamp: 0,
            solos: BTreeMap::new(),
            name: String::new(),
            presets: BTreeMap::new(),
        }
    }
}

/// A named snapshot of everything audible in a mix (not its name, timestamp or presets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixPreset {
    pub channels: Vec<u32>,
    #[serde(default)]
    pub gains: BTreeMap<u32, f64>,
    #[serde(default)]
    pub pans: BTreeMap<u32, f64>,
    #[serde(default)]
    pub mutes: BTreeMap<u32, bool>,
    #[serde(default)]
    pub solos: BTreeMap<u32, bool>,
    #[serde(default = "default_master")]
    pub master_gain: f64,
}

impl MixState {
    pub fn gain(&self, channel: u32) -> f64 {
        self.gains.get(&channel).copied().unwrap_or(DEFAULT_GAIN)
    }

    pub fn pan(&self, channel: u32) -> f64 {
        self.pans.get(&channel).copied().unwrap_or(DEFAULT_PAN)
    }

    pub fn muted(&self, channel: u32) -> bool {
        self.mutes.get(&channel).copied().unwrap_or(false)
    }

    pub fn soloed(&self, channel: u32) -> bool {
        self.solos.get(&channel).copied().unwrap_or(false)
    }

    pub fn subscribed(&self, channel: u32) -> bool {
        self.channels.binary_search(&channel).is_ok()
    }

    /// The audible part of the mix as a preset.
    pub fn to_preset(&self) -> MixPreset {
        MixPreset {
            channels: self.channels.clone(),
            gains: self.gains.clone(),
            pans: self.pans.clone(),
            mutes: self.mutes.clone(),
            solos: self.solos.clone(),
            master_gain: self.master_gain,
        }
    }

    /// Replaces the audible part of the mix with `preset` (name and presets stay).
    pub fn apply_preset(&mut self, preset: &MixPreset) {
        self.channels = preset.channels.clone();
        self.gains = preset.gains.clone();
        self.pans = preset.pans.clone();
        self.mutes = preset.mutes.clone();
        self.solos = preset.solos.clone();
        self.master_gain = preset.master_gain;
    }

    /// Engine view of this mix for an input with `channel_count` channels. Channels at or
    /// above the count are simply not represented: they stay stored, the engine ignores them.
    pub fn to_params(&self, channel_count: usize) -> MixParams {
        let channels = (0..channel_count)
            .map(|c| {
                // channel_count is bounded by the options; indices fit in u32.
                let ch = u32::try_from(c).unwrap_or(u32::MAX);
                ChannelParams {
                    gain: self.gain(ch) as f32,
                    pan: self.pan(ch) as f32,
                    subscribed: self.subscribed(ch),
                    muted: self.muted(ch),
                    soloed: self.soloed(ch),
                }
            })
            .collect();
        MixParams {
            channels,
            master: self.master_gain as f32,
        }
    }
}

/// The seed's device registry entry: who connected, when, how often.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    #[serde(default)]
    pub name: String,
    /// ms since epoch.
    #[serde(default)]
    pub first_seen: u64,
    /// ms since epoch.
    #[serde(default)]
    pub last_seen: u64,
    #[serde(default)]
    pub connection_count: u64,
    /// sha256 (lower-case hex) of the client's token. `None` for an imported client nobody
    /// has claimed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hash: Option<String>,
    /// e.g. "engineer"; free-form for the access layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The whole `state.json`. Everything but `channels_state` has a default, so the seed's
/// `{"timestamp": …, "channels_state": {…}}` loads as a state file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    #[serde(default = "default_format_version")]
    pub format_version: u32,
    /// Bumped once per applied command that changed something.
    #[serde(default)]
    pub sequence: u64,
    /// ms since epoch of the last change (the seed wrote seconds here; we only display it).
    #[serde(default)]
    pub timestamp: u64,
    pub channels_state: BTreeMap<String, MixState>,
    #[serde(default)]
    pub devices: BTreeMap<String, DeviceRecord>,
    /// Display order of clients (OSC `/mix/{m}` position, engineer view).
    #[serde(default)]
    pub client_order: Vec<String>,
    /// The engineer's assignments of mixes to wired outputs, by output key
    /// (`device:channels`, e.g. `ears:3,4`): a client id, `cue`, or `null` (nothing).
    /// An output with no entry plays what its `[[output]]` names. Entries of outputs no
    /// longer configured are kept (the rig may come back), as mixes keep hidden channels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, Option<String>>,
}

impl Default for StateFile {
    fn default() -> Self {
        StateFile {
            format_version: FORMAT_VERSION,
            sequence: 0,
            timestamp: 0,
            channels_state: BTreeMap::new(),
            devices: BTreeMap::new(),
            client_order: Vec::new(),
            outputs: BTreeMap::new(),
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Why a name is not acceptable, or `None` if it is: 1..=64 characters, no control
/// characters (they break logs, OSC surfaces and the UI).
pub fn name_problem(name: &str) -> Option<&'static str> {
    let n = name.chars().count();
    if n == 0 {
        Some("empty")
    } else if n > MAX_NAME_CHARS {
        Some("longer than 64 characters")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else {
        None
    }
}

pub use crate::limits::client_id_ok;

pub use super::sanitize::{sanitize, Repairs};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_use_string_keys_and_defaults_apply() {
        let mut m = MixState::default();
        m.gains.insert(3, 0.5);
        let v = serde_json::to_value(&m).expect("json");
        assert_eq!(v["gains"]["3"], 0.5);
        assert!(v.get("presets").is_none());
        assert_eq!(
            (m.gain(0), m.pan(0), m.muted(0), m.soloed(0)),
            (1.0, 0.0, false, false)
        );
        let p = m.to_params(4);
        assert_eq!(p.channels.len(), 4);
        assert_eq!(p.channels[3].gain, 0.5);
        assert!(p.channels.iter().all(|c| !c.subscribed));
    }
}
