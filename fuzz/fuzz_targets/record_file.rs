//! Fuzz the `record_file` decoder (a saved session record, as `tether-viewer report verify` reads it):
//! `cargo fuzz run record_file`. The saved corpus is replayed by `tests/tests/fuzz_corpus.rs` in every
//! ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::record_file(data));
