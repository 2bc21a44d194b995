//! Copy-on-write workspaces: a read-only snapshot of the base commit per commit, shared by every
//! run on it, and an overlay (Linux overlayfs) per candidate on top of it, holding only what the
//! agent changes. Made in milliseconds whatever the size of the repository; needs the right to
//! mount (root, or a user namespace).

use std::path::{Path, PathBuf};

use baton_git::{GitError, Oid, Repo};

use crate::Workspace;

/// `remove_dir_all` that also copes with directories an agent made read-only.
pub(crate) fn remove_dir_all_forcibly(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            std::fs::remove_dir_all(path)
        }
    }
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else { return };
    if meta.is_dir() {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                make_writable(&e.path());
            }
        }
    }
}

pub(crate) fn io_err(context: String, source: std::io::Error) -> GitError {
    GitError::Io { context, source }
}

/// The read-only checkout of `commit` that overlays sit on: a clone with its git directory
/// beside the tree, the tree's `.git` file pointing there by a relative path (so that inside an
/// overlay it names the overlay's own copy, never the snapshot). Made once, atomically: built
/// under a temporary name and renamed into place.
pub(crate) fn snapshot(repo: &Repo, snapshots: &Path, commit: &Oid) -> Result<PathBuf, GitError> {
    let dir = snapshots.join(commit.as_str());
    if dir.join(SNAPSHOT_DONE).is_file() {
        return Ok(dir);
    }
    // Workspaces are provisioned in parallel: the first thread builds the snapshot, the others
    // wait for it. (Other processes are kept apart by the temporary name and the rename.)
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if dir.join(SNAPSHOT_DONE).is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(snapshots)
        .map_err(|e| io_err(format!("cannot create {}", snapshots.display()), e))?;
    let tmp = snapshots.join(format!("{commit}.tmp-{}", std::process::id()));
    let _ = remove_dir_all_forcibly(&tmp);
    let built = (|| {
        std::fs::create_dir_all(&tmp).map_err(|e| io_err(format!("cannot create {}", tmp.display()), e))?;
        Workspace::create_clone(repo, &tmp, &tmp.join("tree"), commit, "baton/snapshot")?;
        std::fs::write(tmp.join("tree").join(".git"), "gitdir: ../git\n")
            .map_err(|e| io_err(format!("cannot write {}", tmp.display()), e))?;
        std::fs::write(tmp.join(SNAPSHOT_DONE), commit.as_str())
            .map_err(|e| io_err(format!("cannot write {}", tmp.display()), e))
    })();
    if let Err(e) = built {
        let _ = remove_dir_all_forcibly(&tmp);
        return Err(e);
    }
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another baton made it first; use theirs.
        let _ = remove_dir_all_forcibly(&tmp);
        if !dir.join(SNAPSHOT_DONE).is_file() {
            return Err(io_err(
                format!("cannot create the snapshot {}", dir.display()),
                std::io::Error::other("rename failed"),
            ));
        }
    }
    Ok(dir)
}

const SNAPSHOT_DONE: &str = "snapshot-complete";

#[cfg(target_os = "linux")]
pub(crate) fn mount_overlay(lower: &Path, upper: &Path, work: &Path, merged: &Path) -> Result<(), GitError> {
    use nix::mount::{MsFlags, mount};
    let data =
        format!("lowerdir={},upperdir={},workdir={}", lower.display(), upper.display(), work.display());
    mount(Some("overlay"), merged, Some("overlay"), MsFlags::empty(), Some(data.as_str())).map_err(|e| {
        io_err(format!("cannot mount an overlay at {}", merged.display()), std::io::Error::from(e))
    })
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn mount_overlay(_: &Path, _: &Path, _: &Path, merged: &Path) -> Result<(), GitError> {
    Err(io_err(
        format!("cannot mount an overlay at {}", merged.display()),
        std::io::Error::other("overlays need Linux"),
    ))
}

/// Detaches an overlay mount; harmless if nothing is mounted there.
pub(crate) fn unmount(merged: &Path) {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::mount::umount2(merged, nix::mount::MntFlags::MNT_DETACH);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = merged;
}

const PROBE_PREFIX: &str = ".overlay-probe-";

/// Whether this process may mount overlays (tried once on a scratch directory under `dir`).
pub fn overlay_supported(dir: &Path) -> bool {
    let probe = dir.join(format!("{PROBE_PREFIX}{}", std::process::id()));
    let parts: Vec<PathBuf> = ["lower", "upper", "work", "merged"].iter().map(|p| probe.join(p)).collect();
    let ok = parts.iter().all(|p| std::fs::create_dir_all(p).is_ok())
        && mount_overlay(&parts[0], &parts[1], &parts[2], &parts[3]).is_ok();
    if ok {
        unmount(&parts[3]);
    }
    let _ = remove_dir_all_forcibly(&probe);
    ok
}

/// What a baton that died left under `dir` (a repository's workspace directory) while it
/// worked: a probe directory of [`overlay_supported`], possibly still mounted, a snapshot half
/// built, a base index half written. Each is named after the process that made it and
/// removed only when that process is gone. Returns how many it removed.
pub fn remove_leftovers(dir: &Path) -> usize {
    let mut removed = 0;
    let snapshots = dir.join("snapshots");
    let entries = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .chain(std::fs::read_dir(&snapshots).into_iter().flatten());
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = if let Some(pid) = name.strip_prefix(PROBE_PREFIX) {
            pid.parse::<u32>().ok()
        } else if let Some((_, pid)) = name.split_once(".tmp-") {
            // `<commit>.tmp-<pid>`: a snapshot being built.
            pid.parse().ok()
        } else if let Some((_, rest)) = name.split_once(".index.") {
            // `<commit>.index.<pid>.<n>`: a base index being written.
            rest.split('.').next().and_then(|pid| pid.parse().ok())
        } else {
            None
        };
        let Some(pid) = owner else { continue };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            unmount(&path.join("merged"));
            if remove_dir_all_forcibly(&path).is_ok() {
                removed += 1;
            }
        } else if std::fs::remove_file(&path).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Snapshots under `snapshots` that no mounted overlay uses, removed; returns how many.
pub fn remove_unused_snapshots(snapshots: &Path) -> usize {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut removed = 0;
    for entry in std::fs::read_dir(snapshots).into_iter().flatten().flatten() {
        let path = entry.path();
        // A snapshot's base index (`<commit>.index`) goes with its snapshot.
        if path.extension().is_some_and(|e| e == "index") || path.is_file() {
            continue;
        }
        // One being built; `remove_leftovers` takes it if its builder died.
        if entry.file_name().to_string_lossy().contains(".tmp-") {
            continue;
        }
        if mounts.contains(&format!("lowerdir={}", path.display())) {
            continue;
        }
        if remove_dir_all_forcibly(&path).is_ok() {
            removed += 1;
        }
    }
    for entry in std::fs::read_dir(snapshots).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_file() && !path.with_extension("").is_dir() {
            let _ = std::fs::remove_file(&path);
        }
    }
    // Only when nothing is left in it.
    let _ = std::fs::remove_dir(snapshots);
    removed
}

/// What an overlay's upper layer says changed under `upper` (the upper side of the checkout):
/// every file or link written there, and every path removed (a whiteout, a character device of
/// number 0/0), relative to `upper`. `None` when the layer hides more than it lists (a
/// directory made opaque by a removal and re-creation, or redirected by a rename): then only a
/// scan of the whole tree can tell. A top-level `.git` is left out, as git leaves it out.
pub(crate) fn changed_paths(upper: &Path) -> Option<Vec<String>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = upper.join(&rel);
        if !rel.as_os_str().is_empty() && hides_lower(&dir) {
            return None;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.as_os_str().is_empty() => {
                return Some(out);
            }
            Err(_) => return None,
        };
        for entry in entries {
            let entry = entry.ok()?;
            let child = rel.join(entry.file_name());
            if child == Path::new(".git") {
                continue;
            }
            let meta = entry.metadata().ok()?;
            let kind = meta.file_type();
            if kind.is_dir() {
                stack.push(child);
            } else if (kind.is_char_device() && meta.rdev() == 0) || kind.is_file() || kind.is_symlink() {
                // A whiteout (the path was removed), or a file or link written.
                out.push(child.to_str()?.to_owned());
            } else {
                // A fifo or socket an agent made: git skips it, a scan is the safe reading.
                return None;
            }
        }
    }
    out.sort();
    Some(out)
}

/// Whether an upper directory hides what the lower one holds under it (opaque) or stands for a
/// directory elsewhere (redirect), by the overlay's extended attributes, under either prefix
/// the kernel uses.
fn hides_lower(dir: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque", "trusted.overlay.redirect", "user.overlay.redirect"]
        .iter()
        .any(|name| has_xattr(dir, name))
}

/// Whether `path` (not what a link points to) has the extended attribute `name`. An error
/// reading it counts as having it: the caller then scans, which is never wrong.
fn has_xattr(path: &Path, name: &str) -> bool {
    !matches!(xattr::get(path, name), Ok(None))
}
