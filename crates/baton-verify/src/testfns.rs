//! Test functions in a diff: which function each line of a test file belongs to, on the base's
//! side and on the candidate's, and the checks each makes.
//!
//! A file-wide count of assertions misses a test that loses its checks while another gains
//! some, and a test that stops calling the helper that does its checking. Counting per
//! function catches both. The reading is by lines, not by a parser: a function starts at its
//! definition (`def`, `fn`, `func`, `function`, `it(`/`test(` blocks) and ends where the
//! indentation (Python) or the braces (the rest) close it. Within a hunk of a diff whose
//! context does not reach a definition, lines have no function; the engine asks git for whole
//! files as context, so that every line has one.

use std::collections::BTreeMap;

use regex::Regex;

/// One line of one side of a file, as far as the diff shows it.
#[derive(Debug, Clone)]
pub(crate) struct SideLine<'a> {
    pub(crate) number: usize,
    pub(crate) text: &'a str,
    /// Removed (old side) or added (new side), rather than context.
    pub(crate) changed: bool,
    /// Index of the hunk it came from: functions never span hunks.
    pub(crate) hunk: usize,
}

/// A function found on one side.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    pub(crate) name: String,
    /// Marked as a test by an attribute (`#[test]`, `@Test`) or named like one.
    pub(crate) is_test: bool,
    /// Indices into the side's lines: the definition and every line of its body.
    pub(crate) lines: Vec<usize>,
}

struct Patterns {
    def: Regex,
    test_name: Regex,
    test_attr: Regex,
}

fn patterns() -> &'static Patterns {
    static P: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    P.get_or_init(|| Patterns {
        def: Regex::new(concat!(
            r#"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:def|fn|func|function)\s+(?:\([^)]*\)\s*)?(?P<name>\w+)"#,
            r#"|^\s*(?:it|test|describe)(?:\.\w+)*\s*\(\s*["'`](?P<label>[^"'`]+)"#
        ))
        .expect("valid regex"),
        test_name: Regex::new(r"^(test\w*|Test\w+)$").expect("valid regex"),
        test_attr: Regex::new(r"#\[(?:\w+::)?(?:test|rstest|test_case)\b|@Test\b|@pytest\.mark\.parametrize")
            .expect("valid regex"),
    })
}

/// The functions of one side. `path` decides how bodies end: by indentation for Python, by
/// braces otherwise.
pub(crate) fn functions(path: &str, lines: &[SideLine<'_>]) -> Vec<Function> {
    let p = patterns();
    let python = path.ends_with(".py");
    let mut out: Vec<Function> = Vec::new();
    // Open functions: index into `out`, and the indentation (Python) or brace depth at which
    // each closes; `None` while a brace function waits for its `{`.
    let mut open: Vec<(usize, Option<usize>, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut hunk = usize::MAX;
    for (i, line) in lines.iter().enumerate() {
        if line.hunk != hunk {
            hunk = line.hunk;
            open.clear();
            depth = 0;
        }
        let text = line.text;
        let blank = text.trim().is_empty();
        let indent = text.len() - text.trim_start().len();
        if python && !blank {
            open.retain(|&(_, _, at)| indent > at);
        }
        let def = p.def.captures(text).and_then(|c| {
            c.name("name")
                .map(|m| (m.as_str().to_owned(), false))
                .or_else(|| c.name("label").map(|m| (m.as_str().to_owned(), true)))
        });
        // A declaration without a body (`fn f();` in a trait) opens nothing.
        let bodiless = !python && !text.contains('{') && text.trim_end().ends_with(';');
        if let Some((name, block)) = def.filter(|_| !bodiless) {
            let attr =
                lines[..i].iter().rev().take(3).any(|l| l.hunk == hunk && p.test_attr.is_match(l.text));
            let is_test = block || attr || p.test_name.is_match(&name);
            out.push(Function { name, is_test, lines: Vec::new() });
            open.push((
                out.len() - 1,
                if python { Some(indent) } else { None },
                if python { indent } else { depth },
            ));
        }
        for &(f, _, _) in &open {
            out[f].lines.push(i);
        }
        if !python {
            for c in text.chars() {
                match c {
                    '{' => {
                        if let Some(slot) = open.iter_mut().rev().find(|o| o.1.is_none()) {
                            slot.1 = Some(depth);
                        }
                        depth += 1;
                    }
                    '}' => {
                        depth = depth.saturating_sub(1);
                        open.retain(|&(_, start, _)| start.is_none_or(|s| s < depth));
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

/// For each test function on a side: its checks (assertions that can fail, and calls to the
/// file's functions that assert), as (line index, is a helper call).
pub(crate) fn checks<'a>(
    lines: &[SideLine<'a>],
    fns: &[Function],
    is_assertion: impl Fn(&str) -> bool,
    helpers: &[String],
) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for f in fns.iter().filter(|f| f.is_test) {
        let mine = out.entry(f.name.clone()).or_default();
        for &i in f.lines.iter().skip(1) {
            let text = lines[i].text;
            if is_assertion(text) || helpers.iter().any(|h| calls(text, h)) {
                mine.push(i);
            }
        }
    }
    out
}

/// The names of the functions on a side that are not tests and assert something: helpers whose
/// calls are checks.
pub(crate) fn helpers(
    lines: &[SideLine<'_>],
    fns: &[Function],
    is_assertion: impl Fn(&str) -> bool,
) -> Vec<String> {
    fns.iter()
        .filter(|f| !f.is_test && f.lines.iter().skip(1).any(|&i| is_assertion(lines[i].text)))
        .map(|f| f.name.clone())
        .collect()
}

/// Whether `line` calls `name` (a whole word followed by `(`), other than where it defines it.
fn calls(line: &str, name: &str) -> bool {
    if patterns().def.captures(line).and_then(|c| c.name("name")).is_some_and(|m| m.as_str() == name) {
        return false;
    }
    let mut rest = line;
    while let Some(at) = rest.find(name) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + name.len()..].trim_start();
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_')) && after.starts_with('(') {
            return true;
        }
        rest = &rest[at + name.len()..];
    }
    false
}

/// Whether two assertions differ only in literal values (numbers, strings, booleans, `None`):
/// the test expects something else, and checks it as before.
pub(crate) fn only_literals_differ(a: &str, b: &str) -> bool {
    let (ta, tb) = (tokens(a), tokens(b));
    ta.len() == tb.len()
        && ta != tb
        && ta.iter().zip(&tb).all(|(x, y)| x == y || (is_literal(x) && is_literal(y)))
}

fn is_literal(t: &str) -> bool {
    t.starts_with(['"', '\'', '`'])
        || t.chars().next().is_some_and(|c| c.is_ascii_digit())
        || matches!(t, "True" | "False" | "None" | "true" | "false" | "nil" | "null" | "undefined")
}

/// Identifiers, numbers, string literals (with their quotes), and single other characters.
fn tokens(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while let Some(first) = rest.chars().next() {
        if first.is_whitespace() {
            rest = rest.trim_start();
            continue;
        }
        let len = if first == '"' || first == '\'' || first == '`' {
            let mut escaped = false;
            rest.char_indices()
                .skip(1)
                .find(|&(_, c)| {
                    let end = !escaped && c == first;
                    escaped = !escaped && c == '\\';
                    end
                })
                .map(|(i, c)| i + c.len_utf8())
                .unwrap_or(rest.len())
        } else if first.is_alphanumeric() || first == '_' {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len())
        } else {
            first.len_utf8()
        };
        out.push(&rest[..len]);
        rest = &rest[len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(text: &str) -> Vec<SideLine<'_>> {
        text.lines()
            .enumerate()
            .map(|(i, t)| SideLine { number: i + 1, text: t, changed: false, hunk: 0 })
            .collect()
    }

    fn names(path: &str, text: &str) -> Vec<(String, bool, Vec<usize>)> {
        let lines = side(text);
        functions(path, &lines)
            .into_iter()
            .map(|f| (f.name, f.is_test, f.lines.iter().map(|&i| lines[i].number).collect()))
            .collect()
    }

    #[test]
    fn python_functions_end_where_the_indentation_closes_them() {
        let text = "def check(x):\n    assert x\n\nclass T:\n    def test_a(self):\n        check(1)\n\n    def test_b(self):\n        pass\nX = 1\n";
        assert_eq!(
            names("tests/test_x.py", text),
            [
                ("check".to_owned(), false, vec![1, 2, 3]),
                ("test_a".to_owned(), true, vec![5, 6, 7]),
                ("test_b".to_owned(), true, vec![8, 9]),
            ]
        );
    }

    #[test]
    fn brace_functions_end_where_their_braces_close() {
        let text = "#[test]\nfn parses() {\n    if x { y(); }\n    assert!(ok());\n}\nfn helper() {}\nit('adds', () => {\n  expect(1).toBe(1);\n});\n";
        assert_eq!(
            names("src/lib.rs", text),
            [
                ("parses".to_owned(), true, vec![2, 3, 4, 5]),
                ("helper".to_owned(), false, vec![6]),
                ("adds".to_owned(), true, vec![7, 8, 9]),
            ]
        );
    }

    #[test]
    fn calls_and_literal_edits_are_told_apart() {
        assert!(calls("    check_parse(x)", "check_parse"));
        assert!(calls("    self.check_parse (x)", "check_parse"));
        assert!(!calls("def check_parse(x):", "check_parse"));
        assert!(!calls("    precheck_parse(x)", "check_parse"));
        assert!(only_literals_differ("assert f(1) == 'old'", "assert f(1) == 'new'"));
        assert!(only_literals_differ("assert_eq!(parse(\"1\"), 1);", "assert_eq!(parse(\"1\"), 2);"));
        assert!(!only_literals_differ("assert f(1) == 2", "assert g(1) == 2"));
        assert!(!only_literals_differ("assert f(1) == 2", "assert f(1) == 2"));
        assert!(!only_literals_differ("assert f(1) == 2", "assert f(1) >= 2"));
    }
}
