//! The routing table of live sessions and the forwarding of tagged packets.
//!
//! When both sides of a pairing have confirmed, the relay installs two routes: host tag → viewer, and
//! viewer tag → host. A tagged packet is forwarded only if its tag is known *and* it comes from the address
//! of the control connection that tag was handed to; anything else is dropped without reply (no
//! amplification, no open relay). The inner packet is end-to-end encrypted QUIC: the relay copies it
//! under the partner's tag and cannot read or forge it.
//!
//! Each direction of a session has a token bucket ([`crate::bandwidth`]): packets over the per-session cap
//! are dropped, not queued.
//!
//! **Workers.** The relay forwards on several sockets sharing its port (one per worker, see
//! [`crate::server`]); the kernel steers each sender's datagrams to one of them. So that workers share
//! nothing on the hot path, every worker reads its own copy of the routing table and counts into its own
//! [`Totals`]: a [`Router`] handle is one worker's view ([`Router::worker`]). Installing and removing a
//! session's routes (rare) writes every copy. A route itself is shared (`Arc`), so its byte counter and
//! bandwidth cap are the session's whichever worker its packets reach — in practice one per direction,
//! since a sender's datagrams always reach the same socket.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use rand::Rng;
use tether_shared::packet;
use tether_shared::relay_proto::Role;

use crate::bandwidth::Bucket;

/// A hook on the forwarding path (tests and diagnostics). The default methods do nothing.
pub trait Tap: Send + Sync + 'static {
    /// Every forwarded end-to-end packet (the inner QUIC bytes), which the tap may alter in place.
    fn forwarded(&self, _from: Role, _inner: &mut [u8]) {}
    /// Every PAKE message the relay passes on, which the tap may replace.
    fn pake(&self, _from: Role, _msg: &mut Vec<u8>) {}
}

#[derive(Debug)]
struct Route {
    /// Where packets with this tag must come from.
    src: SocketAddr,
    from: Role,
    to_addr: SocketAddr,
    to_tag: u64,
    bytes: Arc<AtomicU64>,
    /// The per-session cap of this direction (`None`: uncapped).
    bucket: Option<Mutex<Bucket>>,
}

/// One worker's copy of the routing table.
type Table = RwLock<HashMap<u64, Arc<Route>>>;

/// Bytes forwarded in each direction of one session.
#[derive(Debug, Default)]
pub struct Traffic {
    pub host_to_viewer: Arc<AtomicU64>,
    pub viewer_to_host: Arc<AtomicU64>,
}

/// Relay-wide forwarding counters, for metrics.
#[derive(Debug, Default)]
pub struct Totals {
    pub host_to_viewer: AtomicU64,
    pub viewer_to_host: AtomicU64,
    pub over_cap: AtomicU64,
    /// Time each forwarded datagram spent inside the relay (receive call → send call).
    pub dwell: crate::metrics::Histogram,
}

#[derive(Clone)]
pub struct Router {
    /// One table per worker, all holding the same routes.
    tables: Arc<[Table]>,
    /// One set of counters per worker.
    all_totals: Arc<[Totals]>,
    /// The worker this handle forwards for.
    worker: usize,
    tap: Option<Arc<dyn Tap>>,
    /// Bytes per second per direction of a session; 0: no cap.
    cap: u64,
}

impl Default for Router {
    fn default() -> Self {
        Self::new(None)
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Router(worker {} of {}, {} routes)", self.worker, self.tables.len(), self.len())
    }
}

/// One end of a session as the relay knows it.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub tag: u64,
    pub addr: SocketAddr,
}

/// How long a finished session's routes stay, so packets already on their way — the end-to-end
/// CONNECTION_CLOSE above all — still reach the other side when a client's control connection closes
/// first. Without it the peer learns of the end only by its idle timeout.
pub const ROUTE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Removes a session's routes when dropped — after [`ROUTE_LINGER`] when inside a tokio runtime.
#[derive(Debug)]
pub struct RouteGuard {
    router: Router,
    tags: [u64; 2],
    pub traffic: Traffic,
}

impl RouteGuard {
    fn remove(router: &Router, tags: [u64; 2]) {
        for table in router.tables.iter() {
            if let Ok(mut routes) = table.write() {
                for tag in tags {
                    routes.remove(&tag);
                }
            }
        }
    }
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        let (router, tags) = (self.router.clone(), self.tags);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(ROUTE_LINGER).await;
                    Self::remove(&router, tags);
                });
            }
            Err(_) => Self::remove(&router, tags),
        }
    }
}

impl Router {
    pub fn new(tap: Option<Arc<dyn Tap>>) -> Self {
        Self::with_cap(tap, 0)
    }

    /// A router whose sessions may forward at most `cap` bytes per second each way (0: no cap).
    pub fn with_cap(tap: Option<Arc<dyn Tap>>, cap: u64) -> Self {
        Self::with_workers(tap, cap, 1)
    }

    /// The same for `workers` forwarding workers (at least one); this handle is worker 0's.
    pub fn with_workers(tap: Option<Arc<dyn Tap>>, cap: u64, workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            tables: (0..workers).map(|_| Table::default()).collect(),
            all_totals: (0..workers).map(|_| Totals::default()).collect(),
            worker: 0,
            tap,
            cap,
        }
    }

    /// Worker `i`'s handle (the same routes; its own table and counters). `i` wraps around.
    pub fn worker(&self, i: usize) -> Self {
        Self { worker: i % self.tables.len(), ..self.clone() }
    }

    /// How many workers forward.
    pub fn workers(&self) -> usize {
        self.tables.len()
    }

    /// This worker's counters.
    pub fn totals(&self) -> &Totals {
        &self.all_totals[self.worker]
    }

    /// Every worker's counters, by worker.
    pub fn all_totals(&self) -> &[Totals] {
        &self.all_totals
    }

    fn bucket(&self) -> Option<Mutex<Bucket>> {
        (self.cap > 0).then(|| Mutex::new(Bucket::new(self.cap, Instant::now())))
    }

    /// Number of routes (two per live session).
    pub fn len(&self) -> usize {
        self.tables[0].read().map(|r| r.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Install both directions of a session.
    pub fn activate(&self, host: Endpoint, viewer: Endpoint) -> RouteGuard {
        let traffic = Traffic::default();
        let h2v = Arc::new(Route {
            src: host.addr,
            from: Role::Host,
            to_addr: viewer.addr,
            to_tag: viewer.tag,
            bytes: traffic.host_to_viewer.clone(),
            bucket: self.bucket(),
        });
        let v2h = Arc::new(Route {
            src: viewer.addr,
            from: Role::Viewer,
            to_addr: host.addr,
            to_tag: host.tag,
            bytes: traffic.viewer_to_host.clone(),
            bucket: self.bucket(),
        });
        for table in self.tables.iter() {
            if let Ok(mut routes) = table.write() {
                routes.insert(host.tag, h2v.clone());
                routes.insert(viewer.tag, v2h.clone());
            }
        }
        RouteGuard { router: self.clone(), tags: [host.tag, viewer.tag], traffic }
    }

    /// Whether a tag is in use (tags must be unique).
    pub fn contains(&self, tag: u64) -> bool {
        self.tables[0].read().map(|r| r.contains_key(&tag)).unwrap_or(true)
    }

    /// Two fresh, distinct, nonzero tags not in use, for the two ends of a new session.
    pub fn fresh_tags(&self) -> (u64, u64) {
        let mut rng = rand::rng();
        let mut fresh = |other: u64| loop {
            let tag: u64 = rng.random();
            if tag != 0 && tag != other && !self.contains(tag) {
                return tag;
            }
        };
        let host = fresh(0);
        (host, fresh(host))
    }

    /// Rewrite a tagged datagram for its partner. Returns where to send it, or `None` to drop it.
    pub fn route(&self, src: SocketAddr, datagram: &mut [u8]) -> Option<SocketAddr> {
        let tag = packet::tag_of(datagram)?;
        let (to_addr, to_tag, from) = {
            let routes = self.tables[self.worker].read().ok()?;
            let route = routes.get(&tag)?;
            if route.src != src {
                return None;
            }
            let len = datagram.len() as u64;
            if let Some(bucket) = &route.bucket {
                let mut bucket = bucket.lock().unwrap_or_else(|p| p.into_inner());
                if !bucket.take(Instant::now(), len) {
                    self.totals().over_cap.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
            route.bytes.fetch_add(len, Ordering::Relaxed);
            let total = match route.from {
                Role::Host => &self.totals().host_to_viewer,
                Role::Viewer => &self.totals().viewer_to_host,
            };
            total.fetch_add(len, Ordering::Relaxed);
            (route.to_addr, route.to_tag, route.from)
        };
        packet::write_header(datagram, to_tag);
        if let Some(tap) = &self.tap {
            tap.forwarded(from, &mut datagram[packet::HEADER_LEN..]);
        }
        Some(to_addr)
    }

    pub fn tap(&self) -> Option<&Arc<dyn Tap>> {
        self.tap.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn forwards_only_known_tags_from_their_own_address() {
        let router = Router::new(None);
        let guard =
            router.activate(Endpoint { tag: 1, addr: addr(1000) }, Endpoint { tag: 2, addr: addr(2000) });
        let mut pkt = vec![0u8; 20];
        packet::write_header(&mut pkt, 1);
        assert_eq!(router.route(addr(1000), &mut pkt), Some(addr(2000)));
        assert_eq!(packet::tag_of(&pkt), Some(2), "rewritten for the viewer");
        packet::write_header(&mut pkt, 1);
        assert_eq!(router.route(addr(3000), &mut pkt), None, "spoofed source");
        packet::write_header(&mut pkt, 9);
        assert_eq!(router.route(addr(1000), &mut pkt), None, "unknown tag");
        assert_eq!(guard.traffic.host_to_viewer.load(Ordering::Relaxed), 20);
        drop(guard);
        packet::write_header(&mut pkt, 1);
        assert_eq!(router.route(addr(1000), &mut pkt), None, "route removed with its guard");
        assert!(router.is_empty());
    }

    #[test]
    fn fresh_tags_are_nonzero_distinct_and_unused() {
        let router = Router::new(None);
        let (a, b) = router.fresh_tags();
        assert!(a != 0 && b != 0 && a != b);
        let _guard =
            router.activate(Endpoint { tag: a, addr: addr(1000) }, Endpoint { tag: b, addr: addr(2000) });
        for _ in 0..100 {
            let (c, d) = router.fresh_tags();
            assert!(c != 0 && d != 0 && c != d);
            assert!(![a, b].contains(&c) && ![a, b].contains(&d), "tags in use are not handed out again");
        }
    }

    #[test]
    fn packets_over_the_cap_are_dropped() {
        let router = Router::with_cap(None, 1000);
        let _guard =
            router.activate(Endpoint { tag: 1, addr: addr(1000) }, Endpoint { tag: 2, addr: addr(2000) });
        let mut passed = 0;
        for _ in 0..100 {
            let mut pkt = vec![0u8; 1200];
            packet::write_header(&mut pkt, 1);
            if router.route(addr(1000), &mut pkt).is_some() {
                passed += 1;
            }
        }
        assert!((16..30).contains(&passed), "the burst passes, then the cap holds: {passed}");
        assert!(router.totals().over_cap.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn every_worker_forwards_every_session_and_counts_on_its_own() {
        let router = Router::with_workers(None, 0, 2);
        let (w0, w1) = (router.worker(0), router.worker(1));
        let guard =
            router.activate(Endpoint { tag: 1, addr: addr(1000) }, Endpoint { tag: 2, addr: addr(2000) });
        let mut pkt = vec![0u8; 20];
        packet::write_header(&mut pkt, 1);
        assert_eq!(w1.route(addr(1000), &mut pkt), Some(addr(2000)), "worker 1 knows the session");
        packet::write_header(&mut pkt, 2);
        assert_eq!(w0.route(addr(2000), &mut pkt), Some(addr(1000)), "worker 0 too");
        let bytes = |w: &Router| w.totals().host_to_viewer.load(Ordering::Relaxed);
        assert_eq!((bytes(&w0), bytes(&w1)), (0, 20), "each worker counts what it forwarded");
        assert_eq!(guard.traffic.host_to_viewer.load(Ordering::Relaxed), 20, "the session counts it all");
        drop(guard);
        packet::write_header(&mut pkt, 1);
        assert_eq!(w1.route(addr(1000), &mut pkt), None, "removed from every worker's table");
        assert!(w1.is_empty());
    }
}
