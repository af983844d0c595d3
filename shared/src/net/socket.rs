//! One UDP socket for both of a client's QUIC connections.
//!
//! The quinn endpoint of a host or viewer talks to two "addresses": the relay (control QUIC, sent as is)
//! and [`virtual_peer`] — a stand-in address for the other end of the session. Datagrams quinn sends to
//! the virtual peer are wrapped with this session's tag ([`crate::packet`]) and sent to the relay; tagged
//! datagrams from the relay are unwrapped and handed to quinn as coming from the virtual peer. Anything
//! not from the relay, or tagged with another tag, is dropped. Sharing the socket means the relay sees
//! the tagged packets come from the address of the authenticated control connection.
//!
//! Plain `recv_from`/`send_to`, one datagram per call (no GSO/GRO): simple and correct; batching is a
//! later optimisation.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tokio::io::ReadBuf;

use crate::packet;

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

/// Largest datagram we wrap on the stack; larger ones (never produced with our MTU settings) use the heap.
const STACK_DATAGRAM: usize = 2048;

pub struct TaggedSocket {
    io: tokio::net::UdpSocket,
    relay: SocketAddr,
    virtual_peer: SocketAddr,
    /// This client's session tag; 0 until the relay hands one out.
    tag: AtomicU64,
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
        let std = std::net::UdpSocket::bind(local)?;
        std.set_nonblocking(true)?;
        let io = tokio::net::UdpSocket::from_std(std)?;
        Ok(Arc::new(Self { io, relay, virtual_peer: virtual_peer(relay.is_ipv6()), tag: AtomicU64::new(0) }))
    }

    /// Start wrapping end-to-end packets with `tag`.
    pub fn set_tag(&self, tag: u64) {
        self.tag.store(tag, Ordering::Release);
    }

    pub fn virtual_peer(&self) -> SocketAddr {
        self.virtual_peer
    }

    fn send_tagged(&self, contents: &[u8]) -> io::Result<()> {
        let tag = self.tag.load(Ordering::Acquire);
        if tag == 0 {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "no session tag yet"));
        }
        let total = packet::HEADER_LEN + contents.len();
        let mut stack = [0u8; STACK_DATAGRAM];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if total <= STACK_DATAGRAM {
            &mut stack[..total]
        } else {
            heap.resize(total, 0);
            &mut heap
        };
        packet::write_header(buf, tag);
        buf[packet::HEADER_LEN..].copy_from_slice(contents);
        self.io.try_send_to(buf, self.relay).map(|_| ())
    }
}

impl AsyncUdpSocket for TaggedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        if same_addr(transmit.destination, self.virtual_peer) {
            self.send_tagged(transmit.contents)
        } else {
            self.io.try_send_to(transmit.contents, transmit.destination).map(|_| ())
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(meta)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        loop {
            let mut read = ReadBuf::new(buf);
            let src = ready!(self.io.poll_recv_from(cx, &mut read))?;
            let len = read.filled().len();
            if !same_addr(src, self.relay) {
                continue; // only the relay talks to us
            }
            let (addr, len) = if packet::is_tagged(&buf[..len]) {
                let mine = self.tag.load(Ordering::Acquire);
                if mine == 0 || packet::tag_of(&buf[..len]) != Some(mine) {
                    continue;
                }
                buf.copy_within(packet::HEADER_LEN..len, 0);
                (self.virtual_peer, len - packet::HEADER_LEN)
            } else {
                (src, len)
            };
            *meta = RecvMeta { addr, len, stride: len, ecn: None, dst_ip: None };
            return Poll::Ready(Ok(1));
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

/// A socket that sends through a tokio UDP socket (ours and the relay's).
pub trait HasUdp: Send + Sync + 'static {
    fn udp(&self) -> &tokio::net::UdpSocket;
}

impl HasUdp for TaggedSocket {
    fn udp(&self) -> &tokio::net::UdpSocket {
        &self.io
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
