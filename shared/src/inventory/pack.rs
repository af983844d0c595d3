//! The inventory on the wire: postcard, compressed with zstd, cut into parts that each fit a control
//! message. A package list runs to 100 KiB on a desktop (2,500 packages) and compresses about fourfold,
//! which also spares the user's upload.
//!
//! The viewer's [`Assembler`] takes parts in order and refuses anything else: a part out of order, more
//! parts than [`MAX_PARTS`], or more than [`MAX_INVENTORY`] bytes once decompressed (a decompression bomb
//! stops at the cap, not in memory).

use serde::{Deserialize, Serialize};

use super::SystemInfo;

/// Compressed bytes per part (the control channel carries up to 64 KiB per message).
pub const PART_BYTES: usize = 48 * 1024;
/// At most this many parts (3 MiB compressed).
pub const MAX_PARTS: u16 = 64;
/// At most this many bytes decompressed.
pub const MAX_INVENTORY: usize = 16 * 1024 * 1024;

/// One part of an inventory: part `index` of `count`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryPart {
    pub index: u16,
    pub count: u16,
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for InventoryPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InventoryPart({}/{}, {} bytes)", self.index + 1, self.count, self.bytes.len())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InventoryError {
    #[error("the inventory is too large to send ({0} parts)")]
    TooLarge(usize),
    #[error("inventory part {index} of {count} arrived out of order")]
    OutOfOrder { index: u16, count: u16 },
    #[error("the inventory does not decompress within {MAX_INVENTORY} bytes: {0}")]
    Decompress(String),
    #[error("the inventory is malformed: {0}")]
    Malformed(String),
}

/// Cut `info` into parts.
pub fn pack(info: &SystemInfo) -> Result<Vec<InventoryPart>, InventoryError> {
    let raw = postcard::to_stdvec(info).map_err(|e| InventoryError::Malformed(e.to_string()))?;
    let compressed = zstd::bulk::compress(&raw, 3).map_err(|e| InventoryError::Malformed(e.to_string()))?;
    let chunks: Vec<&[u8]> = compressed.chunks(PART_BYTES).collect();
    let count = u16::try_from(chunks.len().max(1))
        .ok()
        .filter(|n| *n <= MAX_PARTS)
        .ok_or(InventoryError::TooLarge(chunks.len()))?;
    if chunks.is_empty() {
        return Ok(vec![InventoryPart { index: 0, count, bytes: Vec::new() }]);
    }
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| InventoryPart { index: i as u16, count, bytes: bytes.to_vec() })
        .collect())
}

/// Decompress and decode a whole inventory's bytes (the parts joined).
pub fn unpack(compressed: &[u8]) -> Result<SystemInfo, InventoryError> {
    let raw = zstd::bulk::decompress(compressed, MAX_INVENTORY)
        .map_err(|e| InventoryError::Decompress(e.to_string()))?;
    crate::wire::decode(&raw).map_err(|e| InventoryError::Malformed(e.to_string()))
}

/// Joins parts as they arrive. Part 0 always starts a new inventory (a refresh replaces one half-sent).
#[derive(Debug, Default)]
pub struct Assembler {
    bytes: Vec<u8>,
    next: u16,
    count: u16,
}

impl Assembler {
    /// Take `part`: the inventory once its last part is in, `None` while more are to come, an error (and
    /// a fresh start) for a part that does not fit.
    pub fn push(&mut self, part: InventoryPart) -> Result<Option<SystemInfo>, InventoryError> {
        if part.index == 0 {
            *self = Self { bytes: Vec::new(), next: 0, count: part.count };
        }
        let fits = part.count != 0
            && part.count <= MAX_PARTS
            && part.count == self.count
            && part.index == self.next
            && part.bytes.len() <= PART_BYTES;
        if !fits {
            *self = Self::default();
            return Err(InventoryError::OutOfOrder { index: part.index, count: part.count });
        }
        self.bytes.extend_from_slice(&part.bytes);
        self.next += 1;
        if self.next < self.count {
            return Ok(None);
        }
        let bytes = std::mem::take(&mut self.bytes);
        *self = Self::default();
        unpack(&bytes).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Package, Readable};

    fn big() -> SystemInfo {
        // Incompressible-ish names, so the inventory takes several parts.
        let packages = (0..20_000u32)
            .map(|i| Package {
                name: format!("pkg-{:x}", i.wrapping_mul(2_654_435_761)),
                version: format!("{}.{}", i * 7919 % 1000, i),
                arch: "amd64".into(),
            })
            .collect();
        SystemInfo { hostname: "pc-17".into(), packages: Readable::Read(packages), ..SystemInfo::default() }
    }

    #[test]
    fn parts_join_to_the_same_inventory() {
        let info = big();
        let parts = pack(&info).expect("packs");
        assert!(parts.len() > 2, "several parts: {}", parts.len());
        let mut assembler = Assembler::default();
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let done = assembler.push(part).expect("fits");
            assert_eq!(done.is_some(), i == last);
            if let Some(done) = done {
                assert_eq!(done, info);
            }
        }
    }

    #[test]
    fn parts_out_of_order_or_a_bomb_are_refused() {
        let parts = pack(&big()).expect("packs");
        assert!(parts.len() > 2, "several parts: {}", parts.len());
        let mut assembler = Assembler::default();
        assert!(assembler.push(parts[1].clone()).is_err(), "starts with part 1");
        assembler.push(parts[0].clone()).expect("a fresh start");
        assert!(assembler.push(parts[0].clone()).is_ok(), "part 0 again restarts");
        assert!(assembler.push(parts[2].clone()).is_err(), "skips part 1");
        // 64 MiB of zeros compresses to a few KiB, and stops at the cap.
        let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 3).expect("compresses");
        assert!(bomb.len() < PART_BYTES);
        let part = InventoryPart { index: 0, count: 1, bytes: bomb };
        assert!(matches!(Assembler::default().push(part), Err(InventoryError::Decompress(_))));
        let garbage = InventoryPart { index: 0, count: 1, bytes: vec![1, 2, 3] };
        assert!(Assembler::default().push(garbage).is_err());
    }

    #[test]
    fn the_digest_names_the_content() {
        let a = big();
        let mut b = a.clone();
        assert_eq!(super::super::digest(&a), super::super::digest(&b));
        b.hostname.push('x');
        assert_ne!(super::super::digest(&a), super::super::digest(&b));
    }
}
