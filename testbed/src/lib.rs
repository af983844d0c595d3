//! Private servers for Tether's tests and benchmarks, each in a temporary directory of its own and
//! stopped when dropped: [`sway::Sway`] (a headless wlroots compositor), [`portal::Portal`] (the
//! desktop portal, PipeWire and WirePlumber on a private D-Bus beside it, reaching sway through
//! [`wlproxy`]) and [`postgres::Postgres`] (a PostgreSQL cluster for relays sharing a database). The end-to-end tests and `tether-bench` share them, so a benchmark measures the same
//! desktop the tests prove things on. (The X server for tests is still in `tests/tests/common/xvfb.rs`,
//! the bench's in `bench/src/xsession.rs`: they differ in what they start beside it.)

pub mod portal;
pub mod postgres;
pub mod sway;
pub mod wlproxy;
