//! Property tests: every message of every family survives encode → decode unchanged, and arbitrary bytes
//! never make a decoder panic.

use proptest::collection::vec;
use proptest::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use tether_shared::code::Nameplate;
use tether_shared::codec::{PackedTile, Tile, TileData};
use tether_shared::end::{EndReason, Side, Violation};
use tether_shared::input::{InputEvent, Key, MouseButton};
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role, VerifiedTechnician};
use tether_shared::session_proto::{
    FrameUpdate, Hello, HelloReply, HostControl, Permissions, RefusalReason, Request, ViewerControl,
};
use tether_shared::wire;

fn perms() -> impl Strategy<Value = Permissions> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(view, control, files)| Permissions {
        view,
        control,
        files,
    })
}

fn nameplate() -> impl Strategy<Value = Nameplate> {
    "[0-9]{1,9}".prop_map(|s| Nameplate::new(&s).expect("digits"))
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..300)
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<char>().prop_map(Key::Char),
        any::<u8>().prop_map(Key::F),
        prop::sample::select(vec![
            Key::Enter,
            Key::Tab,
            Key::Backspace,
            Key::Escape,
            Key::Space,
            Key::Delete,
            Key::Insert,
            Key::Home,
            Key::End,
            Key::PageUp,
            Key::PageDown,
            Key::Left,
            Key::Right,
            Key::Up,
            Key::Down,
            Key::Shift,
            Key::Control,
            Key::Alt,
            Key::Super,
        ]),
    ]
}

fn input() -> impl Strategy<Value = InputEvent> {
    let button = prop::sample::select(vec![
        MouseButton::Left,
        MouseButton::Middle,
        MouseButton::Right,
        MouseButton::Back,
        MouseButton::Forward,
    ]);
    prop_oneof![
        (any::<i32>(), any::<i32>()).prop_map(|(x, y)| InputEvent::MouseMove { x, y }),
        (button, any::<bool>()).prop_map(|(button, pressed)| InputEvent::MouseButton { button, pressed }),
        (any::<i32>(), any::<i32>()).prop_map(|(dx, dy)| InputEvent::Wheel { dx, dy }),
        (key(), any::<bool>()).prop_map(|(key, pressed)| InputEvent::Key { key, pressed }),
        ".{0,40}".prop_map(InputEvent::Text),
    ]
}

fn packed_tile() -> impl Strategy<Value = PackedTile> {
    (0u32..300, 0u32..300, 0u32..80, 0u32..80).prop_map(|(x, y, w, h)| PackedTile { x, y, w, h })
}

fn tile() -> impl Strategy<Value = Tile> {
    let data = prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(src_x, src_y)| TileData::Copy { src_x, src_y }),
        any::<[u8; 4]>().prop_map(TileData::Solid),
        (bytes(), bytes()).prop_map(|(colours, indices)| TileData::Palette { colours, indices }),
        bytes().prop_map(TileData::Zstd),
        bytes().prop_map(TileData::Raw),
        bytes().prop_map(TileData::Jpeg),
        (vec(packed_tile(), 0..5), bytes()).prop_map(|(tiles, stream)| TileData::Packed { tiles, stream }),
    ];
    (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>(), data).prop_map(|(x, y, w, h, data)| Tile {
        x,
        y,
        w,
        h,
        data,
    })
}

fn relay_error() -> impl Strategy<Value = RelayErrorKind> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(relay, client)| RelayErrorKind::VersionMismatch { relay, client }),
        prop::sample::select(vec![
            RelayErrorKind::UnknownCode,
            RelayErrorKind::Expired,
            RelayErrorKind::AlreadyUsed,
            RelayErrorKind::WrongCode,
            RelayErrorKind::PeerWrongCode,
            RelayErrorKind::RateLimited,
            RelayErrorKind::Busy,
            RelayErrorKind::Timeout,
            RelayErrorKind::AuthRequired,
            RelayErrorKind::BadToken,
            RelayErrorKind::Revoked,
            RelayErrorKind::ShuttingDown,
            RelayErrorKind::UnknownSession,
            RelayErrorKind::TooManyWrongCodes,
        ]),
        "[a-zA-Z0-9 :!?,.é{}()-]{0,40}".prop_map(RelayErrorKind::Protocol),
    ]
}

fn client_to_relay() -> impl Strategy<Value = ClientToRelay> {
    let role = prop::sample::select(vec![Role::Host, Role::Viewer]);
    prop_oneof![
        (any::<u32>(), role).prop_map(|(version, role)| ClientToRelay::Hello { version, role }),
        Just(ClientToRelay::Register),
        (nameplate(), prop::option::of(".{0,60}")).prop_map(|(nameplate, token)| ClientToRelay::Claim {
            nameplate,
            token: token.map(tether_shared::token::Token::new)
        }),
        bytes().prop_map(|msg| ClientToRelay::Pake { msg }),
        bytes().prop_map(|msg| ClientToRelay::Confirm { msg }),
        any::<bool>().prop_map(|ok| ClientToRelay::PairingResult { ok }),
        any::<[u8; 32]>().prop_map(|resume_id| ClientToRelay::Rejoin { resume_id }),
        any::<[u8; 32]>().prop_map(|commitment| ClientToRelay::ResumeCommit { commitment }),
    ]
}

fn relay_to_client() -> impl Strategy<Value = RelayToClient> {
    prop_oneof![
        any::<u32>().prop_map(|version| RelayToClient::Welcome { version }),
        (nameplate(), any::<u64>()).prop_map(|(nameplate, expires_in_ms)| {
            RelayToClient::Registered { nameplate, expires_in_ms }
        }),
        // Names a relay may send (decoding refuses control and format characters).
        (any::<u64>(), prop::option::of(("[a-zA-Z0-9@. é]{0,20}", "[a-zA-Z0-9 &ü]{0,20}"))).prop_map(
            |(tag, t)| {
                let technician =
                    t.map(|(account, organization)| VerifiedTechnician::new(account, organization));
                RelayToClient::PeerJoined { tag, technician }
            }
        ),
        bytes().prop_map(|msg| RelayToClient::PeerPake { msg }),
        bytes().prop_map(|msg| RelayToClient::PeerConfirm { msg }),
        Just(RelayToClient::SessionReady),
        Just(RelayToClient::PairingFailed),
        Just(RelayToClient::CodeExpired),
        Just(RelayToClient::PeerGone),
        relay_error().prop_map(|kind| RelayToClient::Error { kind }),
    ]
}

fn end_reason() -> impl Strategy<Value = EndReason> {
    prop_oneof![
        Just(EndReason::ViewerLeft),
        Just(EndReason::HostStopped),
        Just(EndReason::PeerVanished { peer: Side::Host }),
        Just(EndReason::Relay(RelayErrorKind::Revoked)),
        Just(EndReason::TimedOut),
        ".{0,40}".prop_map(|why| EndReason::ProtocolViolation {
            by: Side::Viewer,
            detail: Violation::BadFrame(why)
        }),
        any::<u64>().prop_map(|code| EndReason::PeerClosed { peer: Side::Viewer, code }),
        ".{0,40}".prop_map(EndReason::ConnectionLost),
    ]
}

/// The viewer's messages, one per stream: the hello, control, input.
fn viewer_to_host() -> impl Strategy<Value = (Hello, ViewerControl, InputEvent)> {
    let hello = (any::<u32>(), ".{0,40}", perms()).prop_map(|(version, technician, want)| Hello {
        version,
        technician,
        want,
    });
    let control = prop_oneof![
        any::<u64>().prop_map(|seq| ViewerControl::FrameAck { seq }),
        ".{0,40}".prop_map(|text| ViewerControl::Request(Request::Chat { text })),
        perms().prop_map(|p| ViewerControl::Request(Request::RequestPermissions(p))),
        end_reason().prop_map(|reason| ViewerControl::Bye { reason }),
    ];
    (hello, control, input())
}

/// The host's messages, one per stream: the hello's reply, control, video.
fn host_to_viewer() -> impl Strategy<Value = (HelloReply, HostControl, FrameUpdate)> {
    let refusal = prop_oneof![
        Just(RefusalReason::Declined),
        (any::<u32>(), any::<u32>())
            .prop_map(|(host, viewer)| RefusalReason::VersionMismatch { host, viewer }),
    ];
    let update = (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>(), vec(tile(), 0..6), any::<bool>())
        .prop_map(|(seq, capture_id, width, height, tiles, last)| FrameUpdate {
            seq,
            capture_id,
            width,
            height,
            tiles,
            last,
        });
    let reply = prop_oneof![
        (any::<u32>(), perms(), any::<u32>(), any::<u32>()).prop_map(|(version, granted, width, height)| {
            HelloReply::Welcome { version, granted, width, height }
        }),
        refusal.prop_map(|reason| HelloReply::Refused { reason }),
    ];
    let control = prop_oneof![
        perms().prop_map(HostControl::PermissionsChanged),
        end_reason().prop_map(|reason| HostControl::Bye { reason }),
        ".{0,40}".prop_map(|text| HostControl::Notice { text }),
    ];
    (reply, control, update)
}

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    msg: &T,
) -> Result<(), TestCaseError> {
    let framed = wire::encode(msg, wire::MAX_VIDEO_MSG).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let len =
        wire::check_len(framed[..4].try_into().expect("4 bytes"), wire::MAX_VIDEO_MSG).expect("within cap");
    prop_assert_eq!(len, framed.len() - 4);
    let back: T = wire::decode(&framed[4..]).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, msg);
    Ok(())
}

proptest! {
    #[test]
    fn client_to_relay_round_trips(msg in client_to_relay()) { round_trip(&msg)?; }

    #[test]
    fn relay_to_client_round_trips(msg in relay_to_client()) { round_trip(&msg)?; }

    #[test]
    fn viewer_to_host_round_trips((hello, control, input) in viewer_to_host()) {
        round_trip(&hello)?;
        round_trip(&control)?;
        round_trip(&input)?;
    }

    #[test]
    fn host_to_viewer_round_trips((reply, control, update) in host_to_viewer()) {
        round_trip(&reply)?;
        round_trip(&control)?;
        round_trip(&update)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_a_decoder(data in vec(any::<u8>(), 0..2048)) {
        for (_, decode) in tether_shared::fuzz::TARGETS {
            decode(&data);
        }
    }
}
