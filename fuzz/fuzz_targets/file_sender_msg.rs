//! Fuzz the file-transfer decoder and offer checks: `cargo fuzz run file_sender_msg` (nightly). The saved
//! corpus is replayed by `tests/tests/fuzz_corpus.rs` in every ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_shared::fuzz::file_sender_msg(data));
