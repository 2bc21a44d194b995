//! Whether a verification can be evidence at all.
//!
//! A test stage whose runner is missing, whose tests never load, or which tests the user's
//! checkout instead of the workspace gives every subject the same results whatever the
//! candidates changed. Comparing such results with the base's finds no difference, and a
//! ranking built on them would name a winner by whatever is left (the size of a change). These
//! checks find such setups from what the stages did, so that the run can say so and name no
//! winner.

use std::path::Path;

use baton_core::{StageKind, StageResult, StageStatus};

/// What makes the verification of a run no evidence, one sentence each, naming the stage and
/// its log (under `artifacts`). `base` is the base's results; `candidates` each verified
/// candidate's.
pub fn setup_problems(artifacts: &Path, base: &[StageResult], candidates: &[&[StageResult]]) -> Vec<String> {
    let mut problems = Vec::new();
    for b in base {
        let log = || match &b.log {
            Some(rel) => {
                let path = artifacts.join(rel);
                match telling_line(&path) {
                    Some(line) => format!(" (log: {}; it says: {line})", path.display()),
                    None => format!(" (log: {})", path.display()),
                }
            }
            None => String::new(),
        };
        let runs_code = matches!(b.kind, StageKind::Setup | StageKind::Build | StageKind::Test);
        match &b.status {
            StageStatus::SpawnFailed { message } if runs_code => {
                problems.push(format!("stage `{}` could not start on the base: {message}", b.stage));
                continue;
            }
            // What `sh` says when it cannot find or execute a command: the runner is missing.
            StageStatus::Failed { exit_code: Some(code @ (126 | 127)), .. } if runs_code => {
                problems.push(format!(
                    "stage `{}` exited {code} on the base: a command it runs was not found or cannot be executed{}",
                    b.stage,
                    log()
                ));
                continue;
            }
            _ => {}
        }
        let same_stage = |r: &&StageResult| r.stage == b.stage;
        // A setup or build stage that fails on the base and on every candidate keeps every
        // stage after it from running anywhere.
        if matches!(b.kind, StageKind::Setup | StageKind::Build)
            && matches!(b.status, StageStatus::Failed { .. } | StageStatus::TimedOut)
            && candidates.iter().all(|c| c.iter().find(same_stage).is_none_or(|r| !r.status.is_passed()))
        {
            problems.push(format!(
                "{} stage `{}` {} on the base{}, so nothing after it runs{}",
                b.kind.as_str(),
                b.stage,
                b.status,
                if candidates.is_empty() { "" } else { " and on every candidate" },
                log()
            ));
            continue;
        }
        // Tests that read the user's checkout explain every other symptom: say that first.
        let foreign = std::iter::once(b)
            .chain(candidates.iter().flat_map(|c| c.iter().find(same_stage)))
            .find_map(|r| r.foreign_paths.first());
        if let Some(path) = foreign {
            problems.push(format!(
                "stage `{}` reads files of your repository, not the workspace's (its output names {path}): \
                 an editable install or an absolute path in its command makes it test your checkout, \
                 whatever the candidates changed",
                b.stage
            ));
            continue;
        }
        let ran = |r: &StageResult| !matches!(r.status, StageStatus::Skipped { .. } | StageStatus::Cancelled);
        if b.kind == StageKind::Test && b.expects_tests && ran(b) {
            let subjects =
                std::iter::once(b).chain(candidates.iter().flat_map(|c| c.iter().find(same_stage)));
            let passed_somewhere = subjects.clone().any(|r| r.tests.iter().any(|t| t.status.is_pass()));
            // A run stopped at its time limit may simply not have reached a passing test.
            let cut = subjects.clone().any(|r| r.status == StageStatus::TimedOut);
            if !passed_somewhere && !cut {
                let what = if subjects.clone().all(|r| r.tests.is_empty()) {
                    "reported no test"
                } else {
                    "passed no test"
                };
                problems.push(format!(
                    "stage `{}` {what} on the base{}: its tests do not run here{}",
                    b.stage,
                    if candidates.is_empty() { "" } else { " or on any candidate" },
                    log()
                ));
                continue;
            }
        }
    }
    problems
}

/// The last line of a log that names an error, cut to 160 characters.
fn telling_line(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(&text);
    let words =
        ["error", "not found", "no module named", "cannot", "could not", "no such file", "interrupted"];
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| {
            let lower = l.to_lowercase();
            !l.is_empty() && words.iter().any(|w| lower.contains(w))
        })
        .map(|l| l.chars().take(160).collect())
}

#[cfg(test)]
mod tests {
    use baton_core::{TestCase, TestStatus};

    use super::*;

    fn stage(status: StageStatus, tests: &[(&str, TestStatus)]) -> StageResult {
        StageResult {
            stage: "test".into(),
            kind: StageKind::Test,
            status,
            duration_ms: 0,
            tests: tests.iter().map(|(n, s)| TestCase { name: n.to_string(), status: *s }).collect(),
            parsed: !tests.is_empty(),
            log: Some("base/verify-test.log".into()),
            notes: vec![],
            flaky: vec![],
            findings: None,
            metric: None,
            parts: vec![],
            left_out: vec![],
            expects_tests: true,
            foreign_paths: vec![],
        }
    }

    fn failed(code: i32) -> StageStatus {
        StageStatus::Failed { exit_code: Some(code), signal: None }
    }

    #[test]
    fn a_missing_runner_is_named_with_the_line_of_its_log_that_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("base")).unwrap();
        std::fs::write(dir.path().join("base/verify-test.log"), "sh: 1: pytest: not found\n").unwrap();
        let base = [stage(failed(127), &[])];
        let problems = setup_problems(dir.path(), &base, &[]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("stage `test` exited 127 on the base"), "{problems:?}");
        assert!(problems[0].ends_with("it says: sh: 1: pytest: not found)"), "{problems:?}");
    }

    #[test]
    fn tests_that_pass_nowhere_are_no_evidence_but_one_pass_anywhere_is() {
        let dir = tempfile::tempdir().unwrap();
        // Every module fails to import, on the base and on both candidates.
        let broken = || stage(failed(2), &[("tests/test_a.py", TestStatus::Error)]);
        let (base, c1, c2) = ([broken()], [broken()], [broken()]);
        let problems = setup_problems(dir.path(), &base, &[&c1, &c2]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("passed no test on the base or on any candidate"), "{problems:?}");
        // "No module named pytest" on every side: nothing is reported at all.
        let silent = || stage(failed(1), &[]);
        let problems = setup_problems(dir.path(), &[silent()], &[&[silent()]]);
        assert!(problems[0].contains("reported no test"), "{problems:?}");
        // Hidden tests of a function the task asks to add fail to import on the base only.
        let fixed = [stage(StageStatus::Passed, &[("tests/test_a.py::t", TestStatus::Pass)])];
        assert!(setup_problems(dir.path(), &base, &[&c1, &fixed]).is_empty());
        // An exit-code stage reports no tests by design.
        let mut exit_code = stage(failed(1), &[]);
        exit_code.expects_tests = false;
        assert!(setup_problems(dir.path(), &[exit_code], &[]).is_empty());
        // A stage skipped everywhere (no related tests) verified nothing, but is not broken.
        let skipped = stage(StageStatus::Skipped { reason: "no related tests".into() }, &[]);
        assert!(setup_problems(dir.path(), &[skipped], &[]).is_empty());
    }

    #[test]
    fn a_build_that_fails_everywhere_is_no_evidence_but_one_a_candidate_fixes_is() {
        let dir = tempfile::tempdir().unwrap();
        let build = |status: StageStatus| StageResult {
            kind: StageKind::Build,
            stage: "build".into(),
            expects_tests: false,
            ..stage(status, &[])
        };
        let base = [build(failed(101))];
        let c1 = [build(failed(101))];
        let problems = setup_problems(dir.path(), &base, &[&c1]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .starts_with("build stage `build` failed (exit 101) on the base and on every candidate"),
            "{problems:?}"
        );
        let c2 = [build(StageStatus::Passed)];
        assert!(
            setup_problems(dir.path(), &base, &[&c1, &c2]).is_empty(),
            "the task may be to fix the build"
        );
    }

    #[test]
    fn a_stage_that_reads_the_users_checkout_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let base = [stage(StageStatus::Passed, &[("t", TestStatus::Pass)])];
        let mut cand = stage(StageStatus::Passed, &[("t", TestStatus::Pass)]);
        cand.foreign_paths = vec!["/home/me/proj/src/pkg/mod.py".into()];
        let cand = [cand];
        let problems = setup_problems(dir.path(), &base, &[&cand]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("its output names /home/me/proj/src/pkg/mod.py"), "{problems:?}");
    }
}
