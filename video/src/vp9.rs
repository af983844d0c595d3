//! VP9 through libvpx: a real-time encoder for one screen region, and the decoder for its stream.
//!
//! This is the only `unsafe` code in the video path. The soundness argument is the same for every call:
//! - each context lives in a `Box` (a stable address, as libvpx keeps pointers into it) and is
//!   initialised before any other call and destroyed exactly once, in `Drop`;
//! - every pointer passed in is to a live Rust value or slice of the size the call reads (checked right
//!   before the call), and nothing libvpx returns outlives the `&mut self` borrow it came from (the
//!   next call on the context may free it);
//! - what libvpx returns is checked (error codes, null pointers, the picture's format and size) before a
//!   slice is made over it.
//!
//! Decoding handles the peer's bytes: a picture of another size or format than the region it is for is
//! an error, not a surprise — keyframes are checked with `vpx_codec_peek_stream_info` before libvpx
//! allocates for them, every decoded picture after.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint};
use std::ptr;

use vpx_sys as ffi;

use crate::yuv::{bgrx_to_i420, i420_len, I420};
use crate::VideoError;

/// The largest region edge accepted (also VP9's practical limit for real-time encoding here).
pub const MAX_EDGE: u32 = 8192;

/// How hard the real-time encoder works: libvpx's `cpu-used` for `VPX_DL_REALTIME` (5–9; 8 is what
/// Chrome Remote Desktop-like screen encoders use, a few ms per 960×540 frame on one core).
const CPU_USED: c_int = 9;
/// A frame's largest share of the bitrate, ms (1/30 s).
const FRAME_MS: i64 = 33;
/// A keyframe may be at most this share (%) of an average frame's budget: it is what the first
/// picture and every scene start cost, and it must fit a message part quickly on a slow line.
const MAX_INTRA_PCT: c_int = 300;

fn check_size(w: u32, h: u32) -> Result<(), VideoError> {
    let ok = (16..=MAX_EDGE).contains(&w)
        && (16..=MAX_EDGE).contains(&h)
        && w.is_multiple_of(2)
        && h.is_multiple_of(2);
    if ok {
        Ok(())
    } else {
        Err(VideoError::Size { w, h })
    }
}

/// libvpx's description of the last error on `ctx`.
fn error_text(ctx: &mut ffi::vpx_codec_ctx_t) -> String {
    // SAFETY: `ctx` is an initialised context; `vpx_codec_error` returns a pointer to a static or
    // context-owned NUL-terminated string (never null for an initialised context), copied at once.
    unsafe {
        let text = ffi::vpx_codec_error(ctx);
        if text.is_null() {
            return "unknown error".into();
        }
        CStr::from_ptr(text).to_string_lossy().into_owned()
    }
}

fn check(
    ctx: &mut ffi::vpx_codec_ctx_t,
    what: &'static str,
    err: ffi::vpx_codec_err_t,
) -> Result<(), VideoError> {
    if err == ffi::vpx_codec_err_t::VPX_CODEC_OK {
        Ok(())
    } else {
        Err(VideoError::Codec { what, detail: error_text(ctx) })
    }
}

/// A real-time VP9 encoder for a `w`×`h` region (even sizes): no look-ahead, constant bitrate with
/// keyframes only when asked. No adaptive quantisation: cyclic refresh (libvpx's choice for screens)
/// spends on static blocks, and a region that goes as video is all motion (measured: +0.3 dB without).
pub struct Encoder {
    ctx: Box<ffi::vpx_codec_ctx_t>,
    cfg: ffi::vpx_codec_enc_cfg_t,
    w: u32,
    h: u32,
    i420: Vec<u8>,
    /// The last picture's time, for the next one's share of the bitrate.
    last_pts: Option<i64>,
    /// The stream's own clock, what libvpx is told (ms).
    clock: i64,
}

// SAFETY: a libvpx context has no thread affinity; it must only not be used from two threads at once,
// which `&mut self` on every method guarantees.
unsafe impl Send for Encoder {}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vp9::Encoder({}x{}, {} kbit/s)", self.w, self.h, self.cfg.rc_target_bitrate)
    }
}

impl Encoder {
    /// An encoder for a `w`×`h` region aiming at `kbps` kbit/s.
    pub fn new(w: u32, h: u32, kbps: u32) -> Result<Self, VideoError> {
        check_size(w, h)?;
        let mut cfg = MaybeUninit::<ffi::vpx_codec_enc_cfg_t>::zeroed();
        // SAFETY: the interface pointer is libvpx's static VP9 encoder; `cfg` is writable memory of the
        // struct's size, fully written by the call when it succeeds (checked before `assume_init`).
        let err = unsafe { ffi::vpx_codec_enc_config_default(ffi::vpx_codec_vp9_cx(), cfg.as_mut_ptr(), 0) };
        if err != ffi::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(VideoError::Codec { what: "encoder defaults", detail: format!("{err:?}") });
        }
        // SAFETY: initialised by the successful call above (and zeroed before it).
        let mut cfg = unsafe { cfg.assume_init() };
        cfg.g_w = w;
        cfg.g_h = h;
        cfg.g_threads = 1;
        cfg.g_timebase = ffi::vpx_rational { num: 1, den: 1000 };
        cfg.g_lag_in_frames = 0;
        cfg.g_error_resilient = 0;
        cfg.rc_end_usage = ffi::vpx_rc_mode::VPX_CBR;
        cfg.rc_target_bitrate = kbps.max(50);
        cfg.rc_min_quantizer = 4;
        cfg.rc_max_quantizer = 63;
        cfg.rc_undershoot_pct = 50;
        cfg.rc_overshoot_pct = 50;
        cfg.rc_buf_sz = 1000;
        cfg.rc_buf_initial_sz = 500;
        cfg.rc_buf_optimal_sz = 600;
        cfg.rc_dropframe_thresh = 30;
        cfg.kf_mode = ffi::vpx_kf_mode::VPX_KF_DISABLED;
        // SAFETY: an all-zero context is libvpx's documented "not yet initialised" state.
        let mut ctx: Box<ffi::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: `ctx` is a boxed (address-stable) zeroed context, `cfg` a complete configuration;
        // the ABI version is the one the bindings were generated for.
        let err = unsafe {
            ffi::vpx_codec_enc_init_ver(
                &mut *ctx,
                ffi::vpx_codec_vp9_cx(),
                &cfg,
                0,
                ffi::VPX_ENCODER_ABI_VERSION as c_int,
            )
        };
        if err != ffi::vpx_codec_err_t::VPX_CODEC_OK {
            // (A failed init leaves nothing to destroy.)
            return Err(VideoError::Codec { what: "encoder start", detail: format!("{err:?}") });
        }
        let mut encoder = Self { ctx, cfg, w, h, i420: Vec::new(), last_pts: None, clock: 0 };
        for (id, value) in [
            (ffi::vp8e_enc_control_id::VP8E_SET_CPUUSED as c_int, CPU_USED),
            (ffi::vp8e_enc_control_id::VP9E_SET_AQ_MODE as c_int, 0),
            (ffi::vp8e_enc_control_id::VP8E_SET_MAX_INTRA_BITRATE_PCT as c_int, MAX_INTRA_PCT),
            (ffi::vp8e_enc_control_id::VP9E_SET_ROW_MT as c_int, 0),
        ] {
            // SAFETY: an initialised encoder context; each of these controls takes one `int` argument.
            let err = unsafe { ffi::vpx_codec_control_(&mut *encoder.ctx, id, value) };
            check(&mut encoder.ctx, "encoder setting", err)?;
        }
        Ok(encoder)
    }

    pub fn bitrate(&self) -> u32 {
        self.cfg.rc_target_bitrate
    }

    /// Aim at `kbps` kbit/s from the next frame on.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), VideoError> {
        let kbps = kbps.max(50);
        if kbps == self.cfg.rc_target_bitrate {
            return Ok(());
        }
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: an initialised encoder context and a complete configuration of the same size.
        let err = unsafe { ffi::vpx_codec_enc_config_set(&mut *self.ctx, &self.cfg) };
        check(&mut self.ctx, "bitrate change", err)
    }

    /// Encode one picture (tightly packed BGRX rows, `w`×`h`) shown at `pts_ms` (milliseconds, rising);
    /// `keyframe` forces a picture the decoder can start from. The result is one VP9 frame.
    pub fn encode(&mut self, bgrx: &[u8], pts_ms: i64, keyframe: bool) -> Result<Vec<u8>, VideoError> {
        if bgrx.len() != self.w as usize * self.h as usize * 4 {
            return Err(VideoError::Mismatch {
                got_w: (bgrx.len() / 4 / self.h.max(1) as usize) as u32,
                got_h: self.h,
                want_w: self.w,
                want_h: self.h,
            });
        }
        bgrx_to_i420(bgrx, self.w, self.h, &mut self.i420);
        debug_assert_eq!(self.i420.len(), i420_len(self.w, self.h));
        let mut image = MaybeUninit::<ffi::vpx_image_t>::zeroed();
        // SAFETY: `self.i420` holds exactly a packed I420 picture of `w`×`h` (even) with stride
        // alignment 1, which is what `vpx_img_wrap` describes; the image only borrows the buffer and is
        // used below while `self.i420` is neither moved nor changed.
        let wrapped = unsafe {
            ffi::vpx_img_wrap(
                image.as_mut_ptr(),
                ffi::vpx_img_fmt::VPX_IMG_FMT_I420,
                self.w as c_uint,
                self.h as c_uint,
                1,
                self.i420.as_mut_ptr(),
            )
        };
        if wrapped.is_null() {
            return Err(VideoError::Codec { what: "picture wrap", detail: "vpx_img_wrap refused".into() });
        }
        // A frame's share of the bitrate is the time since the last one, but at most 1/30 s: a stream
        // whose frames come slowly (a busy line, a busy CPU) spends less instead of making each frame
        // larger, so no frame holds the line for long. (The stream's clock advances by that share.)
        let gap = self.last_pts.map_or(FRAME_MS, |last| (pts_ms - last).clamp(1, FRAME_MS));
        self.last_pts = Some(pts_ms.max(self.last_pts.map_or(pts_ms, |l| l + 1)));
        self.clock += gap;
        let (pts_ms, duration) = (self.clock, gap as std::os::raw::c_ulong);
        let flags = if keyframe { ffi::VPX_EFLAG_FORCE_KF as ffi::vpx_enc_frame_flags_t } else { 0 };
        // SAFETY: an initialised encoder and the image wrapped just above (valid, see there); the
        // encoder copies what it needs before returning.
        let err = unsafe {
            ffi::vpx_codec_encode(&mut *self.ctx, wrapped, pts_ms, duration, flags, ffi::VPX_DL_REALTIME as _)
        };
        check(&mut self.ctx, "encode", err)?;
        let mut out = Vec::new();
        let mut iter: ffi::vpx_codec_iter_t = ptr::null();
        loop {
            // SAFETY: an initialised encoder and its own iterator, started at null as documented.
            let packet = unsafe { ffi::vpx_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if packet.is_null() {
                break;
            }
            // SAFETY: a non-null packet is valid until the next call on the context; for a frame packet
            // `data.frame.buf` points at `data.frame.sz` bytes, copied out at once.
            unsafe {
                if (*packet).kind == ffi::vpx_codec_cx_pkt_kind::VPX_CODEC_CX_FRAME_PKT {
                    let frame = (*packet).data.frame;
                    let len = usize::try_from(frame.sz).unwrap_or(0);
                    if !frame.buf.is_null() && len > 0 {
                        out.extend_from_slice(std::slice::from_raw_parts(frame.buf.cast::<u8>(), len));
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Drop for Encoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (a failed init never builds `Self`), destroyed only here.
        unsafe {
            ffi::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

/// A VP9 decoder for one region's stream; every picture must have the region's size.
pub struct Decoder {
    ctx: Box<ffi::vpx_codec_ctx_t>,
    w: u32,
    h: u32,
    /// A keyframe has been decoded (before one, inter frames have nothing to refer to).
    started: bool,
}

// SAFETY: as for `Encoder`: no thread affinity, and `&mut self` on every use.
unsafe impl Send for Decoder {}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "vp9::Decoder({}x{})", self.w, self.h)
    }
}

impl Decoder {
    /// A decoder for a region of `w`×`h` pixels.
    pub fn new(w: u32, h: u32) -> Result<Self, VideoError> {
        check_size(w, h)?;
        let cfg = ffi::vpx_codec_dec_cfg_t { threads: 1, w, h };
        // SAFETY: as in `Encoder::new`: a boxed zeroed context, a complete configuration, the bindings'
        // ABI version.
        let mut ctx: Box<ffi::vpx_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        let err = unsafe {
            ffi::vpx_codec_dec_init_ver(
                &mut *ctx,
                ffi::vpx_codec_vp9_dx(),
                &cfg,
                0,
                ffi::VPX_DECODER_ABI_VERSION as c_int,
            )
        };
        if err != ffi::vpx_codec_err_t::VPX_CODEC_OK {
            return Err(VideoError::Codec { what: "decoder start", detail: format!("{err:?}") });
        }
        Ok(Self { ctx, w, h, started: false })
    }

    /// Decode one VP9 frame and hand its picture to `show` (valid only during the call).
    pub fn decode<R>(&mut self, data: &[u8], show: impl FnOnce(&I420<'_>) -> R) -> Result<R, VideoError> {
        let len = c_uint::try_from(data.len())
            .map_err(|_| VideoError::Codec { what: "decode", detail: "frame too large".into() })?;
        let mut info = ffi::vpx_codec_stream_info_t {
            sz: std::mem::size_of::<ffi::vpx_codec_stream_info_t>() as c_uint,
            w: 0,
            h: 0,
            is_kf: 0,
        };
        // SAFETY: the static VP9 decoder interface, `data` readable for `len` bytes, `info` a live
        // struct with `sz` set as the call requires.
        let peeked = unsafe {
            ffi::vpx_codec_peek_stream_info(ffi::vpx_codec_vp9_dx(), data.as_ptr(), len, &mut info)
        };
        if peeked == ffi::vpx_codec_err_t::VPX_CODEC_OK && info.is_kf != 0 {
            if (info.w, info.h) != (self.w, self.h) {
                return Err(self.mismatch(info.w, info.h));
            }
            self.started = true;
        }
        if !self.started {
            return Err(VideoError::Codec {
                what: "decode",
                detail: "the stream does not start with a keyframe".into(),
            });
        }
        // SAFETY: an initialised decoder; `data` is readable for `len` bytes during the call.
        let err = unsafe { ffi::vpx_codec_decode(&mut *self.ctx, data.as_ptr(), len, ptr::null_mut(), 0) };
        check(&mut self.ctx, "decode", err)?;
        let mut iter: ffi::vpx_codec_iter_t = ptr::null();
        // SAFETY: an initialised decoder and its own iterator started at null.
        let image = unsafe { ffi::vpx_codec_get_frame(&mut *self.ctx, &mut iter) };
        if image.is_null() {
            return Err(VideoError::NoPicture);
        }
        // SAFETY: a non-null image from the decoder stays valid until the next call on the context,
        // which cannot happen while `self` is borrowed here.
        let image = unsafe { &*image };
        if image.fmt != ffi::vpx_img_fmt::VPX_IMG_FMT_I420 || image.bit_depth != 8 {
            return Err(VideoError::Format);
        }
        if (image.d_w, image.d_h) != (self.w, self.h) {
            return Err(self.mismatch(image.d_w, image.d_h));
        }
        let (y_stride, uv_stride) = (image.stride[0], image.stride[1]);
        if y_stride < self.w as c_int
            || uv_stride < self.w.div_ceil(2) as c_int
            || image.stride[2] != uv_stride
        {
            return Err(VideoError::Format);
        }
        let (y_stride, uv_stride) = (y_stride as usize, uv_stride as usize);
        let (h, ch) = (self.h as usize, self.h.div_ceil(2) as usize);
        let plane = |i: usize, len: usize| -> Result<&[u8], VideoError> {
            if image.planes[i].is_null() {
                return Err(VideoError::Format);
            }
            // SAFETY: libvpx allocates each plane of an 8-bit I420 picture of `d_h` rows with its
            // stride (at least the row width, checked above): `stride × rows` bytes are readable, and
            // the last row needs only its width. The slice lives no longer than `image` (see above).
            Ok(unsafe { std::slice::from_raw_parts(image.planes[i], len) })
        };
        let y = plane(0, (h - 1) * y_stride + self.w as usize)?;
        let cw = self.w.div_ceil(2) as usize;
        let u = plane(1, (ch - 1) * uv_stride + cw)?;
        let v = plane(2, (ch - 1) * uv_stride + cw)?;
        let picture = I420 { w: self.w, h: self.h, y, u, v, y_stride, uv_stride };
        Ok(show(&picture))
    }

    fn mismatch(&self, got_w: u32, got_h: u32) -> VideoError {
        VideoError::Mismatch { got_w, got_h, want_w: self.w, want_h: self.h }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed only here.
        unsafe {
            ffi::vpx_codec_destroy(&mut *self.ctx);
        }
    }
}

#[cfg(test)]
mod tests;
