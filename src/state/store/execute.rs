//! Command execution: validating one [`Op`] against the state and applying it, as an
//! [`Outcome`] that `Store::commit` turns into events, a snapshot and a write.

use std::collections::BTreeSet;

use super::{Inner, Store};
use crate::state::command::{Change, Command, Op, StoreError};
use crate::state::identity;
use crate::state::model::{
    client_id_ok, name_problem, DeviceRecord, MixState, GAIN_MAX, GAIN_MIN, MAX_PRESETS, PAN_MAX,
    PAN_MIN,
};

/// What an op did, before sequence numbers are attached.
#[derive(Default)]
pub(super) struct Outcome {
    pub(super) changes: Vec<(String, Change)>,
    /// The engine snapshot must be rebuilt.
    pub(super) engine: bool,
}

impl Outcome {
    fn one(id: &str, change: Change, engine: bool) -> Self {
        Outcome {
            changes: vec![(id.to_string(), change)],
            engine,
        }
    }
}

fn check_finite(field: &'static str, v: f64, lo: f64, hi: f64) -> Result<(), StoreError> {
    if !v.is_finite() {
        return Err(StoreError::NotFinite { field });
    }
    if v < lo || v > hi {
        return Err(StoreError::OutOfRange { field, value: v });
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), StoreError> {
    match name_problem(name) {
        Some(p) => Err(StoreError::InvalidName(p)),
        None => Ok(()),
    }
}

impl Store {
    fn check_channel(&self, channel: u32) -> Result<(), StoreError> {
        if channel as usize >= self.channels {
            return Err(StoreError::UnknownChannel {
                channel,
                count: self.channels,
            });
        }
        Ok(())
    }

    fn mix_of<'a>(g: &'a mut Inner, id: &str) -> Result<&'a mut MixState, StoreError> {
        g.state
            .channels_state
            .get_mut(id)
            .ok_or_else(|| StoreError::UnknownClient(id.to_string()))
    }

    /// Validates fully before mutating anything, so an error leaves the state untouched.
    pub(super) fn execute(
        &self,
        g: &mut Inner,
        cmd: &Command,
        now: u64,
    ) -> Result<Outcome, StoreError> {
        let id = cmd.client_id.as_str();
        match &cmd.op {
            Op::Reorder { order } => return self.reorder(g, order),
            Op::AssignOutput { output, mix } => return self.assign_output(g, output, mix),
            Op::Register { token_hash, name } => {
                return self.register(g, id, token_hash, name, now)
            }
            _ => {}
        }
        if !g.state.channels_state.contains_key(id) {
            return Err(StoreError::UnknownClient(id.to_string()));
        }
        let outcome = match &cmd.op {
            Op::SetGain { channel, gain } => {
                self.check_channel(*channel)?;
                check_finite("gain", *gain, GAIN_MIN, GAIN_MAX)?;
                let mix = Self::mix_of(g, id)?;
                if mix.gain(*channel) == *gain {
                    return Ok(Outcome::default());
                }
                mix.gains.insert(*channel, *gain);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Gain {
                        channel: *channel,
                        gain: *gain,
                    },
                    true,
                )
            }
            Op::SetPan { channel, pan } => {
                self.check_channel(*channel)?;
                check_finite("pan", *pan, PAN_MIN, PAN_MAX)?;
                let mix = Self::mix_of(g, id)?;
                if mix.pan(*channel) == *pan {
                    return Ok(Outcome::default());
                }
                mix.pans.insert(*channel, *pan);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Pan {
                        channel: *channel,
                        pan: *pan,
                    },
                    true,
                )
            }
            Op::SetMute { channel, muted } => {
                self.check_channel(*channel)?;
                let mix = Self::mix_of(g, id)?;
                if mix.muted(*channel) == *muted {
                    return Ok(Outcome::default());
                }
                mix.mutes.insert(*channel, *muted);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Mute {
                        channel: *channel,
                        muted: *muted,
                    },
                    true,
                )
            }
            Op::SetSolo { channel, soloed } => {
                self.check_channel(*channel)?;
                let mix = Self::mix_of(g, id)?;
                if mix.soloed(*channel) == *soloed {
                    return Ok(Outcome::default());
                }
                mix.solos.insert(*channel, *soloed);
                mix.timestamp = now;
                Outcome::one(
                    id,
                    Change::Solo {
                        channel: *channel,
                        soloed: *soloed,
                    },
                    true,
                )
            }
            Op::SetMaster { gain } => {
                check_finite("master_gain", *gain, GAIN_MIN, GAIN_MAX)?;
                let mix = Self::mix_of(g, id)?;
                if mix.master_gain == *gain {
                    return Ok(Outcome::default());
                }
                mix.master_gain = *gain;
                mix.timestamp = now;
                Outcome::one(id, Change::Master { gain: *gain }, true)
            }
            Op::SetChannels { channels } => {
                let mut list = self.channel_list(channels)?;
                let mix = Self::mix_of(g, id)?;
                self.keep_hidden(&mix.channels, &mut list);
                if mix.channels == list {
                    return Ok(Outcome::default());
                }
                mix.channels = list.clone();
                mix.timestamp = now;
                Outcome::one(id, Change::Channels { channels: list }, true)
            }
            Op::SetOn { channel, on } => {
                self.check_channel(*channel)?;
                let mix = Self::mix_of(g, id)?;
                match (mix.channels.binary_search(channel), on) {
                    (Ok(_), true) | (Err(_), false) => return Ok(Outcome::default()),
                    (Ok(i), false) => {
                        mix.channels.remove(i);
                    }
                    (Err(i), true) => mix.channels.insert(i, *channel),
                }
                mix.timestamp = now;
                let channels = mix.channels.clone();
                Outcome::one(id, Change::Channels { channels }, true)
            }
            Op::Subscribe {
                channels,
                gains,
                pans,
            } => {
                let Some(channels) = channels else {
                    // Restore: the stored mix stays as it is.
                    return Ok(Outcome::default());
                };
                let mut list = self.channel_list(channels)?;
                for (ch, v) in gains.iter().flatten() {
                    self.check_channel(*ch)?;
                    check_finite("gain", *v, GAIN_MIN, GAIN_MAX)?;
                }
                for (ch, v) in pans.iter().flatten() {
                    self.check_channel(*ch)?;
                    check_finite("pan", *v, PAN_MIN, PAN_MAX)?;
                }
                let mix = Self::mix_of(g, id)?;
                let mut new = mix.clone();
                self.keep_hidden(&mix.channels, &mut list);
                new.channels = list;
                for (ch, v) in gains.iter().flatten() {
                    new.gains.insert(*ch, *v);
                }
                for (ch, v) in pans.iter().flatten() {
                    new.pans.insert(*ch, *v);
                }
                if new == *mix {
                    return Ok(Outcome::default());
                }
                new.timestamp = now;
                *mix = new.clone();
                Outcome::one(id, Change::MixReplaced { mix: Box::new(new) }, true)
            }
            Op::Rename { name } => {
                check_name(name)?;
                let mix = Self::mix_of(g, id)?;
                let same_mix = mix.name == *name;
                mix.name = name.clone();
                let dev = g.state.devices.entry(id.to_string()).or_default();
                if same_mix && dev.name == *name {
                    return Ok(Outcome::default());
                }
                dev.name = name.clone();
                if let Some(mix) = g.state.channels_state.get_mut(id) {
                    mix.timestamp = now;
                }
                Outcome::one(id, Change::Renamed { name: name.clone() }, false)
            }
            Op::SavePreset { name } => {
                check_name(name)?;
                let mix = Self::mix_of(g, id)?;
                let preset = mix.to_preset();
                match mix.presets.get(name) {
                    Some(p) if *p == preset => return Ok(Outcome::default()),
                    Some(_) => {}
                    None if mix.presets.len() >= MAX_PRESETS => {
                        return Err(StoreError::TooManyPresets { max: MAX_PRESETS })
                    }
                    None => {}
                }
                mix.presets.insert(name.clone(), preset);
                mix.timestamp = now;
                let names = mix.presets.keys().cloned().collect();
                Outcome::one(id, Change::PresetsChanged { names }, false)
            }
            Op::LoadPreset { name } => {
                let mix = Self::mix_of(g, id)?;
                let preset = mix
                    .presets
                    .get(name)
                    .cloned()
                    .ok_or_else(|| StoreError::UnknownPreset(name.clone()))?;
                if mix.to_preset() == preset {
                    return Ok(Outcome::default());
                }
                mix.apply_preset(&preset);
                mix.timestamp = now;
                let mix = Box::new(mix.clone());
                Outcome::one(id, Change::MixReplaced { mix }, true)
            }
            Op::DeletePreset { name } => {
                let mix = Self::mix_of(g, id)?;
                if mix.presets.remove(name).is_none() {
                    return Err(StoreError::UnknownPreset(name.clone()));
                }
                mix.timestamp = now;
                let names = mix.presets.keys().cloned().collect();
                Outcome::one(id, Change::PresetsChanged { names }, false)
            }
            Op::Connected => {
                let dev = g.state.devices.entry(id.to_string()).or_default();
                dev.last_seen = now;
                dev.connection_count = dev.connection_count.saturating_add(1);
                Outcome::one(
                    id,
                    Change::Connected {
                        connection_count: dev.connection_count,
                        last_seen: now,
                    },
                    false,
                )
            }
            Op::SetToken { token_hash } => {
                if !identity::token_hash_ok(token_hash) {
                    return Err(StoreError::InvalidTokenHash);
                }
                let dev = g.state.devices.entry(id.to_string()).or_default();
                dev.token_hash = Some(token_hash.clone());
                Outcome::one(
                    id,
                    Change::Connected {
                        connection_count: dev.connection_count,
                        last_seen: dev.last_seen,
                    },
                    false,
                )
            }
            Op::Delete => {
                g.state.channels_state.remove(id);
                g.state.devices.remove(id);
                g.state.client_order.retain(|c| c != id);
                if let Some(s) = g.slots.remove(id) {
                    g.free.insert(s);
                    // A client that had no slot (more clients than mixes) gets this one.
                    g.assign_slots();
                }
                Outcome::one(id, Change::ClientRemoved, true)
            }
            // Handled (and returned) above; a harmless no-op instead of a panic path.
            Op::Reorder { .. } | Op::Register { .. } | Op::AssignOutput { .. } => {
                Outcome::default()
            }
        };
        Ok(outcome)
    }

    fn channel_list(&self, channels: &[u32]) -> Result<Vec<u32>, StoreError> {
        for c in channels {
            self.check_channel(*c)?;
        }
        let mut list = channels.to_vec();
        list.sort_unstable();
        list.dedup();
        Ok(list)
    }

    /// Subscribed channels at or above the current channel count (stored while running with
    /// a smaller interface) are invisible to clients, so a new channel list from a client
    /// cannot mean to drop them: they are kept. Running small must never lose a mix.
    fn keep_hidden(&self, stored: &[u32], list: &mut Vec<u32>) {
        let hidden = stored.iter().filter(|c| **c as usize >= self.channels);
        let before = list.len();
        list.extend(hidden);
        if list.len() != before {
            list.sort_unstable();
            list.dedup();
        }
    }

    fn register(
        &self,
        g: &mut Inner,
        id: &str,
        token_hash: &str,
        name: &str,
        now: u64,
    ) -> Result<Outcome, StoreError> {
        if !client_id_ok(id) {
            return Err(StoreError::InvalidClientId(id.to_string()));
        }
        if g.state.channels_state.contains_key(id) {
            return Err(StoreError::ClientExists(id.to_string()));
        }
        if g.state.channels_state.len() >= self.max_clients {
            return Err(StoreError::TooManyClients {
                max: self.max_clients,
            });
        }
        if !identity::token_hash_ok(token_hash) {
            return Err(StoreError::InvalidTokenHash);
        }
        check_name(name)?;
        g.state.channels_state.insert(
            id.to_string(),
            MixState {
                name: name.to_string(),
                timestamp: now,
                ..MixState::default()
            },
        );
        g.state.devices.insert(
            id.to_string(),
            DeviceRecord {
                name: name.to_string(),
                first_seen: now,
                last_seen: now,
                connection_count: 0,
                token_hash: Some(token_hash.to_ascii_lowercase()),
                role: None,
            },
        );
        g.state.client_order.push(id.to_string());
        g.assign_slots();
        let slot = g.slots.get(id).copied();
        Ok(Outcome::one(
            id,
            Change::ClientAdded {
                name: name.to_string(),
                slot,
            },
            true,
        ))
    }

    fn assign_output(
        &self,
        g: &mut Inner,
        output: &str,
        mix: &Option<String>,
    ) -> Result<Outcome, StoreError> {
        if !self.outputs.iter().any(|k| k == output) {
            return Err(StoreError::UnknownOutput(output.to_string()));
        }
        let mix = match mix {
            Some(m) if m.eq_ignore_ascii_case("cue") => Some("cue".to_string()),
            Some(m) if g.state.channels_state.contains_key(m) => Some(m.clone()),
            Some(m) => return Err(StoreError::UnknownClient(m.clone())),
            None => None,
        };
        if g.state.outputs.get(output) == Some(&mix) {
            return Ok(Outcome::default());
        }
        g.state.outputs.insert(output.to_string(), mix.clone());
        let change = Change::OutputAssigned {
            output: output.to_string(),
            mix,
        };
        Ok(Outcome::one("", change, false))
    }

    fn reorder(&self, g: &mut Inner, order: &[String]) -> Result<Outcome, StoreError> {
        let mut seen = BTreeSet::new();
        for id in order {
            if !g.state.channels_state.contains_key(id) {
                return Err(StoreError::InvalidOrder(format!("unknown client {id:?}")));
            }
            if !seen.insert(id.as_str()) {
                return Err(StoreError::InvalidOrder(format!("{id:?} listed twice")));
            }
        }
        let mut new: Vec<String> = order.to_vec();
        new.extend(
            g.state
                .client_order
                .iter()
                .filter(|c| !seen.contains(c.as_str()))
                .cloned(),
        );
        if new == g.state.client_order {
            return Ok(Outcome::default());
        }
        g.state.client_order = new.clone();
        Ok(Outcome::one("", Change::OrderChanged { order: new }, false))
    }
}
