//! What the control side tells the engine: per-mix parameters, published as immutable
//! snapshots. The store builds one `EngineParams` per change; the engine thread picks it up
//! lock-free at the start of its next tick and ramps towards it.

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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EngineParams {
    pub mixes: Vec<Option<MixParams>>,
}
