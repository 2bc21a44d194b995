use std::path::{Path, PathBuf};

use baton_core::RunId;

/// `$XDG_CACHE_HOME/baton/workspaces` (or `~/.cache/...`), falling back to the temp directory.
pub fn default_workspace_root() -> PathBuf {
    let cache = baton_core::user_cache_dir().unwrap_or_else(std::env::temp_dir);
    cache.join("baton").join("workspaces")
}

/// Where one run's workspaces live: `<root>/<repo name>-<short hash of its path>/<run>`, so that
/// runs of different repositories never share a directory.
pub fn run_workspace_dir(root: &Path, repo_root: &Path, run: &RunId) -> PathBuf {
    repo_workspace_dir(root, repo_root).join(run.as_str())
}

/// `<root>/<repo name>-<short hash of its path>`: the runs of one repository (and its overlay
/// snapshots).
pub(crate) fn repo_workspace_dir(root: &Path, repo_root: &Path) -> PathBuf {
    let name =
        repo_root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "repo".into());
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    root.join(format!("{name}-{:08x}", fnv1a(repo_root.as_os_str().as_encoded_bytes()) as u32))
}

/// A small stable hash (FNV-1a), for directory names that must not change between versions.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}
