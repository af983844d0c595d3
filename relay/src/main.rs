//! `tether-relay`: command line and configuration only; the relay itself is the library.
//!
//! With no subcommand it runs the relay (stdout: `listening <addr>`, `fingerprint <hex>`, and
//! `admin <addr>` when the admin listener is on). Settings come from the defaults, then the TOML file
//! (`--config`), then the flags. Subcommands manage the data directory of a relay (running or not):
//! `user add|reissue|list|revoke`, `audit list|export`, and `client-config` prints the settings file of
//! this relay's hosts and viewers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use tether_relay::audit::CSV_HEADER;
use tether_relay::config_file;
use tether_relay::store::Store;
use tether_relay::{RelayConfig, Server};
use tether_shared::client_settings::{ClientSettings, OtherRelay};
use tether_shared::session_proto::Permissions;
use tether_shared::tls::Fingerprint;
use tether_shared::token::RelayId;

/// Pairs Tether hosts and viewers by one-time code and forwards their end-to-end encrypted traffic.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// TOML configuration file (see deploy/tether-relay.example.toml); flags override it.
    #[arg(long, global = true, env = "TETHER_RELAY_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the certificate, the accounts and the audit log [default: tether-relay-data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// UDP address to listen on [default: 0.0.0.0:7700].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// How long a one-time code stays valid, in seconds [default: 600].
    #[arg(long)]
    code_ttl_secs: Option<u64>,
    /// Idle timeout of client connections, in seconds [default: 30].
    #[arg(long)]
    idle_timeout_secs: Option<u64>,
    /// Claims allowed per minute from one IP address [default: 20].
    #[arg(long)]
    claims_per_minute: Option<u32>,
    /// Claims allowed at once from one IP address before the per-minute rate applies [default: 10].
    #[arg(long)]
    claim_burst: Option<u32>,
    /// Only technicians with an account token may claim codes.
    #[arg(long)]
    require_technician_auth: bool,
    /// Organization name shown to hosts next to a verified technician's account.
    #[arg(long)]
    organization: Option<String>,
    /// TCP address for /metrics and /healthz (off unless set).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Forwarding workers: sockets sharing the UDP port, each forwarding on its own core
    /// [default: one per available core].
    #[arg(long)]
    workers: Option<usize>,
    /// Where clients reach this relay (HOST:PORT), for the organization's other relays to send viewers
    /// here when they share a database [default: the listening address, if it names one].
    #[arg(long, value_parser = parse_public_address)]
    public_address: Option<String>,
    /// On SIGTERM, seconds live sessions may continue before they are closed [default: 30].
    #[arg(long)]
    drain_deadline_secs: Option<u64>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Technician accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// The audit log (metadata of every session, never content).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the settings file hosts and viewers need to use this relay with no flags: install it as
    /// /etc/tether/host.toml on your organization's machines (with the tether-host / tether-viewer package).
    ClientConfig {
        /// How clients reach this relay, HOST:PORT (its public name or address).
        #[arg(long)]
        address: String,
        /// The name the host window shows ("Help from …") [default: `organization` of the relay's config].
        #[arg(long)]
        organization: Option<String>,
        /// What the host's question ticks by default, e.g. `view,control` (the user still decides).
        #[arg(long)]
        permissions: Option<String>,
        /// Another relay of the organization (sharing this relay's database), as HOST:PORT, or
        /// HOST:PORT@FINGERPRINT for one with a self-signed certificate (its `client-config` prints its
        /// fingerprint). Repeat for each; hosts make their codes on whichever relay answers first.
        #[arg(long = "other-relay", value_name = "HOST:PORT[@FINGERPRINT]", value_parser = parse_other_relay)]
        other_relays: Vec<OtherRelay>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account and print its token (shown only this once; only a hash is stored). The token
    /// names this relay (its certificate fingerprint, or with a CA-issued certificate its name), and
    /// viewers send it to no other relay.
    Add {
        name: String,
        /// With a CA-issued certificate naming several hosts: the name viewers reach the relay by.
        #[arg(long)]
        relay_name: Option<String>,
    },
    /// Give an account a new token (printed like `add`); its old token stops working. Tokens made before
    /// tokens named their relay (`tether_…`) must be reissued.
    Reissue {
        name: String,
        /// As for `add`.
        #[arg(long)]
        relay_name: Option<String>,
    },
    /// List accounts.
    List,
    /// Revoke an account's token; its live sessions on a running relay end within seconds.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Show the audit log as a table.
    List,
    /// Write the audit log to stdout.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Json,
}

fn main() -> ExitCode {
    tether_shared::logging::init("info");
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(dispatch(Cli::parse())));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line an administrator can act on; no backtrace (an expected error is not a bug).
            eprintln!("Error: {}", tether_shared::human::error_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(mut cli: Cli) -> anyhow::Result<()> {
    let cfg = config(&cli)?;
    match cli.command.take() {
        None => run(cfg).await,
        Some(Command::User(cmd)) => user(&cfg, cmd),
        Some(Command::Audit(cmd)) => audit(&cfg, cmd),
        Some(Command::ClientConfig { address, organization, permissions, other_relays }) => {
            client_config(&cfg, address, organization, permissions, other_relays)
        }
    }
}

/// `client-config`: the settings file for this relay's hosts and viewers, on stdout.
fn client_config(
    cfg: &RelayConfig,
    address: String,
    organization: Option<String>,
    permissions: Option<String>,
    other_relays: Vec<OtherRelay>,
) -> anyhow::Result<()> {
    if let Some(p) = &permissions {
        Permissions::parse_list(p).map_err(|e| anyhow::anyhow!("--permissions: {e}"))?;
    }
    // A self-signed relay is pinned by fingerprint; a CA-issued one is checked by name, so no fingerprint.
    let relay_fingerprint = match tether_relay::certs::relay_id(&cfg.tls, &cfg.data_dir, None) {
        Ok(RelayId::Fingerprint(fingerprint)) => Some(fingerprint.to_string()),
        Ok(_) => None,
        Err(e) => return Err(e).context("reading this relay's certificate"),
    };
    let organization = organization.or_else(|| Some(cfg.organization.clone()).filter(|o| !o.is_empty()));
    let settings =
        ClientSettings { relay: Some(address), relay_fingerprint, organization, permissions, other_relays };
    println!("# Tether settings for hosts and viewers: install as /etc/tether/host.toml (mode 0644).");
    print!("{}", settings.to_toml());
    Ok(())
}

/// The environment variable that names the PostgreSQL database (over `database_url` in the file): the
/// systemd unit reads it from a root-only file, so the password is not in the world-readable config.
const DATABASE_URL_ENV: &str = "TETHER_RELAY_DATABASE_URL";

/// Defaults, then the file, then the environment, then the flags.
fn config(cli: &Cli) -> anyhow::Result<RelayConfig> {
    let mut cfg = RelayConfig::new(([0, 0, 0, 0], 7700).into(), "tether-relay-data".into());
    if let Some(path) = &cli.config {
        config_file::load(path)?.apply(&mut cfg, path)?;
    }
    if let Some(url) = std::env::var(DATABASE_URL_ENV).ok().filter(|u| !u.is_empty()) {
        cfg.database_url = Some(url);
    }
    let secs = Duration::from_secs;
    if let Some(v) = cli.listen {
        cfg.listen = v;
    }
    if let Some(v) = &cli.data_dir {
        cfg.data_dir = v.clone();
    }
    if let Some(v) = cli.code_ttl_secs {
        cfg.code_ttl = secs(v);
    }
    if let Some(v) = cli.idle_timeout_secs {
        cfg.idle_timeout = secs(v);
    }
    cfg.claims_per_minute = cli.claims_per_minute.unwrap_or(cfg.claims_per_minute);
    cfg.claim_burst = cli.claim_burst.unwrap_or(cfg.claim_burst);
    cfg.require_technician_auth |= cli.require_technician_auth;
    if let Some(v) = &cli.organization {
        cfg.organization = v.clone();
    }
    if let Some(v) = cli.workers {
        cfg.workers = v;
    }
    if let Some(v) = cli.admin_listen {
        cfg.admin_listen = Some(v);
    }
    if let Some(v) = cli.drain_deadline_secs {
        cfg.drain_deadline = secs(v);
    }
    if let Some(v) = &cli.public_address {
        cfg.public_address = Some(v.clone());
    }
    Ok(cfg)
}

/// `HOST:PORT` or `HOST:PORT@FINGERPRINT`, checked.
fn parse_other_relay(text: &str) -> Result<OtherRelay, String> {
    let (address, fingerprint) = match text.split_once('@') {
        Some((address, fingerprint)) => {
            let parsed: Fingerprint = fingerprint.parse().map_err(|e| format!("{fingerprint:?}: {e}"))?;
            (address, Some(parsed.to_string()))
        }
        None => (text, None),
    };
    Ok(OtherRelay { address: parse_public_address(address)?, fingerprint })
}

fn parse_public_address(text: &str) -> Result<String, String> {
    if tether_shared::relay_proto::is_relay_address(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not HOST:PORT (e.g. relay-b.example.org:4433)"))
    }
}

async fn run(cfg: RelayConfig) -> anyhow::Result<()> {
    let drain_deadline = cfg.drain_deadline;
    let relay = Server::spawn(cfg).context("starting the relay")?;
    // Listening for SIGTERM before saying we are up: a supervisor (or a test) that signals as soon as it
    // reads the lines below gets a graceful stop, not the default action.
    let mut shutdown = Shutdown::listen();
    // Machine-readable lines for scripts, each on its own line of stdout.
    println!("listening {}", relay.local_addr());
    println!("fingerprint {}", relay.fingerprint());
    if let Some(admin) = relay.admin_addr() {
        println!("admin {admin}");
    }
    eprintln!(
        "Clients connect with: --relay {} --relay-fingerprint {}",
        relay.local_addr(),
        relay.fingerprint()
    );
    shutdown.signalled().await;
    eprintln!("shutting down: no new sessions; live sessions may run {} s more", drain_deadline.as_secs());
    tokio::select! {
        _ = relay.drain(drain_deadline) => {}
        _ = shutdown.signalled() => eprintln!("second signal: stopping now"),
    }
    Ok(())
}

fn user(cfg: &RelayConfig, cmd: UserCommand) -> anyhow::Result<()> {
    let (store, _) = Store::for_config(cfg)?;
    let relay_id = |name: Option<&str>| {
        tether_relay::certs::relay_id(&cfg.tls, &cfg.data_dir, name).context("naming this relay in the token")
    };
    match cmd {
        UserCommand::Add { name, relay_name } => {
            let relay = relay_id(relay_name.as_deref())?;
            let token = store.add_account(&name, &relay)?;
            println!("token {token}");
            eprintln!(
                "Account {name:?} created. Give the technician this token now; it is not stored and cannot be \
                 shown again. They pass it to the viewer with TETHER_TOKEN=… (or --token). It works only \
                 with this relay ({relay}): viewers send it nowhere else."
            );
        }
        UserCommand::Reissue { name, relay_name } => {
            let relay = relay_id(relay_name.as_deref())?;
            let token = store.reissue_account(&name, &relay)?;
            println!("token {token}");
            eprintln!(
                "Account {name:?} has a new token; the old one no longer works. Give the technician this one \
                 now; it cannot be shown again. It works only with this relay ({relay})."
            );
        }
        UserCommand::List => {
            for a in store.list_accounts()? {
                let state = match a.revoked_at {
                    Some(at) => format!("revoked {}", fmt_time(at)),
                    None => "active".to_owned(),
                };
                println!("{}\tcreated {}\t{state}", a.name, fmt_time(a.created_at));
            }
        }
        UserCommand::Revoke { name } => {
            if !store.revoke_account(&name)? {
                bail!("no active account named {name:?}");
            }
            println!("revoked {name}");
            eprintln!("A running relay ends {name:?}'s live sessions within seconds.");
        }
    }
    Ok(())
}

fn audit(cfg: &RelayConfig, cmd: AuditCommand) -> anyhow::Result<()> {
    let (store, _) = Store::for_config(cfg)?;
    let rows = store.audit_rows()?;
    match cmd {
        AuditCommand::List => {
            println!("session_id        registered            claimed               ended                 technician  host -> viewer  bytes h2v/v2h  outcome  (joined session)");
            for r in rows {
                println!(
                    "{}  {}  {}  {}  {}  {} -> {}  {}/{}  {}{}",
                    r.session_id,
                    fmt_time(r.registered_at),
                    r.claimed_at.map(fmt_time).unwrap_or_else(|| "-".repeat(19)),
                    fmt_time(r.ended_at),
                    r.technician.as_deref().unwrap_or("-"),
                    r.host_addr,
                    r.viewer_addr.as_deref().unwrap_or("-"),
                    r.bytes_host_to_viewer,
                    r.bytes_viewer_to_host,
                    r.outcome,
                    r.part_of.as_deref().map(|s| format!("  (joined {s})")).unwrap_or_default()
                );
            }
        }
        AuditCommand::Export { format: Format::Csv } => {
            println!("{CSV_HEADER}");
            for r in rows {
                println!("{}", r.csv_line());
            }
        }
        AuditCommand::Export { format: Format::Json } => {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
    }
    Ok(())
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
fn fmt_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// SIGTERM or Ctrl+C, listened for from [`Shutdown::listen`] on.
struct Shutdown {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Shutdown {
    fn listen() -> Self {
        Self {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn signalled(&mut self) {
        #[cfg(unix)]
        if let Some(term) = &mut self.term {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
