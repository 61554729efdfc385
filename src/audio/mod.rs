//! Inputs: everything that produces the stage channels. Each input yields 48 kHz `f32`
//! frames of N interleaved channels into a [`crate::frames`] pipe on a real-time clock;
//! the engine thread reads that pipe and is clocked by it.
//!
//! Table of inputs, default first: `demo`, `tones`, `file:PATH`, `device[:NAME]`.

pub mod tones;

pub const SAMPLE_RATE: u32 = 48_000;

/// A synthetic or file input that renders samples on demand. A clock thread calls
/// [`Generator::render`] once per frame period, so it must be real-time safe too.
pub trait Generator: Send + 'static {
    /// Channels per sample frame.
    fn channels(&self) -> usize;
    /// Fills `out` (interleaved, `out.len()` a multiple of `channels()`) with the next samples.
    fn render(&mut self, out: &mut [f32]);
}
