//! Which CPUs the relay and the load generator run on (`--pin`).
//!
//! On a small machine the load generator (two QUIC endpoints with TLS per session, timers every 10 ms)
//! competes with the relay for the same cores, and the tail latency then measures the scheduler more
//! than the relay. Pinning them to disjoint CPUs keeps the comparison honest: the direct baseline runs
//! with the same generator on the same CPUs, so the difference is what the relay adds when it has a core
//! of its own — as it would on a server, where the clients are elsewhere.

use std::fmt;
use std::str::FromStr;

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// The `--pin` choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// No pinning: everything may run anywhere.
    Off,
    /// With at least two CPUs allowed: the relay on the last, the generator on the others.
    Auto,
    /// Explicit CPU lists, `RELAY:LOAD`, e.g. `1:0` or `2,3:0,1`.
    Cpus { relay: Vec<usize>, load: Vec<usize> },
}

impl FromStr for Pin {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let list = |l: &str| -> Result<Vec<usize>, String> {
            l.split(',').map(|c| c.trim().parse().map_err(|_| format!("not a CPU number: {c:?}"))).collect()
        };
        match s {
            "off" => Ok(Pin::Off),
            "auto" => Ok(Pin::Auto),
            _ => {
                let (relay, load) = s.split_once(':').ok_or("expected off, auto or RELAY_CPUS:LOAD_CPUS")?;
                let (relay, load) = (list(relay)?, list(load)?);
                if relay.iter().any(|c| load.contains(c)) {
                    return Err("the relay's and the generator's CPUs must differ".into());
                }
                Ok(Pin::Cpus { relay, load })
            }
        }
    }
}

/// The CPUs chosen: (relay, load generator), or `None` for no pinning.
pub type Split = Option<(Vec<usize>, Vec<usize>)>;

impl Pin {
    /// Resolve against the CPUs this process may use (`allowed`, ascending).
    pub fn resolve(&self, allowed: &[usize]) -> Split {
        match self {
            Pin::Off => None,
            Pin::Auto if allowed.len() < 2 => None,
            Pin::Auto => {
                let (load, relay) = allowed.split_at(allowed.len() - 1);
                Some((relay.to_vec(), load.to_vec()))
            }
            Pin::Cpus { relay, load } => Some((relay.clone(), load.clone())),
        }
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pin::Off => f.write_str("off"),
            Pin::Auto => f.write_str("auto"),
            Pin::Cpus { relay, load } => write!(f, "{relay:?}:{load:?}"),
        }
    }
}

/// The CPUs the calling thread may run on.
pub fn allowed() -> std::io::Result<Vec<usize>> {
    let set = sched_getaffinity(None)?;
    Ok((0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

/// Restrict the calling thread (and the threads and processes it starts from now on) to `cpus`.
pub fn current_thread(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = CpuSet::new();
    for &c in cpus {
        if c >= CpuSet::MAX_CPU {
            return Err(std::io::Error::other(format!("CPU {c} out of range")));
        }
        set.set(c);
    }
    Ok(sched_setaffinity(None, &set)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_choices_parse_and_resolve() {
        assert_eq!("off".parse::<Pin>(), Ok(Pin::Off));
        assert_eq!("1:0".parse::<Pin>(), Ok(Pin::Cpus { relay: vec![1], load: vec![0] }));
        assert_eq!("2,3:0,1".parse::<Pin>(), Ok(Pin::Cpus { relay: vec![2, 3], load: vec![0, 1] }));
        assert!("1:1".parse::<Pin>().is_err());
        assert!("x".parse::<Pin>().is_err());
        assert_eq!(Pin::Auto.resolve(&[0, 1]), Some((vec![1], vec![0])));
        assert_eq!(Pin::Auto.resolve(&[0, 1, 2, 3]), Some((vec![3], vec![0, 1, 2])));
        assert_eq!(Pin::Auto.resolve(&[0]), None);
        assert_eq!(Pin::Off.resolve(&[0, 1]), None);
    }
}
