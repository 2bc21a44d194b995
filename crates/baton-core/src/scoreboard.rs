use serde::{Deserialize, Serialize};

use crate::{CandidateId, RunId};

/// The requirements a candidate must meet before its evidence is weighed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateName {
    /// The agent finished its work (no crash, timeout or cancellation).
    AgentFinished,
    /// The candidate changed something.
    NonEmpty,
    /// The candidate's change applies to the base.
    Applies,
    /// Setup and build stages passed.
    Builds,
    /// No tests broke that the best candidate keeps passing.
    NoNewFailures,
    /// No tampering with tests or the evaluator was detected.
    NoTamper,
    /// Where some candidate changes what the task's examples do on the base, this one does too.
    ChangesExamples,
}

impl GateName {
    pub fn as_str(self) -> &'static str {
        match self {
            GateName::AgentFinished => "agent finished",
            GateName::NonEmpty => "changed something",
            GateName::Applies => "applies",
            GateName::Builds => "builds",
            GateName::NoNewFailures => "no new failures",
            GateName::NoTamper => "no tampering",
            GateName::ChangesExamples => "changes the examples",
        }
    }
}

/// One gate's verdict on one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    pub gate: GateName,
    pub passed: bool,
    pub detail: String,
}

/// A candidate's place and the evidence behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    pub id: CandidateId,
    pub agent: String,
    pub strategy: String,
    /// 1 is best. Candidates that fail a gate rank after all that pass.
    pub rank: usize,
    /// Every gate passed.
    pub eligible: bool,
    pub gates: Vec<Gate>,
    /// Tests that pass on the base and fail here.
    pub broken: Vec<String>,
    /// Tests that fail on the base and pass here.
    pub fixed: Vec<String>,
    /// New tests (absent from the base) that pass and fail here.
    pub new_passing: usize,
    pub new_failing: usize,
    /// Stages other than tests whose status got worse than on the base.
    pub regressed_stages: Vec<String>,
    /// Other candidates whose change is the same as this one's after normalization.
    pub agrees_with: Vec<CandidateId>,
    /// Of the lines this change adds or removes (normalized), how many some different change
    /// also adds or removes.
    #[serde(default)]
    pub shared_edits: usize,
    /// Other candidates whose test results are the same as this one's.
    pub same_results_as: Vec<CandidateId>,
    /// Probe statements whose output now matches what the task shows (the base's did not).
    #[serde(default)]
    pub probe_matches: usize,
    /// Probe statements whose output differs from the base's, without a new exception.
    #[serde(default)]
    pub probe_changed: usize,
    /// Probe statements that raise an exception where the base's did not.
    #[serde(default)]
    pub probe_new_errors: usize,
    /// Probe statements that fail on the base (an exception, not a missing import) and run to
    /// their end here.
    #[serde(default)]
    pub probe_fixed: usize,
    /// Other candidates whose probe outputs are the same as this one's (when they changed).
    #[serde(default)]
    pub same_behaviour_as: Vec<CandidateId>,
    /// Tests written by other candidates that fail on the base and pass here.
    #[serde(default)]
    pub matrix_fixed_others: usize,
    /// Tests written by this candidate that fail on the base and pass here.
    #[serde(default)]
    pub matrix_fixed_own: usize,
    /// Tests written by any candidate that pass on the base and fail here.
    #[serde(default)]
    pub matrix_broken: usize,
    /// Lint, type-check or security findings the base does not have.
    #[serde(default)]
    pub new_findings: Vec<String>,
    pub files_changed: usize,
    pub lines_changed: usize,
    /// Tokens the change removes or adds outside protected files (see
    /// `baton_rank::edit_tokens`): the size of the edit within its lines.
    #[serde(default)]
    pub tokens_changed: usize,
    /// Decision points (branches, loops, boolean operators) the change adds, and removes: its
    /// effect on cyclomatic complexity is the difference.
    #[serde(default)]
    pub complexity_added: usize,
    #[serde(default)]
    pub complexity_removed: usize,
    /// Tests or protected files the candidate edited (shown, never trusted).
    pub protected_edits: Vec<String>,
    /// Suspicious edits to tests or the evaluator, each naming file and line.
    pub tamper: Vec<String>,
    /// Why it placed where it did, one reason a line, strongest first.
    pub explanation: Vec<String>,
}

/// What baton concluded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Winner { candidate: CandidateId, reason: String },
    NoWinner { reason: String },
}

impl Decision {
    pub fn winner(&self) -> Option<&CandidateId> {
        match self {
            Decision::Winner { candidate, .. } => Some(candidate),
            Decision::NoWinner { .. } => None,
        }
    }
}

/// The ranked candidates of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scoreboard {
    pub run: RunId,
    pub decision: Decision,
    /// In rank order.
    pub candidates: Vec<CandidateScore>,
    /// The tests candidates wrote, run on the base and on every candidate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matrix: Vec<MatrixRow>,
    /// With a winner: the evidence that put it above the next candidate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
}

/// What separated a winner from the candidate below it, and how much that is worth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedBy {
    /// The ranking key, e.g. `gates`, `broken`, `fixed`, `example_changed`, `size`.
    pub evidence: String,
    pub confidence: Confidence,
}

/// How strongly the deciding evidence speaks for the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Running code separated them: gates, tests fixed or broken, the task's shown outputs,
    /// other candidates' tests, review stages.
    High,
    /// Behaviour, not correctness: its own tests, a changed example, agreement with others.
    Medium,
    /// Only the size of the change, textual agreement or the order of the plan.
    Low,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
        }
    }
}

/// One set of tests written by one or more candidates, run everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixRow {
    /// The candidates that wrote exactly these test files.
    pub authors: Vec<CandidateId>,
    pub files: Vec<String>,
    pub cells: Vec<MatrixCell>,
}

/// The tests of one row on one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixCell {
    pub subject: crate::Subject,
    pub passing: usize,
    pub failing: usize,
    /// Tests that fail with the base's code and pass here.
    pub fixed: usize,
    /// Tests that pass with the base's code and fail here.
    pub broken: usize,
}
