//! The X server's monitors (RandR), in the same order scrap enumerates them, with their origin on the
//! root window — which scrap does not expose, and which input mapping and cursor positions need.

use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::ConnectionExt as _;

use super::CaptureError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Monitor {
    pub index: usize,
    pub name: String,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
    pub primary: bool,
}

impl From<&Monitor> for tether_shared::session_proto::MonitorInfo {
    fn from(m: &Monitor) -> Self {
        Self { name: m.name.clone(), width: m.width, height: m.height, primary: m.primary }
    }
}

impl std::fmt::Display for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} {}x{}+{}+{}", self.index, self.name, self.width, self.height, self.x, self.y)?;
        if self.primary {
            f.write_str(" (primary)")?;
        }
        Ok(())
    }
}

fn failed(e: impl std::fmt::Display) -> CaptureError {
    CaptureError::Failed(format!("X11: {e}"))
}

/// Monitors of the display `name` (`None`: `$DISPLAY`).
pub fn list(display: Option<&str>) -> Result<Vec<Monitor>, CaptureError> {
    let (conn, screen) = x11rb::connect(display).map_err(failed)?;
    list_on(&conn, screen)
}

pub(crate) fn list_on(conn: &impl Connection, screen: usize) -> Result<Vec<Monitor>, CaptureError> {
    let root = conn.setup().roots.get(screen).ok_or_else(|| failed("no such screen"))?.root;
    let reply = conn.randr_get_monitors(root, true).map_err(failed)?.reply().map_err(failed)?;
    let mut monitors = Vec::new();
    for (index, m) in reply.monitors.iter().enumerate() {
        let name = conn
            .get_atom_name(m.name)
            .ok()
            .and_then(|c| c.reply().ok())
            .map(|r| String::from_utf8_lossy(&r.name).into_owned())
            .unwrap_or_else(|| format!("monitor-{index}"));
        monitors.push(Monitor {
            index,
            name,
            x: m.x.into(),
            y: m.y.into(),
            width: m.width.into(),
            height: m.height.into(),
            primary: m.primary,
        });
    }
    Ok(monitors)
}
