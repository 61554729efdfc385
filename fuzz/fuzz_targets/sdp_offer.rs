#![no_main]
//! `monmix_testkit::fuzzing::sdp_offer`: see that function for what it drives and checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| monmix_testkit::fuzzing::sdp_offer(data));
