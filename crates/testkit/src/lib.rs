//! What the tests and the fuzzers drive monmix with, kept out of the shipped library.
//!
//! - [`fuzzing`]: one entry point per cargo-fuzz target (`fuzz/`), also run by the
//!   nightly-free smoke test (`tests/it/fuzz_smoke.rs`).

pub mod fuzzing;
