//! The stage runner against real shell commands.

use baton_config::{ConfigSources, load};
use baton_core::{StageStatus, Subject, TestStatus};
use baton_exec::Cancel;
use baton_verify::{BaseResults, Split, StageRunner, SubjectContext, compare};

fn runner(toml: &str) -> StageRunner {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.toml");
    std::fs::write(&path, toml).unwrap();
    let (config, _) = load(&ConfigSources { repo_file: Some(path), ..Default::default() }).unwrap();
    StageRunner::new(&config.verify, &config.run).unwrap()
}

fn context(dir: &std::path::Path, related: &[&str]) -> SubjectContext {
    SubjectContext {
        subject: Subject::Base,
        workspace: dir.to_owned(),
        artifacts: dir.join("artifacts"),
        changed_files: vec!["src/a b.py".into()],
        related_tests: related.iter().map(|s| s.to_string()).collect(),
        base: None,
        publish: None,
        split: Split::None,
        confine: None,
    }
}

#[tokio::test]
async fn a_test_that_changes_its_verdict_on_a_rerun_is_flaky() {
    let dir = tempfile::tempdir().unwrap();
    // `flip` fails the first time and passes the second; `broken` always fails.
    let script = "#!/bin/sh\necho 1..3\nif [ -e .flipped ]; then echo 'ok 1 - flip'; else touch .flipped; echo 'not ok 1 - flip'; fi\necho 'not ok 2 - broken'\necho 'ok 3 - fine'\n";
    std::fs::write(dir.path().join("t.sh"), script).unwrap();
    let r = runner("[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh\"\nparser = \"tap\"\n");
    let results = r.run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(results.len(), 1);
    let t = &results[0];
    assert_eq!(t.flaky, ["flip"]);
    let status = |n: &str| t.tests.iter().find(|c| c.name == n).unwrap().status;
    assert_eq!(status("broken"), TestStatus::Fail);
    assert!(t.notes.iter().any(|n| n.contains("1 flaky test")), "{:?}", t.notes);
    assert!(dir.path().join("artifacts/base/verify-test.rerun1.log").is_file());

    let r = runner(
        "[verify]\nreruns = 0\n[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh\"\nparser = \"tap\"\n",
    );
    std::fs::remove_file(dir.path().join(".flipped")).unwrap();
    let results = r.run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert!(results[0].flaky.is_empty());
}

/// With a `rerun` command, only the failing tests run again, named as the parser reported them
/// (shell-quoted); a rerun whose output names none of them marks nothing flaky, and says so.
#[tokio::test]
async fn a_rerun_command_runs_only_the_failing_tests() {
    let dir = tempfile::tempdir().unwrap();
    // Without arguments: all three tests, `flip` failing the first time. With arguments: those
    // tests only, each passing but `broken two`; the arguments are kept in `rerun-args`.
    let script = r#"#!/bin/sh
if [ $# -eq 0 ]; then
  echo 1..3; echo 'not ok 1 - flip'; echo 'not ok 2 - broken two'; echo 'ok 3 - fine'; exit 1
fi
printf '[%s]' "$@" > rerun-args
echo "1..$#"; i=0
for t in "$@"; do
  i=$((i+1)); if [ "$t" = "broken two" ]; then echo "not ok $i - $t"; else echo "ok $i - $t"; fi
done
"#;
    std::fs::write(dir.path().join("t.sh"), script).unwrap();
    let toml = "[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh\"\nrerun = \"sh t.sh {failing_tests}\"\nparser = \"tap\"\n";
    let results = runner(toml).run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    let t = &results[0];
    assert_eq!(std::fs::read_to_string(dir.path().join("rerun-args")).unwrap(), "[flip][broken two]");
    assert_eq!(t.flaky, ["flip"]);
    assert_eq!(t.tests.len(), 3, "the first run's results stand: {:?}", t.tests);
    assert!(
        t.notes.iter().any(|n| n == "ran the 2 failing tests again with `rerun`: 1 flaky test (they count for nothing)"),
        "{:?}",
        t.notes
    );

    let toml = "[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh\"\nrerun = \"echo 1..0 {failing_tests}\"\nparser = \"tap\"\n";
    let results = runner(toml).run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert!(results[0].flaky.is_empty());
    assert!(
        results[0].notes.iter().any(|n| n.ends_with("but its output named none of the failing tests: none is known to be flaky")),
        "{:?}",
        results[0].notes
    );
}

/// Failing tests too many to name on a command line (Linux takes 2 MiB of arguments) make the
/// whole stage run again, as without a `rerun` command.
#[tokio::test]
async fn too_many_failing_tests_for_a_command_line_rerun_the_whole_stage() {
    let dir = tempfile::tempdir().unwrap();
    // 25000 failing tests with 50-character names: over 1.2 MB of names.
    let script = "#!/bin/sh\necho run >> runs\necho 1..25000\ni=1; while [ $i -le 25000 ]; do printf 'not ok %d - test_with_a_rather_long_descriptive_name_%05d\\n' $i $i; i=$((i+1)); done\n";
    std::fs::write(dir.path().join("t.sh"), script).unwrap();
    let toml = "[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh\"\nrerun = \"echo {failing_tests} > args; sh t.sh\"\nparser = \"tap\"\n";
    let results = runner(toml).run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(results[0].tests.len(), 25000);
    assert_eq!(std::fs::read_to_string(dir.path().join("runs")).unwrap().lines().count(), 2, "ran twice");
    assert!(!dir.path().join("args").exists(), "the `rerun` command did not run");
    assert!(
        results[0]
            .notes
            .iter()
            .any(|n| n.starts_with("25000 failing tests are too many to name on a command line")),
        "{:?}",
        results[0].notes
    );
}

/// A large change (thousands of files) fills `{changed_files}` past what `sh -c` takes in one
/// argument, and `BATON_CHANGED_FILES` past what one environment string holds: the stage still
/// runs, from a script file beside its log, without that variable.
#[tokio::test]
async fn a_change_of_thousands_of_files_still_runs_its_stages() {
    let dir = tempfile::tempdir().unwrap();
    let mut ctx = context(dir.path(), &[]);
    ctx.changed_files =
        (0..6000).map(|i| format!("vendored/some_library_with_a_long_name/module/file_{i:05}.py")).collect();
    let toml = "[[verify.stage]]\nname = \"count\"\nkind = \"custom\"\nrun = \"printf '%s\\\\n' {changed_files} | wc -l > count; echo \\\"${BATON_CHANGED_FILES-unset}\\\" > env\"\n";
    let results = runner(toml).run(&ctx, Cancel::never(), &|_| {}).await;
    assert!(results[0].status.is_passed(), "{:?}", results[0]);
    assert_eq!(std::fs::read_to_string(dir.path().join("count")).unwrap().trim(), "6000");
    assert_eq!(std::fs::read_to_string(dir.path().join("env")).unwrap().trim(), "unset");
    let script = std::fs::read_to_string(dir.path().join("artifacts/base/verify-count.sh")).unwrap();
    assert!(script.contains("file_05999.py"), "the script file shows what ran");
}

#[tokio::test]
async fn placeholders_are_shell_quoted_and_an_empty_related_list_skips() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(
        "[[verify.stage]]\nname = \"args\"\nkind = \"custom\"\nrun = \"printf '[%s]' {changed_files} {related_tests} > out.txt\"\n\n[[verify.stage]]\nname = \"related\"\nrun = \"echo {related_tests}\"\n",
    );
    let results = r.run(&context(dir.path(), &["tests/x y.py"]), Cancel::never(), &|_| {}).await;
    assert_eq!(std::fs::read_to_string(dir.path().join("out.txt")).unwrap(), "[src/a b.py][tests/x y.py]");
    assert!(results.iter().all(|r| r.status.is_passed()));
    let results = r.run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(results[1].status, StageStatus::Skipped { reason: "no related tests".into() });
}

#[tokio::test]
async fn a_failed_build_skips_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(
        "[[verify.stage]]\nname = \"build\"\nkind = \"build\"\nrun = \"exit 3\"\n\n[[verify.stage]]\nname = \"test\"\nrun = \"true\"\n",
    );
    let results = r.run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(results[0].status, StageStatus::Failed { exit_code: Some(3), signal: None });
    assert_eq!(results[1].status, StageStatus::Skipped { reason: "build stage `build` did not pass".into() });
}

#[tokio::test]
async fn test_names_do_not_depend_on_where_the_workspace_is() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(
        "[[verify.stage]]\nname = \"test\"\nrun = \"echo 1..1; echo \\\"ok 1 - test_stdin[$PWD/tests/a.py]\\\"\"\nparser = \"tap\"\n",
    );
    let results = r.run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(
        results[0].tests.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["test_stdin[<workspace>/tests/a.py]"]
    );
}

#[tokio::test]
async fn review_stages_report_findings_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let r = runner(
        "[[verify.stage]]\nname = \"lint\"\nkind = \"lint\"\nrun = \"echo 'src/a.py:3:1: F401 unused'; echo done; exit 1\"\nparser = \"findings\"\npattern = '^\\S+:\\d+:\\d+: [A-Z]\\d+'\n\n[[verify.stage]]\nname = \"bench\"\nkind = \"bench\"\nrun = \"echo 'elapsed: 12.5 ms'\"\nparser = \"metric\"\npattern = 'elapsed: (?P<value>[0-9.]+)'\nbetter = \"lower\"\n",
    );
    let results = r.run(&context(dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(results[0].findings.as_deref(), Some(&["src/a.py: F401 unused".to_owned()][..]));
    assert!(!results[0].notes.iter().any(|n| n.contains("no test results")), "{:?}", results[0].notes);
    assert_eq!(results[1].metric.map(|m| (m.value, m.lower_is_better)), Some((12.5, true)));
}

/// A candidate whose failing tests all fail on the base too is not run again; one that fails a
/// test beyond the base's is; without the base's verdicts every failure counts.
#[tokio::test]
async fn a_candidate_reruns_only_for_failures_beyond_the_base() {
    let toml = "[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh\"\nparser = \"tap\"\n";
    let r = runner(toml);
    // Every run appends a line to `runs`, so the count shows how often the stage ran.
    let script = |failing: &[&str]| {
        let mut s = String::from("#!/bin/sh\necho run >> runs\necho 1..3\n");
        for (i, name) in ["old", "new", "fine"].iter().enumerate() {
            let verdict = if failing.contains(name) { "not ok" } else { "ok" };
            s.push_str(&format!("echo '{verdict} {} - {name}'\n", i + 1));
        }
        s
    };
    let runs = |dir: &std::path::Path| std::fs::read_to_string(dir.join("runs")).unwrap().lines().count();

    let base_dir = tempfile::tempdir().unwrap();
    std::fs::write(base_dir.path().join("t.sh"), script(&["old"])).unwrap();
    let base = r.run(&context(base_dir.path(), &[]), Cancel::never(), &|_| {}).await;
    assert_eq!(runs(base_dir.path()), 2, "the base itself reruns its failures");

    let candidate = |failing: &'static [&'static str], with_base: Option<BaseResults>| {
        let r = &r;
        async move {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("t.sh"), script(failing)).unwrap();
            let ctx = SubjectContext {
                subject: Subject::Candidate("c1".parse().unwrap()),
                base: with_base,
                ..context(dir.path(), &[])
            };
            let results = r.run(&ctx, Cancel::never(), &|_| {}).await;
            (runs(dir.path()), results[0].notes.clone())
        }
    };

    let (tx, rx) = BaseResults::channel();
    tx.send(&base);
    let (n, notes) = candidate(&["old"], Some(rx.clone())).await;
    assert_eq!(n, 1, "the base's own failure is no reason to rerun: {notes:?}");
    assert!(notes.iter().any(|n| n.contains("fails on the base too")), "{notes:?}");

    let (n, _) = candidate(&["old", "new"], Some(rx)).await;
    assert_eq!(n, 2, "a failure beyond the base's is run again");

    // The base was never verified (its sender dropped unsent): rerun as without a base.
    let (tx, rx) = BaseResults::channel();
    drop(tx);
    let (n, _) = candidate(&["old"], Some(rx)).await;
    assert_eq!(n, 2);
}

/// A stage whose `{related_tests}` are words: each prints one passing test, `slow` after a
/// pause, `fragile` failing where a file `broken` exists; every run appends its arguments to
/// `runs`.
const PARTS_STAGE: &str = "[verify]\nrelated_budget = \"1s\"\n[[verify.stage]]\nname = \"test\"\nrun = \"sh t.sh {related_tests}\"\nparser = \"tap\"\ntimeout = \"30s\"\n";
const PARTS_SCRIPT: &str = "#!/bin/sh\necho \"$*\" >> runs\necho 1..$#\nn=0\nfor t in \"$@\"; do n=$((n+1)); [ \"$t\" = slow ] && sleep 3; v=ok; [ \"$t\" = fragile ] && [ -e broken ] && v='not ok'; echo \"$v $n - test_$t\"; done\n";

fn parts_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.sh"), PARTS_SCRIPT).unwrap();
    dir
}

fn words(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The base's context for a stage split into `groups`, publishing through `tx`.
fn split_base(
    dir: &std::path::Path,
    groups: &[&[&str]],
    tx: &baton_verify::BaseResultsSender,
) -> SubjectContext {
    let all: Vec<&str> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    SubjectContext {
        split: Split::Base { parts: groups.iter().map(|g| words(g)).collect() },
        publish: Some(tx.clone()),
        ..context(dir, &all)
    }
}

fn runs(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("runs")).unwrap().lines().map(String::from).collect()
}

/// The base runs each group of the union on its own; a candidate runs its own related tests,
/// then the other groups while the base's time on them fits in the budget. What it left out is
/// said, and the base's results from it are not compared (no "missing" tests).
#[tokio::test]
async fn a_candidate_leaves_out_other_candidates_slow_tests_over_the_budget() {
    let r = runner(PARTS_STAGE);
    let base_dir = parts_dir();
    let (tx, rx) = BaseResults::channel();
    let base_ctx = split_base(base_dir.path(), &[&["slow"], &["a"], &["b"]], &tx);
    let candidate = |id: &str, dir: &std::path::Path| SubjectContext {
        subject: Subject::Candidate(id.parse().unwrap()),
        base: Some(rx.clone()),
        split: Split::Candidate {
            own: vec![(1, words(&["a"]))],
            others: vec![(0, words(&["slow"])), (2, words(&["b"]))],
        },
        ..context(dir, &["a"])
    };
    // Two candidates beside the base, as in the engine (`join!` starts the base first). The
    // first asks about `slow` before the base has been at it for the budget: it finds out
    // itself, within the budget. The second asks later, when the base has been at it longer.
    let (first_dir, second_dir) = (parts_dir(), parts_dir());
    let (first_ctx, second_ctx) = (candidate("c1", first_dir.path()), candidate("c2", second_dir.path()));
    let (base, first, second) = tokio::join!(
        async {
            let results = r.run(&base_ctx, Cancel::never(), &|_| {}).await;
            tx.send(&results);
            results
        },
        r.run(&first_ctx, Cancel::never(), &|_| {}),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            r.run(&second_ctx, Cancel::never(), &|_| {}).await
        }
    );
    assert_eq!(runs(base_dir.path()), ["slow", "a", "b"], "one run per group on the base");
    let names = |r: &baton_core::StageResult| r.tests.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&base[0]), ["test_slow", "test_a", "test_b"]);
    assert_eq!(base[0].parts.iter().map(|p| p.tests).collect::<Vec<_>>(), [1, 1, 1]);
    assert!(base[0].status.is_passed(), "{:?}", base[0].status);
    let base_log = std::fs::read_to_string(base_dir.path().join("artifacts/base/verify-test.log")).unwrap();
    assert!(base_log.contains("on slow") && base_log.contains("ok 1 - test_b"), "{base_log}");

    // Cut short at the budget, `slow` is left out, and with the budget spent, `b` too.
    assert_eq!(runs(first_dir.path()), ["a", "slow"]);
    let c = &first[0];
    assert_eq!(c.left_out, ["slow", "b"]);
    assert_eq!(names(c), ["test_a"]);
    assert!(c.status.is_passed(), "the cut run is not the candidate's failure: {:?}", c.status);
    assert!(c.notes[0].contains("slow did not finish within 1s; b had no time left"), "{:?}", c.notes);
    let cmp = &compare(&base, &first)[0];
    assert!(cmp.tests.is_empty(), "nothing missing, nothing changed: {:?}", cmp.tests);
    assert_eq!(cmp.still_passing, 1);

    assert_eq!(runs(second_dir.path()), ["a", "b"], "the base had been at `slow` too long");
    assert_eq!(second[0].left_out, ["slow"]);
    assert!(second[0].notes[0].contains("slow took the base over 1s"), "{:?}", second[0].notes);

    // Once the base has told what `slow` cost, a later candidate decides by it.
    let later_dir = parts_dir();
    let c = &r.run(&candidate("c3", later_dir.path()), Cancel::never(), &|_| {}).await[0];
    assert_eq!(runs(later_dir.path()), ["a", "b"]);
    assert!(c.notes[0].contains("slow took the base ") && !c.notes[0].contains("over 1s"), "{:?}", c.notes);
}

/// A group the base never ran (no base's word on its cost) runs on the candidate within the
/// budget left; cut short, it is left out and its partial results thrown away. With budget to
/// spare, groups related only to other candidates run as before.
#[tokio::test]
async fn without_the_bases_word_a_candidate_finds_out_within_its_budget() {
    let r = runner(PARTS_STAGE);
    let dir = parts_dir();
    let (tx, rx) = BaseResults::channel();
    drop(tx);
    let ctx = SubjectContext {
        subject: Subject::Candidate("c1".parse().unwrap()),
        base: Some(rx),
        split: Split::Candidate { own: vec![], others: vec![(0, words(&["b"])), (1, words(&["slow"]))] },
        ..context(dir.path(), &[])
    };
    let c = &r.run(&ctx, Cancel::never(), &|_| {}).await[0];
    assert_eq!(runs(dir.path()), ["b", "slow"]);
    assert_eq!(c.left_out, ["slow"]);
    assert_eq!(c.tests.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["test_b"]);
    assert!(c.status.is_passed(), "the cut-short run is not the candidate's failure: {:?}", c.status);
    assert!(c.notes[0].contains("slow did not finish within"), "{:?}", c.notes);

    let generous = runner(&PARTS_STAGE.replace("\"1s\"", "\"1m\""));
    let dir = parts_dir();
    let (tx, rx) = BaseResults::channel();
    drop(tx);
    let ctx = SubjectContext {
        base: Some(rx),
        workspace: dir.path().to_owned(),
        artifacts: dir.path().join("artifacts"),
        ..ctx
    };
    let c = &generous.run(&ctx, Cancel::never(), &|_| {}).await[0];
    assert!(c.left_out.is_empty());
    assert_eq!(c.tests.len(), 2);
}

/// A probe the base ran until its time limit counts for nothing anywhere, so a candidate that
/// learns of it does not run it; the others it runs as usual.
#[tokio::test]
async fn a_probe_that_hung_on_the_base_is_not_run_again() {
    use baton_verify::{Probe, ProbeKind, ProbeRunner};
    let command = |name: &str, run: &str| Probe {
        name: name.into(),
        kind: ProbeKind::Command { run: run.into() },
        shown: vec![None],
    };
    let runner = ProbeRunner {
        probes: vec![
            command("hangs", "echo ran >> hung; sleep 30"),
            command("quick", "echo ran >> quick; echo 42"),
        ],
        python: "python3".into(),
        packages: vec![],
        imports: vec![],
        timeout: std::time::Duration::from_secs(1),
        grace: std::time::Duration::from_millis(200),
        executor: std::sync::Arc::new(baton_exec::Local),
    };
    let (tx, rx) = BaseResults::channel();
    let base_dir = tempfile::tempdir().unwrap();
    let base = SubjectContext { publish: Some(tx.clone()), ..context(base_dir.path(), &[]) };
    let on_base = runner.run(&base, Cancel::never(), &|_| {}).await;
    assert!(on_base[0].timed_out && !on_base[1].timed_out);
    assert!(base_dir.path().join("hung").is_file());

    let cand_dir = tempfile::tempdir().unwrap();
    let cand = SubjectContext {
        subject: Subject::Candidate("c1".parse().unwrap()),
        base: Some(rx),
        ..context(cand_dir.path(), &[])
    };
    let on_cand = runner.run(&cand, Cancel::never(), &|_| {}).await;
    assert!(!cand_dir.path().join("hung").exists(), "the hanging probe ran again");
    assert!(on_cand[0].timed_out, "it still counts as timed out");
    assert!(cand_dir.path().join("quick").is_file());
    assert_eq!(on_cand[1].statements, on_base[1].statements);
    let log = std::fs::read_to_string(cand_dir.path().join("artifacts/c1/probe-1.log")).unwrap();
    assert!(log.contains("not run"), "{log}");
}

/// A candidate runs each group of its own related tests on its own: a failure beyond the base's
/// reruns that group, not the others with it.
#[tokio::test]
async fn a_rerun_goes_over_the_group_that_failed_only() {
    let r = runner(PARTS_STAGE);
    let base_dir = parts_dir();
    let (tx, rx) = BaseResults::channel();
    let base_ctx = split_base(base_dir.path(), &[&["a"], &["fragile"]], &tx);
    let base = r.run(&base_ctx, Cancel::never(), &|_| {}).await;
    tx.send(&base);
    let dir = parts_dir();
    std::fs::write(dir.path().join("broken"), "").unwrap();
    let ctx = SubjectContext {
        subject: Subject::Candidate("c1".parse().unwrap()),
        base: Some(rx),
        split: Split::Candidate { own: vec![(0, words(&["a"])), (1, words(&["fragile"]))], others: vec![] },
        ..context(dir.path(), &["a", "fragile"])
    };
    let c = &r.run(&ctx, Cancel::never(), &|_| {}).await[0];
    assert_eq!(runs(dir.path()), ["a", "fragile", "fragile"]);
    let cmp = &compare(&base, std::slice::from_ref(c))[0];
    assert_eq!(cmp.with_change(baton_core::TestChange::Broken).collect::<Vec<_>>(), ["test_fragile"]);
}

/// Confined, a stage reaches no network unless it says `network = true`; a loopback of its own
/// is always there. Needs bubblewrap (skipped where it cannot run, failed in CI).
#[tokio::test]
async fn a_confined_stage_reaches_the_network_only_when_it_says_so() {
    let bwrap = match baton_exec::find_bwrap()
        .ok_or(baton_exec::Unavailable::NotInstalled)
        .and_then(|p| baton_exec::Bwrap::probe(&p))
    {
        Ok(b) => b,
        Err(e) if std::env::var_os("BATON_REQUIRE_SANDBOX").is_some() => panic!("no sandbox: {e}"),
        Err(e) => return eprintln!("skipped: {e}"),
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let connect = format!(
        "python3 -c 'import socket; socket.create_connection((\\\"127.0.0.1\\\", {port}), timeout=3)'"
    );
    let toml = format!(
        "[[verify.stage]]\nname = \"offline\"\nkind = \"custom\"\nrun = \"{connect}\"\n\
         [[verify.stage]]\nname = \"online\"\nkind = \"custom\"\nrun = \"{connect}\"\nnetwork = true\n"
    );
    let r = runner(&toml).with_executor(std::sync::Arc::new(bwrap));
    let mut ctx = context(dir.path(), &[]);
    ctx.confine =
        Some(baton_exec::Confinement { writable: vec![dir.path().to_owned()], ..Default::default() });
    let results = r.run(&ctx, Cancel::never(), &|_| {}).await;
    let status = |name: &str| results.iter().find(|r| r.stage == name).map(|r| r.status.clone());
    assert!(matches!(status("offline"), Some(StageStatus::Failed { .. })), "{results:?}");
    assert_eq!(status("online"), Some(StageStatus::Passed), "{results:?}");
    // Unconfined (no sandbox asked for), the same stage reaches it.
    ctx.confine = None;
    let results = r.run(&ctx, Cancel::never(), &|_| {}).await;
    assert_eq!(status_of(&results, "offline"), Some(StageStatus::Passed), "{results:?}");
}

fn status_of(results: &[baton_core::StageResult], name: &str) -> Option<StageStatus> {
    results.iter().find(|r| r.stage == name).map(|r| r.status.clone())
}
