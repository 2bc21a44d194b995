//! Which sandbox confines a run's processes: `run.sandbox` against what this machine has.
//!
//! `auto` takes bubblewrap where it can start a sandbox; else Landlock where the kernel has it;
//! else nothing, and says so (the repository guard then checks after each agent). `bwrap` and
//! `landlock` each insist on their sandbox and refuse the run without it.
//!
//! The two are never layered. A process under Landlock cannot mount, so bubblewrap cannot
//! start beneath it; and Landlock around bubblewrap would add little to what bubblewrap already
//! enforces (its filesystem view, network and process namespaces), while a Landlock ruleset
//! made outside would have to allow whatever bubblewrap itself needs to set up.

use baton_config::SandboxMode;
use baton_exec::{Bwrap, Landlock, Unavailable};

/// The sandboxes this machine offers, each or why not.
#[derive(Debug, Clone)]
pub struct Sandboxes {
    pub bwrap: Result<Bwrap, Unavailable>,
    pub landlock: Result<Landlock, Unavailable>,
}

/// What confines a run under one mode.
#[derive(Debug, Clone)]
pub enum SandboxChoice {
    Bwrap(Bwrap),
    /// Landlock; under `auto`, with why bubblewrap could not start.
    Landlock {
        landlock: Landlock,
        no_bwrap: Option<String>,
    },
    /// Nothing: `off`, or `auto` where no sandbox works (then with why).
    Unconfined {
        why: Option<String>,
    },
    /// `bwrap` or `landlock` where that sandbox cannot work: no run, for this reason.
    Refused(String),
}

impl Sandboxes {
    /// Tries each sandbox here (bubblewrap starts one; Landlock is asked for its version).
    pub fn probe() -> Sandboxes {
        let bwrap = baton_exec::find_bwrap().ok_or(Unavailable::NotInstalled).and_then(|p| Bwrap::probe(&p));
        Sandboxes { bwrap, landlock: Landlock::probe() }
    }

    /// What confines a run under `mode` here.
    pub fn choose(&self, mode: SandboxMode) -> SandboxChoice {
        match (mode, &self.bwrap, &self.landlock) {
            (SandboxMode::Off, _, _) => SandboxChoice::Unconfined { why: None },
            (SandboxMode::Bwrap | SandboxMode::Auto, Ok(b), _) => SandboxChoice::Bwrap(b.clone()),
            (SandboxMode::Bwrap, Err(e), _) => SandboxChoice::Refused(format!(
                "run.sandbox = \"bwrap\", but no sandbox can start here: {e} (install bubblewrap, or set run.sandbox = \"auto\")"
            )),
            (SandboxMode::Landlock, _, Ok(l)) => {
                SandboxChoice::Landlock { landlock: l.clone(), no_bwrap: None }
            }
            (SandboxMode::Landlock, _, Err(e)) => SandboxChoice::Refused(format!(
                "run.sandbox = \"landlock\", but Landlock is not available here: {e} (set run.sandbox = \"auto\")"
            )),
            (SandboxMode::Auto, Err(e), Ok(l)) => {
                SandboxChoice::Landlock { landlock: l.clone(), no_bwrap: Some(e.to_string()) }
            }
            (SandboxMode::Auto, Err(b), Err(l)) => {
                SandboxChoice::Unconfined { why: Some(format!("{b}; {l}")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This machine with each sandbox there or not; `None` where one that should be is not.
    fn machine(bwrap: bool, landlock: bool) -> Option<Sandboxes> {
        let real = Sandboxes::probe();
        Some(Sandboxes {
            bwrap: if bwrap {
                Ok(real.bwrap.ok()?)
            } else {
                Err(Unavailable::Refused("no user namespaces".into()))
            },
            landlock: if landlock {
                Ok(real.landlock.ok()?)
            } else {
                Err(Unavailable::Refused("no Landlock".into()))
            },
        })
    }

    fn name(c: &SandboxChoice) -> String {
        match c {
            SandboxChoice::Bwrap(_) => "bwrap".into(),
            SandboxChoice::Landlock { no_bwrap: None, .. } => "landlock".into(),
            SandboxChoice::Landlock { no_bwrap: Some(e), .. } => format!("landlock ({e})"),
            SandboxChoice::Unconfined { why: None } => "unconfined".into(),
            SandboxChoice::Unconfined { why: Some(e) } => format!("unconfined ({e})"),
            SandboxChoice::Refused(e) => format!("refused: {e}"),
        }
    }

    #[test]
    fn auto_falls_back_from_bubblewrap_to_landlock_to_nothing_and_the_named_modes_refuse() {
        use SandboxMode::{Auto, Bwrap, Landlock, Off};
        let cases: &[(bool, bool, SandboxMode, &str)] = &[
            (true, true, Auto, "bwrap"),
            (false, true, Auto, "landlock (no user namespaces)"),
            (false, false, Auto, "unconfined (no user namespaces; no Landlock)"),
            (true, true, Bwrap, "bwrap"),
            (
                false,
                true,
                Bwrap,
                "refused: run.sandbox = \"bwrap\", but no sandbox can start here: no user namespaces",
            ),
            (true, true, Landlock, "landlock"),
            (
                true,
                false,
                Landlock,
                "refused: run.sandbox = \"landlock\", but Landlock is not available here: no Landlock",
            ),
            (true, true, Off, "unconfined"),
        ];
        for &(bwrap, landlock, mode, want) in cases {
            let Some(m) = machine(bwrap, landlock) else {
                assert!(std::env::var_os("BATON_REQUIRE_SANDBOX").is_none(), "no sandbox here");
                eprintln!("skipped {mode:?} with bwrap={bwrap} landlock={landlock}: this machine lacks one");
                continue;
            };
            let got = name(&m.choose(mode));
            assert!(got.starts_with(want), "{mode:?} with bwrap={bwrap} landlock={landlock}: {got}");
        }
    }
}
