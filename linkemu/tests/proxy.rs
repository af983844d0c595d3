//! The emulator as a UDP proxy between a real client socket and a real echo server on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use tether_linkemu::{Direction, Emulator, LinkConfig, Queue};
use tokio::net::UdpSocket;

/// A server that sends every datagram back to where it came from.
async fn echo_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        while let Ok((len, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..len], from).await;
        }
    });
    addr
}

async fn client(emu: &Emulator) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    socket.connect(emu.local_addr()).await.expect("connect");
    socket
}

/// Receive datagrams until `n` arrived (generous deadline: a loaded machine is slow, never wrong).
async fn receive(socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(20), socket.recv(&mut buf)).await {
            Ok(Ok(len)) => got.push(buf[..len].to_vec()),
            _ => break,
        }
    }
    got
}

/// Wait until the emulator has judged `n` packets from the client.
async fn judged(emu: &Emulator, n: u64) {
    for _ in 0..2000 {
        if emu.stats().up.packets >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the emulator saw {} of {n} packets", emu.stats().up.packets);
}

#[tokio::test]
async fn packets_cross_both_ways_in_order_and_are_counted() {
    let link = Direction::mbit(5.0).delay(Duration::from_millis(5)).queue(Queue::Bytes(1 << 20));
    let emu = Emulator::start(echo_server().await, LinkConfig::symmetric(link)).await.expect("start");
    let socket = client(&emu).await;
    for i in 0..50u32 {
        socket.send(&[i.to_le_bytes().as_slice(), &[0u8; 1000]].concat()).await.expect("send");
    }
    let got = receive(&socket, 50).await;
    let order: Vec<u32> = got.iter().map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]])).collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>(), "all back, in order");
    let stats = emu.stats();
    assert_eq!((stats.up.packets, stats.up.delivered, stats.down.delivered), (50, 50, 50));
    assert_eq!(stats.up.bytes, 50 * 1004);
    // 50 KB sent at once into 5 Mbit/s: the last ones queued (about 80 ms for the 50th).
    assert!(stats.up.queue_max > Duration::ZERO, "{stats:?}");
}

#[tokio::test]
async fn a_lossy_uplink_loses_and_a_full_queue_drops() {
    let server = echo_server().await;
    let all_lost = LinkConfig::asymmetric(Direction::default().loss(1.0), Direction::default());
    let emu = Emulator::start(server, all_lost).await.expect("start");
    let socket = client(&emu).await;
    for _ in 0..20 {
        socket.send(b"hello").await.expect("send");
    }
    // Nothing can come back; wait until every packet was judged, then check none arrived.
    judged(&emu, 20).await;
    assert_eq!(emu.stats().up.lost, 20);
    let mut buf = [0u8; 16];
    assert!(tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await.is_err());

    // A 2 KB queue at 1 Mbit/s takes two 1000-byte packets of a burst of 10; the rest are dropped.
    let tiny = Direction::mbit(1.0).queue(Queue::Bytes(2000));
    let emu =
        Emulator::start(server, LinkConfig::asymmetric(tiny, Direction::default())).await.expect("start");
    let socket = client(&emu).await;
    for _ in 0..10 {
        socket.send(&[0u8; 1000]).await.expect("send");
    }
    judged(&emu, 10).await;
    let stats = emu.stats();
    assert!(stats.up.overflowed >= 1, "{stats:?}");
    let got = receive(&socket, stats.up.delivered as usize).await;
    assert_eq!(got.len() as u64, stats.up.delivered, "what was not dropped came back");
    assert!(tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf)).await.is_err());
}

#[tokio::test]
async fn duplicates_arrive_twice_and_the_link_can_change_mid_run() {
    let dup = LinkConfig::asymmetric(Direction::default().duplicate(1.0), Direction::default()).seed(9);
    let emu = Emulator::start(echo_server().await, dup).await.expect("start");
    let socket = client(&emu).await;
    socket.send(b"once").await.expect("send");
    assert_eq!(receive(&socket, 2).await, vec![b"once".to_vec(), b"once".to_vec()]);

    let slower = Direction::mbit(0.5);
    emu.set(LinkConfig::symmetric(slower));
    assert_eq!(emu.config().map(|(up, _)| up.rate_bps), Some(Some(500_000)));
    socket.send(b"after").await.expect("send");
    assert_eq!(receive(&socket, 1).await, vec![b"after".to_vec()]);
}
