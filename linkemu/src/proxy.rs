//! The emulator's shell: a UDP proxy on loopback that asks each direction's [`Pipe`] what becomes of a
//! packet and delivers it when the pipe says.
//!
//! Each client address gets its own socket towards the server (as a NAT would), so the server sees one
//! peer per client, and replies find their way back. One scheduler task holds every packet in flight in
//! a heap ordered by delivery time, so a queue of thousands of packets costs one timer.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::LinkConfig;
use crate::pipe::{Pipe, Verdict};
use crate::stats::LinkStats;

/// Largest datagram carried.
const MAX_DATAGRAM: usize = 65_536;

/// Both directions' models.
#[derive(Debug)]
struct Pipes {
    up: Pipe,
    down: Pipe,
}

/// A running emulator. Dropping it stops it (packets in flight are dropped).
#[derive(Debug)]
pub struct Emulator {
    local: SocketAddr,
    pipes: Arc<Mutex<Pipes>>,
    tasks: Vec<JoinHandle<()>>,
    clients: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Where a delivered packet goes.
#[derive(Debug)]
enum Out {
    /// Towards the server, on the client's own socket.
    Up(Arc<UdpSocket>),
    /// Back to the client, from the listening socket.
    Down(SocketAddr),
}

#[derive(Debug)]
struct Scheduled {
    at: Instant,
    seq: u64,
    data: Vec<u8>,
    out: Out,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl Emulator {
    /// Listen on a free loopback port and forward to `server` through a link like `cfg`.
    pub async fn start(server: SocketAddr, cfg: LinkConfig) -> std::io::Result<Self> {
        let bind: SocketAddr = if server.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" }
            .parse()
            .map_err(std::io::Error::other)?;
        let listen = Arc::new(UdpSocket::bind(bind).await?);
        let local = listen.local_addr()?;
        let pipes = Arc::new(Mutex::new(Pipes {
            up: Pipe::new(cfg.up, cfg.seed),
            down: Pipe::new(cfg.down, cfg.seed.wrapping_add(1)),
        }));
        let (schedule, queue) = mpsc::unbounded_channel();
        let clients = Arc::new(Mutex::new(Vec::new()));
        let scheduler = tokio::spawn(deliver(queue, listen.clone()));
        let receiver =
            tokio::spawn(from_clients(listen, server, bind, pipes.clone(), schedule, clients.clone()));
        Ok(Self { local, pipes, tasks: vec![scheduler, receiver], clients })
    }

    /// Where clients send instead of the server.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Change the link from the next packet on (e.g. cut the rate mid-session). The seed stays.
    pub fn set(&self, cfg: LinkConfig) {
        if let Ok(mut pipes) = self.pipes.lock() {
            pipes.up.set(cfg.up);
            pipes.down.set(cfg.down);
        }
    }

    /// The link as configured now.
    pub fn config(&self) -> Option<(crate::Direction, crate::Direction)> {
        let pipes = self.pipes.lock().ok()?;
        Some((pipes.up.config(), pipes.down.config()))
    }

    /// Count afresh from now on (see [`Pipe::reset_stats`]).
    pub fn reset_stats(&self) {
        if let Ok(mut pipes) = self.pipes.lock() {
            pipes.up.reset_stats();
            pipes.down.reset_stats();
        }
    }

    /// What the link did so far (since the start or the last [`Self::reset_stats`]).
    pub fn stats(&self) -> LinkStats {
        match self.pipes.lock() {
            Ok(pipes) => LinkStats { up: pipes.up.stats(), down: pipes.down.stats() },
            Err(_) => LinkStats::default(),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Ok(clients) = self.clients.lock() {
            for task in clients.iter() {
                task.abort();
            }
        }
    }
}

/// Ask `pipe` about a packet and hand it to the scheduler if it arrives.
fn offer(
    pipes: &Mutex<Pipes>,
    up: bool,
    data: &[u8],
    out: impl Fn() -> Out,
    seq: &mut u64,
    schedule: &mpsc::UnboundedSender<Scheduled>,
) -> bool {
    let verdict = match pipes.lock() {
        Ok(mut pipes) => {
            let pipe = if up { &mut pipes.up } else { &mut pipes.down };
            pipe.handle_packet(Instant::now(), data.len())
        }
        Err(_) => return false,
    };
    if let Verdict::Deliver { at, copies } = verdict {
        for _ in 0..copies {
            *seq += 1;
            if schedule.send(Scheduled { at, seq: *seq, data: data.to_vec(), out: out() }).is_err() {
                return false;
            }
        }
    }
    true
}

/// Client → server: one socket per client towards the server, and a task carrying its replies back.
async fn from_clients(
    listen: Arc<UdpSocket>,
    server: SocketAddr,
    bind: SocketAddr,
    pipes: Arc<Mutex<Pipes>>,
    schedule: mpsc::UnboundedSender<Scheduled>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let mut toward_server: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    // Sequence numbers keep packets due at the same instant in the order they came; up and down each
    // count in their own half so they never collide.
    let mut seq = 0u64;
    loop {
        let (len, client) = match listen.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                // ICMP errors from an earlier send surface here on some systems: not fatal.
                tracing::debug!("emulator: {e}");
                continue;
            }
        };
        let socket = match toward_server.get(&client) {
            Some(socket) => socket.clone(),
            None => {
                let socket = match open_toward(bind, server).await {
                    Ok(socket) => socket,
                    Err(e) => {
                        tracing::warn!("emulator: no socket toward {server}: {e}");
                        continue;
                    }
                };
                let back = tokio::spawn(from_server(socket.clone(), client, pipes.clone(), schedule.clone()));
                if let Ok(mut tasks) = tasks.lock() {
                    tasks.push(back);
                }
                toward_server.insert(client, socket.clone());
                socket
            }
        };
        if !offer(&pipes, true, &buf[..len], || Out::Up(socket.clone()), &mut seq, &schedule) {
            return;
        }
    }
}

async fn open_toward(bind: SocketAddr, server: SocketAddr) -> std::io::Result<Arc<UdpSocket>> {
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    Ok(Arc::new(socket))
}

/// Server → one client.
async fn from_server(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    pipes: Arc<Mutex<Pipes>>,
    schedule: mpsc::UnboundedSender<Scheduled>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut seq = 1u64 << 63;
    loop {
        let len = match socket.recv(&mut buf).await {
            Ok(len) => len,
            Err(e) => {
                tracing::debug!("emulator: {e}");
                continue;
            }
        };
        if !offer(&pipes, false, &buf[..len], || Out::Down(client), &mut seq, &schedule) {
            return;
        }
    }
}

/// Send every packet at its time.
async fn deliver(mut queue: mpsc::UnboundedReceiver<Scheduled>, listen: Arc<UdpSocket>) {
    let mut heap: BinaryHeap<Reverse<Scheduled>> = BinaryHeap::new();
    loop {
        let next = heap.peek().map(|Reverse(p)| tokio::time::Instant::from_std(p.at));
        tokio::select! {
            got = queue.recv() => match got {
                Some(packet) => heap.push(Reverse(packet)),
                None => return,
            },
            () = sleep_until(next) => {
                let now = Instant::now();
                while heap.peek().is_some_and(|Reverse(p)| p.at <= now) {
                    let Some(Reverse(packet)) = heap.pop() else { break };
                    let sent = match &packet.out {
                        Out::Up(socket) => socket.send(&packet.data).await,
                        Out::Down(client) => listen.send_to(&packet.data, client).await,
                    };
                    if let Err(e) = sent {
                        tracing::debug!("emulator: {e}");
                    }
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
