//! The relay's tagged-packet header (ARCHITECTURE §2, "relay transport").
//!
//! Control traffic to the relay is ordinary QUIC. End-to-end QUIC packets between host and viewer travel
//! through the relay's same UDP port, each prefixed with a 9-byte header: a zero marker byte and an 8-byte
//! session tag handed out over the authenticated control channel. QUIC packets always have the "fixed
//! bit" (0x40) of their first byte set — every Tether endpoint disables fixed-bit greasing — so the zero
//! marker can never be mistaken for QUIC. The relay looks the tag up, checks the source address, and
//! forwards the inner packet (opaque, end-to-end encrypted) to the partner under the partner's tag.

/// First byte of a tagged packet.
pub const MARKER: u8 = 0x00;
/// Marker plus tag.
pub const HEADER_LEN: usize = 9;

/// Whether a datagram is a tagged packet (as opposed to QUIC for the relay's own endpoint).
pub fn is_tagged(datagram: &[u8]) -> bool {
    datagram.first() == Some(&MARKER)
}

/// The tag of a tagged packet, if it has a full header.
pub fn tag_of(datagram: &[u8]) -> Option<u64> {
    if !is_tagged(datagram) || datagram.len() < HEADER_LEN {
        return None;
    }
    let tag: [u8; 8] = datagram[1..HEADER_LEN].try_into().ok()?;
    Some(u64::from_be_bytes(tag))
}

/// The header for `tag`.
pub fn header(tag: u64) -> [u8; HEADER_LEN] {
    let mut h = [MARKER; HEADER_LEN];
    h[1..].copy_from_slice(&tag.to_be_bytes());
    h
}

/// Write the header for `tag` into the first [`HEADER_LEN`] bytes of `buf` (which must be that long).
pub fn write_header(buf: &mut [u8], tag: u64) {
    buf[..HEADER_LEN].copy_from_slice(&header(tag));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_quic_is_never_tagged() {
        let mut buf = [0xAAu8; 20];
        write_header(&mut buf, 0x0102_0304_0506_0708);
        assert_eq!(tag_of(&buf), Some(0x0102_0304_0506_0708));
        assert_eq!(tag_of(&buf[..8]), None, "short header");
        assert_eq!(buf[..HEADER_LEN], header(0x0102_0304_0506_0708));
        for first in [0x40u8, 0x41, 0xC0, 0xFF] {
            assert!(!is_tagged(&[first, 0, 0]));
        }
    }
}
