//! A cheap load for the relay's forwarding path: sessions paired with the real client stack, then
//! tagged datagrams sent through each client's own socket without QUIC — no encryption, no congestion
//! control, one `sendmsg` per batch — so that on a small machine the relay, not the load generator, is
//! what runs out of CPU.
//!
//! The batch size matters to the relay as much as to the generator: a batch of several datagrams leaves
//! as one GSO send and reaches the relay (on loopback) as one GRO buffer, which the relay forwards with
//! one receive and one send; single datagrams cost the relay a receive slot and a send each — the worst
//! case, many small senders.
//!
//! Each client's datagrams come from the address of its control connection, carry its session tag and
//! are paced at the rate asked for; the relay forwards them as any end-to-end packet. Their content
//! starts with a zero byte (the QUIC "fixed bit" unset), so the partner's QUIC endpoint discards each
//! on arrival without answering. The relay's own counters (`/metrics`) say how much it forwarded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quinn::udp::Transmit;
use quinn::AsyncUdpSocket;
use tether_shared::net::pairing::Session;
use tether_shared::net::socket::TaggedSocket;
use tokio_util::sync::CancellationToken;

/// Size of each datagram's content (the relay adds nothing; the tag header comes on top).
pub const DATAGRAM: usize = 1200;

/// What the senders could not hand to the kernel (the socket's buffer was full).
#[derive(Debug, Default)]
pub struct Dropped(AtomicU64);

impl Dropped {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Both sides of every session send at `bits_per_sec` in all (shared evenly), `batch` datagrams per
/// send, until `stop`.
pub fn start(
    sessions: &[(Session, Session)],
    bits_per_sec: f64,
    batch: usize,
    stop: &CancellationToken,
    dropped: &Arc<Dropped>,
) {
    let batch = batch.max(1);
    let senders = 2 * sessions.len().max(1);
    let per_sender = bits_per_sec / senders as f64;
    if per_sender <= 0.0 {
        return;
    }
    let batch_bits = (batch * DATAGRAM * 8) as f64;
    let interval = Duration::from_secs_f64(batch_bits / per_sender);
    for (i, side) in sessions.iter().flat_map(|(h, v)| [h, v]).enumerate() {
        let socket = side.link.socket().clone();
        // Spread over the interval, as independent senders would be.
        let phase = interval.mul_f64(i as f64 / senders as f64);
        tokio::spawn(send(socket, batch, interval, phase, stop.clone(), dropped.clone()));
    }
}

async fn send(
    socket: Arc<TaggedSocket>,
    batch: usize,
    interval: Duration,
    phase: Duration,
    stop: CancellationToken,
    dropped: Arc<Dropped>,
) {
    let contents = vec![0u8; batch * DATAGRAM];
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let transmit = Transmit {
        destination: socket.virtual_peer(),
        ecn: None,
        contents: &contents,
        segment_size: (batch > 1).then_some(DATAGRAM),
        src_ip: None,
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        if socket.try_send(&transmit).is_err() {
            dropped.0.fetch_add(batch as u64, Ordering::Relaxed);
        }
    }
}
