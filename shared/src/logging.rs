//! Logging setup shared by the three programs: structured logs to stderr (stdout carries the
//! machine-readable lines), `RUST_LOG` overrides the default level, colours only on a terminal.

/// Install the global subscriber. Call once, first thing in `main`.
pub fn init(default_level: &str) {
    // enigo logs an error for every backend it was kept from (a sink connects to one on purpose) and warns
    // about modifiers a keyboard layout leaves unmapped — what really fails comes back to us as an error,
    // said in our words; zbus warns that each desktop-portal request object it watches has no properties
    // (they never do): silent, and zbus at its `error` level, unless RUST_LOG asks.
    let default = format!("{default_level},{QUIET}");
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default.into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Crates whose warnings are noise to the people reading ours.
const QUIET: &str = "enigo=off,zbus=error";
