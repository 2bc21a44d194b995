//! Language-aware normalization: a source file as the sequence of its tokens, read by a real
//! parser (tree-sitter), so that two candidates whose edits differ only in layout, comments,
//! docstrings, quote style or trailing commas make the same change.

use tree_sitter::{Language, Node, Parser};

/// The grammar for a path, by its extension; `None` where baton has none.
fn language_of(path: &str) -> Option<Language> {
    let ext = path.rsplit_once('.')?.1;
    match ext {
        "py" | "pyi" => Some(tree_sitter_python::LANGUAGE.into()),
        _ => None,
    }
}

/// Whether [`canonical_source`] can read files at `path`.
pub fn understands(path: &str) -> bool {
    language_of(path).is_some()
}

/// The file's tokens, one space apart, without comments, docstrings (a string alone as a
/// statement), string quoting or trailing commas. `None` for a language baton has no grammar
/// for, or a file that does not parse (then only its text can be compared).
pub fn canonical_source(path: &str, text: &str) -> Option<String> {
    let mut parser = Parser::new();
    parser.set_language(&language_of(path)?).ok()?;
    let tree = parser.parse(text, None)?;
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let mut out = String::new();
    walk(root, text.as_bytes(), &mut out);
    Some(out)
}

fn walk(node: Node<'_>, src: &[u8], out: &mut String) {
    match node.kind() {
        "comment" => return,
        // a string alone as a statement: a docstring, or text nothing reads
        "expression_statement" if node.named_child_count() == 1 && is_string(node.named_child(0)) => return,
        "string" => {
            // prefix letters and content; the quotes chosen do not matter
            let mut cursor = node.walk();
            for part in node.children(&mut cursor) {
                let text = part.utf8_text(src).unwrap_or("");
                match part.kind() {
                    "string_start" => push(out, &text.trim_end_matches(['\'', '"']).to_ascii_lowercase()),
                    "string_end" => {}
                    _ => walk(part, src, out),
                }
            }
            return;
        }
        "," if next_closes(node) => return,
        _ => {}
    }
    if node.child_count() == 0 {
        push(out, node.utf8_text(src).unwrap_or(""));
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        walk(child, src, out);
    }
}

fn is_string(node: Option<Node<'_>>) -> bool {
    node.is_some_and(|n| matches!(n.kind(), "string" | "concatenated_string"))
}

/// A comma right before a closing bracket: `f(a, b,)` is `f(a, b)`.
fn next_closes(node: Node<'_>) -> bool {
    node.next_sibling().is_some_and(|n| matches!(n.kind(), ")" | "]" | "}"))
}

fn push(out: &mut String, token: &str) {
    if token.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_comments_docstrings_quotes_and_trailing_commas_do_not_matter() {
        let a = "def f(a, b):\n    \"\"\"Add them.\"\"\"\n    return g(a,\n             b, 'x')  # why\n";
        let b = "def f(a, b):\n    # adds\n    return g(a, b, \"x\",)\n";
        assert_eq!(canonical_source("m.py", a), canonical_source("m.py", b));
        assert_eq!(canonical_source("m.py", b).unwrap(), "def f ( a , b ) : return g ( a , b , x )");
        // what changes behaviour still counts
        let c = "def f(a, b):\n    return g(a, b, 'y')\n";
        assert_ne!(canonical_source("m.py", a), canonical_source("m.py", c));
        let d = "def f(a, b):\n    return g(a, b, b'x')\n";
        assert_ne!(
            canonical_source("m.py", a),
            canonical_source("m.py", d),
            "a bytes literal is another value"
        );
        let e = "def f(a, b):\n    return g(b, a, 'x')\n";
        assert_ne!(canonical_source("m.py", a), canonical_source("m.py", e));
    }

    #[test]
    fn unknown_languages_and_broken_files_have_no_canonical_form() {
        assert!(understands("pkg/m.py"));
        assert!(!understands("src/lib.rs"));
        assert_eq!(canonical_source("src/lib.rs", "fn main() {}"), None);
        assert_eq!(canonical_source("m.py", "def f(:\n"), None);
    }
}
