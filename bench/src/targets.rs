//! Tether's codec targets, checked against a workload's measurements and printed as PASS / MISS lines.
//!
//! - typing ≤ 300 kbit/s and lossless; scrolling ≤ 1.5 Mbit/s and lossless;
//! - the first (full) frame ≤ 100 KB, and no later update over 64 KB;
//! - encoding ≤ 3 ms per frame while typing and ≤ 10 ms while scrolling (mean after the first frame).

use std::fmt::Write as _;

use crate::table::{kb, CodecResult, Fidelity};
use crate::tether_codec::{ms, Detail};
use crate::workloads::Workload;

const FIRST_FRAME_KB: f64 = 100.0;
const UPDATE_KB: f64 = 64.0;

/// One checked target.
#[derive(Debug, Clone)]
pub struct Check {
    pub pass: bool,
    pub text: String,
}

/// The targets that apply to this workload.
pub fn check(workload: Workload, result: &CodecResult, detail: &Detail) -> Vec<Check> {
    let mut checks = Vec::new();
    let lossless = result.fidelity == Fidelity::Lossless;
    let rate = result.kbit_per_s();
    let mut limit_rate = |max: f64| {
        checks.push(Check {
            pass: rate <= max && lossless,
            text: format!(
                "{}: {rate:.0} kbit/s (target ≤ {max:.0}), {}",
                workload.name(),
                if lossless { "lossless" } else { "NOT lossless" },
            ),
        });
    };
    match workload {
        Workload::Typing => limit_rate(300.0),
        Workload::Scrolling => limit_rate(1500.0),
        Workload::Dragging => limit_rate(400.0), // issue 17
        _ => {}
    }
    let first = kb(result.first_bytes());
    checks.push(Check {
        pass: first <= FIRST_FRAME_KB,
        text: format!("{}: first full frame {first:.1} KB (target ≤ {FIRST_FRAME_KB:.0})", workload.name()),
    });
    let largest = kb(result.max_rest_bytes());
    let over = result.updates.iter().skip(1).filter(|&&b| kb(b) > UPDATE_KB).count();
    checks.push(Check {
        pass: largest <= UPDATE_KB,
        text: format!(
            "{}: largest later update {largest:.1} KB, {over} of {} over {UPDATE_KB:.0} KB",
            workload.name(),
            result.updates.len().saturating_sub(1),
        ),
    });
    let steady = ms(detail.steady_mean());
    let mut limit_time = |max: f64| {
        checks.push(Check {
            pass: steady <= max,
            text: format!(
                "{}: encode {steady:.2} ms/frame mean after the first (target ≤ {max:.0})",
                workload.name()
            ),
        });
    };
    match workload {
        Workload::Typing => limit_time(3.0),
        Workload::Scrolling => limit_time(10.0),
        _ => {}
    }
    checks
}

/// The checks as `PASS …` / `MISS …` lines.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(out, "- {} {}", if c.pass { "PASS" } else { "MISS" }, c.text);
    }
    out
}
