//! Replays the saved fuzz corpus (`fuzz/corpus/<target>/*`) through every decoder as an ordinary test:
//! each input must be handled without a panic. `write_seed_corpus` (ignored) regenerates the seeds:
//! valid encodings of every message kind plus truncated and bit-flipped variants.

use std::path::PathBuf;

use tether_shared::code::Nameplate;
use tether_shared::codec::{encode_tile, PartEncoder, Quality, Tile, TileData};
use tether_shared::end::EndReason;
use tether_shared::fuzz::TARGETS;
use tether_shared::input::{InputEvent, Key, MouseButton};
use tether_shared::relay_proto::{ClientToRelay, RelayErrorKind, RelayToClient, Role, VerifiedTechnician};
use tether_shared::session_proto::{
    ChatLine, FrameUpdate, Hello, HelloReply, History, HostControl, InviteNews, LinkReport, Member, Notes,
    Permissions, RefusalReason, Request, Roster, ScreenQuality, SenderAction, ViewerControl,
};
use tether_shared::token::Token;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

/// Every fuzz target: the shared crate's decoders and the video path's.
fn targets() -> impl Iterator<Item = &'static (&'static str, tether_shared::fuzz::Target)> {
    TARGETS.iter().chain(tether_video::fuzz::TARGETS)
}

#[test]
fn replay_fuzz_corpus() {
    for (name, decode) in targets() {
        let dir = corpus_dir().join(name);
        let entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").path())
            .collect();
        assert!(entries.len() >= 5, "{name}: only {} corpus files", entries.len());
        for path in entries {
            let data = std::fs::read(&path).expect("read");
            decode(&data);
        }
    }
}

fn body<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    tether_shared::wire::encode(msg, usize::MAX).expect("encode")[4..].to_vec()
}

/// A short string as postcard encodes it: its length, then its bytes.
fn text(s: &str) -> Vec<u8> {
    assert!(s.len() < 128, "one length byte");
    [&[s.len() as u8][..], s.as_bytes()].concat()
}

fn seeds(name: &str) -> Vec<Vec<u8>> {
    let np = Nameplate::new("482").expect("digits");
    let tile = {
        let px: Vec<u8> = (0..64 * 4 * 4).map(|i| (i * 7 % 251) as u8).collect();
        encode_tile(0, 0, 16, 16, &px, Quality::Lossless)
    };
    // A part as the host's encoder sends it: a copy, a solid tile and a bundle of palette and BGR tiles.
    let part = {
        let mut part = PartEncoder::new(Quality::Lossless);
        part.push_tile(tether_shared::codec::copy_tile(0, 100, 64, 64, 0, 90));
        part.push(0, 0, 16, 16, &[9; 16 * 16 * 4]);
        let text: Vec<u8> = (0..32 * 8 * 4).map(|i| if i % 12 < 4 { 0 } else { 255 }).collect();
        part.push(16, 0, 32, 8, &text);
        let noise: Vec<u8> =
            (0..24 * 24 * 4u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        part.push(64, 64, 24, 24, &noise);
        part.finish()
    };
    match name {
        "client_to_relay" => vec![
            body(&ClientToRelay::Hello { version: 1, role: Role::Host }),
            body(&ClientToRelay::Register),
            body(&ClientToRelay::RegisterInvite { session: [7; 32] }),
            body(&ClientToRelay::RecordHead { len: 12, head: [9; 32] }),
            body(&ClientToRelay::Claim { nameplate: np.clone(), token: None }),
            body(&ClientToRelay::Claim {
                nameplate: np,
                token: Some(Token::new("tether1.relay.example.org.1.00ff")),
            }),
            body(&ClientToRelay::Pake { msg: vec![1; 33] }),
            body(&ClientToRelay::Confirm { msg: vec![2; 64] }),
            body(&ClientToRelay::PairingResult { ok: false }),
        ],
        "relay_to_client" => vec![
            body(&RelayToClient::Welcome { version: 1 }),
            body(&RelayToClient::Registered { nameplate: np, expires_in_ms: 600_000 }),
            body(&RelayToClient::PeerJoined { tag: u64::MAX, technician: None }),
            body(&RelayToClient::PeerJoined {
                tag: 7,
                technician: Some(VerifiedTechnician::new("ann", "Acme")),
            }),
            body(&RelayToClient::Error { kind: RelayErrorKind::Revoked }),
            body(&RelayToClient::PeerPake { msg: vec![3; 33] }),
            body(&RelayToClient::SessionReady),
            body(&RelayToClient::Error { kind: RelayErrorKind::VersionMismatch { relay: 1, client: 2 } }),
            body(&RelayToClient::Error { kind: RelayErrorKind::Protocol("x".into()) }),
            body(&RelayToClient::Redirect {
                relay: tether_shared::relay_proto::RelayAddress {
                    address: "relay-b.example.org:4433".into(),
                    fingerprint: [9; 32],
                },
            }),
            // What a hostile relay may send: a "code" that is not digits, a verified name with a
            // bidirectional override, error text with a line break. Each must be refused or made safe.
            [&[1][..], &text("CALL 0800-SCAM"), &[1]].concat(),
            [&[2, 7, 1][..], &text("alice\u{202E}gpj.exe"), &text("Acme")].concat(),
            [&[10, 9][..], &text("x\nINFO forged line")].concat(),
        ],
        "viewer_to_host" => vec![
            body(&Hello { version: 1, technician: "Ann".into(), want: Permissions::ALL }),
            body(&ViewerControl::FrameAck { seq: 7 }),
            body(&ViewerControl::Request(Request::Chat { text: "hi".into() })),
            body(&ViewerControl::Request(Request::SetQuality(ScreenQuality::Auto))),
            body(&ViewerControl::Request(Request::Invite)),
            body(&ViewerControl::Request(Request::RequestControl)),
            body(&ViewerControl::Request(Request::HandOverControl { to: u64::MAX })),
            body(&ViewerControl::RecordHead { len: 3, mac: [7; 32] }),
            body(&ViewerControl::Request(Request::SaveNotes(Notes {
                problem: "printer\u{202E}".into(),
                steps: "a\nb".into(),
                resolution: String::new(),
                ticket: "HD-1".into(),
            }))),
            body(&InputEvent::MouseMove { x: -5, y: 9 }),
            body(&InputEvent::Key { key: Key::F(12), pressed: true }),
            body(&InputEvent::MouseButton { button: MouseButton::Back, pressed: false }),
            body(&InputEvent::Text("héllo".into())),
            body(&ViewerControl::Bye { reason: EndReason::ViewerLeft }),
        ],
        "host_to_viewer" => vec![
            body(&HelloReply::Welcome {
                version: 1,
                granted: Permissions::VIEW_ONLY,
                width: 1920,
                height: 1080,
            }),
            body(&HelloReply::Refused { reason: RefusalReason::Declined }),
            body(&FrameUpdate {
                seq: 1,
                capture_id: 2,
                width: 256,
                height: 256,
                tiles: vec![tile],
                last: true,
            }),
            body(&FrameUpdate {
                seq: 1,
                capture_id: 2,
                width: 256,
                height: 256,
                tiles: vec![
                    Tile { x: 0, y: 0, w: 64, h: 64, data: TileData::Solid([1, 2, 3, 0]) },
                    Tile { x: 200, y: 200, w: 64, h: 64, data: TileData::Raw(vec![0; 12]) },
                    Tile { x: 0, y: 64, w: 64, h: 64, data: TileData::Copy { src_x: 0, src_y: 0 } },
                    Tile {
                        x: 0,
                        y: 0,
                        w: 2,
                        h: 2,
                        data: TileData::Palette { colours: vec![1, 2, 3], indices: vec![9; 9] },
                    },
                    Tile {
                        x: 0,
                        y: 0,
                        w: 8,
                        h: 8,
                        data: TileData::Jpeg(vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
                    },
                ],
                last: false,
            }),
            body(&HostControl::PermissionsChanged(Permissions::ALL)),
            body(&HostControl::Link(LinkReport {
                rtt_ms: 45,
                path_rtt_ms: Some(40),
                queue_ms: 5,
                bandwidth_bps: Some(4_800_000),
                action: SenderAction::ReducedQuality { jpeg_quality: 45 },
            })),
            body(&HostControl::Bye { reason: EndReason::Relay(RelayErrorKind::Revoked) }),
            body(&HostControl::Invite(InviteNews::Code { code: "482-913-5071".into(), expires_secs: 600 })),
            body(&HostControl::Invite(InviteNews::Unavailable { why: "no\u{202E}".into() })),
            body(&HostControl::Participants(Roster {
                you: 2,
                members: vec![Member {
                    id: 1,
                    name: "Alice\u{202E}".into(),
                    verified: true,
                    invited_by: Some("Bob\n".into()),
                    permissions: Permissions::ALL,
                    wants_control: true,
                }],
                control: Some(1),
            })),
            body(&HostControl::ColleagueChat { from: "Bob".into(), text: "line\u{202E}two".into() }),
            body(&HostControl::Record { entry: record_entries(2)[1].clone(), mac: [1; 32] }),
            body(&HostControl::History(History {
                chat: vec![ChatLine { from: "the user".into(), text: "hi".into() }],
                log: vec!["Alice connected.".into()],
            })),
            body(&FrameUpdate { seq: 3, capture_id: 4, width: 256, height: 256, tiles: part, last: true }),
        ],
        "file_sender_msg" => {
            use tether_shared::files::proto::{Entry, EntryKind, SenderMsg};
            let entry =
                |path: &[&str], kind| Entry { path: path.iter().map(|s| s.to_string()).collect(), kind };
            vec![
                body(&SenderMsg::Offer {
                    id: [1; 16],
                    entries: vec![
                        entry(&["d"], EntryKind::Dir),
                        entry(&["d", "f.txt"], EntryKind::File { size: 3 }),
                    ],
                    total: 3,
                }),
                body(&SenderMsg::Offer {
                    id: [2; 16],
                    entries: vec![entry(&["..", "x"], EntryKind::File { size: 1 })],
                    total: 1,
                }),
                body(&SenderMsg::Offer {
                    id: [3; 16],
                    entries: vec![entry(&["CON"], EntryKind::Dir)],
                    total: 0,
                }),
                body(&SenderMsg::Chunk { file: 0, offset: 0, len: 3, hash: [0; 32] }),
                body(&SenderMsg::FileEnd { file: 0, hash: [9; 32] }),
                body(&SenderMsg::Done),
            ]
        }
        "code" => ["482-913-5071", "4829135071", " 1234 567 8901 ", "12-34", "abc", "482–913–5071"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect(),
        "video_updates" => video_seeds(),
        "record_file" => record_file_seeds(),
        "inventory" => inventory_seeds(),
        other => panic!("no seeds for {other}"),
    }
}

/// Sequences of frame updates with a real VP9 stream: a keyframe, inter frames, tiles around it; then
/// the same stream in a wrong rectangle, an inter frame first, and a new stream in mid-flight.
fn video_seeds() -> Vec<Vec<u8>> {
    use tether_video::fuzz::frame_messages;
    let mut enc = tether_video::vp9::Encoder::new(64, 48, 300).expect("encoder");
    let frames: Vec<Vec<u8>> = (0..4u32)
        .map(|n| {
            let px: Vec<u8> = (0..64 * 48 * 4u32).map(|i| ((i / 4 + n * 5) * 7 % 251) as u8).collect();
            enc.encode(&px, i64::from(n) * 33, n == 0).expect("encode")
        })
        .collect();
    let update = |seq: u64, tiles: Vec<Tile>| {
        body(&FrameUpdate { seq, capture_id: seq, width: 256, height: 256, tiles, last: true })
    };
    let video = |x, y, w, h, stream, n: usize| Tile {
        x,
        y,
        w,
        h,
        data: TileData::Video { stream, frame: frames[n].clone() },
    };
    let text = encode_tile(100, 100, 16, 16, &[200; 16 * 16 * 4], Quality::Lossless);
    vec![
        frame_messages(&[
            update(0, vec![video(10, 20, 64, 48, 0, 0), text.clone()]),
            update(1, vec![video(10, 20, 64, 48, 0, 1)]),
            update(2, vec![video(10, 20, 64, 48, 0, 2), text]),
            update(3, vec![video(10, 20, 64, 48, 0, 3)]),
        ]),
        frame_messages(&[update(0, vec![video(0, 0, 64, 48, 0, 1), video(0, 0, 64, 48, 0, 0)])]),
        frame_messages(&[update(0, vec![video(200, 220, 64, 48, 0, 0), video(0, 0, 96, 48, 0, 0)])]),
        frame_messages(&[
            update(0, vec![video(0, 0, 64, 48, 7, 0)]),
            update(1, vec![video(0, 0, 64, 48, 8, 1), video(0, 0, 64, 48, 7, 2)]),
        ]),
    ]
}

#[test]
#[ignore = "regenerates fuzz/corpus; run with --ignored after changing a message"]
fn write_seed_corpus() {
    for (name, _) in targets() {
        let dir = corpus_dir().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (i, seed) in seeds(name).into_iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:02}")), &seed).expect("write");
            std::fs::write(dir.join(format!("seed-{i:02}-truncated")), &seed[..seed.len() / 2])
                .expect("write");
            let mut flipped = seed.clone();
            if let Some(b) = flipped.first_mut() {
                *b ^= 0x80;
            }
            std::fs::write(dir.join(format!("seed-{i:02}-flipped")), &flipped).expect("write");
        }
    }
}

/// A session record of `n` entries (a chat line each).
fn record_entries(n: usize) -> Vec<tether_shared::record::chain::Entry> {
    use tether_shared::record::{chain::Chain, EventKind, SessionEvent, Side};
    let mut chain = Chain::new(&[3; 32]);
    (0..n)
        .map(|i| {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000 + i as u64);
            chain.append(SessionEvent::new(
                at,
                EventKind::Chat { from: Side::Technician, text: format!("line {i}") },
            ))
        })
        .collect()
}

/// Saved records: a valid one, one with an edited line, one cut short, and not quite JSON.
fn record_file_seeds() -> Vec<Vec<u8>> {
    use tether_shared::record::file::RecordFile;
    let valid = RecordFile::new([3; 32], record_entries(3)).to_json();
    let edited = valid.replace("line 1", "line X");
    let mut short = RecordFile::new([3; 32], record_entries(3));
    short.entries.pop();
    vec![
        valid.clone().into_bytes(),
        edited.into_bytes(),
        short.to_json().into_bytes(),
        valid.as_bytes()[..40].to_vec(),
    ]
}

/// Inventories as the host packs them: an empty one, a full one, and one cut short.
fn inventory_seeds() -> Vec<Vec<u8>> {
    use tether_shared::inventory::{pack, Package, Readable, Service, SystemInfo};
    let joined = |info: &SystemInfo| -> Vec<u8> {
        pack::pack(info).expect("packs").into_iter().flat_map(|p| p.bytes).collect()
    };
    let full = SystemInfo {
        hostname: "pc-17".into(),
        packages: Readable::Read(vec![Package {
            name: "bash".into(),
            version: "5.2".into(),
            arch: "amd64".into(),
        }]),
        services: Readable::Read(vec![Service {
            unit: "cups.service".into(),
            description: "CUPS".into(),
            active: "failed".into(),
            sub: "failed".into(),
        }]),
        ..SystemInfo::default()
    };
    let whole = joined(&full);
    vec![joined(&SystemInfo::default()), whole.clone(), whole[..whole.len() / 2].to_vec()]
}
