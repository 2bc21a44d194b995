//! The `regex` parser: a user's pattern for a format baton does not know.
//!
//! The pattern is applied to each line on its own (so `^` and `$` are the line's ends), after
//! colour codes are removed; its first match on a line is used. The named group `name` gives
//! the test, `status` the text to look up in the stage's `status` table. When that table is
//! empty, [`builtin_status`] knows the usual words. A line whose status is in neither is not a
//! test, but is counted in a note, since it usually means the table lacks an entry.

use std::collections::BTreeMap;

use baton_config::StageConfig;
use baton_core::{TestStatus, plural};
use regex::Regex;

use crate::SetupError;
use crate::error::regex_detail;

use super::{Collector, text};

/// The compiled pattern and the status table of a stage, checked again here even though
/// baton-config validated them, so that a parser never exists without its groups.
/// A stage's compiled patterns: the result line, an optional section header, the status table.
pub(super) type Compiled = (Regex, Option<Regex>, BTreeMap<String, TestStatus>);

pub(super) fn compile(stage: &StageConfig) -> Result<Compiled, SetupError> {
    let name = &stage.name;
    let pattern = stage
        .pattern
        .as_deref()
        .ok_or_else(|| SetupError::NoPattern { stage: name.clone(), parser: "regex" })?;
    let bad = |which, e: regex::Error| SetupError::BadPattern {
        stage: name.clone(),
        which,
        detail: regex_detail(&e),
    };
    let regex = Regex::new(pattern).map_err(|e| bad("pattern", e))?;
    for group in ["name", "status"] {
        if !regex.capture_names().any(|n| n == Some(group)) {
            return Err(SetupError::NoGroup { stage: name.clone(), group });
        }
    }
    let status = stage
        .status
        .iter()
        .map(|(text, status)| match TestStatus::parse(status) {
            Some(s) => Ok((text.clone(), s)),
            None => {
                Err(SetupError::BadStatus { stage: name.clone(), text: text.clone(), status: status.clone() })
            }
        })
        .collect::<Result<_, _>>()?;
    let section =
        stage.section.as_deref().map(|s| Regex::new(s).map_err(|e| bad("section pattern", e))).transpose()?;
    Ok((regex, section, status))
}

/// The status words understood when a stage gives no `status` table.
///
/// Words are matched without regard to case:
///
/// | status | words |
/// |---|---|
/// | pass | ok, pass, passed, passing, success, succeeded, ✓, ✔ |
/// | fail | fail, failed, failing, failure, not ok, ✗, ✘, ✕ |
/// | error | error, errored, erred |
/// | skip | skip, skipped, ignored, pending, disabled, todo |
/// | xfail | xfail, xfailed, expected failure |
/// | xpass | xpass, xpassed, unexpected success |
///
/// Single characters, as progress lines print them, are matched exactly: `.` pass, `F` fail,
/// `E` error, `s` skip, `x` xfail, `X` xpass (pytest's letters).
pub(super) fn builtin_status(text: &str) -> Option<TestStatus> {
    let status = match text {
        "." => TestStatus::Pass,
        "F" => TestStatus::Fail,
        "E" => TestStatus::Error,
        "s" => TestStatus::Skip,
        "x" => TestStatus::XFail,
        "X" => TestStatus::XPass,
        _ => match text.to_lowercase().as_str() {
            "ok" | "pass" | "passed" | "passing" | "success" | "succeeded" | "✓" | "✔" => {
                TestStatus::Pass
            }
            "fail" | "failed" | "failing" | "failure" | "not ok" | "✗" | "✘" | "✕" => TestStatus::Fail,
            "error" | "errored" | "erred" => TestStatus::Error,
            "skip" | "skipped" | "ignored" | "pending" | "disabled" | "todo" => TestStatus::Skip,
            "xfail" | "xfailed" | "expected failure" => TestStatus::XFail,
            "xpass" | "xpassed" | "unexpected success" => TestStatus::XPass,
            _ => return None,
        },
    };
    Some(status)
}

pub(super) fn parse(
    pattern: &Regex,
    section: Option<&Regex>,
    table: &BTreeMap<String, TestStatus>,
    log: &str,
    out: &mut Collector,
) {
    // Unknown status texts in first-seen order, with how many lines had each.
    let mut unknown: Vec<(String, usize)> = Vec::new();
    let mut nameless = 0usize;
    let mut current: Option<String> = None;
    for line in text::lines(log) {
        if let Some(s) = section
            .and_then(|re| re.captures(&line))
            .and_then(|c| c.name("section").map(|m| m.as_str().trim().to_owned()))
        {
            current = Some(s);
            continue;
        }
        let Some(c) = pattern.captures(&line) else { continue };
        let bare = c.name("name").map_or("", |m| m.as_str()).trim();
        let prefixed;
        let name = match &current {
            Some(s) if !bare.is_empty() => {
                prefixed = format!("{s}::{bare}");
                prefixed.as_str()
            }
            _ => bare,
        };
        if name.is_empty() {
            nameless += 1;
            continue;
        }
        let raw = c.name("status").map_or("", |m| m.as_str());
        let status = if table.is_empty() {
            builtin_status(raw.trim())
        } else {
            table.get(raw).or_else(|| table.get(raw.trim())).copied()
        };
        match status {
            Some(status) => out.record(name, status),
            None => match unknown.iter_mut().find(|(text, _)| text == raw.trim()) {
                Some((_, count)) => *count += 1,
                None => unknown.push((raw.trim().to_owned(), 1)),
            },
        }
    }
    if !unknown.is_empty() {
        let lines: usize = unknown.iter().map(|(_, n)| n).sum();
        const SHOWN: usize = 5;
        let mut texts: Vec<String> = unknown
            .iter()
            .take(SHOWN)
            .map(|(t, _)| if t.is_empty() { "(empty)".to_owned() } else { format!("`{t}`") })
            .collect();
        if unknown.len() > SHOWN {
            texts.push(format!("and {} more", unknown.len() - SHOWN));
        }
        let hint = if table.is_empty() {
            format!(
                "; map {} in the stage's `status` table, which replaces the built-in words",
                plural(unknown.len(), "it", "them")
            )
        } else {
            String::new()
        };
        out.note(format!(
            "{lines} {} looked like {} but had {} {}{hint}",
            plural(lines, "line", "lines"),
            plural(lines, "a result", "results"),
            plural(unknown.len(), "an unknown status", "unknown statuses"),
            texts.join(", "),
        ));
    }
    if nameless > 0 {
        out.note(format!(
            "{nameless} {} matched the pattern with an empty `name`",
            plural(nameless, "line", "lines")
        ));
    }
}

#[cfg(test)]
mod tests {
    use baton_core::TestCase;

    use super::*;
    use TestStatus::*;

    fn stage(pattern: &str, status: &[(&str, &str)]) -> StageConfig {
        crate::parse::test_stage("regex", Some(pattern), status)
    }

    fn run(pattern: &str, status: &[(&str, &str)], log: &str) -> (Vec<(String, TestStatus)>, Vec<String>) {
        let (regex, section, table) = compile(&stage(pattern, status)).unwrap();
        let mut out = Collector::default();
        parse(&regex, section.as_ref(), &table, log, &mut out);
        let parsed = out.finish();
        (parsed.tests.into_iter().map(|TestCase { name, status }| (name, status)).collect(), parsed.notes)
    }

    fn t(name: &str, status: TestStatus) -> (String, TestStatus) {
        (name.to_owned(), status)
    }

    #[test]
    fn a_section_header_prefixes_the_names_after_it() {
        let mut config = stage(r"^(?P<name>test_\w+) (?P<status>ok|F)$", &[("ok", "pass"), ("F", "fail")]);
        config.section = Some(r"^(?P<section>\S+\.py)\[\d+\]".into());
        let (regex, section, table) = compile(&config).unwrap();
        let mut out = Collector::default();
        let log =
            "sympy/a/tests/test_x.py[2]\ntest_one ok\ntest_two F\nsympy/b/tests/test_y.py[1]\ntest_one ok\n";
        parse(&regex, section.as_ref(), &table, log, &mut out);
        let names: Vec<(String, TestStatus)> =
            out.finish().tests.into_iter().map(|TestCase { name, status }| (name, status)).collect();
        assert_eq!(
            names,
            [
                t("sympy/a/tests/test_x.py::test_one", Pass),
                t("sympy/a/tests/test_x.py::test_two", Fail),
                t("sympy/b/tests/test_y.py::test_one", Pass)
            ]
        );
    }

    #[test]
    fn builtin_words_and_letters() {
        let log = "\
[PASS] login works\r
[FAIL] logout works\r
\u{1b}[33m[SKIPPED]\u{1b}[0m export\r
[✓] unicode\r
[E] crashes\r
[Expected Failure] known bug\r
[FLAKY] sometimes\r
[FLAKY] other\r
[RETRY] again\r
no brackets here\r
";
        let (tests, notes) = run(r"^\[(?P<status>[^\]]+)\] (?P<name>.+)$", &[], log);
        assert_eq!(
            tests,
            [
                t("login works", Pass),
                t("logout works", Fail),
                t("export", Skip),
                t("unicode", Pass),
                t("crashes", Error),
                t("known bug", XFail),
            ]
        );
        assert_eq!(
            notes,
            [
                "3 lines looked like results but had unknown statuses `FLAKY`, `RETRY`; map them in the stage's \
                 `status` table, which replaces the built-in words"
            ]
        );
    }

    #[test]
    fn a_table_replaces_the_builtin_words() {
        let log = "case a: GREEN\ncase b: RED\ncase c: PASS\ncase d: AMBER\n";
        let (tests, notes) = run(
            r"case (?P<name>\w+): (?P<status>\w+)",
            &[("GREEN", "pass"), ("RED", "fail"), ("AMBER", "xfail")],
            log,
        );
        assert_eq!(tests, [t("a", Pass), t("b", Fail), t("d", XFail)]);
        assert_eq!(notes, ["1 line looked like a result but had an unknown status `PASS`"]);
    }

    #[test]
    fn lines_are_matched_one_at_a_time() {
        // `$` is the end of each line, and `.` never crosses one.
        let log = "t1 ok\nt2 fail\n";
        let (tests, _) = run(r"^(?P<name>t\d) (?P<status>.*)$", &[], log);
        assert_eq!(tests, [t("t1", Pass), t("t2", Fail)]);
    }

    #[test]
    fn optional_groups_that_did_not_match() {
        let (tests, notes) = run(r"^(?P<name>\w+)?: (?P<status>\w+)?$", &[], "a: ok\n: ok\nb: \n");
        assert_eq!(tests, [t("a", Pass)]);
        assert_eq!(
            notes,
            [
                "1 line looked like a result but had an unknown status (empty); map it in the stage's `status` table, \
                 which replaces the built-in words",
                "1 line matched the pattern with an empty `name`",
            ]
        );
    }

    #[test]
    fn compile_errors_are_one_line() {
        let err = compile(&stage("(?P<name>", &[])).unwrap_err().to_string();
        assert_eq!(err, "the pattern of stage `unit` is not a valid regex: unclosed group");
        let err = compile(&stage("(?P<name>x)", &[])).unwrap_err().to_string();
        assert!(err.contains("no named group `status`"), "{err}");
        let err = compile(&stage("(?P<name>x)(?P<status>y)", &[("y", "good")])).unwrap_err().to_string();
        assert!(err.contains("`good`"), "{err}");
        let mut no_pattern = stage("", &[]);
        no_pattern.pattern = None;
        assert!(compile(&no_pattern).unwrap_err().to_string().contains("has no `pattern`"));
    }
}
