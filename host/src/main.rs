//! `tether-host`: the host window ([`tether_host::ui`]), or with `--headless` the command line; the host
//! itself is the library.
//!
//! Headless mode prints machine-readable lines on stdout for scripts: `code <code>` whenever a (new) code is ready,
//! `connected <technician>` when a session starts, followed by
//! `verified <account> by <relay> (organization, as the relay states it: <organization>)` when the relay
//! verified the technician's account (`<relay>`: the relay this host connected to, as given with
//! `--relay`; the organization is the relay's word, and the parenthesis is left out when it names none),
//! `ended <how>` when it ends; `stopped wrong-codes <n>` when someone entered a wrong code too many times in
//! a row, after which it exits with an error. On stderr it writes the session log for a person: the same
//! lines as the window's, from [`tether_shared::record::Narrator`].

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use tether_host::capture::Source;
use tether_host::codes::AfterTooMany;
use tether_host::controller::ParticipantId;
use tether_host::files::UploadPolicy;
use tether_host::participants::Present;
use tether_host::ui::{WindowError, WindowSettings};
use tether_host::{run_host, HostConfig, HostEvent, Sources};
use tether_shared::client_settings::{self, ClientSettings};
use tether_shared::codec::Quality;
use tether_shared::human;
use tether_shared::link::ScreenQuality;
use tether_shared::net::RelaySpec;
use tether_shared::record::chain::hex32;
use tether_shared::record::file::RecordFile;
use tether_shared::record::{Direction, EventKind, Narrator, Outcome, Side, Transfer};
use tether_shared::session_proto::{InviteNews, Permissions};
use tether_shared::text::visible;
use tether_shared::tls::Fingerprint;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Share this screen with a technician who has your one-time code.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The relay, as HOST:PORT (default: `relay` in /etc/tether/host.toml or ~/.config/tether/host.toml).
    #[arg(long)]
    relay: Option<String>,
    /// The relay's certificate fingerprint (printed by the relay; default: `relay_fingerprint` in the
    /// settings file). Without it the relay's certificate must be issued by a CA the system trusts.
    #[arg(long)]
    relay_fingerprint: Option<Fingerprint>,
    /// Run without a window: print the code and session events on the terminal.
    #[arg(long)]
    headless: bool,
    /// What to share: `wlroots` (the wlroots Wayland compositor at $WAYLAND_DISPLAY: sway, Hyprland…; the
    /// default on a compositor that offers screencopy), `portal` (the desktop portal: the desktop asks
    /// the user which screen to share; the default on other Wayland desktops: GNOME, KDE), `x11` (the
    /// screen of $DISPLAY; the default when only DISPLAY is set) or `test-pattern`.
    #[arg(long)]
    source: Option<String>,
    /// With --source portal: keep the screen (and control) the user allows in the desktop's dialog for
    /// the next session, which then starts without the dialog (until revoked in the desktop's settings).
    #[arg(long)]
    remember_screen_choice: bool,
    /// With --source portal: seconds the user has to answer the desktop's dialog before the host gives
    /// up and says so.
    #[arg(long, default_value_t = 120)]
    portal_answer_within: u64,
    /// Which monitor to share (see --list-monitors).
    #[arg(long, default_value_t = 0)]
    monitor: usize,
    /// List the monitors (of the compositor, or of $DISPLAY: see --source) and exit.
    #[arg(long)]
    list_monitors: bool,
    /// Size of the test pattern, WIDTHxHEIGHT (with --source test-pattern).
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// What the technician may do, e.g. `view` or `view,control` (headless mode grants this without asking;
    /// in the window the user decides each time). Default: `permissions` in the settings file, or `view`.
    #[arg(long)]
    grant: Option<String>,
    /// `auto` (photographic regions as JPEG, at a lower quality when the line cannot carry them; text
    /// always lossless), `lossless` (every pixel exact), `balanced` (photographic regions as JPEG quality
    /// 80), or a JPEG quality 1-100 for photographic regions. The frame rate follows the line whatever
    /// the choice.
    #[arg(long, default_value = "auto")]
    quality: String,
    /// Most screen updates per second.
    #[arg(long, default_value_t = 30)]
    max_fps: u32,
    /// Share this folder with the technician (browse and fetch; repeatable). Needs `--grant files`.
    #[arg(long = "share")]
    share: Vec<std::path::PathBuf>,
    /// Where files the technician sends are saved, created if missing (the window's default:
    /// ~/Downloads/Tether). Headless mode needs `--grant files`.
    #[arg(long)]
    incoming: Option<std::path::PathBuf>,
    /// Accept files from the technician for the whole session without asking (headless mode cannot ask).
    #[arg(long)]
    accept_uploads: bool,
    /// Seconds the session waits for a relay or network that went away to come back before it counts as
    /// lost.
    #[arg(long, default_value_t = 60)]
    idle_timeout_secs: u64,
    /// Technicians in one session at most: a technician may invite colleagues up to this many.
    #[arg(long, default_value_t = tether_host::invites::DEFAULT_MAX_VIEWERS)]
    max_viewers: usize,
    /// Headless: at the end, save the session record (the hash chain both ends hold) as JSON to this file.
    #[arg(long)]
    save_record: Option<std::path::PathBuf>,
}

fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = text.split_once('x').context("size is WIDTHxHEIGHT, e.g. 1280x720")?;
    Ok((w.parse().context("width")?, h.parse().context("height")?))
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

fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.list_monitors {
        let kind = cli.source.clone().unwrap_or_else(|| default_source().to_owned());
        let source = match kind.as_str() {
            "wlroots" => Source::Wlroots { monitor: 0 },
            "portal" => Source::Portal { remember: false, answer_within: Duration::ZERO },
            _ => Source::X11 { monitor: 0 },
        };
        for monitor in source.monitors()? {
            println!("monitor {monitor}");
        }
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if cli.headless {
        return runtime.block_on(headless(cli));
    }
    // Said before anything else: without a display there is no window to ask the rest in.
    if !tether_host::ui::has_display() {
        return Err(WindowError::NoDisplay.into());
    }
    let (mut cfg, source, settings) = runtime.block_on(configure(&cli))?;
    // In the window the user answers every request, so nothing is ruled out beforehand; a colleague a
    // technician invites is a card of its own, and the red bar lists everyone.
    cfg.session.allowed = Permissions::ALL;
    cfg.invites = true;
    if cfg.session.files.incoming.is_none() {
        cfg.session.files.incoming = default_incoming();
    }
    let incoming = match &cfg.session.files.incoming {
        Some(dir) => dir.display().to_string(),
        None => "(no folder: files cannot be received)".to_owned(),
    };
    let look =
        WindowSettings { incoming, organization: settings.organization(), ticked: settings.permissions()? };
    Ok(tether_host::ui::run_window(runtime, cfg, source, look)?)
}

/// `~/Downloads/Tether`, created if needed; `None` when there is no home folder or it cannot be made.
fn default_incoming() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(std::env::var_os("HOME")?).join("Downloads").join("Tether");
    match std::fs::create_dir_all(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::warn!("no folder for received files ({}): {e}", dir.display());
            None
        }
    }
}

/// The screen this session has: a Wayland session's compositor (`WAYLAND_DISPLAY`: wlroots screencopy
/// where it offers it, else the desktop portal), else the X display, else none (the test pattern).
fn default_source() -> &'static str {
    let set = |var: &str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
    if set("WAYLAND_DISPLAY") {
        if tether_host::capture::wlroots::offers_screencopy() {
            "wlroots"
        } else {
            "portal"
        }
    } else if set("DISPLAY") {
        "x11"
    } else {
        "test-pattern"
    }
}

/// What both modes read from the command line and the settings file: the source, the host's
/// configuration, and the settings (for what the window shows).
async fn configure(cli: &Cli) -> anyhow::Result<(HostConfig, Source, ClientSettings)> {
    if cli.source.is_none() && default_source() == "test-pattern" {
        eprintln!(
            "No display (neither WAYLAND_DISPLAY nor DISPLAY is set): sharing the built-in test pattern \
             instead of a screen. Run it in your desktop session, or pass --source x11 or wlroots."
        );
    }
    let source = match cli.source.as_deref().unwrap_or(default_source()) {
        "test-pattern" => {
            let (width, height) = parse_size(&cli.size)?;
            Source::TestPattern { width, height }
        }
        "x11" => Source::X11 { monitor: cli.monitor },
        "wlroots" => Source::Wlroots { monitor: cli.monitor },
        "portal" => Source::Portal {
            remember: cli.remember_screen_choice,
            answer_within: Duration::from_secs(cli.portal_answer_within),
        },
        other => bail!("unknown --source {other:?} (available: x11, wlroots, portal, test-pattern)"),
    };
    // Flags first, then the settings file an organization or the user installed.
    let settings = client_settings::load(&client_settings::search_paths())?;
    let allowed = match &cli.grant {
        Some(grant) => Permissions::parse_list(grant).map_err(|e| anyhow::anyhow!("--grant: {e}"))?,
        None => settings.permissions()?.unwrap_or(Permissions { view: true, control: false, files: false }),
    };
    let Some(relay_addr) = cli.relay.clone().or(settings.relay.clone()) else {
        bail!(
            "No relay to connect to: pass --relay HOST:PORT, or put relay = \"HOST:PORT\" in \
             /etc/tether/host.toml or ~/.config/tether/host.toml (your organization's administrator has it)"
        );
    };
    let fingerprint = match cli.relay_fingerprint {
        Some(flag) => Some(flag),
        None => settings.fingerprint()?,
    };
    let relay = RelaySpec::resolve(&relay_addr, fingerprint).await?;
    let mut cfg = HostConfig::new(relay, allowed);
    // The organization's other relays, unless the command line named the one relay to use.
    if cli.relay.is_none() {
        for other in &settings.other_relays {
            let fingerprint = other.fingerprint()?;
            match RelaySpec::resolve(&other.address, fingerprint).await {
                Ok(spec) => cfg.other_relays.push(spec),
                // One relay of several out of reach by name must not keep the host from the others.
                Err(e) => tracing::warn!("other_relays: {e}"),
            }
        }
    }
    cfg.session.max_fps = cli.max_fps;
    cfg.session.quality = match cli.quality.as_str() {
        "auto" => ScreenQuality::Auto,
        "lossless" => Quality::Lossless.into(),
        "balanced" => Quality::default().into(),
        n => match n.parse::<u8>() {
            Ok(q @ 1..=100) => Quality::Balanced { jpeg_quality: q }.into(),
            _ => bail!("--quality is auto, lossless, balanced or 1-100, not {n:?}"),
        },
    };
    cfg.timeouts.e2e_idle = Duration::from_secs(cli.idle_timeout_secs);
    cfg.max_viewers = cli.max_viewers.max(1);
    for folder in &cli.share {
        // Resolved once, now: the share is the folder the user pointed at, even if given through a link
        // (the file engine refuses links inside it) or as `.`.
        let real = folder.canonicalize().with_context(|| format!("--share {}", folder.display()))?;
        let name = real
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| format!("--share {}: the folder needs a name", folder.display()))?;
        cfg.session.files.add_share(&name, real);
    }
    if let Some(dir) = &cli.incoming {
        // Made now, so a mistyped or unwritable folder fails at start, not at the technician's first file.
        std::fs::create_dir_all(dir).with_context(|| format!("--incoming {}", dir.display()))?;
    }
    cfg.session.files.incoming = cli.incoming.clone();
    cfg.uploads = if cli.accept_uploads { UploadPolicy::Allow } else { UploadPolicy::Deny };
    Ok((cfg, source, settings))
}

/// The stdout line scripts read for a record event, if it has one. File names and errors carry the
/// technician's text: escaped, so a terminal shows it as sent (`\u{202E}`) and obeys none of it.
fn script_line(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Connected { technician, verified, .. } => {
            let mut line = format!("connected {technician}");
            if let Some(v) = verified {
                let org = match v.organization.as_str() {
                    "" => String::new(),
                    org => format!(" (organization, as the relay states it: {org})"),
                };
                line += &format!("\nverified {} by {}{org}", v.account, v.relay);
            }
            line
        }
        EventKind::Transfer(Transfer { outcome: Outcome::Completed { names, .. }, direction, what }) => {
            match direction {
                Direction::Upload => format!("received {}", visible(&names.join(", "))),
                Direction::Fetch => format!("sent {}", visible(what)),
            }
        }
        EventKind::Transfer(
            t @ Transfer { outcome: Outcome::Refused(error) | Outcome::Failed(error), .. },
        ) => {
            format!("file-failed {}: {}", visible(&t.label()), visible(&error.to_string()))
        }
        EventKind::Chat { from: Side::Technician, text } => format!("chat {text}"),
        EventKind::PermissionsChanged { by: Side::Technician, now, .. } => format!("granted {now}"),
        EventKind::Notes(notes) => format!("notes {}", visible(&notes.ticket)),
        EventKind::Inventory { summary, .. } => format!("inventory {}", visible(summary)),
        _ => return None,
    })
}

/// The command line host: prints the code and session events (the lines scripts and tests read).
async fn headless(cli: Cli) -> anyhow::Result<()> {
    let (mut cfg, source, _) = configure(&cli).await?;
    let cli_save_record = cli.save_record.clone();
    // Nobody to ask whether to go on after wrong codes: end, and exit non-zero.
    cfg.codes.after_too_many = AfterTooMany::Stop;
    // A technician may invite a colleague; they get what --grant allows, like the first.
    cfg.invites = true;
    let sources = Sources::open(source).context("opening the screen to share")?;

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let stop_on_signal = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop_on_signal.cancel();
    });
    let incoming = cfg.session.files.incoming.as_ref().map(|dir| dir.display().to_string());
    // One narrator per participant, so each line names the right technician.
    let mut narrators: HashMap<ParticipantId, Narrator> = HashMap::new();
    let mut in_session = String::new();
    let printer = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                HostEvent::Code { code, expires_in } => {
                    println!("code {code}");
                    eprintln!(
                        "Read this code to your technician: {code}  (valid {} min)",
                        expires_in.as_secs().div_ceil(60)
                    );
                }
                HostEvent::CodeReplaced(why) => eprintln!("{}", why.explain()),
                HostEvent::TooManyWrongCodes(times) => {
                    println!("stopped wrong-codes {times}");
                    eprintln!(
                        "Someone entered a wrong code {times} times. If that was not your technician, do not \
                         share. No new code is offered; start again when your technician is ready."
                    );
                }
                HostEvent::CodeDelayed(wait) => {
                    eprintln!(
                        "The relay is busy; asking for a new code again in {} s.",
                        wait.as_secs_f32().ceil()
                    )
                }
                // The session record: a line for scripts on stdout where there is one, and the same
                // line as the window's session log on stderr.
                HostEvent::Session(who, event) => {
                    if let Some(line) = script_line(&event.kind) {
                        println!("{line}");
                    }
                    let narrator = narrators.entry(who).or_insert_with(|| match &incoming {
                        Some(dir) => Narrator::with_incoming(dir.clone()),
                        None => Narrator::default(),
                    });
                    match event.kind {
                        EventKind::Ended { reason } => eprintln!("{} left: {reason}.", narrator.technician()),
                        EventKind::Connected { .. } => {
                            eprintln!("{}", narrator.line(&event));
                            eprintln!("Your screen is being shared. Press Ctrl+C to stop.");
                        }
                        _ => eprintln!("{}", narrator.line(&event)),
                    }
                }
                HostEvent::Live(_) => {}
                HostEvent::Invite { by, news } => {
                    if let InviteNews::Code { code, .. } = &news {
                        println!("invite {code}");
                    }
                    if let Some(line) = tether_host::invites::describe(&by, &news) {
                        eprintln!("{line}");
                    }
                }
                HostEvent::Participants(now) => {
                    let text = participants_line(&now);
                    if !now.is_empty() && text != in_session {
                        eprintln!("{text}");
                    }
                    in_session = text;
                }
                HostEvent::Reconnecting => {
                    println!("reconnecting");
                    eprintln!("The connection was interrupted. Reconnecting…");
                }
                HostEvent::Reconnected => {
                    println!("reconnected");
                    eprintln!("The connection is back.");
                }
            }
        }
    });
    let result = run_host(cfg, sources, events_tx, stop).await;
    // Print every event before the outcome (a script waits for `stopped wrong-codes 3` before the exit):
    // run_host's sender is gone, so the printer ends once the queue is empty. A transfer task still
    // winding down may hold a clone, hence the bound.
    let _ = tokio::time::timeout(Duration::from_secs(2), printer).await;
    let report = result?;
    if let Some(path) = &cli_save_record {
        let file = RecordFile::new(report.record_session, report.record.clone())
            .with_inventories(&report.inventories);
        file.save(path, "The user's copy").with_context(|| format!("writing {}", path.display()))?;
        println!("record {} {}", file.entries.len(), hex32::to_hex(&file.head));
    }
    println!("ended {}", report.end);
    eprintln!(
        "Session with {} ended: {}. {} screen updates sent, {} input events injected, {} dropped.",
        report.technician, report.end, report.frames_sent, report.input_injected, report.input_dropped
    );
    Ok(())
}

/// "In the session: Alice (see the screen, use mouse and keyboard; in control), Bob (invited by Alice;
/// see the screen)".
fn participants_line(now: &[Present]) -> String {
    let people: Vec<String> = now
        .iter()
        .map(|p| {
            let mut about = Vec::new();
            if let Some(by) = &p.invited_by {
                about.push(format!("invited by {by}"));
            }
            about.push(tether_shared::record::describe::permissions(p.permissions));
            if p.in_control {
                about.push("in control".into());
            }
            format!("{} ({})", p.short_name(), about.join("; "))
        })
        .collect();
    format!("In the session: {}", people.join(", "))
}
