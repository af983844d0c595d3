//! The desktop portal's screen as a PipeWire stream: a thread of its own runs a PipeWire loop on the
//! remote the portal opened for us (its descriptor only reaches the nodes the user agreed to share),
//! asks for 32-bit RGB pictures in shared memory — no GPU buffers, so nothing needs a graphics driver and
//! every pixel arrives exact — and feeds each new picture into a [`Stream`].
//!
//! A portal sends a picture when the screen changed (and some at a steady rate regardless), without
//! saying where: each picture is compared with the one before, row by row, and only the band of rows
//! that changed goes into the damage log; a picture equal to the last one wakes nobody.

use std::cell::RefCell;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::sync::Arc;

use pipewire as pw;
use pw::spa;
use tether_shared::frame::Frame;

use super::stream::{Feed, Stream};
use super::{CaptureError, Captured};

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("PipeWire: {e}"))
}

/// Tells the PipeWire thread to stop; it stops too when this is dropped.
pub struct Stop(pw::channel::Sender<()>);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("pipewire::Stop")
    }
}

/// Receive node `node` of the PipeWire remote `fd`; `origin` is where its top-left pixel is on the
/// desktop (for the damage log).
pub fn receive(fd: OwnedFd, node: u32, origin: (i32, i32)) -> Result<(Stream, Stop), CaptureError> {
    let (stream, feed) = Stream::new();
    let (stop, stopped) = pw::channel::channel::<()>();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("tether-pipewire".into())
        .spawn(move || {
            let pictures =
                Rc::new(RefCell::new(Pictures { feed, origin, format: None, last: Vec::new(), next_id: 0 }));
            let why = run(fd, node, stopped, pictures.clone(), &ready_tx);
            tracing::debug!("the PipeWire stream ended: {why}");
            // Unless it already started, whoever waits for the start learns why it did not.
            let _ = ready_tx.send(Err(why.clone()));
            pictures.borrow().feed.end(why);
        })
        .map_err(failed)?;
    ready.recv().map_err(|_| failed("the PipeWire thread stopped"))??;
    Ok((stream, Stop(stop)))
}

/// The negotiated picture format.
#[derive(Debug, Clone, Copy)]
struct Format {
    width: u32,
    height: u32,
    /// Red and blue are swapped against BGRx (RGBx, RGBA).
    rgb: bool,
}

/// What the loop's callbacks share: where pictures go and the last one, to compare.
struct Pictures {
    feed: Feed,
    origin: (i32, i32),
    format: Option<Format>,
    /// The last picture's BGRX rows.
    last: Vec<u8>,
    next_id: u64,
}

impl Pictures {
    /// A buffer arrived: `data` from `offset`, rows `stride` bytes apart.
    fn arrived(&mut self, data: &[u8], offset: usize, stride: usize) {
        let Some(format) = self.format else { return };
        let row = format.width as usize * 4;
        let stride = if stride == 0 { row } else { stride };
        let height = format.height as usize;
        let needed = offset + stride * height.saturating_sub(1) + row;
        if height == 0 || stride < row || data.len() < needed {
            tracing::debug!("a PipeWire buffer smaller than its picture: skipped");
            return;
        }
        let mut pixels = Vec::with_capacity(row * height);
        for y in 0..height {
            let line = &data[offset + y * stride..offset + y * stride + row];
            if format.rgb {
                pixels.extend(line.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], p[3]]));
            } else {
                pixels.extend_from_slice(line);
            }
        }
        // Where it changed: the band of rows that differ from the last picture (all of it at first).
        let changed = if self.last.len() == pixels.len() {
            let differs = |y: &usize| pixels[y * row..(y + 1) * row] != self.last[y * row..(y + 1) * row];
            match ((0..height).find(differs), (0..height).rev().find(differs)) {
                (Some(first), Some(last)) => Some((first, last + 1 - first)),
                _ => None,
            }
        } else {
            Some((0, height))
        };
        let Some((top, rows)) = changed else { return };
        let frame = match Frame::from_bgrx(format.width, format.height, pixels.clone()) {
            Ok(frame) => frame,
            Err(e) => return tracing::debug!("a PipeWire picture we cannot use: {e}"),
        };
        self.last = pixels;
        self.next_id += 1;
        let (x, y) = self.origin;
        let drawn = (x, y + top as i32, format.width, rows as u32);
        self.feed.picture(Captured { id: self.next_id, frame: Arc::new(frame) }, [drawn]);
    }
}

/// The formats we take: 8 bits a channel, 32 bits a pixel, in either byte order.
fn wanted_formats() -> Result<Vec<u8>, CaptureError> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    use spa::param::video::VideoFormat;
    let object = spa::pod::object!(
        spa::utils::SpaTypes::ObjectParamFormat,
        spa::param::ParamType::EnumFormat,
        spa::pod::property!(FormatProperties::MediaType, Id, MediaType::Video),
        spa::pod::property!(FormatProperties::MediaSubtype, Id, MediaSubtype::Raw),
        spa::pod::property!(
            FormatProperties::VideoFormat,
            Choice,
            Enum,
            Id,
            VideoFormat::BGRx,
            VideoFormat::BGRx,
            VideoFormat::BGRA,
            VideoFormat::RGBx,
            VideoFormat::RGBA
        ),
        spa::pod::property!(
            FormatProperties::VideoSize,
            Choice,
            Range,
            Rectangle,
            spa::utils::Rectangle { width: 1920, height: 1080 },
            spa::utils::Rectangle { width: 1, height: 1 },
            spa::utils::Rectangle { width: 16384, height: 16384 }
        ),
        spa::pod::property!(
            FormatProperties::VideoFramerate,
            Choice,
            Range,
            Fraction,
            spa::utils::Fraction { num: 60, denom: 1 },
            spa::utils::Fraction { num: 0, denom: 1 },
            spa::utils::Fraction { num: 1000, denom: 1 }
        ),
    );
    let (bytes, _) = spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(object),
    )
    .map_err(|e| failed(format!("{e:?}")))?;
    Ok(bytes.into_inner())
}

/// Run the loop until told to stop or the stream ends; why it ended.
fn run(
    fd: OwnedFd,
    node: u32,
    stopped: pw::channel::Receiver<()>,
    pictures: Rc<RefCell<Pictures>>,
    ready: &std::sync::mpsc::Sender<Result<(), CaptureError>>,
) -> CaptureError {
    match stream_until_stopped(fd, node, stopped, pictures, ready) {
        Ok(why) | Err(why) => why,
    }
}

fn stream_until_stopped(
    fd: OwnedFd,
    node: u32,
    stopped: pw::channel::Receiver<()>,
    pictures: Rc<RefCell<Pictures>>,
    ready: &std::sync::mpsc::Sender<Result<(), CaptureError>>,
) -> Result<CaptureError, CaptureError> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(failed)?;
    let context = pw::context::ContextRc::new(&mainloop, None).map_err(failed)?;
    let core = context.connect_fd_rc(fd, None).map_err(failed)?;
    let stream = pw::stream::StreamRc::new(
        core,
        "tether-host",
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Screen",
        },
    )
    .map_err(failed)?;
    let ended = Rc::new(RefCell::new(None::<CaptureError>));
    let _stop = stopped.attach(mainloop.loop_(), {
        let mainloop = mainloop.clone();
        move |()| mainloop.quit()
    });
    let _listener = stream
        .add_local_listener_with_user_data(pictures)
        .state_changed({
            let (mainloop, ended) = (mainloop.clone(), ended.clone());
            move |_, _, _, state| match state {
                pw::stream::StreamState::Error(e) => {
                    *ended.borrow_mut() = Some(failed(format!("the stream failed: {e}")));
                    mainloop.quit();
                }
                pw::stream::StreamState::Unconnected => {
                    *ended.borrow_mut() = Some(failed("the desktop stopped sharing the screen"));
                    mainloop.quit();
                }
                _ => {}
            }
        })
        .param_changed(|_, pictures, id, param| {
            let Some(param) = param else { return };
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            let mut info = spa::param::video::VideoInfoRaw::default();
            if info.parse(param).is_err() {
                return;
            }
            use spa::param::video::VideoFormat;
            let rgb = match info.format() {
                VideoFormat::BGRx | VideoFormat::BGRA => false,
                VideoFormat::RGBx | VideoFormat::RGBA => true,
                other => {
                    tracing::warn!("the desktop offers pictures as {other:?}, which Tether does not read");
                    return;
                }
            };
            let size = info.size();
            tracing::debug!("PipeWire pictures: {}x{} {:?}", size.width, size.height, info.format());
            let mut pictures = pictures.borrow_mut();
            pictures.format = Some(Format { width: size.width, height: size.height, rgb });
            pictures.last.clear();
        })
        .process(|stream, pictures| {
            let Some(mut buffer) = stream.dequeue_buffer() else { return };
            let Some(data) = buffer.datas_mut().first_mut() else { return };
            let (offset, stride, size) =
                (data.chunk().offset() as usize, data.chunk().stride().max(0) as usize, data.chunk().size());
            if size == 0 {
                return;
            }
            if let Some(bytes) = data.data() {
                pictures.borrow_mut().arrived(bytes, offset, stride);
            }
        })
        .register()
        .map_err(failed)?;
    let formats = wanted_formats()?;
    let pod = spa::pod::Pod::from_bytes(&formats).ok_or_else(|| failed("bad format description"))?;
    stream
        .connect(
            spa::utils::Direction::Input,
            Some(node),
            pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS,
            &mut [pod],
        )
        .map_err(failed)?;
    let _ = ready.send(Ok(()));
    mainloop.run();
    let why = ended.borrow_mut().take();
    Ok(why.unwrap_or_else(|| failed("sharing stopped")))
}
