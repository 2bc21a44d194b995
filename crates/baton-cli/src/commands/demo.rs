//! `baton demo`: the whole pipeline on a built-in sample, with no keys and no network.
//!
//! The sample is a small Python package with an off-by-one bug in `paginate()` (it drops the
//! last, shorter page) and unittest tests, two of which fail on it. Six scripted candidates of
//! different quality compete: the scripts stand in for real agents (which need a model), and
//! everything else (workspaces, supervision, collection, verification, ranking) is the real
//! thing. The sample stays on disk afterwards for `baton show`, `baton diff` and `baton merge`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_agents::{Agent, CommandAgent, PatchAgent};
use baton_core::{ExitCode, Task};
use baton_engine::RunRequest;
use baton_git::{Git, Repo};

use crate::cli::{DemoArgs, Global};
use crate::error::CliError;
use crate::report;

const PAGER: &str = r#""""Split sequences into pages."""


def paginate(items, page_size):
    """Return the items in pages of page_size; the last page may be shorter."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    pages = []
    for start in range(0, len(items) - page_size + 1, page_size):
        pages.append(list(items[start:start + page_size]))
    return pages


def page_count(n_items, page_size):
    """How many pages paginate() makes for n_items."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    return -(-n_items // page_size)
"#;

const TESTS: &str = r#"import unittest

from pager import page_count, paginate


class PaginateTests(unittest.TestCase):
    def test_exact_pages(self):
        self.assertEqual(paginate([1, 2, 3, 4], 2), [[1, 2], [3, 4]])

    def test_last_page_may_be_short(self):
        self.assertEqual(paginate([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]])

    def test_empty(self):
        self.assertEqual(paginate([], 3), [])

    def test_rejects_zero_page_size(self):
        with self.assertRaises(ValueError):
            paginate([1], 0)

    def test_page_count_matches(self):
        for n in range(12):
            self.assertEqual(len(paginate(list(range(n)), 4)), page_count(n, 4))


if __name__ == "__main__":
    unittest.main()
"#;

const README: &str = "# pager\n\nSplits sequences into pages. Run the tests with `python3 -m unittest -v`.\n";

const BATON_TOML: &str = r#"# The sample's baton configuration: one test stage, read test by test.
[run]
jobs = 6

[[verify.stage]]
name = "test"
kind = "test"
run = "python3 -m unittest discover -s tests -t . -v"
parser = "unittest"
timeout = "2m"
"#;

const TASK: &str = "Fix paginate(): it drops the last page\n\n\
The last, shorter page is missing:\n\n\
```python\nfrom pager import paginate\nprint(paginate([1, 2, 3, 4, 5], 2))\n```\n\
prints\n\n```\n[[1, 2], [3, 4]]\n```\n\n\
The docstring says the last page may be shorter, and `page_count()` already counts it.\n";

/// The correct, minimal fix: one line, as a recorded diff.
const MINIMAL_FIX: &str = r#"diff --git a/pager.py b/pager.py
--- a/pager.py
+++ b/pager.py
@@ -6,6 +6,6 @@ def paginate(items, page_size):
     if page_size < 1:
         raise ValueError("page_size must be at least 1")
     pages = []
-    for start in range(0, len(items) - page_size + 1, page_size):
+    for start in range(0, len(items), page_size):
         pages.append(list(items[start:start + page_size]))
     return pages
"#;

/// Correct, but rewrites far more than it needs to.
const SPRAWLING_FIX: &str = r##"#!/bin/sh
# Rewrites the whole module: correct, but much larger than the fix needs.
cat > pager.py <<'PY'
"""Split sequences into pages.

Both functions validate page_size the same way, through _check_page_size().
"""

__all__ = ["paginate", "page_count"]


def _check_page_size(page_size):
    """Raise ValueError unless page_size is a positive number."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")


def paginate(items, page_size):
    """Return the items in pages of page_size; the last page may be shorter."""
    _check_page_size(page_size)
    items = list(items)
    pages = []
    position = 0
    while position < len(items):
        page = items[position:position + page_size]
        pages.append(page)
        position = position + len(page)
    return pages


def page_count(n_items, page_size):
    """How many pages paginate() makes for n_items."""
    _check_page_size(page_size)
    full, rest = divmod(n_items, page_size)
    return full + (1 if rest else 0)
PY
echo "rewrote pager.py"
"##;

/// Fixes the reported case but breaks two that worked.
const BREAKS_OTHER: &str = r##"#!/bin/sh
# Widens the range by one: the short last page appears, but so does an empty page.
sed -i 's/range(0, len(items) - page_size + 1, page_size)/range(0, len(items) + 1, page_size)/' pager.py
echo "patched the range"
"##;

/// Makes the failing test pass by changing what it expects.
const EDITS_TESTS: &str = r##"#!/bin/sh
# Edits the test to expect the buggy output and drops the test that disagrees.
sed -i 's/\[\[1, 2\], \[3, 4\], \[5\]\]/[[1, 2], [3, 4]]/' tests/test_pager.py
sed -i '/def test_page_count_matches/,/page_count(n, 4))/d' tests/test_pager.py
sed -i 's/the last page may be shorter/a last, shorter page is dropped/' pager.py
echo "tests pass now"
"##;

/// Starts, then never finishes.
const HANGS: &str = r##"#!/bin/sh
# Leaves a note, then thinks forever: baton stops it at its time limit and keeps the note.
echo "# TODO: handle the last page" >> pager.py
echo "thinking..."
sleep 600
"##;

/// Crashes halfway.
const CRASHES: &str = r##"#!/bin/sh
# Starts an edit, then dies of a segmentation fault.
sed -i 's/pages = \[\]/pages = []  # rewriting/' pager.py
echo "about to crash"
kill -SEGV $$
"##;

pub(crate) fn run(global: &Global, args: DemoArgs) -> Result<ExitCode, CliError> {
    if baton_agents::resolve_program("python3", Path::new("/")).is_none() {
        return Err(CliError::failure(
            "baton demo runs a small Python project's tests and needs python3 on PATH; install Python 3 and try again",
        ));
    }
    let dir = demo_dir(args.dir.as_deref())?;
    let sample = dir.join("sample");
    let agents_dir = dir.join("agents");
    build_sample(&sample)
        .map_err(|e| CliError::failure(format!("cannot build the sample in {}: {e}", sample.display())))?;
    let agents = write_agents(&agents_dir).map_err(|e| {
        CliError::failure(format!("cannot write the sample agents in {}: {e}", agents_dir.display()))
    })?;
    if !global.quiet {
        eprintln!("baton demo: a sample project with a bug, and six scripted candidates to fix it");
        eprintln!("  sample: {}", sample.display());
        eprintln!(
            "  agents: {} (shell scripts and a recorded diff standing in for real agents)",
            agents_dir.display()
        );
        eprintln!();
    }

    let repo = Repo::discover(&sample)?;
    let mut config = crate::context::config(global, Some(&repo.root))?;
    config.run.workspace_root = dir.join("workspaces");
    config.run.jobs = 6;
    // Everything worth looking at afterwards is on the candidates' refs; overlay workspaces
    // would stay mounted and get in the way of deleting the demo directory.
    config.run.keep_workspaces = false;
    let mut request = RunRequest::new(repo.clone(), config, Task::from_text(TASK, "baton demo"), agents);
    request.strategies = vec!["default".into()];
    request.repeats = 1;
    let plan = baton_engine::plan(request)?;
    let outcome = super::run::execute(&repo, plan, report::reporter(args.json, global.quiet))?;
    let code = super::run::finish(&repo, &outcome, args.json)?;
    if !global.quiet && !args.json {
        println!();
        println!("The sample stays in {} for you to look at:", sample.display());
        println!("  cd {}", sample.display());
        println!("  baton show            # this scoreboard again");
        println!("  baton diff c1         # the winner's change");
        println!("  baton merge           # land it on main");
    }
    Ok(code)
}

fn demo_dir(wanted: Option<&Path>) -> Result<PathBuf, CliError> {
    match wanted {
        Some(d) => {
            if d.exists() && std::fs::read_dir(d).map(|mut e| e.next().is_some()).unwrap_or(true) {
                return Err(CliError::usage(format!("--dir {}: the directory is not empty", d.display())));
            }
            std::fs::create_dir_all(d)
                .map_err(|e| CliError::failure(format!("cannot create {}: {e}", d.display())))?;
            d.canonicalize().map_err(|e| CliError::failure(format!("{}: {e}", d.display())))
        }
        None => tempfile::Builder::new()
            .prefix("baton-demo-")
            .tempdir()
            .map(|t| t.keep())
            .map_err(|e| CliError::failure(format!("cannot create a temporary directory: {e}"))),
    }
}

fn build_sample(sample: &Path) -> Result<(), String> {
    let files = [
        ("pager.py", PAGER),
        ("tests/__init__.py", ""),
        ("tests/test_pager.py", TESTS),
        ("README.md", README),
        ("baton.toml", BATON_TOML),
        (".gitignore", "__pycache__/\n"),
    ];
    for (path, text) in files {
        let p = sample.join(path);
        std::fs::create_dir_all(p.parent().expect("sample files have a parent"))
            .map_err(|e| e.to_string())?;
        std::fs::write(&p, text).map_err(|e| e.to_string())?;
    }
    let git = Git::at(sample);
    let identity = ["-c", "user.name=baton demo", "-c", "user.email=demo@baton.invalid"];
    git.run(&["init", "--quiet", "--initial-branch=main"]).map_err(|e| e.to_string())?;
    git.run(&["add", "--all"]).map_err(|e| e.to_string())?;
    let mut commit = identity.to_vec();
    commit.extend(["commit", "--quiet", "-m", "pager: split sequences into pages"]);
    git.run(&commit).map_err(|e| e.to_string())?;
    Ok(())
}

fn write_agents(dir: &Path) -> Result<Vec<Arc<dyn Agent>>, String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let patch = dir.join("minimal-fix.diff");
    std::fs::write(&patch, MINIMAL_FIX).map_err(|e| e.to_string())?;
    let mut agents: Vec<Arc<dyn Agent>> = vec![Arc::new(PatchAgent::new(patch))];
    let scripts = [
        ("sprawling-fix", SPRAWLING_FIX, None),
        ("breaks-other-tests", BREAKS_OTHER, None),
        ("edits-the-tests", EDITS_TESTS, None),
        ("hangs", HANGS, Some(Duration::from_secs(3))),
        ("crashes", CRASHES, None),
    ];
    for (name, body, timeout) in scripts {
        let path = dir.join(format!("{name}.sh"));
        std::fs::write(&path, body).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let argv = vec![path.to_string_lossy().into_owned()];
        agents.push(Arc::new(CommandAgent::new(name, argv, Default::default(), timeout, dir)));
    }
    Ok(agents)
}
