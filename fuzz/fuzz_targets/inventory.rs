//! Fuzz the `inventory` decoder (the host's inventory parts joined, as the viewer decompresses and decodes
//! them): `cargo fuzz run inventory`. The saved corpus is replayed by `tests/tests/fuzz_corpus.rs` in every
//! ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::inventory(data));
