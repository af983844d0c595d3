//! `tether-relay-load`: command line only. Starts `tether-relay` (from the same target directory) as a
//! child process, then measures: RSS per idle waiting host, and with N sessions each streaming about
//! 1 Mbit/s both ways: sessions held, relay CPU per Gbit/s forwarded, one-way latency through the relay,
//! RSS per session. Prints a Markdown table.
//!
//! With `--pin auto` (the default) and at least two CPUs, the relay runs on the last CPU and the load
//! generator (this process) on the others; `--pin off` lets both run anywhere as before. Next to the
//! end-to-end figures it reports the relay's own per-datagram dwell histogram, scraped from its admin
//! listener's `/metrics` before and after the measurement.
//!
//! `--flood-gbit 0.5,1,2` measures the forwarding path alone: sessions paired as usual, then loaded with
//! tagged datagrams sent without QUIC ([`tether_relay_bench::flood`]), at each total rate in turn,
//! beside a few probe sessions streaming real end-to-end QUIC for the latency. `--workers N` sets the
//! relay's forwarding workers; per rate it prints what the relay forwarded, by worker, its CPU, the
//! Gbit/s per relay core and the probes' latency.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use std::sync::Arc;

use tether_relay_bench::flood;
use tether_relay_bench::pairs::{self, Latencies};
use tether_relay_bench::pin::{self, Pin};
use tether_relay_bench::relay_proc::{own_cpu_seconds, relay_binary, Dwell, RelayProc};
use tether_shared::net::{RelaySpec, Timeouts};
use tether_shared::tls::RelayTrust;

/// Load benchmark of the Tether relay on loopback.
#[derive(Debug, Parser)]
struct Cli {
    /// Concurrent sessions.
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// Idle waiting hosts for the memory measurement.
    #[arg(long, default_value_t = 1000)]
    waiting_hosts: usize,
    /// Kbit/s each direction of each session.
    #[arg(long, default_value_t = 1000)]
    kbit: u64,
    /// Message size in bytes.
    #[arg(long, default_value_t = 1250)]
    message: usize,
    /// Seconds of measurement once all sessions stream.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// CPU pinning: `auto` (relay on the last allowed CPU, load generator on the others, if there are
    /// two or more), `off`, or `RELAY_CPUS:LOAD_CPUS` such as `1:0`.
    #[arg(long, default_value_t = Pin::Auto)]
    pin: Pin,
    /// Start every sender at the same moment, so all sessions send in one burst each interval (the
    /// pattern of runs before `--pin` existed). By default the 2N senders are spread evenly over the
    /// interval, as independent sessions would be.
    #[arg(long)]
    aligned: bool,
    /// The relay's forwarding workers (default: the relay's own, one per core it may use).
    #[arg(long)]
    workers: Option<usize>,
    /// Cheap-load mode: total Gbit/s of QUIC-less tagged datagrams to offer, one step per value, over
    /// `--sessions` sessions (a first step without load is the probes' baseline).
    #[arg(long, value_delimiter = ',')]
    flood_gbit: Vec<f64>,
    /// Datagrams per send in the cheap load (1: each on its own, the relay's worst case; more: one GSO
    /// send each, which reaches the relay as one buffer).
    #[arg(long, default_value_t = 1)]
    flood_batch: usize,
    /// Probe sessions streaming real end-to-end QUIC at `--kbit` during the cheap load, for latency.
    #[arg(long, default_value_t = 8)]
    probes: usize,
}

fn spec(relay: &RelayProc) -> anyhow::Result<RelaySpec> {
    let addr: SocketAddr = relay.addr.parse().context("relay address")?;
    let fp = relay.fingerprint.parse().map_err(|e| anyhow::anyhow!("fingerprint: {e:?}"))?;
    Ok(RelaySpec { addr, server_name: "localhost".into(), trust: RelayTrust::Pinned(fp), local_addr: None })
}

/// Run `f` for `n` items with at most 32 at once.
async fn batched<T, F, Fut>(n: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, pairs::PairError>> + Send + 'static,
    T: Send + 'static,
{
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch: Vec<_> = (0..(n - out.len()).min(32)).map(|_| tokio::spawn(f())).collect();
        for task in batch {
            out.push(task.await??);
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let allowed = pin::allowed().context("reading CPU affinity")?;
    let split = cli.pin.resolve(&allowed);
    // Pin before the runtime starts: its threads inherit the main thread's affinity.
    if let Some((_, load)) = &split {
        pin::current_thread(load).context("pinning the load generator")?;
    }
    let workers = split.as_ref().map_or(allowed.len(), |(_, load)| load.len()).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build()?;
    runtime.block_on(run(cli, split))
}

async fn run(cli: Cli, split: pin::Split) -> anyhow::Result<()> {
    if !cli.flood_gbit.is_empty() {
        return run_flood(cli, split).await;
    }
    let relay_cpus = split.as_ref().map(|(relay, _)| relay.as_slice());
    let binary = relay_binary()?;
    let timeouts = Timeouts { pairing: Duration::from_secs(60), ..Timeouts::default() };

    // Idle waiting hosts, on a relay of their own.
    let relay = RelayProc::start(&binary, relay_cpus).context("starting tether-relay")?;
    let spec_w = spec(&relay)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_empty = relay.rss_kib()?;
    let waiting = batched(cli.waiting_hosts, || {
        let spec = spec_w.clone();
        async move { pairs::waiting_host(&spec, timeouts).await }
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_waiting = relay.rss_kib()?;
    let per_waiting = (rss_waiting.saturating_sub(rss_empty)) as f64 / cli.waiting_hosts.max(1) as f64;
    drop(waiting);
    drop(relay);

    // Sessions.
    let relay =
        RelayProc::start_with_workers(&binary, relay_cpus, cli.workers).context("starting tether-relay")?;
    let spec_s = spec(&relay)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_base = relay.rss_kib()?;
    let sessions = batched(cli.sessions, || {
        let spec = spec_s.clone();
        async move { pairs::pair(&spec, timeouts).await }
    })
    .await?;
    let epoch = Instant::now();
    let lat = Latencies::default();
    let interval = Duration::from_nanos(cli.message as u64 * 8 * 1_000_000 / cli.kbit.max(1));
    let senders = 2 * sessions.len().max(1) as u32;
    let phase = |i: usize| if cli.aligned { Duration::ZERO } else { interval * i as u32 / senders };
    for (i, (host, viewer)) in sessions.iter().enumerate() {
        pairs::stream(&host.conn, epoch, cli.message, interval, phase(2 * i), &lat);
        pairs::stream(&viewer.conn, epoch, cli.message, interval, phase(2 * i + 1), &lat);
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // warm-up
    lat.clear();
    // An older relay has no dwell histogram: then only the end-to-end figures are reported.
    let dwell0 = relay.dwell().ok();
    let (cpu0, gen0, t0) = (relay.cpu_seconds()?, own_cpu_seconds()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(cli.secs)).await;
    let (cpu1, gen1, elapsed) = (relay.cpu_seconds()?, own_cpu_seconds()?, t0.elapsed().as_secs_f64());
    let dwell = dwell0.and_then(|d0| Some(relay.dwell().ok()?.since(&d0)));
    let rss_sessions = relay.rss_kib()?;
    let held = sessions
        .iter()
        .filter(|(h, v)| h.conn.close_reason().is_none() && v.conn.close_reason().is_none())
        .count();
    let (count, p50, p99, max) = lat.summary();
    // Payload bytes actually delivered, both directions (QUIC and tag overhead come on top).
    let payload_bits = count as f64 * cli.message as f64 * 8.0;
    let gbit_per_s = payload_bits / elapsed / 1e9;
    let cores = (cpu1 - cpu0) / elapsed;
    let per_session = (rss_sessions.saturating_sub(rss_base)) as f64 / cli.sessions.max(1) as f64;
    drop(sessions);
    drop(relay);

    // Baseline: the same number of connections and the same load, host ↔ viewer directly.
    let direct = batched(cli.sessions, || async move { pairs::direct_pair(timeouts).await }).await?;
    let base = Latencies::default();
    for (i, (host, viewer, _)) in direct.iter().enumerate() {
        pairs::stream(host, epoch, cli.message, interval, phase(2 * i), &base);
        pairs::stream(viewer, epoch, cli.message, interval, phase(2 * i + 1), &base);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    base.clear();
    let (gen2, t2) = (own_cpu_seconds()?, Instant::now());
    tokio::time::sleep(Duration::from_secs(cli.secs)).await;
    let (gen3, elapsed_direct) = (own_cpu_seconds()?, t2.elapsed().as_secs_f64());
    let (_, d50, d99, dmax) = base.summary();
    drop(direct);

    println!("| measure | value |");
    println!("|---|---|");
    println!("| sessions started / held to the end | {} / {held} |", cli.sessions);
    println!(
        "| offered load | {} kbit/s each way per session, {}-byte messages, senders {} |",
        cli.kbit,
        cli.message,
        if cli.aligned { "aligned" } else { "spread over the interval" }
    );
    println!("| payload forwarded | {:.3} Gbit/s ({:.1} Mbit/s) |", gbit_per_s, gbit_per_s * 1000.0);
    println!("| relay CPU | {:.3} cores |", cores);
    if gbit_per_s > 0.0 {
        println!("| relay CPU per Gbit/s forwarded | {:.2} cores |", cores / gbit_per_s);
    }
    println!("| one-way latency through the relay, p50 / p99 / max | {p50} / {p99} / {max} µs ({count} messages) |");
    println!("| same load, direct (no relay), p50 / p99 / max | {d50} / {d99} / {dmax} µs |");
    println!(
        "| latency the relay adds, p50 / p99 | {} / {} µs |",
        i64::from(p50) - i64::from(d50),
        i64::from(p99) - i64::from(d99)
    );
    let bound = |dwell: &Dwell, q: f64| match dwell.quantile_bound(q) {
        u64::MAX => "> 100000".to_owned(),
        b => format!("≤ {b}"),
    };
    match dwell {
        Some(dwell) => println!(
            "| relay dwell, receive → send (relay's histogram), p50 / p99 / mean | {} / {} / {:.1} µs ({} datagrams) |",
            bound(&dwell, 0.5),
            bound(&dwell, 0.99),
            dwell.mean_micros(),
            dwell.count()
        ),
        None => println!("| relay dwell, receive → send (relay's histogram) | not reported by this relay |"),
    }
    match &split {
        Some((relay, load)) => println!("| CPUs: relay / load generator | {relay:?} / {load:?} |"),
        None => println!("| CPUs: relay / load generator | not pinned |"),
    }
    println!(
        "| load generator CPU, via relay / direct | {:.2} / {:.2} cores |",
        (gen1 - gen0) / elapsed,
        (gen3 - gen2) / elapsed_direct
    );
    println!("| relay RSS: empty / with sessions | {rss_base} / {rss_sessions} KiB |");
    println!("| relay RSS per session | {:.1} KiB |", per_session);
    println!("| relay RSS per idle waiting host ({} hosts) | {:.1} KiB |", cli.waiting_hosts, per_waiting);
    Ok(())
}

/// The cheap-load mode: see the module documentation.
async fn run_flood(cli: Cli, split: pin::Split) -> anyhow::Result<()> {
    let relay_cpus = split.as_ref().map(|(relay, _)| relay.as_slice());
    let timeouts = Timeouts { pairing: Duration::from_secs(60), ..Timeouts::default() };
    let relay = RelayProc::start_with_workers(&relay_binary()?, relay_cpus, cli.workers)
        .context("starting tether-relay")?;
    let spec = spec(&relay)?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pair = || {
        let spec = spec.clone();
        async move { pairs::pair(&spec, timeouts).await }
    };
    let sessions = batched(cli.sessions, pair).await?;
    let probes = batched(cli.probes, pair).await?;
    let epoch = Instant::now();
    let lat = Latencies::default();
    let interval = Duration::from_nanos(cli.message as u64 * 8 * 1_000_000 / cli.kbit.max(1));
    let senders = 2 * probes.len().max(1) as u32;
    for (i, (host, viewer)) in probes.iter().enumerate() {
        pairs::stream(&host.conn, epoch, cli.message, interval, interval * (2 * i) as u32 / senders, &lat);
        pairs::stream(
            &viewer.conn,
            epoch,
            cli.message,
            interval,
            interval * (2 * i + 1) as u32 / senders,
            &lat,
        );
    }
    let workers = relay.forwarded_by_worker()?.len();
    println!(
        "Relay: {workers} worker(s), CPUs {}; load: {} sessions of QUIC-less {}-byte datagrams ({} per \
         send), {} probe sessions of real QUIC at {} kbit/s each way; {} s per step.\n",
        split
            .as_ref()
            .map_or("not pinned".to_owned(), |(relay, load)| format!("{relay:?} (load generator {load:?})")),
        cli.sessions,
        flood::DATAGRAM,
        cli.flood_batch,
        cli.probes,
        cli.kbit,
        cli.secs
    );
    println!("| offered Gbit/s | forwarded Gbit/s | by worker | relay cores | Gbit/s per relay core | probe p50 / p99 µs | relay dwell p99 µs | generator cores | generator drops |");
    println!("|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for gbit in std::iter::once(0.0).chain(cli.flood_gbit.iter().copied()) {
        let stop = tokio_util::sync::CancellationToken::new();
        let dropped = Arc::new(flood::Dropped::default());
        flood::start(&sessions, gbit * 1e9, cli.flood_batch, &stop, &dropped);
        tokio::time::sleep(Duration::from_secs(1)).await;
        lat.clear();
        let (dwell0, bytes0, drops0) = (relay.dwell()?, relay.forwarded_by_worker()?, dropped.get());
        let (cpu0, gen0, t0) = (relay.cpu_seconds()?, own_cpu_seconds()?, Instant::now());
        tokio::time::sleep(Duration::from_secs(cli.secs)).await;
        let (cpu1, gen1, elapsed) = (relay.cpu_seconds()?, own_cpu_seconds()?, t0.elapsed().as_secs_f64());
        let (dwell, bytes1, drops) =
            (relay.dwell()?.since(&dwell0), relay.forwarded_by_worker()?, dropped.get() - drops0);
        stop.cancel();
        let by_worker: Vec<f64> =
            bytes1.iter().zip(&bytes0).map(|(b1, b0)| (b1 - b0) as f64 * 8.0 / elapsed / 1e9).collect();
        let forwarded: f64 = by_worker.iter().sum();
        let cores = (cpu1 - cpu0) / elapsed;
        let (_, p50, p99, _) = lat.summary();
        let shares = by_worker.iter().map(|g| format!("{g:.2}")).collect::<Vec<_>>().join(" + ");
        println!(
            "| {gbit:.2} | {forwarded:.2} | {shares} | {cores:.2} | {} | {p50} / {p99} | {} | {:.2} | {drops} |",
            if cores > 0.05 { format!("{:.2}", forwarded / cores) } else { "–".into() },
            match dwell.quantile_bound(0.99) {
                u64::MAX => "> 100000".to_owned(),
                b => format!("≤ {b}"),
            },
            (gen1 - gen0) / elapsed,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(sessions);
    drop(probes);
    Ok(())
}
