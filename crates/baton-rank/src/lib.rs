//! Ranking: from the evidence about each candidate to an ordered, explained scoreboard.
//!
//! Pure and deterministic: the same evidence always gives the same ranks and the same words.
//!
//! 1. **Gates.** A candidate is eligible when its agent finished, it changed something other
//!    than protected files, its change was collected, its setup and build stages pass, nothing
//!    in its diff weakens the tests or the runner (tamper flags), where some candidate changes
//!    what the task's examples do it does too, and it breaks no more of the base's passing tests
//!    than the best candidate still in.
//! 2. **Evidence**, in order, each deciding only when the ones before tie: fewer broken tests;
//!    more tests fixed (failing on the base, passing here); the tests other candidates wrote (the
//!    matrix); the task's examples (probes); fewer stages that got worse than on the base; fewer
//!    new findings and failing new tests; more examples and candidates' reproduction scripts that
//!    fail on the base and run to their end here (the reported crash gone, not replaced by another
//!    exception); more candidates with the same behaviour and test results; a smaller change (in
//!    lines, then in tokens); last, more candidates that made the same change, which is weak
//!    evidence where agents share a model and repeat its mistakes, then more of its edited lines
//!    found in other candidates' different changes.
//! 3. **Decision.** The first eligible candidate wins, unless it breaks tests that pass on the
//!    base and no different change breaks them alike (then none is fit to merge), or it ties
//!    with a different change. With none eligible there is no winner, and the scoreboard says
//!    which gate stopped each one. A winner carries what decided it and how much that is worth.

mod agreement;
mod syntax;

use std::cmp::Ordering;

use baton_core::{
    AgentOutcome, CandidateId, CandidateScore, Confidence, DecidedBy, Decision, Gate, GateName, MatrixRow,
    ProbeOutcome, RunId, Scoreboard, StageComparison, StageKind, StageStatus, Subject, TestChange, plural,
};

pub use agreement::{edit_complexity, edit_tokens, normalize_patch, normalize_patch_with};
pub use syntax::{canonical_source, understands};

/// What verification and collection learned about one candidate.
#[derive(Debug, Clone)]
pub struct CandidateEvidence {
    pub id: CandidateId,
    pub agent: String,
    pub strategy: String,
    /// `None` when the agent never ran (the run was cancelled first).
    pub outcome: Option<AgentOutcome>,
    /// Its work is on its ref.
    pub collected: bool,
    pub files_changed: usize,
    pub lines_changed: usize,
    /// Tokens removed or added outside protected files ([`edit_tokens`]).
    pub tokens_changed: usize,
    /// Decision points (branches, loops, boolean operators) the change adds and removes outside
    /// protected files ([`edit_complexity`]).
    pub complexity: (usize, usize),
    /// Changed files that are protected (tests, CI, baton's config): shown, not trusted.
    pub protected_edits: Vec<String>,
    /// Of the files changed outside protected paths, the Python scripts it added at the
    /// repository's top: an agent's reproduction of the problem, not a change to the project.
    pub scripts_added: usize,
    pub tamper: Vec<String>,
    /// Whether verification ran for it (directly or through an identical candidate).
    pub verified: bool,
    pub stages: Vec<StageComparison>,
    /// The normalized change to unprotected files (see [`normalize_patch`]).
    pub normalized_patch: String,
    /// The same with the files a parser reads taken as their token streams
    /// ([`normalize_patch_with`]); `None` when no changed file was read that way. Two changes are
    /// the same when either reading says so: the lines one adds and removes, wherever they
    /// stand, or the tokens of the files as laid out.
    pub parsed_patch: Option<String>,
    /// What the probes did on this candidate (empty when they did not run).
    pub probes: Vec<ProbeOutcome>,
    /// The candidate whose verification stands for this one's (itself, or the first with an
    /// identical tree); `None` when it was not verified.
    pub verified_as: Option<CandidateId>,
}

/// The probes of a run: what the task shows for each statement and what the base did.
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    pub names: Vec<String>,
    pub shown: Vec<Vec<Option<String>>>,
    /// Whether each probe is a script a candidate wrote rather than one of the task's examples
    /// (missing: an example). Scripts count where they fail on the base or on a candidate, not
    /// for changing what the task's examples do.
    pub from_candidate: Vec<bool>,
    pub base: Vec<ProbeOutcome>,
}

/// Derived numbers for one candidate.
#[derive(Debug, Clone, Default)]
struct Metrics {
    broken: Vec<String>,
    fixed: Vec<String>,
    new_passing: usize,
    new_failing: usize,
    regressed_stages: Vec<String>,
    builds: Option<String>,
    agrees_with: Vec<CandidateId>,
    shared_edits: usize,
    same_results_as: Vec<CandidateId>,
    results_signature: String,
    probe_matches: usize,
    probe_changed: usize,
    probe_new_errors: usize,
    probe_fixed: usize,
    probe_notes: Vec<String>,
    behaviour_signature: String,
    same_behaviour_as: Vec<CandidateId>,
    matrix_fixed_others: usize,
    matrix_fixed_own: usize,
    matrix_broken: usize,
    /// Some example that runs on the base behaves differently here.
    changes_a_working_example: bool,
    new_findings: Vec<String>,
}

/// Whether an example's output on the base shows behaviour: it printed something, and not an
/// error that only says the example cannot run here (a missing import, bad syntax).
fn shows_behaviour(output: &str) -> bool {
    !output.trim().is_empty() && !environment_error(output)
}

/// An example that fails on the base for want of an import, a file or valid syntax says nothing
/// about the behaviour the task is about (a candidate's script often reads files its author
/// added). A syntax error in code the program compiled as it ran (`eval`, a parser of the
/// project's own: `(<string>, line 1)`) is the program's failure, not the example's.
fn environment_error(output: &str) -> bool {
    let last = output.lines().last().unwrap_or("");
    if ["SyntaxError", "IndentationError"].iter().any(|p| last.starts_with(p)) {
        return !last.contains("(<string>, line");
    }
    ["ModuleNotFoundError", "ImportError", "NameError", "FileNotFoundError", "sh: "]
        .iter()
        .any(|p| last.starts_with(p))
}

/// What the tests other candidates wrote say about `e`. A test counts as its own when one of
/// its authors has the same code (the same verified tree).
fn matrix_metrics(m: &mut Metrics, e: &CandidateEvidence, all: &[CandidateEvidence], rows: &[MatrixRow]) {
    let Some(subject) = &e.verified_as else { return };
    for row in rows {
        let Some(cell) = row.cells.iter().find(|c| c.subject == Subject::Candidate(subject.clone())) else {
            continue;
        };
        let own = row
            .authors
            .iter()
            .any(|a| a == &e.id || all.iter().any(|o| &o.id == a && o.verified_as.as_ref() == Some(subject)));
        if own {
            m.matrix_fixed_own += cell.fixed;
        } else {
            m.matrix_fixed_others += cell.fixed;
        }
        m.matrix_broken += cell.broken;
    }
}

/// Whether a probe output is an exception report (`KeyError: 'x'`, `Error: ...`).
fn is_error(output: &str) -> bool {
    let last = output.lines().last().unwrap_or("");
    let head = last.split(':').next().unwrap_or("");
    !head.is_empty()
        && !head.contains(' ')
        && (head.ends_with("Error")
            || head.ends_with("Exception")
            || head.ends_with("Interrupt")
            || head == "Error")
}

fn probe_metrics(m: &mut Metrics, e: &CandidateEvidence, ctx: &ProbeContext) {
    for (p, cand) in e.probes.iter().enumerate() {
        let (Some(base), Some(name)) = (ctx.base.get(p), ctx.names.get(p)) else { continue };
        let script = ctx.from_candidate.get(p).copied().unwrap_or(false);
        // A probe stopped at its time limit, here or on the base, says how fast this machine
        // was as much as how the code behaves: it counts for nothing, and its cut output does
        // not enter the behaviour this candidate shares with others.
        if cand.timed_out || base.timed_out {
            m.behaviour_signature.push_str("<timed out>\u{1f}");
            continue;
        }
        m.behaviour_signature.push_str(&format!("{}\u{1f}", cand.statements.join("\u{1e}")));
        for (s, c) in cand.statements.iter().enumerate() {
            let b = base.statements.get(s).map(String::as_str).unwrap_or("");
            if c == b {
                continue;
            }
            let label =
                if cand.statements.len() > 1 { format!("{name}, statement {}", s + 1) } else { name.clone() };
            // Issues report crashes: what fails on the base for a reason of its own (not a
            // missing import) and runs to its end here is the crash gone. Another exception in
            // its place is not.
            let fixed = is_error(b) && !environment_error(b) && !is_error(c);
            let new_error = is_error(c) && !is_error(b);
            if fixed {
                m.probe_fixed += 1;
                m.probe_notes
                    .push(format!("{label}: runs to its end; fails on the base with {}", last_line(b)));
            }
            if new_error {
                m.probe_new_errors += 1;
                m.probe_notes.push(format!("{label}: now fails with {}", last_line(c)));
            }
            // A candidate's script is not one of the task's examples: only a crash gone or a new
            // one counts.
            if script {
                continue;
            }
            // A name the candidate's code lacks, an import it broke (NameError, ImportError,
            // SyntaxError, ...) is a mistake of its own, never the behaviour a task asks for:
            // it counts against the candidate (a new error), not as a change of behaviour.
            if shows_behaviour(b) && !environment_error(c) {
                m.changes_a_working_example = true;
            }
            if new_error {
                continue;
            }
            let shown = ctx.shown.get(p).and_then(|v| v.get(s)).and_then(Option::as_ref);
            if shown.is_some_and(|e| e == c) {
                m.probe_matches += 1;
                m.probe_changed += 1;
                m.probe_notes.push(format!("{label}: output now matches what the task shows"));
            } else {
                m.probe_changed += 1;
                if !fixed {
                    m.probe_notes.push(format!("{label}: output differs from the base's"));
                }
            }
        }
    }
}

/// The last line of an output, cut to 100 characters.
fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or("").chars().take(100).collect()
}

fn metrics(e: &CandidateEvidence) -> Metrics {
    let mut m = Metrics::default();
    for s in &e.stages {
        for t in &s.tests {
            match t.change {
                TestChange::Broken => m.broken.push(t.name.clone()),
                TestChange::Missing => m.broken.push(format!("{} (no longer runs)", t.name)),
                TestChange::Fixed => m.fixed.push(t.name.clone()),
                TestChange::NewPassing => m.new_passing += 1,
                TestChange::NewFailing => m.new_failing += 1,
                TestChange::StillFailing | TestChange::StillPassing | TestChange::Flaky => {}
            }
        }
        let base_ok = s.base.as_ref().is_some_and(StageStatus::is_passed);
        let cand_ok = s.candidate.is_passed();
        // A stage the candidate skipped (no related tests, or after a failed build, which the
        // build gate judges) is no evidence either way.
        let cand_skipped = matches!(s.candidate, StageStatus::Skipped { .. });
        if matches!(s.kind, StageKind::Setup | StageKind::Build)
            && !cand_ok
            && m.builds.is_none()
            && !cand_skipped
        {
            m.builds = Some(format!("{} stage `{}` {}", s.kind.as_str(), s.stage, s.candidate));
        }
        m.new_findings.extend(s.new_findings.iter().map(|f| format!("{}: {f}", s.stage)));
        if s.metric_worse
            && let Some((b, c)) = s.metric
        {
            let pct = if b == 0.0 { f64::INFINITY } else { 100.0 * (c - b).abs() / b.abs() };
            m.regressed_stages.push(format!("{} ({pct:.0}% worse: {c} against {b} on the base)", s.stage));
        }
        // Test stages with parsed results are judged test by test; others by their status.
        let judged_by_tests = s.kind == StageKind::Test && s.parsed;
        if !judged_by_tests && base_ok && !cand_ok && !cand_skipped {
            m.regressed_stages.push(format!("{} ({})", s.stage, s.candidate));
        }
        m.results_signature.push_str(&format!("{}={};", s.stage, status_key(&s.candidate)));
        for t in &s.tests {
            m.results_signature.push_str(&format!("{}:{:?};", t.name, t.change));
        }
    }
    m
}

fn status_key(s: &StageStatus) -> &'static str {
    match s {
        StageStatus::Passed => "pass",
        StageStatus::Failed { .. } => "fail",
        StageStatus::TimedOut => "timeout",
        StageStatus::Skipped { .. } => "skip",
        StageStatus::Cancelled => "cancel",
        StageStatus::SpawnFailed { .. } => "spawn",
    }
}

/// Ranks the candidates of `run`. `candidates` is in planning order, which breaks final ties.
pub fn rank(
    run: &RunId,
    probes: &ProbeContext,
    matrix: &[MatrixRow],
    candidates: &[CandidateEvidence],
) -> Scoreboard {
    let mut ms: Vec<Metrics> = candidates.iter().map(metrics).collect();
    for (m, e) in ms.iter_mut().zip(candidates) {
        probe_metrics(m, e, probes);
        matrix_metrics(m, e, candidates, matrix);
    }

    // Agreement: among candidates whose agent finished and whose change was collected.
    let edits: Vec<std::collections::HashSet<(&str, &str)>> =
        candidates.iter().map(|e| edited_lines(&e.normalized_patch)).collect();
    for i in 0..candidates.len() {
        // Lines this change shares with a different change: the same edit inside a larger one.
        let mut shared: std::collections::HashSet<&(&str, &str)> = std::collections::HashSet::new();
        for j in 0..candidates.len() {
            if i == j || !usable(&candidates[j]) || !usable(&candidates[i]) {
                continue;
            }
            let (a, b) = (&candidates[i], &candidates[j]);
            if same_change(a, b) {
                ms[i].agrees_with.push(b.id.clone());
            } else {
                shared.extend(edits[i].intersection(&edits[j]));
                if a.verified
                    && b.verified
                    && results_differ_from_base(a)
                    && ms[i].results_signature == ms[j].results_signature
                {
                    ms[i].same_results_as.push(b.id.clone());
                }
            }
            if ms[i].probe_changed > 0 && ms[i].behaviour_signature == ms[j].behaviour_signature {
                ms[i].same_behaviour_as.push(b.id.clone());
            }
        }
        ms[i].shared_edits = shared.len();
    }

    // Gates, in order; the relative gates need to know about the rest.
    let mut gates: Vec<Vec<Gate>> = candidates.iter().zip(&ms).map(|(e, m)| absolute_gates(e, m)).collect();

    // A candidate whose only change is a script it added at the top (its reproduction of the
    // problem, left behind) has not changed the project; where another candidate has, it is out.
    let changes_project = |i: usize| {
        let e = &candidates[i];
        e.files_changed.saturating_sub(e.protected_edits.len()) > e.scripts_added
    };
    if (0..candidates.len()).any(|i| usable(&candidates[i]) && changes_project(i)) {
        for (i, g) in gates.iter_mut().enumerate() {
            if changes_project(i) {
                continue;
            }
            if let Some(gate) = g.iter_mut().find(|g| g.gate == GateName::NonEmpty && g.passed) {
                gate.passed = false;
                gate.detail = format!(
                    "it only added {} at the repository's top (a reproduction, it seems), while other candidates change the project",
                    plural(candidates[i].scripts_added, "a script", "scripts")
                );
            }
        }
    }

    // The examples the task shows that run on the base. Where some candidate changes what one
    // of them does, a candidate that leaves them all as they were has not shown that it
    // addresses the task; the tests that candidates break are then weighed among those that do
    // (a test that pins the behaviour the task asks to change breaks with every fix).
    let working_examples = probes.base.iter().enumerate().any(|(p, b)| {
        !probes.from_candidate.get(p).copied().unwrap_or(false)
            && !b.timed_out
            && b.statements.iter().any(|s| shows_behaviour(s))
    });
    let changers = (0..candidates.len())
        .filter(|&i| gates[i].iter().all(|g| g.passed) && ms[i].changes_a_working_example)
        .count();
    if working_examples && changers > 0 {
        for (g, m) in gates.iter_mut().zip(&ms) {
            if g.iter().all(|g| g.passed) {
                let changes = m.changes_a_working_example;
                g.push(Gate {
                    gate: GateName::ChangesExamples,
                    passed: changes,
                    detail: if changes {
                        "changes what the task's examples do on the base".into()
                    } else {
                        format!(
                            "leaves what the task's examples do as it is on the base; {changers} {} change it",
                            plural(changers, "candidate does", "candidates")
                        )
                    },
                });
            }
        }
    }
    let min_broken =
        gates.iter().zip(&ms).filter(|(g, _)| g.iter().all(|g| g.passed)).map(|(_, m)| m.broken.len()).min();
    for (g, m) in gates.iter_mut().zip(&ms) {
        if g.iter().all(|g| g.passed) {
            let best = min_broken.unwrap_or(0);
            let n = m.broken.len();
            g.push(Gate {
                gate: GateName::NoNewFailures,
                passed: n <= best,
                detail: if n == 0 {
                    "breaks no test that passes on the base".into()
                } else if n <= best {
                    format!(
                        "breaks {n} {} that {} on the base, as every candidate does",
                        plural(n, "test", "tests"),
                        plural(n, "passes", "pass")
                    )
                } else {
                    format!(
                        "breaks {n} {} that {} on the base; the best candidate breaks {best}",
                        plural(n, "test", "tests"),
                        plural(n, "passes", "pass")
                    )
                },
            });
        }
    }

    let mut order: Vec<usize> = (0..candidates.len()).collect();
    let eligible = |i: usize| gates[i].iter().all(|g| g.passed);
    // Eligible first; among the rest, those that got further through the gates first.
    let progress = |i: usize| gates[i].iter().take_while(|g| g.passed).count();
    order.sort_by(|&a, &b| {
        eligible(b)
            .cmp(&eligible(a))
            .then(progress(b).cmp(&progress(a)))
            .then_with(|| compare(&candidates[a], &ms[a], &candidates[b], &ms[b]).0)
            .then(a.cmp(&b))
    });

    let mut scores = Vec::with_capacity(order.len());
    for (pos, &i) in order.iter().enumerate() {
        let e = &candidates[i];
        let m = &ms[i];
        let mut explanation = Vec::new();
        if let Some(failed) = gates[i].iter().find(|g| !g.passed) {
            explanation.push(format!("not eligible, failed \"{}\": {}", failed.gate.as_str(), failed.detail));
        } else if pos > 0 {
            let above = order[pos - 1];
            let (_, why, _) = compare(&candidates[above], &ms[above], e, m);
            explanation.push(format!("below {}: {why}", candidates[above].id));
        }
        explanation.extend(evidence_lines(e, m));
        scores.push(CandidateScore {
            id: e.id.clone(),
            agent: e.agent.clone(),
            strategy: e.strategy.clone(),
            rank: pos + 1,
            eligible: eligible(i),
            gates: gates[i].clone(),
            broken: m.broken.clone(),
            fixed: m.fixed.clone(),
            new_passing: m.new_passing,
            new_failing: m.new_failing,
            regressed_stages: m.regressed_stages.clone(),
            agrees_with: m.agrees_with.clone(),
            shared_edits: m.shared_edits,
            same_results_as: m.same_results_as.clone(),
            probe_matches: m.probe_matches,
            probe_changed: m.probe_changed,
            probe_new_errors: m.probe_new_errors,
            probe_fixed: m.probe_fixed,
            same_behaviour_as: m.same_behaviour_as.clone(),
            matrix_fixed_others: m.matrix_fixed_others,
            matrix_fixed_own: m.matrix_fixed_own,
            matrix_broken: m.matrix_broken,
            new_findings: m.new_findings.clone(),
            files_changed: e.files_changed,
            lines_changed: e.lines_changed,
            tokens_changed: e.tokens_changed,
            complexity_added: e.complexity.0,
            complexity_removed: e.complexity.1,
            protected_edits: e.protected_edits.clone(),
            tamper: e.tamper.clone(),
            explanation,
        });
    }

    // If none of the eligible candidates changes what any of the task's examples does, none
    // demonstrably addressed the task.
    let examples_unchanged = working_examples
        && order.iter().filter(|&&i| eligible(i)).all(|&i| !ms[i].changes_a_working_example)
        && order.first().is_some_and(|&i| eligible(i));
    // Two different changes that no evidence at all separates (not even their size).
    let tie = match order.as_slice() {
        [a, b, ..] if eligible(*a) && eligible(*b) => {
            compare(&candidates[*a], &ms[*a], &candidates[*b], &ms[*b]).0 == Ordering::Equal
                && !ms[*a].agrees_with.contains(&candidates[*b].id)
        }
        _ => false,
    };
    // Tests the best candidate breaks that a different change, making the examples behave the
    // same, breaks alike: independent fixes that agree on the new behaviour and on what it
    // breaks point to tests that assert the old behaviour, not to a mistake.
    let pinned = order.first().and_then(|&top| {
        let mt = &ms[top];
        if mt.broken.is_empty() || !mt.changes_a_working_example {
            return None;
        }
        order[1..]
            .iter()
            .find(|&&i| {
                eligible(i)
                    && !mt.agrees_with.contains(&candidates[i].id)
                    && ms[i].changes_a_working_example
                    && ms[i].behaviour_signature == mt.behaviour_signature
                    && ms[i].broken == mt.broken
            })
            .map(|&i| candidates[i].id.clone())
    });
    let decision = match scores.first() {
        Some(top) if top.eligible && tie => Decision::NoWinner {
            reason: format!(
                "{} and {} tie on all the evidence with different changes; a human must choose",
                top.id, scores[1].id
            ),
        },
        Some(_) if examples_unchanged => Decision::NoWinner {
            reason: "no eligible candidate changes what the task's examples do on the base".into(),
        },
        Some(top) if top.eligible && !top.broken.is_empty() && pinned.is_none() => Decision::NoWinner {
            reason: format!(
                "the best candidate, {}, breaks {} {} that {} on the base",
                top.id,
                top.broken.len(),
                plural(top.broken.len(), "test", "tests"),
                plural(top.broken.len(), "passes", "pass")
            ),
        },
        Some(top) if top.eligible => {
            let mut reason = winner_reason(top, scores.get(1));
            if let Some(other) = &pinned {
                reason.push_str(&format!(
                    "; it breaks {} that {} on the base, as {other} does, which changes the task's examples \
                     the same way with a different change: {} likely {} the behaviour the task asks to change",
                    plural(top.broken.len(), "a test", "tests"),
                    plural(top.broken.len(), "passes", "pass"),
                    plural(top.broken.len(), "it", "they"),
                    plural(top.broken.len(), "checks", "check"),
                ));
            }
            Decision::Winner { candidate: top.id.clone(), reason }
        }
        Some(_) => Decision::NoWinner { reason: no_winner_reason(&scores) },
        None => Decision::NoWinner { reason: "the run has no candidates".into() },
    };
    // Against the best eligible candidate with a different change: the same change twice
    // needs no deciding.
    let decided_by = decision.winner().map(|_| {
        let top = order[0];
        let rival = order[1..]
            .iter()
            .copied()
            .find(|&i| eligible(i) && !ms[top].agrees_with.contains(&candidates[i].id));
        match rival {
            Some(b) => {
                let (_, _, (name, confidence)) = compare(&candidates[top], &ms[top], &candidates[b], &ms[b]);
                DecidedBy { evidence: name.to_owned(), confidence }
            }
            None => DecidedBy { evidence: "gates".into(), confidence: Confidence::High },
        }
    });
    Scoreboard { run: run.clone(), decision, candidates: scores, matrix: matrix.to_vec(), decided_by }
}

/// The gates in the order they are checked.
const GATE_ORDER: [GateName; 7] = [
    GateName::AgentFinished,
    GateName::Applies,
    GateName::NonEmpty,
    GateName::Builds,
    GateName::NoTamper,
    GateName::ChangesExamples,
    GateName::NoNewFailures,
];

/// Whether any test or stage came out differently than on the base: only then does having the
/// same results as another candidate say anything.
fn results_differ_from_base(e: &CandidateEvidence) -> bool {
    e.stages.iter().any(|s| {
        s.base.as_ref() != Some(&s.candidate)
            || s.tests.iter().any(|t| {
                !matches!(t.change, TestChange::StillFailing | TestChange::StillPassing | TestChange::Flaky)
            })
    })
}

/// The lines a normalized patch ([`normalize_patch`]) adds or removes, each with its file.
fn edited_lines(normalized: &str) -> std::collections::HashSet<(&str, &str)> {
    let mut out = std::collections::HashSet::new();
    let mut path = "";
    for line in normalized.lines() {
        if line.starts_with(['+', '-']) {
            out.insert((path, line));
        } else {
            path = line;
        }
    }
    out
}

fn same_change(a: &CandidateEvidence, b: &CandidateEvidence) -> bool {
    (!a.normalized_patch.is_empty() && a.normalized_patch == b.normalized_patch)
        || a.parsed_patch.as_ref().is_some_and(|p| !p.is_empty() && Some(p) == b.parsed_patch.as_ref())
}

fn usable(e: &CandidateEvidence) -> bool {
    e.collected && e.outcome.as_ref().is_some_and(AgentOutcome::is_completed)
}

fn absolute_gates(e: &CandidateEvidence, m: &Metrics) -> Vec<Gate> {
    let mut gates = Vec::new();
    let finished = e.outcome.as_ref().is_some_and(AgentOutcome::is_completed);
    gates.push(Gate {
        gate: GateName::AgentFinished,
        passed: finished,
        detail: match &e.outcome {
            Some(o) => o.to_string(),
            None => "never ran".into(),
        },
    });
    if !finished {
        return gates;
    }
    gates.push(Gate {
        gate: GateName::Applies,
        passed: e.collected,
        detail: if e.collected {
            "its change is on its ref".into()
        } else {
            "its change could not be collected".into()
        },
    });
    if !e.collected {
        return gates;
    }
    let effective = e.files_changed.saturating_sub(e.protected_edits.len());
    gates.push(Gate {
        gate: GateName::NonEmpty,
        passed: effective > 0,
        detail: if effective > 0 {
            format!("{effective} {} changed outside protected paths", plural(effective, "file", "files"))
        } else if e.files_changed > 0 {
            "it changed only protected files (tests, CI or baton configuration)".into()
        } else {
            "it changed nothing".into()
        },
    });
    if effective == 0 {
        return gates;
    }
    gates.push(Gate {
        gate: GateName::Builds,
        passed: m.builds.is_none(),
        detail: m.builds.clone().unwrap_or_else(|| "setup and build stages pass".into()),
    });
    if m.builds.is_some() {
        return gates;
    }
    gates.push(Gate {
        gate: GateName::NoTamper,
        passed: e.tamper.is_empty(),
        detail: match e.tamper.len() {
            0 => "no edit weakens the tests or the test runner".into(),
            n => format!(
                "{n} suspicious {}, first {} (a human must decide)",
                plural(n, "edit", "edits"),
                e.tamper[0]
            ),
        },
    });
    gates
}

/// What decided between two candidates: a ranking key's name and what a decision on it is worth.
type Key = (&'static str, Confidence);

/// Two candidates with equal evidence, placed by the order of the plan.
const PLAN_ORDER: Key = ("plan_order", Confidence::Low);

/// Orders two eligible (or two ineligible) candidates; `Less` means `a` ranks higher. The
/// string says why the lower one is lower, for its explanation; the key is the one that decided.
fn compare(
    a: &CandidateEvidence,
    ma: &Metrics,
    b: &CandidateEvidence,
    mb: &Metrics,
) -> (Ordering, String, Key) {
    let n = |v: usize, one: &str, many: &str| format!("{v} {}", plural(v, one, many));
    // Keys on a count, with the reason the lower candidate is lower: fewer is better, or more is.
    let fewer_wins =
        |what: &str, x: usize, y: usize| (x.cmp(&y), format!("{what} ({} against {})", x.max(y), x.min(y)));
    let more_wins =
        |what: &str, x: usize, y: usize| (y.cmp(&x), format!("{what} ({} against {})", x.min(y), x.max(y)));
    let changed = |m: &Metrics| usize::from(m.probe_changed > 0);
    use Confidence::{High, Low, Medium};
    let keys: [(Key, (Ordering, String)); 18] = [
        (("broken", High), fewer_wins("breaks more tests", ma.broken.len(), mb.broken.len())),
        (("fixed", High), more_wins("fixes fewer tests", ma.fixed.len(), mb.fixed.len())),
        (
            ("others_tests", High),
            more_wins(
                "passes fewer of the tests other candidates wrote that fail on the base",
                ma.matrix_fixed_others,
                mb.matrix_fixed_others,
            ),
        ),
        (
            ("shown_output", High),
            more_wins("matches fewer of the outputs the task shows", ma.probe_matches, mb.probe_matches),
        ),
        (
            ("example_errors", High),
            (
                ma.probe_new_errors.cmp(&mb.probe_new_errors),
                format!(
                    "raises new errors in more of the examples and candidates' scripts ({})",
                    ma.probe_new_errors.max(mb.probe_new_errors)
                ),
            ),
        ),
        (
            ("matrix_broken", High),
            (
                ma.matrix_broken.cmp(&mb.matrix_broken),
                format!(
                    "fails more of the candidates' tests that pass on the base ({})",
                    ma.matrix_broken.max(mb.matrix_broken)
                ),
            ),
        ),
        (
            ("stages", High),
            (
                ma.regressed_stages.len().cmp(&mb.regressed_stages.len()),
                format!(
                    "has more stages that got worse than on the base ({})",
                    n(ma.regressed_stages.len().max(mb.regressed_stages.len()), "stage", "stages")
                ),
            ),
        ),
        (
            ("findings", High),
            fewer_wins("adds more lint or security findings", ma.new_findings.len(), mb.new_findings.len()),
        ),
        (("new_failing", High), (ma.new_failing.cmp(&mb.new_failing), "has more failing new tests".into())),
        (
            ("example_fixed", Medium),
            more_wins(
                "fixes fewer of the examples and candidates' scripts that fail on the base",
                ma.probe_fixed,
                mb.probe_fixed,
            ),
        ),
        (
            ("own_tests", Medium),
            (
                mb.matrix_fixed_own.cmp(&ma.matrix_fixed_own),
                "passes fewer of its own new tests that fail on the base".into(),
            ),
        ),
        (
            ("example_changed", Medium),
            (
                changed(mb).cmp(&changed(ma)),
                "leaves the behaviour of the task's examples as it is on the base".into(),
            ),
        ),
        (
            ("same_behaviour", Medium),
            (
                mb.same_behaviour_as.len().cmp(&ma.same_behaviour_as.len()),
                "has fewer other candidates whose examples behave the same".into(),
            ),
        ),
        (
            ("same_results", Medium),
            (
                mb.same_results_as.len().cmp(&ma.same_results_as.len()),
                "has fewer other candidates with the same test results".into(),
            ),
        ),
        (
            ("size", Low),
            (
                a.lines_changed.cmp(&b.lines_changed),
                format!(
                    "makes a larger change ({} against {})",
                    n(a.lines_changed.max(b.lines_changed), "line", "lines"),
                    a.lines_changed.min(b.lines_changed)
                ),
            ),
        ),
        // Equal line counts hide edits of different size: `x` for `y` against a rewritten line.
        (
            ("tokens", Low),
            (
                a.tokens_changed.cmp(&b.tokens_changed),
                format!(
                    "makes a larger change within as many lines ({} against {})",
                    n(a.tokens_changed.max(b.tokens_changed), "token", "tokens"),
                    a.tokens_changed.min(b.tokens_changed)
                ),
            ),
        ),
        // Identical text is the weakest agreement: agents that share a model repeat each other's
        // mistakes, so it only breaks ties.
        (
            ("same_change", Low),
            (
                mb.agrees_with.len().cmp(&ma.agrees_with.len()),
                "has fewer other candidates that made the same change".into(),
            ),
        ),
        // Weaker still: the same edit inside different changes. Only two changes of one size
        // get this far.
        (
            ("shared_edits", Low),
            more_wins(
                "shares fewer of its edited lines with other candidates' changes",
                ma.shared_edits,
                mb.shared_edits,
            ),
        ),
    ];
    for (key, (ord, why)) in keys {
        if ord != Ordering::Equal {
            return (ord, why, key);
        }
    }
    (Ordering::Equal, "has equal evidence and comes later in the plan".into(), PLAN_ORDER)
}

fn evidence_lines(e: &CandidateEvidence, m: &Metrics) -> Vec<String> {
    let mut out = Vec::new();
    let list = |v: &[String]| {
        let shown: Vec<&str> = v.iter().take(3).map(String::as_str).collect();
        let more = v.len().saturating_sub(3);
        if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
    };
    if !m.fixed.is_empty() {
        out.push(format!(
            "fixes {} {} failing on the base: {}",
            m.fixed.len(),
            plural(m.fixed.len(), "test", "tests"),
            list(&m.fixed)
        ));
    }
    if !m.broken.is_empty() {
        out.push(format!(
            "breaks {} {} passing on the base: {}",
            m.broken.len(),
            plural(m.broken.len(), "test", "tests"),
            list(&m.broken)
        ));
    }
    if !m.regressed_stages.is_empty() {
        out.push(format!("worse than the base in: {}", m.regressed_stages.join(", ")));
    }
    if !m.new_findings.is_empty() {
        let n = m.new_findings.len();
        out.push(format!("adds {n} {}: {}", plural(n, "finding", "findings"), list(&m.new_findings)));
    }
    if m.matrix_fixed_others > 0 {
        out.push(format!(
            "passes {} {} other candidates wrote that {} on the base",
            m.matrix_fixed_others,
            plural(m.matrix_fixed_others, "test", "tests"),
            plural(m.matrix_fixed_others, "fails", "fail")
        ));
    }
    if m.matrix_fixed_own > 0 {
        out.push(format!(
            "passes {} of its own new {} that fail on the base",
            m.matrix_fixed_own,
            plural(m.matrix_fixed_own, "test", "tests")
        ));
    }
    if m.matrix_broken > 0 {
        out.push(format!(
            "fails {} candidate-written {} that pass on the base",
            m.matrix_broken,
            plural(m.matrix_broken, "test", "tests")
        ));
    }
    out.extend(m.probe_notes.iter().take(4).cloned());
    if m.probe_notes.len() > 4 {
        out.push(format!("and {} more probe outputs differ from the base's", m.probe_notes.len() - 4));
    }
    if !m.same_behaviour_as.is_empty() {
        let ids: Vec<String> = m.same_behaviour_as.iter().map(ToString::to_string).collect();
        out.push(format!("the task's examples behave as on {}", ids.join(", ")));
    }
    if m.new_passing + m.new_failing > 0 {
        out.push(format!("new tests: {} passing, {} failing", m.new_passing, m.new_failing));
    }
    if e.verified && m.fixed.is_empty() && m.broken.is_empty() && e.stages.iter().any(|s| s.parsed) {
        out.push("test results are the same as on the base".into());
    }
    if !e.verified && usable(e) && e.files_changed > e.protected_edits.len() {
        out.push("not verified".into());
    }
    let project_files = e.files_changed.saturating_sub(e.protected_edits.len());
    if e.scripts_added > 0 && project_files > e.scripts_added {
        // A reproduction left behind beside a real change: merging the change lands it too.
        out.push(format!(
            "also adds {} at the repository's top (a reproduction, it seems); a merge lands {}",
            plural(e.scripts_added, "a script", "scripts"),
            plural(e.scripts_added, "it", "them")
        ));
    }
    if !m.agrees_with.is_empty() {
        let ids: Vec<String> = m.agrees_with.iter().map(ToString::to_string).collect();
        out.push(format!("same change as {}", ids.join(", ")));
    }
    if !m.same_results_as.is_empty() {
        let ids: Vec<String> = m.same_results_as.iter().map(ToString::to_string).collect();
        out.push(format!("same test results as {}", ids.join(", ")));
    }
    if !e.protected_edits.is_empty() {
        out.push(format!(
            "edited {} protected {} (verified with the base's version): {}",
            e.protected_edits.len(),
            plural(e.protected_edits.len(), "file", "files"),
            list(&e.protected_edits)
        ));
    }
    for t in &e.tamper {
        out.push(format!("suspicious: {t}"));
    }
    if e.collected {
        let (added, removed) = e.complexity;
        let (n, word) = if added >= removed { (added - removed, "more") } else { (removed - added, "fewer") };
        let complexity = if n == 0 {
            String::new()
        } else {
            format!("; {n} {word} decision {}", plural(n, "point", "points"))
        };
        out.push(format!(
            "{} {}, {} {} changed{complexity}",
            e.files_changed,
            plural(e.files_changed, "file", "files"),
            e.lines_changed,
            plural(e.lines_changed, "line", "lines")
        ));
    }
    out
}

fn winner_reason(top: &CandidateScore, next: Option<&CandidateScore>) -> String {
    let mut parts = Vec::new();
    if !top.fixed.is_empty() {
        parts.push(format!("fixes {} {}", top.fixed.len(), plural(top.fixed.len(), "test", "tests")));
    }
    if top.broken.is_empty() {
        parts.push("breaks none".into());
    }
    let base = if parts.is_empty() { "passed every gate".to_owned() } else { parts.join(" and ") };
    match next {
        Some(n) if n.eligible => {
            format!("{base}; ranked above {}, which {}", n.id, strip_below(&n.explanation))
        }
        _ => format!("{base}; the only eligible candidate"),
    }
}

fn strip_below(explanation: &[String]) -> String {
    explanation
        .first()
        .and_then(|l| l.split_once(": "))
        .map(|(_, why)| why.to_owned())
        .unwrap_or_else(|| "less evidence".into())
}

fn no_winner_reason(scores: &[CandidateScore]) -> String {
    let mut counts: Vec<(GateName, usize)> = Vec::new();
    for s in scores {
        if let Some(g) = s.gates.iter().find(|g| !g.passed) {
            match counts.iter_mut().find(|(n, _)| *n == g.gate) {
                Some((_, c)) => *c += 1,
                None => counts.push((g.gate, 1)),
            }
        }
    }
    counts.sort_by_key(|(g, _)| GATE_ORDER.iter().position(|o| o == g));
    let parts: Vec<String> = counts.iter().map(|(g, c)| format!("{c} failed \"{}\"", g.as_str())).collect();
    format!("no candidate passed the gates ({})", parts.join(", "))
}

#[cfg(test)]
mod tests;
