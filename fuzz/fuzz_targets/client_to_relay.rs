//! Fuzz the `client_to_relay` decoder: `cargo fuzz run client_to_relay` (nightly). The saved corpus is replayed by
//! `tests/tests/fuzz_corpus.rs` in every ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::client_to_relay(data));
