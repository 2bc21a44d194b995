//! Running the verification stages once on a commit, before any run: what `baton init` and
//! `baton doctor` do so that a setup that verifies nothing (a missing runner, tests that do not
//! load, no per-test results) is found before it costs a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_config::Config;
use baton_core::{StageResult, Subject};
use baton_exec::Cancel;
use baton_git::{Oid, Repo};
use baton_verify::{Protected, RelatedTests, Split, StageRunner, SubjectContext, looks_like_test};
use baton_workspace::{Local, Workspace, WorkspaceKind, WorkspaceProvider};

use crate::EngineError;

/// What the stages did on the commit.
#[derive(Debug)]
pub struct StageCheck {
    pub commit: Oid,
    pub results: Vec<StageResult>,
    /// Why these results could not be evidence in a run (see `baton_verify::setup_problems`).
    pub problems: Vec<String>,
    /// The test files given to `{related_tests}`: a few of those the rules relate to the
    /// repository's files, since no change exists to relate them to.
    pub related_tests: Vec<String>,
    /// Where the stages' logs are.
    pub logs: PathBuf,
}

/// How many related test files a check runs: enough to see the runner work, few enough to be
/// quick.
const SAMPLE: usize = 3;

/// Runs `config`'s stages once on HEAD in a fresh clone, each stopped after at most `limit`.
pub async fn check_stages(
    repo: &Repo,
    config: &Config,
    limit: Duration,
    cancel: Cancel,
) -> Result<StageCheck, EngineError> {
    let commit = repo.head()?;
    let mut verify = config.verify.clone();
    verify.timeout = verify.timeout.min(limit);
    for stage in &mut verify.stages {
        stage.timeout = Some(stage.timeout.unwrap_or(limit).min(limit));
    }
    verify.reruns = 0;
    let redacting = baton_exec::Redacting {
        redactor: crate::redact::redactor(config),
        inner: std::sync::Arc::new(baton_exec::Local),
    };
    let runner = StageRunner::new(&verify, &config.run)?
        .watching_repo(&repo.root)
        .with_executor(std::sync::Arc::new(redacting));
    let protected = Protected::new(&verify.protected)?;
    let related = RelatedTests::new(&verify.related)?;
    let paths = repo.git().tree_paths(&commit).map_err(EngineError::from_git)?;
    let mut related_tests =
        if runner.uses_related_tests() { related.related(&paths, &paths, &protected) } else { Vec::new() };
    related_tests.sort();
    related_tests.dedup();
    related_tests.truncate(SAMPLE);

    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let logs = repo.common_dir.join("baton").join("checks").join(format!("{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&logs).map_err(EngineError::io(&logs))?;
    let ws_dir = logs.join("workspace");
    let (r, c, d) = (repo.clone(), commit.clone(), ws_dir.clone());
    let ws =
        tokio::task::spawn_blocking(move || Local(WorkspaceKind::Clone).create(&r, &d, &c, "baton/check"))
            .await
            .map_err(|e| EngineError::Failed(format!("the check's workspace: {e}")))?
            .map_err(EngineError::from_git)?;
    let ctx = SubjectContext {
        subject: Subject::Base,
        workspace: ws.tree.clone(),
        artifacts: logs.clone(),
        changed_files: Vec::new(),
        related_tests: related_tests.clone(),
        base: None,
        publish: None,
        split: Split::None,
        // The check runs the user's own commands on HEAD before any agent: unconfined, as
        // when they run them.
        confine: None,
    };
    let results = runner.run(&ctx, cancel.clone(), &|_| {}).await;
    let mut problems = baton_verify::setup_problems(&logs, &results, &[]);
    // Tests that do not read the workspace (an editable install of the user's checkout, an
    // absolute path) give the same results whatever a candidate changes. Emptying the
    // project's source files in the workspace must change something.
    if problems.is_empty() && results.iter().any(|r| r.kind == baton_core::StageKind::Test) {
        let sources: Vec<&String> = paths
            .iter()
            .filter(|p| is_source(p) && !protected.is_protected(p) && !looks_like_test(p))
            .collect();
        for p in &sources {
            let _ = std::fs::write(ws.tree.join(p), "");
        }
        if !sources.is_empty() {
            let emptied = runner
                .run(&SubjectContext { artifacts: logs.join("emptied"), ..ctx.clone() }, cancel, &|_| {})
                .await;
            if same_test_results(&results, &emptied) {
                problems.push(format!(
                    "the test stages gave the same results with the project's {} source {} emptied in the workspace: \
                     they do not read the workspace (an editable install of your checkout, or an absolute path in a \
                     command?), so they cannot see what candidates change",
                    sources.len(),
                    baton_core::plural(sources.len(), "file", "files")
                ));
            }
        }
    }
    remove_workspace(&ws, &ws_dir);
    Ok(StageCheck { commit, results, problems, related_tests, logs })
}

/// Source files by their extension: what an emptied copy of must change a test's result.
fn is_source(path: &str) -> bool {
    const EXTENSIONS: &[&str] = &[
        "py", "rs", "go", "js", "jsx", "mjs", "cjs", "ts", "tsx", "rb", "java", "kt", "scala", "c", "cc",
        "cpp", "h", "hpp", "cs", "php", "swift", "sh",
    ];
    path.rsplit_once('.').is_some_and(|(_, ext)| EXTENSIONS.contains(&ext))
}

/// Whether every test stage ended the same way, with the same tests and verdicts.
fn same_test_results(a: &[StageResult], b: &[StageResult]) -> bool {
    let tests = |r: &[StageResult]| {
        r.iter().filter(|s| s.kind == baton_core::StageKind::Test).map(outcome).collect::<Vec<_>>()
    };
    let (ta, tb) = (tests(a), tests(b));
    ta == tb
}

/// How a stage ended: its status and each test's verdict, in name order.
fn outcome(s: &StageResult) -> (String, Vec<(String, baton_core::TestStatus)>) {
    let mut tests: Vec<(String, baton_core::TestStatus)> =
        s.tests.iter().map(|t| (t.name.clone(), t.status)).collect();
    tests.sort();
    (format!("{}: {}", s.stage, s.status), tests)
}

fn remove_workspace(ws: &Workspace, dir: &Path) {
    let _ = ws.remove();
    let _ = std::fs::remove_dir_all(dir);
}
