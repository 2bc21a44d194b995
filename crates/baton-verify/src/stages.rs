use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_config::{ParserKind, RunConfig, StageConfig, VerifyConfig};
use baton_core::{RunEvent, StageKind, StageResult, StageStatus, Subject};
use baton_exec::{Cancel, End, Spec};

use crate::parse::Parser;

/// The configured stages, ready to run on any subject.
pub struct StageRunner {
    stages: Vec<(StageConfig, Parser)>,
    default_timeout: Duration,
    reruns: u32,
    log_limit: u64,
    grace: Duration,
}

/// What one subject's verification needs to know.
#[derive(Debug, Clone)]
pub struct SubjectContext {
    pub subject: Subject,
    /// The checkout to run in, already at the tree to verify.
    pub workspace: PathBuf,
    /// The run's artifact directory; logs go to `<subject>/verify-<stage>.log` under it.
    pub artifacts: PathBuf,
    pub changed_files: Vec<String>,
    pub related_tests: Vec<String>,
    /// The base's results, for a candidate verified in the same run: a failing test stage is run
    /// again only when it fails a test the base does not (see [`BaseResults`]). `None` for the
    /// base itself and where no base is verified.
    pub base: Option<BaseResults>,
}

/// The base's stage results as they become known, shared with the candidates verified beside it.
///
/// Rerunning a failing test stage tells flaky tests apart. A candidate's failures that also fail
/// on the base are no news: the base's own run already said whether they are flaky, and rerunning
/// the whole stage for them doubles its cost (a large suite with a few failures on the base costs
/// every candidate twice). So a candidate waits for the base's verdicts before a rerun, and reruns
/// only when it fails some test that does not fail on the base.
#[derive(Debug, Clone)]
pub struct BaseResults(tokio::sync::watch::Receiver<Option<Arc<Vec<StageResult>>>>);

/// Publishes the base's results to every [`BaseResults`]; dropping it unsent tells them that
/// none will come (the base was cancelled or could not be checked out).
pub struct BaseResultsSender(tokio::sync::watch::Sender<Option<Arc<Vec<StageResult>>>>);

impl BaseResults {
    pub fn channel() -> (BaseResultsSender, BaseResults) {
        let (tx, rx) = tokio::sync::watch::channel(None);
        (BaseResultsSender(tx), BaseResults(rx))
    }

    /// The base's result for stage `name`, once the base is verified; `None` if it never will be.
    async fn stage(&self, name: &str, mut cancel: Cancel) -> Option<StageResult> {
        let mut rx = self.0.clone();
        let results = tokio::select! {
            r = rx.wait_for(Option::is_some) => r.ok()?.clone()?,
            _ = cancel.raised_above(baton_exec::CancelLevel::None) => return None,
        };
        results.iter().find(|r| r.stage == name).cloned()
    }
}

impl BaseResultsSender {
    pub fn send(self, results: &[StageResult]) {
        let _ = self.0.send(Some(Arc::new(results.to_vec())));
    }
}

const CHANGED: &str = "{changed_files}";
const RELATED: &str = "{related_tests}";

impl StageRunner {
    pub fn new(verify: &VerifyConfig, run: &RunConfig) -> Result<StageRunner, String> {
        let stages = verify
            .stages
            .iter()
            .map(|s| Parser::from_config(s).map(|p| (s.clone(), p)))
            .collect::<Result<_, _>>()?;
        Ok(StageRunner {
            stages,
            default_timeout: verify.timeout,
            reruns: verify.reruns,
            log_limit: run.log_limit.0,
            grace: run.grace,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether any stage's command uses `{related_tests}`.
    pub fn uses_related_tests(&self) -> bool {
        self.stages.iter().any(|(s, _)| s.run.contains(RELATED))
    }

    /// Runs every stage in order on one subject. A failed setup or build stage skips the stages
    /// after it. `emit` receives `StageStarted`, `ProcessStarted` and `StageFinished` events.
    pub async fn run(
        &self,
        ctx: &SubjectContext,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> Vec<StageResult> {
        self.run_selected(ctx, cancel, emit, false).await
    }

    /// Runs only the test stages, without announcing them as the subject's stages: for extra
    /// runs such as the cross-candidate test matrix, whose results are reported on their own.
    pub async fn run_tests(
        &self,
        ctx: &SubjectContext,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> Vec<StageResult> {
        self.run_selected(ctx, cancel, emit, true).await
    }

    async fn run_selected(
        &self,
        ctx: &SubjectContext,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
        tests_only: bool,
    ) -> Vec<StageResult> {
        let mut results = Vec::with_capacity(self.stages.len());
        let mut blocked: Option<String> = None;
        for (stage, parser) in &self.stages {
            if tests_only && stage.kind != StageKind::Test {
                continue;
            }
            let result = if let Some(reason) = &blocked {
                skipped(stage, reason.clone())
            } else if cancel.is_cancelled() {
                StageResult { status: StageStatus::Cancelled, ..skipped(stage, String::new()) }
            } else if stage.run.contains(RELATED) && ctx.related_tests.is_empty() {
                skipped(stage, "no related tests".into())
            } else {
                if !tests_only {
                    emit(RunEvent::StageStarted { subject: ctx.subject.clone(), stage: stage.name.clone() });
                }
                let mut result = self.run_stage(stage, parser, ctx, cancel.clone(), emit, 0).await;
                for attempt in 1..=self.reruns {
                    if stage.kind != StageKind::Test || !has_failures(&result) || cancel.is_cancelled() {
                        break;
                    }
                    if attempt == 1
                        && let Some(base) = &ctx.base
                        && let Some(on_base) = base.stage(&stage.name, cancel.clone()).await
                        && !fails_beyond(&result, &on_base)
                    {
                        result.notes.push("not run again: every failing test fails on the base too".into());
                        break;
                    }
                    let again = self.run_stage(stage, parser, ctx, cancel.clone(), emit, attempt).await;
                    merge_rerun(&mut result, &again);
                }
                result
            };
            if matches!(stage.kind, StageKind::Setup | StageKind::Build)
                && !result.status.is_passed()
                && blocked.is_none()
            {
                blocked = Some(format!("{} stage `{}` did not pass", stage.kind.as_str(), stage.name));
            }
            if !tests_only {
                emit(RunEvent::StageFinished { subject: ctx.subject.clone(), result: result.clone() });
            }
            results.push(result);
        }
        results
    }

    async fn run_stage(
        &self,
        stage: &StageConfig,
        parser: &Parser,
        ctx: &SubjectContext,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
        attempt: u32,
    ) -> StageResult {
        let suffix = if attempt == 0 { String::new() } else { format!(".rerun{attempt}") };
        let rel_log = format!("{}/verify-{}{suffix}.log", ctx.subject, sanitize(&stage.name));
        let log = ctx.artifacts.join(&rel_log);
        let script = stage
            .run
            .replace(CHANGED, &shell_words::join(&ctx.changed_files))
            .replace(RELATED, &shell_words::join(&ctx.related_tests));
        let report_path = stage.report.as_ref().map(|r| ctx.workspace.join(r));
        if let Some(p) = &report_path {
            // A report left from an earlier run (or planted by an agent) must not be read as
            // this run's.
            let _ = std::fs::remove_file(p);
        }
        let mut spec = Spec::shell(&script, &ctx.workspace)
            .log(&log, self.log_limit)
            .timeouts(Some(stage.timeout.unwrap_or(self.default_timeout)), None)
            .grace(self.grace)
            .env("BATON_SUBJECT", ctx.subject.to_string())
            .env("BATON_WORKSPACE", &ctx.workspace)
            .env("BATON_STAGE", &stage.name)
            .env("BATON_CHANGED_FILES", ctx.changed_files.join("\n"));
        for (k, v) in &stage.env {
            spec = spec.env(k, v);
        }
        let process = baton_exec::spawn(spec);
        if let Some(pid) = process.pid() {
            emit(RunEvent::ProcessStarted {
                pid,
                start_ticks: baton_exec::identity_of(pid).map(|i| i.start_ticks),
                label: format!("verify {} {}", ctx.subject, stage.name),
            });
        }
        let finished = process.wait(cancel, None).await;
        let status = match &finished.end {
            End::Exited { code: 0 } => StageStatus::Passed,
            End::Exited { code } => StageStatus::Failed { exit_code: Some(*code), signal: None },
            End::Signaled { signal } => StageStatus::Failed { exit_code: None, signal: Some(*signal) },
            End::TimedOut { .. } => StageStatus::TimedOut,
            End::Cancelled => StageStatus::Cancelled,
            End::SpawnFailed { message } => StageStatus::SpawnFailed { message: message.clone() },
        };
        let mut notes = Vec::new();
        if finished.log_dropped > 0 {
            notes.push(format!("the log was cut: {} bytes in the middle were dropped", finished.log_dropped));
        }
        if let End::TimedOut { .. } = finished.end {
            notes.push(format!(
                "stopped after {}",
                humantime::format_duration(stage.timeout.unwrap_or(self.default_timeout))
            ));
        }
        let log_text = read_lossy(&log);
        let report = match &report_path {
            Some(p) => match std::fs::read(p) {
                Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
                Err(_) => {
                    notes.push(format!(
                        "the report {} was not written",
                        stage.report.as_deref().unwrap_or("")
                    ));
                    None
                }
            },
            None => None,
        };
        let mut parsed = parser.parse(&log_text, report.as_deref());
        notes.append(&mut parsed.notes);
        // Test ids may embed paths (parametrized tests); a workspace's location must not make the
        // same test look different on the base and on a candidate.
        for t in &mut parsed.tests {
            t.name = workspace_independent(&t.name, &ctx.workspace);
        }
        let expects_tests = !matches!(
            stage.parser,
            ParserKind::ExitCode | ParserKind::Findings | ParserKind::Sarif | ParserKind::Metric
        );
        if expects_tests
            && parsed.tests.is_empty()
            && matches!(status, StageStatus::Passed | StageStatus::Failed { .. })
        {
            notes.push("no test results could be read from the output; only the exit status counts".into());
        }
        StageResult {
            stage: stage.name.clone(),
            kind: stage.kind,
            status,
            duration_ms: finished.duration.as_millis() as u64,
            parsed: !parsed.tests.is_empty(),
            tests: parsed.tests,
            log: Some(rel_log),
            notes,
            flaky: Vec::new(),
            findings: parsed.findings,
            metric: parsed.metric,
        }
    }
}

/// Whether a test stage reported failing tests (a rerun can only tell tests apart by name).
fn has_failures(r: &StageResult) -> bool {
    r.tests.iter().any(|t| !t.status.is_ok())
}

/// Whether `r` fails a test that `base` does not fail (or did not run). A base whose stage gave
/// no test results tells nothing, so every failure counts as beyond it.
fn fails_beyond(r: &StageResult, base: &StageResult) -> bool {
    if !base.parsed {
        return true;
    }
    let failing_on_base: std::collections::HashSet<&str> = base
        .tests
        .iter()
        .filter(|t| !t.status.is_ok())
        .map(|t| t.name.as_str())
        .chain(base.flaky.iter().map(String::as_str))
        .collect();
    r.tests.iter().any(|t| !t.status.is_ok() && !failing_on_base.contains(t.name.as_str()))
}

/// Folds a rerun into the first result: tests whose verdict differs between the runs are flaky.
fn merge_rerun(first: &mut StageResult, again: &StageResult) {
    let again_ok: std::collections::HashMap<&str, bool> =
        again.tests.iter().map(|t| (t.name.as_str(), t.status.is_ok())).collect();
    for t in &first.tests {
        if let Some(&ok) = again_ok.get(t.name.as_str())
            && ok != t.status.is_ok()
            && !first.flaky.contains(&t.name)
        {
            first.flaky.push(t.name.clone());
        }
    }
    let n = first.flaky.len();
    first.notes.push(match n {
        0 => "ran again because of failures: the same tests failed".into(),
        n => format!(
            "ran again because of failures: {n} flaky {} (they count for nothing)",
            if n == 1 { "test" } else { "tests" }
        ),
    });
    first.duration_ms += again.duration_ms;
}

fn skipped(stage: &StageConfig, reason: String) -> StageResult {
    StageResult {
        stage: stage.name.clone(),
        kind: stage.kind,
        status: StageStatus::Skipped { reason },
        duration_ms: 0,
        tests: Vec::new(),
        parsed: false,
        log: None,
        notes: Vec::new(),
        flaky: Vec::new(),
        findings: None,
        metric: None,
    }
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

/// `name` with the workspace's path (as given, and resolved) replaced by `<workspace>`.
fn workspace_independent(name: &str, workspace: &Path) -> String {
    let mut out = name.to_owned();
    let mut paths = vec![workspace.to_path_buf()];
    if let Ok(real) = workspace.canonicalize() {
        paths.push(real);
    }
    for p in paths {
        let p = p.to_string_lossy();
        if !p.is_empty() && out.contains(p.as_ref()) {
            out = out.replace(p.as_ref(), "<workspace>");
        }
    }
    out
}

/// A stage name made safe for a file name.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
