use baton_core::ExitCode;

use crate::cli::{Global, InitArgs};
use crate::context;
use crate::error::CliError;

pub(crate) fn run(global: &Global, args: InitArgs) -> Result<ExitCode, CliError> {
    let repo = context::repo(global)?;
    let path = repo.root.join(baton_config::REPO_FILE);
    if path.exists() && !args.force {
        return Err(CliError::new(
            ExitCode::Refused,
            format!("{} already exists; pass --force to overwrite it", path.display()),
        ));
    }
    let text = template(|name| std::fs::read_to_string(repo.root.join(name)).ok());
    std::fs::write(&path, &text)
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    if !global.quiet {
        eprintln!("wrote {}", path.display());
    }
    // The stages just written, run once: a setup that cannot tell candidates apart is better
    // found now than after a run.
    if !args.check.no_check && repo.head().is_ok() {
        let config = context::config(global, Some(&repo.root))?;
        if config.verify.stages.is_empty() {
            eprintln!("no test command recognized: add a [[verify.stage]] that runs your tests");
        } else {
            let check = super::check::run(&repo, &config, args.check.check_timeout)?;
            eprint!("{}", super::check::text(&check, args.check.check_timeout));
            if !check.problems.is_empty() {
                eprintln!(
                    "warning: as written, a run's verification would be no evidence: fix the stages above"
                );
            }
        }
    }
    if !global.quiet {
        eprintln!(
            "next: check its [[verify.stage]] entries, then `baton run \"your task\" --agent command:YOUR-AGENT`"
        );
    }
    Ok(ExitCode::Success)
}

/// The commented `baton.toml` for a repository whose root files `read` can see.
pub(crate) fn template(read: impl Fn(&str) -> Option<String>) -> String {
    let detected = baton_config::detect_stages(read);
    let mut out = String::from(
        r#"# baton.toml: how baton runs and judges agents in this repository.
# Every key has a built-in default; this file sets only what differs. The full reference with
# every key is in baton's README ("Configuration").

[run]
# jobs = 0                  # agents or verifications at once; 0 means one per CPU core
# repeats = 1               # candidates per agent and strategy (baton run -n)
# agents = ["fixer"]        # agents used when `baton run` gets no --agent
# strategies = ["default"]  # strategies used when `baton run` gets no --strategy
# agent_timeout = "30m"     # stop an agent after this long
# silence_timeout = "10m"   # stop an agent that prints nothing for this long
# workspace = "auto"        # "overlay" where it can mount one, else "clone"; or "worktree"
# keep_workspaces = true    # keep workspaces after a run; `baton clean` removes them

# [merge]
# target = "main"           # default: the branch checked out when the run started

# An agent is any program: it gets the prompt on stdin and in $BATON_PROMPT_FILE and edits the
# files in its working directory. Use it with `baton run --agent fixer`.
#
# [[agent]]
# name = "fixer"
# kind = "command"
# command = "./scripts/my-agent.sh --fast"
# timeout = "20m"

# Strategies add instructions to the prompt: built in are minimal, test-first, refactor and
# performance. Add your own:
#
# [strategy.careful]
# prompt = "Explain every change in a comment."

# Files taken from the base commit when verifying a candidate, whatever the candidate did to
# them (the defaults cover test directories and files, CI configuration and this file):
#
# [verify]
# protected = ["tests/**", "**/test_*.py", ".github/**", "baton.toml"]

# Verification stages run on the base commit and on every candidate, through `sh`, in order.
# kind: setup | build | test | lint | custom. parser: exit-code | junit | libtest | pytest |
# unittest | tap | go-json | regex. Placeholders: {changed_files} {related_tests}. A test
# stage's `rerun` runs its failing tests again ({failing_tests}) to tell flaky ones apart.
"#,
    );
    if detected.is_empty() {
        out.push_str(
            r#"# No build or test command was recognized here; fill one in:
#
# [[verify.stage]]
# name = "test"
# kind = "test"
# run = "make test"
# parser = "exit-code"
# timeout = "15m"
"#,
        );
    }
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    for d in detected {
        let s = d.stage;
        let parser = s.parser.as_str();
        out.push_str(&format!(
            "\n# Found {}.\n[[verify.stage]]\nname = \"{}\"\nkind = \"{}\"\nrun = {}\n",
            d.evidence,
            s.name,
            s.kind.as_str(),
            quote(&s.run)
        ));
        if let Some(rerun) = &s.rerun {
            out.push_str(&format!(
                "rerun = {}    # the failing tests alone, to tell flaky ones apart\n",
                quote(rerun)
            ));
        }
        out.push_str(&format!("parser = \"{parser}\"\ntimeout = \"15m\"\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15, item 20: the template showed `workspace = "clone"` as if it were the default
    /// (it is "auto"). Every value it shows commented out under [run] is the real default,
    /// except `agents`, which shows an example.
    #[test]
    fn the_template_shows_the_real_defaults() {
        let text = template(|_| None);
        let defaults: toml::Table = baton_config::DEFAULTS.parse().unwrap();
        let run = text.split("[run]\n").nth(1).unwrap().split("\n\n").next().unwrap();
        let mut checked = 0;
        for line in run.lines() {
            let setting = line.trim_start_matches("# ").split("  #").next().unwrap().trim();
            let (key, _) = setting.split_once(" = ").unwrap_or_else(|| panic!("not a setting: {line}"));
            if key == "agents" {
                continue;
            }
            let shown: toml::Table = setting.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(shown[key], defaults["run"][key], "{line}");
            checked += 1;
        }
        assert!(checked >= 7, "{run}");
    }

    #[test]
    fn every_template_is_a_valid_config() {
        for files in [&[("Cargo.toml", "")][..], &[("setup.py", "")], &[("README", "")]] {
            let text = template(|p| files.iter().find(|(f, _)| *f == p).map(|(_, c)| c.to_string()));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("baton.toml");
            std::fs::write(&path, &text).unwrap();
            let sources = baton_config::ConfigSources { repo_file: Some(path), ..Default::default() };
            let (config, _) = baton_config::load(&sources).unwrap_or_else(|e| panic!("{e}\n{text}"));
            let expected = if files[0].0 == "README" {
                0
            } else {
                baton_config::detect_stages(|p| {
                    files.iter().find(|(f, _)| *f == p).map(|(_, c)| c.to_string())
                })
                .len()
            };
            assert_eq!(config.verify.stages.len(), expected);
        }
    }
}
