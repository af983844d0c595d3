//! Fuzz the viewer's tile path with video streams: `cargo fuzz run -s none video_updates`. The saved
//! corpus is replayed by `tests/tests/fuzz_corpus.rs` in every ordinary test run.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_video::fuzz::video_updates(data));
