//! Replies built from store state: the ack of an applied op and `param_sync` for a store
//! event (their JSON is defined in `control::wire`).

use crate::control::protocol::MixOp;
use crate::control::wire::{Mix, Names, ServerMsg, Synced};
use crate::state::{Change, Event, MixState};

/// The ack for an applied op, in the seed's names, with the values read back from the
/// stored mix.
pub(super) fn ack<'a>(op: &'a MixOp, client_id: &'a str, mix: &'a MixState) -> ServerMsg<'a> {
    match op {
        MixOp::Subscribe { channels: None, .. } => ServerMsg::AutoResubscribed {
            client_id,
            mix: Mix::from(mix),
        },
        MixOp::Subscribe { .. } => ServerMsg::Subscribed {
            client_id,
            mix: Mix::from(mix),
        },
        MixOp::UpdateGain { channel, .. } => ServerMsg::GainUpdated {
            client_id,
            channel: *channel,
            gain: mix.gain(*channel as u32),
        },
        MixOp::UpdatePan { channel, .. } => ServerMsg::PanUpdated {
            client_id,
            channel: *channel,
            pan: mix.pan(*channel as u32),
        },
        MixOp::ToggleMute { channel, .. } => ServerMsg::MuteUpdated {
            client_id,
            channel: *channel,
            muted: mix.muted(*channel as u32),
        },
        MixOp::ToggleSolo { channel, .. } => ServerMsg::SoloUpdated {
            client_id,
            channel: *channel,
            soloed: mix.soloed(*channel as u32),
        },
        MixOp::SetOn { .. } | MixOp::SetChannels { .. } => ServerMsg::ChannelsUpdated {
            client_id,
            channels: &mix.channels,
        },
        MixOp::UpdateMaster { .. } => ServerMsg::MasterUpdated {
            client_id,
            gain: mix.master_gain,
        },
        MixOp::Rename { .. } => ServerMsg::Renamed {
            client_id,
            name: &mix.name,
        },
        MixOp::LoadPreset { name } => ServerMsg::PresetLoaded {
            client_id,
            name,
            mix: Mix::from(mix),
        },
        MixOp::SavePreset { .. } | MixOp::DeletePreset { .. } => ServerMsg::Presets {
            client_id,
            presets: Names(&mix.presets),
        },
    }
}

/// `param_sync` for a store event, as other sessions see it; None for changes that are
/// not about one mix's parameters (roster changes).
pub fn param_sync(ev: &Event) -> Option<ServerMsg<'_>> {
    let (channel, sync) = match &ev.change {
        Change::Gain { channel, gain } => (Some(*channel), Synced::Gain(*gain)),
        Change::Pan { channel, pan } => (Some(*channel), Synced::Pan(*pan)),
        Change::Mute { channel, muted } => (Some(*channel), Synced::Mute(*muted)),
        Change::Solo { channel, soloed } => (Some(*channel), Synced::Solo(*soloed)),
        Change::Master { gain } => (None, Synced::Master(*gain)),
        Change::Channels { channels } => (None, Synced::Channels(channels)),
        Change::Renamed { name } => (None, Synced::Name(name)),
        Change::MixReplaced { mix } => (None, Synced::Mix(Mix::from(&**mix))),
        Change::PresetsChanged { names } => (None, Synced::Presets(names)),
        _ => return None,
    };
    Some(ServerMsg::ParamSync {
        client_id: &ev.client_id,
        channel,
        sync,
    })
}
