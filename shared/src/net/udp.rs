//! Batched UDP I/O shared by the clients' [`super::socket::TaggedSocket`] and the relay's socket.
//!
//! A tokio UDP socket driven through quinn-udp's [`UdpSocketState`], as quinn's own tokio socket is:
//!
//! - **receive** with `recvmmsg` (up to [`quinn::udp::BATCH_SIZE`] buffers per call) and UDP GRO (the
//!   kernel hands several same-sized datagrams of one flow over as one buffer; `RecvMeta::stride` is the
//!   size of each, the last may be shorter);
//! - **send** with UDP GSO (one `sendmsg` carries up to [`BatchUdp::max_gso_segments`] datagrams of
//!   `segment_size` bytes each, the last may be shorter), falling back to one datagram per call where
//!   the kernel or driver refuses GSO (quinn-udp then lowers `max_gso_segments` to 1);
//! - the don't-fragment bit set (Linux: `IP_PMTUDISC_PROBE`), so quinn may run path MTU discovery;
//! - [`SOCKET_BUFFER`]-byte kernel buffers each way, so bursts of a fast transfer or of many relayed
//!   sessions are not dropped while the process waits for a core (the kernel caps the request at
//!   `net.core.rmem_max` / `wmem_max`).
//!
//! Send errors other than `WouldBlock` are logged by quinn-udp and swallowed (a datagram lost, as on any
//! network); `EMSGSIZE` from an MTU probe larger than the path is expected.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};

use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

/// Kernel send and receive buffer size asked for (each way).
pub const SOCKET_BUFFER: usize = 4 << 20;

#[derive(Debug)]
pub struct BatchUdp {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
}

impl BatchUdp {
    /// Bind `addr`, enable GRO / DF / packet info through quinn-udp and enlarge the kernel buffers.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Self::from_std(std::net::UdpSocket::bind(addr)?)
    }

    /// The same, with `SO_REUSEPORT` set before binding: several sockets of this process share `addr`,
    /// and the kernel steers each sender (by its address and port) to one of them, always the same one
    /// while the group does not change. Linux lets only sockets of the same user join the group.
    pub fn bind_shared(addr: SocketAddr) -> io::Result<Self> {
        use rustix::net::{sockopt, AddressFamily, SocketType};
        let family = if addr.is_ipv6() { AddressFamily::INET6 } else { AddressFamily::INET };
        let fd = rustix::net::socket(family, SocketType::DGRAM, None)?;
        sockopt::set_socket_reuseport(&fd, true)?;
        rustix::net::bind(&fd, &addr)?;
        Self::from_std(std::net::UdpSocket::from(fd))
    }

    fn from_std(std: std::net::UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&std).into())?;
        // Best effort: a smaller buffer only means more drops under bursts.
        if let Err(e) = state.set_recv_buffer_size((&std).into(), SOCKET_BUFFER) {
            tracing::debug!("SO_RCVBUF not set: {e}");
        }
        if let Err(e) = state.set_send_buffer_size((&std).into(), SOCKET_BUFFER) {
            tracing::debug!("SO_SNDBUF not set: {e}");
        }
        std.set_nonblocking(true)?;
        Ok(Self { io: tokio::net::UdpSocket::from_std(std)?, state })
    }

    pub fn tokio(&self) -> &tokio::net::UdpSocket {
        &self.io
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Send one transmit (several datagrams when `segment_size` is set and smaller than the contents).
    /// Only `WouldBlock` is returned as an error; other failures drop the datagrams (and are logged).
    pub fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || self.state.send((&self.io).into(), transmit))
    }

    /// Receive into `bufs`, filling one `meta` per buffer used, or register `cx` for readability.
    pub fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            match self.io.try_io(Interest::READABLE, || self.state.recv((&self.io).into(), bufs, meta)) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Datagrams one GSO send may carry (1 without GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Datagrams one received buffer may hold (1 without GRO).
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    /// Whether the IP layer may fragment our datagrams (false where DF could be set).
    pub fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }
}

/// The segments of a received or to-be-sent buffer: `len` bytes cut every `stride` bytes (the last piece
/// may be shorter). Yields `(start, end)` offsets; nothing for `stride == 0`.
pub fn segments(len: usize, stride: usize) -> impl Iterator<Item = (usize, usize)> {
    let step = if stride == 0 { len.max(1) } else { stride };
    (0..len).step_by(step).filter(move |_| stride > 0).map(move |start| (start, (start + stride).min(len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cut_at_stride_with_a_short_tail() {
        assert_eq!(segments(10, 4).collect::<Vec<_>>(), [(0, 4), (4, 8), (8, 10)]);
        assert_eq!(segments(8, 4).collect::<Vec<_>>(), [(0, 4), (4, 8)]);
        assert_eq!(segments(3, 4).collect::<Vec<_>>(), [(0, 3)]);
        assert_eq!(segments(0, 4).count(), 0);
        assert_eq!(segments(5, 0).count(), 0, "a zero stride never loops");
    }
}
