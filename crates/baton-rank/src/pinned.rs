//! Tests that pin the behaviour the task asks to change.
//!
//! A task that asks to change a message, a default or a signature is often met by a test that
//! asserts the old one: the right fix must break it. Counting such a test against every
//! candidate that breaks it would favour the candidates that changed nothing that matters. When
//! most of the different changes that ran a test, coming from at least two different agents,
//! break it, the test says more about the old behaviour than about the candidates: it counts
//! for nothing, and the scoreboard says so with what a person needs to check it.
//!
//! Only candidates that passed the gates count, each different change once (copies of one
//! change are one voice; a candidate out on a gate is no voice). The smallest pool in which
//! this consensus counts at all: two different changes from two different agents, both
//! breaking the test.

use std::collections::{BTreeMap, BTreeSet};

use baton_core::{CandidateId, PinnedTests};

use crate::CandidateEvidence;
use crate::facts::{TestKey, broken_tests};

/// The pinned tests, and the groups of them for the scoreboard (tests broken by the same
/// changes together). `voters` are the candidates that passed the gates, one for each
/// different change.
pub(crate) fn pinned_tests(
    candidates: &[CandidateEvidence],
    voters: &[usize],
) -> (BTreeSet<TestKey>, Vec<PinnedTests>) {
    // A test still passing is not listed among a stage's results: whoever compared the stage
    // test by test ran it.
    let ran =
        |v: usize, stage: &str| candidates[voters[v]].stages.iter().any(|s| s.stage == stage && s.parsed);
    let broke: Vec<BTreeSet<TestKey>> = voters.iter().map(|&i| broken_tests(&candidates[i])).collect();
    let every: BTreeSet<&TestKey> = broke.iter().flatten().collect();
    let mut pinned = BTreeSet::new();
    // breakers -> tests they all break, for the scoreboard
    let mut groups: BTreeMap<Vec<usize>, (Vec<String>, usize)> = BTreeMap::new();
    for test in every {
        let breakers: Vec<usize> = (0..voters.len()).filter(|&v| broke[v].contains(test)).collect();
        let runners = (0..voters.len()).filter(|&v| ran(v, &test.0)).count();
        let agents: BTreeSet<&str> = breakers.iter().map(|&v| candidates[voters[v]].agent.as_str()).collect();
        if breakers.len() >= 2 && agents.len() >= 2 && 2 * breakers.len() > runners {
            pinned.insert(test.clone());
            let group = groups.entry(breakers).or_insert_with(|| (Vec::new(), runners));
            group.0.push(test.1.clone());
            group.1 = group.1.max(runners);
        }
    }
    let mut out: Vec<PinnedTests> = groups
        .into_iter()
        .map(|(breakers, (tests, of))| {
            let broken_by: Vec<CandidateId> =
                breakers.iter().map(|&v| candidates[voters[v]].id.clone()).collect();
            let agents: BTreeSet<&str> =
                breakers.iter().map(|&v| candidates[voters[v]].agent.as_str()).collect();
            let expectation_edits = candidates
                .iter()
                .flat_map(|c| {
                    c.expectation_edits
                        .iter()
                        .filter(|e| tests.iter().any(|t| names_test(t, &e.file, &e.test)))
                        .map(move |e| format!("{}: {e}", c.id))
                })
                .collect();
            PinnedTests { tests, broken_by, of, agents: agents.len(), expectation_edits }
        })
        .collect();
    out.sort_by(|a, b| b.broken_by.len().cmp(&a.broken_by.len()).then(a.tests.cmp(&b.tests)));
    (pinned, out)
}

/// Whether the test result named `name` is the test function `function` of `file`: the name
/// holds the function as a whole word (`tests/test_x.py::test_f`, `tests::test_f`,
/// `test_f (mod.Class)`), and names the file where it names one.
pub(crate) fn names_test(name: &str, file: &str, function: &str) -> bool {
    let words: Vec<&str> = name.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
    if !words.contains(&function) {
        return false;
    }
    match name.split_once("::") {
        Some((path, _)) if path.contains('/') || path.contains('.') => path == file,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_name_names_its_function_and_file() {
        assert!(names_test("tests/test_x.py::TestA::test_f", "tests/test_x.py", "test_f"));
        assert!(!names_test("tests/test_y.py::test_f", "tests/test_x.py", "test_f"));
        assert!(names_test("parser::tests::test_f", "src/parser.rs", "test_f"));
        assert!(names_test("test_f (app.tests.TestA)", "app/tests.py", "test_f"));
        assert!(!names_test("tests/test_x.py::test_foo", "tests/test_x.py", "test_f"));
    }
}
