//! Entry points for fuzzing every decoder that reads network input. The cargo-fuzz targets in `fuzz/`
//! call these, and `tests/tests/fuzz_corpus.rs` replays the saved corpus through them as an ordinary
//! test. Each must return (never panic) whatever the bytes.

use crate::codec::apply_tile;
use crate::frame::Frame;
use crate::input::InputEvent;
use crate::relay_proto::{ClientToRelay, RelayToClient};
use crate::session_proto::{FrameUpdate, Hello, HelloReply, HostControl, ViewerControl};
use crate::wire;

/// A decoder entry point.
pub type Target = fn(&[u8]);

/// The decoders, by the name of their fuzz target.
pub const TARGETS: &[(&str, Target)] = &[
    ("client_to_relay", client_to_relay),
    ("relay_to_client", relay_to_client),
    ("viewer_to_host", viewer_to_host),
    ("host_to_viewer", host_to_viewer),
    ("code", code),
    ("file_sender_msg", file_sender_msg),
    ("record_file", record_file),
    ("inventory", inventory),
];

pub fn client_to_relay(data: &[u8]) {
    let _ = wire::decode::<ClientToRelay>(data);
}

/// Decodes, and checks that whatever decodes shows nothing a relay should not be able to make a client
/// show: a nameplate is digits, names and error text hold no control or format characters.
pub fn relay_to_client(data: &[u8]) {
    use crate::relay_proto::RelayErrorKind;
    use crate::shown::is_showable_name;
    use crate::text::is_hidden_char;
    match wire::decode::<RelayToClient>(data) {
        Ok(RelayToClient::Registered { nameplate, .. }) => {
            assert!(crate::code::Nameplate::new(nameplate.as_str()).is_some(), "{nameplate:?}")
        }
        Ok(RelayToClient::PeerJoined { technician: Some(t), .. }) => {
            assert!(is_showable_name(&t.account) && is_showable_name(&t.organization), "{t:?}")
        }
        Ok(RelayToClient::Error { kind: RelayErrorKind::Protocol(text) }) => {
            assert!(!text.chars().any(is_hidden_char), "{text:?}")
        }
        Ok(RelayToClient::Redirect { relay }) => {
            assert!(crate::relay_proto::is_relay_address(&relay.address), "{relay:?}")
        }
        _ => {}
    }
}

/// Every stream's decoder on the host: the hello, control, input.
pub fn viewer_to_host(data: &[u8]) {
    let _ = wire::decode::<Hello>(data);
    let _ = wire::decode::<ViewerControl>(data);
    let _ = wire::decode::<InputEvent>(data);
}

/// Every stream's decoder on the viewer (the hello's reply, control, video) and, for frame updates,
/// every tile applied to a small screen — the full viewer path.
pub fn host_to_viewer(data: &[u8]) {
    let _ = wire::decode::<HelloReply>(data);
    let _ = wire::decode::<HostControl>(data);
    if let Ok(update) = wire::decode::<FrameUpdate>(data) {
        if let Ok(mut frame) = Frame::new(256, 256) {
            let mut scratch = Vec::new();
            for tile in &update.tiles {
                let _ = apply_tile(tile, &mut frame, &mut scratch);
            }
        }
    }
}

pub fn code(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::code::Code::parse(text);
    }
}

/// A file-transfer message as a receiver reads it, and an offer's full check (names, tree shape, sizes).
pub fn file_sender_msg(data: &[u8]) {
    use crate::files::proto::SenderMsg;
    if let Ok(SenderMsg::Offer { entries, total, .. }) = wire::decode::<SenderMsg>(data) {
        let _ = crate::files::receive::check_offer(&entries, total);
    }
}

/// A saved session record as `report verify` reads it (a file anyone may have edited): parsed, and the
/// chain checked.
pub fn record_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(file) = crate::record::file::RecordFile::from_json(text) {
            let _ = file.verify();
        }
    }
}

/// An inventory's joined parts as the viewer reassembles them (compressed postcard from the host):
/// decompressed within the cap and decoded, then shown as the System panel and the report would.
pub fn inventory(data: &[u8]) {
    if let Ok(info) = crate::inventory::pack::unpack(data) {
        let _ = info.summary();
        let _ = crate::record::file::RecordFile::new([0; 32], Vec::new()).with_inventories([&info]);
    }
}
