//! What the viewer remembers between runs: the relay, its fingerprint, the technician's name, where
//! fetched files go. A small JSON file in the user's config directory (`TETHER_VIEWER_CONFIG` overrides
//! the path). Never the code and never a token: those are secrets.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub relay: String,
    pub fingerprint: String,
    pub name: String,
    pub downloads: String,
}

impl Settings {
    /// Where the settings live, if there is a place for them.
    pub fn path() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os("TETHER_VIEWER_CONFIG") {
            return Some(path.into());
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("tether").join("viewer.json"))
    }

    /// The remembered settings in `path`, or defaults when there are none (or they cannot be read).
    pub fn load(path: Option<&std::path::Path>) -> Self {
        let loaded = path
            .and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice::<Settings>(&bytes).ok());
        let mut settings = loaded.unwrap_or_default();
        if settings.downloads.is_empty() {
            settings.downloads = default_downloads();
        }
        settings
    }

    /// Remember these settings in `path` (best effort: a read-only home only costs the convenience).
    pub fn save(&self, path: Option<&std::path::Path>) {
        let Some(path) = path else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(json) = serde_json::to_vec_pretty(self) {
            if let Err(e) = std::fs::write(path, json) {
                tracing::warn!("could not remember the settings in {}: {e}", path.display());
            }
        }
    }
}

fn default_downloads() -> String {
    crate::files::default_folder().map_or_else(|| ".".into(), |f| f.display().to_string())
}
