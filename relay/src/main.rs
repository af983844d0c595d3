//! `tether-relay`: command line and configuration only; the relay itself is the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tether_relay::{RelayConfig, Server};

/// Pairs Tether hosts and viewers by one-time code and forwards their end-to-end encrypted traffic.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// UDP address to listen on.
    #[arg(long, default_value = "0.0.0.0:7700")]
    listen: SocketAddr,
    /// Directory for the relay's certificate.
    #[arg(long, default_value = "tether-relay-data")]
    data_dir: PathBuf,
    /// How long a one-time code stays valid, in seconds.
    #[arg(long, default_value_t = 600)]
    code_ttl_secs: u64,
    /// Idle timeout of client connections, in seconds.
    #[arg(long, default_value_t = 30)]
    idle_timeout_secs: u64,
    /// Claims allowed per minute from one IP address.
    #[arg(long, default_value_t = 20)]
    claims_per_minute: u32,
    /// Claims allowed at once from one IP address before the per-minute rate applies.
    #[arg(long, default_value_t = 10)]
    claim_burst: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let mut cfg = RelayConfig::new(cli.listen, cli.data_dir);
    cfg.code_ttl = Duration::from_secs(cli.code_ttl_secs);
    cfg.idle_timeout = Duration::from_secs(cli.idle_timeout_secs);
    cfg.claims_per_minute = cli.claims_per_minute;
    cfg.claim_burst = cli.claim_burst;
    let relay = Server::spawn(cfg).context("starting the relay")?;
    // Machine-readable lines for scripts, each on its own line of stdout.
    println!("listening {}", relay.local_addr());
    println!("fingerprint {}", relay.fingerprint());
    eprintln!(
        "Clients connect with: --relay {} --relay-fingerprint {}",
        relay.local_addr(),
        relay.fingerprint()
    );
    shutdown_signal().await;
    eprintln!("shutting down");
    relay.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
