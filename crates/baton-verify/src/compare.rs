use std::collections::BTreeMap;

use baton_core::{StageComparison, StageResult, StageStatus, TestCase, TestChange, TestDelta, TestStatus};

/// Compares a candidate's stage results with the base's, test by test where both sides
/// produced test results, by exit status otherwise.
pub fn compare(base: &[StageResult], candidate: &[StageResult]) -> Vec<StageComparison> {
    candidate
        .iter()
        .map(|cand| {
            let base_stage = base.iter().find(|b| b.stage == cand.stage);
            let base_tests: BTreeMap<&str, TestStatus> = base_stage
                .map(|b| compared_tests(b, &cand.left_out).map(|t| (t.name.as_str(), t.status)).collect())
                .unwrap_or_default();
            let cand_tests: BTreeMap<&str, TestStatus> =
                cand.tests.iter().map(|t| (t.name.as_str(), t.status)).collect();
            let mut tests = Vec::new();
            let mut still_passing = 0;
            let names: std::collections::BTreeSet<&str> =
                base_tests.keys().chain(cand_tests.keys()).copied().collect();
            // When the base produced results, a candidate whose run of the same stage produced
            // none has lost them all (they no longer run). A stage the candidate skipped (for
            // example, no related tests) is not compared test by test.
            let skipped = matches!(cand.status, StageStatus::Skipped { .. });
            // A base whose run failed before it reported any test (a test target that does not
            // compile, a module that does not import: hidden tests of a function the task asks
            // to add) failed every test a candidate's run reports.
            let base_failed_outright = base_stage
                .is_some_and(|b| !b.parsed && matches!(b.status, StageStatus::Failed { .. }))
                && cand.parsed;
            let parsed = !skipped && (base_stage.is_some_and(|b| b.parsed) || base_failed_outright);
            let flaky: std::collections::BTreeSet<&str> = base_stage
                .into_iter()
                .flat_map(|b| b.flaky.iter())
                .chain(cand.flaky.iter())
                .map(String::as_str)
                .collect();
            // Where both runs were stopped at their time limit, where each was cut says how fast
            // the machine was: the tests the candidate did not reach are not lost.
            let both_cut = cand.status == StageStatus::TimedOut
                && base_stage.is_some_and(|b| b.status == StageStatus::TimedOut);
            if parsed {
                for name in names {
                    if flaky.contains(name) {
                        tests.push(TestDelta { name: name.to_owned(), change: TestChange::Flaky });
                        continue;
                    }
                    let on_base = if base_failed_outright {
                        Some(TestStatus::Fail)
                    } else {
                        base_tests.get(name).copied().or_else(|| failed_module(&base_tests, name))
                    };
                    match TestChange::classify(on_base, cand_tests.get(name).copied()) {
                        Some(TestChange::StillPassing) => still_passing += 1,
                        Some(TestChange::Missing) if both_cut => {}
                        Some(change) => tests.push(TestDelta { name: name.to_owned(), change }),
                        None => {}
                    }
                }
            }
            let new_findings = match (&cand.findings, base_stage.and_then(|b| b.findings.as_ref())) {
                (Some(c), Some(b)) => new_findings(b, c),
                _ => Vec::new(),
            };
            let metric = match (base_stage.and_then(|b| b.metric), cand.metric) {
                (Some(b), Some(c)) => Some((b.value, c.value)),
                _ => None,
            };
            let metric_worse = match (metric, cand.metric) {
                (Some((b, c)), Some(m)) => {
                    let change =
                        if b == 0.0 { if c == 0.0 { 0.0 } else { f64::INFINITY } } else { (c - b) / b.abs() };
                    if m.lower_is_better { change > m.tolerance } else { change < -m.tolerance }
                }
                _ => false,
            };
            StageComparison {
                new_findings,
                metric,
                metric_worse,
                stage: cand.stage.clone(),
                kind: cand.kind,
                base: base_stage.map(|b| b.status.clone()),
                candidate: cand.status.clone(),
                tests,
                still_passing,
                parsed,
            }
        })
        .collect()
}

/// How the base's run reported `name`'s module when it did not report `name` itself: a module
/// that failed as a whole (pytest's `ERROR tests/test_x.py` for a module that does not import)
/// failed every test in it. `None` when the module ran or was not reported.
fn failed_module(base: &BTreeMap<&str, TestStatus>, name: &str) -> Option<TestStatus> {
    let (module, _) = name.split_once("::")?;
    base.get(module).copied().filter(|s| !s.is_ok())
}

/// The base's tests to compare with a candidate's: all but those of the groups of related test
/// files the candidate left out (see [`StageResult::parts`]).
fn compared_tests<'a>(base: &'a StageResult, left_out: &[String]) -> impl Iterator<Item = &'a TestCase> {
    let mut keep = Vec::with_capacity(base.tests.len());
    for part in &base.parts {
        let skipped = !left_out.is_empty() && part.files.iter().all(|f| left_out.contains(f));
        keep.extend(std::iter::repeat_n(!skipped, part.tests));
    }
    keep.resize(base.tests.len(), true);
    base.tests.iter().zip(keep).filter_map(|(t, keep)| keep.then_some(t))
}

/// The findings in `cand` beyond those in `base`, counting duplicates.
fn new_findings(base: &[String], cand: &[String]) -> Vec<String> {
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for f in base {
        *left.entry(f.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for f in cand {
        match left.get_mut(f.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(f.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use baton_core::{StageKind, StageStatus, TestCase};

    use super::*;

    fn stage(tests: &[(&str, TestStatus)]) -> StageResult {
        StageResult {
            stage: "test".into(),
            kind: StageKind::Test,
            status: StageStatus::Passed,
            duration_ms: 0,
            tests: tests.iter().map(|(n, s)| TestCase { name: n.to_string(), status: *s }).collect(),
            parsed: !tests.is_empty(),
            log: None,
            notes: vec![],
            flaky: vec![],
            findings: None,
            metric: None,
            parts: vec![],
            left_out: vec![],
            expects_tests: true,
            foreign_paths: vec![],
        }
    }

    #[test]
    fn every_kind_of_change_is_classified() {
        use TestStatus::*;
        let base = stage(&[("a", Pass), ("b", Fail), ("c", Pass), ("d", Fail), ("gone", Pass)]);
        let cand = stage(&[("a", Pass), ("b", Pass), ("c", Error), ("d", Fail), ("new", Pass)]);
        let cmp = compare(&[base], &[cand]);
        assert_eq!(cmp.len(), 1);
        let c = &cmp[0];
        assert_eq!(c.still_passing, 1);
        let got: Vec<_> = c.tests.iter().map(|t| (t.name.as_str(), t.change)).collect();
        assert_eq!(
            got,
            [
                ("b", TestChange::Fixed),
                ("c", TestChange::Broken),
                ("d", TestChange::StillFailing),
                ("gone", TestChange::Missing),
                ("new", TestChange::NewPassing),
            ]
        );
    }

    #[test]
    fn flaky_tests_on_either_side_count_for_nothing() {
        use TestStatus::*;
        let mut base = stage(&[("a", Fail), ("b", Pass)]);
        base.flaky = vec!["a".into()];
        let mut cand = stage(&[("a", Pass), ("b", Fail)]);
        cand.flaky = vec!["b".into()];
        let c = &compare(&[base], &[cand])[0];
        let got: Vec<_> = c.tests.iter().map(|t| (t.name.as_str(), t.change)).collect();
        assert_eq!(got, [("a", TestChange::Flaky), ("b", TestChange::Flaky)]);
    }

    #[test]
    fn tests_a_cut_run_did_not_reach_are_lost_only_when_the_base_finished() {
        use TestStatus::*;
        let mut base = stage(&[("a", Pass), ("b", Pass), ("c", Pass)]);
        let mut cand = stage(&[("a", Pass)]);
        cand.status = StageStatus::TimedOut;
        let missing = |base: &StageResult, cand: &StageResult| {
            compare(std::slice::from_ref(base), std::slice::from_ref(cand))[0]
                .with_change(TestChange::Missing)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(missing(&base, &cand), ["b", "c"], "the candidate made the stage too slow");
        base.status = StageStatus::TimedOut;
        assert!(missing(&base, &cand).is_empty(), "both were cut: where says nothing");
    }

    #[test]
    fn a_module_that_failed_to_import_on_the_base_failed_each_of_its_tests() {
        use TestStatus::*;
        // Hidden tests of a function the task asks to add: on the base their module does not
        // import; a candidate that adds the function runs them.
        let base = stage(&[("tests/test_old.py::test_a", Pass), ("tests/test_new.py", Error)]);
        let cand = stage(&[
            ("tests/test_old.py::test_a", Pass),
            ("tests/test_new.py::test_b", Pass),
            ("tests/test_new.py::test_c", Fail),
        ]);
        let c = &compare(&[base], &[cand])[0];
        let got: Vec<_> = c.tests.iter().map(|t| (t.name.as_str(), t.change)).collect();
        assert_eq!(
            got,
            [
                ("tests/test_new.py::test_b", TestChange::Fixed),
                ("tests/test_new.py::test_c", TestChange::StillFailing)
            ],
            "the module's error entry is gone, which loses nothing"
        );
    }

    #[test]
    fn a_base_that_failed_before_any_test_ran_failed_them_all() {
        use TestStatus::*;
        // A test target that does not compile on the base.
        let mut base = stage(&[]);
        base.status = StageStatus::Failed { exit_code: Some(101), signal: None };
        let cand = stage(&[("parses", Pass), ("rejects", Fail)]);
        let c = &compare(&[base.clone()], &[cand])[0];
        assert!(c.parsed);
        let got: Vec<_> = c.tests.iter().map(|t| (t.name.as_str(), t.change)).collect();
        assert_eq!(got, [("parses", TestChange::Fixed), ("rejects", TestChange::StillFailing)]);
        // A candidate whose run reports nothing either compares by status.
        let mut silent = stage(&[]);
        silent.status = base.status.clone();
        assert!(!compare(&[base], &[silent])[0].parsed);
    }

    #[test]
    fn unparsed_stages_compare_by_status_only() {
        let base = stage(&[]);
        let cand = stage(&[("x", TestStatus::Fail)]);
        let c = &compare(&[base], &[cand])[0];
        assert!(!c.parsed && c.tests.is_empty());
        assert_eq!(c.base, Some(StageStatus::Passed));
    }

    #[test]
    fn tests_a_candidate_no_longer_runs_are_missing_unless_it_skipped_the_stage() {
        let base = stage(&[("a", TestStatus::Pass), ("b", TestStatus::Fail)]);
        let mut crashed = stage(&[]);
        crashed.status = StageStatus::Failed { exit_code: Some(2), signal: None };
        let c = &compare(std::slice::from_ref(&base), &[crashed])[0];
        assert!(c.parsed);
        // `b` failed on the base already: its absence loses nothing.
        assert_eq!(c.with_change(TestChange::Missing).collect::<Vec<_>>(), ["a"]);
        let mut skipped = stage(&[]);
        skipped.status = StageStatus::Skipped { reason: "no related tests".into() };
        let c = &compare(&[base], &[skipped])[0];
        assert!(!c.parsed && c.tests.is_empty());
    }
}

#[cfg(test)]
mod review_tests {
    use baton_core::{Metric, StageKind, StageResult, StageStatus};

    use super::compare;

    fn review(findings: &[&str], metric: Option<f64>) -> StageResult {
        StageResult {
            stage: "lint".into(),
            kind: StageKind::Lint,
            status: StageStatus::Passed,
            duration_ms: 0,
            tests: vec![],
            parsed: false,
            log: None,
            notes: vec![],
            flaky: vec![],
            findings: Some(findings.iter().map(|s| s.to_string()).collect()),
            metric: metric.map(|value| Metric { value, lower_is_better: true, tolerance: 0.05 }),
            parts: vec![],
            left_out: vec![],
            expects_tests: true,
            foreign_paths: vec![],
        }
    }

    #[test]
    fn only_findings_the_base_lacks_count_and_metrics_have_a_tolerance() {
        let base = review(&["a.py: E1 x", "a.py: E1 x", "b.py: W2 y"], Some(100.0));
        let c = &compare(
            std::slice::from_ref(&base),
            &[review(&["a.py: E1 x", "a.py: E1 x", "a.py: E1 x", "c.py: F3 z"], Some(104.0))],
        )[0];
        assert_eq!(c.new_findings, ["a.py: E1 x", "c.py: F3 z"]);
        assert_eq!(c.metric, Some((100.0, 104.0)));
        assert!(!c.metric_worse, "4% is within the tolerance");
        let c = &compare(&[base], &[review(&[], Some(112.0))])[0];
        assert!(c.new_findings.is_empty());
        assert!(c.metric_worse);
    }
}
