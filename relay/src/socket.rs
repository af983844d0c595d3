//! The relay's UDP socket: QUIC for the relay's own endpoint, tagged packets forwarded on the spot.
//!
//! quinn polls this socket for datagrams. Tagged ones ([`tether_shared::packet`]) never reach quinn: they
//! are rewritten by the [`Router`] and sent straight to the partner — no queue, no buffering in the relay,
//! so the end-to-end congestion controller sees the real path. A datagram that cannot be sent at once is
//! dropped, as a router would; QUIC at the ends retransmits.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tether_shared::net::socket::{HasUdp, Writable};
use tokio::io::ReadBuf;

use crate::forward::Router;
use tether_shared::packet;

/// Forward at most this many tagged packets per poll before yielding, so quinn's own work is not starved.
const FORWARD_BUDGET: usize = 256;

pub struct RelaySocket {
    io: tokio::net::UdpSocket,
    router: Router,
}

impl fmt::Debug for RelaySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelaySocket({:?})", self.io.local_addr())
    }
}

impl RelaySocket {
    pub fn bind(addr: SocketAddr, router: Router) -> io::Result<Arc<Self>> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        Ok(Arc::new(Self { io: tokio::net::UdpSocket::from_std(std)?, router }))
    }
}

impl RelaySocket {
    /// The bound address (the port is known only after binding to port 0).
    pub fn local_addr_checked(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl AsyncUdpSocket for RelaySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.io.try_send_to(transmit.contents, transmit.destination).map(|_| ())
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
        for _ in 0..FORWARD_BUDGET {
            let mut read = ReadBuf::new(buf);
            let src = ready!(self.io.poll_recv_from(cx, &mut read))?;
            let len = read.filled().len();
            if packet::is_tagged(&buf[..len]) {
                if let Some(dst) = self.router.route(src, &mut buf[..len]) {
                    let _ = self.io.try_send_to(&buf[..len], dst);
                }
                continue;
            }
            *meta = RecvMeta { addr: src, len, stride: len, ecn: None, dst_ip: None };
            return Poll::Ready(Ok(1));
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl HasUdp for RelaySocket {
    fn udp(&self) -> &tokio::net::UdpSocket {
        &self.io
    }
}
