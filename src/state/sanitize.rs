//! Repairing a parsed `state.json`: [`sanitize`] clamps out-of-range values and makes the
//! mixes, devices and client order agree, noting every fix in [`Repairs`].

use std::collections::BTreeMap;

use super::model::{
    client_id_ok, name_problem, DeviceRecord, MixPreset, StateFile, GAIN_MAX, GAIN_MIN,
    MAX_CHANNEL_INDEX, MAX_NAME_CHARS, MAX_OUTPUT_ENTRIES, MAX_OUTPUT_KEY_CHARS, MAX_SEQUENCE,
    PAN_MAX, PAN_MIN,
};

/// Result of [`sanitize`]: what had to be fixed in a structurally valid file.
#[derive(Debug, Default)]
pub struct Repairs {
    pub notes: Vec<String>,
}

impl Repairs {
    fn note(&mut self, s: String) {
        tracing::warn!("state file repaired: {s}");
        self.notes.push(s);
    }
}

fn clamp_map(
    map: &mut BTreeMap<u32, f64>,
    lo: f64,
    hi: f64,
    what: &str,
    who: &str,
    r: &mut Repairs,
) {
    map.retain(|ch, v| {
        if *ch > MAX_CHANNEL_INDEX {
            r.note(format!("{who}: dropped {what} of channel {ch}"));
            return false;
        }
        if !v.is_finite() {
            // Cannot come from serde_json, but keep the invariant local.
            r.note(format!("{who}: dropped non-finite {what} of channel {ch}"));
            return false;
        }
        if *v < lo || *v > hi {
            let c = v.clamp(lo, hi);
            r.note(format!("{who}: {what} of channel {ch} {v} clamped to {c}"));
            *v = c;
        }
        true
    });
}

fn clean_bool_map(map: &mut BTreeMap<u32, bool>, what: &str, who: &str, r: &mut Repairs) {
    map.retain(|ch, _| {
        let ok = *ch <= MAX_CHANNEL_INDEX;
        if !ok {
            r.note(format!("{who}: dropped {what} of channel {ch}"));
        }
        ok
    });
}

fn clean_channels(ch: &mut Vec<u32>, who: &str, r: &mut Repairs) {
    let before = ch.len();
    ch.retain(|c| *c <= MAX_CHANNEL_INDEX);
    if ch.len() != before {
        r.note(format!(
            "{who}: dropped channel indices above {MAX_CHANNEL_INDEX}"
        ));
    }
    let sorted = ch.windows(2).all(|w| w[0] < w[1]);
    if !sorted {
        ch.sort_unstable();
        ch.dedup();
        r.note(format!("{who}: channel list sorted/deduplicated"));
    }
}

fn clamp_master(v: &mut f64, who: &str, r: &mut Repairs) {
    if !v.is_finite() {
        r.note(format!("{who}: non-finite master_gain reset to 1.0"));
        *v = 1.0;
    } else if *v < GAIN_MIN || *v > GAIN_MAX {
        let c = v.clamp(GAIN_MIN, GAIN_MAX);
        r.note(format!("{who}: master_gain {v} clamped to {c}"));
        *v = c;
    }
}

fn clean_name(name: &mut String, who: &str, r: &mut Repairs) {
    if name.chars().any(char::is_control) || name.chars().count() > MAX_NAME_CHARS {
        let fixed: String = name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect();
        r.note(format!(
            "{who}: name {name:?} shortened/cleaned to {fixed:?}"
        ));
        *name = fixed;
    }
}

fn sanitize_preset(p: &mut MixPreset, who: &str, r: &mut Repairs) {
    clean_channels(&mut p.channels, who, r);
    clamp_map(&mut p.gains, GAIN_MIN, GAIN_MAX, "gain", who, r);
    clamp_map(&mut p.pans, PAN_MIN, PAN_MAX, "pan", who, r);
    clean_bool_map(&mut p.mutes, "mute", who, r);
    clean_bool_map(&mut p.solos, "solo", who, r);
    clamp_master(&mut p.master_gain, who, r);
}

/// Brings a structurally valid file (it parsed) to the store's invariants.
///
/// Decision: a value out of range is *clamped* (and logged), not a reason to quarantine
/// the file: one bad number (a hand edit, a future version with a wider range) must not
/// cost a whole band its mixes. Structural damage (bad JSON, wrong types, NaN) is what
/// quarantines a file; see `persist`.
///
/// Also makes the three client collections agree: every mix gets a device record (the
/// seed's file has none), devices without a mix are dropped, and `client_order` lists
/// each client exactly once (unknown ids removed, missing ones appended in id order).
pub fn sanitize(state: &mut StateFile) -> Repairs {
    let mut r = Repairs::default();

    let long = |s: &str| s.chars().count() > MAX_OUTPUT_KEY_CHARS;
    let before = state.outputs.len();
    state
        .outputs
        .retain(|k, v| !long(k) && !v.as_deref().is_some_and(long));
    while state.outputs.len() > MAX_OUTPUT_ENTRIES {
        state.outputs.pop_last();
    }
    if state.outputs.len() != before {
        r.note(format!(
            "dropped {} output assignments (too many, or too long)",
            before - state.outputs.len()
        ));
    }

    if state.sequence > MAX_SEQUENCE {
        r.note(format!("sequence {} reset to 0", state.sequence));
        state.sequence = 0;
    }

    let bad_ids: Vec<String> = state
        .channels_state
        .keys()
        .filter(|id| !client_id_ok(id))
        .cloned()
        .collect();
    for id in bad_ids {
        r.note(format!("dropped client with invalid id {id:?}"));
        state.channels_state.remove(&id);
    }

    for (id, mix) in state.channels_state.iter_mut() {
        let who = format!("client {id}");
        clean_channels(&mut mix.channels, &who, &mut r);
        clamp_map(&mut mix.gains, GAIN_MIN, GAIN_MAX, "gain", &who, &mut r);
        clamp_map(&mut mix.pans, PAN_MIN, PAN_MAX, "pan", &who, &mut r);
        clean_bool_map(&mut mix.mutes, "mute", &who, &mut r);
        clean_bool_map(&mut mix.solos, "solo", &who, &mut r);
        clamp_master(&mut mix.master_gain, &who, &mut r);
        clean_name(&mut mix.name, &who, &mut r);
        let bad_presets: Vec<String> = mix
            .presets
            .keys()
            .filter(|n| name_problem(n).is_some())
            .cloned()
            .collect();
        for n in bad_presets {
            r.note(format!("{who}: dropped preset with invalid name {n:?}"));
            mix.presets.remove(&n);
        }
        for (pname, p) in mix.presets.iter_mut() {
            sanitize_preset(p, &format!("{who} preset {pname:?}"), &mut r);
        }
    }

    let orphans: Vec<String> = state
        .devices
        .keys()
        .filter(|id| !state.channels_state.contains_key(*id))
        .cloned()
        .collect();
    for id in orphans {
        r.note(format!("dropped device record {id:?} without a mix"));
        state.devices.remove(&id);
    }
    for (id, mix) in &state.channels_state {
        if !state.devices.contains_key(id) {
            state.devices.insert(
                id.clone(),
                DeviceRecord {
                    name: mix.name.clone(),
                    first_seen: mix.timestamp,
                    last_seen: mix.timestamp,
                    connection_count: 0,
                    token_hash: None,
                    role: None,
                },
            );
        }
    }
    for (id, dev) in state.devices.iter_mut() {
        clean_name(&mut dev.name, &format!("device {id}"), &mut r);
        if let Some(h) = &dev.token_hash {
            if !crate::state::identity::token_hash_ok(h) {
                r.note(format!("device {id}: malformed token_hash dropped"));
                dev.token_hash = None;
            }
        }
    }

    let mut seen = std::collections::BTreeSet::new();
    let before = state.client_order.clone();
    state
        .client_order
        .retain(|id| state.channels_state.contains_key(id) && seen.insert(id.clone()));
    for id in state.channels_state.keys() {
        if !seen.contains(id) {
            state.client_order.push(id.clone());
        }
    }
    if before != state.client_order && !before.is_empty() {
        r.note("client_order fixed to list every client once".to_string());
    }

    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_the_collections_agree() {
        let text = r#"{
            "channels_state": {
                "b": {"channels": [], "master_gain": 1.0, "timestamp": 7, "name": "B\u0007"},
                "a": {"channels": [2000, 1], "master_gain": 1.0, "timestamp": 3},
                "bad id": {"channels": [], "master_gain": 1.0, "timestamp": 3}
            },
            "devices": {"ghost": {"name": "x"}, "a": {"name": "A", "token_hash": "nope"}},
            "client_order": ["b", "zz", "b"]
        }"#;
        let mut s: StateFile = serde_json::from_str(text).expect("parses");
        let r = sanitize(&mut s);
        assert!(!r.notes.is_empty());
        assert_eq!(s.client_order, vec!["b", "a"]);
        assert_eq!(s.channels_state.len(), 2);
        assert_eq!(s.channels_state["a"].channels, vec![1]);
        assert_eq!(s.channels_state["b"].name, "B");
        assert_eq!(s.devices.keys().collect::<Vec<_>>(), vec!["a", "b"]);
        assert_eq!(s.devices["a"].token_hash, None);
        assert_eq!(s.devices["b"].first_seen, 7);
        // A clean state is left alone.
        let clean = s.clone();
        assert!(sanitize(&mut s).notes.is_empty());
        assert_eq!(s, clean);
    }
}
