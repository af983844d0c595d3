//! The sender's side of a tree: what to send from a local file or folder. Symbolic links are skipped
//! (reported, never followed), names that are not UTF-8 or that the receiver would refuse are skipped
//! too, so an offer only ever holds plain files and folders with valid names.

use std::fs;
use std::path::{Path, PathBuf};

use super::names::check_component;
use super::proto::{Entry, EntryKind, FileError, MAX_ENTRIES};

/// A scanned tree: entries to offer, where each file's bytes come from, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct LocalTree {
    pub entries: Vec<Entry>,
    /// For each entry, its path on disk (files and folders alike).
    pub sources: Vec<PathBuf>,
    pub skipped: Vec<(PathBuf, String)>,
    /// The scanned file or folder: files are opened beneath it, without following links
    /// ([`super::disk::open_to_send`]).
    pub root: PathBuf,
}

impl LocalTree {
    /// How many files (not folders) the tree holds.
    pub fn file_count(&self) -> u32 {
        super::proto::file_count(&self.entries)
    }

    pub fn total_bytes(&self) -> u64 {
        self.entries.iter().map(|e| if let EntryKind::File { size } = e.kind { size } else { 0 }).sum()
    }
}

/// Scan `path` (a file or a folder) into a tree whose top entry is named like `path`.
pub fn scan(path: &Path) -> Result<LocalTree, FileError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| FileError::BadName(format!("{} has no usable name", path.display())))?;
    scan_as(path, name)
}

/// Scan `path` into a tree whose top entry is named `name`: a shared folder is sent under the name the
/// technician browsed it by, whatever its folder is called on disk (`--share .` has no name of its own).
pub fn scan_as(path: &Path, name: &str) -> Result<LocalTree, FileError> {
    let meta = fs::symlink_metadata(path).map_err(|e| FileError::from_io(&e, &path.display().to_string()))?;
    let name = name.to_owned();
    check_component(&name).map_err(|e| FileError::BadName(e.to_string()))?;
    let mut tree = LocalTree { root: path.to_owned(), ..LocalTree::default() };
    if meta.file_type().is_symlink() {
        return Err(FileError::BadName(format!("{} is a symbolic link; links are not sent", path.display())));
    }
    add(&mut tree, path, vec![name], &meta)?;
    Ok(tree)
}

fn add(tree: &mut LocalTree, path: &Path, rel: Vec<String>, meta: &fs::Metadata) -> Result<(), FileError> {
    if tree.entries.len() >= MAX_ENTRIES {
        return Err(FileError::TooManyEntries { max: MAX_ENTRIES as u32 });
    }
    let io = |e: std::io::Error| FileError::from_io(&e, &path.display().to_string());
    if meta.is_file() {
        tree.entries.push(Entry { path: rel, kind: EntryKind::File { size: meta.len() } });
        tree.sources.push(path.to_owned());
        return Ok(());
    }
    if !meta.is_dir() {
        tree.skipped.push((path.to_owned(), "not a regular file or folder".into()));
        return Ok(());
    }
    tree.entries.push(Entry { path: rel.clone(), kind: EntryKind::Dir });
    tree.sources.push(path.to_owned());
    let mut children: Vec<_> = fs::read_dir(path).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let child_path = child.path();
        let Some(name) = child.file_name().to_str().map(str::to_owned) else {
            tree.skipped.push((child_path, "name is not valid UTF-8".into()));
            continue;
        };
        if let Err(e) = check_component(&name) {
            tree.skipped.push((child_path, e.to_string()));
            continue;
        }
        let child_meta = fs::symlink_metadata(&child_path).map_err(io)?;
        if child_meta.file_type().is_symlink() {
            tree.skipped.push((child_path, "symbolic link (not followed)".into()));
            continue;
        }
        let mut child_rel = rel.clone();
        child_rel.push(name);
        add(tree, &child_path, child_rel, &child_meta)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_over_the_entry_limit_is_refused_as_too_many_entries() {
        let dir = tempfile::tempdir().expect("temp");
        let folder = dir.path().join("big");
        fs::create_dir(&folder).expect("folder");
        // The folder itself is an entry, so this many files make one more than the limit.
        for i in 0..MAX_ENTRIES {
            fs::File::create(folder.join(i.to_string())).expect("file");
        }
        let err = scan(&folder).expect_err("too many");
        assert_eq!(err, FileError::TooManyEntries { max: MAX_ENTRIES as u32 });
    }
}
