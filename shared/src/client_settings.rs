//! The settings file of the host and the viewer: which relay to use and how to trust it, the
//! organization's name, what to allow by default. With it a person starts either program from the desktop
//! menu with no flags at all: an organization installs `/etc/tether/host.toml` (the file
//! `tether-relay client-config` prints); a user may have
//! `~/.config/tether/host.toml` (or under `$XDG_CONFIG_HOME`). A key in the user's file overrides the
//! system's, and a command-line flag overrides both. `TETHER_HOST_CONFIG` names the one file to read
//! instead (tests, or a portable setup). Host and viewer read the same files, so one file serves an
//! organization's end users and its technicians.
//!
//! ```toml
//! relay = "relay.example.org:4433"
//! # Without it, the relay's certificate must be signed by an authority the system trusts.
//! relay_fingerprint = "9f86d081…"   # 64 hex digits, as `tether-relay` prints it
//! organization = "Example IT"         # shown in the host window ("Help from Example IT")
//! permissions = "view,control"        # what the host's question ticks by default (the user decides)
//!
//! # An organization with several relays (sharing one database) lists the others; the host makes each
//! # code on whichever answers first, and a viewer on any of them is sent to it.
//! [[other_relays]]
//! address = "relay-b.example.org:4433"
//! fingerprint = "3c9d1e77…"           # optional, as relay_fingerprint
//! ```
//!
//! An unknown key is an error naming the file and the line: a misspelt setting never goes unnoticed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::session_proto::Permissions;
use crate::tls::{BadFingerprint, Fingerprint};

/// What a settings file may say. Every key is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// The relay, as HOST:PORT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    /// The relay's certificate fingerprint, 64 hex digits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_fingerprint: Option<String>,
    /// The organization whose help desk this is, as the host window names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// What the host's question ticks by default of what a technician asks, e.g. `view,control`
    /// (the user can still tick more or less); and what a headless host grants without `--grant`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    /// The organization's other relays (the host uses whichever answers first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_relays: Vec<OtherRelay>,
}

/// Another relay of the organization, in the settings file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OtherRelay {
    /// HOST:PORT.
    pub address: String,
    /// Its certificate's fingerprint, 64 hex digits (without: a CA-issued certificate for HOST).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl OtherRelay {
    /// The fingerprint, checked.
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>, SettingsError> {
        parse_fingerprint(self.fingerprint.as_deref(), "other_relays.fingerprint")
    }
}

fn parse_fingerprint(text: Option<&str>, key: &'static str) -> Result<Option<Fingerprint>, SettingsError> {
    text.map(|text| {
        text.parse().map_err(|e: BadFingerprint| SettingsError::Value { key, error: e.to_string() })
    })
    .transpose()
}

impl ClientSettings {
    /// `other`'s keys over these.
    fn overridden_by(self, other: ClientSettings) -> ClientSettings {
        ClientSettings {
            relay: other.relay.or(self.relay),
            relay_fingerprint: other.relay_fingerprint.or(self.relay_fingerprint),
            organization: other.organization.or(self.organization),
            permissions: other.permissions.or(self.permissions),
            // A list is replaced as a whole: the user's file names the relays, or the system's does.
            other_relays: if other.other_relays.is_empty() { self.other_relays } else { other.other_relays },
        }
    }

    /// The fingerprint, checked (a typo in an administrator's file is an error, not "no pinning").
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>, SettingsError> {
        parse_fingerprint(self.relay_fingerprint.as_deref(), "relay_fingerprint")
    }

    /// The default permissions, checked.
    pub fn permissions(&self) -> Result<Option<Permissions>, SettingsError> {
        self.permissions
            .as_deref()
            .map(|text| {
                Permissions::parse_list(text)
                    .map_err(|error| SettingsError::Value { key: "permissions", error })
            })
            .transpose()
    }

    /// The organization's name, shown as the other side would see any name: without control or
    /// reordering characters, at most 60 characters; `None` when empty.
    pub fn organization(&self) -> Option<String> {
        let name: String =
            crate::shown::lossy(self.organization.as_deref()?.trim()).chars().take(60).collect();
        (!name.is_empty()).then_some(name)
    }

    /// The file as TOML, for `tether-relay client-config`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path}: {error}")]
    Parse { path: PathBuf, error: String },
    #[error("{key} in the settings file: {error}")]
    Value { key: &'static str, error: String },
}

/// The files to read, in order (later ones override earlier ones).
pub fn search_paths() -> Vec<PathBuf> {
    if let Some(only) = std::env::var_os("TETHER_HOST_CONFIG") {
        return vec![PathBuf::from(only)];
    }
    let mut paths = vec![PathBuf::from("/etc/tether/host.toml")];
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")));
    if let Some(dir) = user {
        paths.push(dir.join("tether").join("host.toml"));
    }
    paths
}

/// Read `paths` in order, skipping those that do not exist.
pub fn load(paths: &[PathBuf]) -> Result<ClientSettings, SettingsError> {
    let mut settings = ClientSettings::default();
    for path in paths {
        if let Some(file) = read(path)? {
            settings = settings.overridden_by(file);
        }
    }
    Ok(settings)
}

fn read(path: &Path) -> Result<Option<ClientSettings>, SettingsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(SettingsError::Read { path: path.to_owned(), error }),
    };
    toml::from_str(&text)
        .map(Some)
        .map_err(|e| SettingsError::Parse { path: path.to_owned(), error: e.to_string().trim().to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_file_overrides_the_systems_key_by_key_and_missing_files_are_skipped() {
        let dir = tempfile::tempdir().expect("temp");
        let (system, user) = (dir.path().join("system.toml"), dir.path().join("user.toml"));
        std::fs::write(&system, "relay = \"org.example:4433\"\nrelay_fingerprint = \"ab\"\n").expect("write");
        std::fs::write(&user, "relay = \"mine.example:1\"\n").expect("write");
        let missing = dir.path().join("missing.toml");
        let got = load(&[system, missing, user]).expect("loads");
        assert_eq!(got.relay.as_deref(), Some("mine.example:1"));
        assert_eq!(got.relay_fingerprint.as_deref(), Some("ab"));
    }

    #[test]
    fn the_example_file_reads_and_so_do_its_commented_keys() {
        let example = include_str!("../../deploy/host.example.toml");
        let parsed: ClientSettings = toml::from_str(example).expect("the example reads");
        assert_eq!(parsed.relay.as_deref(), Some("relay.example.org:7700"));
        let uncommented =
            example.replace("# [[other_relays]]", "[[other_relays]]").replace("# address", "address");
        let uncommented = uncommented.replace("# fingerprint", "fingerprint");
        let parsed: ClientSettings = toml::from_str(&uncommented).expect("with other_relays it reads too");
        assert_eq!(parsed.other_relays.len(), 1);
        assert!(parsed.other_relays[0].fingerprint().expect("valid").is_some());
    }

    #[test]
    fn other_relays_are_a_list_of_tables_checked_like_the_first() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("host.toml");
        let fp = "ab".repeat(32);
        let text = format!(
            "relay = \"a.example:1\"\n[[other_relays]]\naddress = \"b.example:2\"\nfingerprint = \"{fp}\"\n\
             [[other_relays]]\naddress = \"c.example:3\"\n"
        );
        std::fs::write(&path, text).expect("write");
        let got = load(std::slice::from_ref(&path)).expect("loads");
        let addresses: Vec<_> = got.other_relays.iter().map(|r| r.address.as_str()).collect();
        assert_eq!(addresses, ["b.example:2", "c.example:3"]);
        assert_eq!(got.other_relays[0].fingerprint().expect("valid").map(|f| f.to_string()), Some(fp));
        assert_eq!(got.other_relays[1].fingerprint().expect("valid"), None);
        let round = toml::from_str::<ClientSettings>(&got.to_toml()).expect("its own TOML reads back");
        assert_eq!(round, got);
        std::fs::write(&path, "[[other_relays]]\naddress = \"b:2\"\nfingerprint = \"zz\"\n").expect("write");
        let bad = load(std::slice::from_ref(&path)).expect("loads").other_relays[0].fingerprint();
        assert!(bad.expect_err("refused").to_string().contains("other_relays.fingerprint"));
    }

    #[test]
    fn a_misspelt_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("host.toml");
        std::fs::write(&path, "relay = \"a:1\"\nrelay_fingerprnt = \"ab\"\n").expect("write");
        let error = load(std::slice::from_ref(&path)).expect_err("refused").to_string();
        assert!(error.contains("host.toml") && error.contains("relay_fingerprnt"), "{error}");
    }
}
