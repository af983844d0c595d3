//! The receiving side's decisions, without a disk or a stream: is this chunk the next one of its file,
//! may this file be committed, is the transfer complete. The I/O shell ([`super::pipeline`]) feeds it
//! the sender's messages in order and carries out what it says ([`Action`]); tests drive it directly.
//!
//! Each file of the offer is in one [`FileState`]. A chunk is accepted only at the file's verified
//! length and within its size; a file ends only when every byte is verified and its whole-file hash
//! ([`FileDigest`], built from the chunk hashes) matches the sender's; the transfer is done only when
//! every file is committed. Anything else is the sender breaking the protocol: one [`Ending::Fatal`].

use std::collections::BTreeMap;

use super::Ending::{self, Fatal};
use crate::files::proto::{FileDigest, FileError, SenderMsg};

/// Where one file of the transfer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    /// Waiting for its next chunk (at `verified`).
    Receiving,
    /// A chunk is being written; nothing else may happen to the file until it is.
    Writing { len: u64, hash: [u8; 32] },
    /// Verified and under its final name (this one, in its folder).
    Committed(String),
    /// Committed in an earlier attempt under this name: the sender's `FileEnd` must confirm it is still
    /// the same file; nothing of it is sent again.
    Confirming(String),
}

/// One file's bookkeeping.
#[derive(Debug, Clone)]
pub struct Track {
    pub size: u64,
    /// Bytes checked against their chunk hashes and written.
    pub verified: u64,
    pub digest: FileDigest,
    pub state: FileState,
}

impl Track {
    /// A file not received before.
    pub fn fresh(size: u64) -> Self {
        Self { size, verified: 0, digest: FileDigest::new(size), state: FileState::Receiving }
    }
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Check the chunk's bytes against its hash and write them to file `file`; then
    /// [`ReceiveMachine::handle_written`].
    Write { file: u32 },
    /// File `file` is complete and verified: sync it and give it its final name; then
    /// [`ReceiveMachine::handle_committed`].
    Commit { file: u32 },
    /// File `file`, kept from an earlier attempt, is confirmed: nothing to do on the disk.
    Confirmed { file: u32 },
    /// Every file is committed: the transfer is complete.
    Finished,
}

/// The files of one attempt and the rules they are received by.
#[derive(Debug, Default)]
pub struct ReceiveMachine {
    files: BTreeMap<u32, Track>,
}

impl ReceiveMachine {
    pub fn new(files: impl IntoIterator<Item = (u32, Track)>) -> Self {
        Self { files: files.into_iter().collect() }
    }

    /// One of the sender's messages, in stream order. A chunk's bytes are checked by the shell.
    pub fn handle(&mut self, msg: &SenderMsg) -> Result<Action, Ending> {
        match *msg {
            SenderMsg::Chunk { file, offset, len, hash } => {
                let len = u64::from(len);
                let track = self.track(file)?;
                let end = offset.checked_add(len);
                if offset != track.verified || end.is_none_or(|end| end > track.size) || len == 0 {
                    return Err(bad(format!("chunk {offset}+{len} of file {file} out of place")));
                }
                if track.state != FileState::Receiving {
                    return Err(bad(format!("file {file} already ended")));
                }
                track.state = FileState::Writing { len, hash };
                Ok(Action::Write { file })
            }
            SenderMsg::FileEnd { file, hash } => {
                let track = self.track(file)?;
                match &track.state {
                    FileState::Confirming(name) => {
                        if track.digest.finish() != hash {
                            return Err(Fatal(FileError::Corrupted { file }));
                        }
                        track.state = FileState::Committed(name.clone());
                        Ok(Action::Confirmed { file })
                    }
                    FileState::Receiving if track.verified == track.size => {
                        if track.digest.finish() != hash {
                            return Err(Fatal(FileError::Corrupted { file }));
                        }
                        Ok(Action::Commit { file })
                    }
                    _ => Err(bad(format!("file {file} ended at {} of {}", track.verified, track.size))),
                }
            }
            SenderMsg::Done => {
                match self.files.iter().find(|(_, t)| !matches!(t.state, FileState::Committed(_))) {
                    Some((file, _)) => Err(bad(format!("done before file {file} was sent"))),
                    None => Ok(Action::Finished),
                }
            }
            SenderMsg::Failed(ref e) => Err(Fatal(e.clone())),
            SenderMsg::Offer { .. } => Err(bad("a second offer".into())),
        }
    }

    /// The chunk [`Action::Write`] asked for is on the disk: it counts as verified.
    pub fn handle_written(&mut self, file: u32) -> Result<(), Ending> {
        let track = self.track(file)?;
        let FileState::Writing { len, hash } = track.state else {
            return Err(bad(format!("file {file} was not being written")));
        };
        track.digest.add(&hash);
        track.verified += len;
        track.state = FileState::Receiving;
        Ok(())
    }

    /// The file [`Action::Commit`] asked for is under its final name `name`.
    pub fn handle_committed(&mut self, file: u32, name: String) -> Result<(), Ending> {
        self.track(file)?.state = FileState::Committed(name);
        Ok(())
    }

    /// A write cut short (a cancel, a failed write): the file is back at what was verified.
    pub fn handle_write_abandoned(&mut self, file: u32) {
        if let Some(track) = self.files.get_mut(&file) {
            if matches!(track.state, FileState::Writing { .. }) {
                track.state = FileState::Receiving;
            }
        }
    }

    pub fn get(&self, file: u32) -> Option<&Track> {
        self.files.get(&file)
    }

    /// Every file, in offer order.
    pub fn tracks(&self) -> impl Iterator<Item = (u32, &Track)> {
        self.files.iter().map(|(i, t)| (*i, t))
    }

    fn track(&mut self, file: u32) -> Result<&mut Track, Ending> {
        self.files.get_mut(&file).ok_or_else(|| bad(format!("no file {file}")))
    }
}

pub(super) fn bad(why: String) -> Ending {
    Fatal(FileError::Protocol(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::proto::CHUNK;

    fn chunk(file: u32, offset: u64, data: &[u8]) -> SenderMsg {
        SenderMsg::Chunk { file, offset, len: data.len() as u32, hash: *blake3::hash(data).as_bytes() }
    }

    fn protocol_error(outcome: Result<Action, Ending>) -> String {
        match outcome {
            Err(Fatal(FileError::Protocol(why))) => why,
            other => panic!("expected a protocol error, got {other:?}"),
        }
    }

    /// Send `data` as file 0 of a one-file machine, chunk by chunk, as the shell would.
    fn receive_all(m: &mut ReceiveMachine, file: u32, data: &[u8]) {
        for (i, part) in data.chunks(CHUNK).enumerate() {
            let msg = chunk(file, (i * CHUNK) as u64, part);
            assert_eq!(m.handle(&msg).expect("in place"), Action::Write { file });
            m.handle_written(file).expect("written");
        }
    }

    #[test]
    fn a_file_in_order_is_committed_and_the_transfer_finishes() {
        let data = vec![7u8; CHUNK + 10];
        let mut m = ReceiveMachine::new([(0, Track::fresh(data.len() as u64)), (1, Track::fresh(0))]);
        receive_all(&mut m, 0, &data);
        assert_eq!(m.get(0).map(|t| t.verified), Some(data.len() as u64));
        let end = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&data) };
        assert_eq!(m.handle(&end).expect("complete"), Action::Commit { file: 0 });
        m.handle_committed(0, "a.bin".into()).expect("known file");
        // An empty file has no chunks: it ends at once.
        let empty = SenderMsg::FileEnd { file: 1, hash: FileDigest::of(&[]) };
        assert_eq!(m.handle(&empty).expect("complete"), Action::Commit { file: 1 });
        m.handle_committed(1, "empty".into()).expect("known file");
        assert_eq!(m.handle(&SenderMsg::Done).expect("all there"), Action::Finished);
    }

    #[test]
    fn chunks_out_of_place_are_refused() {
        let mut m = ReceiveMachine::new([(0, Track::fresh(100))]);
        let why = protocol_error(m.handle(&chunk(0, 10, &[1; 10])));
        assert!(why.contains("out of place"), "{why}");
        let why = protocol_error(m.handle(&chunk(0, 0, &[1; 101])));
        assert!(why.contains("out of place"), "{why}");
        let why = protocol_error(m.handle(&chunk(5, 0, &[1; 10])));
        assert!(why.contains("no file 5"), "{why}");
        // A length overflowing u64 with the offset is out of place too, not a panic.
        let mut m = ReceiveMachine::new([(0, Track { verified: u64::MAX - 1, ..Track::fresh(u64::MAX) })]);
        let why = protocol_error(m.handle(&chunk(0, u64::MAX - 1, &[1; 10])));
        assert!(why.contains("out of place"), "{why}");
    }

    #[test]
    fn a_second_chunk_while_one_is_written_is_refused() {
        let mut m = ReceiveMachine::new([(0, Track::fresh(100))]);
        assert_eq!(m.handle(&chunk(0, 0, &[1; 10])).expect("first"), Action::Write { file: 0 });
        // Same place again before the write finished: the file is busy (the shell never does this; a
        // confused shell is caught rather than writing twice).
        let why = protocol_error(m.handle(&chunk(0, 0, &[1; 10])));
        assert!(why.contains("already ended"), "{why}");
        m.handle_write_abandoned(0);
        assert_eq!(m.get(0).map(|t| (t.verified, t.state.clone())), Some((0, FileState::Receiving)));
    }

    #[test]
    fn a_file_ending_early_or_with_the_wrong_hash_fails() {
        let data = [3u8; 50];
        let mut m = ReceiveMachine::new([(0, Track::fresh(100))]);
        receive_all(&mut m, 0, &data);
        let why = protocol_error(m.handle(&SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&data) }));
        assert!(why.contains("ended at 50 of 100"), "{why}");

        let mut m = ReceiveMachine::new([(0, Track::fresh(50))]);
        receive_all(&mut m, 0, &data);
        let wrong = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&[4u8; 50]) };
        assert!(matches!(m.handle(&wrong), Err(Fatal(FileError::Corrupted { file: 0 }))));
    }

    #[test]
    fn a_committed_file_cannot_end_or_grow_again() {
        let data = [3u8; 50];
        let mut m = ReceiveMachine::new([(0, Track::fresh(50))]);
        receive_all(&mut m, 0, &data);
        let end = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&data) };
        assert_eq!(m.handle(&end).expect("complete"), Action::Commit { file: 0 });
        m.handle_committed(0, "x".into()).expect("known file");
        assert!(protocol_error(m.handle(&end)).contains("ended at"));
        assert!(protocol_error(m.handle(&chunk(0, 50, &[1]))).contains("out of place"));
    }

    #[test]
    fn done_before_every_file_is_refused() {
        let mut m = ReceiveMachine::new([(0, Track::fresh(0)), (1, Track::fresh(0))]);
        assert_eq!(
            m.handle(&SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&[]) }).expect("ok"),
            Action::Commit { file: 0 }
        );
        m.handle_committed(0, "a".into()).expect("known file");
        let why = protocol_error(m.handle(&SenderMsg::Done));
        assert!(why.contains("done before file 1"), "{why}");
    }

    #[test]
    fn a_file_kept_from_an_earlier_attempt_is_only_confirmed() {
        let data = [9u8; 30];
        let mut digest = FileDigest::new(30);
        digest.add(blake3::hash(&data).as_bytes());
        let kept = Track { size: 30, verified: 30, digest, state: FileState::Confirming("kept.txt".into()) };
        let mut m = ReceiveMachine::new([(0, kept.clone())]);
        // Its bytes are not sent again: a chunk is out of place.
        assert!(protocol_error(m.handle(&chunk(0, 0, &data))).contains("out of place"));
        // Done before the confirmation is too early.
        assert!(protocol_error(m.handle(&SenderMsg::Done)).contains("done before file 0"));
        let end = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&data) };
        assert_eq!(m.handle(&end).expect("same file"), Action::Confirmed { file: 0 });
        assert_eq!(m.get(0).map(|t| t.state.clone()), Some(FileState::Committed("kept.txt".into())));
        assert_eq!(m.handle(&SenderMsg::Done).expect("all there"), Action::Finished);

        // The sender's file changed since: refused as corrupted, nothing is confirmed.
        let mut m = ReceiveMachine::new([(0, kept)]);
        let changed = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&[8u8; 30]) };
        assert!(matches!(m.handle(&changed), Err(Fatal(FileError::Corrupted { file: 0 }))));
    }

    #[test]
    fn a_resumed_file_continues_at_its_verified_length() {
        let data = vec![5u8; 2 * CHUNK];
        let mut digest = FileDigest::new(data.len() as u64);
        digest.add(blake3::hash(&data[..CHUNK]).as_bytes());
        let resumed =
            Track { size: data.len() as u64, verified: CHUNK as u64, digest, state: FileState::Receiving };
        let mut m = ReceiveMachine::new([(0, resumed)]);
        assert!(protocol_error(m.handle(&chunk(0, 0, &data[..CHUNK]))).contains("out of place"));
        assert_eq!(
            m.handle(&chunk(0, CHUNK as u64, &data[CHUNK..])).expect("next"),
            Action::Write { file: 0 }
        );
        m.handle_written(0).expect("written");
        let end = SenderMsg::FileEnd { file: 0, hash: FileDigest::of(&data) };
        assert_eq!(m.handle(&end).expect("complete"), Action::Commit { file: 0 });
    }

    #[test]
    fn the_sender_failing_or_offering_again_ends_the_attempt() {
        let mut m = ReceiveMachine::new([(0, Track::fresh(1))]);
        assert!(matches!(
            m.handle(&SenderMsg::Failed(FileError::Cancelled)),
            Err(Fatal(FileError::Cancelled))
        ));
        let offer = SenderMsg::Offer { id: [0; 16], entries: Vec::new(), total: 0 };
        assert!(protocol_error(m.handle(&offer)).contains("second offer"));
    }
}
