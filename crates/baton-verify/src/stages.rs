use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_config::{FAILING_TESTS, ParserKind, RunConfig, StageConfig, VerifyConfig};
use baton_core::{RunEvent, StageKind, StageResult, StageStatus, Subject, TestPart, plural};
use baton_exec::{Cancel, End, Spec};

use crate::parse::Parser;

/// The configured stages, ready to run on any subject.
pub struct StageRunner {
    stages: Vec<(StageConfig, Parser)>,
    default_timeout: Duration,
    reruns: u32,
    related_budget: Duration,
    log_limit: u64,
    grace: Duration,
    /// The user's repository, whose files a stage's output must not name (see
    /// [`StageResult::foreign_paths`]).
    user_repo: Option<PathBuf>,
    /// Where the stages' processes run.
    executor: Arc<dyn baton_exec::Executor>,
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
    /// The base's side of that channel: it publishes its results to the candidates.
    pub publish: Option<BaseResultsSender>,
    /// How the related tests are split, where candidates' own related tests differ.
    pub split: Split,
    /// What its stages and probes may touch, where the executor confines them; a stage that
    /// sets `network = true` also reaches the network.
    pub confine: Option<baton_exec::Confinement>,
}

/// How a subject runs the tests related to the union of all candidates' changes.
///
/// Every subject runs the whole union, so that results compare test by test. But when one
/// candidate's change relates to a slow test module, every other candidate would pay for it too.
/// So where the candidates' own related tests differ, the union is cut into groups of files (each
/// related to the same candidates). The base runs them one by one and tells the candidates what
/// each cost; a candidate runs its own related tests, then the groups related only to other
/// candidates' changes while the base's time on them fits in `verify.related_budget`.
#[derive(Debug, Clone, Default)]
pub enum Split {
    /// One run of `related_tests`.
    #[default]
    None,
    /// The base: each group on its own, in order, publishing its progress to the candidates.
    Base { parts: Vec<Vec<String>> },
    /// A candidate: `own` are the groups its changes relate to, `others` those that relate only
    /// to other candidates' changes, each by the base's index, with the files present in its
    /// tree (`related_tests` holds all of `own`'s). Each group runs on its own, so a rerun for
    /// failures goes over the group that had them, not over a slow neighbour.
    Candidate { own: Vec<(usize, Vec<String>)>, others: Vec<(usize, Vec<String>)> },
}

/// The base's stage results as they become known, shared with the candidates verified beside it.
///
/// Rerunning a failing test stage tells flaky tests apart. A candidate's failures that also fail
/// on the base are no news: the base's own run already said whether they are flaky, and rerunning
/// the whole stage for them doubles its cost (a large suite with a few failures on the base costs
/// every candidate twice). So a candidate waits for the base's verdicts before a rerun, and reruns
/// only when it fails some test that does not fail on the base.
///
/// Where the related tests are split ([`Split`]), the base also publishes each group as it starts
/// and ends it: candidates judge by it whether a group fits in their budget.
#[derive(Debug, Clone)]
pub struct BaseResults(tokio::sync::watch::Receiver<BaseState>);

/// Publishes the base's results to every [`BaseResults`]; when every clone is dropped before
/// [`send`](Self::send), they learn that none will come (the base was cancelled or could not be
/// checked out).
#[derive(Debug, Clone)]
pub struct BaseResultsSender(Arc<tokio::sync::watch::Sender<BaseState>>);

#[derive(Debug, Default)]
struct BaseState {
    /// Each (stage, group) the base has begun.
    parts: HashMap<(String, usize), PartState>,
    /// Every stage's result, once the base is verified.
    done: Option<Arc<Vec<StageResult>>>,
    /// The probes (by index) the base ran until their time limit.
    probes_timed_out: std::collections::HashSet<usize>,
}

#[derive(Debug)]
enum PartState {
    Running(Instant),
    Done(Arc<StageResult>),
}

/// What a candidate knows of a group's cost from the base.
#[derive(Debug)]
enum PartCost {
    /// The base ran it in this long.
    Took(Duration),
    /// The base has been running it for longer than the limit asked about.
    Over,
    /// The base has not finished it: the candidate has to find out itself.
    Unknown,
}

impl BaseResults {
    pub fn channel() -> (BaseResultsSender, BaseResults) {
        let (tx, rx) = tokio::sync::watch::channel(BaseState::default());
        (BaseResultsSender(Arc::new(tx)), BaseResults(rx))
    }

    /// The base's result for stage `name` (only its group `part`, when given), once the base has
    /// it; `None` if it never will.
    async fn stage(&self, name: &str, part: Option<usize>, mut cancel: Cancel) -> Option<StageResult> {
        let mut rx = self.0.clone();
        let group = |s: &BaseState| match part.and_then(|i| s.parts.get(&(name.to_owned(), i))) {
            Some(PartState::Done(r)) => Some(StageResult::clone(r)),
            _ => None,
        };
        let state = tokio::select! {
            r = rx.wait_for(|s| s.done.is_some() || group(s).is_some()) => r.ok()?,
            _ = cancel.raised_above(baton_exec::CancelLevel::None) => return None,
        };
        group(&state).or_else(|| state.done.as_ref()?.iter().find(|r| r.stage == name).cloned())
    }

    /// Whether the base has run probe `i` until its time limit, as far as it has got: such a
    /// probe counts for nothing on any subject, so candidates need not wait for it.
    pub(crate) fn probe_timed_out(&self, i: usize) -> bool {
        self.0.borrow().probes_timed_out.contains(&i)
    }

    /// What the base has shown so far of the cost of group `part` of stage `name`, compared
    /// with `limit`. It does not wait: a candidate that would idle while the base finishes a
    /// group runs the group itself within the limit instead, which costs no more where the
    /// group is slow and saves the wait where it is not.
    fn cost(&self, name: &str, part: usize, limit: Duration) -> PartCost {
        match self.0.borrow().parts.get(&(name.to_owned(), part)) {
            Some(PartState::Done(r)) => PartCost::Took(Duration::from_millis(r.duration_ms)),
            Some(PartState::Running(since)) if since.elapsed() >= limit => PartCost::Over,
            Some(PartState::Running(_)) | None => PartCost::Unknown,
        }
    }
}

impl BaseResultsSender {
    pub fn send(&self, results: &[StageResult]) {
        self.0.send_modify(|s| s.done = Some(Arc::new(results.to_vec())));
    }

    pub(crate) fn probe_timed_out(&self, i: usize) {
        self.0.send_modify(|s| {
            s.probes_timed_out.insert(i);
        });
    }

    fn part_started(&self, stage: &str, part: usize) {
        self.0.send_modify(|s| {
            s.parts.insert((stage.to_owned(), part), PartState::Running(Instant::now()));
        });
    }

    fn part_done(&self, stage: &str, part: usize, result: &StageResult) {
        self.0.send_modify(|s| {
            s.parts.insert((stage.to_owned(), part), PartState::Done(Arc::new(result.clone())));
        });
    }
}

const CHANGED: &str = "{changed_files}";
const RELATED: &str = "{related_tests}";
/// The longest `{failing_tests}` list a `rerun` command gets, in bytes: the program it names
/// gets them as arguments, which Linux caps at 2 MiB with the environment. Beyond it the whole
/// stage runs again.
const MAX_FAILING_LIST: usize = 1024 * 1024;
/// The longest `BATON_CHANGED_FILES` a stage gets; Linux caps one environment string at 128 KiB.
const MAX_ENV_LIST: usize = 64 * 1024;

impl StageRunner {
    pub fn new(verify: &VerifyConfig, run: &RunConfig) -> Result<StageRunner, crate::SetupError> {
        let stages = verify
            .stages
            .iter()
            .map(|s| Parser::from_config(s).map(|p| (s.clone(), p)))
            .collect::<Result<_, _>>()?;
        Ok(StageRunner {
            stages,
            default_timeout: verify.timeout,
            reruns: verify.reruns,
            related_budget: verify.related_budget,
            log_limit: run.log_limit.0,
            grace: run.grace,
            user_repo: None,
            executor: Arc::new(baton_exec::Local),
        })
    }

    /// Runs the stages' processes through `executor` (this machine, as the user's, unless
    /// given).
    pub fn with_executor(mut self, executor: Arc<dyn baton_exec::Executor>) -> StageRunner {
        self.executor = executor;
        self
    }

    /// Watches the stages' output for paths into `repo`, the user's repository: a stage that
    /// names them reads the user's files rather than the workspace's, so it cannot see what a
    /// candidate changed.
    pub fn watching_repo(mut self, repo: &Path) -> StageRunner {
        self.user_repo = Some(repo.to_path_buf());
        self
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
        for sp in &self.stages {
            let stage = &sp.0;
            if tests_only && stage.kind != StageKind::Test {
                continue;
            }
            let result = if let Some(reason) = &blocked {
                skipped(stage, reason.clone())
            } else if cancel.is_cancelled() {
                StageResult { status: StageStatus::Cancelled, ..skipped(stage, String::new()) }
            } else if stage.run.contains(RELATED)
                && ctx.related_tests.is_empty()
                && !matches!(&ctx.split, Split::Candidate { others, .. } if !others.is_empty())
            {
                skipped(stage, "no related tests".into())
            } else {
                if !tests_only {
                    emit(RunEvent::StageStarted { subject: ctx.subject.clone(), stage: stage.name.clone() });
                }
                let split = stage.run.contains(RELATED);
                match &ctx.split {
                    Split::Base { parts } if split => {
                        self.run_base_parts(sp, ctx, parts, cancel.clone(), emit).await
                    }
                    Split::Candidate { own, others } if split => {
                        self.run_candidate_parts(sp, ctx, own, others, cancel.clone(), emit).await
                    }
                    _ => {
                        let run = Run {
                            files: &ctx.related_tests,
                            tag: "",
                            limit: None,
                            base_part: None,
                            failing: None,
                        };
                        self.run_with_reruns(sp, ctx, run, cancel.clone(), emit).await
                    }
                }
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

    /// One run of a stage (with its reruns, for a test stage that fails).
    async fn run_with_reruns(
        &self,
        sp: &(StageConfig, Parser),
        ctx: &SubjectContext,
        run: Run<'_>,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> StageResult {
        let stage = &sp.0;
        let mut result = self.run_stage(sp, ctx, &run, cancel.clone(), emit, 0).await;
        for attempt in 1..=self.reruns {
            // A run cut short by the budget is thrown away, not made surer.
            if stage.kind != StageKind::Test
                || !has_failures(&result)
                || cancel.is_cancelled()
                || run.limit.is_some()
            {
                break;
            }
            if attempt == 1
                && let Some(base) = &ctx.base
                && let Some(on_base) = base.stage(&stage.name, run.base_part, cancel.clone()).await
                && !fails_beyond(&result, &on_base)
            {
                result.notes.push("not run again: every failing test fails on the base too".into());
                break;
            }
            // With a `rerun` command, only the failing tests run again; without, the whole stage.
            let mut failing: Option<Vec<String>> = stage
                .rerun
                .as_ref()
                .map(|_| result.tests.iter().filter(|t| !t.status.is_ok()).map(|t| t.name.clone()).collect());
            if let Some(tests) = &failing
                && shell_words::join(tests).len() > MAX_FAILING_LIST
            {
                result.notes.push(format!(
                    "{} failing tests are too many to name on a command line: the whole stage ran again",
                    tests.len()
                ));
                failing = None;
            }
            let again_run = Run { failing: failing.as_deref(), ..run };
            let again = self.run_stage(sp, ctx, &again_run, cancel.clone(), emit, attempt).await;
            merge_rerun(&mut result, &again, failing.as_deref());
        }
        result
    }

    /// The base's run of a split stage: each group on its own, announced to the candidates.
    async fn run_base_parts(
        &self,
        sp: &(StageConfig, Parser),
        ctx: &SubjectContext,
        parts: &[Vec<String>],
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> StageResult {
        let stage = &sp.0;
        let mut runs = Vec::with_capacity(parts.len());
        for (i, files) in parts.iter().enumerate() {
            if cancel.is_cancelled() {
                break;
            }
            if let Some(p) = &ctx.publish {
                p.part_started(&stage.name, i);
            }
            let tag = format!(".part{}", i + 1);
            let run = Run { files, tag: &tag, limit: None, base_part: None, failing: None };
            let result = self.run_with_reruns(sp, ctx, run, cancel.clone(), emit).await;
            if let Some(p) = &ctx.publish {
                p.part_done(&stage.name, i, &result);
            }
            runs.push((files.clone(), result));
        }
        let mut merged = combine(stage, ctx, runs, Vec::new());
        merged.notes.insert(0, format!("ran in {} parts, one per group of related test files", parts.len()));
        merged
    }

    /// A candidate's run of a split stage: the groups of its own related tests, then each group
    /// related only to other candidates' changes while it fits in the budget.
    async fn run_candidate_parts(
        &self,
        sp: &(StageConfig, Parser),
        ctx: &SubjectContext,
        own: &[(usize, Vec<String>)],
        others: &[(usize, Vec<String>)],
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> StageResult {
        let stage = &sp.0;
        let mut runs = Vec::new();
        // Every run gets a log of its own, a run cut at the budget too.
        let mut tags = (1..).map(|n| format!(".part{n}"));
        for (i, files) in own {
            if cancel.is_cancelled() {
                break;
            }
            let tag = tags.next().unwrap_or_default();
            let run = Run { files, tag: &tag, limit: None, base_part: Some(*i), failing: None };
            runs.push((files.clone(), self.run_with_reruns(sp, ctx, run, cancel.clone(), emit).await));
        }
        let stage_timeout = stage.timeout.unwrap_or(self.default_timeout);
        let mut spent = Duration::ZERO;
        let mut left_out = Vec::new();
        let mut why = Vec::new();
        for (i, files) in others {
            if cancel.is_cancelled() {
                break;
            }
            let mut leave_out = |reason: String| {
                why.push(format!("{} {reason}", files.join(" ")));
                left_out.extend(files.iter().cloned());
            };
            let remaining = self.related_budget.saturating_sub(spent);
            if remaining.is_zero() {
                leave_out("had no time left".into());
                continue;
            }
            let cost = match &ctx.base {
                Some(base) => base.cost(&stage.name, *i, remaining),
                None => PartCost::Unknown,
            };
            // Where the base has not told, the candidate finds out itself, within what is left.
            let limit = match cost {
                PartCost::Took(took) if took <= remaining => None,
                PartCost::Took(took) => {
                    leave_out(format!("took the base {}", short(took)));
                    continue;
                }
                PartCost::Over => {
                    leave_out(format!("took the base over {}", short(remaining)));
                    continue;
                }
                PartCost::Unknown => (remaining < stage_timeout).then_some(remaining),
            };
            let tag = tags.next().unwrap_or_default();
            let run = Run { files, tag: &tag, limit, base_part: Some(*i), failing: None };
            let result = self.run_with_reruns(sp, ctx, run, cancel.clone(), emit).await;
            spent += Duration::from_millis(result.duration_ms);
            if limit.is_some() && result.status == StageStatus::TimedOut {
                leave_out(format!("did not finish within {}", short(remaining)));
                continue;
            }
            runs.push((files.clone(), result));
        }
        let mut merged = combine(stage, ctx, runs, left_out);
        if !why.is_empty() {
            merged.notes.insert(
                0,
                format!(
                    "left out tests related only to other candidates' changes, over verify.related_budget ({}): {}",
                    short(self.related_budget),
                    why.join("; ")
                ),
            );
        }
        merged
    }

    async fn run_stage(
        &self,
        sp: &(StageConfig, Parser),
        ctx: &SubjectContext,
        run: &Run<'_>,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
        attempt: u32,
    ) -> StageResult {
        let (stage, parser) = sp;
        let suffix = if attempt == 0 { String::new() } else { format!(".rerun{attempt}") };
        let rel_log = format!("{}/verify-{}{}{suffix}.log", ctx.subject, sanitize(&stage.name), run.tag);
        let log = ctx.artifacts.join(&rel_log);
        let timeout = run.limit.unwrap_or(stage.timeout.unwrap_or(self.default_timeout));
        let script = match (run.failing, &stage.rerun) {
            (Some(tests), Some(rerun)) => rerun.replace(FAILING_TESTS, &shell_words::join(tests)),
            _ => stage.run.clone(),
        }
        .replace(CHANGED, &shell_words::join(&ctx.changed_files))
        .replace(RELATED, &shell_words::join(run.files));
        let report_path = stage.report.as_ref().map(|r| ctx.workspace.join(r));
        if let Some(p) = &report_path {
            // A report left from an earlier run (or planted by an agent) must not be read as
            // this run's.
            let _ = std::fs::remove_file(p);
        }
        // The command runs from a file beside its log: `sh -c` takes one argument of at most
        // 128 KiB, which the placeholders of a large change can outgrow; and the file shows what
        // ran, placeholders filled in.
        let script_file = log.with_extension("sh");
        let written = log
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&script_file, &script));
        let mut spec = match written {
            Ok(()) => Spec::new("sh", &ctx.workspace).arg(&script_file),
            Err(_) => Spec::shell(&script, &ctx.workspace),
        }
        .log(&log, self.log_limit)
        // parsers read headers on stderr (cargo's `Running ...`) with results on stdout
        .merge_output()
        .timeouts(Some(timeout), None)
        .grace(self.grace)
        .env("BATON_SUBJECT", ctx.subject.to_string())
        .env("BATON_WORKSPACE", &ctx.workspace)
        .env("BATON_STAGE", &stage.name);
        // An environment string has the same limit: past it, {changed_files} alone names them.
        let changed = ctx.changed_files.join("\n");
        if changed.len() <= MAX_ENV_LIST {
            spec = spec.env("BATON_CHANGED_FILES", changed);
        }
        for (k, v) in &stage.env {
            spec = spec.env(k, v);
        }
        if let Some(c) = &ctx.confine {
            let network =
                if stage.network { baton_exec::Network::Host } else { baton_exec::Network::Private };
            spec = spec.confine(c.clone().network(network));
        }
        let process = self.executor.spawn(spec);
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
            notes.push(format!("stopped after {}", humantime::format_duration(timeout)));
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
        let expects_tests = reports_tests(stage.parser);
        if expects_tests
            && parsed.tests.is_empty()
            && matches!(status, StageStatus::Passed | StageStatus::Failed { .. })
        {
            notes.push("no test results could be read from the output; only the exit status counts".into());
        }
        let foreign_paths = match &self.user_repo {
            Some(repo) if !ctx.workspace.starts_with(repo) => paths_into(&log_text, repo),
            _ => Vec::new(),
        };
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
            parts: Vec::new(),
            left_out: Vec::new(),
            expects_tests,
            foreign_paths,
        }
    }
}

/// Up to three distinct paths into `repo` (outside its git directory, where baton keeps its
/// own files) that `text` names.
fn paths_into(text: &str, repo: &Path) -> Vec<String> {
    let mut roots = vec![repo.to_string_lossy().into_owned()];
    if let Ok(real) = repo.canonicalize() {
        roots.push(real.to_string_lossy().into_owned());
    }
    roots.dedup();
    let mut out: Vec<String> = Vec::new();
    for root in roots.iter().filter(|r| r.len() > 1) {
        let prefix = format!("{}/", root.trim_end_matches('/'));
        for (at, _) in text.match_indices(&prefix) {
            // Only where a path starts: `/x/home/me/repo/` is not the repository `/home/me/repo`.
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| !c.is_whitespace() && !"\"'(=:`<[".contains(c)) {
                continue;
            }
            let path: String =
                text[at..].chars().take_while(|c| !c.is_whitespace() && !"\"'):,`>]".contains(*c)).collect();
            let rest = &path[prefix.len()..];
            if rest.is_empty() || rest.starts_with(".git/") || out.contains(&path) {
                continue;
            }
            out.push(path);
            if out.len() == 3 {
                return out;
            }
        }
    }
    out
}

/// One result for a stage run in parts: the parts' logs joined into the stage's log.
fn combine(
    stage: &StageConfig,
    ctx: &SubjectContext,
    runs: Vec<(Vec<String>, StageResult)>,
    left_out: Vec<String>,
) -> StageResult {
    if runs.is_empty() {
        let mut r = skipped(stage, "no related tests within the budget".into());
        r.left_out = left_out;
        return r;
    }
    let rel_log = format!("{}/verify-{}.log", ctx.subject, sanitize(&stage.name));
    let mut text = String::new();
    for (files, r) in &runs {
        text.push_str(&format!("# baton: {} on {}\n", stage.name, files.join(" ")));
        if let Some(log) = &r.log {
            text.push_str(&read_lossy(&ctx.artifacts.join(log)));
        }
        text.push('\n');
    }
    let _ = std::fs::write(ctx.artifacts.join(&rel_log), text);
    let mut merged = merge_runs(runs);
    merged.log = Some(rel_log);
    merged.left_out = left_out;
    merged
}

/// What one run of a stage covers.
struct Run<'a> {
    /// The related test files for `{related_tests}`.
    files: &'a [String],
    /// Added to the log's name (`verify-test.part2.log`).
    tag: &'a str,
    /// A time limit below the stage's own: the budget left.
    limit: Option<Duration>,
    /// The base's group this run compares with, for the rerun rule; `None`: the whole stage.
    base_part: Option<usize>,
    /// For a rerun with the stage's `rerun` command: the failing tests it runs again.
    failing: Option<&'a [String]>,
}

/// Runs of one stage on groups of related test files, as one result: timed out if any run was
/// (some tests were not reached), else the first status that is not a pass; the tests of each
/// run with the group it came from, their notes and durations.
fn merge_runs(runs: Vec<(Vec<String>, StageResult)>) -> StageResult {
    let several = runs.len() > 1;
    let mut iter = runs.into_iter();
    let (files, mut merged) = iter.next().expect("at least one run");
    merged.parts = vec![TestPart { files, tests: merged.tests.len() }];
    for (files, r) in iter {
        if (merged.status.is_passed() && !r.status.is_passed()) || r.status == StageStatus::TimedOut {
            merged.status = r.status;
        }
        merged.duration_ms += r.duration_ms;
        merged.parsed |= r.parsed;
        merged.parts.push(TestPart { files, tests: r.tests.len() });
        merged.tests.extend(r.tests);
        merged.flaky.extend(r.flaky);
        merged.notes.extend(r.notes);
        for p in r.foreign_paths {
            if !merged.foreign_paths.contains(&p) {
                merged.foreign_paths.push(p);
            }
        }
    }
    if several {
        merged.notes.dedup();
    }
    merged
}

/// A duration as a person would say it, to the second.
fn short(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
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
/// `failing`: the tests a `rerun` command was given, when it ran only those.
fn merge_rerun(first: &mut StageResult, again: &StageResult, failing: Option<&[String]>) {
    let again_ok: std::collections::HashMap<&str, bool> =
        again.tests.iter().map(|t| (t.name.as_str(), t.status.is_ok())).collect();
    let mut seen = 0;
    for t in &first.tests {
        let Some(&ok) = again_ok.get(t.name.as_str()) else { continue };
        if !t.status.is_ok() {
            seen += 1;
        }
        if ok != t.status.is_ok() && !first.flaky.contains(&t.name) {
            first.flaky.push(t.name.clone());
        }
    }
    let what = match failing {
        Some(tests) => {
            format!(
                "ran the {} failing {} again with `rerun`",
                tests.len(),
                plural(tests.len(), "test", "tests")
            )
        }
        None => "ran again because of failures".to_owned(),
    };
    first.notes.push(match first.flaky.len() {
        _ if seen == 0 => {
            format!("{what}, but its output named none of the failing tests: none is known to be flaky")
        }
        0 => format!("{what}: the same tests failed"),
        n => format!("{what}: {n} flaky {} (they count for nothing)", plural(n, "test", "tests")),
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
        parts: Vec::new(),
        left_out: Vec::new(),
        expects_tests: reports_tests(stage.parser),
        foreign_paths: Vec::new(),
    }
}

/// Whether a parser reports results test by test.
fn reports_tests(parser: ParserKind) -> bool {
    !matches!(parser, ParserKind::ExitCode | ParserKind::Findings | ParserKind::Sarif | ParserKind::Metric)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_into_the_users_repository_are_found_where_a_path_starts() {
        let repo = Path::new("/home/me/proj");
        let log = "rootdir: /tmp/ws/tree\n\
                   /home/me/proj/src/pkg/mod.py:12: in parse\n\
                   see '/home/me/proj/src/pkg/mod.py' again, and /home/me/proj2/x.py, /x/home/me/proj/y.py\n\
                   sh /home/me/proj/.git/baton/runs/r/base/verify-test.sh\n\
                   File \"/home/me/proj/src/pkg/util.py\", line 3\n";
        assert_eq!(paths_into(log, repo), ["/home/me/proj/src/pkg/mod.py", "/home/me/proj/src/pkg/util.py"]);
        assert!(paths_into("all in /tmp/ws/tree/src/x.py", repo).is_empty());
    }
}
