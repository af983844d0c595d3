//! The relay's UDP socket: QUIC for the relay's own endpoint, tagged packets forwarded on the spot.
//!
//! quinn polls this socket for datagrams. Tagged ones ([`tether_shared::packet`]) never reach quinn: they
//! are rewritten by the [`Router`] and sent straight to the partner — no queue, no buffering in the relay,
//! so the end-to-end congestion controller sees the real path. A datagram that cannot be sent at once is
//! dropped, as a router would; QUIC at the ends retransmits.
//!
//! I/O is batched ([`BatchUdp`]): one `recvmmsg` fills several buffers, and with GRO each buffer holds
//! several datagrams of one sender, `stride` bytes each (the last may be shorter). Each datagram of the
//! batch is routed on its own (the tap sees every one), its header rewritten in place; consecutive
//! datagrams of a buffer going to the same partner form one run, which leaves in **one GSO send**
//! with the same `stride` — a batch of a fast transfer crosses the relay in two system calls. Runs
//! leave in the order received, so no session's datagrams wait behind another's beyond the batch
//! itself. Where GSO is unavailable they go one by one. The ECN codepoint of the received datagrams is
//! kept, as a router would. Control datagrams (QUIC for the relay itself) found in a buffer are packed
//! to its front for quinn once the batch is sent.
//!
//! One `sendmmsg` for all runs of a batch (datagrams for different partners; quinn-udp has no such
//! call) was tried: at the load benchmark's 1 Mbit/s per session a batch rarely holds more than a few
//! datagrams, and it made no difference beyond the measurement's noise (`docs/BENCHMARKS.md`, "Relay
//! under load"), so it is not here.
//!
//! The time from the receive call's return to the send call's return is recorded per datagram in
//! [`crate::forward::Totals::dwell`] (`tether_relay_forward_dwell_seconds` on `/metrics`).

use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Instant;

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
    /// The runs of the batch being forwarded; kept between polls so forwarding does not allocate. Only
    /// quinn's endpoint driver polls the socket, so the lock is never contended.
    runs: Mutex<Vec<Run>>,
}

impl fmt::Debug for RelaySocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RelaySocket({:?})", self.io.local_addr())
    }
}

/// Consecutive datagrams of one received buffer bound for the same partner.
#[derive(Debug, Clone, Copy)]
struct Run {
    buf: usize,
    dst: SocketAddr,
    start: usize,
    end: usize,
    stride: usize,
    ecn: Option<EcnCodepoint>,
}

impl RelaySocket {
    pub fn bind(addr: SocketAddr, router: Router) -> io::Result<Arc<Self>> {
        Ok(Arc::new(Self { io: BatchUdp::bind(addr)?, router, runs: Mutex::default() }))
    }

    /// One of several sockets sharing `addr` (`SO_REUSEPORT`), forwarding with `router`'s worker view.
    pub fn bind_shared(addr: SocketAddr, router: Router) -> io::Result<Arc<Self>> {
        Ok(Arc::new(Self { io: BatchUdp::bind_shared(addr)?, router, runs: Mutex::default() }))
    }

    /// The bound address (the port is known only after binding to port 0).
    pub fn local_addr_checked(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Forward the tagged datagrams of the first `n` received buffers (received at `received_at`) and
    /// pack the rest (control QUIC) to the front of each buffer. Sets each `meta.len` to what is left for
    /// quinn (0: nothing). Returns (datagrams forwarded or dropped, buffers left for quinn).
    fn forward(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
        n: usize,
        received_at: Instant,
    ) -> (usize, usize) {
        let mut runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        runs.clear();
        let max_run = self.io.max_gso_segments().max(1);
        let mut tagged = 0;
        for (i, (buf, meta)) in bufs.iter_mut().zip(meta.iter()).take(n).enumerate() {
            let (len, stride, src, ecn) = (meta.len.min(buf.len()), meta.stride, meta.addr, meta.ecn);
            let mut open: Option<Run> = None;
            for (start, end) in segments(len, stride) {
                if !packet::is_tagged(&buf[start..end]) {
                    continue;
                }
                tagged += 1;
                let dst = self.router.route(src, &mut buf[start..end]);
                match (&mut open, dst) {
                    (Some(r), Some(dst))
                        if r.dst == dst && r.end == start && (r.end - r.start) / stride < max_run =>
                    {
                        r.end = end
                    }
                    (_, dst) => {
                        runs.extend(open.take());
                        open = dst.map(|dst| Run { buf: i, dst, start, end, stride, ecn });
                    }
                }
            }
            runs.extend(open);
        }
        self.send_runs(bufs, &runs, received_at);
        let mut for_quinn = 0;
        for (buf, meta) in bufs.iter_mut().zip(meta.iter_mut()).take(n) {
            let (len, stride) = (meta.len.min(buf.len()), meta.stride);
            let mut out = 0;
            for (start, end) in segments(len, stride) {
                if packet::is_tagged(&buf[start..end]) {
                    continue;
                }
                if start != out {
                    buf.copy_within(start..end, out);
                }
                out += end - start;
            }
            meta.len = out;
            for_quinn += usize::from(out > 0);
        }
        (tagged, for_quinn)
    }

    /// Send every run, in order, one GSO transmit each (one datagram at a time without GSO); dropped if
    /// the socket is full.
    fn send_runs(&self, bufs: &[IoSliceMut<'_>], runs: &[Run], received_at: Instant) {
        for run in runs {
            let contents = &bufs[run.buf][run.start..run.end];
            let transmit = |contents| Transmit {
                destination: run.dst,
                ecn: run.ecn,
                contents,
                segment_size: Some(run.stride),
                src_ip: None,
            };
            if self.io.max_gso_segments() > 1 || contents.len() <= run.stride {
                let _ = self.io.try_send(&transmit(contents));
            } else {
                for (start, end) in segments(contents.len(), run.stride) {
                    if self.io.try_send(&transmit(&contents[start..end])).is_err() {
                        break;
                    }
                }
            }
            let datagrams = contents.len().div_ceil(run.stride.max(1)) as u64;
            self.router.totals().dwell.observe_n(received_at.elapsed(), datagrams);
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
            let (tagged, for_quinn) = self.forward(bufs, meta, n, Instant::now());
            forwarded += tagged;
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

    fn seg(tag: u64, fill: u8, len: usize) -> Vec<u8> {
        let mut v = packet::header(tag).to_vec();
        v.resize(len, fill);
        v
    }

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
        let quic = vec![0x40u8; 30];
        // Two for the viewer, an unknown tag, control QUIC, one more for the viewer (short).
        let mut buf =
            [seg(1, 0xA, 30), seg(1, 0xB, 30), seg(9, 0xC, 30), quic.clone(), seg(1, 0xD, 12)].concat();
        let len = buf.len();
        let mut meta = [RecvMeta { addr: host_addr, len, stride: 30, ecn: None, dst_ip: None }];
        let (tagged, for_quinn) =
            relay.forward(&mut [IoSliceMut::new(&mut buf)], &mut meta, 1, Instant::now());
        assert_eq!((tagged, for_quinn), (4, 1));
        assert_eq!(meta[0].len, 30, "the control datagram is left for quinn");
        assert_eq!(buf[..30], quic[..]);
        let mut got = [0u8; 100];
        for expected in [seg(2, 0xA, 30), seg(2, 0xB, 30), seg(2, 0xD, 12)] {
            let (n, _) = viewer.recv_from(&mut got).expect("forwarded");
            assert_eq!(got[..n], expected[..]);
        }
        assert_eq!(relay.router.totals().dwell.count(), 3, "every forwarded datagram is timed");
    }

    /// One received batch from two sessions reaches both partners, a GSO run included, with the ECN
    /// codepoint of what was received.
    #[tokio::test]
    async fn a_batch_from_two_sessions_reaches_both_partners_with_ecn() {
        let (host_a, host_b) =
            (BatchUdp::bind(([127, 0, 0, 1], 0).into()), BatchUdp::bind(([127, 0, 0, 1], 0).into()));
        let (host_a, host_b) = (host_a.expect("bind"), host_b.expect("bind"));
        let viewer_a = BatchUdp::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let viewer_b = BatchUdp::bind(([127, 0, 0, 1], 0).into()).expect("bind");
        let addr = |s: &BatchUdp| s.local_addr().expect("addr");
        let router = Router::new(None);
        let _a = router
            .activate(Endpoint { tag: 1, addr: addr(&host_a) }, Endpoint { tag: 2, addr: addr(&viewer_a) });
        let _b = router
            .activate(Endpoint { tag: 3, addr: addr(&host_b) }, Endpoint { tag: 4, addr: addr(&viewer_b) });
        let relay = RelaySocket::bind("127.0.0.1:0".parse().expect("addr"), router).expect("bind");
        relay.udp().writable().await.expect("writable");
        let mut from_a = [seg(1, 0xA, 40), seg(1, 0xB, 40), seg(1, 0xC, 20)].concat();
        let mut from_b = seg(3, 0xE, 33);
        let (len_a, len_b) = (from_a.len(), from_b.len());
        let ecn = Some(EcnCodepoint::Ect0);
        let mut meta = [
            RecvMeta { addr: addr(&host_a), len: len_a, stride: 40, ecn, dst_ip: None },
            RecvMeta { addr: addr(&host_b), len: len_b, stride: 33, ecn, dst_ip: None },
        ];
        let (tagged, for_quinn) = relay.forward(
            &mut [IoSliceMut::new(&mut from_a), IoSliceMut::new(&mut from_b)],
            &mut meta,
            2,
            Instant::now(),
        );
        assert_eq!((tagged, for_quinn), (4, 0));
        async fn recv_all(s: &BatchUdp, want: usize) -> (Vec<Vec<u8>>, Vec<Option<EcnCodepoint>>) {
            let (mut got, mut ecns) = (Vec::new(), Vec::new());
            while got.len() < want {
                let mut buf = vec![0u8; 64 * 1024];
                let mut meta = [RecvMeta::default()];
                let n = tokio::time::timeout(
                    Duration::from_secs(5),
                    std::future::poll_fn(|cx| s.poll_recv(cx, &mut [IoSliceMut::new(&mut buf)], &mut meta)),
                )
                .await
                .expect("in time")
                .expect("recv");
                assert_eq!(n, 1);
                for (start, end) in segments(meta[0].len, meta[0].stride) {
                    got.push(buf[start..end].to_vec());
                    ecns.push(meta[0].ecn);
                }
            }
            (got, ecns)
        }
        let (got_a, ecn_a) = recv_all(&viewer_a, 3).await;
        assert_eq!(got_a, [seg(2, 0xA, 40), seg(2, 0xB, 40), seg(2, 0xC, 20)]);
        let (got_b, ecn_b) = recv_all(&viewer_b, 1).await;
        assert_eq!(got_b, [seg(4, 0xE, 33)]);
        assert!(ecn_a.iter().chain(&ecn_b).all(|e| *e == ecn), "ECN kept: {ecn_a:?} {ecn_b:?}");
    }
}
