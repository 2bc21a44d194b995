//! Facts: what running code said about one candidate, relative to the base, each with the side
//! it speaks for and how much it is worth. The decision compares candidates by these facts
//! alone; everything else a candidate shows (its size, agreement with others, a changed
//! example) orders a shortlist but never makes a winner.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::{CandidateId, MatrixRow, StageKind, StageStatus, Subject, TestChange};

use crate::{CandidateEvidence, ProbeContext};

/// One fact from running code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Fact {
    // ---- For: it does what the task asks.
    /// A test that fails on the base passes (a test stage without per-test results counts as
    /// one test named after the stage).
    Fixed { stage: String, test: String },
    /// Tests of a matrix row (tests candidates wrote) that fail on the base pass.
    PassesWritten { row: usize },
    /// An example's output now matches what the task shows.
    ShownOutput { probe: usize, statement: usize },
    /// An example or a candidate's script that runs to its end on the base prints, as a line of
    /// its own, a string value the task quotes, which it does not print on the base.
    PrintsQuoted { probe: usize, statement: usize },
    /// An example or a candidate's script that fails on the base with an exception of its own
    /// runs to its end.
    CrashGone { probe: usize, statement: usize },
    /// A review stage (kind `custom` or `build`) that fails on the base passes.
    StagePasses { stage: String },
    // ---- Against.
    /// A test that passes on the base fails, or no longer runs.
    Broken { stage: String, test: String },
    /// A new test of its own (in a file that is not protected, such as a Rust test module)
    /// fails in its own tree.
    OwnTestFails { stage: String, test: String },
    /// Tests of a matrix row that pass on the base fail.
    FailsWritten { row: usize },
    /// An example that ran on the base now raises an exception.
    NewError { probe: usize, statement: usize },
    /// A stage judged by its status (lint, custom, a test stage without per-test results)
    /// passes on the base and fails here, or its metric got worse.
    StageWorse { stage: String },
    /// A lint or security finding the base does not have.
    Finding { stage: String, finding: String },
}

/// How much a fact in a candidate's favour is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Grade {
    /// Written by the candidate's own agent (its tests, its reproduction script): it checks
    /// the candidate against its own reading of the task.
    Own,
    /// Behaviour the task describes: outputs it shows, a crash it reports, a review stage.
    Example,
    /// A test that someone other than its agent wrote (the repository, the hidden tests,
    /// another candidate) and that fails on the base.
    Test,
}

/// The facts of one candidate: for it and against it, each with a count (a matrix row stands
/// for several tests), and the grade of each fact for it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub(crate) pro: BTreeMap<Fact, usize>,
    pub(crate) con: BTreeMap<Fact, usize>,
    pub(crate) grades: BTreeMap<Fact, Grade>,
    /// Tests it breaks that count for nothing, being pinned (see `pinned`).
    pub(crate) pinned: Vec<String>,
}

impl Facts {
    /// The best grade among the facts for it that its own agent did not write.
    pub(crate) fn strongest(&self) -> Option<Grade> {
        self.pro.keys().filter_map(|f| self.grades.get(f).copied()).filter(|g| *g > Grade::Own).max()
    }

    /// Whether a fact for it that its own agent did not write checks what the changed code
    /// produces: a test, an output the task shows, a value the task quotes, a review stage.
    /// That a crash is gone does not: catching the error, returning early and a real fix all
    /// make a program run to its end, so it shows the change reaches the problem, not that
    /// what comes out is right.
    pub(crate) fn checks_result(&self) -> bool {
        self.pro.keys().any(|f| {
            !matches!(f, Fact::CrashGone { .. }) && self.grades.get(f).is_some_and(|g| *g > Grade::Own)
        })
    }

    /// Whether `self` is at least as good as `other` on every fact: everything that speaks for
    /// `other` speaks as much for `self`, and nothing speaks more against `self`.
    pub(crate) fn covers(&self, other: &Facts) -> bool {
        other.pro.iter().all(|(f, n)| self.pro.get(f).is_some_and(|m| m >= n))
            && self.con.iter().all(|(f, n)| other.con.get(f).is_some_and(|m| m >= n))
    }

    /// Strictly better on the facts: covers `other` and is not covered by it.
    pub(crate) fn dominates(&self, other: &Facts) -> bool {
        self.covers(other) && !other.covers(self)
    }

    pub(crate) fn same_as(&self, other: &Facts) -> bool {
        self.pro == other.pro && self.con == other.con
    }
}

/// A test broken on one candidate, as the pinned-test consensus sees it.
pub(crate) type TestKey = (String, String);

/// The tests each stage broke for a candidate: (stage, test) pairs.
pub(crate) fn broken_tests(e: &CandidateEvidence) -> BTreeSet<TestKey> {
    e.stages
        .iter()
        .flat_map(|s| {
            s.tests
                .iter()
                .filter(|t| matches!(t.change, TestChange::Broken | TestChange::Missing))
                .map(|t| (s.stage.clone(), t.name.clone()))
        })
        .collect()
}

/// Derives a candidate's facts. `pinned` are tests that count for nothing when broken.
pub(crate) fn facts(
    e: &CandidateEvidence,
    all: &[CandidateEvidence],
    probes: &ProbeContext,
    matrix: &[MatrixRow],
    pinned: &BTreeSet<TestKey>,
) -> Facts {
    let mut f = Facts::default();
    let pro = |fact: Fact, n: usize, grade: Grade, f: &mut Facts| {
        if n > 0 {
            f.grades.insert(fact.clone(), grade);
            *f.pro.entry(fact).or_default() += n;
        }
    };
    let con = |fact: Fact, n: usize, f: &mut Facts| {
        if n > 0 {
            *f.con.entry(fact).or_default() += n;
        }
    };
    for s in &e.stages {
        let stage = s.stage.clone();
        let base_ok = s.base.as_ref().is_some_and(StageStatus::is_passed);
        let base_failed = matches!(s.base, Some(StageStatus::Failed { .. }));
        let cand_ok = s.candidate.is_passed();
        // Skipped (no related tests; after a failed build, which the gates judge) or cancelled:
        // no evidence either way.
        let cand_ran = !matches!(s.candidate, StageStatus::Skipped { .. } | StageStatus::Cancelled);
        for t in &s.tests {
            let key = || Fact::Broken { stage: stage.clone(), test: t.name.clone() };
            match t.change {
                TestChange::Fixed => {
                    pro(Fact::Fixed { stage: stage.clone(), test: t.name.clone() }, 1, Grade::Test, &mut f)
                }
                TestChange::Broken | TestChange::Missing => {
                    if pinned.contains(&(stage.clone(), t.name.clone())) {
                        f.pinned.push(t.name.clone());
                    } else {
                        con(key(), 1, &mut f);
                    }
                }
                TestChange::NewFailing => {
                    con(Fact::OwnTestFails { stage: stage.clone(), test: t.name.clone() }, 1, &mut f)
                }
                // A new test of its own that passes checks the candidate against its own
                // reading of the task: shown, never a fact (it would shield the candidate
                // from every comparison).
                TestChange::NewPassing
                | TestChange::StillFailing
                | TestChange::StillPassing
                | TestChange::Flaky => {}
            }
        }
        for finding in &s.new_findings {
            con(Fact::Finding { stage: stage.clone(), finding: finding.clone() }, 1, &mut f);
        }
        if s.metric_worse {
            con(Fact::StageWorse { stage: stage.clone() }, 1, &mut f);
        }
        // Stages judged by their status. Setup and build stages that break are a gate; one
        // that fails on the base and passes here (the task: make it build) speaks for it.
        if s.parsed || !cand_ran {
            continue;
        }
        match s.kind {
            StageKind::Test => {
                if base_failed && cand_ok {
                    pro(Fact::Fixed { stage: stage.clone(), test: stage.clone() }, 1, Grade::Test, &mut f);
                } else if base_ok && !cand_ok {
                    con(Fact::Broken { stage: stage.clone(), test: stage.clone() }, 1, &mut f);
                }
            }
            StageKind::Custom | StageKind::Build | StageKind::Setup => {
                if base_failed && cand_ok {
                    pro(Fact::StagePasses { stage: stage.clone() }, 1, Grade::Example, &mut f);
                } else if base_ok && !cand_ok && s.kind == StageKind::Custom {
                    con(Fact::StageWorse { stage: stage.clone() }, 1, &mut f);
                }
            }
            StageKind::Lint | StageKind::Security | StageKind::Bench => {
                if base_ok && !cand_ok && s.new_findings.is_empty() && !s.metric_worse {
                    con(Fact::StageWorse { stage: stage.clone() }, 1, &mut f);
                }
            }
        }
    }
    // The tests candidates wrote. A row counts as its own when one of its authors has the same
    // code (the same verified tree).
    if let Some(subject) = &e.verified_as {
        for (r, row) in matrix.iter().enumerate() {
            let Some(cell) = row.cells.iter().find(|c| c.subject == Subject::Candidate(subject.clone()))
            else {
                continue;
            };
            let own = row.authors.iter().any(|a| {
                a == &e.id || all.iter().any(|o| &o.id == a && o.verified_as.as_ref() == Some(subject))
            });
            pro(
                Fact::PassesWritten { row: r },
                cell.fixed,
                if own { Grade::Own } else { Grade::Test },
                &mut f,
            );
            con(Fact::FailsWritten { row: r }, cell.broken, &mut f);
        }
    }
    probe_facts(&mut f, e, probes);
    f
}

fn probe_facts(f: &mut Facts, e: &CandidateEvidence, ctx: &ProbeContext) {
    for (p, cand) in e.probes.iter().enumerate() {
        let Some(base) = ctx.base.get(p) else { continue };
        // A probe stopped at its time limit, here or on the base, says how fast this machine
        // was as much as how the code behaves.
        if cand.timed_out || base.timed_out {
            continue;
        }
        let authors: &[CandidateId] = ctx.authors.get(p).map(Vec::as_slice).unwrap_or(&[]);
        let own = authors.iter().any(|a| a == &e.id || Some(a) == e.verified_as.as_ref());
        for (s, c) in cand.statements.iter().enumerate() {
            let b = base.statements.get(s).map(String::as_str).unwrap_or("");
            if c == b {
                continue;
            }
            let key = |f: fn(usize, usize) -> Fact| f(p, s);
            if crate::is_error(b) && !crate::environment_error(b) && !crate::is_error(c) {
                let grade = if own { Grade::Own } else { Grade::Example };
                let fact = key(|probe, statement| Fact::CrashGone { probe, statement });
                f.grades.insert(fact.clone(), grade);
                *f.pro.entry(fact).or_default() += 1;
            }
            if crate::is_error(c) && !crate::is_error(b) {
                *f.con.entry(key(|probe, statement| Fact::NewError { probe, statement })).or_default() += 1;
                continue;
            }
            let shown = ctx.shown.get(p).and_then(|v| v.get(s)).and_then(Option::as_ref);
            if authors.is_empty() && shown.is_some_and(|shown| shown == c) {
                let fact = key(|probe, statement| Fact::ShownOutput { probe, statement });
                f.grades.insert(fact.clone(), Grade::Example);
                *f.pro.entry(fact).or_default() += 1;
            } else if !crate::is_error(b) && newly_quoted(b, c, &ctx.values).is_some() {
                // Whoever wrote the program, the base ran the same one to its end: what it
                // prints now and did not print there is the change's doing, and the task says
                // that value. It may be the value the task reports getting; but the base, which
                // does what the task reports, did not print it.
                let fact = key(|probe, statement| Fact::PrintsQuoted { probe, statement });
                f.grades.insert(fact.clone(), Grade::Example);
                *f.pro.entry(fact).or_default() += 1;
            }
        }
    }
}

/// The first line of `candidate` that is, trimmed, one of the forms of a value the task quotes
/// and that `base` does not print in any of its forms.
pub(crate) fn newly_quoted<'a>(base: &str, candidate: &'a str, values: &[Vec<String>]) -> Option<&'a str> {
    let prints = |output: &str, forms: &[String]| output.lines().any(|l| forms.iter().any(|f| f == l.trim()));
    candidate
        .lines()
        .map(str::trim)
        .find(|line| values.iter().any(|forms| forms.iter().any(|f| f == line) && !prints(base, forms)))
}

/// What a fact says, for people: `what` names the candidates' tests of a matrix row and the
/// probes by their labels.
pub(crate) fn describe(
    fact: &Fact,
    n: usize,
    probes: &ProbeContext,
    matrix: &[MatrixRow],
    outputs: &[baton_core::ProbeOutcome],
) -> String {
    let label = |p: usize, s: usize| {
        let name = probes.names.get(p).cloned().unwrap_or_else(|| format!("probe {}", p + 1));
        let statements = probes.base.get(p).map(|b| b.statements.len()).unwrap_or(1);
        if statements > 1 { format!("{name}, statement {}", s + 1) } else { name }
    };
    let authors = |r: usize| {
        matrix
            .get(r)
            .map(|row| row.authors.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let tests = |n: usize| baton_core::plural(n, "test", "tests");
    match fact {
        Fact::Fixed { stage, test } if stage == test => {
            format!("stage `{stage}` passes, where it fails on the base")
        }
        Fact::Fixed { test, .. } => format!("fixes {test}"),
        Fact::PassesWritten { row } => {
            format!("passes {n} of the {} {} wrote that fail on the base", tests(n), authors(*row))
        }
        Fact::ShownOutput { probe, statement } => {
            format!("{}: output now matches what the task shows", label(*probe, *statement))
        }
        Fact::PrintsQuoted { probe, statement } => {
            let base = probes.base.get(*probe).and_then(|b| b.statements.get(*statement));
            let printed = outputs
                .get(*probe)
                .and_then(|o| o.statements.get(*statement))
                .zip(base)
                .and_then(|(o, b)| newly_quoted(b, o, &probes.values))
                .map(|l| format!(" `{}`", l.chars().take(60).collect::<String>()))
                .unwrap_or_default();
            format!(
                "{}: prints{printed}, a value the task quotes, which the base does not print",
                label(*probe, *statement)
            )
        }
        Fact::CrashGone { probe, statement } => {
            let base = probes
                .base
                .get(*probe)
                .and_then(|b| b.statements.get(*statement))
                .map(|b| crate::last_line(b))
                .unwrap_or_default();
            format!("{}: runs to its end; fails on the base with {base}", label(*probe, *statement))
        }
        Fact::StagePasses { stage } => format!("stage `{stage}` passes, where it fails on the base"),
        Fact::Broken { stage, test } if stage == test => {
            format!("stage `{stage}` fails, where it passes on the base")
        }
        Fact::Broken { test, .. } => format!("breaks {test}"),
        Fact::OwnTestFails { test, .. } => format!("its own new test {test} fails"),
        Fact::FailsWritten { row } => {
            format!("fails {n} of the {} {} wrote that pass on the base", tests(n), authors(*row))
        }
        Fact::NewError { probe, statement } => {
            match outputs.get(*probe).and_then(|o| o.statements.get(*statement)) {
                Some(out) => {
                    format!("{}: now fails with {}", label(*probe, *statement), crate::last_line(out))
                }
                None => format!("{}: now raises an error", label(*probe, *statement)),
            }
        }
        Fact::StageWorse { stage } => format!("stage `{stage}` is worse than on the base"),
        Fact::Finding { stage, finding } => format!("{stage}: new finding {finding}"),
    }
}
