//! What the control side tells the engine: per-mix parameters, published as immutable
//! snapshots. The store builds one `EngineParams` per change; the engine thread picks it up
//! lock-free at the start of its next tick and ramps towards it.

use std::sync::Arc;

/// One input channel as seen by one mix. Values are already validated by the store
/// (finite, gain 0..=2, pan -1..=1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ChannelParams {
    /// Linear gain, 1.0 = 0 dB, 2.0 = +6 dB.
    pub gain: f32,
    /// -1.0 left .. +1.0 right, constant-power law.
    pub pan: f32,
    /// The musician picked this channel for the mix.
    pub subscribed: bool,
    pub muted: bool,
    pub soloed: bool,
}

/// One personal mix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MixParams {
    /// Indexed by input channel; shorter than the input count means the rest are off.
    pub channels: Vec<ChannelParams>,
    /// Linear master gain 0..=2.
    pub master: f32,
}

/// Every mix, indexed by mix slot (`0..max_mixes`). `None` = slot unused.
///
/// Each mix is shared: the store rebuilds only the mix a command changed and hands the
/// others on as they were, and the engine recomputes only the slots whose `Arc` is new.
/// A fader move costs O(channels) on both sides, not O(mixes × channels).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineParams {
    pub mixes: Vec<Option<Arc<MixParams>>>,
}

impl EngineParams {
    /// A snapshot of freshly built mixes (tests, benches, a store's first publish).
    pub fn new(mixes: Vec<Option<MixParams>>) -> Self {
        EngineParams {
            mixes: mixes.into_iter().map(|m| m.map(Arc::new)).collect(),
        }
    }
}

impl ChannelParams {
    /// The solo rule: audible iff `subscribed && !muted && (!any_solo || soloed)`, where
    /// `any_solo` comes from [`MixParams::any_solo`].
    pub fn audible(&self, any_solo: bool) -> bool {
        self.subscribed && !self.muted && (!any_solo || self.soloed)
    }
}

impl MixParams {
    /// True when a channel of this mix is soloed *and subscribed*.
    ///
    /// Why only subscribed ones: a solo left behind on a channel the musician has since
    /// unsubscribed is invisible in their UI; if it counted, the whole mix would go silent
    /// for no reason they can see. A soloed channel that is muted still counts: the user
    /// asked to hear only the soloed channels, and mute wins on that channel.
    pub fn any_solo(&self) -> bool {
        self.channels.iter().any(|c| c.soloed && c.subscribed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(subscribed: bool, muted: bool, soloed: bool) -> ChannelParams {
        ChannelParams {
            gain: 1.0,
            pan: 0.0,
            subscribed,
            muted,
            soloed,
        }
    }

    #[test]
    fn solo_rule_table() {
        // (subscribed, muted, soloed, any_solo) -> audible
        let table = [
            ((false, false, false, false), false),
            ((false, false, true, true), false),
            ((true, false, false, false), true),
            ((true, true, false, false), false),
            ((true, false, false, true), false),
            ((true, false, true, true), true),
            ((true, true, true, true), false),
            ((true, true, false, true), false),
        ];
        for ((s, m, so, any), want) in table {
            assert_eq!(ch(s, m, so).audible(any), want, "{s} {m} {so} {any}");
        }
    }

    #[test]
    fn only_subscribed_solos_count() {
        let mut mix = MixParams {
            channels: vec![ch(true, false, false), ch(false, false, true)],
            master: 1.0,
        };
        assert!(
            !mix.any_solo(),
            "solo on an unsubscribed channel is ignored"
        );
        mix.channels[0].soloed = true;
        assert!(mix.any_solo());
        mix.channels[0].muted = true;
        assert!(mix.any_solo(), "a muted solo still counts");
    }
}
