//! Installed packages from dpkg's database (`/var/lib/dpkg/status`, deb822 paragraphs read with
//! deb822-fast): what `dpkg-query -W` lists as installed. rpm-based systems are not read yet (Tether ships
//! Debian packages); the panel says so.

use std::io::BufReader;
use std::path::Path;

use deb822_fast::Deb822;
use tether_shared::inventory::{Package, Readable};

/// dpkg's status database.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";

/// The installed packages in the dpkg status file at `path`, sorted by name; why not, if it cannot be
/// read.
pub fn read(path: &Path) -> Readable<Vec<Package>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Readable::Unreadable("no dpkg database (not a Debian-family system)".into())
        }
        Err(e) => return Readable::Unreadable(format!("{}: {e}", path.display())),
    };
    let mut packages = Vec::new();
    for paragraph in Deb822::iter_paragraphs_from_reader(BufReader::new(file)) {
        let paragraph = match paragraph {
            Ok(p) => p,
            Err(e) => return Readable::Unreadable(format!("{} is malformed: {e}", path.display())),
        };
        // "install ok installed": the last word is the package's state.
        let installed =
            paragraph.get("Status").and_then(|s| s.split_whitespace().nth(2)) == Some("installed");
        if let (true, Some(name)) = (installed, paragraph.get("Package")) {
            packages.push(Package {
                name: name.to_owned(),
                version: paragraph.get("Version").unwrap_or_default().to_owned(),
                arch: paragraph.get("Architecture").unwrap_or_default().to_owned(),
            });
        }
    }
    packages.sort();
    Readable::Read(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_are_listed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = dir.path().join("status");
        std::fs::write(
            &status,
            "Package: zsh\nStatus: install ok installed\nVersion: 5.9-4\nArchitecture: amd64\nDescription: shell\n \
             with a continuation line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
             Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2\nArchitecture: amd64\n",
        )
        .expect("write");
        let Readable::Read(packages) = read(&status) else { panic!("reads") };
        let names: Vec<&str> = packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bash", "zsh"]);
        assert_eq!(packages[0].version, "5.2.15-2");
        assert!(
            matches!(read(&dir.path().join("none")), Readable::Unreadable(why) if why.contains("no dpkg"))
        );
    }
}
