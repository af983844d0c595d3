//! The video of one participant: our unidirectional stream, opened after the welcome; the loop that
//! fills it is [`crate::video::run`].

use quinn::{Connection, SendStream};
use tether_shared::session_proto::priority;

use super::Stop;

/// Open our video stream (after the welcome, so the viewer knows the screen before the first frame).
pub(super) async fn open(conn: &Connection) -> Result<SendStream, Stop> {
    let send = conn.open_uni().await.map_err(|_| Stop::Done)?;
    let _ = send.set_priority(priority::SCREEN); // fails only on a closed stream
    Ok(send)
}
