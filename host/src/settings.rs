//! The host's settings file: which relay to use, so that a person starts the host from a menu with no
//! flags at all. An organization installs `/etc/tether/host.toml` with its relay; a user may have
//! `~/.config/tether/host.toml` (or under `$XDG_CONFIG_HOME`); a key in the user's file overrides the
//! system's, and a command-line flag overrides both. `TETHER_HOST_CONFIG` names the one file to read
//! instead (tests, or a portable setup).
//!
//! ```toml
//! relay = "relay.example.org:4433"
//! # Without it, the relay's certificate must be signed by an authority the system trusts.
//! relay_fingerprint = "9f86d081…"   # 64 hex digits, as `tether-relay` prints it
//! ```
//!
//! An unknown key is an error naming the file and the line: a misspelt setting never goes unnoticed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What a settings file may say. Every key is optional.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSettings {
    /// The relay, as HOST:PORT.
    pub relay: Option<String>,
    /// The relay's certificate fingerprint, 64 hex digits.
    pub relay_fingerprint: Option<String>,
}

impl HostSettings {
    /// `other`'s keys over these.
    fn overridden_by(self, other: HostSettings) -> HostSettings {
        HostSettings {
            relay: other.relay.or(self.relay),
            relay_fingerprint: other.relay_fingerprint.or(self.relay_fingerprint),
        }
    }
}

/// Why the settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {error}")]
    Read { path: PathBuf, error: std::io::Error },
    #[error("{path}: {error}")]
    Parse { path: PathBuf, error: String },
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
pub fn load(paths: &[PathBuf]) -> Result<HostSettings, SettingsError> {
    let mut settings = HostSettings::default();
    for path in paths {
        if let Some(file) = read(path)? {
            settings = settings.overridden_by(file);
        }
    }
    Ok(settings)
}

fn read(path: &Path) -> Result<Option<HostSettings>, SettingsError> {
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
    fn a_misspelt_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().expect("temp");
        let path = dir.path().join("host.toml");
        std::fs::write(&path, "relay = \"a:1\"\nrelay_fingerprnt = \"ab\"\n").expect("write");
        let error = load(std::slice::from_ref(&path)).expect_err("refused").to_string();
        assert!(error.contains("host.toml") && error.contains("relay_fingerprnt"), "{error}");
    }
}
