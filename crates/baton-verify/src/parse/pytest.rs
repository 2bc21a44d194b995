//! pytest's terminal output.
//!
//! Accepts three kinds of line, so that either `-rA` or `-v` (with or without xdist) is enough:
//!
//! - the short test summary of `-rA`: `PASSED id`, `FAILED id - message`, `ERROR id - message`,
//!   `XFAIL id - reason`, `XPASS id`, and `SKIPPED [1] id - reason` when a plugin names the
//!   test (pytest's own skip lines give a `path:line` location instead, which names no test and
//!   is left out);
//! - the verbose lines of `-v`: `id PASSED [ 10%]`, `id SKIPPED (reason) [ 20%]`, and with
//!   `-s` the status alone on a later line when the test printed something in between;
//! - xdist's verbose lines: `[gw0] [ 10%] PASSED id`.
//!
//! Names are pytest's node ids (`path::Class::test[params]`). Parameters may hold spaces,
//! brackets and ` - `, so an id ends at the first space outside brackets after its `::`; a
//! path with spaces in it is not supported. A module that fails to import is reported as
//! `ERROR path.py` and kept under that name, so that a candidate breaking an import shows up.
//!
//! Tests of pytest plugins run pytest inside pytest (`pytester`), and the report sections
//! (`= FAILURES =`, `= PASSES =`, ...) show those inner sessions' output. So verbose lines count
//! only before the first report section, and summary lines only there or after the last
//! `short test summary info` header, which is the outer session's.

use std::sync::LazyLock;

use baton_core::TestStatus;
use regex::Regex;

use super::{Collector, text};

const STATUSES: &str = "PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS|xfail";

/// A short-summary line: `STATUS [count] id - message`.
static SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^(?P<status>{STATUSES})(?: \[\d+\])? (?P<rest>\S.*)$")).expect("valid regex")
});
/// A verbose line: `id STATUS (reason) [ 10%]`.
static VERBOSE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^(?P<id>\S.*?) (?P<status>{STATUSES})(?: \(.*\))?\s*(?:\[\s*\d+%\])?\s*$"))
        .expect("valid regex")
});
/// An xdist verbose line: `[gw0] [ 10%] STATUS id`.
static XDIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^\[gw\d+\](?: \[\s*\d+%\])? (?P<status>{STATUSES}) (?P<rest>\S.*)$"))
        .expect("valid regex")
});
/// A status alone on its line, for a started test.
static LONE_STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"^\s*(?P<status>{STATUSES})(?: \(.*\))?\s*(?:\[\s*\d+%\])?\s*$"))
        .expect("valid regex")
});

/// The header of a report section: `==== FAILURES ====`, `==== short test summary info ====`.
static SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^=+ (?P<name>ERRORS|FAILURES|PASSES|warnings summary|short test summary info) =+$")
        .expect("valid regex")
});

pub(super) fn parse(log: &str, out: &mut Collector) {
    let lines: Vec<_> = text::lines(log).collect();
    let sections: Vec<(usize, bool)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            SECTION.captures(l.as_ref()).map(|c| (i, &c["name"] == "short test summary info"))
        })
        .collect();
    let report_start = sections.first().map_or(lines.len(), |&(i, _)| i);
    let summary_start = sections.iter().rev().find(|(_, summary)| *summary).map(|&(i, _)| i);
    let mut waiting: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        if text::is_omission_marker(line) {
            waiting = None;
            continue;
        }
        // Before the report sections: the session's progress; after its last summary header:
        // its summary; between them, what tests printed.
        let progress = i < report_start;
        if !progress && summary_start.is_none_or(|s| i <= s) {
            continue;
        }
        let found = if let Some(c) = LONE_STATUS.captures(line).filter(|_| progress) {
            waiting.take().map(|id| (id, status_of(&c["status"])))
        } else if let Some(c) = SUMMARY.captures(line).or_else(|| XDIST.captures(line)) {
            let status = &c["status"];
            let id = node_id(&c["rest"]);
            valid_id(id, status).then(|| (id.to_owned(), status_of(status)))
        } else if !progress {
            continue;
        } else if let Some(c) = VERBOSE.captures(line) {
            let id = &c["id"];
            (id.contains("::") && valid_id(id, "")).then(|| (id.to_owned(), status_of(&c["status"])))
        } else {
            // A verbose line whose status has not come yet, because the test printed (`-s`).
            let id = node_id(line);
            if id.contains("::") && valid_id(id, "") {
                waiting = Some(id.to_owned());
            }
            continue;
        };
        if let Some((id, status)) = found {
            out.record(&id, status);
            waiting = None;
        }
    }
}

fn status_of(word: &str) -> TestStatus {
    match word {
        "PASSED" => TestStatus::Pass,
        "FAILED" => TestStatus::Fail,
        "SKIPPED" => TestStatus::Skip,
        "XFAIL" | "xfail" => TestStatus::XFail,
        "XPASS" => TestStatus::XPass,
        _ => TestStatus::Error,
    }
}

/// The node id at the start of `s`: up to the first whitespace outside brackets once `::` was
/// seen, or up to the first whitespace before that. With unbalanced brackets, up to ` - `.
fn node_id(s: &str) -> &str {
    let mut depth = 0usize;
    let mut seen_colons = false;
    let mut prev = '\0';
    for (i, c) in s.char_indices() {
        match c {
            '[' if seen_colons => depth += 1,
            ']' if seen_colons => depth = depth.saturating_sub(1),
            ':' if prev == ':' => seen_colons = true,
            c if c.is_whitespace() && (depth == 0 || !seen_colons) => return &s[..i],
            _ => {}
        }
        prev = c;
    }
    if depth > 0
        && let Some((id, _)) = s.split_once(" - ")
    {
        return id;
    }
    s
}

/// Whether `id` names a test (`path::name`) or, on an `ERROR` line, a module that failed to
/// import; rejects `path:12:` skip locations and stray words after a status.
fn valid_id(id: &str, status: &str) -> bool {
    match id.split_once("::") {
        Some((path, name)) => {
            !path.is_empty() && !path.contains(char::is_whitespace) && !name.is_empty() && !id.ends_with(':')
        }
        None => status == "ERROR" && id.ends_with(".py"),
    }
}

#[cfg(test)]
mod tests {
    use baton_core::TestCase;

    use super::*;
    use TestStatus::*;

    fn run(log: &str) -> Vec<(String, TestStatus)> {
        let mut out = Collector::default();
        parse(log, &mut out);
        let parsed = out.finish();
        assert_eq!(parsed.notes, Vec::<String>::new());
        parsed.tests.into_iter().map(|TestCase { name, status }| (name, status)).collect()
    }

    fn t(name: &str, status: TestStatus) -> (String, TestStatus) {
        (name.to_owned(), status)
    }

    #[test]
    fn short_summary_of_ra() {
        let log = "\
============================= test session starts ==============================
platform linux -- Python 3.12.3, pytest-8.3.2, pluggy-1.5.0
rootdir: /work/proj
collected 9 items / 1 error

tests/test_a.py .FsxX                                                    [ 55%]
tests/test_p.py ..E                                                      [ 88%]

==================================== ERRORS ====================================
___________________ ERROR at setup of test_needs_db ____________________________
E       RuntimeError: no database
----------------------------- Captured log setup -------------------------------
ERROR    root:conftest.py:12 could not connect
=================================== FAILURES ===================================
___________________________________ test_bad ___________________________________
E       assert 1 == 2
==================================== PASSES ====================================
=========================== short test summary info ============================
PASSED tests/test_a.py::test_ok
PASSED tests/test_p.py::test_x[a b-1]
PASSED tests/test_p.py::test_x[[1, 2] - [3]]
SKIPPED [1] tests/test_a.py:12: needs network::access
XFAIL tests/test_a.py::test_xf - reason: not done
XPASS tests/test_a.py::test_xp always works now
FAILED tests/test_a.py::test_bad - assert 1 == 2
FAILED tests/test_a.py::TestK::test_m[x-y] - AssertionError: [1] != [2]
ERROR tests/test_p.py::test_needs_db - RuntimeError: no database
ERROR tests/test_broken.py - ModuleNotFoundError: No module named 'nope'
ERROR tests/test_broken2.py
===== 2 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 3 errors in 0.12s =====
";
        assert_eq!(
            run(log),
            [
                t("tests/test_a.py::test_ok", Pass),
                t("tests/test_p.py::test_x[a b-1]", Pass),
                t("tests/test_p.py::test_x[[1, 2] - [3]]", Pass),
                t("tests/test_a.py::test_xf", XFail),
                t("tests/test_a.py::test_xp", XPass),
                t("tests/test_a.py::test_bad", Fail),
                t("tests/test_a.py::TestK::test_m[x-y]", Fail),
                t("tests/test_p.py::test_needs_db", Error),
                t("tests/test_broken.py", Error),
                t("tests/test_broken2.py", Error),
            ]
        );
    }

    #[test]
    fn verbose_lines_with_colour_and_crlf() {
        let log = "\
tests/test_a.py::test_ok \u{1b}[32mPASSED\u{1b}[0m\u{1b}[32m                                 [ 10%]\u{1b}[0m\r
tests/test_a.py::test_skip SKIPPED (no network [really])                 [ 20%]\r
tests/test_a.py::test_xf XFAIL (not done)                                [ 30%]\r
tests/test_a.py::test_p[a b - c] FAILED                                  [ 40%]\r
tests/test_a.py::test_td PASSED                                          [ 50%]\r
tests/test_a.py::test_td ERROR                                           [ 50%]\r
tests/test_a.py::test_last PASSED\r
src/pkg/mod.py::pkg.mod.helper PASSED                                    [100%]\r
";
        assert_eq!(
            run(log),
            [
                t("tests/test_a.py::test_ok", Pass),
                t("tests/test_a.py::test_skip", Skip),
                t("tests/test_a.py::test_xf", XFail),
                t("tests/test_a.py::test_p[a b - c]", Fail),
                // Passed, then its teardown failed.
                t("tests/test_a.py::test_td", Error),
                t("tests/test_a.py::test_last", Pass),
                t("src/pkg/mod.py::pkg.mod.helper", Pass),
            ]
        );
    }

    #[test]
    fn summary_and_verbose_lines_merge() {
        let log = "t.py::test_a PASSED [ 50%]\nt.py::test_b FAILED [100%]\nFAILED t.py::test_b - boom\nPASSED t.py::test_a\n";
        assert_eq!(run(log), [t("t.py::test_a", Pass), t("t.py::test_b", Fail)]);
    }

    #[test]
    fn xdist_lines() {
        let log = "\
[gw0] [ 50%] PASSED tests/test_a.py::test_ok
[gw1] [100%] FAILED tests/test_a.py::test_p[1 2]
[gw1] PASSED tests/test_a.py::test_q
";
        assert_eq!(
            run(log),
            [
                t("tests/test_a.py::test_ok", Pass),
                t("tests/test_a.py::test_p[1 2]", Fail),
                t("tests/test_a.py::test_q", Pass),
            ]
        );
    }

    #[test]
    fn output_between_id_and_status() {
        let log = "\
tests/test_a.py::test_print hello from the test
and more
PASSED                                                                   [ 50%]
tests/test_a.py::test_quiet PASSED                                       [100%]
";
        assert_eq!(
            run(log),
            [t("tests/test_a.py::test_print", Pass), t("tests/test_a.py::test_quiet", Pass)]
        );
    }

    #[test]
    fn truncation_and_noise_are_ignored() {
        let log = "\
tests/test_a.py::test_cut
[baton: 99 bytes of output omitted here]
PASSED [ 90%]
ERROR    root:conftest.py:12 could not connect
FAILED to start the thing
PASSED
FAILED tests/test_a.py::test_c
";
        assert_eq!(run(log), [t("tests/test_a.py::test_c", Fail)]);
    }

    #[test]
    fn inner_sessions_in_the_report_sections_are_not_the_runs_tests() {
        let log = "\
testing/test_plugin.py::test_inner_run PASSED                              [ 50%]
testing/test_plugin.py::test_other FAILED                                  [100%]

=================================== FAILURES ===================================
__________________________________ test_other __________________________________
----------------------------- Captured stdout call -----------------------------
test_inner.py::test_fails FAILED                                         [100%]
=========================== short test summary info ============================
FAILED test_inner.py::test_fails - assert 0
==================================== PASSES ====================================
_________________________________ test_inner_run _______________________________
----------------------------- Captured stdout call -----------------------------
test_inner.py::test_a PASSED                                             [100%]
=========================== short test summary info ============================
PASSED test_inner.py::test_a
=========================== short test summary info ============================
PASSED testing/test_plugin.py::test_inner_run
FAILED testing/test_plugin.py::test_other - assert 1 == 2
========================= 1 failed, 1 passed in 0.31s ==========================
";
        assert_eq!(
            run(log),
            [
                t("testing/test_plugin.py::test_inner_run", Pass),
                t("testing/test_plugin.py::test_other", Fail)
            ]
        );
    }

    #[test]
    fn node_ids() {
        assert_eq!(node_id("t.py::test_x[a b] - msg"), "t.py::test_x[a b]");
        assert_eq!(node_id("t.py::test_x[a[b] - msg"), "t.py::test_x[a[b]");
        assert_eq!(node_id("t.py::test_x[a]b] rest"), "t.py::test_x[a]b]");
        assert_eq!(node_id("t.py:12: reason"), "t.py:12:");
        assert_eq!(node_id("t.py::C::t"), "t.py::C::t");
        assert!(!valid_id("t.py:12:", "SKIPPED"));
        assert!(!valid_id("to", "FAILED"));
        assert!(valid_id("t.py", "ERROR"));
    }
}
