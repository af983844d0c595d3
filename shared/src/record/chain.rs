//! The tamper-evident session record: [`SessionEvent`]s in a hash chain (BLAKE3) bound to one session.
//!
//! Each [`Entry`] carries its sequence number, the event, the hash of the entry before it (`prev`) and
//! its own hash over the three. The first `prev` is the session's *genesis*, derived from the session's
//! public commitment (the one the relay's audit row names), so an entry lifted from another session's
//! record does not fit. Changing, dropping, reordering or inserting an entry breaks the chain at that
//! entry, and [`verify`] names the first one that does not fit and why.
//!
//! The host is the sequencer: it appends, and sends each entry to the viewer, which [`Chain::accept`]s
//! only an entry that extends its copy — so both ends hold the same chain by construction. The ends then
//! confirm their heads to each other with a [`head_mac`] under a key only the two ends have
//! ([`mac_key`], derived from the PAKE-backed resume secret): a record whose heads verify was agreed by
//! both ends during the session, and nobody else (the relay included) could have made it.
//!
//! Nothing here reads a clock, a disk or the network.

use serde::{Deserialize, Serialize};

use super::SessionEvent;

/// A BLAKE3 hash (or MAC).
pub type Hash = [u8; 32];

const GENESIS_CONTEXT: &str = "tether session record genesis v1";
const ENTRY_CONTEXT: &str = "tether session record entry v1";
const MAC_CONTEXT: &str = "tether session record head mac v1";

/// The first `prev` of the record of the session whose relay commitment is `session`.
pub fn genesis(session: &[u8; 32]) -> Hash {
    blake3::derive_key(GENESIS_CONTEXT, session)
}

/// The key the two ends MAC their heads with: from the session's resume secret, which only they hold
/// (the relay sees only its commitment).
pub fn mac_key(resume_secret: &[u8; 32]) -> Hash {
    blake3::derive_key(MAC_CONTEXT, resume_secret)
}

/// The MAC of "the chain has `len` entries and this head".
pub fn head_mac(key: &Hash, len: u64, head: &Hash) -> Hash {
    let mut message = [0u8; 40];
    message[..8].copy_from_slice(&len.to_le_bytes());
    message[8..].copy_from_slice(head);
    blake3::keyed_hash(key, &message).into()
}

/// One event of the record, linked to the one before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the record, from 0.
    pub seq: u64,
    pub event: SessionEvent,
    #[serde(with = "hex32")]
    pub prev: Hash,
    #[serde(with = "hex32")]
    pub hash: Hash,
}

impl Entry {
    /// The entry `seq` holding `event` after `prev`, with its hash.
    pub fn new(seq: u64, event: SessionEvent, prev: Hash) -> Self {
        let hash = entry_hash(seq, &event, &prev);
        Self { seq, event, prev, hash }
    }
}

/// The hash of entry `seq` with `event` after `prev`. The event is hashed in its postcard encoding (the
/// wire's): plain data, so the same event always gives the same bytes.
fn entry_hash(seq: u64, event: &SessionEvent, prev: &Hash) -> Hash {
    // Serialising plain data into a Vec does not fail; an empty body would only make the hash disagree.
    let body = postcard::to_stdvec(&(seq, event)).unwrap_or_default();
    let mut hasher = blake3::Hasher::new_derive_key(ENTRY_CONTEXT);
    hasher.update(prev);
    hasher.update(&body);
    hasher.finalize().into()
}

/// Why an entry does not fit the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("it says it is entry {found}; entry {expected} was due (one is missing, added or moved)")]
    Sequence { expected: u64, found: u64 },
    #[error("it does not follow the entry before it (an entry before it was changed, dropped or moved, or it is from another session)")]
    Link,
    #[error("its content does not match its hash (it was changed)")]
    Content,
}

/// The first entry of a record that does not fit, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index} of the session record is bad: {problem}")]
pub struct ChainError {
    /// Its position in the record as given (from 0).
    pub index: usize,
    pub problem: Problem,
}

/// Check `entries` as the whole record of the session with commitment `session`; its head if it holds.
pub fn verify(session: &[u8; 32], entries: &[Entry]) -> Result<Hash, ChainError> {
    let mut chain = Chain::new(session);
    for (index, entry) in entries.iter().enumerate() {
        chain.accept(entry.clone()).map_err(|problem| ChainError { index, problem })?;
    }
    Ok(chain.head())
}

/// A session's record as one end holds it.
#[derive(Debug, Clone)]
pub struct Chain {
    genesis: Hash,
    entries: Vec<Entry>,
}

impl Chain {
    pub fn new(session: &[u8; 32]) -> Self {
        Self { genesis: genesis(session), entries: Vec::new() }
    }

    /// The hash of the last entry (the genesis while empty).
    pub fn head(&self) -> Hash {
        self.entries.last().map_or(self.genesis, |e| e.hash)
    }

    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The head as it was after the first `len` entries (`None` past the end).
    pub fn head_at(&self, len: u64) -> Option<Hash> {
        match len {
            0 => Some(self.genesis),
            n => self.entries.get(usize::try_from(n - 1).ok()?).map(|e| e.hash),
        }
    }

    /// Append `event` (the sequencer's side); the new entry, to send on.
    pub fn append(&mut self, event: SessionEvent) -> Entry {
        let entry = Entry::new(self.len(), event, self.head());
        self.entries.push(entry.clone());
        entry
    }

    /// Take `entry` if it extends the chain exactly (the follower's side).
    pub fn accept(&mut self, entry: Entry) -> Result<(), Problem> {
        if entry.seq != self.len() {
            return Err(Problem::Sequence { expected: self.len(), found: entry.seq });
        }
        if entry.prev != self.head() {
            return Err(Problem::Link);
        }
        if entry.hash != entry_hash(entry.seq, &entry.event, &entry.prev) {
            return Err(Problem::Content);
        }
        self.entries.push(entry);
        Ok(())
    }
}

/// 32 bytes as 64 lowercase hex digits (readable in a JSON report; the same in postcard).
pub mod hex32 {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn to_hex(bytes: &[u8; 32]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<[u8; 32]> {
        if text.len() != 64 || !text.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(out)
    }

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        from_hex(&text).ok_or_else(|| D::Error::custom("expected 64 hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::record::{EventKind, Side};
    use crate::session_proto::Permissions;

    const SESSION: [u8; 32] = [7; 32];

    fn event(i: u64) -> SessionEvent {
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000 + i);
        let kind = match i % 3 {
            0 => EventKind::Chat { from: Side::Technician, text: format!("line {i}") },
            1 => EventKind::PermissionsChanged {
                by: Side::Host,
                before: Permissions::ALL,
                now: Permissions::VIEW_ONLY,
            },
            _ => EventKind::Clipboard { by: Side::Host, bytes: i },
        };
        SessionEvent::new(at, kind)
    }

    fn record(n: u64) -> Vec<Entry> {
        let mut chain = Chain::new(&SESSION);
        (0..n).map(|i| chain.append(event(i))).collect()
    }

    #[test]
    fn a_record_verifies_and_a_follower_holds_the_same_chain() {
        let entries = record(6);
        let head = verify(&SESSION, &entries).expect("valid");
        let mut follower = Chain::new(&SESSION);
        for entry in &entries {
            follower.accept(entry.clone()).expect("extends");
        }
        assert_eq!(follower.head(), head);
        assert_eq!(follower.head_at(0), Some(genesis(&SESSION)));
        assert_eq!(follower.head_at(6), Some(head));
        assert_eq!(follower.head_at(7), None);
    }

    #[test]
    fn a_changed_entry_is_named() {
        let mut entries = record(5);
        entries[2].event.kind = EventKind::Chat { from: Side::Technician, text: "changed".into() };
        assert_eq!(verify(&SESSION, &entries), Err(ChainError { index: 2, problem: Problem::Content }));
        // Rehashing the changed entry only moves the break to the next one.
        entries[2] = Entry::new(2, entries[2].event.clone(), entries[2].prev);
        assert_eq!(verify(&SESSION, &entries), Err(ChainError { index: 3, problem: Problem::Link }));
    }

    #[test]
    fn a_dropped_or_reordered_or_forged_entry_is_named() {
        let entries = record(5);
        let mut dropped = entries.clone();
        dropped.remove(1);
        assert_eq!(verify(&SESSION, &dropped).map_err(|e| e.index), Err(1));

        let mut swapped = entries.clone();
        swapped.swap(1, 3);
        assert_eq!(verify(&SESSION, &swapped).map_err(|e| e.index), Err(1));

        let mut forged = entries.clone();
        let last = forged.last().expect("entries").hash;
        let mut fake = Entry::new(5, event(9), last);
        fake.event.kind = EventKind::Chat { from: Side::Host, text: "I agreed to everything".into() };
        forged.push(fake);
        assert_eq!(verify(&SESSION, &forged), Err(ChainError { index: 5, problem: Problem::Content }));

        let truncated_head = verify(&SESSION, &entries[..3]).expect("a prefix is a valid chain");
        assert_ne!(truncated_head, verify(&SESSION, &entries).expect("valid"), "but its head differs");
    }

    #[test]
    fn an_entry_from_another_session_does_not_fit() {
        let mut other = Chain::new(&[8; 32]);
        let theirs = other.append(event(0));
        let mut entries = record(3);
        entries[0] = theirs;
        assert_eq!(verify(&SESSION, &entries), Err(ChainError { index: 0, problem: Problem::Link }));
    }

    #[test]
    fn head_macs_need_the_key_and_bind_the_length() {
        let key = mac_key(&[3; 32]);
        let head = verify(&SESSION, &record(4)).expect("valid");
        let mac = head_mac(&key, 4, &head);
        assert_eq!(mac, head_mac(&key, 4, &head));
        assert_ne!(mac, head_mac(&key, 5, &head));
        assert_ne!(mac, head_mac(&mac_key(&[4; 32]), 4, &head));
    }

    #[test]
    fn entries_round_trip_as_json_and_postcard() {
        let entries = record(3);
        let json = serde_json::to_string(&entries).expect("json");
        assert!(json.contains(&hex32::to_hex(&entries[1].hash)), "hashes as hex: {json}");
        let back: Vec<Entry> = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, entries);
        let wire = postcard::to_stdvec(&entries[2]).expect("postcard");
        assert_eq!(postcard::from_bytes::<Entry>(&wire).expect("decode"), entries[2]);
        assert_eq!(hex32::from_hex("zz"), None);
    }
}
