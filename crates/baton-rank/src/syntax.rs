//! Language-aware normalization: a source file as the sequence of its tokens, read by a real
//! parser (tree-sitter), so that two candidates whose edits differ only in layout, comments,
//! docstrings, quote style, trailing commas or optional semicolons make the same change.
//!
//! Grammars: Python, Rust, JavaScript (with JSX), TypeScript (and TSX), Go.

use tree_sitter::{Language, Node, Parser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Rust,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
}

impl Lang {
    /// The language of a path, by its extension; `None` where baton has no grammar.
    fn of(path: &str) -> Option<Lang> {
        let (_, ext) = path.rsplit_once('.')?;
        Some(match ext {
            "py" | "pyi" => Lang::Python,
            "rs" => Lang::Rust,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            _ => return None,
        })
    }

    fn grammar(self) -> Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    /// Where a statement's semicolon may be left to the language (at a line break).
    fn optional_semicolons(self) -> bool {
        matches!(self, Lang::JavaScript | Lang::TypeScript | Lang::Tsx | Lang::Go)
    }
}

/// Whether [`canonical_source`] can read files at `path`.
pub fn understands(path: &str) -> bool {
    Lang::of(path).is_some()
}

/// The file's tokens, one space apart, without comments (doc comments too), docstrings (a
/// string alone as a statement, in Python), the choice of quotes, trailing commas, or the
/// difference between a semicolon written and one the language inserts (JavaScript, TypeScript,
/// Go). A string keeps its content and prefix between canonical quotes, so it never reads as
/// code. `None` for a language baton has no grammar for, or a file that does not parse (then
/// only its text can be compared).
pub fn canonical_source(path: &str, text: &str) -> Option<String> {
    let lang = Lang::of(path)?;
    let mut parser = Parser::new();
    parser.set_language(&lang.grammar()).ok()?;
    let tree = parser.parse(text, None)?;
    let root = tree.root_node();
    if root.has_error() {
        return None;
    }
    let mut out = String::new();
    Walk { lang, src: text.as_bytes(), out: &mut out }.tree(root);
    Some(out)
}

struct Walk<'a> {
    lang: Lang,
    src: &'a [u8],
    out: &'a mut String,
}

impl Walk<'_> {
    /// Visits the tree in order without recursion: a generated file's long chain of `+` nests
    /// as deep as it is long.
    fn tree(&mut self, root: Node<'_>) {
        let mut cursor = root.walk();
        // For each node the cursor is inside: whether it ends with a `;` of its own, whether
        // its children are statements separated by `;` or line breaks, and whether it is a
        // block that only its indentation delimits.
        let mut open: Vec<(bool, bool, bool)> = Vec::new();
        loop {
            let node = cursor.node();
            let (terminated, separates, _) = open.last().copied().unwrap_or((false, false, false));
            if self.enter(node, (terminated, separates)) && cursor.goto_first_child() {
                let frame = self.frame(node.kind());
                if frame.2 {
                    self.push("{");
                }
                open.push(frame);
                continue;
            }
            while !cursor.goto_next_sibling() {
                if !cursor.goto_parent() {
                    return;
                }
                match open.pop() {
                    Some((_, _, true)) => self.push("}"),
                    Some((true, _, _)) => self.push(";"),
                    _ => {}
                }
            }
        }
    }

    /// How the children of a node of this kind are read: `x = 1` and `x = 1;` are one
    /// statement, so in JavaScript's family and Go every statement ends with one `;`, whether
    /// written or inserted by the language at a line break; and Go's statement lists drop
    /// their separators.
    /// Python's blocks are written as `{ }`: indentation is the only thing that says whether a
    /// statement is inside an `if` or after it, and the tokens alone would not.
    fn frame(&self, kind: &str) -> (bool, bool, bool) {
        let terminated =
            self.lang.optional_semicolons() && (kind.ends_with("statement") || kind.ends_with("declaration"));
        let separates = self.lang == Lang::Go && matches!(kind, "source_file" | "block" | "statement_list");
        let indented = self.lang == Lang::Python && kind == "block";
        (terminated, separates, indented)
    }

    /// Writes what a node reads as when it has no children to visit; whether to visit them.
    fn enter(&mut self, node: Node<'_>, (terminated, separates): (bool, bool)) -> bool {
        match node.kind() {
            "comment" | "line_comment" | "block_comment" | "html_comment" => return false,
            // a string alone as a statement: a docstring, or text nothing reads
            "expression_statement"
                if self.lang == Lang::Python
                    && node.named_child_count() == 1
                    && is_string(node.named_child(0)) =>
            {
                return false;
            }
            // (TypeScript's type `string` is an unnamed token of that kind)
            "string" | "interpreted_string_literal" | "string_literal" if node.is_named() => {
                self.string(node);
                return false;
            }
            "," if next_closes(node) => return false,
            ";" | "\n" if (terminated && node.next_sibling().is_none()) || separates => return false,
            _ => {}
        }
        if node.child_count() == 0 {
            self.push(node.utf8_text(self.src).unwrap_or(""));
            return false;
        }
        true
    }

    /// A string literal as one token, `prefix"content"`: the quotes chosen (single, double,
    /// triple) do not matter; a prefix (Python's `b`, `r`, `f`) and the content as written do.
    fn string(&mut self, node: Node<'_>) {
        let (Some(open), Some(close)) = (node.child(0), node.child(node.child_count().saturating_sub(1)))
        else {
            return;
        };
        // what the opening token holds before its quotes: Python's `rb`, Rust's `b`
        let prefix =
            open.utf8_text(self.src).unwrap_or("").trim_end_matches(['\'', '"']).to_ascii_lowercase();
        let content = match (open.id() == close.id(), self.src.get(open.end_byte()..close.start_byte())) {
            (false, Some(bytes)) => String::from_utf8_lossy(bytes),
            _ => "".into(),
        };
        self.push(&format!("{prefix}\"{content}\""));
    }

    fn push(&mut self, token: &str) {
        if token.is_empty() {
            return;
        }
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        self.out.push_str(token);
    }
}

fn is_string(node: Option<Node<'_>>) -> bool {
    node.is_some_and(|n| matches!(n.kind(), "string" | "concatenated_string"))
}

/// A separator right before a closing bracket: `f(a, b,)` is `f(a, b)`.
fn next_closes(node: Node<'_>) -> bool {
    node.next_sibling().is_some_and(|n| matches!(n.kind(), ")" | "]" | "}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that every text in `same` has one canonical form, and that none in `other` has it.
    fn check(path: &str, same: &[&str], other: &[&str]) {
        let canon = canonical_source(path, same[0]).unwrap_or_else(|| panic!("{path} does not parse"));
        for text in &same[1..] {
            assert_eq!(canonical_source(path, text).as_deref(), Some(canon.as_str()), "{text:?}");
        }
        for text in other {
            assert_ne!(canonical_source(path, text).as_deref(), Some(canon.as_str()), "{text:?}");
        }
    }

    #[test]
    fn python_layout_comments_docstrings_quotes_and_trailing_commas_do_not_matter() {
        let a = "def f(a, b):\n    \"\"\"Add them.\"\"\"\n    return g(a,\n             b, 'x')  # why\n";
        let b = "def f(a, b):\n    # adds\n    return g(a, b, \"x\",)\n";
        assert_eq!(canonical_source("m.py", b).unwrap(), "def f ( a , b ) : { return g ( a , b , \"x\" ) }");
        check(
            "m.py",
            &[a, b, "def f(a, b):\n    return g(a, b, '''x''')\n"],
            &[
                "def f(a, b):\n    return g(a, b, 'y')\n",
                // a bytes literal is another value, and a name is not a string
                "def f(a, b):\n    return g(a, b, b'x')\n",
                "def f(a, b):\n    return g(a, b, x)\n",
                "def f(a, b):\n    return g(b, a, 'x')\n",
            ],
        );
    }

    #[test]
    fn python_indentation_is_structure() {
        // The same tokens, but `b()` runs only when `x` holds in the second.
        check(
            "m.py",
            &["if x:\n    a()\nb()\n", "if x:\n  a()\n\nb()  # after\n"],
            &["if x:\n    a()\n    b()\n"],
        );
    }

    #[test]
    fn rust_comments_doc_comments_layout_and_trailing_commas_do_not_matter() {
        check(
            "src/lib.rs",
            &[
                "/// Adds.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b // sum\n}\n",
                "pub fn add(\n    a: i32,\n    b: i32,\n) -> i32 {\n    /* sum */ a + b\n}\n",
            ],
            &[
                "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n",
                "fn add(a: i32, b: i32) -> i32 { a + b }\n",
            ],
        );
        check(
            "src/lib.rs",
            &["const A: &[u8] = b\"x\";"],
            &["const A: &str = \"x\";", "const A: &[u8] = b\"y\";"],
        );
    }

    #[test]
    fn javascript_semicolons_quotes_and_comments_do_not_matter() {
        check(
            "lib/a.js",
            &[
                "const x = 'a'  // c\nfunction f(a, b,) {\n  return a + b\n}\nfor (let i = 0; i < 3; i++) { f(i, x) }\n",
                "const x = \"a\";\n/* c */\nfunction f(a, b) { return a + b; }\nfor (let i = 0; i < 3; i++) {\n  f(i, x);\n}\n",
            ],
            &[
                "const x = 'b'\nfunction f(a, b) { return a + b }\nfor (let i = 0; i < 3; i++) { f(i, x) }\n",
                "const x = a\nfunction f(a, b) { return a + b }\nfor (let i = 0; i < 3; i++) { f(i, x) }\n",
            ],
        );
        // a line break after `return` ends the statement: these are different programs
        check("a.js", &["function f() { return x }"], &["function f() {\n  return\n  x\n}"]);
    }

    #[test]
    fn typescript_and_tsx_keep_their_types() {
        check(
            "src/a.ts",
            &[
                "function f(p: {n: string}): number { return 1 }",
                "function f(p: { n: string }): number {\n  return 1;\n}\n",
            ],
            &["function f(p: {n: number}): number { return 1 }"],
        );
        check(
            "src/c.tsx",
            &[
                "const C = (p: {n: string}) => <div title='x'>{p.n}</div>",
                "const C = (p: { n: string }) =>\n  <div title=\"x\">{p.n}</div>;\n",
            ],
            // parentheses stay: they can change what an expression means
            &[
                "const C = (p: {n: string}) => <span title='x'>{p.n}</span>",
                "const C = (p: {n: string}) => (<div title='x'>{p.n}</div>)",
            ],
        );
    }

    #[test]
    fn go_line_breaks_and_semicolons_end_statements_alike() {
        check(
            "main.go",
            &[
                "package main\n\nfunc add(a, b int) int { x := a + b; return x }\n",
                "package main\n\n// add adds.\nfunc add(a, b int) int {\n\tx := a + b\n\treturn x\n}\n",
            ],
            &[
                "package main\n\nfunc add(a, b int) int { x := a - b; return x }\n",
                "package main\n\nfunc add(a, b int) int { return a + b }\n",
            ],
        );
    }

    #[test]
    fn a_deeply_nested_expression_does_not_exhaust_the_stack() {
        let terms = vec!["'x'"; 100_000].join(" + ");
        let canon = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || canonical_source("gen.py", &format!("s = {terms}\n")))
            .unwrap()
            .join()
            .expect("no stack overflow")
            .unwrap();
        assert!(canon.starts_with("s = \"x\" + \"x\""), "{}", &canon[..40]);
        assert_eq!(canon.matches('+').count(), 99_999);
    }

    #[test]
    fn unknown_languages_and_broken_files_have_no_canonical_form() {
        for path in ["pkg/m.py", "src/lib.rs", "a.js", "a.mjs", "a.jsx", "a.ts", "a.tsx", "main.go"] {
            assert!(understands(path), "{path}");
        }
        assert!(!understands("README.md") && !understands("Makefile"));
        assert_eq!(canonical_source("a.c", "int main() {}"), None);
        let broken = [
            ("m.py", "def f(:\n"),
            ("a.rs", "fn main( {}"),
            ("a.js", "function (}"),
            ("a.ts", "let x: = 1"),
            ("a.go", "func {"),
        ];
        for (path, text) in broken {
            assert_eq!(canonical_source(path, text), None, "{path}");
        }
    }
}
