//! The integration tests: one binary, a module per behaviour, so the WebRTC stack and the
//! helpers in `tests/common` are compiled and linked once.
//!
//! Tests that start a server start a real `monmix serve` process (`common::Server`): most
//! need the process boundary (kill -9, SIGTERM, the `/proc` figures of the server alone,
//! its stderr). Tests that measure this process as a whole, or whose timing must not share
//! the CPU with other tests, live in `tests/solo` instead.

#[path = "../common/mod.rs"]
mod common;

// Arms `assert_no_alloc` for every test here (the clock thread, the engine and the cpal
// callback abort on an allocation) and counts allocations where a test asks.
#[global_allocator]
static ALLOC: common::alloc::Counting = common::alloc::Counting;

mod audio_clock;
mod audio_demo;
mod audio_device;
mod audio_file;
mod audio_spec;
mod cli;
mod crashloop;
mod cue_token;
mod engine_mix;
mod engine_rt;
mod engine_thread;
mod fuzz_regressions;
mod fuzz_smoke;
mod https;
mod link_reports;
mod mdns_netns;
mod osc_core;
mod osc_e2e;
mod persist_files;
mod persist_kill;
mod security;
mod server_listen;
mod shard_alloc;
mod state_store;
mod storage_faults;
mod web_assets;
mod whep_audio;
mod whep_http;
mod whep_peer_close;
mod ws_protocol;
