//! The busiest processes (by processor and by memory) and the account the host runs as, from sysinfo.

use std::collections::BTreeMap;

use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind, Users};
use tether_shared::inventory::ProcessInfo;

/// How many of the busiest by processor, and by memory, are listed (one list; most are in both).
const TOP: usize = 10;

/// Sample processor use over sysinfo's minimum interval (blocking for it) and list the busiest.
pub(super) fn busiest(sys: &mut System, users: &Users) -> Vec<ProcessInfo> {
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory().with_user(UpdateKind::OnlyIfNotSet);
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
    sys.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    let all: Vec<ProcessInfo> = sys
        .processes()
        .iter()
        // Processes only: Linux lists every thread (user and kernel) as a task too.
        .filter(|(_, p)| p.thread_kind().is_none())
        .map(|(pid, p)| ProcessInfo {
            pid: pid.as_u32(),
            name: p.name().to_string_lossy().into_owned(),
            user: p
                .user_id()
                .and_then(|uid| users.get_user_by_id(uid))
                .map(|u| u.name().to_owned())
                .unwrap_or_default(),
            cpu_permille: (p.cpu_usage() * 10.0).round() as u32,
            memory: p.memory(),
        })
        .collect();
    let mut chosen = BTreeMap::new();
    for key in [|p: &ProcessInfo| u64::from(p.cpu_permille), |p: &ProcessInfo| p.memory] {
        let mut sorted: Vec<&ProcessInfo> = all.iter().collect();
        sorted.sort_by_key(|p| std::cmp::Reverse(key(p)));
        for p in sorted.into_iter().take(TOP) {
            chosen.insert(p.pid, p.clone());
        }
    }
    let mut out: Vec<ProcessInfo> = chosen.into_values().collect();
    out.sort_by_key(|p| (std::cmp::Reverse(p.cpu_permille), std::cmp::Reverse(p.memory)));
    out
}

/// The account this host runs as (the user whose desktop is shared).
pub(super) fn our_user(sys: &System, users: &Users) -> String {
    sysinfo::get_current_pid()
        .ok()
        .and_then(|pid| sys.process(pid))
        .and_then(|p| p.user_id())
        .and_then(|uid| users.get_user_by_id(uid))
        .map(|u| u.name().to_owned())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}
