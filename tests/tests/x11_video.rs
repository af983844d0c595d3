//! The video path on a real desktop: a clip played with `ffplay` under Xvfb beside an xterm. The viewer
//! gets the video as a VP9 stream (a fraction of the bytes JPEG tiles would cost), the terminal typed
//! into beside it stays pixel-exact, a paused video is refined to JPEG at the quality setting, and once
//! the player is gone the picture is exact again.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::view::{rgb, wait_for_view};
use common::xvfb::Xvfb;
use common::*;
use tether_shared::code::Code;
use tether_viewer::session::ViewerSession;

const XW: u32 = 1024;
const XH: u32 = 768;
/// Where ffplay shows the clip.
const VIDEO: (u32, u32, u32, u32) = (600, 120, 320, 240);
/// The xterm beside it.
const TERM: (u32, u32, u32, u32) = (10, 10, 400, 300);

/// Render a photographic clip as the codec benchmark does: a Mandelbrot zoom with temporal grain.
fn render_clip(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("clip.mkv");
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"])
        .args(["-i", "mandelbrot=size=320x240:rate=30", "-t", "20"])
        .args(["-vf", "noise=alls=6:allf=t", "-c:v", "libx264", "-crf", "14", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    path
}

fn play(x: &Xvfb, clip: &std::path::Path) -> Child {
    let (left, top, w, h) = VIDEO;
    Command::new("ffplay")
        .env("DISPLAY", &x.display)
        .env("SDL_AUDIODRIVER", "dummy")
        .args(["-hide_banner", "-loglevel", "error", "-an", "-noborder", "-loop", "0"])
        .args([
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            "-left",
            &left.to_string(),
            "-top",
            &top.to_string(),
        ])
        .args(["-window_title", "tether-video-test"])
        .arg(clip)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffplay")
}

fn crop(img: &image::RgbImage, (x, y, w, h): (u32, u32, u32, u32)) -> image::RgbImage {
    image::imageops::crop_imm(img, x, y, w, h).to_image()
}

fn psnr(a: &image::RgbImage, b: &image::RgbImage) -> f64 {
    let sum: f64 =
        a.as_raw().iter().zip(b.as_raw()).map(|(p, q)| (f64::from(*p) - f64::from(*q)).powi(2)).sum();
    let mse = sum / a.as_raw().len() as f64;
    10.0 * (255.0 * 255.0 / mse.max(1e-9)).log10()
}

/// Is the whole picture, except the rectangle `hole`, the same in both?
fn same_outside(a: &image::RgbImage, b: &image::RgbImage, (hx, hy, hw, hh): (u32, u32, u32, u32)) -> bool {
    a.enumerate_pixels()
        .all(|(x, y, p)| (x >= hx && x < hx + hw && y >= hy && y < hy + hh) || b.get_pixel(x, y) == p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_plays_as_a_stream_while_the_terminal_beside_it_stays_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = render_clip(dir.path());
    let mut x = Xvfb::start(XW, XH);
    let script = "seq -f 'terminal line %g beside the video' 1 12; exec cat";
    x.spawn("xterm", &["-geometry", "60x20+10+10", "-title", "beside", "-e", "sh", "-c", script]);
    eventually(|| x.try_run("xdotool", &["search", "--name", "beside"]).is_some(), "the xterm window").await;
    let mut player = play(&x, &clip);
    eventually(
        || x.try_run("xdotool", &["search", "--name", "tether-video-test"]).is_some(),
        "the ffplay window",
    )
    .await;

    let relay = start_relay(|_| {});
    let (addr, fp) = (relay.handle.local_addr().to_string(), relay.handle.fingerprint().to_string());
    let args = cli_args(
        &addr,
        &fp,
        &["--headless", "--grant", "view", "--idle-timeout-secs", "3", "--quality", "80"],
    );
    let mut host =
        common::procs::Proc::spawn_with_env("tether-host", &args, &[("DISPLAY", x.display.as_str())]);
    let code = Code::parse(&host.line("code").await).expect("code");
    let viewer = ViewerSession::connect(&viewer_config(&relay), &code).await.expect("pairs");
    viewer.next_frame(None).await.expect("first frame");

    // The video plays: after it settled into a stream, three seconds of it cost a fraction of what
    // JPEG tiles would (measured here: ~25 KB a frame as JPEG q80, ~2.3 MB in three seconds).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = viewer.link_stats().bytes_received;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let streamed = viewer.link_stats().bytes_received - before;
    assert!(streamed < 600_000, "{streamed} bytes for three seconds of a 320x240 video");
    // ...and it is shown: the viewer's video area changes and looks like the screen's.
    let snap = |v: &ViewerSession| {
        v.frames().borrow().clone().map(|s| crop(&rgb(&s.frame), VIDEO)).expect("a frame")
    };
    let first = snap(&viewer);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_ne!(first, snap(&viewer), "the video area moves");

    // Typing into the terminal beside the playing video: the terminal arrives exact.
    x.run(
        "xdotool",
        &[
            "search",
            "--name",
            "beside",
            "windowfocus",
            "--sync",
            "type",
            "--delay",
            "30",
            "typed beside a video",
        ],
    );
    wait_for_view(
        &viewer,
        &x,
        "tether-video",
        "the terminal beside the video is not exact",
        |shown, screen| crop(shown, TERM) == crop(screen, TERM),
    )
    .await;
    let shot = rgb(&viewer.frames().borrow().clone().expect("frame").frame);
    shot.save(std::env::temp_dir().join("tether-video-playing.png")).ok();

    // Paused (ffplay's `p`): within about a second the still picture is refined to JPEG at quality 80,
    // and everything outside it is exact.
    x.run("xdotool", &["search", "--name", "tether-video-test", "windowfocus", "--sync", "key", "p"]);
    wait_for_view(&viewer, &x, "tether-video", "the paused video was not refined", |shown, screen| {
        same_outside(shown, screen, VIDEO) && psnr(&crop(shown, VIDEO), &crop(screen, VIDEO)) > 33.0
    })
    .await;

    // The player closes: the desktop under it arrives exact.
    let _ = player.kill();
    let _ = player.wait();
    wait_for_view(
        &viewer,
        &x,
        "tether-video",
        "the picture is not exact after the player closed",
        |shown, screen| shown == screen,
    )
    .await;
    viewer.close().await;
}
