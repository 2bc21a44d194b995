use std::collections::HashMap;

/// Reduces a unified diff to what it changes, so that two agents' patches that differ only in
/// whitespace, blank lines, comments or hunk placement compare equal: per file, the removed and
/// added lines with all whitespace taken out, comment-only and blank lines dropped.
pub fn normalize_patch(diff: &str) -> String {
    normalize_patch_with(diff, &HashMap::new())
}

/// [`normalize_patch`], with a language-aware reading of some files: where `canonical` holds a
/// path, that file's change is its canonical text after the change ([`crate::canonical_source`]),
/// or, for `None`, nothing (the change altered no token: layout, comments, docstrings).
pub fn normalize_patch_with(diff: &str, canonical: &HashMap<String, Option<String>>) -> String {
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest.rsplit_once(" b/").map(|(_, p)| p).unwrap_or(rest);
            files.push((path.to_owned(), Vec::new()));
            continue;
        }
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let Some((_, lines)) = files.last_mut() else { continue };
        let (sign, body) = match line.as_bytes().first() {
            Some(b'+') => ('+', &line[1..]),
            Some(b'-') => ('-', &line[1..]),
            _ => continue,
        };
        let squeezed: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        if squeezed.is_empty() || is_comment(&squeezed) {
            continue;
        }
        lines.push(format!("{sign}{squeezed}"));
    }
    for (path, lines) in &mut files {
        match canonical.get(path.as_str()) {
            Some(Some(text)) => *lines = vec![format!("={text}")],
            Some(None) => lines.clear(),
            None => {}
        }
    }
    files.retain(|(_, l)| !l.is_empty());
    files.sort();
    let mut out = String::new();
    for (path, lines) in files {
        out.push_str(&path);
        out.push('\n');
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// Whether a unified diff changes nothing that can matter: in every file, either a parser read
/// it and no token changed (`canonical` holds `None` for it, see [`normalize_patch_with`]), or
/// the lines it removes and adds are the same once trailing whitespace (and a carriage return)
/// is cut and blank lines are left out. Indentation stays: in some formats it is meaning. A
/// file added or deleted whole, renamed, or changed in mode is a change.
pub fn is_layout_only(diff: &str, canonical: &HashMap<String, Option<String>>) -> bool {
    let mut files: Vec<(String, Vec<String>, Vec<String>, bool)> = Vec::new();
    for line in diff.lines() {
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let path = rest.rsplit_once(" b/").map(|(_, p)| p).unwrap_or(rest);
            files.push((path.to_owned(), Vec::new(), Vec::new(), false));
            continue;
        }
        let Some((_, removed, added, structural)) = files.last_mut() else { continue };
        if [
            "new file mode",
            "deleted file mode",
            "rename from",
            "old mode",
            "Binary files",
            "GIT binary patch",
        ]
        .iter()
        .any(|p| line.starts_with(p))
            || line == "--- /dev/null"
            || line == "+++ /dev/null"
        {
            *structural = true;
            continue;
        }
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let (side, body) = match line.as_bytes().first() {
            Some(b'+') => (&mut *added, &line[1..]),
            Some(b'-') => (&mut *removed, &line[1..]),
            _ => continue,
        };
        let body = body.trim_end();
        if !body.is_empty() {
            side.push(body.to_owned());
        }
    }
    !files.is_empty()
        && files.into_iter().all(|(path, mut removed, mut added, structural)| {
            if structural {
                return false;
            }
            if let Some(reading) = canonical.get(&path) {
                return reading.is_none();
            }
            removed.sort();
            added.sort();
            removed == added
        })
}

/// The size of a unified diff's edit in tokens (identifiers, numbers, single punctuation
/// marks): per file, the tokens of the removed lines and those of the added lines, less the ones
/// both sides share. Renaming one variable in a line counts 2, however long the line; comments,
/// blank lines and whitespace count nothing, as in [`normalize_patch`].
pub fn edit_tokens(diff: &str) -> usize {
    let mut total = 0;
    // token -> (removed, added) counts of the current file
    let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
    let settle = |counts: &mut HashMap<String, (usize, usize)>| -> usize {
        counts.drain().map(|(_, (r, a))| r.abs_diff(a)).sum()
    };
    for line in diff.lines() {
        if line.starts_with("diff --git ") {
            total += settle(&mut counts);
            continue;
        }
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let (added, body) = match line.as_bytes().first() {
            Some(b'+') => (true, &line[1..]),
            Some(b'-') => (false, &line[1..]),
            _ => continue,
        };
        if is_comment(body.trim_start()) {
            continue;
        }
        for token in tokens(body) {
            let entry = counts.entry(token.to_owned()).or_default();
            if added {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
    total + settle(&mut counts)
}

/// Decision points a diff adds and removes: the branches, loops, handlers and short-circuit
/// operators that make up cyclomatic complexity (`if`, `elif`, `for`, `while`, `case`,
/// `catch`, `except`, `and`, `or`, `&&`, `||`), counted in changed lines outside comments.
/// Language-agnostic and approximate; strings that hold these words count too.
pub fn edit_complexity(diff: &str) -> (usize, usize) {
    const WORDS: &[&str] = &["if", "elif", "for", "while", "case", "catch", "except", "and", "or"];
    let (mut added, mut removed) = (0, 0);
    for line in diff.lines() {
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        let (counter, body) = match line.as_bytes().first() {
            Some(b'+') => (&mut added, &line[1..]),
            Some(b'-') => (&mut removed, &line[1..]),
            _ => continue,
        };
        if is_comment(body.trim_start()) {
            continue;
        }
        let words = tokens(body).filter(|t| WORDS.contains(t)).count();
        *counter += words + body.matches("&&").count() + body.matches("||").count();
    }
    (added, removed)
}

/// Words (letters, digits, `_`) and single other non-space characters.
fn tokens(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        rest = rest.trim_start();
        let first = rest.chars().next()?;
        let len = if first.is_alphanumeric() || first == '_' {
            rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len())
        } else {
            first.len_utf8()
        };
        let (token, tail) = rest.split_at(len);
        rest = tail;
        Some(token)
    })
}

fn is_comment(s: &str) -> bool {
    ["#", "//", "/*", "*", "--", ";;"].iter().any(|p| s.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_only_changes_are_told_from_changes_that_can_matter() {
        let none = HashMap::new();
        let trailing = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,2 +1,3 @@\n-x = 1 \n+x = 1\r\n+\n y\n";
        assert!(is_layout_only(trailing, &none));
        let indent = "diff --git a/a.yml b/a.yml\n--- a/a.yml\n+++ b/a.yml\n@@ -1 +1 @@\n-  x: 1\n+x: 1\n";
        assert!(!is_layout_only(indent, &none), "indentation can be meaning");
        let edit = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-x = 1\n+x = 2\n";
        assert!(!is_layout_only(edit, &none));
        let empty_new =
            "diff --git a/pkg/py.typed b/pkg/py.typed\nnew file mode 100644\nindex 0000000..e69de29\n";
        assert!(!is_layout_only(empty_new, &none), "a new empty file is a change");
        // A parsed file whose tokens did not change, beside one that did.
        let py =
            "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1  # one\n+x = 1  # uno\n";
        let read = HashMap::from([("m.py".to_owned(), None)]);
        assert!(is_layout_only(py, &read));
        let changed = HashMap::from([("m.py".to_owned(), Some("x = 2".to_owned()))]);
        assert!(!is_layout_only(py, &changed));
        assert!(!is_layout_only("", &none), "no diff is not a layout change");
    }

    #[test]
    fn whitespace_comments_and_hunk_headers_do_not_matter() {
        let a = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,4 @@\n def f(n):\n-    return n\n+    # off by one\n+    return n + 1\n";
        let b = "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n@@ -10,3 +10,4 @@\n def f(n):\n-\treturn n\n+\treturn n+1\n+\n";
        assert_eq!(normalize_patch(a), normalize_patch(b));
        assert_eq!(normalize_patch(a), "x.py\n-returnn\n+returnn+1\n");
        let c = a.replace("n + 1", "n - 1");
        assert_ne!(normalize_patch(a), normalize_patch(&c));
        assert_eq!(normalize_patch(""), "");
    }

    #[test]
    fn a_canonical_reading_replaces_a_files_lines() {
        let a = "diff --git a/x.py b/x.py\n@@ -1 +1 @@\n-f(a)\n+f(a, b)\ndiff --git a/y.txt b/y.txt\n@@ -1 +1 @@\n-1\n+2\n";
        let b = "diff --git a/x.py b/x.py\n@@ -1 +1,2 @@\n-f(a)\n+f(a,\n+  b)\ndiff --git a/y.txt b/y.txt\n@@ -1 +1 @@\n-1\n+2\n";
        assert_ne!(normalize_patch(a), normalize_patch(b), "lines differ");
        let canonical = HashMap::from([("x.py".to_owned(), Some("f ( a , b )".to_owned()))]);
        assert_eq!(normalize_patch_with(a, &canonical), normalize_patch_with(b, &canonical));
        assert_eq!(normalize_patch_with(a, &canonical), "x.py\n=f ( a , b )\ny.txt\n-1\n+2\n");
        let unchanged = HashMap::from([("x.py".to_owned(), None)]);
        assert_eq!(normalize_patch_with(a, &unchanged), "y.txt\n-1\n+2\n");
    }

    #[test]
    fn edit_complexity_counts_decision_points_on_each_side() {
        let diff = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,4 @@\n-    if a or b:\n+    if a:\n+        for x in xs:\n+            if x and not y: pass\n+    # if this were a branch\n diff --git a/y.rs b/y.rs\n+    while a && (b || c) {}\n-    let formula = 1;\n";
        assert_eq!(edit_complexity(diff), (7, 2), "if, for, if, and, while, &&, || against if, or");
        assert_eq!(edit_complexity(""), (0, 0));
    }

    #[test]
    fn edit_tokens_measures_the_edit_within_lines() {
        let rename = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-    return compute(alpha, beta, gamma)\n+    return compute(alpha, beta, delta)\n";
        assert_eq!(edit_tokens(rename), 2, "gamma out, delta in");
        let rewrite = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-    return compute(alpha, beta, gamma)\n+    return [a * 2 for a in items]\n";
        assert!(edit_tokens(rewrite) > 10, "{}", edit_tokens(rewrite));
        // comments and whitespace are free; each file settles on its own
        let noise = "diff --git a/x.py b/x.py\n@@ -1 +1,2 @@\n-x  =  1\n+x = 1\n+# why\ndiff --git a/y.py b/y.py\n@@ -1 +1 @@\n-y = 1\n";
        assert_eq!(edit_tokens(noise), 3, "y, =, 1 removed from y.py");
        assert_eq!(edit_tokens(""), 0);
    }
}
