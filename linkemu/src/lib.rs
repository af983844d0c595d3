//! A link emulator for tests and benchmarks: what a home DSL line, a hotel Wi-Fi or a mobile uplink does
//! to packets, on loopback, deterministically.
//!
//! [`Emulator`] is a UDP proxy: clients send to [`Emulator::local_addr`] instead of the real server
//! (the relay), and each direction goes through its own [`Pipe`] — a bottleneck of a given rate with a
//! drop-tail queue (in bytes or in time), then a one-way delay with jitter, random loss, reordering and
//! duplication. Uplink and downlink are configured apart ([`LinkConfig`]): the user's upload, which
//! carries the screen, is usually the narrow one. The link can change while traffic flows
//! ([`Emulator::set`]: cut the rate mid-session), and it counts what it did ([`LinkStats`]: queueing delay
//! p50/p95, drops).
//!
//! The decisions are a pure, seeded model ([`Pipe::handle_packet`] takes `now`), unit-tested without
//! sockets; the proxy is a thin shell that receives, asks the pipe, and delivers at the time it says.
//! netem would do this in the kernel, but it is not available on these machines (and needs root);
//! this runs anywhere the tests run.

mod config;
mod pipe;
mod proxy;
mod stats;

pub use config::{Direction, LinkConfig, Queue, ETHERNET_UDP_PAYLOAD};
pub use pipe::{Pipe, Verdict};
pub use proxy::Emulator;
pub use stats::{DirectionStats, LinkStats};
