//! Fuzz the `relay_to_client` decoder: `cargo fuzz run relay_to_client` (nightly). The saved corpus is replayed by
//! `tests/tests/fuzz_corpus.rs` in every ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::relay_to_client(data));
