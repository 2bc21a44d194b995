//! Test-result parsers: turn a stage's output, or the report file it wrote, into test cases.
//!
//! One module per format. Every parser reads text that a tool printed for people, possibly
//! coloured, with CRLF line ends, cut in the middle by baton's log limit, or interleaved with
//! what the tests themselves printed. So they are lenient: a line they do not recognise is
//! skipped, and what they could not make sense of becomes a note rather than an error. None of
//! them panics on any input.
//!
//! Results are keyed by test name. A name seen twice (a rerun, the same test in two runs of the
//! suite) keeps one entry whose status is the worst of them, in the order
//! error > fail > xpass > pass > xfail > skip, so that a failure is never hidden by a later pass.
//! Formats that can tell equal names apart (libtest's test binaries, Go's packages) put that
//! distinction into the name instead.

use std::collections::{BTreeMap, HashMap};

use baton_config::{ParserKind, StageConfig};
use baton_core::{TestCase, TestStatus};
use regex::Regex;

mod go_json;
mod junit;
mod libtest;
mod pattern;
mod pytest;
mod review;
mod tap;
mod text;
mod unittest;

/// A stage's parser, built once from its configuration.
#[derive(Debug)]
pub enum Parser {
    /// Reads nothing: only the exit status counts.
    ExitCode,
    /// JUnit/xUnit XML from the stage's `report` file.
    Junit,
    /// `cargo test` output.
    Libtest,
    /// pytest's `-rA` summary and `-v` lines.
    Pytest,
    /// Python unittest's (or Django's) verbose lines.
    Unittest,
    /// The Test Anything Protocol.
    Tap,
    /// `go test -json` events.
    GoJson,
    /// Findings of a linter or type checker: each line matching the pattern.
    Findings { pattern: Regex },
    /// A SARIF report's results.
    Sarif,
    /// A number measured by the stage.
    Metric { pattern: Regex, lower_is_better: bool, tolerance: f64 },
    /// A user's pattern, applied to each line.
    Regex {
        /// Has the named groups `name` and `status`.
        pattern: Regex,
        /// A header line that starts a section (group `section`), prefixing the names after it.
        section: Option<Regex>,
        /// Captured status text to status. Empty means built-in synonyms: `ok`, `passed`, `✓`,
        /// `FAIL`, `error`, `skipped`, `xfail`, … and pytest's letters `.`, `F`, `E`, `s`, `x`,
        /// `X` (the full table is in `parse/pattern.rs`).
        status: BTreeMap<String, TestStatus>,
    },
}

/// What a parser found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// One entry per distinct test name, in first-seen order.
    pub tests: Vec<TestCase>,
    /// Things the user should know, such as an unreadable report or unknown statuses.
    pub notes: Vec<String>,
    /// For review parsers: the findings (`None` from test parsers).
    pub findings: Option<Vec<String>>,
    /// For the metric parser: the value found.
    pub metric: Option<baton_core::Metric>,
}

impl Parser {
    /// Builds the parser of a stage. Errors are one-line messages naming the stage.
    pub fn from_config(stage: &StageConfig) -> Result<Parser, crate::SetupError> {
        Ok(match stage.parser {
            ParserKind::ExitCode => Parser::ExitCode,
            ParserKind::Junit => Parser::Junit,
            ParserKind::Libtest => Parser::Libtest,
            ParserKind::Pytest => Parser::Pytest,
            ParserKind::Unittest => Parser::Unittest,
            ParserKind::Tap => Parser::Tap,
            ParserKind::GoJson => Parser::GoJson,
            ParserKind::Regex => {
                let (pattern, section, status) = pattern::compile(stage)?;
                Parser::Regex { pattern, section, status }
            }
            ParserKind::Findings | ParserKind::Metric => {
                let source = stage.pattern.as_deref().ok_or_else(|| crate::SetupError::NoPattern {
                    stage: stage.name.clone(),
                    parser: stage.parser.as_str(),
                })?;
                let pattern = Regex::new(source).map_err(|e| crate::SetupError::BadPattern {
                    stage: stage.name.clone(),
                    which: "pattern",
                    detail: crate::error::regex_detail(&e),
                })?;
                if stage.parser == ParserKind::Findings {
                    Parser::Findings { pattern }
                } else {
                    Parser::Metric {
                        pattern,
                        lower_is_better: stage.better == baton_config::Better::Lower,
                        tolerance: stage.tolerance,
                    }
                }
            }
            ParserKind::Sarif => Parser::Sarif,
        })
    }

    /// Reads the test results of one run of a stage.
    ///
    /// `log` is the stage's combined stdout and stderr, possibly cut in the middle by a line
    /// `[baton: N bytes of output omitted here]`; `report` is the content of the stage's
    /// `report` file when the configuration names one and the stage wrote it.
    pub fn parse(&self, log: &str, report: Option<&str>) -> Parsed {
        let mut out = Collector::default();
        match self {
            Parser::ExitCode => {}
            // A missing report is noted by the caller, which knows its path.
            Parser::Junit => {
                if let Some(report) = report {
                    junit::parse(report, &mut out);
                }
            }
            Parser::Libtest => libtest::parse(log, &mut out),
            Parser::Pytest => pytest::parse(log, &mut out),
            Parser::Unittest => unittest::parse(log, &mut out),
            Parser::Tap => tap::parse(log, &mut out),
            Parser::GoJson => go_json::parse(log, &mut out),
            Parser::Regex { pattern, section, status } => {
                pattern::parse(pattern, section.as_ref(), status, log, &mut out)
            }
            Parser::Findings { pattern } => {
                let mut parsed = out.finish();
                parsed.findings = Some(review::findings(pattern, log));
                return parsed;
            }
            Parser::Sarif => {
                let mut parsed = out.finish();
                match report.map(review::sarif) {
                    Some(Ok(found)) => parsed.findings = Some(found),
                    Some(Err(note)) => parsed.notes.push(note),
                    None => {}
                }
                return parsed;
            }
            Parser::Metric { pattern, lower_is_better, tolerance } => {
                let mut parsed = out.finish();
                match review::metric(pattern, log) {
                    Some(value) => {
                        parsed.metric = Some(baton_core::Metric {
                            value,
                            lower_is_better: *lower_is_better,
                            tolerance: *tolerance,
                        })
                    }
                    None => parsed.notes.push("the output holds no value for the metric's pattern".into()),
                }
                return parsed;
            }
        }
        out.finish()
    }
}

/// Gathers results as a parser finds them, merging repeated names.
#[derive(Debug, Default)]
struct Collector {
    tests: Vec<TestCase>,
    index: HashMap<String, usize>,
    notes: Vec<String>,
}

impl Collector {
    /// Records one result; an empty name is ignored, a repeated one keeps the worse status.
    fn record(&mut self, name: &str, status: TestStatus) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        match self.index.get(name) {
            Some(&i) => {
                let kept = &mut self.tests[i].status;
                if severity(status) > severity(*kept) {
                    *kept = status;
                }
            }
            None => {
                self.index.insert(name.to_owned(), self.tests.len());
                self.tests.push(TestCase { name: name.to_owned(), status });
            }
        }
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn len(&self) -> usize {
        self.tests.len()
    }

    fn finish(self) -> Parsed {
        Parsed { tests: self.tests, notes: self.notes, findings: None, metric: None }
    }
}

/// How bad a status is, for merging repeated names: higher wins.
fn severity(status: TestStatus) -> u8 {
    match status {
        TestStatus::Skip => 0,
        TestStatus::XFail => 1,
        TestStatus::Pass => 2,
        TestStatus::XPass => 3,
        TestStatus::Fail => 4,
        TestStatus::Error => 5,
    }
}

/// A stage as a configuration file would give it, built through serde so that fields added
/// to [`StageConfig`] later take their defaults.
#[cfg(test)]
fn test_stage(parser: &str, pattern: Option<&str>, status: &[(&str, &str)]) -> StageConfig {
    let status: BTreeMap<&str, &str> = status.iter().copied().collect();
    let json = serde_json::json!({
        "name": "unit",
        "run": "true",
        "parser": parser,
        "pattern": pattern,
        "status": status,
    });
    serde_json::from_value(json).expect("a valid stage")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(parser: ParserKind, pattern: Option<&str>, status: &[(&str, &str)]) -> StageConfig {
        test_stage(parser.as_str(), pattern, status)
    }

    #[test]
    fn repeated_names_keep_the_worst_status() {
        use TestStatus::*;
        let order = [Skip, XFail, Pass, XPass, Fail, Error];
        for (i, &a) in order.iter().enumerate() {
            for (j, &b) in order.iter().enumerate() {
                let mut c = Collector::default();
                c.record("t", a);
                c.record(" t ", b);
                c.record("", Error);
                let parsed = c.finish();
                assert_eq!(parsed.tests.len(), 1);
                assert_eq!(parsed.tests[0].status, order[i.max(j)], "{a} then {b}");
            }
        }
    }

    #[test]
    fn first_seen_order_is_kept() {
        let mut c = Collector::default();
        for name in ["b", "a", "b", "c"] {
            c.record(name, TestStatus::Pass);
        }
        let names: Vec<_> = c.finish().tests.into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["b", "a", "c"]);
    }

    #[test]
    fn every_kind_builds_and_exit_code_reads_nothing() {
        for kind in [
            ParserKind::ExitCode,
            ParserKind::Junit,
            ParserKind::Libtest,
            ParserKind::Pytest,
            ParserKind::Unittest,
            ParserKind::Tap,
            ParserKind::GoJson,
        ] {
            Parser::from_config(&stage(kind, None, &[])).unwrap();
        }
        let p = Parser::from_config(&stage(ParserKind::ExitCode, None, &[])).unwrap();
        assert_eq!(p.parse("test a ... ok\nok 1 - b\n", Some("<testsuite/>")), Parsed::default());
    }

    #[test]
    fn junit_reads_the_report_not_the_log() {
        let p = Parser::from_config(&stage(ParserKind::Junit, None, &[])).unwrap();
        assert_eq!(p.parse("<testcase name=\"a\"/>", None), Parsed::default());
        let parsed = p.parse("", Some("<testsuite><testcase name=\"a\"/></testsuite>"));
        assert_eq!(parsed.tests, [TestCase { name: "a".into(), status: TestStatus::Pass }]);
    }

    #[test]
    fn regex_configuration_errors_name_the_stage() {
        let no_pattern = Parser::from_config(&stage(ParserKind::Regex, None, &[])).unwrap_err().to_string();
        assert!(no_pattern.contains("stage `unit`"), "{no_pattern}");
        let bad =
            Parser::from_config(&stage(ParserKind::Regex, Some("(?P<name>"), &[])).unwrap_err().to_string();
        assert!(bad.contains("stage `unit`") && !bad.contains('\n'), "{bad}");
        let groups =
            Parser::from_config(&stage(ParserKind::Regex, Some("(?P<name>x)"), &[])).unwrap_err().to_string();
        assert!(groups.contains("`status`"), "{groups}");
        let status = Parser::from_config(&stage(
            ParserKind::Regex,
            Some("(?P<name>x) (?P<status>y)"),
            &[("y", "meh")],
        ))
        .unwrap_err()
        .to_string();
        assert!(status.contains("`meh`"), "{status}");
    }

    /// Random text built from pieces of every format, from a fixed seed.
    #[test]
    fn every_parser_survives_random_input() {
        const PIECES: &[&str] = &[
            "test ",
            " ... ",
            "ok",
            "FAILED",
            "ignored, why",
            "\n",
            "\r\n",
            "\r",
            "\u{1b}[3",
            "1m",
            "\u{1b}]",
            "::",
            "[",
            "]",
            "(",
            ")",
            "not ok",
            " # ",
            "SKIP",
            "TODO",
            "{\"Action\":\"",
            "pass",
            "fail",
            "\",\"Test\":\"",
            "\",\"Package\":\"",
            "\"}",
            "<testcase",
            " name=\"",
            "\"",
            "/>",
            ">",
            "</testcase>",
            "<failure>",
            "</testsuite>",
            "&amp;",
            "&",
            "Running ",
            "unittests src/lib.rs",
            " (target/debug/deps/x-0123abcd)",
            "Doc-tests ",
            "# Subtest: ",
            "    ",
            "  ---",
            "  ...",
            "é",
            "✓",
            "PASSED",
            "SKIPPED [1] ",
            "ERROR",
            "running 2 tests",
            "test result: ok.",
            "failures:",
            "[baton: 3 bytes of output omitted here]",
            "test_x (m.C)",
            "skipped 'x'",
            "1..3",
            "Bail out!",
            " - ",
            "t.py",
            "\\",
            "#",
            "x",
            " ",
        ];
        let pattern = r"^(?P<name>\w+)?\W*(?P<status>\S+)";
        let mut parsers = vec![Parser::ExitCode, Parser::Junit, Parser::Libtest, Parser::Pytest];
        parsers.extend([Parser::Unittest, Parser::Tap, Parser::GoJson]);
        parsers.push(Parser::from_config(&stage(ParserKind::Regex, Some(pattern), &[])).unwrap());
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..3000 {
            let len = next() % 40;
            let input: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            for parser in &parsers {
                let parsed = parser.parse(&input, Some(&input));
                let mut names: Vec<_> = parsed.tests.iter().map(|t| t.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(names.len(), parsed.tests.len(), "names are unique for {parser:?} on {input:?}");
                assert!(parsed.tests.iter().all(|t| !t.name.is_empty() && t.name.trim() == t.name));
            }
        }
    }

    #[test]
    fn every_parser_survives_hostile_input() {
        let inputs = [
            "",
            "\u{1b}",
            "\u{1b}[",
            "\u{1b}]8;;",
            "\r\r\n\r",
            "test  ... ",
            "test é ... ok\u{1b}[3",
            "not ok",
            "ok # ",
            "    # Subtest: \n    ---\n",
            "{\"Action\":\"pass\",\"Test\":\"T\"}",
            "{\"Action\":",
            "FAILED  - x",
            "PASSED [",
            "x[[[ PASSED",
            "test_x (",
            "test_x (a.b) ... ",
            "[baton: 12 bytes of output omitted here]",
            "Running unittests (",
            "     Running \u{1b}[1m",
            "<testsuite><testcase name=\"é\"><failure",
            "<",
            "<?xml",
            "<testsuites><testsuite><testcase classname=\"\" name=\"\"/></testsuite>",
        ];
        let mut parsers = vec![Parser::ExitCode, Parser::Junit, Parser::Libtest];
        parsers.extend([Parser::Pytest, Parser::Unittest, Parser::Tap, Parser::GoJson]);
        parsers.push(
            Parser::from_config(&stage(ParserKind::Regex, Some(r"^(?P<name>.*?) ?(?P<status>\S*)$"), &[]))
                .unwrap(),
        );
        for parser in &parsers {
            for input in inputs {
                parser.parse(input, Some(input));
                // Every prefix, cut at any byte that is a character boundary.
                for (i, _) in input.char_indices() {
                    parser.parse(&input[..i], Some(&input[..i]));
                }
            }
        }
    }
}
