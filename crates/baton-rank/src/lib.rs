//! Ranking: from the evidence about each candidate to an ordered, explained scoreboard and a
//! decision, a winner or "not sure".
//!
//! Pure and deterministic: the same evidence always gives the same ranks and the same words.
//! Every rule below has a reason that holds for any repository; none is tuned to a benchmark.
//!
//! # The evidence model
//!
//! 1. **Gates: only what certainly disqualifies.** The agent did not finish; its change was
//!    not collected; it changed nothing once normalised (only whitespace, comments or layout;
//!    only protected files; only a script at the top while other candidates change the
//!    project); a setup or build stage that passes on the base fails; a tamper flag. A
//!    candidate out on a gate can never be the change to merge, and it is no voice for others.
//!    Test results are never a gate: a correct fix must break a test that pins the old
//!    behaviour.
//!
//! 2. **Facts from running code, relative to the base** ([`facts`]). For a candidate: a test
//!    that fails on the base passes (the repository's tests, hidden tests; a test stage without
//!    per-test results counts as one test); tests another candidate wrote that fail on the base
//!    pass; an example's output now matches what the task shows; an example or a candidate's
//!    script that runs to its end on the base prints a string value the task quotes, which it
//!    did not print on the base (the program is the same on both sides, so the change made
//!    the difference, and the task, not the script's author, names the value); an example or a
//!    candidate's script that crashes on the base runs to its end; a review stage that fails
//!    on the base passes. Against it: a test that passes on the base fails or no longer runs; its own new
//!    test fails; tests candidates wrote that pass on the base fail; an example now raises; a
//!    stage judged by its status got worse; a new lint or security finding. Tests that most
//!    different changes that show they change the task's behaviour (a fact for them, or an
//!    example whose output they change), from at least two agents, break the same way are
//!    likely pinned to the behaviour the task asks to change ([`pinned`]): they count for
//!    nothing, and the scoreboard says so.
//!
//!    Each fact for a candidate has a grade: *test* (a test someone other than its agent
//!    wrote, failing on the base), *example* (what the task shows or reports, a review stage)
//!    or *own* (its agent's own tests and scripts check it against its own reading of the task).
//!
//! 3. **Not facts.** The size of a change, how many candidates made the same change or got the
//!    same results, whether an example's output changed (without matching what the task
//!    shows): on unseen work none of these tells a right change from a wrong one better than
//!    chance, and agents that share a model repeat each other's mistakes. They order the
//!    shortlist and are shown; they never make a winner, except that among changes with the
//!    same facts for them and none against, the smaller is taken (with low confidence), and
//!    only when a fact they share checks what the code produces (a test, an output the task
//!    shows, a value it quotes, a review stage): a crash gone is no such check, since catching
//!    the error and fixing it both end it. Tests likely pinned count for nothing either way
//!    here too: breaking them or keeping them passing does not make two changes unequal.
//!
//! 4. **Decision.** One candidate *covers* another when every fact for the other holds as much
//!    for it and nothing counts more against it; it *dominates* when it covers and is not
//!    covered. A winner is a change that dominates every other different change that passed
//!    the gates, has at least one fact for it of grade test or example, and nothing against
//!    it (that the others break as much does not make a breakage fit to merge). Confidence:
//!    *high* when a test-grade fact separates it from every different change; *medium* when
//!    examples, or what the others break, separate it; *low* when only its own tests or, among
//!    equals, its size did. Otherwise there is no winner (exit
//!    4): the scoreboard carries the shortlist of different changes that nothing separates
//!    from the best, and for each pair what tells them apart or what would. A verification
//!    that cannot be evidence (a missing runner, tests that run nowhere, tests that read the
//!    user's checkout) names no winner either.

mod agreement;
mod facts;
mod pinned;
mod syntax;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use baton_core::{
    AgentOutcome, CandidateId, CandidateScore, Confidence, DecidedBy, Decision, ExpectationEdit, Gate,
    GateName, MatrixRow, ProbeOutcome, RunId, Scoreboard, Separation, StageComparison, StageKind,
    StageStatus, Subject, TestChange, plural,
};

pub use agreement::{edit_complexity, edit_tokens, is_layout_only, normalize_patch, normalize_patch_with};
pub use syntax::{canonical_source, understands};

use facts::{Fact, Facts, Grade};

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
    /// Its change outside protected paths is only whitespace, comments or layout
    /// ([`is_layout_only`]).
    pub layout_only: bool,
    pub tamper: Vec<String>,
    /// Edits to protected tests that change an expected value and keep the check.
    pub expectation_edits: Vec<ExpectationEdit>,
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
    /// For each probe, the candidates that wrote it (a script one added at the top); empty for
    /// the task's examples and the configured probes. A script counts where it fails on the
    /// base or on a candidate, not for changing what the task's examples do.
    pub authors: Vec<Vec<CandidateId>>,
    pub base: Vec<ProbeOutcome>,
    /// The string values the task quotes, each in the forms a program may print it (see
    /// `baton_verify::task_values`).
    pub values: Vec<Vec<String>>,
}

impl ProbeContext {
    fn is_script(&self, p: usize) -> bool {
        self.authors.get(p).is_some_and(|a| !a.is_empty())
    }
}

/// What a candidate shows beyond its facts: for the scoreboard, never for the decision.
#[derive(Debug, Clone, Default)]
struct Shown {
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
    /// Outputs that differ from the base's without a fact behind them.
    behaviour_notes: Vec<String>,
    behaviour_signature: String,
    same_behaviour_as: Vec<CandidateId>,
    matrix_fixed_others: usize,
    matrix_fixed_own: usize,
    /// Of `matrix_fixed_own`, those in tests the candidate did not write itself: another
    /// candidate with the same code (the same verified tree) wrote them.
    matrix_fixed_same_code: usize,
    /// Who wrote those.
    matrix_same_code_authors: Vec<CandidateId>,
    matrix_broken: usize,
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

/// The last line of an output, cut to 100 characters.
fn last_line(s: &str) -> String {
    s.lines().last().unwrap_or("").chars().take(100).collect()
}

/// What the probes show of a candidate beyond its facts: how many outputs changed, and how.
fn probe_display(m: &mut Shown, e: &CandidateEvidence, ctx: &ProbeContext) {
    for (p, cand) in e.probes.iter().enumerate() {
        let (Some(base), Some(name)) = (ctx.base.get(p), ctx.names.get(p)) else { continue };
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
            let fixed = is_error(b) && !environment_error(b) && !is_error(c);
            let new_error = is_error(c) && !is_error(b);
            m.probe_fixed += usize::from(fixed);
            m.probe_new_errors += usize::from(new_error);
            if ctx.is_script(p) || new_error {
                continue;
            }
            let shown = ctx.shown.get(p).and_then(|v| v.get(s)).and_then(Option::as_ref);
            m.probe_changed += 1;
            if shown.is_some_and(|e| e == c) {
                m.probe_matches += 1;
            } else if !fixed && shows_behaviour(b) {
                let label = if cand.statements.len() > 1 {
                    format!("{name}, statement {}", s + 1)
                } else {
                    name.clone()
                };
                m.behaviour_notes.push(format!("{label}: output differs from the base's"));
            }
        }
    }
}

fn matrix_display(m: &mut Shown, e: &CandidateEvidence, all: &[CandidateEvidence], rows: &[MatrixRow]) {
    let Some(subject) = &e.verified_as else { return };
    for row in rows {
        let Some(cell) = row.cells.iter().find(|c| c.subject == Subject::Candidate(subject.clone())) else {
            continue;
        };
        let wrote = row.authors.contains(&e.id);
        let same_code: Vec<&CandidateId> = row
            .authors
            .iter()
            .filter(|a| all.iter().any(|o| &o.id == *a && o.verified_as.as_ref() == Some(subject)))
            .collect();
        if wrote || !same_code.is_empty() {
            m.matrix_fixed_own += cell.fixed;
            if !wrote && cell.fixed > 0 {
                m.matrix_fixed_same_code += cell.fixed;
                for a in same_code {
                    if !m.matrix_same_code_authors.contains(a) {
                        m.matrix_same_code_authors.push(a.clone());
                    }
                }
            }
        } else {
            m.matrix_fixed_others += cell.fixed;
        }
        m.matrix_broken += cell.broken;
    }
}

fn shown(e: &CandidateEvidence) -> Shown {
    let mut m = Shown::default();
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
        let cand_ok = s.candidate.is_passed();
        let cand_skipped = matches!(s.candidate, StageStatus::Skipped { .. });
        // A setup or build stage that fails on the base too is the base's problem, not this
        // candidate's.
        let base_failed = matches!(s.base, Some(StageStatus::Failed { .. } | StageStatus::TimedOut));
        if matches!(s.kind, StageKind::Setup | StageKind::Build)
            && !cand_ok
            && !cand_skipped
            && !base_failed
            && m.builds.is_none()
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
        let base_ok = s.base.as_ref().is_some_and(StageStatus::is_passed);
        if !s.parsed
            && base_ok
            && !cand_ok
            && !cand_skipped
            && !matches!(s.kind, StageKind::Setup | StageKind::Build)
        {
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

/// Ranks the candidates of `run` and decides. `candidates` is in planning order, which breaks
/// final ties. `setup_problems` say why the verification cannot be evidence (see
/// `baton_verify::setup_problems`); any of them means no winner.
pub fn rank(
    run: &RunId,
    probes: &ProbeContext,
    matrix: &[MatrixRow],
    candidates: &[CandidateEvidence],
    setup_problems: &[String],
) -> Scoreboard {
    let n = candidates.len();
    let mut ms: Vec<Shown> = candidates.iter().map(shown).collect();
    for (m, e) in ms.iter_mut().zip(candidates) {
        probe_display(m, e, probes);
        matrix_display(m, e, candidates, matrix);
    }
    agreement_display(&mut ms, candidates);

    // ---- Gates.
    let mut gates: Vec<Vec<Gate>> = candidates.iter().zip(&ms).map(|(e, m)| absolute_gates(e, m)).collect();
    script_only_gate(&mut gates, candidates);
    let eligible: Vec<bool> = gates.iter().map(|g| g.iter().all(|g| g.passed)).collect();

    // ---- One voice per different change: of the candidates that made it, the smallest edit
    // (copies differ only in what normalising drops: layout, comments), then the first planned.
    let group: Vec<usize> = (0..n)
        .map(|i| {
            (0..i)
                .find(|&j| eligible[j] && eligible[i] && same_change(&candidates[i], &candidates[j]))
                .unwrap_or(i)
        })
        .collect();
    let size = |i: usize| (candidates[i].lines_changed, candidates[i].tokens_changed, i);
    let copy_of: Vec<Option<usize>> = (0..n)
        .map(|i| {
            let rep = (0..n).filter(|&j| group[j] == group[i]).min_by_key(|&j| size(j)).unwrap_or(i);
            (rep != i).then_some(rep)
        })
        .collect();
    let voters: Vec<usize> = (0..n).filter(|&i| eligible[i] && copy_of[i].is_none()).collect();

    // ---- Facts. A test is pinned to the old behaviour only by the votes of changes that show
    // they change the behaviour the task is about: a fact for them, or an example whose output
    // they change. Two changes that break the same tests and show nothing else are two broken
    // changes, not a consensus about the tests.
    let unpinned = std::collections::BTreeSet::new();
    let changes_behaviour = |i: usize| {
        ms[i].probe_changed > 0
            || !facts::facts(&candidates[i], candidates, probes, matrix, &unpinned).pro.is_empty()
    };
    let voices: Vec<usize> = voters.iter().copied().filter(|&i| changes_behaviour(i)).collect();
    let (pinned_set, pinned) = pinned::pinned_tests(candidates, &voices);
    let fs: Vec<Facts> =
        candidates.iter().map(|e| facts::facts(e, candidates, probes, matrix, &pinned_set)).collect();

    // ---- Order: eligible first, then by how many different changes dominate each, then by
    // the weight of the facts, then by size, then by plan.
    let dominated_by: Vec<usize> =
        (0..n).map(|i| voters.iter().filter(|&&v| v != i && fs[v].dominates(&fs[i])).count()).collect();
    let progress = |i: usize| gates[i].iter().take_while(|g| g.passed).count();
    let weight = |i: usize| {
        let f = &fs[i];
        (f.pro.iter().filter(|(k, _)| f.grades.get(*k).copied() > Some(Grade::Own)).count(), f.con.len())
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        eligible[b]
            .cmp(&eligible[a])
            .then(progress(b).cmp(&progress(a)))
            .then(dominated_by[a].cmp(&dominated_by[b]))
            .then(weight(b).0.cmp(&weight(a).0))
            .then(weight(a).1.cmp(&weight(b).1))
            .then(candidates[a].lines_changed.cmp(&candidates[b].lines_changed))
            .then(candidates[a].tokens_changed.cmp(&candidates[b].tokens_changed))
            .then(a.cmp(&b))
    });
    // The different changes that passed the gates, best first.
    let reps: Vec<usize> = order.iter().copied().filter(|i| voters.contains(i)).collect();
    let front: Vec<usize> = reps.iter().copied().filter(|&i| dominated_by[i] == 0).collect();

    // ---- Decision.
    let ctx = Words { candidates, facts: &fs, probes, matrix };
    let outcome = decide(&ctx, &reps, &front, setup_problems, &gates);

    // ---- Scores and explanations.
    let mut scores = Vec::with_capacity(n);
    for (pos, &i) in order.iter().enumerate() {
        let e = &candidates[i];
        let m = &ms[i];
        let mut explanation = Vec::new();
        if let Some(failed) = gates[i].iter().find(|g| !g.passed) {
            explanation.push(format!("not eligible, failed \"{}\": {}", failed.gate.as_str(), failed.detail));
        } else if let Some(j) = copy_of[i] {
            explanation.push(format!("the same change as {}", candidates[j].id));
        } else if pos > 0 {
            if let Some(&j) = reps.iter().find(|&&j| j != i && fs[j].dominates(&fs[i])) {
                explanation.push(format!("below {}: {}", candidates[j].id, ctx.shortfalls(j, i)));
            } else if let Some(&j) = reps.first().filter(|&&j| j != i) {
                explanation.push(match &outcome {
                    Outcome::Winner { by_size: true, .. } => {
                        format!("below {}: {}", candidates[j].id, size_words(e, &candidates[j]))
                    }
                    _ => format!("not separated from {} by anything that ran", candidates[j].id),
                });
            }
        }
        explanation.extend(evidence_lines(&ctx, i, m));
        scores.push(CandidateScore {
            id: e.id.clone(),
            agent: e.agent.clone(),
            strategy: e.strategy.clone(),
            rank: pos + 1,
            eligible: eligible[i],
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
            positive: fs[i].pro.iter().map(|(f, &k)| ctx.describe(f, k, i)).collect(),
            negative: fs[i].con.iter().map(|(f, &k)| ctx.describe(f, k, i)).collect(),
            pinned: fs[i].pinned.clone(),
            expectation_edits: e.expectation_edits.iter().map(ToString::to_string).collect(),
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

    let (decision, decided_by, shortlist, separations) = match outcome {
        Outcome::Winner { winner, reason, decided_by, .. } => (
            Decision::Winner { candidate: candidates[winner].id.clone(), reason },
            Some(decided_by),
            vec![],
            vec![],
        ),
        Outcome::NoWinner { reason, shortlist } => {
            let separations = ctx.separations(&shortlist);
            let ids = shortlist.iter().map(|&i| candidates[i].id.clone()).collect();
            (Decision::NoWinner { reason }, None, ids, separations)
        }
    };
    Scoreboard {
        run: run.clone(),
        decision,
        candidates: scores,
        matrix: matrix.to_vec(),
        decided_by,
        shortlist,
        separations,
        pinned,
        setup_problems: setup_problems.to_vec(),
    }
}

/// What the decision came to, by candidate index.
enum Outcome {
    Winner { winner: usize, reason: String, decided_by: DecidedBy, by_size: bool },
    NoWinner { reason: String, shortlist: Vec<usize> },
}

/// How many different changes a shortlist names at most: past that, a person reads a list, not
/// a choice.
const SHORTLIST: usize = 5;

/// The decision, from the different changes that passed the gates (`reps`, best first) and
/// those no other dominates (`front`).
fn decide(
    ctx: &Words<'_>,
    reps: &[usize],
    front: &[usize],
    setup_problems: &[String],
    gates: &[Vec<Gate>],
) -> Outcome {
    let c = ctx.candidates;
    let fs = ctx.facts;
    let Some(&best) = front.first() else {
        return Outcome::NoWinner { reason: no_eligible_reason(gates), shortlist: vec![] };
    };
    let shortlist_of = |v: &[usize]| v.iter().copied().take(SHORTLIST).collect::<Vec<_>>();
    if !setup_problems.is_empty() {
        return Outcome::NoWinner {
            reason: format!("the verification is no evidence: {}", setup_problems.join("; ")),
            shortlist: shortlist_of(reps),
        };
    }
    // Nothing for any of them: the order of the rest says nothing about doing the task.
    if reps.iter().all(|&i| fs[i].strongest().is_none()) {
        let same = reps.iter().all(|&i| fs[i].con.is_empty() && fs[i].pro.is_empty());
        let whom = match reps {
            // The others failed a gate: still, passing the gates is not doing the task.
            [only] if c.len() > 1 => format!("{}, the only candidate that passed the gates,", c[*only].id),
            [only] => c[*only].id.to_string(),
            _ => "any candidate".to_owned(),
        };
        return Outcome::NoWinner {
            reason: format!(
                "nothing that ran shows that {whom} does what the task asks (no test it fixes, \
                 no output the task shows, no other candidate's test it passes){}",
                if same && c.iter().any(|e| e.verified) {
                    if reps.len() == 1 {
                        "; its tests and examples gave the base's results"
                    } else {
                        "; every candidate's tests and examples gave the base's results"
                    }
                } else {
                    ""
                }
            ),
            shortlist: shortlist_of(reps),
        };
    }
    // Several different changes that nothing dominates.
    if front.len() > 1 {
        // Tests likely pinned to the old behaviour count for nothing either way: breaking them
        // or not, changes with the same facts are equals.
        let equal = front.iter().all(|&i| fs[i].same_as(&fs[best]) && fs[i].con.is_empty());
        let smaller = |i: usize| (c[i].lines_changed, c[i].tokens_changed);
        let smallest = front.iter().copied().min_by_key(|&i| smaller(i)).unwrap_or(best);
        let unique = front.iter().filter(|&&i| smaller(i) == smaller(smallest)).count() == 1;
        // Size breaks a tie only where what they share checks what the code produces: among
        // changes that only make a crash go away, the smaller is as often the one that hides it.
        if !(equal && unique && fs[best].checks_result()) {
            let reason = if equal && !fs[best].checks_result() {
                format!(
                    "{} and {} have the same evidence, and nothing that ran checks what either produces \
                     (no test it fixes, no output the task shows); a human must choose",
                    c[front[0]].id, c[front[1]].id
                )
            } else if equal {
                format!(
                    "{} and {} have the same evidence with different changes of one size; a human must choose",
                    c[front[0]].id, c[front[1]].id
                )
            } else {
                format!(
                    "nothing that ran separates {} different changes ({}): each has evidence the others lack",
                    front.len(),
                    front.iter().take(SHORTLIST).map(|&i| c[i].id.to_string()).collect::<Vec<_>>().join(", ")
                )
            };
            return Outcome::NoWinner { reason, shortlist: shortlist_of(front) };
        }
        let rival = front.iter().copied().filter(|&i| i != smallest).min_by_key(|&i| smaller(i));
        let reason = format!(
            "{}; ranked above {}, which {}",
            ctx.merits(smallest),
            rival.map(|r| c[r].id.to_string()).unwrap_or_default(),
            rival.map(|r| size_words(&c[r], &c[smallest])).unwrap_or_default()
        );
        return Outcome::Winner {
            winner: smallest,
            reason,
            decided_by: DecidedBy { evidence: "size".into(), confidence: Confidence::Low },
            by_size: true,
        };
    }
    // One change dominates every other; still, what it breaks (unless pinned) makes it no
    // change to merge: that the others break as much says nothing for it.
    if !fs[best].con.is_empty() {
        let against: Vec<String> = fs[best].con.iter().map(|(f, &n)| ctx.describe(f, n, best)).collect();
        let shown: Vec<&str> = against.iter().take(2).map(String::as_str).collect();
        return Outcome::NoWinner {
            reason: format!(
                "the best candidate, {}, {}{}",
                c[best].id,
                shown.join(" and "),
                match against.len().saturating_sub(2) {
                    0 => String::new(),
                    more => format!(" (and {more} more)"),
                }
            ),
            shortlist: shortlist_of(reps),
        };
    }
    if fs[best].strongest().is_none() {
        return Outcome::NoWinner {
            reason: format!(
                "nothing that ran shows that {} does what the task asks; it only breaks less than the others",
                c[best].id
            ),
            shortlist: shortlist_of(reps),
        };
    }
    let rivals: Vec<usize> = reps.iter().copied().filter(|&i| i != best).collect();
    // The weakest separation from any different change is what the decision is worth.
    let (evidence, confidence) = rivals
        .iter()
        .map(|&r| ctx.separation(best, r))
        .min_by_key(|(_, confidence)| confidence_rank(*confidence))
        .unwrap_or_else(|| {
            let confidence =
                if fs[best].strongest() == Some(Grade::Test) { Confidence::High } else { Confidence::Medium };
            ("gates", confidence)
        });
    let reason = match rivals.first() {
        Some(&next) => {
            format!("{}; ranked above {}, which {}", ctx.merits(best), c[next].id, ctx.shortfalls(best, next))
        }
        None => format!("{}; the only different change that passed the gates", ctx.merits(best)),
    };
    Outcome::Winner {
        winner: best,
        reason,
        decided_by: DecidedBy { evidence: evidence.into(), confidence },
        by_size: false,
    }
}

/// Lower is weaker.
fn confidence_rank(c: Confidence) -> u8 {
    match c {
        Confidence::Low => 0,
        Confidence::Medium => 1,
        Confidence::High => 2,
    }
}

fn size_words(larger: &CandidateEvidence, smaller: &CandidateEvidence) -> String {
    if larger.lines_changed != smaller.lines_changed {
        format!(
            "makes a larger change ({} against {})",
            plural_count(larger.lines_changed, "line", "lines"),
            smaller.lines_changed
        )
    } else {
        format!(
            "makes a larger change within as many lines ({} against {})",
            plural_count(larger.tokens_changed, "token", "tokens"),
            smaller.tokens_changed
        )
    }
}

fn plural_count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// What the words of the scoreboard need.
struct Words<'a> {
    candidates: &'a [CandidateEvidence],
    facts: &'a [Facts],
    probes: &'a ProbeContext,
    matrix: &'a [MatrixRow],
}

impl Words<'_> {
    fn describe(&self, fact: &Fact, n: usize, i: usize) -> String {
        facts::describe(fact, n, self.probes, self.matrix, &self.candidates[i].probes)
    }

    /// What speaks for `i`, in a few words.
    fn merits(&self, i: usize) -> String {
        let f = &self.facts[i];
        let fixed = f.pro.keys().filter(|k| matches!(k, Fact::Fixed { .. })).count();
        let mut parts = Vec::new();
        if fixed > 0 {
            parts.push(format!("fixes {}", plural_count(fixed, "test", "tests")));
        }
        let written: usize = f
            .pro
            .iter()
            .filter(|(k, _)| {
                matches!(k, Fact::PassesWritten { .. }) && f.grades.get(*k) == Some(&Grade::Test)
            })
            .map(|(_, n)| n)
            .sum();
        if written > 0 {
            parts.push(format!("passes {} other candidates wrote", plural_count(written, "test", "tests")));
        }
        let shown = f.pro.keys().filter(|k| matches!(k, Fact::ShownOutput { .. })).count();
        if shown > 0 {
            parts.push(format!("matches {} the task shows", plural_count(shown, "output", "outputs")));
        }
        let quoted = f.pro.keys().filter(|k| matches!(k, Fact::PrintsQuoted { .. })).count();
        if quoted > 0 {
            parts.push(format!(
                "prints a value the task quotes in {}",
                plural_count(quoted, "program", "programs")
            ));
        }
        let crashes = f.pro.keys().filter(|k| matches!(k, Fact::CrashGone { .. })).count();
        if crashes > 0 {
            parts.push(format!(
                "runs {} that crash on the base",
                plural_count(crashes, "example", "examples")
            ));
        }
        let stages = f.pro.keys().filter(|k| matches!(k, Fact::StagePasses { .. })).count();
        if stages > 0 {
            parts.push(format!("passes {} that fail on the base", plural_count(stages, "stage", "stages")));
        }
        match (f.con.is_empty(), f.pinned.len()) {
            (true, 0) => parts.push("breaks none".into()),
            (true, n) => parts.push(format!(
                "breaks only {} that other, different changes break alike (likely pinned to the old behaviour)",
                plural_count(n, "test", "tests")
            )),
            (false, _) => {}
        }
        if parts.is_empty() { "passed every gate".into() } else { parts.join(" and ") }
    }

    /// Why `low` is below `high`, which dominates it: what `low` lacks and what counts against
    /// it that does not count against `high`.
    fn shortfalls(&self, high: usize, low: usize) -> String {
        let (h, l) = (&self.facts[high], &self.facts[low]);
        let mut out = Vec::new();
        for (fact, &k) in &h.pro {
            let have = l.pro.get(fact).copied().unwrap_or(0);
            if have < k {
                out.push(self.lacks(fact, k - have));
            }
        }
        for (fact, &k) in &l.con {
            let have = h.con.get(fact).copied().unwrap_or(0);
            if have < k {
                out.push(self.describe(fact, k - have, low));
            }
        }
        if out.is_empty() {
            return "has equal evidence".into();
        }
        let more = out.len().saturating_sub(2);
        out.truncate(2);
        let mut text = out.join(" and ");
        if more > 0 {
            text.push_str(&format!(" (and {more} more)"));
        }
        text
    }

    /// A fact for a candidate, said of one that lacks it.
    fn lacks(&self, fact: &Fact, n: usize) -> String {
        match fact {
            Fact::Fixed { stage, test } if stage == test => format!("fails stage `{stage}`"),
            Fact::Fixed { test, .. } => format!("fails {test}"),
            Fact::PassesWritten { .. }
            | Fact::ShownOutput { .. }
            | Fact::PrintsQuoted { .. }
            | Fact::CrashGone { .. }
            | Fact::StagePasses { .. } => {
                format!("does not: {}", facts::describe(fact, n, self.probes, self.matrix, &[]))
            }
            other => facts::describe(other, n, self.probes, self.matrix, &[]),
        }
    }

    /// What separates `winner` from `rival` (which it dominates), and what that is worth.
    fn separation(&self, winner: usize, rival: usize) -> (&'static str, Confidence) {
        let (w, r) = (&self.facts[winner], &self.facts[rival]);
        let beyond = w
            .pro
            .iter()
            .filter(|(f, k)| r.pro.get(*f).is_none_or(|m| m < *k))
            .filter_map(|(f, _)| w.grades.get(f).copied())
            .max();
        // A winner has nothing against it (see `decide`).
        match beyond {
            Some(Grade::Test) => ("tests", Confidence::High),
            Some(Grade::Example) => ("examples", Confidence::Medium),
            Some(Grade::Own) => ("own_tests", Confidence::Low),
            None if r.con.iter().any(|(f, k)| w.con.get(f).is_none_or(|m| m < k)) => {
                ("failures", Confidence::Medium)
            }
            None => ("size", Confidence::Low),
        }
    }

    /// For each pair of a shortlist, what tells them apart or what would.
    fn separations(&self, shortlist: &[usize]) -> Vec<Separation> {
        let c = self.candidates;
        let mut out = Vec::new();
        for (x, &a) in shortlist.iter().enumerate() {
            for &b in &shortlist[x + 1..] {
                let only = |p: usize, q: usize| -> Vec<String> {
                    let (fp, fq) = (&self.facts[p], &self.facts[q]);
                    let mut v: Vec<String> = fp
                        .pro
                        .iter()
                        .filter(|(f, k)| fq.pro.get(*f).is_none_or(|m| m < *k))
                        .map(|(f, k)| self.describe(f, *k, p))
                        .collect();
                    v.extend(
                        fq.con
                            .iter()
                            .filter(|(f, k)| fp.con.get(*f).is_none_or(|m| m < *k))
                            .map(|(f, k)| format!("{} {}", c[q].id, self.describe(f, *k, q))),
                    );
                    v.truncate(3);
                    v
                };
                let (ab, ba) = (only(a, b), only(b, a));
                let note = if ab.is_empty() && ba.is_empty() {
                    let files = differing_files(&c[a], &c[b]);
                    format!(
                        "nothing that ran tells them apart; a test of what they do differently in {} would",
                        if files.is_empty() { "their changes".to_owned() } else { files.join(", ") }
                    )
                } else {
                    let side = |id: &CandidateId, v: &[String]| {
                        if v.is_empty() {
                            format!("{id}: nothing the other lacks")
                        } else {
                            format!("{id}: {}", v.join("; "))
                        }
                    };
                    format!("{} | {}", side(&c[a].id, &ab), side(&c[b].id, &ba))
                };
                out.push(Separation { a: c[a].id.clone(), b: c[b].id.clone(), note });
            }
        }
        out
    }
}

/// The files whose normalized change differs between two candidates.
fn differing_files(a: &CandidateEvidence, b: &CandidateEvidence) -> Vec<String> {
    let per_file = |n: &str| -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        let mut path = String::new();
        for line in n.lines() {
            if line.starts_with(['+', '-', '=']) {
                out.entry(path.clone()).or_default().push_str(line);
            } else {
                path = line.to_owned();
            }
        }
        out
    };
    let (pa, pb) = (per_file(&a.normalized_patch), per_file(&b.normalized_patch));
    let files: BTreeSet<&String> = pa.keys().chain(pb.keys()).collect();
    files.into_iter().filter(|f| pa.get(*f) != pb.get(*f)).take(4).cloned().collect()
}

/// Agreement between candidates, for the scoreboard: the same change, the same edited lines
/// inside different changes, the same test results, the same behaviour of the examples.
fn agreement_display(ms: &mut [Shown], candidates: &[CandidateEvidence]) {
    let edits: Vec<HashSet<(&str, &str)>> =
        candidates.iter().map(|e| edited_lines(&e.normalized_patch)).collect();
    for i in 0..candidates.len() {
        let mut shared: HashSet<&(&str, &str)> = HashSet::new();
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
}

/// The gates in the order they are checked (and, for stored runs, two no longer checked).
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
fn edited_lines(normalized: &str) -> HashSet<(&str, &str)> {
    let mut out = HashSet::new();
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

fn absolute_gates(e: &CandidateEvidence, m: &Shown) -> Vec<Gate> {
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
    let changed = effective > 0 && !e.layout_only;
    gates.push(Gate {
        gate: GateName::NonEmpty,
        passed: changed,
        detail: if changed {
            format!("{effective} {} changed outside protected paths", plural(effective, "file", "files"))
        } else if effective > 0 {
            "it changed only whitespace, comments or layout".into()
        } else if e.files_changed > 0 {
            "it changed only protected files (tests, CI or baton configuration)".into()
        } else {
            "it changed nothing".into()
        },
    });
    if !changed {
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

/// A candidate whose only change is a script it added at the top (its reproduction of the
/// problem, left behind) has not changed the project; where another candidate has, it is out.
fn script_only_gate(gates: &mut [Vec<Gate>], candidates: &[CandidateEvidence]) {
    let changes_project = |i: usize| {
        let e = &candidates[i];
        e.files_changed.saturating_sub(e.protected_edits.len()) > e.scripts_added
    };
    if !(0..candidates.len()).any(|i| usable(&candidates[i]) && changes_project(i)) {
        return;
    }
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
            // The gates after it were not reached.
            let at = g.iter().position(|g| g.gate == GateName::NonEmpty).unwrap_or(g.len());
            g.truncate(at + 1);
        }
    }
}

fn evidence_lines(ctx: &Words<'_>, i: usize, m: &Shown) -> Vec<String> {
    let e = &ctx.candidates[i];
    let f = &ctx.facts[i];
    let mut out = Vec::new();
    let list = |v: &[String]| {
        let shown: Vec<&str> = v.iter().take(3).map(String::as_str).collect();
        let more = v.len().saturating_sub(3);
        if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
    };
    let pro: Vec<String> = f.pro.iter().map(|(k, &n)| ctx.describe(k, n, i)).collect();
    let con: Vec<String> = f.con.iter().map(|(k, &n)| ctx.describe(k, n, i)).collect();
    let fixed = f.pro.keys().filter(|k| matches!(k, Fact::Fixed { .. })).count();
    if fixed > 3 {
        let names: Vec<String> = f
            .pro
            .keys()
            .filter_map(|k| match k {
                Fact::Fixed { test, .. } => Some(test.clone()),
                _ => None,
            })
            .collect();
        out.push(format!(
            "fixes {} failing on the base: {}",
            plural_count(fixed, "test", "tests"),
            list(&names)
        ));
        out.extend(pro.iter().filter(|p| !p.starts_with("fixes ")).cloned());
    } else {
        out.extend(pro.iter().cloned());
    }
    let broken = f.con.keys().filter(|k| matches!(k, Fact::Broken { .. })).count();
    if broken > 3 {
        let names: Vec<String> = f
            .con
            .keys()
            .filter_map(|k| match k {
                Fact::Broken { test, .. } => Some(test.clone()),
                _ => None,
            })
            .collect();
        out.push(format!(
            "breaks {} passing on the base: {}",
            plural_count(broken, "test", "tests"),
            list(&names)
        ));
        out.extend(con.iter().filter(|p| !p.starts_with("breaks ")).cloned());
    } else {
        out.extend(con.iter().cloned());
    }
    if !f.pinned.is_empty() {
        out.push(format!(
            "breaks {} that other, different changes break alike (likely pinned to the old behaviour; they count for nothing): {}",
            plural_count(f.pinned.len(), "test", "tests"),
            list(&f.pinned)
        ));
    }
    out.extend(m.behaviour_notes.iter().take(3).cloned());
    if m.behaviour_notes.len() > 3 {
        out.push(format!("and {} more example outputs differ from the base's", m.behaviour_notes.len() - 3));
    }
    if !m.same_behaviour_as.is_empty() {
        let ids: Vec<String> = m.same_behaviour_as.iter().map(ToString::to_string).collect();
        out.push(format!("the task's examples behave as on {}", ids.join(", ")));
    }
    if m.new_passing + m.new_failing > 0 {
        out.push(format!("new tests of its own: {} passing, {} failing", m.new_passing, m.new_failing));
    }
    match m.matrix_fixed_own - m.matrix_fixed_same_code {
        0 => {}
        1 => out.push("passes its own new test that fails on the base (its own reading of the task)".into()),
        n => out.push(format!(
            "passes {n} of its own new tests that fail on the base (its own reading of the task)"
        )),
    }
    if m.matrix_fixed_same_code > 0 {
        // Tests that an agent with the same code wrote: that agent's reading, not an
        // independent one, and not this candidate's either.
        let ids: Vec<String> = m.matrix_same_code_authors.iter().map(ToString::to_string).collect();
        out.push(format!(
            "passes {} that {} wrote with the same code and that {} on the base ({} own reading of the task)",
            plural_count(m.matrix_fixed_same_code, "new test", "new tests"),
            ids.join(", "),
            plural(m.matrix_fixed_same_code, "fails", "fail"),
            plural(ids.len(), "its author's", "their authors'")
        ));
    }
    if e.verified
        && f.pro.is_empty()
        && f.con.is_empty()
        && f.pinned.is_empty()
        && e.stages.iter().any(|s| s.parsed)
    {
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
    for x in &e.expectation_edits {
        out.push(format!("changes what a protected test expects: {x}"));
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

fn no_eligible_reason(gates: &[Vec<Gate>]) -> String {
    if gates.is_empty() {
        return "the run has no candidates".into();
    }
    // The gate each candidate failed first.
    let mut counts: Vec<(GateName, usize)> = Vec::new();
    for g in gates {
        if let Some(g) = g.iter().find(|g| !g.passed) {
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
