//! baton-git against real repositories.

use baton_git::{ChangeKind, GitError, MergeOutcome, Oid, Repo};
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
