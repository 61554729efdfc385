//! The integration tests that need the test process to themselves, run one at a time:
//! `whep_cycles` counts this process's fds, threads and RSS; `whep_transport` judges packet
//! pacing to the millisecond; `churn` and `soak` load both cores for minutes. In
//! `tests/it` they would share the process and the CPU with other tests.
//!
//! Each test starts with `let _solo = solo();`, which serialises them (libtest would run
//! two at once on this machine).
// The guard spans whole tests on purpose, across awaits: each test has its own runtime,
// so a test waiting on it blocks only its own thread until the previous test is done.
#![allow(clippy::await_holding_lock)]

#[path = "../common/mod.rs"]
mod common;

#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;

/// Held for a whole test: one test of this binary at a time. A failed test poisons the
/// lock; the next one goes on.
fn solo() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

mod churn;
mod jack;
mod pipewire;
mod soak;
mod whep_cycles;
mod whep_transport;
