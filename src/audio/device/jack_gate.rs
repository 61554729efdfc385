//! Reopening JACK clients safely after the server died.
//!
//! The input and each output are separate JACK clients of this process, closed and
//! reopened by separate supervisor threads. Once the server has died, libjack's next
//! client open frees every client it still has allocated ("Jack server was closed but
//! clients are still allocated, cleanup…"), including one another thread is still
//! closing: monmix crashed with SIGSEGV that way in the heal test under load. So after a
//! loss, no JACK client is opened until every client of the dead server is gone.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static LIVE: AtomicUsize = AtomicUsize::new(0);
static LOST: AtomicBool = AtomicBool::new(false);

/// A live JACK stream's place at the gate; drop it after the stream.
pub(crate) struct Lease(());

impl Drop for Lease {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts a JACK stream that has just opened.
pub(crate) fn lease() -> Lease {
    LIVE.fetch_add(1, Ordering::AcqRel);
    Lease(())
}

/// A JACK stream was lost: its server is probably gone, and with it every client.
pub(crate) fn lost() {
    LOST.store(true, Ordering::Release);
}

/// Whether a JACK client may be opened now: always, unless a loss was seen and a client
/// of that server is still open somewhere in this process.
pub(crate) fn may_open() -> bool {
    if !LOST.load(Ordering::Acquire) {
        return true;
    }
    if LIVE.load(Ordering::Acquire) == 0 {
        LOST.store(false, Ordering::Release);
        return true;
    }
    false
}

/// Why an open waits.
pub(crate) const WAITING: &str =
    "waiting until this process has closed every client of the JACK server that went away";
