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
        layout_only: false,
        tamper: vec![],
        expectation_edits: vec![],
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

    let board = rank(
        &run(),
        &ProbeContext::default(),
        &[],
        &[sprawling, breaker, test_editor, hang, crash, minimal],
        &[],
    );
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3", "c4", "c5", "c6"]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"));
    let c = |id: &str| board.candidates.iter().find(|c| c.id.as_str() == id).unwrap();
    assert!(c("c1").eligible && c("c2").eligible);
    assert_eq!(c("c2").explanation[0], "below c1: makes a larger change (80 lines against 2)");
    let failed_gate = |id: &str| c(id).gates.iter().find(|g| !g.passed).map(|g| g.gate);
    assert_eq!(failed_gate("c3"), None, "breaking a test is evidence, not a gate");
    assert_eq!(c("c3").explanation[0], "below c1: breaks t_first_page");
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
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy { evidence: "size".into(), confidence: baton_core::Confidence::Low }),
        "the same test fixed, nothing against either: the smaller is taken, with low confidence"
    );
}

#[test]
fn no_eligible_candidate_means_no_winner_and_says_why() {
    let mut a = cand(1, 1, vec![]);
    a.outcome = Some(AgentOutcome::Cancelled);
    let mut b = cand(2, 0, vec![]);
    b.files_changed = 0;
    let board = rank(&run(), &ProbeContext::default(), &[], &[a, b], &[]);
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
    let board = rank(&run(), &ProbeContext::default(), &[], &[broken_build, cand(2, 10, vec![])], &[]);
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
    let board = rank(&run(), &ProbeContext::default(), &[], &[a, b, c], &[]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c3", "c1", "c2"], "the same text twice does not outweigh a smaller change");
    assert_eq!(board.candidates[1].agrees_with, [CandidateId::nth(2)]);
    assert_eq!(board.candidates[2].explanation[0], "the same change as c1");

    let mut a = cand(1, 30, fixed());
    let mut b = cand(2, 30, fixed());
    let d = cand(3, 5, vec![test_stage(&[("t", StillFailing)], false)]);
    a.normalized_patch = "same".into();
    b.normalized_patch = "same".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[d, a, b], &[]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"], "fixing the test outranks a smaller change");
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy { evidence: "tests".into(), confidence: baton_core::Confidence::High }),
        "against c3, the first different change"
    );
    assert_eq!(
        board.decision.winner().map(CandidateId::as_str),
        Some("c1"),
        "the same change twice is no tie"
    );
}

#[test]
fn a_candidate_with_nothing_for_it_is_no_winner() {
    use TestChange::*;
    let only = cand(1, 2, vec![test_stage(&[("a", Broken)], false)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[only], &[]);
    assert!(board.candidates[0].eligible, "breaking a test is evidence, not a gate");
    assert_eq!(board.candidates[0].negative, ["breaks a"]);
    assert!(matches!(&board.decision, Decision::NoWinner { reason }
        if reason.starts_with("nothing that ran shows that c1 does what the task asks")));
    assert_eq!(board.shortlist, [CandidateId::nth(1)]);
    // Less broken than another is still nothing for it.
    let none = cand(2, 2, vec![test_stage(&[], true)]);
    let board = rank(
        &run(),
        &ProbeContext::default(),
        &[],
        &[cand(1, 2, vec![test_stage(&[("a", Broken)], false)]), none],
        &[],
    );
    assert_eq!(board.candidates[0].id.as_str(), "c2");
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
    // The only candidate past the gates is not a winner for that alone.
    let mut out = cand(3, 1, vec![]);
    out.tamper = vec!["tests/t.py:1: skips a test".into()];
    let board =
        rank(&run(), &ProbeContext::default(), &[], &[cand(1, 2, vec![test_stage(&[], true)]), out], &[]);
    assert!(
        matches!(&board.decision, Decision::NoWinner { reason }
        if reason.starts_with("nothing that ran shows that c1, the only candidate that passed the gates, does what the task asks")),
        "{:?}",
        board.decision
    );
}

#[test]
fn a_tampering_candidate_cannot_win() {
    use TestChange::*;
    let mut cheat = cand(1, 1, vec![test_stage(&[("t", Fixed)], true)]);
    cheat.tamper = vec!["tests/test_x.py:4: skips or expects failure of a test (@pytest.mark.skip)".into()];
    let honest = cand(2, 9, vec![test_stage(&[("t", Fixed)], true)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[cheat, honest], &[]);
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
    let board = rank(&run(), &ProbeContext::default(), &[], &[a.clone(), b.clone()], &[]);
    match &board.decision {
        Decision::NoWinner { reason } => assert_eq!(
            reason,
            "c1 and c2 have the same evidence with different changes of one size; a human must choose"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(board.shortlist, [CandidateId::nth(1), CandidateId::nth(2)]);
    assert_eq!(board.separations.len(), 1);
    assert!(
        board.separations[0].note.starts_with("nothing that ran tells them apart"),
        "{:?}",
        board.separations
    );
    // Either reading of the change can make two candidates the same: the lines they add and
    // remove (wherever they stand), or the tokens of the files.
    let (mut a3, mut b3) = (a.clone(), b.clone());
    a3.parsed_patch = Some("x.py\n=f ( a )".into());
    b3.parsed_patch = Some("x.py\n=f ( a )".into());
    assert_eq!(
        rank(&run(), &ProbeContext::default(), &[], &[a3, b3], &[])
            .decision
            .winner()
            .map(CandidateId::as_str),
        Some("c1")
    );
    // The same change twice is agreement, not a tie.
    let (mut a2, mut b2) = (a, b);
    a2.normalized_patch = "same".into();
    b2.normalized_patch = "same".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[a2, b2], &[]);
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
fn an_output_the_task_shows_decides_and_a_changed_output_alone_does_not() {
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![Some("[1, 2, 3]".into()), None]],
        authors: vec![],
        base: vec![probe(&["[1, 2]", "ok"])],
        ..ProbeContext::default()
    };
    let mut same = cand(1, 2, vec![]);
    same.probes = vec![probe(&["[1, 2]", "ok"])];
    let mut matches = cand(2, 9, vec![]);
    matches.probes = vec![probe(&["[1, 2, 3]", "ok"])];
    let mut crashes = cand(3, 1, vec![]);
    crashes.probes = vec![probe(&["[1, 2]", "TypeError: bad operand"])];
    let board = rank(&run(), &ctx, &[], &[same.clone(), matches, crashes], &[]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c2", "c1", "c3"]);
    assert!(board.candidates.iter().all(|c| c.eligible), "what examples do is evidence, not a gate");
    assert_eq!(
        board.candidates[0].positive,
        ["example 1, statement 1: output now matches what the task shows"]
    );
    assert_eq!(
        board.candidates[2].negative,
        ["example 1, statement 2: now fails with TypeError: bad operand"]
    );
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy {
            evidence: "examples".into(),
            confidence: baton_core::Confidence::Medium
        })
    );

    // An output that changed, but not into what the task shows, is behaviour, not evidence.
    let mut differs = cand(4, 3, vec![]);
    differs.probes = vec![probe(&["[2, 1]", "ok"])];
    let board = rank(&run(), &ctx, &[], &[same.clone(), differs], &[]);
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
    let c4 = board.candidates.iter().find(|c| c.id.as_str() == "c4").unwrap();
    assert!(c4.explanation.contains(&"example 1, statement 1: output differs from the base's".into()));
    // One candidate whose examples behave as on the base: nothing shows it does the task.
    let board = rank(&run(), &ctx, &[], &[same], &[]);
    assert!(
        matches!(&board.decision, Decision::NoWinner { reason }
        if reason.ends_with("its tests and examples gave the base's results")),
        "{:?}",
        board.decision
    );
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
    let board = rank(&run(), &ProbeContext::default(), &matrix, &[big, small, author], &[]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c3", "c2"], "c1 passes another's test; c3 only its own; c2 none");
    assert_eq!(board.candidates[0].matrix_fixed_others, 1);
    assert_eq!(board.candidates[1].matrix_fixed_own, 1);
}

/// Issue 15, item 20: a candidate that wrote no test was told it "passes 1 of its own new test
/// that fail on the base", because a candidate with the same code wrote one.
#[test]
fn tests_written_by_a_candidate_with_the_same_code_are_not_called_its_own() {
    use baton_core::{MatrixCell, MatrixRow, Subject};
    let plain = cand(1, 3, vec![]);
    let mut author = cand(2, 3, vec![]);
    author.verified_as = Some(CandidateId::nth(1));
    let other = cand(3, 3, vec![]);
    let cell = |n: usize, fixed: usize| MatrixCell {
        subject: Subject::Candidate(CandidateId::nth(n)),
        passing: fixed,
        failing: 1 - fixed,
        fixed,
        broken: 0,
    };
    let matrix = vec![MatrixRow {
        authors: vec![CandidateId::nth(2)],
        files: vec!["tests/t.py".into()],
        cells: vec![cell(1, 1), cell(3, 0)],
    }];
    let board = rank(&run(), &ProbeContext::default(), &matrix, &[plain, author, other], &[]);
    let explained =
        |n: usize| board.candidates.iter().find(|c| c.id == CandidateId::nth(n)).unwrap().explanation.clone();
    assert!(
        explained(1).contains(
            &"passes 1 new test that c2 wrote with the same code and that fails on the base (its author's own reading of the task)".into()
        ),
        "{:?}",
        explained(1)
    );
    assert!(!explained(1).iter().any(|l| l.contains("its own new test")), "{:?}", explained(1));
    assert!(
        explained(2)
            .contains(&"passes its own new test that fails on the base (its own reading of the task)".into()),
        "{:?}",
        explained(2)
    );
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
    let board = rank(&run(), &ProbeContext::default(), &[], &[slow, noisy, clean], &[]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    // Nothing speaks for any of them; what speaks against two orders them below the third.
    assert_eq!(order, ["c1", "c3", "c2"]);
    assert!(board.decision.winner().is_none());
    let c = |id: &str| board.candidates.iter().find(|c| c.id.as_str() == id).unwrap();
    assert_eq!(c("c2").new_findings, ["lint: a.py: F401 unused import"]);
    assert_eq!(c("c3").regressed_stages, ["bench (30% worse: 13 against 10 on the base)"]);
    assert_eq!(c("c2").explanation[0], "below c1: lint: new finding a.py: F401 unused import");
    assert_eq!(c("c3").explanation[0], "below c1: stage `bench` is worse than on the base");
}

#[test]
fn tests_that_independent_fixes_break_alike_are_weighed_among_candidates_that_change_the_examples() {
    use TestChange::*;
    // The task shows what the example should print: a fact that checks the result.
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![Some("Permutation(1)".into())]],
        authors: vec![],
        base: vec![probe(&["ValueError: repeated elements"])],
        ..ProbeContext::default()
    };
    // Two different fixes make the example work and both break the test that pinned the error;
    // a third leaves the example failing and breaks nothing.
    let mut a = cand(1, 5, vec![test_stage(&[("test_args", Broken)], false)]);
    a.probes = vec![probe(&["Permutation(1)"])];
    let mut b = cand(2, 11, vec![test_stage(&[("test_args", Broken)], false)]);
    b.probes = vec![probe(&["Permutation(1)"])];
    let mut idle = cand(3, 2, vec![test_stage(&[], true)]);
    idle.probes = vec![probe(&["ValueError: repeated elements"])];
    let board = rank(&run(), &ctx, &[], &[idle.clone(), a.clone(), b.clone()], &[]);
    let order: Vec<&str> = board.candidates.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["c1", "c2", "c3"]);
    match &board.decision {
        Decision::Winner { candidate, reason } => {
            assert_eq!(candidate.as_str(), "c1");
            assert!(reason.contains("likely pinned"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(board.pinned.len(), 1);
    let p = &board.pinned[0];
    assert_eq!(
        (p.tests.as_slice(), p.broken_by.as_slice(), p.of, p.agents),
        (&["test_args".to_owned()][..], &[CandidateId::nth(1), CandidateId::nth(2)][..], 2, 2),
        "of the changes that change what the task's examples do"
    );
    assert_eq!(board.candidates[0].pinned, ["test_args"]);
    assert!(board.candidates[0].negative.is_empty());

    // Alone, or breaking other tests than the fix that agrees with it, the breakage stands: each
    // has something for it and something against it that the other lacks.
    let mut b_other = b.clone();
    b_other.stages = vec![test_stage(&[("test_cycle", Broken)], false)];
    let board = rank(&run(), &ctx, &[], &[idle.clone(), a.clone(), b_other], &[]);
    assert!(board.pinned.is_empty());
    assert!(
        matches!(&board.decision, Decision::NoWinner { reason }
        if reason.starts_with("nothing that ran separates 3 different changes")),
        "{:?}",
        board.decision
    );
    assert_eq!(board.shortlist.len(), 3);
    let ab = board.separations.iter().find(|s| s.a.as_str() == "c1" && s.b.as_str() == "c2").unwrap();
    assert_eq!(ab.note, "c1: c2 breaks test_cycle | c2: c1 breaks test_args");
    // The same agent twice is not independent.
    let mut b_same_agent = b.clone();
    b_same_agent.agent = a.agent.clone();
    let board = rank(&run(), &ctx, &[], &[idle.clone(), a.clone(), b_same_agent], &[]);
    assert!(board.pinned.is_empty());
    // The same change twice is one fix, not two that agree.
    let mut a2 = a.clone();
    a.normalized_patch = "same".into();
    a2.normalized_patch = "same".into();
    a2.id = CandidateId::nth(2);
    let board = rank(&run(), &ctx, &[], &[idle, a, a2], &[]);
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
}

/// A program that runs to its end on the base (a candidate's reproduction script here) and
/// prints, on one candidate only, a value the task quotes: the task's words decide, not the
/// script's author. A value the base prints already, or one printed where the base crashed,
/// is no such evidence.
#[test]
fn printing_a_value_the_task_quotes_that_the_base_does_not_print_speaks_for_a_candidate() {
    let quoted = vec![
        vec!["\\operatorname{arccsc}{x}".to_owned(), "'\\\\operatorname{arccsc}{x}'".to_owned()],
        vec!["\\operatorname{acsc}{x}".to_owned(), "'\\\\operatorname{acsc}{x}'".to_owned()],
    ];
    let ctx = ProbeContext {
        names: vec!["c3's repro.py".into()],
        shown: vec![vec![None]],
        authors: vec![vec![CandidateId::nth(3)]],
        base: vec![probe(&["\\arcsin{x}\n\\operatorname{acsc}{x}"])],
        values: quoted,
    };
    let mut right = cand(1, 6, vec![]);
    right.probes = vec![probe(&["\\arcsin{x}\n\\operatorname{arccsc}{x}"])];
    let mut other = cand(2, 2, vec![]);
    other.probes = vec![probe(&["\\arcsin{x}\n\\operatorname{acsc}(x)"])];
    let mut author = cand(3, 3, vec![]);
    author.probes = vec![probe(&["\\arcsin{x}\n'\\\\operatorname{arccsc}{x}'"])];
    let board = rank(&run(), &ctx, &[], &[right.clone(), other.clone(), author.clone()], &[]);
    let c = |id: &str| board.candidates.iter().find(|c| c.id.as_str() == id).unwrap();
    assert!(
        c("c1")
            .positive
            .iter()
            .any(|p| p.contains("prints `\\operatorname{arccsc}{x}`, a value the task quotes")),
        "{:?}",
        c("c1").positive
    );
    assert!(c("c2").positive.is_empty(), "a changed output the task does not quote: {:?}", c("c2").positive);
    assert!(!c("c3").positive.is_empty(), "the literal as written (its repr) counts as well");
    // c1 and c3 print what the task quotes; nothing separates them but size, and they have the
    // same evidence: the smaller wins, at low confidence.
    assert_eq!(board.decision.winner().map(|c| c.as_str()), Some("c3"), "{:?}", board.decision);

    // Printed where the base crashed: that is the crash gone, not a value the base lacks.
    let crashed = ProbeContext { base: vec![probe(&["\\arcsin{x}\nValueError: bad"])], ..ctx.clone() };
    let board = rank(&run(), &crashed, &[], &[right.clone(), other.clone()], &[]);
    let c1 = board.candidates.iter().find(|c| c.id.as_str() == "c1").unwrap();
    assert!(c1.positive.iter().all(|p| !p.contains("a value the task quotes")), "{:?}", c1.positive);

    // The value the base prints already (the one the task reports getting) is nothing.
    let mut same = cand(1, 6, vec![]);
    same.probes = vec![probe(&["\\operatorname{acsc}{x}\n(more)"])];
    let board = rank(&run(), &ctx, &[], &[same, other], &[]);
    assert!(board.candidates.iter().all(|c| c.positive.is_empty()), "{:?}", board.candidates);
}

/// Tests likely pinned count for nothing either way: a change that keeps one passing and one
/// that breaks it, with the same facts otherwise, are equals, and the smaller is taken.
#[test]
fn a_likely_pinned_test_counts_for_nothing_whether_broken_or_kept() {
    use TestChange::*;
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![Some("Permutation(1)".into())]],
        authors: vec![],
        base: vec![probe(&["ValueError: repeated elements"])],
        ..ProbeContext::default()
    };
    let fix = |n: usize, lines: usize, breaks: &[(&str, TestChange)]| {
        let mut c = cand(n, lines, vec![test_stage(breaks, breaks.is_empty())]);
        c.probes = vec![probe(&["Permutation(1)"])];
        c
    };
    let a = fix(1, 5, &[("test_args", Broken)]);
    let b = fix(2, 11, &[("test_args", Broken)]);
    for (keeps_lines, winner) in [(3, "c3"), (7, "c1")] {
        let keeps = fix(3, keeps_lines, &[]);
        let board = rank(&run(), &ctx, &[], &[a.clone(), b.clone(), keeps], &[]);
        assert_eq!(board.pinned.len(), 1, "a and b agree that test_args is pinned");
        assert_eq!(board.decision.winner().map(|c| c.as_str()), Some(winner), "{:?}", board.decision);
    }
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
    let board = rank(&run(), &ProbeContext::default(), &[], &[rewrite, tweak], &[]);
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
        Some(baton_core::DecidedBy { evidence: "size".into(), confidence: baton_core::Confidence::Low })
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
        authors: vec![vec![], vec![CandidateId::nth(9)], vec![CandidateId::nth(9)]],
        base: vec![
            probe(&["ValueError: not enough values to unpack"]),
            probe(&["start\nValueError: not enough values to unpack"]),
            probe(&["ok"]),
        ],
        ..ProbeContext::default()
    };
    let mut other_error = cand(1, 2, vec![]);
    other_error.probes = vec![
        probe(&["ValueError: arrays without shape need one scalar value"]),
        probe(&["start\nValueError: arrays without shape need one scalar value"]),
        probe(&["ok"]),
    ];
    let mut runs = cand(2, 9, vec![]);
    runs.probes = vec![probe(&[""]), probe(&["start\ndone"]), probe(&["ok"])];
    let board = rank(&run(), &ctx, &[], &[other_error.clone(), runs.clone()], &[]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    assert_eq!(board.candidates[0].probe_fixed, 2);
    assert_eq!(board.candidates[1].probe_fixed, 0);
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy {
            evidence: "examples".into(),
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
        authors: ctx.authors[1..].to_vec(),
        base: ctx.base[1..].to_vec(),
        ..ProbeContext::default()
    };
    let mut crashes = cand(1, 1, vec![]);
    crashes.probes =
        vec![probe(&["start\nValueError: not enough values to unpack"]), probe(&["KeyError: 'x'"])];
    let mut quiet = cand(2, 5, vec![]);
    quiet.probes = vec![probe(&["start\nValueError: not enough values to unpack"]), probe(&["ok"])];
    let board = rank(&run(), &scripts_only, &[], &[crashes, quiet], &[]);
    assert_eq!(board.candidates[0].id.as_str(), "c2");
    assert!(board.decision.winner().is_none(), "the script still crashes on both: nothing for either");
    assert_eq!(board.candidates[1].probe_new_errors, 1);
    assert!(board.candidates.iter().all(|c| c.gates.iter().all(|g| g.gate != GateName::ChangesExamples)));
    assert_eq!(board.candidates.iter().map(|c| c.probe_changed).sum::<usize>(), 0);
}

/// Two different changes make the crash the task reports go away, and nothing that ran checks
/// what either produces: one may catch the error, the other fix it. Size does not choose between
/// them; a test that both fix does let it choose, and an output the task shows that only one
/// matches separates them outright.
#[test]
fn a_crash_gone_alone_does_not_let_size_choose() {
    use TestChange::*;
    let ctx = |shown: Option<&str>| ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![shown.map(str::to_owned)]],
        authors: vec![vec![]],
        base: vec![probe(&["ZeroDivisionError: division by zero"])],
        ..ProbeContext::default()
    };
    let with = |n: usize, lines: usize, out: &str, stages: Vec<StageComparison>| {
        let mut c = cand(n, lines, stages);
        c.probes = vec![probe(&[out])];
        c
    };
    // The smaller returns a placeholder where the larger computes the value.
    let hides = with(1, 2, "None", vec![]);
    let fixes = with(2, 9, "0.5", vec![]);
    let board = rank(&run(), &ctx(None), &[], &[hides.clone(), fixes.clone()], &[]);
    match &board.decision {
        Decision::NoWinner { reason } => {
            assert!(reason.contains("nothing that ran checks what either produces"), "{reason}")
        }
        other => panic!("size chose on a crash gone alone: {other:?}"),
    }
    assert_eq!(board.shortlist.len(), 2, "both stay on the shortlist");
    assert!(board.candidates.iter().all(|c| c.probe_fixed == 1));

    // Both also fix the same failing test: what they share checks a result, and the smaller is
    // taken, at low confidence.
    let stage = || vec![test_stage(&[("test_ratio", Fixed)], true)];
    let board =
        rank(&run(), &ctx(None), &[], &[with(1, 2, "None", stage()), with(2, 9, "0.5", stage())], &[]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"), "{:?}", board.decision);
    assert_eq!(board.decided_by.map(|d| d.confidence), Some(baton_core::Confidence::Low));

    // The task shows the value: only the real fix matches it.
    let board = rank(&run(), &ctx(Some("0.5")), &[], &[hides, fixes], &[]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"), "{:?}", board.decision);
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
    let board = rank(&run(), &ProbeContext::default(), &[], &[script_only.clone(), fix], &[]);
    assert_eq!(board.candidates[0].id.as_str(), "c2");
    let out = &board.candidates[1];
    assert!(!out.eligible);
    assert_eq!(
        out.explanation[0],
        "not eligible, failed \"changed something\": it only added a script at the repository's top (a \
         reproduction, it seems), while other candidates change the project"
    );

    let mut other_script = cand(2, 9, vec![]);
    other_script.scripts_added = 1;
    let board = rank(&run(), &ProbeContext::default(), &[], &[script_only, other_script], &[]);
    assert!(board.candidates.iter().all(|c| c.eligible));
}

/// Agreement never makes a winner: not the same edit inside larger changes, not the same
/// change made twice (which is one voice).
#[test]
fn agreement_orders_nothing_and_decides_nothing() {
    use TestChange::*;
    let fixed = || vec![test_stage(&[("t", Fixed)], true)];
    let mut alone = cand(1, 2, fixed());
    alone.normalized_patch = "a.py\n+self.x=make_hashable(x)\n-self.x=x\n".into();
    let mut shared = cand(2, 2, fixed());
    shared.normalized_patch = "a.py\n+make_hashable(self.x),\n-self.x,\n".into();
    let mut larger = cand(3, 3, fixed());
    larger.normalized_patch =
        "a.py\n+fromhashableimportmake_hashable\n+make_hashable(self.x),\n-self.x,\n".into();
    let mut copy = larger.clone();
    copy.id = CandidateId::nth(4);
    copy.agent = "agent4".into();
    let board = rank(&run(), &ProbeContext::default(), &[], &[alone, shared, larger, copy], &[]);
    assert_eq!(board.candidates.iter().find(|c| c.id.as_str() == "c2").unwrap().shared_edits, 2);
    assert!(
        matches!(&board.decision, Decision::NoWinner { reason } if reason.contains("same evidence")),
        "{:?}",
        board.decision
    );
    assert_eq!(
        board.shortlist,
        [CandidateId::nth(1), CandidateId::nth(2), CandidateId::nth(3)],
        "one entry per different change"
    );
}

/// A probe cut at its time limit on one side says how fast the machine was: the candidate whose
/// example timed out has not changed what the example does, and the gate that asks for a change
/// then leaves no one in (no winner), as it would have without the timeout.
#[test]
fn a_probe_that_timed_out_counts_for_nothing() {
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![None]],
        authors: vec![],
        base: vec![probe(&["RecursionError: maximum recursion depth exceeded"])],
        ..ProbeContext::default()
    };
    let mut slow = cand(1, 2, vec![]);
    slow.probes = vec![baton_core::ProbeOutcome { timed_out: true, ..probe(&["partial output"]) }];
    let mut same = cand(2, 5, vec![]);
    same.probes = vec![probe(&["RecursionError: maximum recursion depth exceeded"])];
    let board = rank(&run(), &ctx, &[], &[slow, same], &[]);
    assert!(board.candidates.iter().all(|c| c.probe_changed == 0 && c.probe_fixed == 0));
    assert!(board.decision.winner().is_none(), "{:?}", board.decision);
}

/// A candidate out on a gate is no voice: not for the consensus that a test is pinned. Two
/// candidates of one agent are one voice too.
#[test]
fn votes_from_the_disqualified_do_not_make_a_test_pinned() {
    use TestChange::*;
    let ctx = ProbeContext {
        names: vec!["example 1".into()],
        shown: vec![vec![Some("ok".into())]],
        authors: vec![],
        base: vec![probe(&["fails"])],
        ..ProbeContext::default()
    };
    let mut fix = cand(1, 5, vec![test_stage(&[("test_old_message", Broken)], false)]);
    fix.probes = vec![probe(&["ok"])];
    let mut cheat = cand(2, 6, vec![test_stage(&[("test_old_message", Broken)], false)]);
    cheat.probes = vec![probe(&["ok"])];
    cheat.tamper = vec!["tests/test_m.py:3: skips or expects failure of a test (@pytest.mark.skip)".into()];
    let idle = cand(3, 2, vec![test_stage(&[], true)]);
    let board = rank(&run(), &ctx, &[], &[fix.clone(), cheat.clone(), idle.clone()], &[]);
    assert!(board.pinned.is_empty(), "{:?}", board.pinned);
    assert!(board.decision.winner().is_none(), "the fix breaks a test no other eligible change breaks");
    // Without the tamper flag, the same two changes are two voices of two agents.
    cheat.tamper.clear();
    let board = rank(&run(), &ctx, &[], &[fix, cheat, idle], &[]);
    assert_eq!(board.pinned.len(), 1);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"));
}

/// A test stage without per-test results counts as one test: failing on the base and passing
/// on a candidate is a test it fixes, the strongest evidence there is.
#[test]
fn an_exit_code_test_stage_that_starts_passing_is_a_fixed_test() {
    let stage = |candidate: StageStatus| StageComparison {
        stage: "check".into(),
        kind: StageKind::Test,
        base: Some(StageStatus::Failed { exit_code: Some(1), signal: None }),
        candidate,
        tests: vec![],
        still_passing: 0,
        parsed: false,
        new_findings: vec![],
        metric: None,
        metric_worse: false,
    };
    let passes = cand(1, 9, vec![stage(StageStatus::Passed)]);
    let fails = cand(2, 1, vec![stage(StageStatus::Failed { exit_code: Some(1), signal: None })]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[fails, passes], &[]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c1"));
    assert_eq!(board.candidates[0].positive, ["stage `check` passes, where it fails on the base"]);
    assert_eq!(
        board.decided_by,
        Some(baton_core::DecidedBy { evidence: "tests".into(), confidence: baton_core::Confidence::High })
    );
}

/// Whitespace, comments and layout are no change; setup problems mean no winner whatever the
/// evidence says.
#[test]
fn a_layout_only_change_is_out_and_a_setup_problem_names_no_winner() {
    use TestChange::*;
    let mut layout = cand(1, 1, vec![test_stage(&[("t", Fixed)], true)]);
    layout.layout_only = true;
    let fix = cand(2, 3, vec![test_stage(&[("t", Fixed)], true)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[layout.clone(), fix.clone()], &[]);
    assert_eq!(board.decision.winner().map(CandidateId::as_str), Some("c2"));
    let out = board.candidates.iter().find(|c| c.id.as_str() == "c1").unwrap();
    assert_eq!(
        out.explanation[0],
        "not eligible, failed \"changed something\": it changed only whitespace, comments or layout"
    );

    let problem = "stage `test` exited 127 on the base: a command it runs was not found".to_owned();
    let board = rank(&run(), &ProbeContext::default(), &[], &[fix], std::slice::from_ref(&problem));
    assert!(
        matches!(&board.decision, Decision::NoWinner { reason } if reason.contains(&problem)),
        "{:?}",
        board.decision
    );
    assert_eq!(board.setup_problems, [problem]);
}

/// Two changes that break the same tests and show nothing else are two broken changes, not a
/// consensus that the tests pin the old behaviour; and the best candidate is no winner while
/// something counts against it, however much the others break too.
#[test]
fn broken_changes_are_no_consensus_and_the_best_with_something_against_it_is_no_winner() {
    use TestChange::*;
    let fixes_one =
        cand(1, 2, vec![test_stage(&[("adds", Fixed), ("adds_zero", Broken), ("identity", Broken)], false)]);
    let fixes_none = cand(2, 2, vec![test_stage(&[("adds_zero", Broken), ("identity", Broken)], false)]);
    let board = rank(&run(), &ProbeContext::default(), &[], &[fixes_one, fixes_none], &[]);
    assert!(board.pinned.is_empty(), "only c1 shows it changes anything: {:?}", board.pinned);
    match &board.decision {
        Decision::NoWinner { reason } => {
            assert_eq!(reason, "the best candidate, c1, breaks adds_zero and breaks identity")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(board.candidates[0].id.as_str(), "c1", "still the best of them");
}
