#![no_main]
// The property is in tests/fuzz/properties, shared with the stable regression test.
libfuzzer_sys::fuzz_target!(|data: &[u8]| backout_fuzz_properties::lockfile(data));
