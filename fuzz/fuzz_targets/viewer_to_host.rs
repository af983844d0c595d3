//! Fuzz the `viewer_to_host` decoder: `cargo fuzz run viewer_to_host` (nightly). The saved corpus is replayed by
//! `tests/tests/fuzz_corpus.rs` in every ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::viewer_to_host(data));
