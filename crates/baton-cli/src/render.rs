//! The scoreboard, as text for people and as JSON for scripts.

use baton_core::{CandidateScore, Confidence, Decision, RunStatus, StageResult, Subject, plural};
use baton_store::{CandidateRow, RunRow};
use serde_json::{Value, json};

/// Everything `show` needs of one run.
pub(crate) struct RunView {
    pub(crate) run: RunRow,
    pub(crate) candidates: Vec<CandidateRow>,
    pub(crate) stages: Vec<(Subject, StageResult)>,
    /// Each candidate's last reported usage (reports are running totals).
    pub(crate) usage: std::collections::HashMap<baton_core::CandidateId, Usage>,
    /// The hidden tests the run took: (source, files, left out).
    pub(crate) hidden_tests: Option<(String, Vec<String>, Vec<String>)>,
    /// What of the user's repository changed while the run worked, and whose agents ran then.
    pub(crate) repository_changed: Option<(Vec<baton_core::CandidateId>, Vec<baton_core::RepoChangeFix>)>,
}

/// Model turns, tokens and cost an agent reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Usage {
    pub(crate) turns: u32,
    pub(crate) input_tokens: u64,
    pub(crate) output_tokens: u64,
    pub(crate) cost_usd: Option<f64>,
    /// The CLI's estimate at its vendor's list prices, for a model served elsewhere.
    pub(crate) cost_estimated: bool,
}

impl RunView {
    /// Everything `show` needs of a stored run.
    pub(crate) fn load(store: &baton_store::Store, run: RunRow) -> Result<RunView, baton_store::StoreError> {
        let mut usage = std::collections::HashMap::new();
        let mut hidden_tests = None;
        let mut repository_changed = None;
        for event in store.events(&run.id)? {
            match event.event {
                baton_core::RunEvent::AgentActivity {
                    candidate,
                    activity:
                        baton_core::AgentActivity::Usage {
                            turns,
                            input_tokens,
                            output_tokens,
                            cost_usd,
                            cost_estimated,
                        },
                } => {
                    usage.insert(
                        candidate,
                        Usage { turns, input_tokens, output_tokens, cost_usd, cost_estimated },
                    );
                }
                baton_core::RunEvent::HiddenTests { source, files, left_out } => {
                    hidden_tests = Some((source, files, left_out));
                }
                baton_core::RunEvent::RepositoryChanged { candidates, changes } => {
                    repository_changed = Some((candidates, changes));
                }
                _ => {}
            }
        }
        Ok(RunView {
            candidates: store.candidates(&run.id)?,
            stages: store.stage_results(&run.id)?,
            usage,
            hidden_tests,
            repository_changed,
            run,
        })
    }

    /// Distinct candidate trees that were verified.
    pub(crate) fn verifications(&self) -> usize {
        let mut subjects: Vec<&Subject> =
            self.stages.iter().map(|(s, _)| s).filter(|s| !matches!(s, Subject::Base)).collect();
        subjects.dedup();
        subjects.len()
    }

    /// Related test files the candidate's verification left out (over `verify.related_budget`).
    fn left_out(&self, c: &CandidateRow) -> Vec<&str> {
        let subject = Subject::Candidate(c.verified_as.clone().unwrap_or_else(|| c.id.clone()));
        self.stages
            .iter()
            .filter(|(s, _)| *s == subject)
            .flat_map(|(_, r)| r.left_out.iter().map(String::as_str))
            .collect()
    }

    fn score(&self, id: &baton_core::CandidateId) -> Option<&CandidateScore> {
        self.run.scoreboard.as_ref()?.candidates.iter().find(|c| &c.id == id)
    }
}

/// A table with columns sized to their content.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| s.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 1));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn text(v: &RunView) -> String {
    let r = &v.run;
    let mut out = format!("run {} ({})\n", r.id, r.status.as_str());
    out.push_str(&format!("  task: {}\n", r.task.title));
    out.push_str(&format!(
        "  base: {} ({}){}\n",
        &r.base_commit[..r.base_commit.len().min(10)],
        r.base_rev,
        r.target_branch.as_ref().map(|t| format!(", merges onto {t}")).unwrap_or_default()
    ));
    if let Some(base_summary) = base_summary(&v.stages) {
        out.push_str(&format!("  baseline: {base_summary}\n"));
    }
    if let Some((source, files, left_out)) = &v.hidden_tests {
        for line in crate::report::hidden_tests_text(source, files, left_out).lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if let Some((candidates, changes)) = &v.repository_changed {
        let who: Vec<String> = candidates.iter().map(ToString::to_string).collect();
        out.push_str(&format!(
            "  your repository changed while {}; baton restored nothing:\n",
            if who.is_empty() {
                "candidates were verified".to_owned()
            } else {
                format!("{} ran", who.join(", "))
            }
        ));
        for c in changes {
            out.push_str(&format!("    {}\n", c.change));
            for u in &c.undo {
                out.push_str(&format!("      undo: {u}\n"));
            }
        }
    }
    out.push('\n');

    let mut order: Vec<&CandidateRow> = v.candidates.iter().collect();
    order.sort_by_key(|c| v.score(&c.id).map(|s| s.rank).unwrap_or(usize::MAX));
    let mut rows = vec![vec![
        "rank".to_owned(),
        "cand".into(),
        "agent".into(),
        "strategy".into(),
        "outcome".into(),
        "change".into(),
        "tests".into(),
    ]];
    let show_usage = !v.usage.is_empty();
    if show_usage {
        rows[0].push("turns".into());
        rows[0].push("tokens".into());
        rows[0].push("cost".into());
    }
    // Why an agent failed can be a long error message: it goes on a line of its own below
    // the table, so that the table stays as wide as its short cells.
    let mut reasons = Vec::new();
    for c in &order {
        let s = v.score(&c.id);
        let rank = match s {
            Some(s) if s.eligible => s.rank.to_string(),
            Some(_) => "-".into(),
            None => "".into(),
        };
        let outcome = c.outcome.as_ref().map(short_outcome).unwrap_or_else(|| "not run".into());
        if let Some(reason) = c.outcome.as_ref().and_then(outcome_reason) {
            reasons.push(format!("  {} {outcome}: {reason}\n", c.id));
        }
        let change = match (c.files_changed, c.insertions, c.deletions) {
            (Some(f), Some(i), Some(d)) => format!("{f} {} +{i} -{d}", plural(f, "file", "files")),
            _ => "".into(),
        };
        let tests = s.map(tests_cell).unwrap_or_default();
        let mut row =
            vec![rank, c.id.to_string(), c.agent.clone(), c.strategy.clone(), outcome, change, tests];
        if show_usage {
            let u = v.usage.get(&c.id);
            row.push(u.filter(|u| u.turns > 0).map(|u| u.turns.to_string()).unwrap_or_default());
            row.push(u.map(|u| format!("{}", u.input_tokens + u.output_tokens)).unwrap_or_default());
            row.push(
                u.and_then(|u| {
                    u.cost_usd.map(|c| format!("{}${c:.2}", if u.cost_estimated { "~" } else { "" }))
                })
                .unwrap_or_default(),
            );
        }
        rows.push(row);
    }
    out.push_str(&table(&rows));
    for r in &reasons {
        out.push_str(r);
    }
    if v.usage.values().any(|u| u.cost_estimated && u.cost_usd.is_some()) {
        out.push_str(
            "  ~: the CLI's estimate at its vendor's list prices (the model is served at the agent's\n     base_url; `price` in its [[agent]] gives the real cost)\n",
        );
    }
    out.push('\n');

    match r.scoreboard.as_ref().map(|b| &b.decision) {
        Some(Decision::Winner { candidate, reason }) => {
            let agent =
                v.candidates.iter().find(|c| &c.id == candidate).map(|c| c.agent.as_str()).unwrap_or("");
            out.push_str(&format!("winner: {candidate} ({agent}): {reason}\n"));
            if let Some(d) = r.scoreboard.as_ref().and_then(|b| b.decided_by.as_ref())
                && d.confidence != Confidence::High
            {
                out.push_str(&format!(
                    "confidence: {} (decided by {}: {})\n",
                    d.confidence.as_str(),
                    d.evidence.replace('_', " "),
                    match d.confidence {
                        Confidence::Medium => {
                            "the task's examples, or what the others break, set it apart; no test that fails on the base did"
                        }
                        _ => "only its size or its own tests set it apart; read the change before merging",
                    }
                ));
            }
        }
        Some(Decision::NoWinner { reason }) => {
            out.push_str(&format!("no winner: {reason}\n"));
            if let Some(board) = r.scoreboard.as_ref().filter(|b| !b.shortlist.is_empty()) {
                let ids: Vec<String> = board.shortlist.iter().map(ToString::to_string).collect();
                out.push_str(&format!("shortlist: {}\n", ids.join(", ")));
                for s in &board.separations {
                    out.push_str(&format!("  {} or {}: {}\n", s.a, s.b, s.note));
                }
                out.push_str("`baton merge --candidate ID` lands the one you choose\n");
            }
        }
        None => out.push_str(&match r.status {
            RunStatus::Running => "not ranked yet: the run is still going\n".to_owned(),
            RunStatus::Cancelled => {
                "not ranked: the run was cancelled; every candidate's work is on its ref\n".to_owned()
            }
            RunStatus::Failed => {
                "not ranked: the run failed; every collected candidate's work is on its ref\n".to_owned()
            }
            RunStatus::Finished => "not ranked\n".to_owned(),
        }),
    }
    if let Some(board) = &r.scoreboard {
        for p in &board.setup_problems {
            out.push_str(&format!("setup: {p}\n"));
        }
        for p in &board.pinned {
            out.push_str(&format!(
                "pinned: {} broken the same way by {} of {} different changes, from {} {}: likely pinned to the behaviour the task asks to change, so {} for nothing: {}\n",
                plural_count(p.tests.len(), "test", "tests"),
                p.broken_by.len(),
                p.of,
                p.agents,
                plural(p.agents, "agent", "agents"),
                plural(p.tests.len(), "it counts", "they count"),
                list(&p.tests, 5)
            ));
            let by: Vec<String> = p.broken_by.iter().map(ToString::to_string).collect();
            out.push_str(&format!("  broken by {}\n", by.join(", ")));
            for e in &p.expectation_edits {
                out.push_str(&format!("  changed what it expects: {e}\n"));
            }
        }
    }
    if let Some(board) = r.scoreboard.as_ref().filter(|b| !b.matrix.is_empty()) {
        out.push_str("\ntests the candidates wrote, run on the base and on every candidate:\n");
        for row in &board.matrix {
            let authors: Vec<String> = row.authors.iter().map(ToString::to_string).collect();
            out.push_str(&format!("  by {} ({}):\n", authors.join(", "), row.files.join(", ")));
            let cells: Vec<String> = row
                .cells
                .iter()
                .map(|c| {
                    let mut cell = format!("{} {}/{}", c.subject, c.passing, c.passing + c.failing);
                    if c.fixed > 0 {
                        cell.push_str(&format!(" (+{})", c.fixed));
                    }
                    if c.broken > 0 {
                        cell.push_str(&format!(" (-{})", c.broken));
                    }
                    cell
                })
                .collect();
            out.push_str(&format!("    passing: {}\n", cells.join(", ")));
        }
    }
    if let Some(board) = &r.scoreboard {
        out.push_str("\nwhy:\n");
        for s in &board.candidates {
            let mut lines = s.explanation.iter();
            if let Some(first) = lines.next() {
                out.push_str(&format!("  {}: {first}\n", s.id));
            }
            for l in lines {
                out.push_str(&format!("  {}  {l}\n", " ".repeat(s.id.as_str().len())));
            }
            let left_out =
                v.candidates.iter().find(|c| c.id == s.id).map(|c| v.left_out(c)).unwrap_or_default();
            if !left_out.is_empty() {
                out.push_str(&format!(
                    "  {}  did not run {} {} related only to other candidates' changes (verify.related_budget): {}\n",
                    " ".repeat(s.id.as_str().len()),
                    left_out.len(),
                    plural(left_out.len(), "test file", "test files"),
                    left_out.join(", ")
                ));
            }
        }
    }
    if let Some(m) = &r.merged_commit {
        out.push_str(&format!("\nmerged as {}\n", &m[..m.len().min(10)]));
    } else if let Some(w) = &r.winner {
        out.push_str(&format!(
            "\nnext: `baton diff {} {w}` to read it, `baton merge {}` to land it\n",
            r.id, r.id
        ));
    }
    out
}

fn plural_count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// The first `max` items, then how many more.
fn list(items: &[String], max: usize) -> String {
    let shown: Vec<&str> = items.iter().take(max).map(String::as_str).collect();
    match items.len().saturating_sub(max) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// The outcome in a word or two, for the table.
fn short_outcome(o: &baton_core::AgentOutcome) -> String {
    match o {
        baton_core::AgentOutcome::Completed => "completed".into(),
        baton_core::AgentOutcome::Failed { .. } => "failed".into(),
        baton_core::AgentOutcome::TimedOut { kind } => format!("timed out ({kind})"),
        baton_core::AgentOutcome::Cancelled => "cancelled".into(),
        baton_core::AgentOutcome::SpawnFailed { .. } => "could not start".into(),
    }
}

/// Why, for the line below the table.
fn outcome_reason(o: &baton_core::AgentOutcome) -> Option<&str> {
    match o {
        baton_core::AgentOutcome::Failed { reason } => Some(reason),
        baton_core::AgentOutcome::SpawnFailed { message } => Some(message),
        baton_core::AgentOutcome::Completed
        | baton_core::AgentOutcome::TimedOut { .. }
        | baton_core::AgentOutcome::Cancelled => None,
    }
}

fn tests_cell(s: &CandidateScore) -> String {
    let mut parts = Vec::new();
    if !s.fixed.is_empty() {
        parts.push(format!("fixes {}", s.fixed.len()));
    }
    if !s.broken.is_empty() {
        parts.push(format!("breaks {}", s.broken.len()));
    }
    if s.new_passing + s.new_failing > 0 {
        parts.push(format!("{} new", s.new_passing + s.new_failing));
    }
    if let Some(g) = s.gates.iter().find(|g| !g.passed) {
        parts.push(format!("gate: {}", g.gate.as_str()));
    }
    parts.join(", ")
}

fn base_summary(stages: &[(Subject, StageResult)]) -> Option<String> {
    let base: Vec<&StageResult> =
        stages.iter().filter(|(s, _)| matches!(s, Subject::Base)).map(|(_, r)| r).collect();
    if base.is_empty() {
        return None;
    }
    Some(
        base.iter()
            .map(|r| crate::report::stage_summary(r).lines().next().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// What a candidate's score holds beyond its place: every piece of evidence (see
/// `CandidateScore`), as it is stored.
fn evidence_json(s: &CandidateScore) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut v {
        for key in ["id", "agent", "strategy", "rank", "eligible", "gates", "explanation", "files_changed"] {
            map.remove(key);
        }
    }
    v
}

/// The scoreboard as one JSON object, for scripts and CI.
pub(crate) fn json(v: &RunView) -> Value {
    let r = &v.run;
    let candidates: Vec<Value> = {
        let mut order: Vec<&CandidateRow> = v.candidates.iter().collect();
        order.sort_by_key(|c| v.score(&c.id).map(|s| s.rank).unwrap_or(usize::MAX));
        order
            .into_iter()
            .map(|c| {
                let s = v.score(&c.id);
                let mut row = json!({
                    "id": c.id,
                    "agent": c.agent,
                    "strategy": c.strategy,
                    "rank": s.map(|s| s.rank),
                    "eligible": s.map(|s| s.eligible).unwrap_or(false),
                    "gates": s.map(|s| serde_json::to_value(&s.gates).unwrap_or(Value::Null)),
                    "outcome": c.outcome,
                    "agent_millis": c.agent_millis,
                    "usage": v.usage.get(&c.id),
                    "commit": c.commit,
                    "ref": c.reference,
                    "workspace": c.workspace,
                    "files_changed": c.files_changed,
                    "insertions": c.insertions,
                    "deletions": c.deletions,
                    "verified_as": c.verified_as,
                    "evidence": s.map(evidence_json),
                    "explanation": s.map(|s| s.explanation.clone()).unwrap_or_default(),
                });
                row["left_out_tests"] = json!(v.left_out(c));
                row
            })
            .collect()
    };
    let mut doc = json!({
        "run": r.id,
        "status": r.status.as_str(),
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "task": r.task,
        "base": r.base_commit,
        "base_rev": r.base_rev,
        "target_branch": r.target_branch,
        "winner": r.winner,
        "decision": r.scoreboard.as_ref().map(|b| serde_json::to_value(&b.decision).unwrap_or(Value::Null)),
        "decided_by": r.scoreboard.as_ref().and_then(|b| b.decided_by.as_ref()),
        "shortlist": r.scoreboard.as_ref().map(|b| &b.shortlist),
        "separations": r.scoreboard.as_ref().map(|b| &b.separations),
        "pinned": r.scoreboard.as_ref().map(|b| &b.pinned),
        "setup_problems": r.scoreboard.as_ref().map(|b| &b.setup_problems),
        "verifications": v.verifications(),
        "hidden_tests": v.hidden_tests.as_ref().map(|(source, files, left_out)| json!({
            "source": source, "files": files, "left_out": left_out,
        })),
        "matrix": r.scoreboard.as_ref().map(|b| serde_json::to_value(&b.matrix).unwrap_or(Value::Null)),
        "merged_commit": r.merged_commit,
        "candidates": candidates,
    });
    if let Some((candidates, changes)) = &v.repository_changed {
        doc["repository_changed"] = json!({ "candidates": candidates, "changes": changes });
    }
    doc
}

#[cfg(test)]
mod tests {
    use baton_core::{AgentOutcome, CandidateId, RunId, RunStatus, Task};
    use baton_store::{CandidateRow, RunRow};

    use super::*;

    fn candidate(n: usize, outcome: AgentOutcome) -> CandidateRow {
        CandidateRow {
            id: CandidateId::nth(n),
            agent: format!("agent{n}"),
            strategy: "default".into(),
            workspace: None,
            outcome: Some(outcome),
            agent_millis: Some(1000),
            commit: None,
            reference: None,
            files_changed: Some(1),
            insertions: Some(1),
            deletions: Some(0),
            verified_as: None,
            rank: None,
        }
    }

    /// Issue 15, item 19: an agent's error text inside the outcome column made rows 250
    /// characters wide; turns were not shown beside tokens and cost.
    #[test]
    fn long_reasons_go_below_the_table_and_turns_beside_tokens() {
        let reason =
            format!("claude exited with code 1 before its final `result` event: {}", "x".repeat(200));
        let run = RunRow {
            id: RunId::new("r1").unwrap(),
            started_at: String::new(),
            finished_at: None,
            status: RunStatus::Finished,
            repo_root: String::new(),
            base_commit: "0123456789abcdef".into(),
            base_rev: "HEAD".into(),
            target_branch: None,
            target_commit: None,
            workspace_root: String::new(),
            task: Task::from_text("Fix it", "argument"),
            winner: None,
            scoreboard: None,
            owner_pid: None,
            owner_start: None,
            merged_commit: None,
        };
        let mut usage = std::collections::HashMap::new();
        usage.insert(
            CandidateId::nth(1),
            Usage {
                turns: 1,
                input_tokens: 10,
                output_tokens: 1,
                cost_usd: Some(0.19),
                cost_estimated: true,
            },
        );
        usage.insert(
            CandidateId::nth(2),
            Usage {
                turns: 7,
                input_tokens: 1000,
                output_tokens: 234,
                cost_usd: Some(0.5),
                cost_estimated: false,
            },
        );
        let view = RunView {
            run,
            candidates: vec![
                candidate(1, AgentOutcome::Failed { reason: reason.clone() }),
                candidate(2, AgentOutcome::Completed),
            ],
            stages: Vec::new(),
            usage,
            hidden_tests: None,
            repository_changed: None,
        };
        let shown = text(&view);
        let header = shown.lines().find(|l| l.contains("rank")).unwrap();
        assert!(header.split_whitespace().rev().take(3).eq(["cost", "tokens", "turns"]), "{shown}");
        let row = |id: &str| shown.lines().find(|l| l.split_whitespace().next() == Some(id)).unwrap();
        assert!(row("c2").split_whitespace().rev().take(3).eq(["$0.50", "1234", "7"]), "{shown}");
        assert!(row("c1").contains(" failed ") && !row("c1").contains("claude"), "{shown}");
        for line in shown.lines().filter(|l| !l.contains(&reason)) {
            assert!(line.chars().count() <= 100, "a line {} wide: {line}", line.chars().count());
        }
        assert!(shown.contains(&format!("\n  c1 failed: {reason}\n")), "{shown}");
        // Item 5: the CLI's list-price estimate for a model served elsewhere is marked.
        assert!(row("c1").trim_end().ends_with("~$0.19"), "{shown}");
        assert!(shown.contains("\n  ~: the CLI's estimate at its vendor's list prices"), "{shown}");
    }
}
