//! What most commands need first: the repository, the configuration, the store.

use std::path::{Path, PathBuf};

use baton_config::{Config, ConfigSources};
use baton_git::Repo;
use baton_store::Store;

use crate::cli::Global;
use crate::error::CliError;

/// The directory the command works in (`-C DIR` or the current one).
pub(crate) fn working_dir(global: &Global) -> Result<PathBuf, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failure(format!("cannot read the current directory: {e}")))?;
    Ok(match &global.dir {
        Some(d) if !d.is_dir() => {
            return Err(CliError::usage(format!("-C {}: no such directory", d.display())));
        }
        Some(d) => cwd.join(d),
        None => cwd,
    })
}

pub(crate) fn repo(global: &Global) -> Result<Repo, CliError> {
    Ok(Repo::discover(&working_dir(global)?)?)
}

/// The user's configuration file: `$XDG_CONFIG_HOME/baton/config.toml` or
/// `~/.config/baton/config.toml`.
pub(crate) fn user_config_file() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config"))
        })
        .map(|d| d.join("baton").join("config.toml"))
}

/// Loads every configuration layer for a repository rooted at `root`.
pub(crate) fn config(global: &Global, root: Option<&Path>) -> Result<Config, CliError> {
    Ok(resolve(global, root, Vec::new())?.config)
}

/// Every configuration layer, with `options`: command-line options that stand for a key
/// (`--jobs 2`: `("--jobs 2", "run.jobs", "2")`), laid last and checked like any other layer.
pub(crate) fn resolve(
    global: &Global,
    root: Option<&Path>,
    options: Vec<(String, String, String)>,
) -> Result<baton_config::Resolved, CliError> {
    let mut extra = global.config.clone();
    if let Some(f) = std::env::var_os("BATON_CONFIG").filter(|v| !v.is_empty()) {
        extra.insert(0, PathBuf::from(f));
    }
    let cwd = working_dir(global)?;
    let sources = ConfigSources {
        user_file: user_config_file(),
        repo_file: root.map(|r| r.join(baton_config::REPO_FILE)),
        extra_files: extra.into_iter().map(|f| cwd.join(f)).collect(),
        env: std::env::vars().filter(|(k, _)| k.starts_with("BATON_")).collect(),
        sets: global.set.clone(),
        options,
    };
    Ok(baton_config::resolve(&sources)?)
}

/// Where a repository's run store lives.
pub(crate) fn store_dir(repo: &Repo) -> PathBuf {
    repo.common_dir.join("baton")
}

/// The run store of a repository where one exists (`None`: no run ever started here), after
/// ending whatever a crashed baton left behind. Commands that only read runs use this, so that
/// asking about runs in a fresh repository creates nothing.
pub(crate) fn existing_store(repo: &Repo) -> Result<Option<Store>, CliError> {
    if !store_dir(repo).join(baton_store::DB_FILE).is_file() {
        return Ok(None);
    }
    store(repo).map(Some)
}

/// A run of the store by id or unique prefix (the latest when `None`), where there may be no
/// store at all.
pub(crate) fn find_run(
    store: Option<&Store>,
    prefix: Option<&str>,
) -> Result<baton_store::RunRow, baton_engine::EngineError> {
    match store {
        Some(store) => baton_engine::find_run(store, prefix),
        None => Err(no_run(prefix)),
    }
}

/// What asking for a run means where no run ever started.
pub(crate) fn no_run(prefix: Option<&str>) -> baton_engine::EngineError {
    match prefix {
        Some(p) => baton_engine::EngineError::UnknownRun(p.to_owned()),
        None => baton_engine::EngineError::NoRuns,
    }
}

/// The run store of a repository, created if needed, after ending whatever a crashed baton
/// left behind.
pub(crate) fn store(repo: &Repo) -> Result<Store, CliError> {
    let store = Store::open(&store_dir(repo))?;
    match baton_engine::recover_abandoned(repo, &store) {
        Ok(recovered) => {
            for r in recovered {
                let others = match r.killed_processes {
                    0 => String::new(),
                    n => format!(
                        " and {n} other {} it had started",
                        baton_core::plural(n, "process", "processes")
                    ),
                };
                eprintln!(
                    "baton: run {} was left running by a baton that stopped; ended {} process {}{others} and saved the work of {} {}",
                    r.run,
                    r.killed_groups,
                    baton_core::plural(r.killed_groups, "group", "groups"),
                    r.collected.len(),
                    baton_core::plural(r.collected.len(), "candidate", "candidates"),
                );
            }
        }
        Err(e) => eprintln!("baton: warning: could not check for abandoned runs: {e}"),
    }
    Ok(store)
}
