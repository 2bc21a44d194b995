use baton_core::RepoChange;
use baton_git::Repo;

use super::state::RepoState;
use baton_testkit::TestRepo;

fn state(t: &TestRepo, known: Option<&RepoState>) -> RepoState {
    let repo = Repo::discover(t.path()).unwrap();
    RepoState::capture(&repo, &[b"ws".to_vec()], known, known.is_none()).unwrap()
}

fn sh(t: &TestRepo, script: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", script])
        .current_dir(t.path())
        .envs(baton_testkit::hermetic_git_env())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .status()
        .unwrap();
    assert!(status.success(), "{script}");
}

/// Changes something, checks that the guard says what, then runs the undo commands it gave
/// and checks that the repository is as it was.
fn changed_and_undone(t: &TestRepo, change: &str) -> Vec<RepoChange> {
    let before = state(t, None);
    let shown = t.user_state() + &t.all_refs() + &t.git(&["ls-files", "--stage"]);
    sh(t, change);
    let now = state(t, Some(&before));
    let found = before.diff(&now);
    let undo: Vec<String> = found.iter().flat_map(|f| f.undo.clone()).collect();
    sh(t, &undo.join("\n"));
    let again = state(t, Some(&before));
    assert!(before.diff(&again).is_empty(), "{change}: not undone by {undo:#?}: {:#?}", before.diff(&again));
    assert_eq!(t.user_state() + &t.all_refs() + &t.git(&["ls-files", "--stage"]), shown, "{change}");
    found.into_iter().map(|f| f.change).collect()
}

fn repo() -> TestRepo {
    let t = TestRepo::with_files(&[("a.txt", "a\n"), ("dir/b.txt", "b\n"), (".gitignore", "*.log\nws/\n")]);
    t.git(&["branch", "other"]);
    t.write("a.txt", "uncommitted\n");
    t.write("untracked.txt", "mine\n");
    t.write("build.log", "ignored\n");
    t.write("ws/c1/tree/x", "a workspace\n");
    t
}

#[test]
fn nothing_changed_is_nothing_found() {
    let t = repo();
    let before = state(&t, None);
    // Ignored files, and paths under the workspace root, are not the user's work.
    t.write("build.log", "rebuilt\n");
    t.write("ws/c2/tree/y", "another\n");
    t.git(&["update-ref", "refs/baton/runs/r/c1", "HEAD"]);
    t.git(&["update-ref", "refs/heads/baton/r/c1", "HEAD"]);
    assert!(before.diff(&state(&t, Some(&before))).is_empty());
}

#[test]
fn every_kind_of_change_is_named_and_undone() {
    let t = repo();
    let head = t.head();
    let main_moved =
        changed_and_undone(&t, "git update-ref refs/heads/main $(git commit-tree -p HEAD -m x HEAD^{tree})");
    assert!(
        matches!(&main_moved[..], [RepoChange::RefMoved { name, was, .. }] if name == "refs/heads/main" && *was == head),
        "{main_moved:?}"
    );
    let created = changed_and_undone(&t, "git branch new && git tag v1");
    assert!(
        matches!(&created[..], [RepoChange::RefCreated { .. }, RepoChange::RefCreated { .. }]),
        "{created:?}"
    );
    let deleted = changed_and_undone(&t, "git branch -D other");
    assert!(matches!(&deleted[..], [RepoChange::RefDeleted { .. }]), "{deleted:?}");
    let switched = changed_and_undone(&t, "git checkout -q -b topic");
    assert!(
        matches!(&switched[..], [RepoChange::Head { .. }, RepoChange::RefCreated { .. }]),
        "{switched:?}"
    );
    let detached = changed_and_undone(&t, "git checkout -q --detach");
    assert!(matches!(&detached[..], [RepoChange::Head { .. }]), "{detached:?}");
    let staged = changed_and_undone(&t, "git add a.txt untracked.txt");
    assert!(matches!(&staged[..], [RepoChange::Index { paths }] if paths.len() == 2), "{staged:?}");
    let files = changed_and_undone(
        &t,
        "echo agent > dir/b.txt; echo agent > a.txt; rm untracked.txt; echo new > dir/new.txt; rm -r dir/b.txt",
    );
    let names: Vec<String> = files.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "a.txt was modified in the working tree",
            "dir/b.txt was deleted from the working tree",
            "dir/new.txt was created in the working tree",
            "untracked.txt was deleted from the working tree",
        ]
    );
    let modes = changed_and_undone(&t, "chmod +x dir/b.txt; ln -s a.txt link");
    assert_eq!(modes.len(), 2, "{modes:?}");
}

#[test]
fn many_index_changes_are_undone_at_once() {
    let t = TestRepo::with_files(&[("keep.txt", "k\n")]);
    let files: Vec<String> = (0..20).map(|i| format!("f{i}.txt")).collect();
    for f in &files {
        t.write(f, "x\n");
    }
    t.commit_all("many");
    let before = state(&t, None);
    sh(&t, "git rm -q --cached f*.txt");
    let found = before.diff(&state(&t, Some(&before)));
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].undo, [format!("git read-tree {}", t.head())]);
    sh(&t, &found[0].undo.join("\n"));
    assert!(before.diff(&state(&t, Some(&before))).is_empty());
}
