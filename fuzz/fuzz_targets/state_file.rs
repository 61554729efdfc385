#![no_main]
//! `monmix_testkit::fuzzing::state_file`: see that function for what it drives and checks.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| monmix_testkit::fuzzing::state_file(data));
