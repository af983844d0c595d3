//! Fuzz the `host_to_viewer` decoder: `cargo fuzz run host_to_viewer` (nightly). The saved corpus is replayed by
//! `tests/tests/fuzz_corpus.rs` in every ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::host_to_viewer(data));
