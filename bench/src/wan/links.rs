//! The links of the matrix: what the host's internet line looks like (up = host → relay, the screen's
//! direction). The relay and the viewer are on loopback; the round trip is the host line's.

use std::time::Duration;

use tether_linkemu::{Direction, LinkConfig, Queue, ETHERNET_UDP_PAYLOAD};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LinkName {
    /// 2 Mbit/s both ways, 40 ms round trip (an old DSL line, a weak mobile signal).
    Dsl2,
    /// 10 Mbit/s up, 50 down, 40 ms round trip, 0.5 % loss both ways (cable, busy Wi-Fi).
    Cable10,
    /// 50 Mbit/s both ways, 20 ms round trip (fibre).
    Fibre50,
    /// 10 Mbit/s both ways, 150 ms round trip (another continent).
    Far10,
}

impl LinkName {
    pub const ALL: [LinkName; 4] = [LinkName::Dsl2, LinkName::Cable10, LinkName::Fibre50, LinkName::Far10];

    pub fn name(self) -> &'static str {
        match self {
            LinkName::Dsl2 => "2/2 Mbit/s, 40 ms",
            LinkName::Cable10 => "10/50 Mbit/s, 40 ms, 0.5 % loss",
            LinkName::Fibre50 => "50/50 Mbit/s, 20 ms",
            LinkName::Far10 => "10/10 Mbit/s, 150 ms",
        }
    }

    /// (up, down) in Mbit/s, and the round trip.
    pub fn shape(self) -> (f64, f64, Duration) {
        let ms = Duration::from_millis;
        match self {
            LinkName::Dsl2 => (2.0, 2.0, ms(40)),
            LinkName::Cable10 => (10.0, 50.0, ms(40)),
            LinkName::Fibre50 => (50.0, 50.0, ms(20)),
            LinkName::Far10 => (10.0, 10.0, ms(150)),
        }
    }

    pub fn loss(self) -> f64 {
        match self {
            LinkName::Cable10 => 0.005,
            _ => 0.0,
        }
    }

    /// The emulator's configuration, with a bottleneck queue of `queue` each way (a router's buffer) and
    /// an internet path's MTU (1500-byte IP packets).
    pub fn config(self, queue: Duration) -> LinkConfig {
        let (up, down, rtt) = self.shape();
        let side = |mbit| {
            Direction::mbit(mbit)
                .delay(rtt / 2)
                .queue(Queue::Time(queue))
                .loss(self.loss())
                .mtu(ETHERNET_UDP_PAYLOAD)
        };
        LinkConfig::asymmetric(side(up), side(down)).seed(16)
    }
}
