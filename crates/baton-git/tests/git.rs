//! baton-git against real repositories.

use baton_git::{ChangeKind, GitError, MergeOutcome, Oid, Repo, Workspace, WorkspaceKind};
use baton_testkit::TestRepo;

fn oid(s: &str) -> Oid {
    Oid::parse(s).unwrap()
}

#[test]
fn discover_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let err = Repo::discover(dir.path()).unwrap_err();
    assert!(matches!(err, GitError::NotARepository { .. }), "{err}");
    assert!(err.to_string().contains("is not inside a git repository"));

    let empty = TestRepo::empty();
    let repo = Repo::discover(empty.path()).unwrap();
    let err = repo.head().unwrap_err();
    assert!(err.to_string().contains("has no commits yet"), "{err}");

    let t = TestRepo::with_files(&[("a.txt", "a\n")]);
    std::fs::create_dir(t.file("sub")).unwrap();
    let repo = Repo::discover(&t.file("sub")).unwrap();
    assert_eq!(repo.root.canonicalize().unwrap(), t.path().canonicalize().unwrap());
    assert_eq!(repo.head().unwrap().as_str(), t.head());
    assert!(matches!(repo.git().resolve("nope"), Err(GitError::BadRevision { .. })));
}

#[test]
fn dirty_paths_include_untracked_but_not_ignored_files() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), (".gitignore", "*.log\n")]);
    let git = Repo::discover(t.path()).unwrap().git();
    assert!(git.dirty_paths().unwrap().is_empty());
    t.write("a.txt", "changed\n");
    t.write("new.txt", "n\n");
    t.write("x.log", "ignored\n");
    let mut dirty = git.dirty_paths().unwrap();
    dirty.sort();
    assert_eq!(dirty, ["a.txt", "new.txt"]);
}

#[test]
fn snapshot_of_a_dirty_tree_leaves_the_users_index_alone() {
    let t = TestRepo::with_files(&[("a.txt", "a\n")]);
    t.write("a.txt", "changed\n");
    t.write("new.txt", "n\n");
    t.git(&["add", "a.txt"]);
    let before = t.user_state();
    let repo = Repo::discover(t.path()).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let head = repo.head().unwrap();
    let snap = repo.git().snapshot_worktree(&head, "snapshot", scratch.path()).unwrap();
    assert_eq!(t.user_state(), before);
    let files = repo.git().diff_files(&head, &snap).unwrap();
    let paths: Vec<_> = files.iter().map(|f| (f.path.as_str(), f.kind)).collect();
    assert_eq!(paths, [("a.txt", ChangeKind::Modified), ("new.txt", ChangeKind::Added)]);
}

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
fn update_ref_is_compare_and_swap() {
    let t = TestRepo::with_files(&[("a.txt", "a\n")]);
    let first = oid(&t.head());
    t.write("a.txt", "b\n");
    let second = oid(&t.commit_all("second"));
    let git = Repo::discover(t.path()).unwrap().git();
    git.update_ref("refs/baton/x", &first, None).unwrap();
    let err = git.update_ref("refs/baton/x", &second, None).unwrap_err();
    assert!(matches!(err, GitError::RefMoved { .. }), "{err}");
    let err = git.update_ref("refs/baton/x", &second, Some(&second)).unwrap_err();
    assert!(matches!(err, GitError::RefMoved { .. }), "{err}");
    git.update_ref("refs/baton/x", &second, Some(&first)).unwrap();
    assert_eq!(git.refs("refs/baton/").unwrap(), [("refs/baton/x".to_owned(), second)]);
}

#[test]
fn merge_trees_reports_clean_merges_and_conflicts() {
    let t = TestRepo::with_files(&[("a.txt", "1\n2\n3\n"), ("b.txt", "b\n")]);
    let base = oid(&t.head());
    t.write("a.txt", "1\n2\nthree\n");
    let ours = oid(&t.commit_all("ours"));
    t.git(&["checkout", "--quiet", "-b", "other", base.as_str()]);
    t.write("b.txt", "B\n");
    let theirs = oid(&t.commit_all("theirs"));
    t.write("a.txt", "1\n2\nTHREE\n");
    let conflicting = oid(&t.commit_all("conflicting"));
    let git = Repo::discover(t.path()).unwrap().git();
    match git.merge_trees(&base, &ours, &theirs).unwrap() {
        MergeOutcome::Clean { tree } => {
            assert_eq!(t.git(&["show", &format!("{tree}:a.txt")]), "1\n2\nthree\n");
            assert_eq!(t.git(&["show", &format!("{tree}:b.txt")]), "B\n");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        git.merge_trees(&base, &ours, &conflicting).unwrap(),
        MergeOutcome::Conflicts { paths: vec!["a.txt".into()] }
    );
}

#[test]
fn protected_paths_are_restored_from_the_base_in_a_new_tree() {
    let t = TestRepo::with_files(&[("src/a.py", "code\n"), ("tests/test_a.py", "assert real\n")]);
    let base = oid(&t.head());
    t.write("src/a.py", "fixed\n");
    t.write("tests/test_a.py", "assert True\n");
    t.write("tests/conftest.py", "skip everything\n");
    let cand = oid(&t.commit_all("candidate"));
    let git = Repo::discover(t.path()).unwrap().git();
    let scratch = tempfile::tempdir().unwrap();
    let paths = vec!["tests/test_a.py".to_owned(), "tests/conftest.py".to_owned()];
    let tree = git.tree_with_paths_from(&cand, &base, &paths, scratch.path()).unwrap();
    assert_eq!(t.git(&["show", &format!("{tree}:src/a.py")]), "fixed\n");
    assert_eq!(t.git(&["show", &format!("{tree}:tests/test_a.py")]), "assert real\n");
    assert!(!t.git_ok(&["cat-file", "-e", &format!("{tree}:tests/conftest.py")]));
    assert_eq!(
        git.tree_with_paths_from(&cand, &base, &[], scratch.path()).unwrap(),
        git.tree_of(&cand).unwrap()
    );
}

#[test]
fn an_overlay_workspace_shares_a_snapshot_and_keeps_only_changes() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("dir/b.txt", "b\n")]);
    let repo = Repo::discover(t.path()).unwrap();
    let base = repo.head().unwrap();
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("repo").join("run1");
    std::fs::create_dir_all(&runs).unwrap();
    if !baton_git::overlay_supported(root.path()) {
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
    assert_eq!(baton_git::remove_unused_snapshots(&root.path().join("repo/snapshots")), 1);
}

#[test]
fn a_directory_is_committed_over_a_parent_without_removing_its_files() {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("tests/t1.sh", "one\n")]);
    let base = oid(&t.head());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/hidden.sh"), "secret\n").unwrap();
    std::fs::write(dir.path().join("tests/t1.sh"), "replaced\n").unwrap();
    std::fs::write(dir.path().join(".gitignore"), "*.sh\n").unwrap();
    let git = Repo::discover(t.path()).unwrap().git();
    let scratch = tempfile::tempdir().unwrap();
    let before = t.user_state();
    let c = git.commit_directory_over(&base, dir.path(), "hidden", scratch.path()).unwrap();
    assert_eq!(t.user_state(), before);
    let files: Vec<_> = git.diff_files(&base, &c).unwrap().into_iter().map(|f| (f.path, f.kind)).collect();
    assert_eq!(
        files,
        [
            (".gitignore".to_owned(), ChangeKind::Added),
            ("tests/hidden.sh".to_owned(), ChangeKind::Added),
            ("tests/t1.sh".to_owned(), ChangeKind::Modified)
        ]
    );
    assert_eq!(t.git(&["show", &format!("{c}:a.txt")]), "a\n");
}

#[test]
fn grep_finds_lines_of_a_commit_not_of_the_working_tree() {
    let t = TestRepo::with_files(&[
        ("pkg/perm.py", "import os\n\nclass Permutation:\n    pass\n"),
        ("pkg/tests/test_perm.py", "def test_perm():\n    pass\n"),
    ]);
    t.write("pkg/late.py", "class Permutation:\n    pass\n");
    let repo = Repo::discover(t.path()).unwrap();
    let git = repo.git();
    let head = repo.head().unwrap();
    let hits = git.grep(&head, r"^(class|def) (Permutation|test_perm)\b", &["*.py"]).unwrap();
    assert_eq!(
        hits,
        [
            ("pkg/perm.py".to_owned(), "class Permutation:".to_owned()),
            ("pkg/tests/test_perm.py".to_owned(), "def test_perm():".to_owned())
        ]
    );
    assert!(git.grep(&head, "^nothing like this$", &[]).unwrap().is_empty());
    assert_eq!(
        git.file_at(&head, "pkg/perm.py").unwrap().unwrap(),
        b"import os\n\nclass Permutation:\n    pass\n"
    );
    assert_eq!(git.file_at(&head, "pkg/late.py").unwrap(), None, "not committed");
    assert!(git.grep(&head, "(unclosed", &[]).is_err(), "a bad pattern is an error, not no match");
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
