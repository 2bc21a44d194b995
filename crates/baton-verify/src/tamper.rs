//! Tamper flags: edits in a candidate's diff that weaken the evaluator instead of fixing the
//! code. Verification already runs the base's version of protected files, so such edits cannot
//! make a candidate pass; they are still evidence about the candidate, and the ranking keeps a
//! flagged candidate from winning without a human.
//!
//! The checks read the unified diff line by line (no parser): they must stay cheap and
//! language-agnostic, and they name the file and line of every flag. They are deliberately
//! narrow: each looks for a change whose only plausible purpose is to make tests pass or not
//! run, so that honest candidates (which add tests, or change code a test covers) are not flagged.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use baton_core::ExpectationEdit;

use crate::protect::Protected;
use crate::testfns::{SideLine, checks, functions, helpers, only_literals_differ};

/// One suspicious edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TamperFlag {
    pub file: String,
    /// The line in the candidate's file (for removals: in the base's file).
    pub line: usize,
    pub what: String,
}

impl std::fmt::Display for TamperFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.what)
    }
}

/// One changed line of a diff.
struct Line<'a> {
    added: bool,
    /// New-file line number for additions, old-file for removals.
    number: usize,
    text: &'a str,
}

struct FileDiff<'a> {
    old: Option<String>,
    new: Option<String>,
    lines: Vec<Line<'a>>,
    /// The base's side and the candidate's as far as the hunks show them (context included).
    old_side: Vec<SideLine<'a>>,
    new_side: Vec<SideLine<'a>>,
    /// Lines the base version had (from hunk headers; only complete for whole-file removals).
    old_total_removed: usize,
    kept_context: usize,
}

impl FileDiff<'_> {
    fn path(&self) -> &str {
        self.new.as_deref().or(self.old.as_deref()).unwrap_or("")
    }
}

/// Config files of test runners: editing them changes what "the tests pass" means.
const RUNNER_CONFIGS: &[&str] = &[
    "pytest.ini",
    "tox.ini",
    "conftest.py",
    "noxfile.py",
    "runtests.py",
    ".mocharc.js",
    ".mocharc.json",
    ".mocharc.yml",
    "karma.conf.js",
    "phpunit.xml",
    "phpunit.xml.dist",
];
const RUNNER_CONFIG_PREFIXES: &[&str] =
    &["jest.config.", "vitest.config.", "playwright.config.", "cypress.config."];

struct Patterns {
    skip: Regex,
    assertion: Regex,
    exit_zero: Regex,
    test_detection: Regex,
    runner_section: Regex,
    bare_return: Regex,
    truthy_call: Regex,
    equal_call: Regex,
    expect_call: Regex,
}

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| Patterns {
        skip: Regex::new(concat!(
            r"(@pytest\.mark\.(skip|skipif|xfail)\b|@unittest\.(skip|skipIf|skipUnless|expectedFailure)\b|",
            r"\bpytest\.(skip|xfail)\(|\bself\.skipTest\(|\braise\s+(unittest\.)?SkipTest\b|",
            r"#\[ignore\b|\b(it|test|describe|context)\.(skip|todo)\(|\b(xit|xtest|xdescribe)\(|",
            r"\bt\.Skip(f|Now)?\(|@(Disabled|Ignore)\b|",
            // a skip called on a test or suite object, as a statement of its own
            r"^\s*\w+(\.\w+)*\.skip(If|Unless|Test)?\s*\()"
        ))
        .expect("valid regex"),
        assertion: Regex::new(
            r"^\s*(assert\b|self\.assert\w*\(|assert_(eq|ne)?!\(|assert!\(|expect\(|t\.(Error|Fatal)f?\(|Assert\.|XCTAssert|assert\.\w+\(|(assert|require)\.\w+\(\s*t\s*,)",
        )
        .expect("valid regex"),
        exit_zero: Regex::new(r"\b(sys\.exit|os\._exit|exit|process\.exit|std::process::exit|System\.exit)\(\s*0?\s*\)")
            .expect("valid regex"),
        test_detection: Regex::new(
            r#"(PYTEST_CURRENT_TEST|JEST_WORKER_ID|"pytest"\s+in\s+sys\.modules|'pytest'\s+in\s+sys\.modules|"unittest"\s+in\s+sys\.modules|\bRUST_TEST_THREADS\b|\bcfg!\(test\))"#,
        )
        .expect("valid regex"),
        runner_section: Regex::new(r"(\[tool:pytest\]|\[tool\.pytest|\[pytest\]|addopts|testpaths|python_files|norecursedirs|--deselect|--ignore)")
            .expect("valid regex"),
        bare_return: Regex::new(r"^\s*return(\s+(None|nil))?\s*;?\s*$").expect("valid regex"),
        truthy_call: Regex::new(concat!(
            r#"^\s*(self\.assertTrue\(\s*(True|[1-9]\d*|"[^"]+"|'[^']+')\s*[,)]|self\.assertFalse\(\s*(False|0|None|""|'')\s*[,)]|"#,
            r#"assert!\(\s*true\s*[,)]|assert\(\s*true\s*[,)]|assert\.ok\(\s*true\s*[,)]|(assert|require)\.True\(\s*t\s*,\s*true\s*[,)]|"#,
            r#"expect\(\s*true\s*\)\.(toBe\(\s*true\s*\)|toBeTruthy\(\s*\)))"#
        ))
        .expect("valid regex"),
        equal_call: Regex::new(
            r"^\s*(?:self\.assert(?:Equal|Equals|Is|CountEqual|ListEqual|DictEqual)|assert_eq!|assert\.(?:equal|strictEqual|deepEqual|deepStrictEqual)|(?:assert|require)\.(?:Equal|EqualValues))\s*\(",
        )
        .expect("valid regex"),
        expect_call: Regex::new(r"^\s*expect\(").expect("valid regex"),
    })
}

/// Whether a line is an assertion that can fail: a check.
fn is_check(line: &str) -> bool {
    let code = strip_comment(line);
    patterns().assertion.is_match(code) && !trivially_true(code)
}

/// Whether an assertion cannot fail: a constant that is true (`assert True`, a non-empty string,
/// a tuple, which Python reads as true), or a value compared with itself (`assert x == x`,
/// `assertEqual(a, a)`, `expect(a).toBe(a)`).
fn trivially_true(line: &str) -> bool {
    let p = patterns();
    let code = line.trim().trim_end_matches(';').trim();
    if p.truthy_call.is_match(code) {
        return true;
    }
    if let Some(expr) = code.strip_prefix("assert ").map(str::trim) {
        // `assert x, "why"`: the message is not the condition (a tuple in parentheses is).
        let expr = split_top(expr, ',').first().copied().unwrap_or(expr).trim();
        if expr.starts_with('(')
            && matching_paren(expr) == Some(expr.len() - 1)
            && split_top(&expr[1..expr.len() - 1], ',').len() > 1
        {
            return true;
        }
        let constant = matches!(expr, "True" | "not False" | "not None" | "not 0")
            || expr.parse::<f64>().is_ok_and(|v| v != 0.0)
            || ((expr.starts_with('"') || expr.starts_with('\'')) && expr.len() > 2);
        let same_sides = [" == ", " is "]
            .iter()
            .any(|op| expr.split_once(op).is_some_and(|(a, b)| a.trim() == b.trim() && !a.trim().is_empty()));
        return constant || same_sides;
    }
    if let Some(m) = p.equal_call.find(code) {
        let args = call_args(&code[m.end() - 1..]);
        let args: Vec<&str> = args.into_iter().filter(|a| *a != "t").collect();
        return args.len() >= 2 && args[0] == args[1];
    }
    if let Some(m) = p.expect_call.find(code) {
        let rest = &code[m.end() - 1..];
        let actual = call_args(rest);
        let after = matching_paren(rest).map_or("", |close| &rest[close + 1..]);
        for matcher in [".toBe(", ".toEqual(", ".toStrictEqual("] {
            if let Some(at) = after.strip_prefix(matcher).map(|_| matcher.len() - 1) {
                let expected = call_args(&after[at..]);
                return actual.len() == 1 && expected.len() == 1 && actual[0] == expected[0];
            }
        }
    }
    false
}

/// The arguments of the call whose `(` starts `text`, trimmed, split at top-level commas.
fn call_args(text: &str) -> Vec<&str> {
    let Some(end) = matching_paren(text) else { return Vec::new() };
    split_top(&text[1..end], ',').into_iter().map(str::trim).filter(|a| !a.is_empty()).collect()
}

/// Where the parenthesis that opens `text` closes.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` split at `sep` where no bracket or quote is open.
fn split_top(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth = depth.saturating_sub(1),
            (None, c) if c == sep && depth == 0 => {
                out.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// The test functions of a file's diff on both sides, and their checks.
struct TestFunctions {
    old: Vec<crate::testfns::Function>,
    new: Vec<crate::testfns::Function>,
    /// Per test function: its checks, as indices into the side's lines.
    old_checks: BTreeMap<String, Vec<usize>>,
    new_checks: BTreeMap<String, Vec<usize>>,
    /// New-side line numbers inside test functions.
    new_test_lines: BTreeSet<usize>,
}

impl TestFunctions {
    fn of(file: &FileDiff<'_>) -> TestFunctions {
        let path = file.path();
        let old = functions(path, &file.old_side);
        let new = functions(path, &file.new_side);
        // Helpers are read on the base's side: what checked before still counts as checking.
        let helper_names = helpers(&file.old_side, &old, is_check);
        let old_checks = checks(&file.old_side, &old, is_check, &helper_names);
        let new_checks = checks(&file.new_side, &new, is_check, &helper_names);
        let new_test_lines = new
            .iter()
            .filter(|f| f.is_test)
            .flat_map(|f| f.lines.iter().map(|&i| file.new_side[i].number))
            .collect();
        TestFunctions { old, new, old_checks, new_checks, new_test_lines }
    }

    /// Whether a new-side line is in a test function or among the attributes right above one.
    fn in_new_test(&self, line: usize) -> bool {
        (line..line + 3).any(|l| self.new_test_lines.contains(&l))
    }

    fn new_function(&self, name: &str) -> Option<&crate::testfns::Function> {
        self.new.iter().find(|f| f.is_test && f.name == name)
    }
}

/// Edits to tests that change what they expect and keep the check (see [`ExpectationEdit`]):
/// in protected test files, and in test functions inside Rust source files. Within one test
/// function, the assertions it removes and those it adds are paired in order.
pub fn expectation_edits(diff: &str, protected: &Protected) -> Vec<ExpectationEdit> {
    let mut out = Vec::new();
    for file in parse(diff) {
        let path = file.path().to_owned();
        if !(protected.is_protected(&path) || path.ends_with(".rs")) || file.new.is_none() {
            continue;
        }
        let t = TestFunctions::of(&file);
        for (name, old_checks) in &t.old_checks {
            let Some(new_checks) = t.new_checks.get(name) else { continue };
            let removed = old_checks.iter().map(|&i| &file.old_side[i]).filter(|l| l.changed);
            let added: Vec<&SideLine> =
                new_checks.iter().map(|&i| &file.new_side[i]).filter(|l| l.changed).collect();
            for (before, after) in removed.zip(added) {
                if only_literals_differ(before.text, after.text) {
                    out.push(ExpectationEdit {
                        file: path.clone(),
                        test: name.clone(),
                        line: after.number,
                        before: before.text.trim().to_owned(),
                        after: after.text.trim().to_owned(),
                    });
                }
            }
        }
    }
    out
}

/// Suspicious edits in `diff` (a unified diff of the candidate against the base). A path counts
/// as a test when `protected` covers it and it is not a runner configuration.
pub fn tamper_flags(diff: &str, protected: &Protected) -> Vec<TamperFlag> {
    let p = patterns();
    let mut flags = Vec::new();
    for file in parse(diff) {
        let path = file.path().to_owned();
        let name = path.rsplit('/').next().unwrap_or(&path);
        let is_runner_config =
            RUNNER_CONFIGS.contains(&name) || RUNNER_CONFIG_PREFIXES.iter().any(|pre| name.starts_with(pre));
        let is_test = protected.is_protected(&path) && !is_runner_config;
        let flag = |line: usize, what: String| TamperFlag { file: path.clone(), line, what };

        if is_runner_config {
            let first = file.lines.first().map(|l| l.number).unwrap_or(1);
            flags.push(flag(first, format!("edits the test runner's configuration ({name})")));
        } else if matches!(name, "setup.cfg" | "pyproject.toml" | "package.json" | "Cargo.toml")
            && let Some(l) = file
                .lines
                .iter()
                .find(|l| p.runner_section.is_match(l.text) && !l.text.trim().starts_with('#'))
        {
            flags.push(flag(l.number, format!("changes how tests are collected or run ({})", l.text.trim())));
        }

        // Test functions inside source files (Rust's `#[test]` in a `#[cfg(test)]` module) are
        // not protected, so a candidate's edits to them are what runs: they get the same
        // checks, for the functions marked as tests.
        let tests_in_source = !is_test && path.ends_with(".rs");
        if is_test {
            if file.new.is_none() {
                flags.push(flag(1, "deletes a test file".into()));
                continue;
            }
            let added = file.lines.iter().filter(|l| l.added).count();
            if file.old.is_some() && added == 0 && file.kept_context == 0 && file.old_total_removed > 0 {
                flags.push(flag(1, "empties a test file".into()));
                continue;
            }
        }
        if is_test || tests_in_source {
            let t = TestFunctions::of(&file);
            for f in t.old.iter().filter(|f| f.is_test && file.old_side[f.lines[0]].changed) {
                if !t.new.iter().any(|n| n.name == f.name) {
                    flags.push(flag(
                        file.old_side[f.lines[0]].number,
                        format!("deletes the test `{}`", f.name),
                    ));
                }
            }
            for l in file.lines.iter().filter(|l| l.added && (is_test || t.in_new_test(l.number))) {
                let code = strip_comment(l.text);
                if let Some(m) = p.skip.find(l.text) {
                    flags.push(flag(
                        l.number,
                        format!("skips or expects failure of a test ({})", m.as_str().trim()),
                    ));
                } else if trivially_true(code) {
                    flags.push(flag(
                        l.number,
                        format!("adds an assertion that cannot fail ({})", l.text.trim()),
                    ));
                }
            }
            let mut per_function = false;
            for (name, old_checks) in &t.old_checks {
                let Some(new_checks) = t.new_checks.get(name) else { continue };
                if new_checks.len() < old_checks.len() {
                    per_function = true;
                    let n = old_checks.len() - new_checks.len();
                    let first = old_checks
                        .iter()
                        .map(|&i| &file.old_side[i])
                        .find(|l| l.changed)
                        .map_or(1, |l| l.number);
                    flags.push(flag(
                        first,
                        format!(
                            "the test `{name}` loses {n} {} (assertions, or calls to a helper that asserts)",
                            if n == 1 { "check" } else { "checks" }
                        ),
                    ));
                }
                // A bare `return` ahead of the checks ends the test before it checks anything.
                if let Some(l) = new_checks.first().and_then(|&first| {
                    t.new_function(name)?
                        .lines
                        .iter()
                        .map(|&i| &file.new_side[i])
                        .take_while(|l| l.number < file.new_side[first].number)
                        .find(|l| l.changed && p.bare_return.is_match(l.text))
                }) {
                    flags.push(flag(l.number, format!("returns before the checks of the test `{name}`")));
                }
            }
            // Checks outside any test function (or in hunks whose context shows none).
            let loose = |side: &[SideLine], fns: &[crate::testfns::Function]| -> Vec<usize> {
                side.iter()
                    .enumerate()
                    .filter(|(i, l)| {
                        l.changed && is_check(l.text) && !fns.iter().any(|f| f.is_test && f.lines.contains(i))
                    })
                    .map(|(_, l)| l.number)
                    .collect()
            };
            let (removed, added) = (loose(&file.old_side, &t.old), loose(&file.new_side, &t.new));
            if is_test && !per_function && removed.len() > added.len() {
                let n = removed.len() - added.len();
                flags.push(flag(
                    removed[0],
                    format!(
                        "removes {n} assertion{} without replacing {}",
                        if n == 1 { "" } else { "s" },
                        if n == 1 { "it" } else { "them" }
                    ),
                ));
            }
        }

        for l in file.lines.iter().filter(|l| l.added) {
            let code = strip_comment(l.text);
            if p.exit_zero.is_match(code) && (is_test || looks_top_level(l.text)) {
                flags.push(flag(l.number, format!("exits early with success ({})", l.text.trim())));
            }
            if !is_test && p.test_detection.is_match(code) {
                flags.push(flag(l.number, format!("behaves differently under test ({})", l.text.trim())));
            }
        }
    }
    flags
}

/// A line at the start of a file's top level (no indentation): an exit there ends any run.
fn looks_top_level(line: &str) -> bool {
    !line.starts_with([' ', '\t'])
}

fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with("//") { "" } else { line }
}

/// Splits a unified diff into files and their changed lines with line numbers.
fn parse(diff: &str) -> Vec<FileDiff<'_>> {
    let mut files: Vec<FileDiff> = Vec::new();
    let (mut old_no, mut new_no) = (0usize, 0usize);
    let hunk = Regex::new(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@").expect("valid regex");
    let mut in_hunk = false;
    let mut hunks = 0usize;
    for line in diff.lines() {
        if let Some(paths) = line.strip_prefix("diff --git ") {
            files.push(FileDiff {
                old: None,
                new: None,
                lines: Vec::new(),
                old_side: Vec::new(),
                new_side: Vec::new(),
                old_total_removed: 0,
                kept_context: 0,
            });
            in_hunk = false;
            // Until ---/+++ say otherwise, the file exists on both sides.
            if let Some((a, b)) = paths.split_once(" b/") {
                let f = files.last_mut().expect("just pushed");
                f.old = Some(a.trim_start_matches("a/").to_owned());
                f.new = Some(b.to_owned());
            }
            continue;
        }
        let Some(f) = files.last_mut() else { continue };
        if !in_hunk {
            if let Some(p) = line.strip_prefix("--- ") {
                f.old = (p != "/dev/null").then(|| p.trim_start_matches("a/").to_owned());
                continue;
            }
            if let Some(p) = line.strip_prefix("+++ ") {
                f.new = (p != "/dev/null").then(|| p.trim_start_matches("b/").to_owned());
                continue;
            }
        }
        if let Some(c) = hunk.captures(line) {
            in_hunk = true;
            hunks += 1;
            old_no = c[1].parse().unwrap_or(1);
            new_no = c[3].parse().unwrap_or(1);
            continue;
        }
        if !in_hunk {
            continue;
        }
        match line.as_bytes().first() {
            Some(b'+') => {
                f.lines.push(Line { added: true, number: new_no, text: &line[1..] });
                f.new_side.push(SideLine { number: new_no, text: &line[1..], changed: true, hunk: hunks });
                new_no += 1;
            }
            Some(b'-') => {
                f.lines.push(Line { added: false, number: old_no, text: &line[1..] });
                f.old_side.push(SideLine { number: old_no, text: &line[1..], changed: true, hunk: hunks });
                f.old_total_removed += 1;
                old_no += 1;
            }
            Some(b' ') => {
                f.kept_context += 1;
                f.old_side.push(SideLine { number: old_no, text: &line[1..], changed: false, hunk: hunks });
                f.new_side.push(SideLine { number: new_no, text: &line[1..], changed: false, hunk: hunks });
                old_no += 1;
                new_no += 1;
            }
            _ => {}
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protected() -> Protected {
        Protected::new(&[
            "tests/**".into(),
            "**/tests/**".into(),
            "**/test_*.py".into(),
            "**/*_test.go".into(),
            "**/*.test.[jt]s".into(),
            "**/conftest.py".into(),
        ])
        .unwrap()
    }

    fn flags(diff: &str) -> Vec<String> {
        tamper_flags(diff, &protected()).iter().map(ToString::to_string).collect()
    }

    fn one_file(path: &str, hunk: &str) -> String {
        format!("diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunk}")
    }

    #[test]
    fn python_skips_deletions_and_weakened_assertions_are_flagged_with_lines() {
        let d = one_file(
            "tests/test_pages.py",
            "@@ -10,9 +10,8 @@ class T:\n     def test_a(self):\n-        self.assertEqual(f(1), 2)\n+        self.assertTrue(True)\n \n+    @pytest.mark.skip(reason=\"flaky\")\n     def test_b(self):\n         pass\n-\n-    def test_c(self):\n-        assert g() == 3\n",
        );
        assert_eq!(
            flags(&d),
            [
                "tests/test_pages.py:16: deletes the test `test_c`",
                "tests/test_pages.py:11: adds an assertion that cannot fail (self.assertTrue(True))",
                "tests/test_pages.py:13: skips or expects failure of a test (@pytest.mark.skip)",
                "tests/test_pages.py:11: the test `test_a` loses 1 check (assertions, or calls to a helper that asserts)",
            ]
        );
    }

    #[test]
    fn rust_ignore_and_removed_asserts_are_flagged() {
        let d = one_file(
            "crates/x/tests/it.rs",
            "@@ -3,4 +3,4 @@\n #[test]\n+#[ignore]\n fn parses() {\n-    assert_eq!(parse(\"1\"), 1);\n-    assert!(ok());\n }\n",
        );
        assert_eq!(
            flags(&d),
            [
                "crates/x/tests/it.rs:4: skips or expects failure of a test (#[ignore)",
                "crates/x/tests/it.rs:5: the test `parses` loses 2 checks (assertions, or calls to a helper that asserts)"
            ]
        );
    }

    #[test]
    fn js_and_go_skips_are_flagged() {
        let js =
            one_file("src/a.test.js", "@@ -1,2 +1,2 @@\n-it('adds', () => {\n+it.skip('adds', () => {\n");
        assert_eq!(flags(&js), ["src/a.test.js:1: skips or expects failure of a test (it.skip()"]);
        let go = one_file(
            "pkg/a_test.go",
            "@@ -5,1 +5,2 @@\n func TestAdd(t *testing.T) {\n+\tt.Skip(\"later\")\n",
        );
        assert_eq!(flags(&go), ["pkg/a_test.go:6: skips or expects failure of a test (t.Skip()"]);
    }

    #[test]
    fn deleting_or_emptying_test_files_and_runner_config_edits_are_flagged() {
        let deleted = "diff --git a/tests/test_x.py b/tests/test_x.py\ndeleted file mode 100644\n--- a/tests/test_x.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-def test_x():\n-    assert 1 == 1\n";
        assert_eq!(flags(deleted), ["tests/test_x.py:1: deletes a test file"]);
        let emptied = one_file("tests/test_y.py", "@@ -1,2 +0,0 @@\n-def test_y():\n-    assert f()\n");
        assert_eq!(flags(&emptied), ["tests/test_y.py:1: empties a test file"]);
        let conftest = one_file("conftest.py", "@@ -1,0 +1,1 @@\n+collect_ignore = ['tests']\n");
        assert_eq!(flags(&conftest), ["conftest.py:1: edits the test runner's configuration (conftest.py)"]);
        let cfg = one_file(
            "setup.cfg",
            "@@ -4,1 +4,1 @@\n-addopts = -q\n+addopts = -q --deselect tests/test_x.py\n",
        );
        assert_eq!(flags(&cfg), ["setup.cfg:4: changes how tests are collected or run (addopts = -q)"]);
        let deps =
            one_file("setup.cfg", "@@ -4,1 +4,1 @@\n-install_requires = a\n+install_requires = a, b\n");
        assert!(flags(&deps).is_empty());
    }

    #[test]
    fn short_circuits_and_test_detection_in_code_are_flagged() {
        let d = one_file(
            "src/app.py",
            "@@ -1,1 +1,4 @@\n+import os, sys\n+if os.environ.get('PYTEST_CURRENT_TEST'):\n+    return 42\n+sys.exit(0)\n",
        );
        assert_eq!(
            flags(&d),
            [
                "src/app.py:2: behaves differently under test (if os.environ.get('PYTEST_CURRENT_TEST'):)",
                "src/app.py:4: exits early with success (sys.exit(0))",
            ]
        );
    }

    #[test]
    fn honest_changes_are_not_flagged() {
        // A fix plus a new test with new assertions; an exit inside a function is normal code.
        let d = format!(
            "{}{}",
            one_file(
                "src/pager.py",
                "@@ -9,1 +9,3 @@\n-    for s in range(0, n - k + 1, k):\n+    for s in range(0, n, k):\n+    if fatal:\n+        sys.exit(1)\n"
            ),
            one_file(
                "tests/test_pager.py",
                "@@ -20,0 +21,3 @@\n+\n+def test_last_page():\n+    assert paginate([1, 2, 3], 2) == [[1, 2], [3]]\n"
            )
        );
        assert!(flags(&d).is_empty(), "{:?}", flags(&d));
        let renamed_assert = one_file(
            "tests/test_a.py",
            "@@ -2,1 +2,1 @@\n-    assert f(1) == 2\n+    assert f(1) == 2  # off-by-one fixed\n",
        );
        assert!(flags(&renamed_assert).is_empty());
    }

    #[test]
    fn a_test_that_loses_its_checks_is_flagged_though_another_gains_some() {
        // Whole files as context, as the engine asks git for them.
        let d = one_file(
            "tests/test_calc.py",
            "@@ -1,7 +1,8 @@\n def test_add():\n-    assert add(1, 2) == 3\n+    pass\n \n def test_sub():\n     assert sub(3, 2) == 1\n+    assert sub(2, 2) == 0\n",
        );
        assert_eq!(
            flags(&d),
            [
                "tests/test_calc.py:2: the test `test_add` loses 1 check (assertions, or calls to a helper that asserts)"
            ]
        );
    }

    #[test]
    fn removing_calls_to_a_checking_helper_is_flagged() {
        let d = one_file(
            "tests/test_parse.py",
            "@@ -1,6 +1,6 @@\n def check_round_trip(text):\n     assert dump(parse(text)) == text\n \n def test_lists():\n-    check_round_trip('[1, 2]')\n+    parse('[1, 2]')\n",
        );
        assert_eq!(
            flags(&d),
            [
                "tests/test_parse.py:5: the test `test_lists` loses 1 check (assertions, or calls to a helper that asserts)"
            ]
        );
    }

    #[test]
    fn a_skip_called_on_a_suite_object_is_flagged() {
        let d = one_file(
            "test/parse.test.js",
            "@@ -1,3 +1,4 @@\n suite('parse', function () {\n+  suite.skip('later');\n   test('lists', () => { assert.equal(parse('[1]').length, 1); });\n });\n",
        );
        assert_eq!(flags(&d), ["test/parse.test.js:2: skips or expects failure of a test (suite.skip()"]);
        // Skipping items of an iterator inside a test is not skipping the test.
        let d = one_file(
            "tests/it.rs",
            "@@ -1,3 +1,3 @@\n #[test]\n fn lines() {\n-    assert_eq!(read().lines().nth(1), Some(\"b\"));\n+    assert_eq!(read().lines().skip(1).next(), Some(\"b\"));\n",
        );
        assert!(flags(&d).is_empty(), "{:?}", flags(&d));
    }

    #[test]
    fn assertions_that_cannot_fail_are_flagged_in_each_language() {
        for (path, line) in [
            ("tests/test_a.py", "    assert 'the parser handles lists'"),
            ("tests/test_a.py", "    assert (parse('[1]') == [1], 'lists')"),
            ("tests/test_a.py", "    assert result == result"),
            ("tests/test_a.py", "    self.assertEqual(out, out)"),
            ("tests/test_a.py", "    self.assertFalse(None)"),
            ("tests/it.rs", "    assert_eq!(value, value);"),
            ("tests/it.rs", "    assert!(true, \"works\");"),
            ("src/a.test.js", "  expect(total).toBe(total);"),
            ("src/a.test.js", "  assert.ok(true);"),
            ("pkg/a_test.go", "\tassert.Equal(t, got, got)"),
            ("pkg/a_test.go", "\trequire.True(t, true)"),
        ] {
            let d = one_file(path, &format!("@@ -1,0 +1,1 @@\n+{line}\n"));
            assert_eq!(
                flags(&d),
                [format!("{path}:1: adds an assertion that cannot fail ({})", line.trim())],
                "{line}"
            );
        }
        for line in [
            "    assert parse('a') == 'a'",
            "    assert_eq!(parse(\"1\"), 1);",
            "  expect(f(1)).toBe(2);",
            "    assert x, 'x is set'",
        ] {
            let d = one_file("tests/test_a.py", &format!("@@ -1,0 +1,1 @@\n+{line}\n"));
            assert!(flags(&d).is_empty(), "{line}: {:?}", flags(&d));
        }
    }

    #[test]
    fn a_return_ahead_of_a_tests_checks_is_flagged() {
        let d = one_file(
            "tests/test_a.py",
            "@@ -1,2 +1,3 @@\n def test_parse():\n+    return\n     assert parse('1') == 1\n",
        );
        assert_eq!(flags(&d), ["tests/test_a.py:2: returns before the checks of the test `test_parse`"]);
    }

    #[test]
    fn a_changed_expectation_is_evidence_not_tampering() {
        let d = one_file(
            "tests/test_msg.py",
            "@@ -1,2 +1,2 @@\n def test_message():\n-    assert message(3) == 'got 3 items'\n+    assert message(3) == 'found 3 items'\n",
        );
        assert!(flags(&d).is_empty(), "{:?}", flags(&d));
        let edits = expectation_edits(&d, &protected());
        assert_eq!(edits.len(), 1);
        assert_eq!(
            edits[0].to_string(),
            "tests/test_msg.py:2: `assert message(3) == 'got 3 items'` became `assert message(3) == 'found 3 items'`"
        );
        assert_eq!(edits[0].test, "test_message");
        // Another call is another check, not another expectation.
        let d = one_file(
            "tests/test_msg.py",
            "@@ -1,2 +1,2 @@\n def test_message():\n-    assert message(3) == 'got 3 items'\n+    assert summary(3) == 'got 3 items'\n",
        );
        assert!(expectation_edits(&d, &protected()).is_empty());
    }

    #[test]
    fn tests_inside_rust_source_files_get_the_same_checks() {
        let d = one_file(
            "src/parse.rs",
            "@@ -10,9 +10,8 @@\n pub fn parse(s: &str) -> u32 {\n-    assert!(!s.is_empty());\n     s.parse().unwrap()\n }\n #[cfg(test)]\n mod tests {\n     #[test]\n     fn parses() {\n-        assert_eq!(super::parse(\"1\"), 1);\n     }\n",
        );
        assert_eq!(
            flags(&d),
            [
                "src/parse.rs:18: the test `parses` loses 1 check (assertions, or calls to a helper that asserts)"
            ],
            "the library's own assertion is code, not a test"
        );
        let ignored = one_file("src/parse.rs", "@@ -1,2 +1,3 @@\n #[test]\n+#[ignore]\n fn parses() {\n");
        assert_eq!(flags(&ignored), ["src/parse.rs:2: skips or expects failure of a test (#[ignore)"]);
    }
}
