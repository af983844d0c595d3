//! Comparing what the viewer shows with what the display (an X server, a compositor) shows, until they
//! agree.

use std::time::{Duration, Instant};

use tether_shared::frame::Frame;
use tether_viewer::session::ViewerSession;

use super::xvfb::Xvfb;

/// A display whose own screenshot the viewer's picture is compared with.
pub trait Screen {
    fn screenshot(&self) -> image::RgbImage;
}

impl Screen for Xvfb {
    fn screenshot(&self) -> image::RgbImage {
        Xvfb::screenshot(self)
    }
}

impl Screen for tether_testbed::sway::Sway {
    /// The compositor's own screenshot (grim).
    fn screenshot(&self) -> image::RgbImage {
        self.grim(&[]).expect("grim takes a screenshot")
    }
}

/// A frame as an RGB image.
pub fn rgb(frame: &Frame) -> image::RgbImage {
    image::RgbImage::from_raw(frame.width(), frame.height(), frame.to_rgb()).expect("size")
}

/// Wait (up to 30 s) until `check(viewer's picture, X screenshot)` holds; on failure save both as
/// `<name>-viewer.png` and `<name>-screen.png` in the temporary directory for a look, and panic with `what`.
pub async fn wait_for_view(
    viewer: &ViewerSession,
    x: &impl Screen,
    name: &str,
    what: &str,
    check: impl Fn(&image::RgbImage, &image::RgbImage) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut frames = viewer.frames();
    loop {
        let screen = x.screenshot();
        let shown = frames.borrow_and_update().clone().map(|s| rgb(&s.frame));
        if shown.as_ref().is_some_and(|shown| check(shown, &screen)) {
            return;
        }
        if Instant::now() > deadline {
            let dir = std::env::temp_dir();
            screen.save(dir.join(format!("{name}-screen.png"))).ok();
            if let Some(shown) = shown {
                shown.save(dir.join(format!("{name}-viewer.png"))).ok();
            }
            panic!("{what} (pictures saved in {})", dir.display());
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), frames.changed()).await;
    }
}
