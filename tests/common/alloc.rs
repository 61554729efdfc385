//! The test binaries' global allocator: `assert_no_alloc`'s guard (an allocation inside
//! `assert_no_alloc(..)` aborts, which arms the real-time checks of the clock thread, the
//! engine and the cpal callback in every test) with a per-thread counter on top, for tests
//! that bound what a piece of code allocates (`shard_alloc`).

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

use assert_no_alloc::AllocDisabler;

/// Counts this thread's allocations while [`count`] runs, then forwards to the guard.
pub struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

/// Runs `f` on this thread and returns its result and how many allocations it made
/// (frees are not counted).
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    COUNT.with(|c| c.set(0));
    ON.with(|o| o.set(true));
    let r = f();
    ON.with(|o| o.set(false));
    (r, COUNT.with(Cell::get))
}

// SAFETY: forwards every call to `AllocDisabler` (itself a thin layer over the system
// allocator); the counters are const thread-locals (no allocation, no re-entry).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { AllocDisabler.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        bump();
        unsafe { AllocDisabler.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        bump();
        unsafe { AllocDisabler.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { AllocDisabler.dealloc(p, l) }
    }
}
