//! Listeners of a mix. A [`MixTap`] is the consumer end of a stereo frame pipe; its writer
//! lives in the engine's preallocated [`TapTable`]. Many taps may listen to one slot (a
//! phone, the engineer's cue, a second device): the mix is computed once per tick and
//! pushed to each.

use std::time::Instant;

use crate::frames::{FrameReader, FrameWriter};

/// Receives one mix, one stereo interleaved frame (`2 × frame_len` samples) per tick.
/// Dropping it detaches: the engine notices and retires the other end.
pub struct MixTap {
    pub(crate) slot: usize,
    pub(crate) reader: FrameReader,
}

impl MixTap {
    /// The mix slot this tap listens to.
    pub fn slot(&self) -> usize {
        self.slot
    }

    /// Samples per frame (2 × frame_len).
    pub fn frame_samples(&self) -> usize {
        self.reader.frame_samples()
    }

    /// Waits for the next frame until `deadline`; false on timeout or engine gone.
    pub fn recv(&mut self, out: &mut [f32], deadline: Instant) -> bool {
        self.reader.pop_until(out, deadline)
    }

    /// Takes the next frame if one is waiting.
    pub fn try_recv(&mut self, out: &mut [f32]) -> bool {
        self.reader.pop(out)
    }

    /// Frames dropped because this tap was not read fast enough.
    pub fn dropped(&self) -> u64 {
        self.reader
            .stats()
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The pipe itself, for a consumer that reads it from a real-time callback (an output
    /// device's playout).
    pub fn into_reader(self) -> FrameReader {
        self.reader
    }

    /// True once the engine stopped and every frame was read.
    pub fn is_closed(&self) -> bool {
        self.reader.is_closed()
    }
}

/// Engine-side table of installed tap writers, sized `max_taps` up front.
pub(crate) struct TapTable {
    entries: Vec<Option<(usize, FrameWriter)>>,
    /// Taps per slot: a slot with none is "inactive" and costs nothing.
    per_slot: Vec<u32>,
}

impl TapTable {
    pub(crate) fn new(max_taps: usize, max_mixes: usize) -> Self {
        TapTable {
            entries: (0..max_taps).map(|_| None).collect(),
            per_slot: vec![0; max_mixes],
        }
    }

    /// Installs a writer; gives it back if the table is full or the slot is out of range.
    pub(crate) fn install(&mut self, slot: usize, w: FrameWriter) -> Result<(), FrameWriter> {
        let Some(count) = self.per_slot.get_mut(slot) else {
            return Err(w);
        };
        match self.entries.iter_mut().find(|e| e.is_none()) {
            Some(e) => {
                *e = Some((slot, w));
                *count += 1;
                Ok(())
            }
            None => Err(w),
        }
    }

    pub(crate) fn has_room(&self) -> bool {
        self.entries.iter().any(Option::is_none)
    }

    /// Removes the first writer whose reader was dropped, if any.
    pub(crate) fn take_abandoned(&mut self) -> Option<FrameWriter> {
        let e = self
            .entries
            .iter_mut()
            .find(|e| e.as_ref().is_some_and(|(_, w)| w.is_abandoned()))?;
        let (slot, w) = e.take()?;
        if let Some(c) = self.per_slot.get_mut(slot) {
            *c -= 1;
        }
        Some(w)
    }

    /// True when `slot` has at least one tap, i.e. its mix must be computed.
    pub(crate) fn is_active(&self, slot: usize) -> bool {
        self.per_slot.get(slot).is_some_and(|&c| c > 0)
    }

    /// Pushes `frame` to every tap of `slot`; returns how many were full and dropped it.
    pub(crate) fn push(&mut self, slot: usize, frame: &[f32]) -> u64 {
        let mut dropped = 0;
        for (_, w) in self
            .entries
            .iter_mut()
            .flatten()
            .filter(|(s, _)| *s == slot)
        {
            if !w.push(frame) {
                dropped += 1;
            }
        }
        dropped
    }
}
