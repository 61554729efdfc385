//! Wire mix ops -> store commands: applying a session's op, converting it to a store op
//! (channel numbers checked), and store errors as wire errors.

use serde_json::Value;

use super::acks::ack;
use super::{Hub, Session};
use crate::control::protocol::{ErrorCode, MixOp, WireError};
use crate::state::{Command, Op, StoreError};

impl Session {
    pub(super) fn apply_mix(
        &mut self,
        hub: &Hub,
        client_id: &str,
        op: &MixOp,
    ) -> Result<Value, WireError> {
        let ty = op.name();
        let store_op = to_op(op).map_err(|e| e.with_ref(ty))?;
        if let Some(c) = store_op.channel() {
            if c as usize >= hub.channel_names.len() {
                return Err(
                    WireError::new(ErrorCode::UnknownChannel, format!("no channel {c}"))
                        .with_ref(ty),
                );
            }
        }
        let renames = matches!(op, MixOp::Rename { .. });
        hub.store
            .apply(Command {
                origin: self.id,
                client_id: client_id.to_owned(),
                op: store_op,
            })
            .map_err(|e| store_err(e, ty))?;
        if renames {
            hub.poke_roster();
        }
        let mix = hub.store.mix(client_id).unwrap_or_default();
        Ok(ack(op, client_id, &mix).to_value())
    }
}

pub(super) fn store_err(e: StoreError, ref_type: &str) -> WireError {
    WireError::new(ErrorCode::from(&e), e.to_string()).with_ref(ref_type)
}

/// Wire channel (JSON integer) -> store channel, refusing negatives and absurd values.
fn channel(c: i64) -> Result<u32, WireError> {
    u32::try_from(c)
        .map_err(|_| WireError::new(ErrorCode::UnknownChannel, format!("no channel {c}")))
}

fn channel_list(cs: &[i64]) -> Result<Vec<u32>, WireError> {
    cs.iter().map(|&c| channel(c)).collect()
}

fn keyed(
    m: &Option<std::collections::BTreeMap<String, f64>>,
) -> Result<Option<std::collections::BTreeMap<u32, f64>>, WireError> {
    let Some(m) = m else { return Ok(None) };
    m.iter()
        .map(|(k, v)| {
            let c: i64 = k.parse().map_err(|_| {
                WireError::new(
                    ErrorCode::BadJson,
                    format!("channel key {k:?} is not a number"),
                )
            })?;
            Ok((channel(c)?, *v))
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Wire op -> store op.
fn to_op(op: &MixOp) -> Result<Op, WireError> {
    Ok(match op {
        MixOp::Subscribe {
            channels,
            gains,
            pans,
        } => Op::Subscribe {
            channels: channels.as_deref().map(channel_list).transpose()?,
            gains: keyed(gains)?,
            pans: keyed(pans)?,
        },
        MixOp::UpdateGain { channel: c, gain } => Op::SetGain {
            channel: channel(*c)?,
            gain: *gain,
        },
        MixOp::UpdatePan { channel: c, pan } => Op::SetPan {
            channel: channel(*c)?,
            pan: *pan,
        },
        MixOp::ToggleMute { channel: c, muted } => Op::SetMute {
            channel: channel(*c)?,
            muted: *muted,
        },
        MixOp::ToggleSolo { channel: c, soloed } => Op::SetSolo {
            channel: channel(*c)?,
            soloed: *soloed,
        },
        MixOp::SetOn { channel: c, on } => Op::SetOn {
            channel: channel(*c)?,
            on: *on,
        },
        MixOp::UpdateMaster { gain } => Op::SetMaster { gain: *gain },
        MixOp::SetChannels { channels } => Op::SetChannels {
            channels: channel_list(channels)?,
        },
        MixOp::Rename { name } => Op::Rename { name: name.clone() },
        MixOp::SavePreset { name } => Op::SavePreset { name: name.clone() },
        MixOp::LoadPreset { name } => Op::LoadPreset { name: name.clone() },
        MixOp::DeletePreset { name } => Op::DeletePreset { name: name.clone() },
    })
}
