use baton_core::{
    AgentOutcome, CandidateId, Decision, GateName, RunId, StageComparison, StageKind, StageStatus,
    TestChange, TestDelta, TimeoutKind,
};

use crate::{CandidateEvidence, ProbeContext, rank};

fn test_stage(changes: &[(&str, TestChange)], passed: bool) -> StageComparison {
    StageComparison {
        stage: "test".into(),
        kind: StageKind::Test,
        base: Some(StageStatus::Failed { exit_code: Some(1), signal: None }),
        candidate: if passed {
            StageStatus::Passed
        } else {
            StageStatus::Failed { exit_code: Some(1), signal: None }
        },
        tests: changes.iter().map(|(n, c)| TestDelta { name: n.to_string(), change: *c }).collect(),
        still_passing: 3,
        parsed: true,
        new_findings: vec![],
        metric: None,
        metric_worse: false,
    }
}

fn cand(n: usize, lines: usize, stages: Vec<StageComparison>) -> CandidateEvidence {
    CandidateEvidence {
        id: CandidateId::nth(n),
        agent: format!("agent{n}"),
        strategy: "default".into(),
        outcome: Some(AgentOutcome::Completed),
        collected: true,
        files_changed: 1,
        lines_changed: lines,
        tokens_changed: 3 * lines,
        complexity: (0, 0),
        protected_edits: vec![],
        scripts_added: 0,
        tamper: vec![],
        verified: true,
        stages,
        normalized_patch: format!("patch {n}"),
        parsed_patch: None,
        probes: vec![],
        verified_as: Some(CandidateId::nth(n)),
    }
}

fn run() -> RunId {
    RunId::new("r").unwrap()
}

#[test]
fn the_demo_tournament_ranks_the_minimal_correct_fix_first() {
    use TestChange::*;
    let minimal = cand(1, 2, vec![test_stage(&[("t_last_page", Fixed)], true)]);
    let sprawling = cand(2, 80, vec![test_stage(&[("t_last_page", Fixed)], true)]);
    let breaker = cand(3, 3, vec![test_stage(&[("t_last_page", Fixed), ("t_first_page", Broken)], false)]);
    let mut test_editor = cand(4, 4, vec![test_stage(&[("t_last_page", StillFailing)], false)]);
    test_editor.protected_edits = vec!["tests/test_pages.py".into()];
    test_editor.files_changed = 1;
    let mut hang = cand(5, 0, vec![]);
    hang.outcome = Some(AgentOutcome::TimedOut { kind: TimeoutKind::Wall });
    hang.verified = false;
    let mut crash = cand(6, 0, vec![]);
    crash.outcome = Some(AgentOutcome::Failed { reason: "killed by signal 11".into() });
    crash.verified = false;

    let board =
        rank(&run(), &ProbeContext::default(), &[], &[sprawling, breaker, test_editor, hang, crash, minimal]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3", "c4", "c5", "c6"]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"));
    let c = |id: &str| board.candidates.iter().find(|c| c.id.as_str() == id).unwrap();
    assert!(c("c1").eligible && c("c2").eligible);
    assert_eq!(c("c2").explanation[0], "below c1: makes a larger change (80 lines against 2)");
    let failed_gate = |id: &str| c(id).gates.iter().find(|g| !g.passed).map(|g| g.gate);
    assert_eq!(failed_gate("c3"), Some(GateName::NoNewFailures));
    assert_eq!(failed_gate("c4"), Some(GateName::NonEmpty));
    assert_eq!(failed_gate("c5"), Some(GateName::AgentFinished));
    assert!(c("c5").explanation[0].contains("timed out (wall-clock limit)"), "{:?}", c("c5").explanation);
    assert!(c("c4").explanation[0].contains("changed only protected files"), "{:?}", c("c4").explanation);
    match &board.decision {
        Decision::Winner { reason, .. } => {
            assert_eq!(
                reason,
                "fixes 1 test and breaks none; ranked above c2, which makes a larger change (80 lines against 2)"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_eligible_candidate_means_no_winner_and_says_why() {
    let mut a = cand(1, 1, vec![]);
    a.outcome = Some(AgentOutcome::Cancelled);
    let mut b = cand(2, 0, vec![]);
    b.files_changed = 0;
    let board = rank(&run(), &ProbeContext::default(), &[], &[a, b]);
    match board.decision {
        Decision::NoWinner { reason } => {
            assert_eq!(
                reason,
                "no candidate passed the gates (1 failed \"agent finished\", 1 failed \"changed something\")"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_build_fails_the_gate() {
    let mut broken_build = cand(1, 1, vec![]);
    broken_build.stages = vec![StageComparison {
        stage: "build".into(),
        kind: StageKind::Build,
        base: Some(StageStatus::Passed),
        candidate: StageStatus::Failed { exit_code: Some(101), signal: None },
        tests: vec![],
        still_passing: 0,
        parsed: false,
        new_findings: vec![],
        metric: None,
        metric_worse: false,
    }];
    let board = rank(&run(), &ProbeContext::default(), &[], &[broken_build, cand(2, 10, vec![])]);
    assert_eq!(board.candidates[0].id.as_str(), "c2");
    let gate = board.candidates[1].gates.iter().find(|g| g.gate == GateName::Builds).unwrap();
    assert!(!gate.passed);
    assert_eq!(gate.detail, "build stage `build` failed (exit 101)");
}

#[test]
fn test_evidence_outweighs_size_and_size_outweighs_identical_text() {
    use TestChange::*;
    let fixed = || vec![test_stage(&[("t", Fixed)], true)];
    let mut a = cand(1, 30, fixed());
    let mut b = cand(2, 31, fixed());
    let c = cand(3, 5, fixed());
    a.normalized_patch = "same".into();
    b.normalized_patch = "same".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[a, b, c]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c3", "c1", "c2"], "the same text twice does not outweigh a smaller change");
    assert_eq!(board.candidates[1].agrees_with, [CandidateId::nth(2)]);
    assert_eq!(board.candidates[2].explanation[0], "below c1: makes a larger change (31 lines against 30)");

    let mut a = cand(1, 30, fixed());
    let mut b = cand(2, 30, fixed());
    let d = cand(3, 5, vec![test_stage(&[("t", StillFailing)], false)]);
    a.normalized_patch = "same".into();
    b.normalized_patch = "same".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[d, a, b]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"], "fixing the test outranks a smaller change");
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy { evidence: "fixed".into(), confidence: baton_core::Confidence::High }),
        "against c3, the first different change"
    );
    assert_eq!(
        board.decision.winner().map(CandidateId::as_str),
        Some("c1"),
        "the same change twice is no tie"
    );
}

#[test]
fn a_best_candidate_that_breaks_tests_is_no_winner() {
    use TestChange::*;
    let only = cand(1, 2, vec![test_stage(&[("a", Broken)], false)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[only]);
    assert!(board.candidates[0].eligible, "as good as the best, which is itself");
    assert_eq!(
        board.decision,
        Decision::NoWinner { reason: "the best candidate, c1, breaks 1 test that passes on the base".into() }
    );
}

#[test]
fn a_tampering_candidate_cannot_win() {
    use TestChange::*;
    let mut cheat = cand(1, 1, vec![test_stage(&[("t", Fixed)], true)]);
    cheat.tamper = vec!["tests/test_x.py:4: skips or expects failure of a test (@pytest.mark.skip)".into()];
    let honest = cand(2, 9, vec![test_stage(&[("t", Fixed)], true)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[cheat, honest]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    let gate = board.candidates[1].gates.iter().find(|g| g.gate == GateName::NoTamper).unwrap();
    assert!(!gate.passed);
    assert!(gate.detail.starts_with("1 suspicious edit, first tests/test_x.py:4:"), "{}", gate.detail);
}

#[test]
fn two_different_changes_that_tie_on_everything_are_no_winner() {
    use TestChange::*;
    let a = cand(1, 4, vec![test_stage(&[("t", Fixed)], true)]);
    let b = cand(2, 4, vec![test_stage(&[("t", Fixed)], true)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[a.clone(), b.clone()]);
    match &board.decision {
        Decision::NoWinner { reason } => assert_eq!(
            reason,
            "c1 and c2 tie on all the evidence with different changes; a human must choose"
        ),
        other => panic!("{other:?}"),
    }
    // Either reading of the change can make two candidates the same: the lines they add and
    // remove (wherever they stand), or the tokens of the files.
    let (mut a3, mut b3) = (a.clone(), b.clone());
    a3.parsed_patch = Some("x.py\n=f ( a )".into());
    b3.parsed_patch = Some("x.py\n=f ( a )".into());
    assert_eq!(
        rank(&run(), &ProbeContext::default(), &[], &[a3, b3]).decision.winner().map(CandidateId::as_str),
        Some("c1")
    );
    // The same change twice is agreement, not a tie.
    let (mut a2, mut b2) = (a, b);
    a2.normalized_patch = "same".into();
    b2.normalized_patch = "same".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[a2, b2]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"));
}

fn probe(statements: &[&str]) -> baton_core::ProbeOutcome {
    baton_core::ProbeOutcome {
        name: "example 1".into(),
        exit_code: Some(0),
        timed_out: false,
        statements: statements.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn examples_decide_between_otherwise_equal_candidates_and_unchanged_examples_mean_no_winner() {
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![Some("[1, 2, 3]".into()), None]],
        from_candidate: vec![],
        base: vec![probe(&["[1, 2]", "ok"])],
    };
    let mut same = cand(1, 2, vec![]);
    same.probes = vec![probe(&["[1, 2]", "ok"])];
    let mut changed = cand(2, 9, vec![]);
    changed.probes = vec![probe(&["[1, 2, 3]", "ok"])];
    let mut crashes = cand(3, 1, vec![]);
    crashes.probes = vec![probe(&["[1, 2]", "TypeError: bad operand"])];
    let board = rank(&run(), &ctx, &[], &[same.clone(), changed, crashes]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c2", "c3", "c1"], "c1 leaves the examples as they were while others change them");
    assert_eq!(board.candidates[0].probe_matches, 1);
    assert_eq!(board.candidates[1].probe_new_errors, 1);
    assert!(!board.candidates[2].eligible);
    assert_eq!(
        board.candidates[2].explanation[0],
        "not eligible, failed \"changes the examples\": leaves what the task's examples do as it is on the \
         base; 2 candidates change it"
    );
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));

    let board = rank(&run(), &ctx, &[], &[same.clone()]);
    assert_eq!(
        board.decision,
        Decision::NoWinner {
            reason: "no eligible candidate changes what the task's examples do on the base".into()
        }
    );
    // A candidate whose code now lacks a name it uses has broken the example, not changed the
    // behaviour: it does not put the others out, and no candidate changes the examples.
    let mut undefined = cand(4, 1, vec![]);
    undefined.probes = vec![probe(&["[1, 2]", "NameError: name 'simplify' is not defined"])];
    let board = rank(&run(), &ctx, &[], &[same.clone(), undefined]);
    assert!(board.candidates.iter().all(|c| c.gates.iter().all(|g| g.passed)), "{:#?}", board.candidates);
    assert_eq!(board.candidates.iter().find(|c| c.id.as_str() == "c4").unwrap().probe_new_errors, 1);
    assert_eq!(
        board.decision,
        Decision::NoWinner {
            reason: "no eligible candidate changes what the task's examples do on the base".into()
        }
    );
    // An example that prints nothing on the base shows no behaviour to change.
    let silent_ctx = ProbeContext { base: vec![probe(&[""])], ..ctx.clone() };
    let mut quiet = cand(1, 2, vec![]);
    quiet.probes = vec![probe(&[""])];
    assert!(rank(&run(), &silent_ctx, &[], &[quiet]).decision.winner().is_some());
    // An example that cannot even import on the base is no evidence either way.
    let broken_ctx = ProbeContext { base: vec![probe(&["ModuleNotFoundError: No module named 'x'"])], ..ctx };
    let mut one = cand(1, 2, vec![]);
    one.probes = vec![probe(&["ModuleNotFoundError: No module named 'x'"])];
    assert!(rank(&run(), &broken_ctx, &[], &[one]).decision.winner().is_some());
}

#[test]
fn a_test_another_candidate_wrote_outweighs_size() {
    use baton_core::{MatrixCell, MatrixRow, Subject};
    let big = cand(1, 40, vec![]);
    let small = cand(2, 3, vec![]);
    let author = cand(3, 50, vec![]);
    let cell = |n: usize, fixed: usize| MatrixCell {
        subject: Subject::Candidate(CandidateId::nth(n)),
        passing: fixed,
        failing: 1 - fixed,
        fixed,
        broken: 0,
    };
    let matrix = vec![MatrixRow {
        authors: vec![CandidateId::nth(3)],
        files: vec!["tests/t.py".into()],
        cells: vec![cell(1, 1), cell(2, 0), cell(3, 1)],
    }];
    let board = rank(&run(), &ProbeContext::default(), &matrix, &[big, small, author]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c3", "c2"], "c1 passes another's test; c3 only its own; c2 none");
    assert_eq!(board.candidates[0].matrix_fixed_others, 1);
    assert_eq!(board.candidates[1].matrix_fixed_own, 1);
}

#[test]
fn new_findings_and_a_slower_benchmark_count_against_a_candidate() {
    use baton_core::StageStatus;
    let review = |findings: &[&str], metric: Option<(f64, f64)>, worse: bool| StageComparison {
        stage: if metric.is_some() { "bench".into() } else { "lint".into() },
        kind: if metric.is_some() { StageKind::Bench } else { StageKind::Lint },
        base: Some(StageStatus::Passed),
        candidate: StageStatus::Passed,
        tests: vec![],
        still_passing: 0,
        parsed: false,
        new_findings: findings.iter().map(|s| s.to_string()).collect(),
        metric,
        metric_worse: worse,
    };
    let clean = cand(1, 20, vec![review(&[], None, false), review(&[], Some((10.0, 10.2)), false)]);
    let noisy = cand(2, 2, vec![review(&["a.py: F401 unused import"], None, false)]);
    let slow = cand(3, 1, vec![review(&[], Some((10.0, 13.0)), true)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[slow, noisy, clean]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"]);
    assert_eq!(board.candidates[1].new_findings, ["lint: a.py: F401 unused import"]);
    assert_eq!(board.candidates[2].regressed_stages, ["bench (30% worse: 13 against 10 on the base)"]);
    assert!(
        board.candidates[1].explanation[0].contains("adds more lint or security findings (1 against 0)"),
        "{:?}",
        board.candidates[1].explanation
    );
}

#[test]
fn tests_that_independent_fixes_break_alike_are_weighed_among_candidates_that_change_the_examples() {
    use TestChange::*;
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![None]],
        from_candidate: vec![],
        base: vec![probe(&["ValueError: repeated elements"])],
    };
    // Two different fixes make the example work and both break the test that pinned the error;
    // a third leaves the example failing and breaks nothing.
    let mut a = cand(1, 5, vec![test_stage(&[("test_args", Broken)], false)]);
    a.probes = vec![probe(&["Permutation(1)"])];
    let mut b = cand(2, 11, vec![test_stage(&[("test_args", Broken)], false)]);
    b.probes = vec![probe(&["Permutation(1)"])];
    let mut idle = cand(3, 2, vec![test_stage(&[], true)]);
    idle.probes = vec![probe(&["ValueError: repeated elements"])];
    let board = rank(&run(), &ctx, &[], &[idle.clone(), a.clone(), b.clone()]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"]);
    match &board.decision {
        Decision::Winner { candidate, reason } => {
            assert_eq!(candidate.as_str(), "c1");
            assert!(reason.contains("it breaks a test that passes on the base, as c2 does"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // Alone, or breaking other tests than the fix that agrees with it, the breakage stands.
    let mut b_other = b.clone();
    b_other.stages = vec![test_stage(&[("test_cycle", Broken)], false)];
    let board = rank(&run(), &ctx, &[], &[idle.clone(), a.clone(), b_other]);
    assert_eq!(
        board.decision,
        Decision::NoWinner { reason: "the best candidate, c1, breaks 1 test that passes on the base".into() }
    );
    // The same change twice is one fix, not two that agree.
    let mut a2 = a.clone();
    a.normalized_patch = "same".into();
    a2.normalized_patch = "same".into();
    a2.id = CandidateId::nth(2);
    let board = rank(&run(), &ctx, &[], &[idle, a, a2]);
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
}

#[test]
fn equal_line_counts_are_told_apart_by_tokens() {
    use TestChange::*;
    let mut rewrite = cand(1, 2, vec![test_stage(&[("t", Fixed)], true)]);
    rewrite.tokens_changed = 30;
    rewrite.complexity = (3, 1);
    let mut tweak = cand(2, 2, vec![test_stage(&[("t", Fixed)], true)]);
    tweak.tokens_changed = 2;
    tweak.complexity = (0, 1);
    let board = rank(&run(), &ProbeContext::default(), &[], &[rewrite, tweak]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    assert_eq!((board.candidates[1].complexity_added, board.candidates[1].complexity_removed), (3, 1));
    assert!(
        board.candidates[1].explanation.contains(&"1 file, 2 lines changed; 2 more decision points".into())
    );
    assert!(
        board.candidates[0].explanation.contains(&"1 file, 2 lines changed; 1 fewer decision point".into())
    );
    assert_eq!(
        board.candidates[1].explanation[0],
        "below c2: makes a larger change within as many lines (30 tokens against 2)"
    );
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy { evidence: "tokens".into(), confidence: baton_core::Confidence::Low })
    );
}

/// A crash the task reports is gone under one fix and replaced by another exception under a
/// smaller one: running to the end outranks size. A candidate's script counts the same way, and
/// a script that runs on the base but fails under a candidate is a new error; scripts never make
/// the "changes the examples" gate apply.
#[test]
fn an_example_that_fails_on_the_base_and_runs_to_its_end_outranks_size() {
    let ctx = ProbeContext {
        names: vec!["example 1".into(), "c9's reproduce.py".into(), "c9's check.py".into()],
        shown: vec![vec![None], vec![None], vec![None]],
        from_candidate: vec![false, true, true],
        base: vec![
            probe(&["ValueError: not enough values to unpack"]),
            probe(&["start\nValueError: not enough values to unpack"]),
            probe(&["ok"]),
        ],
    };
    let mut other_error = cand(1, 2, vec![]);
    other_error.probes = vec![
        probe(&["ValueError: arrays without shape need one scalar value"]),
        probe(&["start\nValueError: arrays without shape need one scalar value"]),
        probe(&["ok"]),
    ];
    let mut runs = cand(2, 9, vec![]);
    runs.probes = vec![probe(&[""]), probe(&["start\ndone"]), probe(&["ok"])];
    let board = rank(&run(), &ctx, &[], &[other_error.clone(), runs.clone()]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    assert_eq!(board.candidates[0].probe_fixed, 2);
    assert_eq!(board.candidates[1].probe_fixed, 0);
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy {
            evidence: "example_fixed".into(),
            confidence: baton_core::Confidence::Medium
        })
    );
    assert!(
        board.candidates[0].explanation.iter().any(|l| l.contains("c9's reproduce.py: runs to its end")),
        "{:?}",
        board.candidates[0].explanation
    );

    // Only the scripts: no task example, so nothing for the examples gate; a script that the
    // base runs and a candidate crashes counts against it.
    let scripts_only = ProbeContext {
        names: ctx.names[1..].to_vec(),
        shown: ctx.shown[1..].to_vec(),
        from_candidate: vec![true, true],
        base: ctx.base[1..].to_vec(),
    };
    let mut crashes = cand(1, 1, vec![]);
    crashes.probes =
        vec![probe(&["start\nValueError: not enough values to unpack"]), probe(&["KeyError: 'x'"])];
    let mut quiet = cand(2, 5, vec![]);
    quiet.probes = vec![probe(&["start\nValueError: not enough values to unpack"]), probe(&["ok"])];
    let board = rank(&run(), &scripts_only, &[], &[crashes, quiet]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    assert_eq!(board.candidates[1].probe_new_errors, 1);
    assert!(board.candidates.iter().all(|c| c.gates.iter().all(|g| g.gate != GateName::ChangesExamples)));
    assert_eq!(board.candidates.iter().map(|c| c.probe_changed).sum::<usize>(), 0);
}

#[test]
fn a_syntax_error_is_the_examples_own_unless_the_program_compiled_the_code_as_it_ran() {
    use crate::environment_error;
    assert!(environment_error("SyntaxError: invalid syntax (<probe>, line 1)"));
    assert!(environment_error("  x = (\n    ^\nSyntaxError: invalid syntax"));
    assert!(environment_error("ModuleNotFoundError: No module named 'numpy'"));
    assert!(environment_error("FileNotFoundError: [Errno 2] No such file or directory: 'app/models.py'"));
    assert!(!environment_error(
        "sympy.core.sympify.SympifyError: Sympify of expression 'could not parse 'y*'' failed, because of exception being raised:\nSyntaxError: unexpected EOF while parsing (<string>, line 1)"
    ));
    assert!(!environment_error("ValueError: bad"));
}

/// A candidate that only left its reproduction script behind has not changed the project: it
/// is out where another candidate has, however small it is; where every candidate only added
/// scripts (the task may ask for one), the gate does not apply.
#[test]
fn a_candidate_that_only_added_a_script_at_the_top_is_out_where_others_change_the_project() {
    let mut script_only = cand(1, 5, vec![]);
    script_only.scripts_added = 1;
    let fix = cand(2, 30, vec![]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[script_only.clone(), fix]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    let out = &board.candidates[1];
    assert!(!out.eligible);
    assert_eq!(
        out.explanation[0],
        "not eligible, failed \"changed something\": it only added a script at the repository's top (a \
         reproduction, it seems), while other candidates change the project"
    );

    let mut other_script = cand(2, 9, vec![]);
    other_script.scripts_added = 1;
    let board = rank(&run(), &ProbeContext::default(), &[], &[script_only, other_script]);
    assert!(board.candidates.iter().all(|c| c.eligible));
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"));
}

/// Two different changes of one size: the one whose edit other candidates also made, inside
/// larger changes, goes first; without that the two tie and there is no winner.
#[test]
fn between_changes_of_one_size_the_edit_others_share_goes_first() {
    let mut alone = cand(1, 2, vec![]);
    alone.normalized_patch = "a.py\n+self.x=make_hashable(x)\n-self.x=x\n".into();
    let mut shared = cand(2, 2, vec![]);
    shared.normalized_patch = "a.py\n+make_hashable(self.x),\n-self.x,\n".into();
    let mut larger = cand(3, 3, vec![]);
    larger.normalized_patch =
        "a.py\n+fromhashableimportmake_hashable\n+make_hashable(self.x),\n-self.x,\n".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[alone.clone(), shared.clone(), larger]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    assert_eq!(board.candidates[0].shared_edits, 2);
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy {
            evidence: "shared_edits".into(),
            confidence: baton_core::Confidence::Low
        })
    );
    let below = board.candidates.iter().find(|c| c.id.as_str() == "c1").unwrap();
    assert_eq!(
        below.explanation[0],
        "below c2: shares fewer of its edited lines with other candidates' changes (0 against 2)"
    );

    let board = rank(&run(), &ProbeContext::default(), &[], &[alone, shared]);
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
}

/// A probe cut at its time limit on one side says how fast the machine was: the candidate whose
/// example timed out has not changed what the example does, and the gate that asks for a change
/// then leaves no one in (no winner), as it would have without the timeout.
#[test]
fn a_probe_that_timed_out_counts_for_nothing() {
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![None]],
        from_candidate: vec![],
        base: vec![probe(&["RecursionError: maximum recursion depth exceeded"])],
    };
    let mut slow = cand(1, 2, vec![]);
    slow.probes = vec![baton_core::ProbeOutcome { timed_out: true, ..probe(&["partial output"]) }];
    let mut same = cand(2, 5, vec![]);
    same.probes = vec![probe(&["RecursionError: maximum recursion depth exceeded"])];
    let board = rank(&run(), &ctx, &[], &[slow, same]);
    assert!(board.candidates.iter().all(|c| c.probe_changed == 0 && c.probe_fixed == 0));
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
}
