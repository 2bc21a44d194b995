//! Workspaces on real repositories in temporary directories: nothing an agent does to its
//! checkout loses its work, and copy-on-write workspaces share one snapshot.

use baton_git::{ChangeKind, Repo};
use baton_testkit::TestRepo;
use baton_workspace::{Workspace, WorkspaceKind};

#[test]
fn a_workspace_keeps_the_agents_work_even_if_it_deletes_dot_git() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("b.txt", "b\n")]);
    let refs_before = t.all_refs();
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    let ws =
        Workspace::create(&repo, WorkspaceKind::Clone, &root.path().join("c1"), &base, "baton/c1").unwrap();
    assert_eq!(std::fs::read_to_string(ws.tree.join("a.txt")).unwrap(), "a\n");
    // The workspace has no way back to the user's repository.
    assert!(baton_testkit::git_command(&ws.tree).args(["remote"]).output().unwrap().stdout.is_empty());

    std::fs::write(ws.tree.join("a.txt"), "agent\n").unwrap();
    std::fs::remove_file(ws.tree.join("b.txt")).unwrap();
    std::fs::write(ws.tree.join("c.txt"), "new\n").unwrap();
    std::fs::remove_file(ws.tree.join(".git")).unwrap();

    let commit = ws.snapshot(&base, "candidate c1").unwrap();
    ws.publish(&repo, &commit, "refs/baton/runs/r1/c1").unwrap();
    assert_eq!(t.git(&["rev-parse", "refs/baton/runs/r1/c1"]).trim(), commit.as_str());
    assert_eq!(t.git(&["show", "refs/baton/runs/r1/c1:a.txt"]), "agent\n");
    let changes = repo.git().diff_files(&base, &commit).unwrap();
    let kinds: Vec<_> = changes.iter().map(|c| (c.path.as_str(), c.kind, c.added, c.deleted)).collect();
    assert_eq!(
        kinds,
        [
            ("a.txt", ChangeKind::Modified, Some(1), Some(1)),
            ("b.txt", ChangeKind::Deleted, Some(0), Some(1)),
            ("c.txt", ChangeKind::Added, Some(1), Some(0)),
        ]
    );
    // Only the new ref appeared in the user's repository.
    let after = t.all_refs();
    assert_eq!(after.lines().count(), refs_before.lines().count() + 1);
    ws.remove().unwrap();
    assert!(!ws.root.exists());
}

#[test]
fn checkout_resets_a_workspace_to_a_commit() {
    let t = TestRepo::with_files(&[("a.txt", "a\n")]);
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    for kind in [WorkspaceKind::Clone, WorkspaceKind::Worktree] {
        let ws = Workspace::create(
            &repo,
            kind,
            &root.path().join(format!("{kind:?}")),
            &base,
            &format!("baton/{kind:?}"),
        )
        .unwrap();
        std::fs::write(ws.tree.join("a.txt"), "dirty\n").unwrap();
        std::fs::write(ws.tree.join("junk.txt"), "junk\n").unwrap();
        ws.checkout(&base).unwrap();
        assert_eq!(std::fs::read_to_string(ws.tree.join("a.txt")).unwrap(), "a\n");
        assert!(!ws.tree.join("junk.txt").exists());
        ws.remove().unwrap();
    }
    assert!(!t.git(&["worktree", "list"]).contains("Worktree"));
}

#[test]
fn an_overlay_workspace_shares_a_snapshot_and_keeps_only_changes() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("dir/b.txt", "b\n")]);
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("repo").join("run1");
    std::fs::create_dir_all(&runs).unwrap();
    if !baton_workspace::overlay_supported(root.path()) {
        eprintln!("skipped: this process may not mount overlays (needs root or CAP_SYS_ADMIN)");
        return;
    }
    let a = Workspace::create(&repo, WorkspaceKind::Overlay, &runs.join("c1"), &base, "baton/c1").unwrap();
    let b = Workspace::create(&repo, WorkspaceKind::Overlay, &runs.join("c2"), &base, "baton/c2").unwrap();
    assert_eq!(std::fs::read_to_string(a.tree.join("a.txt")).unwrap(), "a\n");
    std::fs::write(a.tree.join("a.txt"), "changed in c1\n").unwrap();
    std::fs::remove_file(a.tree.join(".git")).unwrap();
    assert_eq!(
        std::fs::read_to_string(b.tree.join("a.txt")).unwrap(),
        "a\n",
        "candidates do not see each other"
    );
    assert!(b.tree.join(".git").exists());
    // An agent's own git commands in the overlay write to the overlay's git dir, not the snapshot.
    let status = baton_testkit::git_command(&b.tree)
        .args(["commit", "--quiet", "--allow-empty", "-m", "agent"])
        .status()
        .unwrap();
    assert!(status.success());
    let commit = a.snapshot(&base, "c1").unwrap();
    a.publish(&repo, &commit, "refs/baton/runs/run1/c1").unwrap();
    assert_eq!(t.git(&["show", "refs/baton/runs/run1/c1:a.txt"]), "changed in c1\n");
    let snapshot = root.path().join("repo/snapshots").join(base.as_str());
    assert!(snapshot.join("tree/a.txt").is_file());
    assert_eq!(
        std::fs::read_to_string(snapshot.join("tree/a.txt")).unwrap(),
        "a\n",
        "the snapshot is never written"
    );
    a.remove().unwrap();
    b.remove().unwrap();
    assert!(!runs.join("c1").exists() && !runs.join("c2").exists());
    assert_eq!(baton_workspace::remove_unused_snapshots(&root.path().join("repo/snapshots")), 1);
}

/// An agent's edit that keeps a file's size, made in the same second as the workspace's
/// checkout, is in the snapshot. Git trusts a file's cached stat data (to the second) unless the
/// file is not older than the index; a copy of the index made at collection time, with a newer
/// time of its own, made such an edit look unchanged, and the agent's work was lost.
#[test]
fn an_edit_in_the_same_second_as_the_checkout_is_not_lost() {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let secs = |p: &std::path::Path| {
        std::fs::metadata(p).unwrap().modified().unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs()
    };
    let until_next_second = || {
        let frac = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_millis();
        std::thread::sleep(Duration::from_millis(u64::from(1010 - frac)));
    };
    let t = TestRepo::with_files(&[("calc.sh", "add() { echo $(( $1 - $2 )); }\n")]);
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    for kind in [WorkspaceKind::Clone, WorkspaceKind::Worktree] {
        let mut checked = false;
        for attempt in 0..5 {
            until_next_second();
            let dir = root.path().join(format!("{kind:?}-{attempt}"));
            let ws =
                Workspace::create(&repo, kind, &dir, &base, &format!("baton/{kind:?}-{attempt}")).unwrap();
            std::fs::write(ws.tree.join("calc.sh"), "add() { echo $(( $1 + $2 )); }\n").unwrap();
            if secs(&ws.tree.join("calc.sh")) != secs(&ws.git_dir.join("index")) {
                ws.remove().unwrap();
                continue; // the edit did not fall in the checkout's second: try again
            }
            until_next_second();
            let commit = ws.snapshot(&base, "candidate").unwrap();
            let content = ws.git().file_at(&commit, "calc.sh").unwrap().unwrap();
            assert_eq!(String::from_utf8(content).unwrap(), "add() { echo $(( $1 + $2 )); }\n", "{kind:?}");
            checked = true;
            break;
        }
        assert!(checked, "{kind:?}: no edit fell in the checkout's second in 5 tries");
    }
}

/// What an overlay's upper layer lists is what `git add --all` over the whole tree records: edits,
/// additions (in new directories too), removals of files and of whole directories, renames,
/// mode changes, links; new ignored files out and edits to tracked ones that match an ignore
/// pattern in; the workspace's `.git` file and git directory never. A directory removed and made
/// again (opaque in the overlay) is read by a scan, with the same result.
#[test]
fn an_overlay_collects_from_its_upper_layer_what_a_scan_records() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestRepo::with_files(&[
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("gone/c.txt", "c\n"),
        ("gone/deep/d.txt", "d\n"),
        ("keep/e.txt", "e\n"),
        ("run.sh", "echo hi\n"),
        ("tracked.log", "kept although ignored\n"),
        ("again/f.txt", "f\n"),
        (".gitignore", "*.log\nbuild/\n"),
    ]);
    t.git(&["add", "--force", "tracked.log"]);
    t.commit_all("a file tracked although its name is ignored");
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("repo").join("run1");
    std::fs::create_dir_all(&runs).unwrap();
    if !baton_workspace::overlay_supported(root.path()) {
        eprintln!("skipped: this process may not mount overlays (needs root or CAP_SYS_ADMIN)");
        return;
    }
    let scan = |ws: &Workspace| {
        let index = root.path().join("scan.index");
        let _ = std::fs::remove_file(&index);
        let git = |args: &[&str]| {
            let out = baton_testkit::git_command(&ws.tree)
                .env("GIT_DIR", &ws.git_dir)
                .env("GIT_WORK_TREE", &ws.tree)
                .env("GIT_INDEX_FILE", &index)
                .args(args)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        git(&["read-tree", base.as_str()]);
        git(&["add", "--all", "--", "."]);
        git(&["write-tree"])
    };
    let tree_of = |ws: &Workspace, commit: &baton_git::Oid| ws.git().tree_of(commit).unwrap().to_string();

    let ws = Workspace::create(&repo, WorkspaceKind::Overlay, &runs.join("c1"), &base, "baton/c1").unwrap();
    let at = |p: &str| ws.tree.join(p);
    std::fs::write(at("a.txt"), "edited\n").unwrap();
    std::fs::remove_file(at("b.txt")).unwrap();
    std::fs::remove_dir_all(at("gone")).unwrap();
    std::fs::create_dir_all(at("moved")).unwrap();
    std::fs::rename(at("keep/e.txt"), at("moved/e.txt")).unwrap();
    std::fs::set_permissions(at("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(at("new/nested")).unwrap();
    std::fs::write(at("new/nested/g.txt"), "g\n").unwrap();
    std::fs::create_dir_all(at("build")).unwrap();
    std::fs::write(at("build/out.bin"), "ignored\n").unwrap();
    std::fs::write(at("debug.log"), "ignored too\n").unwrap();
    std::fs::write(at("tracked.log"), "edited, and tracked\n").unwrap();
    std::os::unix::fs::symlink("a.txt", at("link")).unwrap();
    std::fs::write(at(".git"), "gitdir: /nowhere\n").unwrap();
    std::fs::write(ws.git_dir.join("description"), "an agent wrote here\n").unwrap();
    let expected = scan(&ws);
    let commit = ws.snapshot(&base, "c1").unwrap();
    assert_eq!(tree_of(&ws, &commit), expected);
    let changed: Vec<String> =
        ws.git().diff_files(&base, &commit).unwrap().into_iter().map(|c| c.path).collect();
    assert_eq!(
        changed,
        [
            "a.txt",
            "b.txt",
            "gone/c.txt",
            "gone/deep/d.txt",
            "keep/e.txt",
            "link",
            "moved/e.txt",
            "new/nested/g.txt",
            "run.sh",
            "tracked.log"
        ]
    );

    // A directory removed and made again hides the lower one: the scan reads it, alike.
    let ws2 = Workspace::create(&repo, WorkspaceKind::Overlay, &runs.join("c2"), &base, "baton/c2").unwrap();
    std::fs::remove_dir_all(ws2.tree.join("again")).unwrap();
    std::fs::create_dir_all(ws2.tree.join("again")).unwrap();
    std::fs::write(ws2.tree.join("again/h.txt"), "h\n").unwrap();
    let expected = scan(&ws2);
    let commit = ws2.snapshot(&base, "c2").unwrap();
    assert_eq!(tree_of(&ws2, &commit), expected);
    assert!(ws2.git().file_at(&commit, "again/f.txt").unwrap().is_none());
    ws.remove().unwrap();
    ws2.remove().unwrap();
}

/// The kinds of workspace this process can make, each in its own directory under `root` laid
/// out as runs are (`<root>/<repo>/<run>/<candidate>`, with overlay snapshots beside the runs).
fn every_kind(root: &std::path::Path) -> Vec<WorkspaceKind> {
    let mut kinds = vec![WorkspaceKind::Clone, WorkspaceKind::Worktree];
    if baton_workspace::overlay_supported(root) {
        kinds.push(WorkspaceKind::Overlay);
    } else {
        eprintln!("overlays skipped: this process may not mount them");
    }
    kinds
}

/// The issue: an agent deleted its workspace's git directory (a sibling of its tree, within
/// reach), its work was never collected, and `baton clean` then deleted the tree that held it.
#[test]
fn work_is_collected_from_the_tree_when_the_git_directory_is_gone_or_broken() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("b.txt", "b\n"), (".gitignore", "*.log\n")]);
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    for kind in every_kind(root.path()) {
        for how in ["deleted", "emptied"] {
            let dir = root.path().join("repo").join("run1").join(format!("{kind:?}-{how}"));
            let ws = Workspace::create(&repo, kind, &dir, &base, &format!("baton/{kind:?}-{how}")).unwrap();
            std::fs::write(ws.tree.join("a.txt"), "agent\n").unwrap();
            std::fs::remove_file(ws.tree.join("b.txt")).unwrap();
            std::fs::write(ws.tree.join("new.txt"), "new\n").unwrap();
            std::fs::write(ws.tree.join("build.log"), "ignored\n").unwrap();
            match how {
                "deleted" => std::fs::remove_dir_all(&ws.git_dir).unwrap(),
                _ => {
                    // Still a directory, but nothing git can read.
                    for e in std::fs::read_dir(&ws.git_dir).unwrap().flatten() {
                        let _ = std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
                    }
                }
            }
            let problem = ws.git_dir_problem();
            assert!(problem.is_some(), "{kind:?} {how}");
            // Found again by its root (as `clean` and recovery do), it is still a workspace.
            let found = Workspace::reopen(&repo, &dir).unwrap_or_else(|| panic!("{kind:?} {how}: not found"));
            let collected = found.collect(&base, "c1").unwrap();
            assert!(collected.git_dir_problem.is_some(), "{kind:?} {how}");
            let reference = format!("refs/baton/runs/run1/{kind:?}-{how}");
            found.publish(&repo, &collected.commit, &reference).unwrap();
            assert_eq!(t.git(&["show", &format!("{reference}:a.txt")]), "agent\n", "{kind:?} {how}");
            assert_eq!(t.git(&["show", &format!("{reference}:new.txt")]), "new\n", "{kind:?} {how}");
            let files = t.git(&["ls-tree", "-r", "--name-only", &reference]);
            assert_eq!(files, ".gitignore\na.txt\nnew.txt\n", "{kind:?} {how}");
            assert_eq!(t.git(&["rev-parse", &format!("{reference}^")]).trim(), base.as_str());
            // The work is on a ref now: nothing in the tree is unsaved.
            assert!(!found.holds_unsaved_work(&repo, &base, &collected.commit).unwrap(), "{kind:?} {how}");
            assert!(!dir.join("scratch-git").exists(), "the scratch git directory is removed");
            found.remove().unwrap();
        }
    }
    assert!(t.git_ok(&["fsck"]), "the repository is sound");
}

#[test]
fn a_tree_that_differs_from_its_saved_commit_holds_unsaved_work() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("tests/t.txt", "t\n")]);
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    for kind in every_kind(root.path()) {
        let dir = root.path().join("repo").join("run1").join(format!("{kind:?}"));
        let ws = Workspace::create(&repo, kind, &dir, &base, &format!("baton/{kind:?}")).unwrap();
        assert!(!ws.holds_unsaved_work(&repo, &base, &base).unwrap(), "{kind:?}: fresh");
        std::fs::write(ws.tree.join("a.txt"), "work\n").unwrap();
        assert!(ws.holds_unsaved_work(&repo, &base, &base).unwrap(), "{kind:?}: edited, nothing saved");
        let commit = ws.snapshot(&base, "c1").unwrap();
        ws.publish(&repo, &commit, "refs/baton/runs/run1/c1").unwrap();
        assert!(!ws.holds_unsaved_work(&repo, &base, &commit).unwrap(), "{kind:?}: saved");
        // Verification checks out another tree (the candidate's with the base's tests): that is
        // baton's, not work.
        std::fs::write(ws.tree.join("tests/t.txt"), "changed by the agent\n").unwrap();
        let saved = ws.snapshot(&base, "c1").unwrap();
        ws.publish(&repo, &saved, "refs/baton/runs/run1/c1").unwrap();
        let verified =
            repo.git().tree_with_paths_from(&saved, &base, &["tests/t.txt".into()], root.path()).unwrap();
        let verified = repo.git().commit_tree(&verified, &[&saved], "verification", None).unwrap();
        ws.checkout(&verified).unwrap();
        assert!(!ws.holds_unsaved_work(&repo, &base, &saved).unwrap(), "{kind:?}: verified");
        std::fs::write(ws.tree.join("later.txt"), "by hand\n").unwrap();
        assert!(ws.holds_unsaved_work(&repo, &base, &saved).unwrap(), "{kind:?}: edited after");
        ws.remove().unwrap();
    }
}

#[test]
fn what_a_dead_baton_left_is_removed_and_a_live_ones_is_not() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    std::fs::create_dir_all(dir.join("snapshots")).unwrap();
    // A pid that is no process: past the kernel's largest.
    let dead = 4_194_305;
    let live = std::process::id();
    for pid in [dead, live] {
        std::fs::create_dir_all(dir.join(format!(".overlay-probe-{pid}/merged"))).unwrap();
        std::fs::create_dir_all(dir.join(format!("snapshots/abc.tmp-{pid}/tree"))).unwrap();
        std::fs::write(dir.join(format!("snapshots/abc.index.{pid}.0")), "").unwrap();
    }
    std::fs::write(dir.join("snapshots/abc.index"), "").unwrap();
    assert_eq!(baton_workspace::remove_leftovers(dir), 3);
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("snapshots")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut want = vec![
        format!(".overlay-probe-{live}"),
        "abc.index".to_owned(),
        format!("abc.index.{live}.0"),
        format!("abc.tmp-{live}"),
        "snapshots".to_owned(),
    ];
    want.sort();
    assert_eq!(left, want);
}
