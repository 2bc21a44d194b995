//! The engine on its own: real git repositories in temporary directories, scripted agents
//! (shell scripts), a pinned clock and run id. The pipelining is shown without sleeps: an agent
//! waits for a file that only a verification can write, so it can finish only if that
//! verification ran while it was still running.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use baton_agents::{Agent, CommandAgent};
use baton_core::{Decision, RunEvent, RunId, Scoreboard, Stamped, Subject, Task};
use baton_engine::{Decider, DecisionInput, FixedClock, RunRequest};
use baton_git::Repo;
use baton_store::Store;
use baton_testkit::TestRepo;

/// A repository whose test stage prints TAP, and writes a marker named after the subject into
/// `markers` as it starts.
fn repo(markers: &Path) -> TestRepo {
    TestRepo::with_files(&[
        ("src/calc.sh", "add() { echo $(( $1 - $2 )); }\n"),
        (
            "tests/run.sh",
            "#!/bin/sh\n. ./src/calc.sh\necho 1..1\nif [ \"$(add 2 3)\" = 5 ]; then echo 'ok 1 - adds'; else echo 'not ok 1 - adds'; fi\n",
        ),
        (
            "baton.toml",
            &format!(
                // The stages and agents meet through marker files outside their workspaces,
                // which a sandbox would not let them share.
                "[run]\ngrace = \"1s\"\nsandbox = \"off\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"touch {}/$BATON_SUBJECT; sh tests/run.sh\"\nparser = \"tap\"\n",
                markers.display()
            ),
        ),
    ])
}

/// An agent that runs `script` in its workspace.
fn agent(name: &str, script: &str) -> Arc<dyn Agent> {
    Arc::new(CommandAgent::new(
        name,
        vec!["sh".into(), "-c".into(), script.into()],
        BTreeMap::new(),
        None,
        Path::new("/"),
    ))
}

/// Waits (at most a minute) for `path` to exist, then fixes `add`.
fn fix_after(path: &Path) -> String {
    format!(
        "i=0; while [ ! -e {0} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; [ -e {0} ] || exit 9; sed -i 's/$1 - $2/$1 + $2/' src/calc.sh",
        path.display()
    )
}

const FIX: &str = "sed -i 's/$1 - $2/$1 + $2/' src/calc.sh";

struct Run {
    events: Vec<Stamped>,
    outcome: baton_engine::RunOutcome,
}

fn run_with(
    repo: &TestRepo,
    agents: Vec<Arc<dyn Agent>>,
    edit: impl FnOnce(&mut RunRequest),
    decider: Option<&dyn Decider>,
) -> Run {
    let home = tempfile::tempdir().unwrap();
    let root = Repo::discover(repo.path()).unwrap();
    let sources =
        baton_config::ConfigSources { repo_file: Some(root.root.join("baton.toml")), ..Default::default() };
    let (mut config, _) = baton_config::load(&sources).unwrap();
    config.run.workspace_root = home.path().join("workspaces");
    // Kept workspaces stay mounted (overlays) after `home` is gone, and every later sandbox
    // start binds each mount on the machine.
    config.run.keep_workspaces = false;
    let mut request = RunRequest::new(root.clone(), config, Task::from_text("fix add", "test"), agents);
    request.clock = Arc::new(FixedClock::at(time::macros::datetime!(2026-12-03 10:00:00 UTC)));
    request.run_id = Some(RunId::new("20261203-100000-test").unwrap());
    edit(&mut request);
    let plan = baton_engine::plan(request).unwrap();
    let store = Store::open(&root.common_dir.join("baton")).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let reporter: baton_engine::Reporter = Box::new(move |e: &Stamped| sink.lock().unwrap().push(e.clone()));
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (_handle, cancel) = baton_exec::CancelHandle::new();
    let outcome = rt
        .block_on(async move {
            match decider {
                Some(d) => baton_engine::run_with(plan, store, cancel, reporter, d).await,
                None => baton_engine::run(plan, store, cancel, reporter).await,
            }
        })
        .unwrap();
    let events = seen.lock().unwrap().clone();
    Run { events, outcome }
}

fn position(events: &[Stamped], what: impl Fn(&RunEvent) -> bool) -> usize {
    events.iter().position(|e| what(&e.event)).unwrap_or_else(|| panic!("no such event in {events:#?}"))
}

#[test]
fn the_base_is_verified_while_the_agents_run() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    let waits = agent("waits", &fix_after(&markers.path().join("base")));
    let run = run_with(&repo, vec![waits], |_| {}, None);
    let winner = run.outcome.scoreboard.as_ref().and_then(|b| b.decision.winner().cloned());
    assert_eq!(winner.as_ref().map(|c| c.as_str()), Some("c1"), "{:#?}", run.outcome);
    let base_started =
        position(&run.events, |e| matches!(e, RunEvent::StageStarted { subject: Subject::Base, .. }));
    let agent_done = position(&run.events, |e| matches!(e, RunEvent::AgentFinished { .. }));
    assert!(base_started < agent_done);
}

#[test]
fn a_candidate_is_verified_as_soon_as_its_agent_is_done() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    // The second agent finishes only once the first candidate's verification has started.
    let quick = agent("quick", FIX);
    let waits = agent(
        "waits",
        &format!("{}; echo '# and a note' >> src/calc.sh", fix_after(&markers.path().join("c1"))),
    );
    let run = run_with(&repo, vec![quick, waits], |_| {}, None);
    let board = run.outcome.scoreboard.expect("ranked");
    assert!(board.candidates.iter().all(|c| c.outcome_ok()), "{board:#?}");
    assert_eq!(run.outcome.verifications, 2);
}

#[test]
fn agent_jobs_limits_agents_at_once() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    let log = markers.path().join("agents.log");
    // Each agent waits (up to a second) for another to start: without the limit they overlap.
    let script = |name: &str| {
        format!(
            "echo start {name} >> {0}; n=0; while [ $(grep -c start {0}) -lt 2 ] && [ $n -lt 10 ]; do sleep 0.1; n=$((n+1)); done; {FIX}; echo end {name} >> {0}",
            log.display()
        )
    };
    let agents = vec![agent("a", &script("a")), agent("b", &script("b")), agent("c", &script("c"))];
    run_with(&repo, agents, |r| r.agent_jobs = 1, None);
    let lines: Vec<String> = std::fs::read_to_string(&log).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 6);
    for pair in lines.chunks(2) {
        assert_eq!(pair[0].replace("start", "end"), pair[1], "one agent at a time: {lines:?}");
    }
}

#[test]
fn a_pinned_clock_and_run_id_make_a_run_read_the_same() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    let run = run_with(&repo, vec![agent("fix", FIX)], |_| {}, None);
    assert_eq!(run.outcome.run.as_str(), "20261203-100000-test");
    assert_eq!(run.events[0].at, "2026-12-03T10:00:00.000Z");
    let times: Vec<&str> = run.events.iter().map(|e| e.at.as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "events keep their order in time");
    let root = Repo::discover(repo.path()).unwrap();
    let store = Store::open(&root.common_dir.join("baton")).unwrap();
    let stored = store.events(&run.outcome.run).unwrap();
    assert_eq!(stored, run.events, "the store holds what the reporter saw, times included");
}

/// Everything `baton show` reads is a projection of the run's events: replayed into an empty
/// store, they give the same run, candidates and stage results (who owned the run is recorded
/// beside the events, and is not part of what it did).
#[test]
fn replaying_a_runs_events_reproduces_what_show_reads() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    let run = run_with(&repo, vec![agent("fix", FIX), agent("noop", "true")], |_| {}, None);
    let id = &run.outcome.run;
    let root = Repo::discover(repo.path()).unwrap();
    let store = Store::open(&root.common_dir.join("baton")).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let mut replayed = Store::open(elsewhere.path()).unwrap();
    for event in store.events(id).unwrap() {
        replayed.record(id, &event).unwrap();
    }
    let row = |s: &Store| {
        let mut r = s.run(id).unwrap().expect("the run is there");
        (r.owner_pid, r.owner_start) = (None, None);
        format!("{r:?}")
    };
    assert_eq!(row(&replayed), row(&store));
    assert!(row(&store).contains("winner: Some("), "a decided run: {}", row(&store));
    assert_eq!(
        format!("{:?}", replayed.candidates(id).unwrap()),
        format!("{:?}", store.candidates(id).unwrap())
    );
    assert_eq!(
        format!("{:?}", replayed.stage_results(id).unwrap()),
        format!("{:?}", store.stage_results(id).unwrap())
    );
    assert_eq!(replayed.events(id).unwrap(), store.events(id).unwrap());
}

/// A decider that never names a winner.
struct Undecided;

impl Decider for Undecided {
    fn decide(&self, input: &DecisionInput<'_>) -> Scoreboard {
        let mut board = baton_engine::EvidenceDecider.decide(input);
        board.decision = Decision::NoWinner { reason: "asked a judge, who could not choose".into() };
        board
    }
}

#[test]
fn a_decider_takes_the_evidence_and_makes_the_decision() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    let run = run_with(&repo, vec![agent("fix", FIX)], |_| {}, Some(&Undecided));
    let board = run.outcome.scoreboard.expect("ranked");
    assert_eq!(board.decision, Decision::NoWinner { reason: "asked a judge, who could not choose".into() });
    assert_eq!(board.candidates[0].fixed, ["adds"], "the evidence is there");
}

trait OutcomeOk {
    fn outcome_ok(&self) -> bool;
}

impl OutcomeOk for baton_core::CandidateScore {
    fn outcome_ok(&self) -> bool {
        self.gates.iter().find(|g| g.gate == baton_core::GateName::AgentFinished).is_some_and(|g| g.passed)
    }
}

/// Starts processes on this machine and remembers what it started.
#[derive(Debug, Default)]
struct Recording(Mutex<Vec<String>>);

impl baton_exec::Executor for Recording {
    fn spawn(&self, spec: baton_exec::Spec) -> baton_exec::Process {
        let what = std::iter::once(&spec.program)
            .chain(&spec.args)
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        self.0.lock().unwrap().push(what);
        baton_exec::Local.spawn(spec)
    }

    fn describe(&self) -> String {
        "recording".into()
    }
}

#[test]
fn every_process_of_a_run_goes_through_its_executor() {
    let markers = tempfile::tempdir().unwrap();
    let repo = repo(markers.path());
    let executor = Arc::new(Recording::default());
    let seen = executor.clone();
    run_with(
        &repo,
        vec![agent("fix", FIX)],
        move |r| {
            r.executor = executor;
            r.probes = vec!["sh src/calc.sh".into()];
        },
        None,
    );
    let started = seen.0.lock().unwrap().clone();
    assert!(started.iter().any(|p| p.contains("sed -i")), "the agent: {started:?}");
    assert_eq!(
        started.iter().filter(|p| p.contains("verify-test.sh")).count(),
        2,
        "the stage on the base and the candidate: {started:?}"
    );
    assert_eq!(
        started.iter().filter(|p| *p == "sh -c sh src/calc.sh").count(),
        2,
        "and the probe on each: {started:?}"
    );
}
