//! Caps on live control connections, per client address key ([`crate::limits::client_key`]) and in all,
//! checked at the QUIC accept before the relay does any handshake work: one socket can no longer hold
//! hundreds of connections (each ~150 KiB of QUIC state and buffers).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::limits::client_key;

#[derive(Debug, Default)]
pub struct ConnLimits {
    per_key: usize,
    total: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    live: usize,
    by_key: HashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    Address,
    Total,
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    key: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut inner = self.limits.lock();
        inner.live = inner.live.saturating_sub(1);
        if let Some(n) = inner.by_key.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                inner.by_key.remove(&self.key);
            }
        }
    }
}

impl ConnLimits {
    pub fn new(per_key: usize, total: usize) -> Arc<Self> {
        Arc::new(Self { per_key: per_key.max(1), total: total.max(1), inner: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for one more connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnSlot, Over> {
        let key = client_key(ip);
        let mut inner = self.lock();
        if inner.live >= self.total {
            return Err(Over::Total);
        }
        let n = inner.by_key.entry(key).or_default();
        if *n >= self.per_key {
            return Err(Over::Address);
        }
        *n += 1;
        inner.live += 1;
        Ok(ConnSlot { limits: self.clone(), key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_key_and_in_all_and_places_come_back() {
        let limits = ConnLimits::new(2, 3);
        let a: IpAddr = "2001:db8::1".parse().expect("addr");
        let a2: IpAddr = "2001:db8::2".parse().expect("addr");
        let b: IpAddr = "192.0.2.1".parse().expect("addr");
        let first = limits.admit(a).expect("room");
        let _second = limits.admit(a2).expect("room");
        assert_eq!(limits.admit(a).map(|_| ()), Err(Over::Address), "same /64");
        let _third = limits.admit(b).expect("room");
        assert_eq!(limits.admit("192.0.2.2".parse().expect("addr")).map(|_| ()), Err(Over::Total));
        drop(first);
        limits.admit(a).expect("a place came back");
    }
}
