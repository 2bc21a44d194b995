use std::fmt;

use serde::{Deserialize, Serialize};

/// The result of one test case as a report or a log line stated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    Pass,
    Fail,
    Error,
    Skip,
    /// Expected to fail, and did.
    XFail,
    /// Expected to fail, but passed.
    XPass,
}

impl TestStatus {
    /// Whether the test counts as good: what a CI run would accept.
    pub fn is_ok(self) -> bool {
        match self {
            TestStatus::Pass | TestStatus::XFail | TestStatus::Skip => true,
            TestStatus::Fail | TestStatus::Error | TestStatus::XPass => false,
        }
    }

    /// Whether the test ran its body and it passed (a skip is not a pass).
    pub fn is_pass(self) -> bool {
        matches!(self, TestStatus::Pass)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pass" => TestStatus::Pass,
            "fail" => TestStatus::Fail,
            "error" => TestStatus::Error,
            "skip" => TestStatus::Skip,
            "xfail" => TestStatus::XFail,
            "xpass" => TestStatus::XPass,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TestStatus::Pass => "pass",
            TestStatus::Fail => "fail",
            TestStatus::Error => "error",
            TestStatus::Skip => "skip",
            TestStatus::XFail => "xfail",
            TestStatus::XPass => "xpass",
        }
    }
}

impl fmt::Display for TestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One test case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    pub name: String,
    pub status: TestStatus,
}

/// What a verification stage is for; decides how its result enters the ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Prepares the workspace (install dependencies). Failing it fails the gate "builds".
    Setup,
    /// Compiles. Failing it fails the gate "builds".
    Build,
    /// Runs tests; results are compared with the baseline test by test.
    Test,
    /// Lints or type-checks; compared with the baseline by exit status.
    Lint,
    /// Security scanning; findings compared with the baseline's.
    Security,
    /// A benchmark; its metric compared with the baseline's.
    Bench,
    /// Anything else; compared with the baseline by exit status.
    Custom,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Setup => "setup",
            StageKind::Build => "build",
            StageKind::Test => "test",
            StageKind::Lint => "lint",
            StageKind::Security => "security",
            StageKind::Bench => "bench",
            StageKind::Custom => "custom",
        }
    }
}

/// How a stage's command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageStatus {
    Passed,
    Failed {
        exit_code: Option<i32>,
        signal: Option<i32>,
    },
    TimedOut,
    /// Not run, and why (an earlier stage failed; no related tests).
    Skipped {
        reason: String,
    },
    Cancelled,
    SpawnFailed {
        message: String,
    },
}

impl StageStatus {
    pub fn is_passed(&self) -> bool {
        matches!(self, StageStatus::Passed)
    }
}

impl fmt::Display for StageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageStatus::Passed => f.write_str("passed"),
            StageStatus::Failed { exit_code: Some(code), .. } => write!(f, "failed (exit {code})"),
            StageStatus::Failed { signal: Some(sig), .. } => write!(f, "failed (signal {sig})"),
            StageStatus::Failed { .. } => f.write_str("failed"),
            StageStatus::TimedOut => f.write_str("timed out"),
            StageStatus::Skipped { reason } => write!(f, "skipped ({reason})"),
            StageStatus::Cancelled => f.write_str("cancelled"),
            StageStatus::SpawnFailed { message } => write!(f, "could not start: {message}"),
        }
    }
}

/// The result of one stage on one subject (the base or a candidate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageResult {
    pub stage: String,
    pub kind: StageKind,
    pub status: StageStatus,
    pub duration_ms: u64,
    /// Test cases found in the output or report; empty when none were parsed.
    pub tests: Vec<TestCase>,
    /// False when the stage's parser found no results: only the exit status counts then.
    pub parsed: bool,
    /// The stage's log, relative to the run's artifact directory.
    pub log: Option<String>,
    /// Something the user should know: a truncated log, an unparsable report.
    pub notes: Vec<String>,
    /// Tests whose verdict changed when the stage was run again: they count for nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky: Vec<String>,
    /// Lint, type-check or security findings, each as `file: rule message` (no line numbers,
    /// which move with any edit); `None` when the stage reports none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<String>>,
    /// A measured number, such as a benchmark's time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// When the stage ran its related tests in parts, one run per group of test files: the
    /// groups in order, each with how many consecutive entries of `tests` it gave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<TestPart>,
    /// Related test files this subject did not run: they relate only to other candidates'
    /// changes and would have cost more than the budget (`verify.related_budget`). The base's
    /// results from them are not compared with this subject's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
    /// Whether the stage's parser reports test by test (so that no result at all means the
    /// tests did not run).
    #[serde(default)]
    pub expects_tests: bool,
    /// Paths into the user's repository (outside its git directory) that the output names: a
    /// sign that the stage reads the user's tree instead of the workspace (an editable install,
    /// an absolute path). At most a few, as examples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_paths: Vec<String>,
}

/// One run of a stage on a group of related test files (see [`StageResult::parts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestPart {
    pub files: Vec<String>,
    /// How many test results the run gave.
    pub tests: usize,
}

/// A stage's measured number and how to judge it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub value: f64,
    pub lower_is_better: bool,
    /// The relative change tolerated before a value counts as worse.
    pub tolerance: f64,
}

/// How one test changed between the base and a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestChange {
    /// Failed on the base, passes on the candidate.
    Fixed,
    /// Passed on the base, fails on the candidate.
    Broken,
    StillFailing,
    StillPassing,
    /// Absent from the base's results; passes on the candidate.
    NewPassing,
    /// Absent from the base's results; fails on the candidate.
    NewFailing,
    /// Passed on the base, absent from the candidate's results.
    Missing,
    /// Failed or passed at random when run again: counts for nothing.
    Flaky,
}

impl TestChange {
    /// Classifies a test from its status on the base and on the candidate.
    pub fn classify(base: Option<TestStatus>, cand: Option<TestStatus>) -> Option<TestChange> {
        Some(match (base, cand) {
            (None, None) => return None,
            // A test that failed on the base and is no longer reported (a module-level error
            // that became the module's tests) lost nothing.
            (Some(b), None) if !b.is_ok() => return None,
            (Some(_), None) => TestChange::Missing,
            (None, Some(c)) if c.is_ok() => TestChange::NewPassing,
            (None, Some(_)) => TestChange::NewFailing,
            (Some(b), Some(c)) => match (b.is_ok(), c.is_ok()) {
                (true, true) => TestChange::StillPassing,
                (true, false) => TestChange::Broken,
                (false, true) => TestChange::Fixed,
                (false, false) => TestChange::StillFailing,
            },
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TestChange::Fixed => "fixed",
            TestChange::Broken => "broken",
            TestChange::StillFailing => "still failing",
            TestChange::StillPassing => "still passing",
            TestChange::NewPassing => "new, passing",
            TestChange::NewFailing => "new, failing",
            TestChange::Missing => "missing",
            TestChange::Flaky => "flaky",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_covers_every_pair() {
        use TestStatus::*;
        assert_eq!(TestChange::classify(Some(Fail), Some(Pass)), Some(TestChange::Fixed));
        assert_eq!(TestChange::classify(Some(Pass), Some(Error)), Some(TestChange::Broken));
        assert_eq!(TestChange::classify(Some(Pass), Some(Skip)), Some(TestChange::StillPassing));
        assert_eq!(TestChange::classify(Some(Error), Some(Fail)), Some(TestChange::StillFailing));
        assert_eq!(TestChange::classify(None, Some(XFail)), Some(TestChange::NewPassing));
        assert_eq!(TestChange::classify(None, Some(XPass)), Some(TestChange::NewFailing));
        assert_eq!(TestChange::classify(Some(Pass), None), Some(TestChange::Missing));
        assert_eq!(TestChange::classify(Some(Error), None), None);
        assert_eq!(TestChange::classify(None, None), None);
    }
}

/// What one probe did on one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub name: String,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The normalized output of each statement (one for a script or a command).
    pub statements: Vec<String>,
}

/// One test whose status differs in kind between the base and a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestDelta {
    pub name: String,
    pub change: TestChange,
}

/// One stage of a candidate compared with the same stage on the base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageComparison {
    pub stage: String,
    pub kind: StageKind,
    /// `None` when the base did not run the stage.
    pub base: Option<StageStatus>,
    pub candidate: StageStatus,
    /// Every test whose change is not "still passing", sorted by name.
    pub tests: Vec<TestDelta>,
    pub still_passing: usize,
    /// Whether both sides produced test results to compare.
    pub parsed: bool,
    /// Findings the candidate has and the base does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_findings: Vec<String>,
    /// The metric on the base and here, when both measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<(f64, f64)>,
    /// The metric is worse than the base's beyond the tolerance.
    #[serde(default)]
    pub metric_worse: bool,
}

impl StageComparison {
    pub fn with_change(&self, change: TestChange) -> impl Iterator<Item = &str> {
        self.tests.iter().filter(move |t| t.change == change).map(|t| t.name.as_str())
    }
}

/// An edit to a protected test that changes what it expects and keeps the check: the old and
/// the new assertion differ only in their literal values. The candidate says, in effect, that
/// the test pins the behaviour the task asks to change: evidence for that, not tampering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectationEdit {
    pub file: String,
    /// The test function the assertion is in.
    pub test: String,
    /// The line in the candidate's file.
    pub line: usize,
    pub before: String,
    pub after: String,
}

impl fmt::Display for ExpectationEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: `{}` became `{}`", self.file, self.line, self.before, self.after)
    }
}
