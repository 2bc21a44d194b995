//! Agents against real files and programs.

use std::collections::BTreeMap;

use baton_agents::{Agent, AgentError, ApplyMethod, CommandAgent, PatchAgent, apply_patch};
use baton_testkit::TestRepo;

const PATCH: &str =
    "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n";

#[test]
fn patches_apply_exactly_or_with_fuzz_or_not_at_all() {
    let t = TestRepo::with_files(&[("a.txt", "one\ntwo\nthree\n")]);
    assert_eq!(apply_patch(t.path(), PATCH.as_bytes()).unwrap(), ApplyMethod::GitApply);
    assert_eq!(t.read("a.txt"), "one\nTWO\nthree\n");

    // Shifted by two lines and with different trailing context: git apply refuses, fuzz fits.
    let t = TestRepo::with_files(&[("a.txt", "zero\nhalf\none\ntwo\nTHREE\n")]);
    assert_eq!(apply_patch(t.path(), PATCH.as_bytes()).unwrap(), ApplyMethod::Fuzzy);
    assert_eq!(t.read("a.txt"), "zero\nhalf\none\nTWO\nTHREE\n");

    let t = TestRepo::with_files(&[("a.txt", "something else entirely\n")]);
    let err = apply_patch(t.path(), PATCH.as_bytes()).unwrap_err();
    assert!(matches!(&err, baton_agents::PatchError::DoesNotApply { .. }), "{err:?}");
    let said = err.to_string();
    assert!(said.contains("patch failed") || said.contains("does not apply"), "{said}");
    assert_eq!(t.read("a.txt"), "something else entirely\n");
    assert!(t.git(&["status", "--porcelain"]).is_empty());
    assert!(matches!(apply_patch(t.path(), b"\n"), Err(baton_agents::PatchError::Empty)));
}

#[test]
fn preflight_names_the_missing_program_or_file() {
    let here = std::env::current_dir().unwrap();
    let missing = CommandAgent::new("x", vec!["baton-no-such-agent".into()], BTreeMap::new(), None, &here);
    let err = missing.preflight().unwrap_err();
    assert!(matches!(err, AgentError::ProgramNotFound { .. }));
    assert_eq!(err.to_string(), "agent `x`: `baton-no-such-agent` was not found on PATH");
    assert!(CommandAgent::new("sh", vec!["sh".into()], BTreeMap::new(), None, &here).preflight().is_ok());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("script.sh"), "echo hi").unwrap();
    let not_exec = CommandAgent::new("s", vec!["./script.sh".into()], BTreeMap::new(), None, dir.path());
    let err = not_exec.preflight().unwrap_err();
    assert!(err.to_string().ends_with("script.sh is not executable"), "{err}");

    let p = PatchAgent::new(dir.path().join("c07.diff"));
    assert_eq!(p.name(), "c07");
    assert!(p.preflight().unwrap_err().to_string().contains("c07.diff does not exist"));
}
