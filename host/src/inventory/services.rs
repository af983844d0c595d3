//! Services from systemd's D-Bus API (`org.freedesktop.systemd1.Manager.ListUnits` on the system bus):
//! every loaded `.service` unit with its state, failed ones first. No systemd (a container, another init)
//! or no system bus is said as such.

use std::time::Duration;

use tether_shared::inventory::{Readable, Service};
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

/// systemd's answer to `ListUnits`: name, description, load state, active state, sub state, followed
/// unit, object path, queued job id, job type, job path (D-Bus signature `a(ssssssouso)`).
pub type UnitRow =
    (String, String, String, String, String, String, OwnedObjectPath, u32, String, OwnedObjectPath);

/// systemd's name on the bus.
const SYSTEMD: &str = "org.freedesktop.systemd1";

/// systemd answers in milliseconds; a bus that hangs must not hold the panel up.
const WAIT: Duration = Duration::from_secs(5);

/// The services on this machine's system bus.
pub async fn read_system() -> Readable<Vec<Service>> {
    match tokio::time::timeout(WAIT, Connection::system()).await {
        Ok(Ok(bus)) => read(&bus).await,
        Ok(Err(e)) => {
            tracing::debug!("no system bus: {e}");
            Readable::Unreadable("systemd is not running here (there is no system D-Bus to ask it)".into())
        }
        Err(_) => Readable::Unreadable("the system D-Bus did not answer".into()),
    }
}

/// The services systemd on `bus` lists.
pub async fn read(bus: &Connection) -> Readable<Vec<Service>> {
    // Asked first, so a bus that could start systemd on demand (a session bus) does not try to.
    let running = async {
        let name = zbus::names::BusName::try_from(SYSTEMD)?;
        zbus::fdo::DBusProxy::new(bus).await?.name_has_owner(name).await.map_err(zbus::Error::from)
    };
    match tokio::time::timeout(WAIT, running).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return Readable::Unreadable("systemd is not running on this machine".into()),
        Ok(Err(e)) => {
            return Readable::Unreadable(format!("the system D-Bus did not say who runs there ({e})"))
        }
        Err(_) => return Readable::Unreadable("the system D-Bus did not answer".into()),
    }
    let call = bus.call_method(
        Some(SYSTEMD),
        "/org/freedesktop/systemd1",
        Some("org.freedesktop.systemd1.Manager"),
        "ListUnits",
        &(),
    );
    let reply = match tokio::time::timeout(WAIT, call).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => return Readable::Unreadable(format!("systemd did not list its units ({e})")),
        Err(_) => return Readable::Unreadable("systemd did not answer".into()),
    };
    let rows: Vec<UnitRow> = match reply.body().deserialize() {
        Ok(rows) => rows,
        Err(e) => return Readable::Unreadable(format!("systemd's list of units is malformed ({e})")),
    };
    let mut services: Vec<Service> = rows
        .into_iter()
        .filter(|row| row.0.ends_with(".service"))
        .map(|(unit, description, _load, active, sub, ..)| Service { unit, description, active, sub })
        .collect();
    services.sort_by(|a, b| b.failed().cmp(&a.failed()).then_with(|| a.unit.cmp(&b.unit)));
    Readable::Read(services)
}

#[cfg(test)]
mod tests {
    //! systemd cannot run in this test's container, so a stand-in serves the same D-Bus interface on a
    //! private bus (a real dbus-daemon) and the real reader asks it.
    use std::process::Stdio;

    use tokio::io::AsyncBufReadExt;

    use super::*;

    struct FakeSystemd(Vec<UnitRow>);

    #[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
    impl FakeSystemd {
        fn list_units(&self) -> Vec<UnitRow> {
            self.0.clone()
        }
    }

    fn unit(name: &str, active: &str, sub: &str) -> UnitRow {
        let path = OwnedObjectPath::try_from("/org/freedesktop/systemd1/unit/x").expect("path");
        (
            name.into(),
            format!("{name} here"),
            "loaded".into(),
            active.into(),
            sub.into(),
            String::new(),
            path.clone(),
            0,
            String::new(),
            path,
        )
    }

    /// A private bus: the daemon, and its address.
    async fn private_bus() -> (tokio::process::Child, String) {
        let mut daemon = tokio::process::Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("dbus-daemon (package dbus-daemon) runs");
        let stdout = daemon.stdout.take().expect("piped");
        let mut address = String::new();
        tokio::io::BufReader::new(stdout).read_line(&mut address).await.expect("address");
        (daemon, address.trim().to_owned())
    }

    #[tokio::test]
    async fn units_come_from_systemd_s_interface_with_failed_ones_first() {
        let (_daemon, address) = private_bus().await;
        let rows = vec![
            unit("ssh.service", "active", "running"),
            unit("cups.service", "failed", "failed"),
            unit("home.mount", "active", "mounted"),
        ];
        let _systemd = zbus::connection::Builder::address(address.as_str())
            .expect("address")
            .name("org.freedesktop.systemd1")
            .expect("name")
            .serve_at("/org/freedesktop/systemd1", FakeSystemd(rows))
            .expect("serve")
            .build()
            .await
            .expect("the stand-in is on the bus");
        let bus = zbus::connection::Builder::address(address.as_str())
            .expect("address")
            .build()
            .await
            .expect("bus");
        let Readable::Read(services) = read(&bus).await else { panic!("reads") };
        let units: Vec<&str> = services.iter().map(|s| s.unit.as_str()).collect();
        assert_eq!(units, ["cups.service", "ssh.service"], "services only, failed first");
        assert!(services[0].failed() && !services[1].failed());
        assert_eq!(services[1].description, "ssh.service here");
    }

    #[tokio::test]
    async fn a_bus_without_systemd_says_so() {
        let (_daemon, address) = private_bus().await;
        let bus = zbus::connection::Builder::address(address.as_str())
            .expect("address")
            .build()
            .await
            .expect("bus");
        match read(&bus).await {
            Readable::Unreadable(why) => assert_eq!(why, "systemd is not running on this machine"),
            Readable::Read(_) => panic!("nobody answers"),
        }
    }
}
