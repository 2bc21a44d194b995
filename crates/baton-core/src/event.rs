use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{AgentOutcome, CandidateId, RunId, Scoreboard, StageResult, Task};

/// What a verification runs on: the base commit or one candidate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Base,
    Candidate(CandidateId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Base => f.write_str("base"),
            Subject::Candidate(id) => write!(f, "{id}"),
        }
    }
}

impl Subject {
    /// Parses `base` or a candidate id, as written by [`Subject`]'s `Display`.
    pub fn parse(s: &str) -> Result<Self, crate::IdError> {
        if s == "base" { Ok(Subject::Base) } else { CandidateId::new(s).map(Subject::Candidate) }
    }
}

impl Serialize for Subject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Subject::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The phases of a run, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Provision,
    Agents,
    Verify,
    Rank,
}

/// Something an agent reported while it worked, read from its structured output and normalized
/// across agent CLIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentActivity {
    /// The agent's session began (its first event).
    Started { model: Option<String>, session: Option<String> },
    /// Text the model wrote.
    Message { text: String },
    /// A tool call: `detail` is the file it touches or the command it runs.
    ToolCall { tool: String, detail: String },
    /// The result of a tool call.
    ToolResult { tool: String, ok: bool, detail: String },
    /// Model turns, tokens and cost so far: totals for the whole session (each report replaces
    /// the last).
    Usage {
        #[serde(default)]
        turns: u32,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: Option<f64>,
        /// The cost is the CLI's own estimate at its vendor's list prices, for a model served
        /// elsewhere (a custom `base_url` without a `price`): not what it cost.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cost_estimated: bool,
    },
    /// The agent's own final report: its last message and how many model turns it took.
    Finished { text: String, turns: Option<u32> },
    /// An error the agent reported (an API error, a failed turn).
    Error { message: String },
    /// Something baton noticed about the agent: output it cannot read, a file edited outside
    /// the workspace, a process that would not exit.
    Warning { message: String },
}

/// Everything that happens in a run, in order, on one stream. Reporters (terminal lines,
/// `--json`, the store) consume it; nothing else is needed to render a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run: RunId,
        /// The commit every candidate starts from.
        base: String,
        /// What the user named it (`HEAD`, a branch, a commit).
        base_rev: String,
        /// The branch `merge` lands on, and where it pointed when the run started.
        target_branch: Option<String>,
        target_commit: Option<String>,
        repo_root: String,
        workspace_root: String,
        task: Task,
        candidates: Vec<PlannedCandidate>,
    },
    PhaseStarted {
        phase: Phase,
        /// How many units of work the phase has (workspaces, agents, verifications).
        total: usize,
    },
    WorkspaceReady {
        candidate: CandidateId,
        path: String,
        millis: u64,
    },
    AgentStarted {
        candidate: CandidateId,
    },
    /// A process started on behalf of the run (recorded so a later baton can end it if this
    /// one dies).
    ProcessStarted {
        pid: u32,
        start_ticks: Option<u64>,
        label: String,
    },
    AgentActivity {
        candidate: CandidateId,
        activity: AgentActivity,
    },
    AgentFinished {
        candidate: CandidateId,
        outcome: AgentOutcome,
        millis: u64,
    },
    Collected {
        candidate: CandidateId,
        commit: String,
        reference: String,
        files_changed: usize,
        insertions: usize,
        deletions: usize,
    },
    /// A candidate's tree equals another's: verified once, results shared.
    VerifyShared {
        candidate: CandidateId,
        same_as: CandidateId,
    },
    StageStarted {
        subject: Subject,
        stage: String,
    },
    StageFinished {
        subject: Subject,
        result: StageResult,
    },
    /// The probes ran on a subject.
    ProbesRun {
        subject: Subject,
        probes: Vec<crate::ProbeOutcome>,
    },
    /// Every stage of a subject is done.
    Verified {
        subject: Subject,
    },
    Ranked {
        scoreboard: Scoreboard,
    },
    Warning {
        message: String,
    },
    /// Something the user should know that is not a problem (what the run verifies with, where
    /// no stage is configured).
    Note {
        message: String,
    },
    /// The acceptance tests the agents never see, as the run takes them: `files` join every
    /// subject's verification; `left_out` are files the source holds that are not tests (a
    /// revision's or a patch's changes to the code), which would hand every candidate the fix.
    HiddenTests {
        source: String,
        files: Vec<String>,
        left_out: Vec<String>,
    },
    /// The user's repository changed while the run worked, and not by baton: the run stops
    /// and fails. `candidates` are those whose agents ran since the last check that found it
    /// unchanged (none: it changed while candidates were verified). baton undoes nothing.
    RepositoryChanged {
        candidates: Vec<CandidateId>,
        changes: Vec<crate::RepoChangeFix>,
    },
    /// The user asked to stop; `force` is true after the second request.
    Cancelling {
        force: bool,
    },
    RunFinished {
        run: RunId,
        status: RunStatus,
        winner: Option<CandidateId>,
        millis: u64,
    },
    /// A candidate of the run was merged onto a branch (after the run, by `baton merge`).
    Merged {
        candidate: CandidateId,
        target: String,
        /// Where the branch pointed before, and the new commit.
        previous: String,
        commit: String,
    },
}

/// A [`RunEvent`] with the moment it happened: what the store and every reporter receive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// RFC 3339, UTC, to the millisecond.
    pub at: String,
    #[serde(flatten)]
    pub event: RunEvent,
}

/// One planned candidate, as announced at the start of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCandidate {
    pub id: CandidateId,
    pub agent: String,
    pub strategy: String,
}

/// How a whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    /// Ranked; a winner may or may not have been chosen.
    Finished,
    Cancelled,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RunStatus::Running,
            "finished" => RunStatus::Finished,
            "cancelled" => RunStatus::Cancelled,
            "failed" => RunStatus::Failed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_tag() {
        let e = RunEvent::AgentStarted { candidate: CandidateId::nth(1) };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"event":"agent_started","candidate":"c1"}"#);
        let e = RunEvent::StageStarted { subject: Subject::Base, stage: "test".into() };
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, r#"{"event":"stage_started","subject":"base","stage":"test"}"#);
        assert_eq!(serde_json::from_str::<RunEvent>(&json).unwrap(), e);
    }
}
