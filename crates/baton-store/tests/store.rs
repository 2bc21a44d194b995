//! The store against a real SQLite file: events in, rows out, across reopening.

use baton_core::{
    AgentOutcome, CandidateId, CandidateScore, Decision, PlannedCandidate, RunEvent, RunId, RunStatus,
    Scoreboard, StageKind, StageResult, StageStatus, Subject, Task, TestCase, TestStatus,
};
use baton_store::{ProcessRow, Store, StoreError};

fn started(run: &RunId) -> RunEvent {
    RunEvent::RunStarted {
        run: run.clone(),
        base: "a".repeat(40),
        base_rev: "HEAD".into(),
        target_branch: Some("main".into()),
        target_commit: Some("a".repeat(40)),
        repo_root: "/repo".into(),
        workspace_root: "/ws".into(),
        task: Task::from_text("Fix it\n\nplease", "argument"),
        candidates: vec![
            PlannedCandidate { id: CandidateId::nth(1), agent: "one".into(), strategy: "default".into() },
            PlannedCandidate { id: CandidateId::nth(2), agent: "two".into(), strategy: "minimal".into() },
        ],
    }
}

fn stage(tests: Vec<TestCase>) -> StageResult {
    StageResult {
        stage: "test".into(),
        kind: StageKind::Test,
        status: StageStatus::Failed { exit_code: Some(1), signal: None },
        duration_ms: 12,
        tests,
        parsed: true,
        log: Some("c1/verify-test.log".into()),
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

#[test]
fn a_recorded_run_reads_back_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunId::new("20261124-120000-abcd").unwrap();
    let c1 = CandidateId::nth(1);
    let tests = vec![
        TestCase { name: "t::a".into(), status: TestStatus::Pass },
        TestCase { name: "t::b".into(), status: TestStatus::Fail },
    ];
    {
        let mut store = Store::open(dir.path()).unwrap();
        for e in [
            started(&run),
            RunEvent::WorkspaceReady { candidate: c1.clone(), path: "/ws/c1".into(), millis: 3 },
            RunEvent::AgentFinished { candidate: c1.clone(), outcome: AgentOutcome::Completed, millis: 40 },
            RunEvent::Collected {
                candidate: c1.clone(),
                commit: "b".repeat(40),
                reference: "refs/baton/runs/x/c1".into(),
                files_changed: 2,
                insertions: 5,
                deletions: 1,
            },
            RunEvent::StageFinished { subject: Subject::Candidate(c1.clone()), result: stage(tests.clone()) },
            RunEvent::VerifyShared { candidate: CandidateId::nth(2), same_as: c1.clone() },
            RunEvent::Ranked {
                scoreboard: Scoreboard {
                    run: run.clone(),
                    decision: Decision::Winner { candidate: c1.clone(), reason: "best".into() },
                    candidates: vec![CandidateScore {
                        id: c1.clone(),
                        agent: "one".into(),
                        strategy: "default".into(),
                        rank: 1,
                        eligible: true,
                        gates: vec![],
                        broken: vec![],
                        fixed: vec!["t::a".into()],
                        new_passing: 0,
                        new_failing: 0,
                        regressed_stages: vec![],
                        agrees_with: vec![],
                        same_results_as: vec![],
                        probe_matches: 0,
                        probe_changed: 0,
                        probe_new_errors: 0,
                        probe_fixed: 0,
                        shared_edits: 0,
                        same_behaviour_as: vec![],
                        matrix_fixed_others: 0,
                        matrix_fixed_own: 0,
                        matrix_broken: 0,
                        new_findings: vec![],
                        positive: vec!["fixes t::a".into()],
                        negative: vec![],
                        pinned: vec![],
                        expectation_edits: vec![],
                        files_changed: 2,
                        lines_changed: 6,
                        tokens_changed: 9,
                        complexity_added: 1,
                        complexity_removed: 0,
                        protected_edits: vec![],
                        tamper: vec![],
                        explanation: vec!["fixes 1 test".into()],
                    }],
                    matrix: vec![],
                    decided_by: None,
                    shortlist: vec![],
                    separations: vec![],
                    pinned: vec![],
                    setup_problems: vec![],
                },
            },
            RunEvent::RunFinished {
                run: run.clone(),
                status: RunStatus::Finished,
                winner: Some(c1.clone()),
                millis: 99,
            },
        ] {
            store.record(&run, &at(e)).unwrap();
        }
        // A merge after the run lands on the same stream.
        store
            .record(
                &run,
                &at(RunEvent::Merged {
                    candidate: c1.clone(),
                    target: "main".into(),
                    previous: "a".repeat(40),
                    commit: "c".repeat(40),
                }),
            )
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let row = store.latest_run().unwrap().unwrap();
    assert_eq!(row.id, run);
    assert_eq!(row.status, RunStatus::Finished);
    assert_eq!(row.task.title, "Fix it");
    assert_eq!(row.winner.as_ref(), Some(&c1));
    assert_eq!(
        row.finished_at.as_deref(),
        Some("2026-12-03T10:00:00.000Z"),
        "the event's own time is stored"
    );
    assert_eq!(row.merged_commit, Some("c".repeat(40)));
    assert_eq!(row.scoreboard.unwrap().candidates[0].fixed, ["t::a"]);

    let cands = store.candidates(&run).unwrap();
    assert_eq!(cands.len(), 2);
    assert_eq!(cands[0].workspace.as_deref(), Some("/ws/c1"));
    assert_eq!(cands[0].outcome, Some(AgentOutcome::Completed));
    assert_eq!(
        (cands[0].files_changed, cands[0].insertions, cands[0].deletions),
        (Some(2), Some(5), Some(1))
    );
    assert_eq!(cands[0].rank, Some(1));
    assert_eq!(cands[1].verified_as.as_ref(), Some(&c1));
    assert_eq!(cands[1].strategy, "minimal");

    let stages = store.stage_results(&run).unwrap();
    assert_eq!(stages, vec![(Subject::Candidate(c1.clone()), stage(tests))]);
    let events = store.events(&run).unwrap();
    assert_eq!(events.len(), 9);
    assert!(events.iter().all(|e| e.at == "2026-12-03T10:00:00.000Z"));
    assert_eq!(store.find_run("2026").unwrap(), vec![run.clone()]);
    assert!(store.find_run("1999").unwrap().is_empty());
}

#[test]
fn processes_are_tracked_until_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunId::new("r1").unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.record(&run, &at(started(&run))).unwrap();
    let p = |pid| ProcessRow { run: run.clone(), pid, start_ticks: 7, label: "agent c1".into() };
    for pid in [10, 11] {
        store
            .record(
                &run,
                &at(RunEvent::ProcessStarted { pid, start_ticks: Some(7), label: "agent c1".into() }),
            )
            .unwrap();
    }
    store.process_ended(&run, 10).unwrap();
    assert_eq!(store.unfinished_processes(&run).unwrap(), vec![p(11)]);
    assert_eq!(store.running_runs().unwrap().len(), 1);
    store.mark_abandoned(&run).unwrap();
    assert!(store.unfinished_processes(&run).unwrap().is_empty());
    assert!(store.running_runs().unwrap().is_empty());
}

#[test]
fn a_store_from_a_newer_baton_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    bump_schema_version(dir.path());
    match Store::open(dir.path()) {
        Err(e @ StoreError::TooNew { .. }) => assert!(e.to_string().contains("newer baton"), "{e}"),
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
}

/// Sets the schema version past what this baton knows. The store exposes no raw SQL, so write
/// the header field where SQLite keeps `user_version` (offset 60, big-endian) directly.
fn bump_schema_version(dir: &std::path::Path) {
    let path = dir.join("baton.db");
    let _ = std::fs::remove_file(dir.join("baton.db-wal"));
    let _ = std::fs::remove_file(dir.join("baton.db-shm"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, bytes).unwrap();
}

/// An event at a fixed time.
fn at(event: RunEvent) -> baton_core::Stamped {
    baton_core::Stamped { at: "2026-12-03T10:00:00.000Z".into(), event }
}
