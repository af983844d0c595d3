//! The relay's UDP socket: QUIC for the relay's own endpoint, tagged packets forwarded on the spot.
//!
//! quinn polls this socket for datagrams. Tagged ones ([`tether_shared::packet`]) never reach quinn: they
//! are rewritten by the [`Router`] and sent straight to the partner — no queue, no buffering in the relay,
//! so the end-to-end congestion controller sees the real path. A datagram that cannot be sent at once is
//! dropped, as a router would; QUIC at the ends retransmits.
//!
//! I/O is batched ([`BatchUdp`]): one `recvmmsg` fills several buffers, and with GRO each buffer holds
//! several datagrams of one sender, `stride` bytes each (the last may be shorter). Each datagram of a
//! buffer is routed on its own (the tap sees every one), its header rewritten in place, and consecutive
//! datagrams going to the same partner leave in **one GSO send** with the same `stride` — a batch of a
//! fast transfer crosses the relay in two system calls. Where GSO is unavailable they go one by one. The
//! ECN codepoint of the received datagrams is kept, as a router would. Control datagrams (QUIC for the
//! relay itself) found in a buffer are packed to its front for quinn.

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use tether_shared::net::socket::{HasUdp, Writable};
use tether_shared::net::udp::{segments, BatchUdp};

use crate::forward::Router;
use tether_shared::packet;

/// Forward at most this many tagged datagrams per poll before yielding, so quinn's own work is not
/// starved. Checked after each receive call, which may bring many more.
const FORWARD_BUDGET: usize = 1024;

pub struct RelaySocket {
    io: BatchUdp,
    router: Router,
}

impl fmt::Debug for RelaySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelaySocket({:?})", self.io.local_addr())
    }
}

/// Consecutive datagrams of one received buffer bound for the same partner.
struct Run {
    dst: SocketAddr,
    start: usize,
    end: usize,
}

impl RelaySocket {
    pub fn bind(addr: SocketAddr, router: Router) -> io::Result<Arc<Self>> {
        Ok(Arc::new(Self { io: BatchUdp::bind(addr)?, router }))
    }

    /// The bound address (the port is known only after binding to port 0).
    pub fn local_addr_checked(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Forward the tagged datagrams of one received buffer and pack the rest (control QUIC) to its
    /// front. Sets `meta.len` to what is left for quinn (0: nothing) and returns how many were forwarded
    /// or dropped.
    fn forward(&self, buf: &mut [u8], meta: &mut RecvMeta) -> usize {
        let (len, stride, src, ecn) = (meta.len.min(buf.len()), meta.stride, meta.addr, meta.ecn);
        meta.len = 0;
        let mut run: Option<Run> = None;
        let mut out = 0;
        let mut tagged = 0;
        for (start, end) in segments(len, stride) {
            if packet::is_tagged(&buf[start..end]) {
                tagged += 1;
                let dst = self.router.route(src, &mut buf[start..end]);
                match (&mut run, dst) {
                    (Some(r), Some(dst)) if r.dst == dst && r.end == start => r.end = end,
                    (_, dst) => {
                        if let Some(r) = run.take() {
                            self.send_run(buf, &r, stride, ecn);
                        }
                        run = dst.map(|dst| Run { dst, start, end });
                    }
                }
            } else {
                // Packing may overwrite bytes of a pending run: send it first.
                if let Some(r) = run.take() {
                    self.send_run(buf, &r, stride, ecn);
                }
                if start != out {
                    buf.copy_within(start..end, out);
                }
                out += end - start;
            }
        }
        if let Some(r) = run.take() {
            self.send_run(buf, &r, stride, ecn);
        }
        meta.len = out;
        tagged
    }

    /// Send a run in one GSO transmit (or one datagram at a time without GSO); dropped if the socket is
    /// full.
    fn send_run(&self, buf: &[u8], run: &Run, stride: usize, ecn: Option<EcnCodepoint>) {
        let contents = &buf[run.start..run.end];
        let transmit = |contents| Transmit {
            destination: run.dst,
            ecn,
            contents,
            segment_size: Some(stride),
            src_ip: None,
        };
        if self.io.max_gso_segments() > 1 || contents.len() <= stride {
            let _ = self.io.try_send(&transmit(contents));
        } else {
            for (start, end) in segments(contents.len(), stride) {
                if self.io.try_send(&transmit(&contents[start..end])).is_err() {
                    break;
                }
            }
        }
    }
}

impl AsyncUdpSocket for RelaySocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.io.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut forwarded = 0;
        // Each call brings at least one datagram, so the call count bounds the loop too.
        for _ in 0..FORWARD_BUDGET {
            if forwarded >= FORWARD_BUDGET {
                break;
            }
            let n = ready!(self.io.poll_recv(cx, bufs, meta))?;
            let mut for_quinn = 0;
            for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()).take(n) {
                forwarded += self.forward(buf, meta);
                for_quinn += usize::from(meta.len > 0);
            }
            if for_quinn > 0 {
                return Poll::Ready(Ok(n));
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
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

impl HasUdp for RelaySocket {
    fn udp(&self) -> &tokio::net::UdpSocket {
        self.io.tokio()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::Endpoint;
    use std::time::Duration;

    #[tokio::test]
    async fn a_gro_buffer_is_forwarded_per_segment_and_control_kept() {
        let host = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let viewer = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        viewer.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let router = Router::new(None);
        let host_addr = host.local_addr().expect("addr");
        let _guard = router.activate(
            Endpoint { tag: 1, addr: host_addr },
            Endpoint { tag: 2, addr: viewer.local_addr().expect("addr") },
        );
        let relay = RelaySocket::bind("127.0.0.1:0".parse().expect("addr"), router).expect("bind");
        relay.udp().writable().await.expect("writable");
        let seg = |tag: u64, fill: u8, len: usize| {
            let mut v = packet::header(tag).to_vec();
            v.resize(len, fill);
            v
        };
        let quic = vec![0x40u8; 30];
        // Two for the viewer, an unknown tag, control QUIC, one more for the viewer (short).
        let mut buf =
            [seg(1, 0xA, 30), seg(1, 0xB, 30), seg(9, 0xC, 30), quic.clone(), seg(1, 0xD, 12)].concat();
        let mut meta = RecvMeta { addr: host_addr, len: buf.len(), stride: 30, ecn: None, dst_ip: None };
        assert_eq!(relay.forward(&mut buf, &mut meta), 4);
        assert_eq!(meta.len, 30, "the control datagram is left for quinn");
        assert_eq!(buf[..30], quic[..]);
        let mut got = [0u8; 100];
        for expected in [seg(2, 0xA, 30), seg(2, 0xB, 30), seg(2, 0xD, 12)] {
            let (n, _) = viewer.recv_from(&mut got).expect("forwarded");
            assert_eq!(got[..n], expected[..]);
        }
    }
}
