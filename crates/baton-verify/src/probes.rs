//! Reproduction probes: small programs run on the base and on every candidate, whose output is
//! the behaviour the task talks about.
//!
//! Probes come from the configuration (`[[verify.probe]]`, `--probe`: any shell command) or from
//! the task text itself, when it holds runnable Python: `>>>` and IPython (`In [1]:`) sessions
//! (each statement run as the REPL would, its output kept apart, the output the text shows
//! beside it) and fenced code blocks (run as a script; an output block right after one is what
//! the text shows it printing).
//! Outputs are normalized so that what differs only by workspace path or object address
//! compares equal, and an exception compares by its type and message, not its traceback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::stages::SubjectContext;
use baton_core::{ProbeOutcome, RunEvent};
use baton_exec::{Cancel, End, Spec};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// One probe, ready to run on any subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub name: String,
    pub kind: ProbeKind,
    /// For each statement (one for scripts and commands), the output the task shows, if any.
    pub shown: Vec<Option<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeKind {
    /// A shell command from the configuration or the command line.
    Command { run: String },
    /// A Python script from a fenced block of the task.
    Script { source: String },
    /// A `>>>` session from the task: statements run one by one in one namespace.
    Session { statements: Vec<String> },
    /// A Python script a candidate added at the top of the repository (`reproduce_bug.py`):
    /// its author's reproduction of the problem, run unchanged as `python <path>` would run it
    /// from the workspace's root, on the base and on every candidate.
    /// Its name says whose it is; `authors` are every candidate that added the same source.
    CandidateScript { path: String, source: String, authors: Vec<String> },
}

/// Put first in a probe script: imports resolve from the working directory (the workspace), as
/// they did for whoever ran the example from the project's root, not from the script's folder.
const IMPORT_FROM_HERE: &str = "import sys; sys.path[0:0] = ['', 'src']\n";

/// Marks the start of a statement's output in a session's stdout.
const MARK: &str = "\u{1e}baton-statement ";

/// The runnable examples in a task's text.
pub fn extract_probes(task: &str) -> Vec<Probe> {
    let mut probes = Vec::new();
    let blocks = fenced_blocks(task);
    let mut outside = task.to_owned();
    for (i, block) in blocks.iter().enumerate() {
        outside = outside.replacen(&block.raw, "", 1);
        if has_session(&block.body) {
            if let Some(p) = session(&block.body) {
                probes.push(p);
            }
            continue;
        }
        if !looks_like_python(block) {
            continue;
        }
        // An output block right after a script is what the task shows it printing.
        let shown = blocks
            .get(i + 1)
            .filter(|next| !looks_like_python(next) && next.start_line <= block.end_line + 3)
            .map(|next| normalize(&next.body, None));
        probes.push(Probe {
            name: "script".into(),
            kind: ProbeKind::Script { source: block.body.clone() },
            shown: vec![shown],
        });
    }
    // Sessions written outside fences.
    if has_session(&outside)
        && let Some(p) = session(&outside)
    {
        probes.push(p);
    }
    // Calls quoted inline in the prose ("calling `f([1, 1])` raises ..."), run as one session.
    let calls = inline_calls(&outside);
    if !calls.is_empty() {
        let n = calls.len();
        probes.push(Probe {
            name: "inline code".into(),
            kind: ProbeKind::Session { statements: calls },
            shown: vec![None; n],
        });
    }
    // An example the text repeats (a quote of the report, a session pasted twice) is one
    // example: run twice, it would count twice. Each is named by its place once they are known.
    let mut unique: Vec<Probe> = Vec::new();
    for mut p in probes {
        if !unique.iter().any(|u| u.kind == p.kind) {
            p.name = format!("example {} ({})", unique.len() + 1, p.name);
            unique.push(p);
        }
    }
    unique
}

/// The string values a task quotes: inline code spans in its prose, and lines of its fenced
/// blocks, that are one complete Python string literal (`'\\arcsin{x}'`, `"a, b"`). An issue
/// quotes the output it gets and the output it wants this way; a program that prints one shows
/// it as a line of its output, either as the literal is written (its `repr`) or as its value.
/// Each value comes with both forms, the value first; values shorter than three characters
/// (too common to say anything) are left out.
pub fn task_values(task: &str) -> Vec<Vec<String>> {
    let mut spans: Vec<&str> = Vec::new();
    let mut in_block = false;
    for line in task.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            // an output line, or one shown after a session's prompt
            spans.push(line.trim());
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(span), Some(_)) = (parts.next(), parts.next()) {
            spans.push(span.trim());
        }
    }
    let mut out: Vec<Vec<String>> = Vec::new();
    for span in spans {
        let Some(value) = python_string_literal(span) else { continue };
        if value.trim().chars().count() < 3 {
            continue;
        }
        let forms = if value == span { vec![value] } else { vec![value, span.to_owned()] };
        if !out.contains(&forms) {
            out.push(forms);
        }
    }
    out
}

/// The value of one complete Python string literal (with an optional `r`, `u` or `b` prefix),
/// or `None` when `s` is anything else (code, two literals, a literal with more after it).
fn python_string_literal(s: &str) -> Option<String> {
    let prefix_len = s.find(['\'', '"'])?;
    let prefix = s[..prefix_len].to_ascii_lowercase();
    if !matches!(prefix.as_str(), "" | "r" | "u" | "b" | "br" | "rb") {
        return None;
    }
    let raw = prefix.contains('r');
    let body = &s[prefix_len..];
    let quote = body.chars().next()?;
    let inner = body.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut value = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == quote {
            return None; // the literal ends before the span does
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        let next = chars.next()?;
        match next {
            _ if raw => {
                value.push('\\');
                value.push(next);
            }
            '\\' | '\'' | '"' => value.push(next),
            'n' => value.push('\n'),
            't' => value.push('\t'),
            other => {
                value.push('\\');
                value.push(other);
            }
        }
    }
    Some(value)
}

/// Code spans in prose that call something, `Name(...)` or `a.b(...).c`: what an issue's
/// author quotes when they say what a call does. Spans with no call, statements and text that
/// is not one balanced expression are left out; so is a call already quoted before.
fn inline_calls(prose: &str) -> Vec<String> {
    let call = Regex::new(r"^[A-Za-z_][\w.]*\(.*\)[\w.()\[\]]*$").expect("valid regex");
    let mut out: Vec<String> = Vec::new();
    for line in prose.lines() {
        // spans never cross lines; double backticks are another markup
        let mut parts = line.split('`');
        parts.next();
        while let (Some(span), Some(_)) = (parts.next(), parts.next()) {
            let span = span.trim();
            if span.len() <= 200
                && call.is_match(span)
                && balanced(span)
                && !span.contains(" = ")
                && !out.iter().any(|s| s == span)
            {
                out.push(span.to_owned());
            }
        }
    }
    out
}

/// Brackets nest properly and quotes close (a cut-off fragment is not run).
fn balanced(s: &str) -> bool {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => stack.push(c),
                ')' | ']' | '}' => {
                    let open = match c {
                        ')' => '(',
                        ']' => '[',
                        _ => '{',
                    };
                    if stack.pop() != Some(open) {
                        return false;
                    }
                }
                _ => {}
            },
        }
    }
    stack.is_empty() && quote.is_none()
}

struct Block {
    raw: String,
    lang: String,
    body: String,
    start_line: usize,
    end_line: usize,
}

fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        if let Some(rest) = t.strip_prefix("```") {
            let lang = rest.trim().to_ascii_lowercase();
            let start = i;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                body.push(lines[i]);
                i += 1;
            }
            let end = i.min(lines.len().saturating_sub(1));
            blocks.push(Block {
                raw: lines[start..=end].join("\n"),
                lang,
                body: dedent(&body.join("\n")),
                start_line: start,
                end_line: end,
            });
        }
        i += 1;
    }
    blocks
}

fn dedent(text: &str) -> String {
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|l| if l.len() >= indent { &l[indent..] } else { l.trim_start() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Code, not output: a Python-tagged block, or an untagged one whose lines read like Python
/// statements rather than a traceback, a shell session or program output.
fn looks_like_python(b: &Block) -> bool {
    let first = b.body.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim_start();
    if first.starts_with("Traceback")
        || first.starts_with('$')
        || first.starts_with("File \"")
        || b.body.trim().is_empty()
    {
        return false;
    }
    let shell = Regex::new(r"^(python\d?(\.\d+)?|pip\d?|pytest|cd|git|sphinx-build|make|tox)\b")
        .expect("valid regex");
    if b.body.lines().any(|l| shell.is_match(l.trim_start())) {
        return false;
    }
    match b.lang.as_str() {
        "python" | "py" | "python3" => true,
        "" => {
            let code = Regex::new(
                r"^(import |from \S+ import |def |class |print\(|for |if |with |[A-Za-z_][\w.]*\s*(=|\())",
            )
            .expect("valid regex");
            b.body.lines().filter(|l| !l.trim().is_empty()).any(|l| code.is_match(l.trim_start()))
                && !b
                    .body
                    .lines()
                    .any(|l| l.trim_start().starts_with("E ") || l.contains("Error:") && !l.contains('('))
        }
        _ => false,
    }
}

/// A line of an interactive session, the Python REPL's (`>>> `, `... `) or IPython's
/// (`In [3]: `, `   ...: `, `Out[3]: `), with its indentation trimmed.
enum SessionLine<'a> {
    /// A statement's first line.
    Prompt(&'a str),
    /// A statement's next line.
    More(&'a str),
    /// IPython's `Out[n]:` line: the value of the statement before.
    Out(&'a str),
    /// Anything else: output, or prose.
    Other,
}

fn session_line(t: &str) -> SessionLine<'_> {
    static IPYTHON: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"^(?:(?P<kind>In|Out) ?\[\d*\]|(?P<more>\.\.\.+)):(?: (?P<rest>.*))?$")
            .expect("valid regex")
    });
    if let Some(c) = IPYTHON.captures(t) {
        let rest = c.name("rest").map_or("", |m| m.as_str());
        return match c.name("kind").map(|m| m.as_str()) {
            Some("In") => SessionLine::Prompt(rest),
            Some(_) => SessionLine::Out(rest),
            None => SessionLine::More(rest),
        };
    }
    if let Some(code) = t.strip_prefix(">>>") {
        return SessionLine::Prompt(code.strip_prefix(' ').unwrap_or(code));
    }
    if let Some(code) = t.strip_prefix("...") {
        return SessionLine::More(code.strip_prefix(' ').unwrap_or(code));
    }
    SessionLine::Other
}

/// Whether `text` holds a session: a line with a prompt (`>>>`, `In [1]:`).
fn has_session(text: &str) -> bool {
    text.lines().any(|l| matches!(session_line(l.trim_start()), SessionLine::Prompt(_)))
}

/// An interactive session: statements with their continuation lines, and the output lines after
/// each. IPython's magics (`%timeit`, `!ls`) and help (`f?`) are not Python and are left out.
fn session(text: &str) -> Option<Probe> {
    let mut statements: Vec<String> = Vec::new();
    let mut shown: Vec<Option<String>> = Vec::new();
    let mut output: Vec<&str> = Vec::new();
    let mut in_session = false;
    let mut ipython = false;
    // Output lines keep their indentation relative to the prompt (traceback frames are
    // recognized by theirs).
    let mut indent = 0;
    let flush = |output: &mut Vec<&str>, shown: &mut Vec<Option<String>>| {
        if output.is_empty() {
            return;
        }
        if let Some(last) = shown.last_mut() {
            let text = output.join("\n");
            *last = (!text.trim().is_empty()).then(|| normalize(&text, None));
        }
        output.clear();
    };
    for line in text.lines() {
        let t = line.trim_start();
        match session_line(t) {
            SessionLine::Prompt(code) => {
                ipython |= t.starts_with("In ");
                indent = line.len() - t.len();
                flush(&mut output, &mut shown);
                let code = code.trim_end();
                in_session = !(code.starts_with(['%', '!']) || code.ends_with('?'));
                if in_session {
                    statements.push(code.to_owned());
                    shown.push(None);
                }
            }
            SessionLine::More(code) if in_session && output.is_empty() => {
                if let Some(s) = statements.last_mut() {
                    s.push('\n');
                    s.push_str(code);
                }
            }
            SessionLine::Out(value) if !statements.is_empty() => {
                flush(&mut output, &mut shown);
                in_session = true;
                if !value.trim().is_empty() {
                    output.push(value);
                }
            }
            _ if in_session => {
                if t.is_empty() {
                    flush(&mut output, &mut shown);
                    in_session = false;
                } else {
                    let leading = line.len() - t.len();
                    output.push(&line[leading.min(indent)..]);
                }
            }
            _ => {}
        }
    }
    flush(&mut output, &mut shown);
    if statements.is_empty() {
        return None;
    }
    let style = if ipython { "IPython" } else { ">>>" };
    Some(Probe { name: format!("{style} session"), kind: ProbeKind::Session { statements }, shown })
}

/// Output as it compares: workspace paths and object addresses masked, whitespace at line ends
/// dropped, and a traceback reduced to its last line (the exception).
pub fn normalize(text: &str, workspace: Option<&Path>) -> String {
    let mut t = text.replace("\r\n", "\n");
    if let Some(ws) = workspace {
        t = t.replace(&ws.to_string_lossy().into_owned(), "<workspace>");
    }
    let address = Regex::new(r"0x[0-9a-fA-F]{6,}").expect("valid regex");
    t = address.replace_all(&t, "0x?").into_owned();
    let lines: Vec<&str> = t.lines().map(str::trim_end).collect();
    let mut out: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // IPython's: a rule of dashes, `TypeError    Traceback (most recent call last)`, frames
        // with arrows and source lines, and at the end the exception, which alone is kept.
        if lines[i].contains("Traceback (most recent call last)") && !lines[i].starts_with("Traceback") {
            if out.last().is_some_and(|l| !l.is_empty() && l.chars().all(|c| c == '-')) {
                out.pop();
            }
            if let Some(last) = lines[i + 1..].iter().rposition(|l| !l.is_empty()) {
                out.push(lines[i + 1 + last]);
            }
            break;
        }
        if lines[i].starts_with("Traceback (most recent call last)") {
            // Skip the frames; keep the exception line(s) after them.
            i += 1;
            while i < lines.len() && (lines[i].starts_with(' ') || lines[i].is_empty()) {
                i += 1;
            }
            continue;
        }
        // Where the recursion limit struck ("while calling a Python object", "in comparison")
        // depends on the path taken to it, not on what the code does.
        const RECURSION: &str = "RecursionError: maximum recursion depth exceeded";
        out.push(if lines[i].starts_with(RECURSION) { RECURSION } else { lines[i] });
        i += 1;
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// Runs probes on one subject.
#[derive(Debug, Clone)]
pub struct ProbeRunner {
    pub probes: Vec<Probe>,
    /// The interpreter for probes taken from the task (`python3` unless configured).
    pub python: String,
    /// The project's own top-level Python packages: examples in issues tend to assume them
    /// imported (`from sympy import *` typed earlier), so task probes import them first.
    pub packages: Vec<String>,
    /// Names the task's examples use that the packages do not export at their top, each with
    /// the project's modules that define it ([`definition_modules`]): imported when missing.
    pub imports: Vec<(String, Vec<String>)>,
    pub timeout: Duration,
    pub grace: Duration,
    /// Where the probes' processes run.
    pub executor: std::sync::Arc<dyn baton_exec::Executor>,
}

impl ProbeRunner {
    /// Runs every probe on one subject. A candidate skips a probe the base has already run
    /// until its time limit: that probe counts for nothing anywhere (a script that hangs would
    /// otherwise cost its whole limit on every candidate).
    pub async fn run(
        &self,
        ctx: &SubjectContext,
        cancel: Cancel,
        emit: &(dyn Fn(RunEvent) + Send + Sync),
    ) -> Vec<ProbeOutcome> {
        let (subject, workspace) = (&ctx.subject, ctx.workspace.as_path());
        let dir = ctx.artifacts.join(subject.to_string());
        let _ = std::fs::create_dir_all(&dir);
        let mut out = Vec::new();
        let preamble = preamble(&self.packages, &self.imports);
        for (i, probe) in self.probes.iter().enumerate() {
            if cancel.is_cancelled() {
                break;
            }
            let log = dir.join(format!("probe-{}.log", i + 1));
            if ctx.base.as_ref().is_some_and(|b| b.probe_timed_out(i)) {
                let _ =
                    std::fs::write(&log, "baton: not run: this probe ran until its time limit on the base\n");
                out.push(ProbeOutcome {
                    name: probe.name.clone(),
                    exit_code: None,
                    timed_out: true,
                    statements: Vec::new(),
                });
                continue;
            }
            let script = match &probe.kind {
                ProbeKind::Command { run } => run.clone(),
                ProbeKind::Script { source } => {
                    let file = write_script(&dir, i, &script_driver(source, &preamble));
                    format!("{} {}", self.python, shell_quote(&file))
                }
                ProbeKind::Session { statements } => {
                    let file = write_script(&dir, i, &session_driver(statements, &preamble));
                    format!("{} {}", self.python, shell_quote(&file))
                }
                ProbeKind::CandidateScript { path, source, .. } => {
                    let file = write_script(&dir, i, &candidate_script_driver(path, source));
                    format!("{} {}", self.python, shell_quote(&file))
                }
            };
            let spec = Spec::shell(&script, workspace)
                .log(&log, 1 << 20)
                // what a statement writes to stderr stays with that statement's output
                .merge_output()
                .timeouts(Some(self.timeout), None)
                .grace(self.grace)
                .env("BATON_SUBJECT", subject.to_string())
                .env("PYTHONDONTWRITEBYTECODE", "1")
                // The same order of sets and dicts on every subject, so their outputs compare.
                .env("PYTHONHASHSEED", "0")
                // Warnings (deprecations, syntax warnings while importing) are noise here.
                .env("PYTHONWARNINGS", "ignore");
            // Probes never need the network: the confinement as the subject's, network off.
            let spec = match &ctx.confine {
                Some(c) => spec.confine(c.clone().network(baton_exec::Network::Private)),
                None => spec,
            };
            let process = self.executor.spawn(spec);
            if let Some(pid) = process.pid() {
                emit(RunEvent::ProcessStarted {
                    pid,
                    start_ticks: baton_exec::identity_of(pid).map(|i| i.start_ticks),
                    label: format!("probe {} on {subject}", i + 1),
                });
            }
            let finished = process.wait(cancel.clone(), None).await;
            let text =
                std::fs::read(&log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            let statements = match &probe.kind {
                ProbeKind::Session { statements } => split_statements(&text, statements.len(), workspace),
                ProbeKind::Command { .. } | ProbeKind::Script { .. } | ProbeKind::CandidateScript { .. } => {
                    vec![normalize(&text, Some(workspace))]
                }
            };
            let (exit_code, timed_out) = match finished.end {
                End::Exited { code } => (Some(code), false),
                End::TimedOut { .. } => (None, true),
                End::Signaled { .. } | End::Cancelled | End::SpawnFailed { .. } => (None, false),
            };
            if timed_out && let Some(p) = &ctx.publish {
                p.probe_timed_out(i);
            }
            out.push(ProbeOutcome { name: probe.name.clone(), exit_code, timed_out, statements });
        }
        out
    }
}

fn write_script(dir: &Path, i: usize, source: &str) -> PathBuf {
    let file = dir.join(format!("probe-{}.py", i + 1));
    let _ = std::fs::write(&file, source);
    file
}

fn shell_quote(p: &Path) -> String {
    shell_words::quote(&p.to_string_lossy()).into_owned()
}

/// A Python program that runs each statement as the REPL would (expression values printed),
/// an exception reported as `Type: message` without stopping the session.
fn session_driver(statements: &[String], preamble: &str) -> String {
    let list: Vec<String> = statements.iter().map(|s| py_str(s)).collect();
    format!(
        "{IMPORT_FROM_HERE}_baton_ns = {{'__name__': '__main__'}}\nexec({}, _baton_ns)\nfor _baton_i, _baton_src in enumerate([{}]):\n    print({} + str(_baton_i), flush=True)\n    try:\n        exec(compile(_baton_src, '<probe>', 'single'), _baton_ns)\n    except SystemExit:\n        raise\n    except BaseException as _baton_e:\n        print('%s: %s' % (type(_baton_e).__name__, _baton_e))\n    sys.stdout.flush()\n    sys.stderr.flush()\n",
        py_str(preamble),
        list.join(", "),
        py_str(MARK)
    )
}

/// A Python program that runs a script's top-level statements in turn, showing the value of
/// each bare expression as the REPL would (issue authors paste what they typed there), and
/// reporting an exception as `Type: message` where the script would have stopped.
fn script_driver(source: &str, preamble: &str) -> String {
    format!(
        r#"{IMPORT_FROM_HERE}import ast
_baton_ns = {{'__name__': '__main__'}}
exec({preamble}, _baton_ns)
try:
    _baton_tree = ast.parse({source})
except SyntaxError as _baton_e:
    print('SyntaxError: %s' % _baton_e)
    sys.exit(1)
for _baton_node in _baton_tree.body:
    if isinstance(_baton_node, ast.Expr):
        _baton_mod, _baton_mode = ast.Interactive(body=[_baton_node]), 'single'
    else:
        _baton_mod, _baton_mode = ast.Module(body=[_baton_node]), 'exec'
        _baton_mod.type_ignores = []
    try:
        exec(compile(_baton_mod, '<probe>', _baton_mode), _baton_ns)
    except SystemExit:
        raise
    except BaseException as _baton_e:
        sys.stdout.flush()
        print('%s: %s' % (type(_baton_e).__name__, _baton_e))
        sys.exit(1)
"#,
        preamble = py_str(preamble),
        source = py_str(source)
    )
}

/// Runs a candidate's script as `python <path>` from the workspace's root would: the same
/// `__name__`, `__file__` and import path, with no preamble (its author ran it as it is). An
/// exception ends it with its traceback, as it would have.
fn candidate_script_driver(path: &str, source: &str) -> String {
    format!(
        "import os, sys\nsys.path[0] = os.getcwd()\n_baton_file = os.path.join(os.getcwd(), {path})\nsys.argv = [_baton_file]\nexec(compile({source}, _baton_file, 'exec'), {{'__name__': '__main__', '__file__': _baton_file}})\n",
        path = py_str(path),
        source = py_str(source)
    )
}

/// Whether a path names a Python script at the repository's top, where agents leave their
/// reproductions of a problem (`reproduce_bug.py`).
pub fn is_script_path(path: &str) -> bool {
    !path.contains('/') && path.ends_with(".py")
}

/// The scripts candidates added at the top of the repository, as probes: each distinct source
/// once (named after its first author), at most `limit` of them, none larger than 64 KiB.
/// `added` holds, per candidate, the top-level files it added and their contents.
pub fn candidate_scripts(added: &[(String, Vec<(String, String)>)], limit: usize) -> Vec<Probe> {
    let mut probes: Vec<Probe> = Vec::new();
    for (author, files) in added {
        for (path, source) in files {
            let seen = probes.iter_mut().find_map(|p| match &mut p.kind {
                ProbeKind::CandidateScript { source: s, authors, .. } if s == source => Some(authors),
                _ => None,
            });
            if let Some(authors) = seen {
                authors.push(author.clone());
                continue;
            }
            let runnable = is_script_path(path) && source.len() <= 64 << 10;
            if !runnable || probes.len() >= limit {
                continue;
            }
            probes.push(Probe {
                name: format!("{author}'s {path}"),
                kind: ProbeKind::CandidateScript {
                    path: path.clone(),
                    source: source.clone(),
                    authors: vec![author.clone()],
                },
                shown: vec![None],
            });
        }
    }
    probes
}

/// Imports the project's packages as a REPL user would have, silently: an import that fails
/// shows later, as the names it should have defined go missing.
fn preamble(packages: &[String], imports: &[(String, Vec<String>)]) -> String {
    let mut out: String = packages
        .iter()
        .map(|p| format!("try:\n    import {p}\n    from {p} import *\nexcept Exception:\n    pass\n"))
        .collect();
    if !imports.is_empty() {
        // A name still undefined comes from the first of its modules that imports cleanly, as
        // it did for whoever wrote the example with that import above it.
        let list: Vec<String> = imports
            .iter()
            .map(|(name, modules)| {
                let modules: Vec<String> = modules.iter().map(|m| py_str(m)).collect();
                format!("({}, [{}])", py_str(name), modules.join(", "))
            })
            .collect();
        out.push_str(&format!(
            "import builtins as _baton_builtins\nfor _baton_name, _baton_modules in [{}]:\n    for _baton_module in _baton_modules:\n        if _baton_name in globals() or hasattr(_baton_builtins, _baton_name):\n            break\n        try:\n            exec('from %s import %s' % (_baton_module, _baton_name))\n        except Exception:\n            pass\n",
            list.join(", ")
        ));
    }
    out
}

/// The names the task's Python examples use without defining them first, in order: the ones
/// they call (`Name(...)`) or reach into (`Name.attr`), then the others they read (`x` in
/// `f(x)`, a symbol the issue's author created earlier in their session). The preamble imports
/// a name only while it is still missing, so a name the example binds itself costs nothing.
pub fn used_names(probes: &[Probe]) -> Vec<String> {
    let ident = Regex::new(r"[A-Za-z_]\w*").expect("valid regex");
    let strings =
        Regex::new(r#"(?s)[rRbBuUfF]{0,2}('''.*?'''|""".*?"""|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"#)
            .expect("valid regex");
    let (mut called, mut read): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for probe in probes {
        let sources: Vec<&str> = match &probe.kind {
            ProbeKind::Script { source } => vec![source],
            ProbeKind::Session { statements } => statements.iter().map(String::as_str).collect(),
            // A candidate's script imports what it uses, as its author ran it.
            ProbeKind::Command { .. } | ProbeKind::CandidateScript { .. } => continue,
        };
        for source in sources {
            // Words inside string literals are no names.
            let source = strings.replace_all(source, |c: &regex::Captures| " ".repeat(c[0].len()));
            let source = source.as_ref();
            for m in ident.find_iter(source) {
                let before = source[..m.start()].chars().next_back();
                if before.is_some_and(|c| c == '.' || c.is_alphanumeric() || c == '_') {
                    continue; // an attribute, or the tail of a number like `1e5`
                }
                let name = m.as_str();
                if NEVER_IMPORTED.contains(&name) {
                    continue;
                }
                let rest = source[m.end()..].trim_start_matches([' ', '\t']);
                let after = rest.chars().next();
                let into = if after == Some('(')
                    || (after == Some('.') && name.starts_with(|c: char| c.is_ascii_uppercase()))
                {
                    &mut called
                } else if after == Some('=') && !rest.starts_with("==") {
                    continue; // bound here, or a keyword argument's name
                } else {
                    &mut read
                };
                if !into.iter().any(|n| n == name) {
                    into.push(name.to_owned());
                }
            }
        }
    }
    read.retain(|n| !called.contains(n));
    called.extend(read);
    called
}

/// Python's keywords and `print`: never the project's names.
const NEVER_IMPORTED: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
    "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
    "lambda", "nonlocal", "not", "or", "pass", "print", "raise", "return", "try", "while", "with", "yield",
];

/// A `git grep -E` pattern for the lines where a module defines one of `names` at its top: a
/// `class` or `def`, or an assignment to it (alone or among others, `x, y = symbols('x y')`).
pub fn definition_pattern(names: &[String]) -> String {
    let names = names.join("|");
    format!(
        r"^(class|def)[[:space:]]+({names})\b|^([A-Za-z_][A-Za-z0-9_]*[[:space:]]*,[[:space:]]*)*({names})[[:space:]]*(,[^=]*)?=([^=]|$)"
    )
}

/// Where the project defines each name, from `(path, line)` matches of [`definition_pattern`]
/// (a top-level `class NAME`, `def NAME` or assignment to `NAME`): per name, up to three modules of the project's `packages`, shallowest first.
/// Test and example code is left out; names no module defines are dropped.
pub fn definition_modules(
    names: &[String],
    definitions: &[(String, String)],
    packages: &[String],
) -> Vec<(String, Vec<String>)> {
    let def = Regex::new(r"^(?:class|def)\s+([A-Za-z_]\w*)").expect("valid regex");
    let assign =
        Regex::new(r"^([A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*)\s*,?\s*=(?:[^=]|$)").expect("valid regex");
    let defines = |line: &str, name: &str| {
        def.captures(line).is_some_and(|c| &c[1] == name)
            || assign.captures(line).is_some_and(|c| c[1].split(',').any(|n| n.trim() == name))
    };
    let mut out = Vec::new();
    for name in names {
        let mut modules: Vec<String> = definitions
            .iter()
            .filter(|(_, line)| defines(line, name))
            .filter_map(|(path, _)| module_of(path, packages))
            .collect();
        modules.sort_by_key(|m| (m.matches('.').count(), m.clone()));
        modules.dedup();
        modules.truncate(3);
        if !modules.is_empty() {
            out.push((name.clone(), modules));
        }
    }
    out
}

/// `pkg/sub/mod.py` (or under `src/`) as `pkg.sub.mod`, when `pkg` is one of the project's
/// packages and no part of the path is test code.
fn module_of(path: &str, packages: &[String]) -> Option<String> {
    let path = path.strip_prefix("src/").unwrap_or(path).strip_suffix(".py")?;
    let path = path.strip_suffix("/__init__").unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    let test_code = |p: &&str| {
        matches!(*p, "tests" | "test" | "testing" | "conftest")
            || p.starts_with("test_")
            || p.ends_with("_test")
    };
    if !packages.iter().any(|p| p == parts[0])
        || parts.iter().any(test_code)
        || !parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        return None;
    }
    Some(parts.join("."))
}

/// The top-level Python packages of a tree (a directory at the root, or under `src/`, with an
/// `__init__.py`), tests, documentation and examples aside.
pub fn python_packages(tree: &[String]) -> Vec<String> {
    const NOT_THE_PROJECT: &[&str] = &[
        "tests",
        "test",
        "testing",
        "docs",
        "doc",
        "examples",
        "example",
        "scripts",
        "tools",
        "bench",
        "benchmarks",
    ];
    let mut out: Vec<String> = tree
        .iter()
        .filter_map(|p| p.strip_suffix("/__init__.py"))
        .map(|d| d.strip_prefix("src/").unwrap_or(d))
        .filter(|d| !d.contains('/'))
        .filter(|d| {
            d.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !d.starts_with(|c: char| c.is_ascii_digit())
        })
        .filter(|d| !NOT_THE_PROJECT.contains(d))
        .map(str::to_owned)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A Python string literal for `s`, in ASCII.
fn py_str(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (' '..='~').contains(&c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('\'');
    out
}

fn split_statements(text: &str, n: usize, workspace: &Path) -> Vec<String> {
    let mut parts = vec![String::new(); n];
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(MARK) {
            current = rest.trim().parse().ok().filter(|&i| i < n);
            continue;
        }
        if let Some(i) = current {
            parts[i].push_str(line);
            parts[i].push('\n');
        }
    }
    parts.iter().map(|p| normalize(p, Some(workspace))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a driver with `python3` (which CI installs) from `dir`, as probes run from the
    /// workspace's root.
    pub(super) fn run_driver(dir: &Path, driver: &str) -> std::process::Output {
        std::fs::write(dir.join("driver.py"), driver).unwrap();
        std::process::Command::new("python3")
            .arg("driver.py")
            .current_dir(dir)
            .output()
            .expect("python3 runs (CI installs it)")
    }

    #[test]
    fn the_script_driver_shows_expression_values_and_stops_at_an_exception() {
        let driver = script_driver(
            "x = 3\nx * 2\nprint('hi')\nfor i in range(2):\n    i\n[][1]\nprint('never')\n",
            "",
        );
        let dir = tempfile::tempdir().unwrap();
        let out = run_driver(dir.path(), &driver);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "6\nhi\nIndexError: list index out of range\n",
            "{driver}"
        );
        assert_eq!(out.status.code(), Some(1));
    }

    #[test]
    fn a_candidates_script_runs_as_its_author_ran_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/__init__.py"), "def f(x):\n    return [x][x]\n").unwrap();
        // `from __future__` must stay first, `__name__` is `__main__`, `__file__` is where the
        // script stands in the workspace, and the project imports from the workspace.
        let source = "from __future__ import annotations\nimport os\nfrom pkg import f\nif __name__ == '__main__':\n    print(os.path.basename(__file__), f(0))\n    f(1)\n";
        let out = run_driver(dir.path(), &candidate_script_driver("reproduce.py", source));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "reproduce.py 0\n");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            normalize(&err, Some(dir.path())).lines().last(),
            Some("IndexError: list index out of range")
        );
        assert_eq!(out.status.code(), Some(1));
    }

    #[test]
    fn candidates_scripts_are_top_level_python_files_each_source_once_within_the_limit() {
        let files = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect()
        };
        let added = vec![
            (
                "c1".to_string(),
                files(&[("reproduce.py", "print(1)"), ("pkg/new_module.py", "x = 1"), ("notes.md", "")]),
            ),
            ("c2".to_string(), files(&[("replicate.py", "print(1)"), ("check.py", "print(2)")])),
            ("c3".to_string(), files(&[("big.py", &"#".repeat(65 << 10)), ("other.py", "print(3)")])),
        ];
        let names =
            |limit| -> Vec<String> { candidate_scripts(&added, limit).into_iter().map(|p| p.name).collect() };
        assert_eq!(names(8), ["c1's reproduce.py", "c2's check.py", "c3's other.py"]);
        assert_eq!(names(2), ["c1's reproduce.py", "c2's check.py"]);
        assert!(names(0).is_empty());
    }

    #[test]
    fn fenced_scripts_with_shown_output_and_sessions_are_found() {
        let task = "Title\n\nFor example:\n\n```python\nimport math\nprint(math.floor(2.5))\n```\nprints\n```\n3\n```\n\nand in the REPL:\n\n    >>> x = 2\n    >>> x +\\\n    ... 1\n    4\n    >>> f(\n    ... 1)\n    Traceback (most recent call last):\n      File \"<stdin>\", line 1\n    ValueError: bad\n\nThe shell:\n\n```\n$ python -c 'print(1)'\n```\n";
        let probes = extract_probes(task);
        assert_eq!(probes.len(), 2, "{probes:#?}");
        assert_eq!(
            probes[0].kind,
            ProbeKind::Script { source: "import math\nprint(math.floor(2.5))".into() }
        );
        assert_eq!(probes[0].shown, [Some("3".into())]);
        assert_eq!(
            probes[1].kind,
            ProbeKind::Session { statements: vec!["x = 2".into(), "x +\\\n1".into(), "f(\n1)".into()] }
        );
        assert_eq!(probes[1].shown, [None, Some("4".into()), Some("ValueError: bad".into())]);
    }

    #[test]
    fn ipython_sessions_are_sessions_without_their_magics() {
        let task = "Wrong result:\n\n```\nIn [1]: from m import f\n\nIn [2]: x = f(\n   ...:     2)\n\nIn [3]: x\nOut[3]: 4\n\nIn [4]: %timeit f(2)\n1000 loops\n\nIn [5]: f?\n\nIn [6]: print(x); f(0)\n4\n---------------------------------------------------------------------------\nZeroDivisionError                         Traceback (most recent call last)\n<ipython-input-6-1> in <module>\n----> 1 f(0)\nZeroDivisionError: division by zero\n\nIn [7]: [x,\n   ...:  x]\nOut[7]:\n[4,\n 4]\n```\n\nand outside a fence:\n\n    In [1]: f(3)\n    Out[1]: 9\n";
        let probes = extract_probes(task);
        assert_eq!(probes.len(), 2, "{probes:#?}");
        assert_eq!(probes[0].name, "example 1 (IPython session)");
        assert_eq!(
            probes[0].kind,
            ProbeKind::Session {
                statements: vec![
                    "from m import f".into(),
                    "x = f(\n    2)".into(),
                    "x".into(),
                    "print(x); f(0)".into(),
                    "[x,\n x]".into(),
                ]
            }
        );
        assert_eq!(
            probes[0].shown,
            [
                None,
                None,
                Some("4".into()),
                Some("4\nZeroDivisionError: division by zero".into()),
                Some("[4,\n 4]".into())
            ]
        );
        assert_eq!(probes[1].kind, ProbeKind::Session { statements: vec!["f(3)".into()] });
        assert_eq!(probes[1].shown, [Some("9".into())]);
    }

    #[test]
    fn an_example_the_text_repeats_is_one_probe() {
        let block = "```\n>>> f(1)\n2\n```\n";
        let task = format!("Bug\n{block}\nAgain:\n{block}\nAnd a script:\n```python\nprint(f(1))\n```\n");
        let probes = extract_probes(&task);
        let names: Vec<&str> = probes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["example 1 (>>> session)", "example 2 (script)"]);
    }

    #[test]
    fn string_values_the_task_quotes_are_found_with_the_forms_a_program_prints() {
        let task = "`latex(acsc(x))` gives `'\\\\operatorname{acsc}{x}'` instead of \
                    `'\\\\operatorname{arccsc}{x}'`; `f(\"a\", \"b\")` and `'ab'` and `x = 'abc'`\n\
                    ```\n>>> g()\n\"it's\"\nr'\\d+'\n```\n`'one' + 'two'` `'it\\'s'`\n";
        let values = task_values(task);
        assert_eq!(
            values,
            [
                vec!["\\operatorname{acsc}{x}".to_owned(), "'\\\\operatorname{acsc}{x}'".to_owned()],
                vec!["\\operatorname{arccsc}{x}".to_owned(), "'\\\\operatorname{arccsc}{x}'".to_owned()],
                vec!["it's".to_owned(), "\"it's\"".to_owned()],
                vec!["\\d+".to_owned(), "r'\\d+'".to_owned()],
                vec!["it's".to_owned(), "'it\\'s'".to_owned()],
            ],
            "calls, assignments, two literals and values under three characters are no values"
        );
    }

    #[test]
    fn calls_quoted_inline_in_the_prose_become_one_session() {
        let task = "`Permutation` fails\n\nCalling `Permutation([[0,1],[0,1]])` raises a `ValueError`; so does \
                    `Permutation([[0,1],[0,1]])` again and `x.f(1).args[0]`.\n\
                    Not these: `f(` cut off, `x = f(1)`, `a) (b`, `make_hashable`.\n\
                    ```python\nprint(`g(1)`)\n```\n";
        let probes = extract_probes(task);
        let inline = probes.iter().find(|p| p.name.contains("inline")).expect("an inline probe");
        assert_eq!(
            inline.kind,
            ProbeKind::Session {
                statements: vec!["Permutation([[0,1],[0,1]])".into(), "x.f(1).args[0]".into()]
            }
        );
        assert_eq!(inline.shown, [None, None]);
    }

    #[test]
    fn tracebacks_output_and_shell_blocks_are_not_scripts() {
        for body in [
            "Traceback (most recent call last):\n  File \"x\"",
            "[x3**3, x2**3]",
            "pip install sympy",
            "python2 -c 'print 1'",
        ] {
            let task = format!("```\n{body}\n```\n");
            assert!(extract_probes(&task).is_empty(), "{body}");
        }
        assert_eq!(extract_probes("```\nimport sympy as sp\nprint(sp.S(1))\n```\n").len(), 1);
    }

    #[test]
    fn where_the_recursion_limit_struck_does_not_matter() {
        assert_eq!(
            normalize(
                "RecursionError: maximum recursion depth exceeded while calling a Python object\n",
                None
            ),
            normalize("RecursionError: maximum recursion depth exceeded in comparison\n", None),
        );
    }

    #[test]
    fn normalize_masks_paths_addresses_and_traceback_frames() {
        let ws = Path::new("/tmp/ws/c1/tree");
        let out = "<obj at 0x7f3a2b1c9d80>\nTraceback (most recent call last):\n  File \"/tmp/ws/c1/tree/a.py\", line 3, in <module>\n    f()\nKeyError: 'x'   \n\n";
        assert_eq!(normalize(out, Some(ws)), "<obj at 0x?>\nKeyError: 'x'");
    }

    #[test]
    fn the_session_driver_is_valid_python_that_keeps_statements_apart() {
        let driver = session_driver(
            &[
                "a = [1, 2]".into(),
                "a[5]".into(),
                "print('it''s', \"q\")".into(),
                "len(a)".into(),
                "sqrt(16)".into(),
            ],
            &preamble(&["math".into()], &[]),
        );
        let dir = tempfile::tempdir().unwrap();
        let out = run_driver(dir.path(), &driver);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            split_statements(&text, 5, dir.path()),
            ["", "IndexError: list index out of range", "its q", "2", "4.0"],
            "{driver}"
        );
    }
}

#[cfg(test)]
mod import_tests {
    use super::*;

    #[test]
    fn names_the_examples_use_are_found_where_the_project_defines_them() {
        let probes = extract_probes(
            "```python\nfrom pkg import top\nx = Thing(top())\nprint(Other.make(1), len(x))\nif not (x): pass\n\
             show(y, style='full words', z == 1)\n```\n",
        );
        assert_eq!(
            used_names(&probes),
            ["Thing", "top", "Other", "len", "show", "pkg", "x", "y", "z"],
            "called names first; no keywords, no words in strings, no keyword arguments' names"
        );
        let definitions = [
            ("pkg/abc.py".to_owned(), "x, y, zeta = symbols('x y zeta')".to_owned()),
            ("pkg/deeper/sym.py".to_owned(), "y = 1".to_owned()),
            ("pkg/cmp.py".to_owned(), "y == 2".to_owned()),
            ("pkg/deep/mod.py".to_owned(), "class Thing(Base):".to_owned()),
            ("pkg/a.py".to_owned(), "class Thing:".to_owned()),
            ("pkg/tests/test_a.py".to_owned(), "class Thing:".to_owned()),
            ("examples/thing.py".to_owned(), "class Thing:".to_owned()),
            ("src/pkg/b.py".to_owned(), "def Other():".to_owned()),
            ("pkg/c.py".to_owned(), "def Others():".to_owned()),
        ];
        let packages = vec!["pkg".to_owned()];
        let names: Vec<String> = ["Thing", "top", "Other", "y", "z"].map(String::from).to_vec();
        assert_eq!(
            definition_modules(&names, &definitions, &packages),
            [
                ("Thing".to_owned(), vec!["pkg.a".to_owned(), "pkg.deep.mod".to_owned()]),
                ("Other".to_owned(), vec!["pkg.b".to_owned()]),
                ("y".to_owned(), vec!["pkg.abc".to_owned(), "pkg.deeper.sym".to_owned()]),
            ]
        );
        // The pattern git greps with finds the same lines, and not comparisons or deeper code.
        let pattern = Regex::new(&definition_pattern(&names).replace("[[:space:]]", r"\s")).unwrap();
        for (_, line) in &definitions[..3] {
            assert_eq!(pattern.is_match(line), !line.contains("=="), "{line}");
        }
        assert!(!pattern.is_match("    y = 2"));
    }

    #[test]
    fn the_preamble_imports_only_names_still_missing_from_the_first_module_that_works() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        write("pkg/__init__.py", "def top():\n    return 'top'\n");
        write("pkg/broken.py", "raise ImportError('no')\nclass Thing: pass\n");
        write("pkg/deep/__init__.py", "");
        write(
            "pkg/deep/mod.py",
            "class Thing:\n    def __repr__(self):\n        return 'Thing!'\ndef top():\n    return 'deep'\ndef len(x):\n    return 'shadowed'\n",
        );
        let imports: Vec<(String, Vec<String>)> = [
            ("Thing", vec!["pkg.broken", "pkg.deep.mod"]),
            ("top", vec!["pkg.deep.mod"]),
            ("len", vec!["pkg.deep.mod"]),
        ]
        .into_iter()
        .map(|(n, m)| (n.to_owned(), m.into_iter().map(String::from).collect()))
        .collect();
        let driver = session_driver(
            &["Thing()".into(), "top()".into(), "len([1])".into()],
            &preamble(&["pkg".into()], &imports),
        );
        let out = tests::run_driver(dir.path(), &driver);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(split_statements(&text, 3, dir.path()), ["Thing!", "'top'", "1"], "{driver}\n{text}");
    }
}

#[cfg(test)]
mod package_tests {
    use super::python_packages;

    #[test]
    fn the_projects_packages_are_found_at_the_root_and_under_src() {
        let tree: Vec<String> = [
            "sympy/__init__.py",
            "sympy/core/__init__.py",
            "src/_pytest/__init__.py",
            "tests/__init__.py",
            "docs/conf.py",
            "setup.py",
            "my-tool/__init__.py",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(python_packages(&tree), ["_pytest", "sympy"]);
    }
}
