//! Replies built from store state: the ack of an applied op, `param_sync` for a store
//! event, and the wire form of a mix.

use serde_json::{json, Value};

use crate::control::protocol::{msg, MixOp};
use crate::state::{Change, Event, MixState};

/// The wire form of a mix: the seed schema plus `solos`, `name` and preset names.
pub fn mix_json(m: &MixState) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "presets".into(),
            Value::Array(m.presets.keys().map(|k| Value::String(k.clone())).collect()),
        );
    }
    v
}

/// The ack for an applied op, in the seed's names.
pub(super) fn ack(op: &MixOp, client_id: &str, mix: &MixState) -> Value {
    let (ty, body) = match op {
        MixOp::Subscribe { channels: None, .. } => {
            ("auto_resubscribed", json!({"mix": mix_json(mix)}))
        }
        MixOp::Subscribe { .. } => ("subscribed", json!({"mix": mix_json(mix)})),
        MixOp::UpdateGain { channel, .. } => (
            "gain_updated",
            json!({"channel": channel, "gain": mix.gain(*channel as u32)}),
        ),
        MixOp::UpdatePan { channel, .. } => (
            "pan_updated",
            json!({"channel": channel, "pan": mix.pan(*channel as u32)}),
        ),
        MixOp::ToggleMute { channel, .. } => (
            "mute_updated",
            json!({"channel": channel, "muted": mix.muted(*channel as u32)}),
        ),
        MixOp::ToggleSolo { channel, .. } => (
            "solo_updated",
            json!({"channel": channel, "soloed": mix.soloed(*channel as u32)}),
        ),
        MixOp::SetOn { .. } => ("channels_updated", json!({"channels": mix.channels})),
        MixOp::UpdateMaster { .. } => ("master_updated", json!({"gain": mix.master_gain})),
        MixOp::SetChannels { .. } => ("channels_updated", json!({"channels": mix.channels})),
        MixOp::Rename { .. } => ("renamed", json!({"name": mix.name})),
        MixOp::LoadPreset { name } => {
            ("preset_loaded", json!({"name": name, "mix": mix_json(mix)}))
        }
        MixOp::SavePreset { .. } | MixOp::DeletePreset { .. } => (
            "presets",
            json!({"presets": mix.presets.keys().collect::<Vec<_>>()}),
        ),
    };
    let mut v = msg(ty, body);
    if let Some(o) = v.as_object_mut() {
        o.insert("client_id".into(), Value::String(client_id.to_owned()));
    }
    v
}

/// `param_sync` for a store event, as other sessions see it.
pub fn param_sync(ev: &Event) -> Option<Value> {
    let (param, channel, value) = match &ev.change {
        Change::Gain { channel, gain } => ("gain", Some(*channel), json!(gain)),
        Change::Pan { channel, pan } => ("pan", Some(*channel), json!(pan)),
        Change::Mute { channel, muted } => ("mute", Some(*channel), json!(muted)),
        Change::Solo { channel, soloed } => ("solo", Some(*channel), json!(soloed)),
        Change::Master { gain } => ("master", None, json!(gain)),
        Change::Channels { channels } => ("channels", None, json!(channels)),
        Change::Renamed { name } => ("name", None, json!(name)),
        Change::MixReplaced { mix } => ("mix", None, mix_json(mix)),
        Change::PresetsChanged { names } => ("presets", None, json!(names)),
        _ => return None,
    };
    let mut v = json!({
        "type": "param_sync",
        "client_id": ev.client_id,
        "param": param,
        "value": value,
    });
    if let (Some(c), Some(o)) = (channel, v.as_object_mut()) {
        o.insert("channel".into(), json!(c));
    }
    Some(v)
}
