//! Outgoing OSC messages: query replies, mix dumps, feedback of store events and meter
//! feedback. Builds messages only; who receives them is the core's and the leases' business.

use rosc::{OscMessage, OscType};

use super::address::Target;
use crate::meters::Meters;
use crate::state::{Change, MixState, Store};
use crate::taper;

/// dB reported for a gain of 0 (OSC surfaces handle -inf badly).
pub const DB_FLOOR: f32 = -144.0;

pub(super) fn msg(addr: String, args: Vec<OscType>) -> OscMessage {
    OscMessage { addr, args }
}

pub(super) fn f(v: f64) -> OscType {
    OscType::Float(v as f32)
}

fn i(b: bool) -> OscType {
    OscType::Int(i32::from(b))
}

fn db_of(gain: f64) -> f64 {
    taper::gain_to_db(gain).max(f64::from(DB_FLOOR))
}

/// The value of one target, as a query reply carries it.
pub(super) fn value_of(t: Target, m: &MixState) -> Vec<OscType> {
    match t {
        Target::Gain(c) => vec![f(m.gain(c))],
        Target::Fader(c) => vec![f(taper::gain_to_fader(m.gain(c)))],
        Target::Db(c) => vec![f(db_of(m.gain(c)))],
        Target::Pan(c) => vec![f(m.pan(c))],
        Target::Mute(c) => vec![i(m.muted(c))],
        Target::Solo(c) => vec![i(m.soloed(c))],
        Target::On(c) => vec![i(m.subscribed(c))],
        Target::MasterFader => vec![f(taper::gain_to_fader(m.master_gain))],
        Target::MasterGain => vec![f(m.master_gain)],
        Target::PresetLoad => m
            .presets
            .keys()
            .map(|k| OscType::String(k.clone()))
            .collect(),
        Target::Dump => Vec::new(),
    }
}

/// Every value of a mix as messages under `/mix/{m}/...` (plus the TouchOSC aliases).
pub(super) fn dump(channels: usize, m: &str, mix: &MixState, alias: bool) -> Vec<OscMessage> {
    let mut v = Vec::with_capacity(4 + channels * 8);
    v.push(msg(
        format!("/mix/{m}/name"),
        vec![OscType::String(mix.name.clone())],
    ));
    v.push(msg(
        format!("/mix/{m}/master/gain"),
        vec![f(mix.master_gain)],
    ));
    v.push(msg(
        format!("/mix/{m}/master/fader"),
        vec![f(taper::gain_to_fader(mix.master_gain))],
    ));
    for c in 0..channels as u32 {
        let n = c + 1;
        for (what, t) in [
            ("gain", Target::Gain(c)),
            ("fader", Target::Fader(c)),
            ("pan", Target::Pan(c)),
            ("mute", Target::Mute(c)),
            ("solo", Target::Solo(c)),
            ("on", Target::On(c)),
        ] {
            v.push(msg(format!("/mix/{m}/ch/{n}/{what}"), value_of(t, mix)));
        }
        if alias {
            v.push(msg(format!("/1/fader{n}"), value_of(Target::Fader(c), mix)));
            v.push(msg(format!("/1/toggle{n}"), value_of(Target::Mute(c), mix)));
        }
    }
    v
}

/// The feedback messages of one store change to the mix at 1-based position `p` (plus the
/// TouchOSC aliases when `alias`); empty for changes surfaces do not show.
pub(super) fn event_messages(
    p: usize,
    change: &Change,
    channels: usize,
    alias: bool,
) -> Vec<OscMessage> {
    let mut msgs = Vec::new();
    match change {
        Change::Gain { channel, gain } => {
            let n = channel + 1;
            msgs.push(msg(format!("/mix/{p}/ch/{n}/gain"), vec![f(*gain)]));
            msgs.push(msg(
                format!("/mix/{p}/ch/{n}/fader"),
                vec![f(taper::gain_to_fader(*gain))],
            ));
            msgs.push(msg(format!("/mix/{p}/ch/{n}/db"), vec![f(db_of(*gain))]));
            if alias {
                msgs.push(msg(
                    format!("/1/fader{n}"),
                    vec![f(taper::gain_to_fader(*gain))],
                ));
            }
        }
        Change::Pan { channel, pan } => msgs.push(msg(
            format!("/mix/{p}/ch/{}/pan", channel + 1),
            vec![f(*pan)],
        )),
        Change::Mute { channel, muted } => {
            msgs.push(msg(
                format!("/mix/{p}/ch/{}/mute", channel + 1),
                vec![i(*muted)],
            ));
            if alias {
                msgs.push(msg(format!("/1/toggle{}", channel + 1), vec![i(*muted)]));
            }
        }
        Change::Solo { channel, soloed } => msgs.push(msg(
            format!("/mix/{p}/ch/{}/solo", channel + 1),
            vec![i(*soloed)],
        )),
        Change::Master { gain } => {
            msgs.push(msg(format!("/mix/{p}/master/gain"), vec![f(*gain)]));
            msgs.push(msg(
                format!("/mix/{p}/master/fader"),
                vec![f(taper::gain_to_fader(*gain))],
            ));
        }
        Change::Channels { channels: on } => {
            for c in 0..channels as u32 {
                msgs.push(msg(
                    format!("/mix/{p}/ch/{}/on", c + 1),
                    vec![i(on.contains(&c))],
                ));
            }
        }
        Change::MixReplaced { mix } => msgs = dump(channels, &p.to_string(), mix, alias),
        Change::Renamed { name } => msgs.push(msg(
            format!("/mix/{p}/name"),
            vec![OscType::String(name.clone())],
        )),
        _ => {}
    }
    msgs
}

/// The arguments of `/meters/input`: rms, peak per input channel.
pub(super) fn input_levels(meters: &Meters) -> Vec<OscType> {
    let mut inputs = Vec::with_capacity(meters.channels() * 2);
    for ch in 0..meters.channels() {
        let l = meters.input(ch).unwrap_or_default();
        inputs.push(OscType::Float(l.rms));
        inputs.push(OscType::Float(l.peak));
    }
    inputs
}

/// `/mix/{p}/meters f f` (rms, peak, linear) for each mix of the roster, with its client id.
pub(super) fn mix_meters(
    roster: &[(String, String)],
    store: &Store,
    meters: &Meters,
) -> Vec<(String, OscMessage)> {
    let mut per_mix: Vec<(String, OscMessage)> = Vec::with_capacity(roster.len());
    for (p, (id, _)) in roster.iter().enumerate() {
        let level = store
            .client_slot(id)
            .and_then(|s| meters.mix(s))
            .unwrap_or_default();
        per_mix.push((
            id.clone(),
            msg(
                format!("/mix/{}/meters", p + 1),
                vec![OscType::Float(level.rms), OscType::Float(level.peak)],
            ),
        ));
    }
    per_mix
}
