use serde::{Deserialize, Serialize};

use crate::{CandidateId, RunId};

/// The requirements a candidate must meet before its evidence is weighed. Each one stands for
/// something that certainly disqualifies: what failed a gate can never be the change to merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateName {
    /// The agent finished its work (no crash, timeout or cancellation).
    AgentFinished,
    /// The candidate changed something that remains after normalising (not only whitespace,
    /// comments or layout; not only protected files; more than a script at the top where
    /// others change the project).
    NonEmpty,
    /// The candidate's change applies to the base.
    Applies,
    /// Setup and build stages passed.
    Builds,
    /// No longer checked (test results are evidence, not a gate); kept so that runs stored
    /// before can still be read.
    NoNewFailures,
    /// No tampering with tests or the evaluator was detected.
    NoTamper,
    /// No longer checked (what the examples do is evidence, not a gate); kept so that runs
    /// stored before can still be read.
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
    /// What ran and speaks for it: each a fact from running code that shows it does what the
    /// task asks (a test it fixes, an output the task shows, another candidate's test it
    /// passes, a crash gone).
    #[serde(default)]
    pub positive: Vec<String>,
    /// What ran and speaks against it: tests it breaks (other than pinned ones), new errors,
    /// stages worse than on the base, new findings.
    #[serde(default)]
    pub negative: Vec<String>,
    /// Of the tests it breaks, those that several independent changes break the same way:
    /// likely pinned to the behaviour the task asks to change, so they count for nothing.
    #[serde(default)]
    pub pinned: Vec<String>,
    /// Edits to protected tests that change an expected value and keep the check: evidence
    /// that the test pins the old behaviour, not a tamper flag.
    #[serde(default)]
    pub expectation_edits: Vec<String>,
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
    /// Without a winner: the different changes that nothing that ran separates from the best,
    /// best first, one candidate for each (empty when no candidate passed the gates or the
    /// setup verifies nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortlist: Vec<CandidateId>,
    /// For each pair on the shortlist, what tells them apart or what would.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub separations: Vec<Separation>,
    /// Tests that several independent changes break the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pinned: Vec<PinnedTests>,
    /// Why the verification cannot be evidence (a test runner that is missing, tests that never
    /// ran anywhere, tests that read the user's repository instead of the workspace). Any entry
    /// means no winner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_problems: Vec<String>,
}

/// Two candidates of a shortlist and what tells them apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Separation {
    pub a: CandidateId,
    pub b: CandidateId,
    /// What each has that the other lacks, or, where nothing that ran separates them, what
    /// would.
    pub note: String,
}

/// Tests that independent changes break the same way: evidence about the tests (they likely
/// assert the behaviour the task asks to change), not a verdict on the candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedTests {
    pub tests: Vec<String>,
    /// One candidate for each different change that breaks them.
    pub broken_by: Vec<CandidateId>,
    /// How many different eligible changes ran them.
    pub of: usize,
    /// How many different agents the breaking changes come from.
    pub agents: usize,
    /// Candidates that edited such a test's expected value (shown as `cand: file:line: edit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expectation_edits: Vec<String>,
}

/// What separated a winner from the closest different change, and how much that is worth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedBy {
    /// The kind of evidence: `tests` (tests that fail on the base, from the repository, the
    /// hidden tests or another candidate), `examples` (outputs the task shows, crashes gone),
    /// `failures` (what the others break or raise), `own_tests` (its agent's own tests or
    /// scripts), `size` (among changes with the same evidence), `gates` (the only change left).
    pub evidence: String,
    pub confidence: Confidence,
}

/// How strongly the deciding evidence speaks for the winner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// It passes tests that fail on the base, written by someone other than its agent (the
    /// repository, hidden tests, another candidate), that every different change fails; and
    /// nothing that ran speaks against it.
    High,
    /// Running code separated it from every different change, but not by such tests: the
    /// outputs the task shows, a crash gone, or what the others break.
    Medium,
    /// It has the same evidence as a different change and nothing against it; the smaller
    /// change was taken.
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
