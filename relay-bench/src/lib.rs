//! Load benchmark of the relay: [`relay_proc`] runs the real `tether-relay` binary as a child process and
//! reads its CPU time and resident memory from `/proc`; [`pairs`] pairs hosts and viewers through it with
//! the real client stack (PAKE, end-to-end QUIC) and streams timestamped messages both ways, measuring the
//! one-way latency of each; [`flood`] loads the forwarding path without QUIC. [`pin`] keeps the relay and the load generator on different CPUs.

pub mod flood;
pub mod pairs;
pub mod pin;
pub mod relay_proc;
