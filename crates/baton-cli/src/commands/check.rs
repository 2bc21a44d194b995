//! The stage check that `init` and `doctor` share: the verification stages run once on HEAD,
//! and what that says about whether a run's verification can be evidence.

use std::time::Duration;

use baton_config::Config;
use baton_engine::StageCheck;
use baton_git::Repo;
use serde_json::{Value, json};

use crate::error::CliError;
use crate::report::stage_summary;

/// Runs `config`'s stages once on HEAD, each for at most `limit`.
pub(crate) fn run(repo: &Repo, config: &Config, limit: Duration) -> Result<StageCheck, CliError> {
    super::runtime()?.block_on(async move {
        let (handle, cancel) = baton_exec::CancelHandle::new();
        let signals = tokio::spawn(super::run::forward_signals(handle));
        let result = baton_engine::check_stages(repo, config, limit, cancel).await;
        signals.abort();
        result.map_err(CliError::from)
    })
}

/// The check for people: a line per stage, whether it reports test by test, then the problems.
pub(crate) fn text(check: &StageCheck, limit: Duration) -> String {
    let mut out = format!(
        "ran the stages once on HEAD ({}), each for at most {}{}:\n",
        check.commit.short(),
        crate::report::duration(limit),
        if check.related_tests.is_empty() {
            String::new()
        } else {
            format!(", with {} as the related tests", check.related_tests.join(" "))
        }
    );
    for r in &check.results {
        let per_test = match (r.expects_tests, r.tests.is_empty()) {
            _ if matches!(r.status, baton_core::StageStatus::Skipped { .. }) => "did not run",
            (true, false) => "reads results test by test",
            (true, true) => "reported no test result: only its exit status counts",
            (false, _) => "judged by its exit status",
        };
        let summary = stage_summary(r);
        let (first, notes) = summary.split_once('\n').unwrap_or((&summary, ""));
        out.push_str(&format!("  {first}; {per_test}\n"));
        for n in notes.lines() {
            out.push_str(&format!("  {n}\n"));
        }
    }
    if check.results.is_empty() {
        out.push_str("  no stage is configured or detected: nothing will tell candidates apart\n");
    }
    for p in &check.problems {
        out.push_str(&format!("problem: {p}\n"));
    }
    out.push_str(&format!("logs: {}\n", check.logs.display()));
    out
}

pub(crate) fn json(check: &StageCheck) -> Value {
    json!({
        "commit": check.commit.to_string(),
        "related_tests": check.related_tests,
        "stages": check.results.iter().map(|r| json!({
            "stage": r.stage,
            "status": r.status,
            "tests": r.tests.len(),
            "per_test_results": r.expects_tests && !r.tests.is_empty(),
            "log": r.log.as_ref().map(|l| check.logs.join(l).display().to_string()),
            "notes": r.notes,
        })).collect::<Vec<_>>(),
        "problems": check.problems,
        "logs": check.logs.display().to_string(),
    })
}
