//! The host's CPU with 1, 2, 4… technicians watching (issue 19: sub-linear in the number of viewers).
//!
//! The host runs as its own process (`tether-host --headless`, the built-in test pattern: a moving square
//! and a counter on a desktop-like picture, 30 updates a second), so its CPU time is read apart from the
//! relay's and the viewers', which run in this process. The first viewer pairs by the host's code; each
//! further one joins by an invite the first asks for, exactly as a colleague would. For each count the
//! host's user + system time (`/proc/PID/stat`) over a window is divided by the wall time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use tether_relay::{RelayConfig, Server};
use tether_shared::code::Code;
use tether_shared::net::RelaySpec;
use tether_shared::session_proto::{InviteNews, Permissions};
use tether_shared::tls::RelayTrust;
use tether_viewer::session::{ViewerConfig, ViewerSession};

/// Kills the host when the bench ends, however it ends.
struct HostProcess(Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// User + system CPU time of process `pid` so far.
fn cpu_of(pid: u32, ticks_per_second: f64) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, inside parentheses).
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("/proc stat format")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: f64 = fields
        .get(11..13)
        .context("/proc stat fields")?
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    Ok(Duration::from_secs_f64(ticks / ticks_per_second))
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// `source`: `test-pattern` (at `size`) or `x11` (the screen of $DISPLAY, with X Damage).
pub fn run(counts: &[usize], secs: u64, size: &str, source: &str) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(measure(counts, secs, size, source))
}

async fn measure(counts: &[usize], secs: u64, size: &str, source: &str) -> Result<()> {
    let data = tempfile::tempdir()?;
    let relay = Server::spawn(RelayConfig::new("127.0.0.1:0".parse()?, data.path().to_path_buf()))?;
    let spec = RelaySpec {
        addr: relay.local_addr(),
        server_name: "localhost".into(),
        trust: RelayTrust::Pinned(relay.fingerprint()),
        local_addr: None,
    };
    let exe = std::env::current_exe()?;
    let host_bin = exe.with_file_name("tether-host");
    if !host_bin.exists() {
        bail!("{} is missing: build it (cargo build --release -p tether-host)", host_bin.display());
    }
    let mut child = Command::new(&host_bin)
        .args(["--headless", "--source", source, "--size", size, "--grant", "view", "--quality", "lossless"])
        .args([
            "--relay",
            &relay.local_addr().to_string(),
            "--relay-fingerprint",
            &relay.fingerprint().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", host_bin.display()))?;
    let stdout = child.stdout.take().context("host stdout")?;
    let pid = child.id();
    let _host = HostProcess(child);
    let code = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| line.strip_prefix("code ").map(str::to_owned))
        .context("the host printed no code")?;

    let config = |name: &str| ViewerConfig {
        relay: spec.clone(),
        timeouts: Default::default(),
        technician: name.into(),
        want: Permissions::VIEW_ONLY,
        token: None,
    };
    let first = ViewerSession::connect(&config("viewer 1"), &Code::parse(&code)?).await?;
    let mut others: Vec<ViewerSession> = Vec::new();
    let ticks = ticks_per_second();
    let what =
        if source == "x11" { "the X screen of $DISPLAY".to_owned() } else { format!("{size} test pattern") };
    println!(
        "Host CPU with several viewers ({what}, at most 30 updates/s, lossless; host in its own process)"
    );
    println!("| viewers | host CPU (% of a core) | per viewer | viewer 1 updates/s |");
    println!("|---|---|---|---|");
    let mut one = None;
    for &count in counts {
        while 1 + others.len() < count {
            let name = format!("viewer {}", others.len() + 2);
            others.push(join_by_invite(&first, &config(&name)).await?);
        }
        tokio::time::sleep(Duration::from_secs(2)).await; // the newcomers' first full frames
        let (wall, cpu) = (Instant::now(), cpu_of(pid, ticks)?);
        let start = first.next_frame(None).await?.info.seq;
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let end = first.next_frame(None).await?.info.seq;
        let (elapsed, used) = (wall.elapsed().as_secs_f64(), (cpu_of(pid, ticks)? - cpu).as_secs_f64());
        let percent = 100.0 * used / elapsed;
        let base = *one.get_or_insert(percent);
        println!(
            "| {count} | {percent:.1} | {:.1} | {:.1} |",
            percent / count as f64,
            (end - start) as f64 / elapsed
        );
        if count > 1 {
            eprintln!("{count} viewers: {:.2}x the CPU of one", percent / base);
        }
    }
    Ok(())
}

/// A new viewer, by an invite `first` asks the host for.
async fn join_by_invite(first: &ViewerSession, config: &ViewerConfig) -> Result<ViewerSession> {
    let mut news = first.invite_news();
    news.borrow_and_update();
    first.invite().await?;
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            news.changed().await.map_err(|_| anyhow!("the session ended"))?;
            match news.borrow_and_update().clone() {
                Some(InviteNews::Code { code, .. }) => return Ok::<_, anyhow::Error>(code),
                Some(InviteNews::Unavailable { why }) => bail!("no invite: {why}"),
                _ => continue,
            }
        }
    })
    .await
    .context("no invite code within 10 s")??;
    Ok(ViewerSession::connect(config, &Code::parse(&code)?).await?)
}
