//! A verified file gets its final name: synced first, then claimed with a hard link, which fails rather
//! than replace an existing file (so `report (1).pdf` is chosen atomically), then the temporary name is
//! removed.

use std::path::Path;

use super::attempt::OnDisk;
use super::Ending::{self, Fatal};
use crate::files::names::numbered;
use crate::files::proto::FileError;

/// Sync the file and give it its final name without ever replacing an existing file; returns the name.
pub(super) async fn commit(disk: &mut OnDisk) -> Result<String, Ending> {
    let what = disk.temp.display().to_string();
    let io = |e: std::io::Error| Fatal(FileError::from_io(&e, &what));
    disk.sync_done().await.map_err(io)?;
    let file = disk.file.take();
    let (temp, dir, name) = (disk.temp.clone(), disk.dir.clone(), disk.name.clone());
    tokio::task::spawn_blocking(move || {
        if let Some(f) = file {
            f.file().sync_all()?;
        }
        claim_name(&temp, &dir, &name)
    })
    .await
    .map_err(|e| Fatal(FileError::Io(e.to_string())))?
    .map_err(io)
}

/// Link `temp` to the first free name of `name` in `dir`, then drop the temporary name. `hard_link` fails
/// if the target exists, so an existing file is never replaced, even by a racing writer.
fn claim_name(temp: &Path, dir: &Path, name: &str) -> std::io::Result<String> {
    for n in 0..10_000 {
        let candidate = if n == 0 { name.to_owned() } else { numbered(name, n) };
        let target = dir.join(&candidate);
        match std::fs::hard_link(temp, &target) {
            Ok(()) => {
                std::fs::remove_file(temp)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // File systems without hard links: rename if the name is free (a small race remains there).
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Unsupported | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                if std::fs::symlink_metadata(&target).is_ok() {
                    continue;
                }
                std::fs::rename(temp, &target)?;
                return Ok(candidate);
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, format!("no free name for {name}")))
}
