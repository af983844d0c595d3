//! File transfer throughput through the relay on loopback: one file uploaded (viewer → host) and fetched
//! (host → viewer), timed from start to verified-and-renamed, with BLAKE3 compared afterwards. Also the
//! CPU time the whole process (relay, host and viewer together) spent on each, which a busy machine
//! inflates far less than wall time.

use std::io::Write;
use std::time::Instant;

use anyhow::{ensure, Result};
use tether_host::capture::{self, CaptureHandle, Source};
use tether_host::files::UploadPolicy;
use tether_host::inject::record::RecordingSink;
use tether_host::Sources;
use tether_shared::session_proto::Permissions;

use crate::cpu_time::process_cpu;
use crate::session_rig;

fn make_file(path: &std::path::Path, len: u64) -> Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let (mut state, mut left, mut block) = (0x2545_F491_4F6C_DD1Du64, len, vec![0u8; 1 << 20]);
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    // On disk before the clock starts: the source's own writeback must not compete with the transfer.
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok(file.sync_all()?)
}

fn b3(path: &std::path::Path) -> Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    h.update_mmap(path)?;
    Ok(h.finalize())
}

pub fn run(mib: u64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(measure(mib))
}

async fn measure(mib: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (share, incoming, local, fetched) = (
        dir.path().join("share"),
        dir.path().join("incoming"),
        dir.path().join("local"),
        dir.path().join("fetched"),
    );
    for d in [&share, &incoming, &local, &fetched] {
        std::fs::create_dir(d)?;
    }
    make_file(&local.join("up.bin"), mib << 20)?;
    make_file(&share.join("down.bin"), mib << 20)?;
    let capture = CaptureHandle::spawn(|| capture::open(Source::TestPattern { width: 320, height: 240 }))?;
    let sources = Sources::new(capture, Box::new(RecordingSink::new()));
    let grant = Permissions { view: true, control: false, files: true };
    let rig = session_rig::start(sources, grant, |cfg| {
        cfg.session.files.shared = vec![("share".into(), share.clone())];
        cfg.session.files.incoming = Some(incoming.clone());
        cfg.uploads = UploadPolicy::Allow;
    })
    .await?;
    let files = rig.viewer.files();

    let (t0, c0) = (Instant::now(), process_cpu());
    files.upload(&local.join("up.bin")).result().await?;
    let (up, up_cpu) = (t0.elapsed(), process_cpu().saturating_sub(c0));
    ensure!(b3(&incoming.join("up.bin"))? == b3(&local.join("up.bin"))?, "upload hash mismatch");

    let (t0, c0) = (Instant::now(), process_cpu());
    files.fetch(vec!["share".into(), "down.bin".into()], fetched.clone()).result().await?;
    let (down, down_cpu) = (t0.elapsed(), process_cpu().saturating_sub(c0));
    ensure!(b3(&fetched.join("down.bin"))? == b3(&share.join("down.bin"))?, "fetch hash mismatch");
    let mtu = files.path_mtu();
    rig.stop.cancel();

    let mb = (mib << 20) as f64 / 1e6;
    println!(
        "| direction ({mib} MiB through the relay on loopback) | seconds | MB/s | CPU s (all threads) |"
    );
    println!("|---|---:|---:|---:|");
    for (what, wall, cpu) in
        [("upload (viewer -> host)", up, up_cpu), ("fetch (host -> viewer)", down, down_cpu)]
    {
        let (wall, cpu) = (wall.as_secs_f64(), cpu.as_secs_f64());
        println!("| {what} | {wall:.2} | {:.0} | {cpu:.2} |", mb / wall);
    }
    println!("\nPath MTU the viewer's connection discovered: {mtu} bytes of UDP payload.");
    Ok(())
}
