//! `tether-viewer`: the technician's window, or (with `--headless` or any scripted action below) a command
//! line client; the viewer itself is the library.
//!
//! Without actions it opens the window, filled in with `--relay`, `--relay-fingerprint`, `--name`,
//! `--code` (connecting at once when relay and code are given). `tether-viewer --relay HOST:PORT --relay-fingerprint HEX --code CODE --snapshot out.png` connects,
//! waits for the first complete frame, writes it as PNG and exits 0. `--type TEXT` and `--click X,Y` send
//! input first. Machine-readable lines on stdout: `connected`, `granted <permissions>`, `snapshot <path>`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tether_shared::client_settings;
use tether_shared::code::Code;
use tether_shared::human;
use tether_shared::input::MouseButton;
use tether_shared::net::{RelaySpec, Timeouts};
use tether_shared::record::chain::hex32;
use tether_shared::record::file::RecordFile;
use tether_shared::session_proto::{InviteNews, Permissions};
use tether_shared::text::visible;
use tether_shared::tls::Fingerprint;
use tether_viewer::files::{self as files_api, Transfer};
use tether_viewer::session::{ViewerConfig, ViewerSession};
use tether_viewer::ui::screen::Scale;
use tether_viewer::ui::{run_window, ConnectForm};
use tether_viewer::{input, snapshot};

/// See and control a screen shared with you by one-time code.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The relay, as HOST:PORT.
    #[arg(long)]
    relay: Option<String>,
    /// The relay's certificate fingerprint (printed by the relay).
    #[arg(long)]
    relay_fingerprint: Option<Fingerprint>,
    /// The code the host user reads to you, e.g. 482-913-5071.
    #[arg(long)]
    code: Option<String>,
    /// No window: connect, do the scripted actions, print machine-readable lines.
    #[arg(long)]
    headless: bool,
    /// How the window shows the screen at first: `fit` (the default) or `1:1`.
    #[arg(long, default_value = "fit")]
    scale: String,
    /// Your name, shown to the host user (marked unverified).
    #[arg(long, default_value = "technician")]
    name: String,
    /// Your technician account token (from `tether-relay user add`), for relays that verify technicians.
    /// Prefer the environment variable, so the token does not show in the process list.
    #[arg(long, env = "TETHER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// What to ask for, e.g. `view,control`.
    #[arg(long, default_value = "view,control")]
    want: String,
    /// Write the host screen as PNG to this file and exit (the first frame, or the last after --stay-secs).
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Type this text on the host.
    #[arg(long = "type")]
    type_text: Vec<String>,
    /// Click at X,Y (host pixels).
    #[arg(long)]
    click: Vec<String>,
    /// List a folder the host shares, e.g. `Documents/reports` (`/` lists the shared folders).
    #[arg(long)]
    list: Vec<String>,
    /// Send this file or folder to the host (repeatable).
    #[arg(long)]
    upload: Vec<PathBuf>,
    /// Fetch this file or folder from the host's shared folders, e.g. `Documents/report.pdf` (repeatable).
    #[arg(long)]
    fetch: Vec<String>,
    /// Where fetched files go (created if missing). Default: ~/Downloads/Tether, as in the window.
    #[arg(long)]
    to: Option<PathBuf>,
    /// Ask the host for an invite code for a colleague: prints `invite <code>`, then what becomes of it
    /// (`invite claimed`, `invite expired`, `invite burned`, `invite withdrawn`, `invite unavailable <why>`).
    /// Stays until the session ends (or --stay-secs).
    #[arg(long)]
    invite: bool,
    /// Stay connected for this many seconds. Without it, a run with --snapshot or file operations leaves
    /// when they are done, and any other run stays until the session ends.
    #[arg(long)]
    stay_secs: Option<u64>,
    /// Seconds the session waits for a relay or network that went away to come back before it counts as
    /// lost.
    #[arg(long, default_value_t = 60)]
    idle_timeout_secs: u64,
    /// At the end, save the session record (the hash chain both ends hold) as JSON to this file.
    #[arg(long)]
    save_record: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Session records.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ReportAction {
    /// Check a saved session record: every entry linked to the one before from the session's start, and
    /// the stated head; says which entry is bad if one is.
    Verify {
        file: PathBuf,
        /// The relay's audit (`tether-relay audit export --format json`): also check that the relay
        /// recorded this record's head.
        #[arg(long)]
        audit: Option<PathBuf>,
    },
}

impl Cli {
    /// Whether this run is scripted (no window).
    fn headless(&self) -> bool {
        self.headless
            || self.snapshot.is_some()
            || self.stay_secs.is_some()
            || !self.type_text.is_empty()
            || !self.click.is_empty()
            || self.invite
            || self.has_file_operations()
    }

    /// Whether this run lists, sends or fetches files (and so is done when they are).
    fn has_file_operations(&self) -> bool {
        !self.list.is_empty() || !self.upload.is_empty() || !self.fetch.is_empty()
    }
}

fn main() -> ExitCode {
    tether_shared::logging::init("warn");
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One line a person can act on; no backtrace (an expected error is not a bug).
            eprintln!("Error: {}", human::error_line(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Report { action: ReportAction::Verify { file, audit } }) = &cli.command {
        return verify_record(file, audit.as_deref());
    }
    // The relay from the settings file the host reads too (an organization's one file), unless given.
    let settings = client_settings::load(&client_settings::search_paths())?;
    if cli.relay.is_none() {
        cli.relay = settings.relay.clone();
        if cli.relay_fingerprint.is_none() {
            cli.relay_fingerprint = settings.fingerprint()?;
        }
    }
    if !cli.headless() {
        let connect_now = cli.relay.is_some() && cli.code.is_some();
        let prefill = ConnectForm {
            relay: cli.relay.clone().unwrap_or_default(),
            fingerprint: cli.relay_fingerprint.map(|f| f.to_string()).unwrap_or_default(),
            name: if cli.name == DEFAULT_NAME { String::new() } else { cli.name.clone() },
            code: cli.code.clone().unwrap_or_default(),
            token: cli.token.clone().unwrap_or_default(),
            scale: Some(match cli.scale.as_str() {
                "fit" => Scale::Fit,
                "1:1" => Scale::OneToOne,
                other => anyhow::bail!("--scale is fit or 1:1, not {other:?}"),
            }),
        };
        return Ok(run_window(prefill, connect_now)?);
    }
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(headless(cli))
}

const DEFAULT_NAME: &str = "technician";

async fn headless(cli: Cli) -> anyhow::Result<()> {
    let code =
        Code::parse(cli.code.as_deref().context("--code is required (the code the user reads to you)")?)?;
    let want = Permissions::parse_list(&cli.want).map_err(|e| anyhow::anyhow!("--want: {e}"))?;
    let relay_addr = cli.relay.as_deref().context(
        "No relay to connect to: pass --relay HOST:PORT, or put relay = \"HOST:PORT\" in /etc/tether/host.toml or \
         ~/.config/tether/host.toml (your organization's administrator has it)",
    )?;
    let relay = RelaySpec::resolve(relay_addr, cli.relay_fingerprint).await?;
    let timeouts = Timeouts { e2e_idle: Duration::from_secs(cli.idle_timeout_secs), ..Timeouts::default() };
    let cfg = ViewerConfig { relay, timeouts, technician: cli.name.clone(), want, token: cli.token.clone() };
    let session = ViewerSession::connect(&cfg, &code).await?;
    println!("connected");
    println!("granted {}", session.granted());

    if (!cli.click.is_empty() || !cli.type_text.is_empty()) && !session.granted().control {
        let granted = session.granted();
        session.close().await;
        anyhow::bail!(
            "The user did not allow control (allowed: {granted}), so nothing was typed or clicked. Ask them to \
             allow \"Use your mouse and keyboard\"."
        );
    }
    let mut events = Vec::new();
    for point in &cli.click {
        let (x, y) = input::parse_point(point).map_err(anyhow::Error::msg)?;
        events.extend(input::click(x, y, MouseButton::Left));
    }
    for text in &cli.type_text {
        events.extend(input::type_text(text));
    }
    for event in events {
        session.send_input(event).await?;
    }

    if cli.invite {
        session.invite().await?;
        tokio::spawn(print_invite_news(session.invite_news()));
    }
    files(&session, &cli).await?;
    match (cli.stay_secs, &cli.snapshot) {
        (Some(secs), _) => {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
                why = session.closed() => anyhow::bail!("{why}"),
            }
        }
        (None, None) if !cli.has_file_operations() => {
            let why = session.closed().await;
            eprintln!("{why}");
        }
        (None, _) => {}
    }
    // The snapshot is the last thing before leaving: after --stay-secs it shows what the input did.
    if let Some(path) = &cli.snapshot {
        let shown = session.next_frame(None).await?;
        snapshot::write_png(&shown.frame, path).with_context(|| format!("writing {}", path.display()))?;
        println!("snapshot {}", path.display());
        let (w, h) = (shown.frame.width(), shown.frame.height());
        eprintln!("Saved the host's screen ({w}x{h}) to {}", path.display());
    }
    // Left first, so the record holds the end the host sends as the session closes.
    session.leave().await;
    if let Some(path) = &cli.save_record {
        save_record(&session, path)?;
    }
    session.close().await;
    Ok(())
}

/// Write the session record as it stands (every entry the host made and we checked).
fn save_record(session: &ViewerSession, path: &std::path::Path) -> anyhow::Result<()> {
    let file = session.record_file();
    let html =
        file.save(path, "The technician's copy").with_context(|| format!("writing {}", path.display()))?;
    println!("record {} {}", file.entries.len(), hex32::to_hex(&file.head));
    eprintln!(
        "Saved the session record ({}) to {}, and the report to {}",
        file.describe_len(),
        path.display(),
        html.display()
    );
    Ok(())
}

/// `report verify FILE`: `verified <entries> <head>` on stdout, or one line saying what is wrong.
fn verify_record(path: &std::path::Path, audit: Option<&std::path::Path>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file = RecordFile::from_json(&text)?;
    let head = file.verify()?;
    if let Some(audit) = audit {
        let export =
            std::fs::read_to_string(audit).with_context(|| format!("reading {}", audit.display()))?;
        let rows: Vec<tether_shared::record::file::AuditedHead> = serde_json::from_str(&export)
            .with_context(|| format!("{} is not a relay's audit export (--format json)", audit.display()))?;
        let found = file.check_audit(&rows)?;
        println!("audited {} {}", found.session_id, found.len);
        eprintln!(
            "The relay recorded this record's head after {} of its {} entries (audit row {}).",
            found.len,
            file.entries.len(),
            found.session_id
        );
    }
    println!("verified {} {}", file.entries.len(), hex32::to_hex(&head));
    eprintln!(
        "{}: the record holds together ({}, from the session's start to head {}).",
        path.display(),
        file.describe_len(),
        hex32::to_hex(&head)
    );
    Ok(())
}

/// `invite …` lines on stdout as the invite's news comes (the code first).
async fn print_invite_news(mut news: tokio::sync::watch::Receiver<Option<InviteNews>>) {
    while news.changed().await.is_ok() {
        let line = match news.borrow_and_update().clone() {
            Some(InviteNews::Code { code, expires_secs }) => {
                eprintln!("Invite code for your colleague: {code} (valid {} min)", expires_secs.div_ceil(60));
                format!("invite {code}")
            }
            Some(InviteNews::Claimed) => "invite claimed".into(),
            Some(InviteNews::Expired) => "invite expired".into(),
            Some(InviteNews::Burned) => "invite burned".into(),
            Some(InviteNews::Withdrawn) => "invite withdrawn".into(),
            Some(InviteNews::Unavailable { why }) => format!("invite unavailable {why}"),
            None => continue,
        };
        println!("{line}");
    }
}

fn remote_path(text: &str) -> Vec<String> {
    text.split('/').filter(|c| !c.is_empty()).map(str::to_owned).collect()
}

/// The command line's file operations, in order: lists, uploads, fetches.
async fn files(session: &ViewerSession, cli: &Cli) -> anyhow::Result<()> {
    // Names and error texts come from the host: shown with invisible and text-reordering characters
    // escaped, so a terminal neither obeys nor hides them.
    let files = session.files();
    for path in &cli.list {
        let listed = files.list(&remote_path(path)).await;
        for entry in listed.map_err(|e| anyhow::anyhow!("listing {}: {}", visible(path), shown(&e)))? {
            let kind = if entry.is_dir { "d" } else { "f" };
            println!("entry {kind} {} {}", entry.size, visible(&entry.name));
        }
    }
    for local in &cli.upload {
        let names = watch_transfer(files.upload(local), &local.display().to_string()).await?;
        println!("uploaded {}", visible(&names.join(", ")));
    }
    if cli.fetch.is_empty() {
        return Ok(());
    }
    let to = match &cli.to {
        Some(to) => to.clone(),
        None => files_api::default_folder().context("no home folder to save fetched files in: pass --to")?,
    };
    for remote in &cli.fetch {
        let path = remote_path(remote);
        let names = watch_transfer(files.fetch(path.clone(), to.clone()), remote).await?;
        println!("fetched {}", visible(&names.join(", ")));
        if let Some(note) = path.last().and_then(|asked| files_api::saved_as(asked, &names)) {
            eprintln!("{note}");
        }
    }
    Ok(())
}

fn shown(e: &impl std::fmt::Display) -> String {
    visible(&e.to_string()).into_owned()
}

/// Show progress on stderr until the transfer ends.
async fn watch_transfer(transfer: Transfer, what: &str) -> anyhow::Result<Vec<String>> {
    let mut progress = transfer.progress();
    let what_owned = what.to_owned();
    let printer = tokio::spawn(async move {
        while progress.changed().await.is_ok() {
            if let Some(p) = *progress.borrow() {
                eprintln!("{what_owned}: {}", p.describe());
            }
        }
    });
    let result = transfer.result().await;
    printer.abort();
    result.map_err(|e| anyhow::anyhow!("transferring {}: {}", visible(what), shown(&e)))
}
