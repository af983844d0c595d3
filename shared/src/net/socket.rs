//! One UDP socket for both of a client's QUIC connections.
//!
//! The quinn endpoint of a host or viewer talks to two "addresses": the relay (control QUIC, sent as is)
//! and [`virtual_peer`] — a stand-in address for the other end of the session. Datagrams quinn sends to
//! the virtual peer are wrapped with this session's tag ([`crate::packet`]) and sent to the relay; tagged
//! datagrams from the relay are unwrapped and handed to quinn as coming from the virtual peer. Anything
//! not from the relay, or tagged with another tag, is dropped. Sharing the socket means the relay sees
//! the tagged packets come from the address of the authenticated control connection.
//!
//! I/O is batched ([`super::udp::BatchUdp`]): quinn may hand us a GSO transmit of several QUIC packets
//! of `segment_size` bytes (the last may be shorter); for the virtual peer each segment gets its own tag
//! header, so the wrapped transmit has segments of `segment_size + HEADER_LEN` and leaves in one GSO
//! `sendmsg`. On receive, a GRO buffer from the relay holds several tagged datagrams of `stride` bytes;
//! each header is checked and stripped and the payloads are packed to a stride of `stride - HEADER_LEN`.
//! GRO may merge tagged and control QUIC datagrams (both come from the relay's port) into one buffer:
//! the buffer keeps the kind of its first valid segment and the other kind moves to a free buffer of the
//! batch with its own address (`unwrap_received`); only without a free buffer are they dropped.
//!
//! The don't-fragment bit is set, so quinn runs path MTU discovery end to end through the relay; the
//! 9-byte header is simply part of what the path must carry, and probes that do not fit are lost (or
//! refused with `EMSGSIZE`) like any other oversized probe.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use super::udp::{self, BatchUdp};
use crate::packet;
use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};

/// The stand-in address of the session peer. Never sent to on the wire: [`TaggedSocket`] maps it to the
/// relay. A loopback address, so even a bug could not send traffic anywhere else.
pub fn virtual_peer(ipv6: bool) -> SocketAddr {
    let v4 = SocketAddr::from((Ipv4Addr::new(127, 84, 84, 84), 4));
    if ipv6 {
        SocketAddr::V6(SocketAddrV6::new(Ipv4Addr::new(127, 84, 84, 84).to_ipv6_mapped(), 4, 0, 0))
    } else {
        v4
    }
}

fn same_addr(a: SocketAddr, b: SocketAddr) -> bool {
    let canon = |s: SocketAddr| match s {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => s,
        },
        v4 => v4,
    };
    canon(a) == canon(b)
}

pub struct TaggedSocket {
    io: BatchUdp,
    relay: SocketAddr,
    virtual_peer: SocketAddr,
    /// This client's session tag; 0 until the relay hands one out.
    tag: AtomicU64,
    /// Where a transmit to the virtual peer is wrapped (reused: at most `max_transmit_segments` packets).
    wrap: Mutex<Vec<u8>>,
}

impl fmt::Debug for TaggedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaggedSocket").field("relay", &self.relay).finish_non_exhaustive()
    }
}

impl TaggedSocket {
    /// Bind an ephemeral port on `local` (default: any address of the relay's family).
    pub fn bind(relay: SocketAddr, local: Option<std::net::IpAddr>) -> io::Result<Arc<Self>> {
        let local: SocketAddr = match (local, relay) {
            (Some(ip), _) => (ip, 0).into(),
            (None, SocketAddr::V4(_)) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (None, SocketAddr::V6(_)) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        Ok(Arc::new(Self {
            io: BatchUdp::bind(local)?,
            relay,
            virtual_peer: virtual_peer(relay.is_ipv6()),
            tag: AtomicU64::new(0),
            wrap: Mutex::new(Vec::new()),
        }))
    }

    /// Start wrapping end-to-end packets with `tag`.
    pub fn set_tag(&self, tag: u64) {
        self.tag.store(tag, Ordering::Release);
    }

    pub fn virtual_peer(&self) -> SocketAddr {
        self.virtual_peer
    }

    /// This client's session tag (0 until the relay hands one out).
    pub fn tag(&self) -> u64 {
        self.tag.load(Ordering::Acquire)
    }

    /// Wrap every segment of `transmit` with our tag and send the lot to the relay in one transmit.
    fn send_tagged(&self, transmit: &Transmit) -> io::Result<()> {
        let tag = self.tag.load(Ordering::Acquire);
        if tag == 0 {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no session tag yet"));
        }
        let contents = transmit.contents;
        let segment = match transmit.segment_size {
            Some(s) if s > 0 && s < contents.len() => s,
            _ => contents.len(),
        };
        let header = packet::header(tag);
        let mut wrap = self.wrap.lock().unwrap_or_else(PoisonError::into_inner);
        wrap.clear();
        let mut count = 0;
        for (start, end) in udp::segments(contents.len(), segment) {
            wrap.extend_from_slice(&header);
            wrap.extend_from_slice(&contents[start..end]);
            count += 1;
        }
        if count == 0 {
            return Ok(());
        }
        self.io.try_send(&Transmit {
            destination: self.relay,
            ecn: transmit.ecn,
            contents: &wrap,
            segment_size: (count > 1).then_some(segment + packet::HEADER_LEN),
            src_ip: transmit.src_ip,
        })
    }

    /// Check and strip the tags of one received buffer in place. On return `meta.len` is the length of
    /// what quinn may read (0: nothing) and `meta.stride` its segment size.
    ///
    /// GRO may merge control QUIC and tagged datagrams of the same size (both come from the relay) into
    /// one buffer, but one buffer can only have one source address for quinn. The buffer keeps the kind
    /// of its first valid segment; segments of the other kind are moved to `spare` (an unused buffer of
    /// the batch) with their own meta. Returns whether `spare` was used. Without a spare they are
    /// dropped and QUIC retransmits.
    fn unwrap_received(
        &self,
        buf: &mut [u8],
        meta: &mut RecvMeta,
        mine: u64,
        mut spare: Option<(&mut [u8], &mut RecvMeta)>,
    ) -> bool {
        let (len, stride) = (meta.len.min(buf.len()), meta.stride);
        meta.len = 0;
        if !same_addr(meta.addr, self.relay) {
            return false; // only the relay talks to us
        }
        let mut batch_tagged = None;
        let mut out = 0;
        let mut spare_out = 0;
        for (start, end) in udp::segments(len, stride) {
            let seg = &buf[start..end];
            let tagged = if packet::is_tagged(seg) {
                let ours = mine != 0 && seg.len() > packet::HEADER_LEN && packet::tag_of(seg) == Some(mine);
                if !ours {
                    continue;
                }
                true
            } else {
                false
            };
            let from = if tagged { start + packet::HEADER_LEN } else { start };
            if *batch_tagged.get_or_insert(tagged) != tagged {
                // The other kind: still intact here (everything written so far lies before `start`).
                if let Some((spare_buf, _)) = spare.as_mut() {
                    let piece = end - from;
                    if spare_out + piece <= spare_buf.len() {
                        spare_buf[spare_out..spare_out + piece].copy_from_slice(&buf[from..end]);
                        spare_out += piece;
                    }
                }
                continue;
            }
            if from != out {
                buf.copy_within(from..end, out);
            }
            out += end - from;
        }
        let peer_of = |tagged: bool| if tagged { self.virtual_peer } else { self.relay };
        let stride_of = |tagged: bool| if tagged { stride - packet::HEADER_LEN } else { stride };
        let Some(kind) = batch_tagged else { return false };
        // Every kept tagged segment is longer than the header, so the tagged stride is at least 1.
        meta.addr = peer_of(kind);
        meta.stride = stride_of(kind);
        meta.len = out;
        meta.dst_ip = None;
        match spare {
            Some((_, spare_meta)) if spare_out > 0 => {
                *spare_meta = RecvMeta {
                    addr: peer_of(!kind),
                    len: spare_out,
                    stride: stride_of(!kind),
                    ecn: meta.ecn,
                    dst_ip: None,
                };
                true
            }
            _ => false,
        }
    }
}

impl AsyncUdpSocket for TaggedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if same_addr(transmit.destination, self.virtual_peer) {
            self.send_tagged(transmit)
        } else {
            self.io.try_send(transmit)
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            let n = ready!(self.io.poll_recv(cx, bufs, meta))?;
            let mine = self.tag.load(Ordering::Acquire);
            // Buffers past `n` are free: they take segments of the other kind out of mixed GRO buffers.
            let (bufs, spare_bufs) = bufs.split_at_mut(n.min(bufs.len()));
            let (meta, spare_meta) = meta.split_at_mut(n.min(meta.len()));
            let mut spares = spare_bufs.iter_mut().zip(spare_meta.iter_mut()).peekable();
            let mut used = 0;
            for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()) {
                let spare = spares.peek_mut().map(|(b, m)| (&mut b[..], &mut **m));
                if self.unwrap_received(buf, meta, mine, spare) {
                    spares.next();
                    used += 1;
                }
            }
            let total = n + used;
            let kept = bufs.iter().zip(meta.iter()).filter(|(_, m)| m.len > 0).count() + used;
            if kept > 0 {
                return Poll::Ready(Ok(total));
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.io.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.io.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.io.may_fragment()
    }
}

/// A socket that sends through a tokio UDP socket (ours and the relay's).
pub trait HasUdp: Send + Sync + 'static {
    fn udp(&self) -> &tokio::net::UdpSocket;
}

impl HasUdp for TaggedSocket {
    fn udp(&self) -> &tokio::net::UdpSocket {
        self.io.tokio()
    }
}

/// Wakes quinn when the socket can take another datagram.
pub struct Writable<S>(pub Arc<S>);

impl<S> fmt::Debug for Writable<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Writable")
    }
}

impl<S: HasUdp> UdpPoller for Writable<S> {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        self.0.udp().poll_send_ready(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn meta(addr: SocketAddr, len: usize, stride: usize) -> RecvMeta {
        RecvMeta { addr, len, stride, ecn: None, dst_ip: None }
    }

    fn tagged(tag: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = packet::header(tag).to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[tokio::test]
    async fn a_gso_transmit_gets_one_tag_per_segment() {
        let relay = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        relay.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let sock = TaggedSocket::bind(relay.local_addr().expect("addr"), None).expect("bind");
        sock.set_tag(7);
        sock.udp().writable().await.expect("writable"); // as quinn polls before it sends
        let contents: Vec<u8> = (0..250u8).collect();
        let transmit = Transmit {
            destination: sock.virtual_peer(),
            ecn: None,
            contents: &contents,
            segment_size: Some(100),
            src_ip: None,
        };
        sock.try_send(&transmit).expect("send");
        // A plain socket without GRO receives the GSO send as separate datagrams.
        let mut buf = [0u8; 2048];
        for chunk in contents.chunks(100) {
            let (n, _) = relay.recv_from(&mut buf).expect("recv");
            assert_eq!(buf[..n], tagged(7, chunk)[..]);
        }
    }

    #[tokio::test]
    async fn a_gro_buffer_is_unwrapped_and_foreign_segments_dropped() {
        let relay: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let sock = TaggedSocket::bind(relay, Some(Ipv4Addr::LOCALHOST.into())).expect("bind");
        let (a, b, c) = ([1u8; 20], [2u8; 20], [3u8; 5]);
        // Ours, someone else's, ours (short last segment), at a stride of 29.
        let mut buf = [tagged(5, &a), tagged(6, &b), tagged(5, &c)].concat();
        let mut m = meta(relay, buf.len(), 29);
        assert!(!sock.unwrap_received(&mut buf, &mut m, 5, None));
        assert_eq!((m.addr, m.len, m.stride), (sock.virtual_peer(), 25, 20));
        assert_eq!(buf[..25], [&a[..], &c[..]].concat()[..]);

        // Control QUIC first, then tagged segments merged into the same buffer: the tagged ones move to
        // the spare buffer, with their own address and stride; nothing is lost.
        let quic = [0x40u8; 29];
        let mut buf = [&quic[..], &tagged(5, &a)[..], &tagged(5, &b)[..], &quic[..10]].concat();
        let mut m = meta(relay, buf.len(), 29);
        let (mut spare, mut spare_meta) = ([0u8; 128], meta(relay, 0, 0));
        assert!(sock.unwrap_received(&mut buf, &mut m, 5, Some((&mut spare[..], &mut spare_meta))));
        assert_eq!((m.addr, m.len, m.stride), (relay, 39, 29));
        assert_eq!(buf[..39], [&quic[..], &quic[..10]].concat()[..]);
        assert_eq!((spare_meta.addr, spare_meta.len, spare_meta.stride), (sock.virtual_peer(), 40, 20));
        assert_eq!(spare[..40], [&a[..], &b[..]].concat()[..]);
        // Without a spare buffer the other kind is dropped (QUIC retransmits).
        let mut buf = [&quic[..], &tagged(5, &a)[..]].concat();
        let mut m = meta(relay, buf.len(), 29);
        assert!(!sock.unwrap_received(&mut buf, &mut m, 5, None));
        assert_eq!((m.addr, m.len), (relay, 29));

        // Not from the relay, no tag yet, a bare header, a zero stride: nothing for quinn.
        let other: SocketAddr = "127.0.0.1:10".parse().expect("addr");
        for (from, mine, bytes, stride) in [
            (other, 5, tagged(5, &a), 29),
            (relay, 0, tagged(5, &a), 29),
            (relay, 5, tagged(5, &[]), 9),
            (relay, 5, tagged(5, &a), 0),
        ] {
            let mut buf = bytes.clone();
            let mut m = meta(from, buf.len(), stride);
            sock.unwrap_received(&mut buf, &mut m, mine, None);
            assert_eq!(m.len, 0);
        }
    }
}
