//! Live reporters: consume the run's event stream and tell the user what happens.
//!
//! The line reporter writes to stderr, one line per change of a candidate's state, with a
//! progress bar for the phases when stderr is a terminal. The JSON reporter writes every event
//! as one line of JSON on stdout, for scripts.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use baton_core::{AgentActivity, Phase, RunEvent, StageResult, StageStatus, Stamped, TestStatus, plural};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub(crate) type Reporter = baton_engine::Reporter;

/// The reporter for `run` and `demo`: every event as a line of JSON, with its time, or lines
/// for people.
pub(crate) fn reporter(json: bool, quiet: bool) -> Reporter {
    if json {
        return Box::new(|e: &Stamped| {
            if let Ok(line) = serde_json::to_string(e) {
                println!("{line}");
            }
        });
    }
    let mut lines = LineReporter::new(quiet);
    Box::new(move |e: &Stamped| lines.event(&e.event))
}

struct LineReporter {
    quiet: bool,
    bar: Option<ProgressBar>,
    tty: bool,
    agents: HashMap<String, String>,
    phase_started: Option<(Phase, Instant)>,
    /// Verify phases seen: the first verifies the base and the candidates, a second one runs
    /// the test matrix (the tests candidates wrote, on every subject).
    verify_phases: usize,
}

impl LineReporter {
    fn new(quiet: bool) -> LineReporter {
        LineReporter {
            quiet,
            bar: None,
            tty: std::io::stderr().is_terminal() && std::env::var_os("TERM").is_none_or(|t| t != "dumb"),
            agents: HashMap::new(),
            phase_started: None,
            verify_phases: 0,
        }
    }

    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finish_phase(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if let Some((phase, t)) = self.phase_started.take() {
            let what = match phase {
                Phase::Provision => "workspaces ready",
                Phase::Agents => "agents done",
                Phase::Verify if self.verify_phases > 1 => "test matrix done",
                Phase::Verify => "verification done",
                Phase::Rank => "ranked",
            };
            self.line(format!("  {what} in {}", duration(t.elapsed())));
        }
    }

    fn start_bar(&mut self, phase: Phase, total: usize) {
        self.phase_started = Some((phase, Instant::now()));
        if self.quiet || !self.tty || phase == Phase::Agents {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("  {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(match phase {
            Phase::Provision => "provisioning",
            Phase::Verify if self.verify_phases > 1 => "test matrix",
            Phase::Verify => "verifying",
            Phase::Agents | Phase::Rank => "",
        });
        bar.enable_steady_tick(Duration::from_millis(200));
        self.bar = Some(bar);
    }

    fn who(&self, candidate: &str) -> String {
        match self.agents.get(candidate) {
            Some(agent) => format!("{candidate} ({agent})"),
            None => candidate.to_owned(),
        }
    }

    fn event(&mut self, e: &RunEvent) {
        match e {
            RunEvent::RunStarted { run, base, base_rev, task, candidates, workspace_root, .. } => {
                for c in candidates {
                    let label =
                        if c.strategy == "default" { c.agent.clone() } else { format!("{}, {}", c.agent, c.strategy) };
                    self.agents.insert(c.id.to_string(), label);
                }
                self.line(format!(
                    "baton run {run}: {} {} from {} ({base_rev})",
                    candidates.len(),
                    plural(candidates.len(), "candidate", "candidates"),
                    &base[..base.len().min(10)]
                ));
                self.line(format!("  task: {}", task.title));
                self.line(format!("  workspaces: {workspace_root}"));
            }
            RunEvent::PhaseStarted { phase, total } => {
                self.finish_phase();
                if *phase == Phase::Verify {
                    self.verify_phases += 1;
                    if self.verify_phases == 1 {
                        self.line(format!(
                            "verifying the base and {} distinct {}",
                            total.saturating_sub(1),
                            plural(total.saturating_sub(1), "candidate", "candidates")
                        ));
                    } else {
                        self.line(format!(
                            "test matrix: running the tests candidates wrote on the base and on every distinct candidate ({total} {})",
                            plural(*total, "run", "runs")
                        ));
                    }
                }
                self.start_bar(*phase, *total);
            }
            RunEvent::WorkspaceReady { .. } | RunEvent::Verified { .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            RunEvent::AgentStarted { candidate } => self.line(format!("{}: started", self.who(candidate.as_str()))),
            RunEvent::AgentActivity { candidate, activity } => {
                let text = match activity {
                    AgentActivity::Started { model, .. } => match model {
                        Some(m) => format!("session started ({m})"),
                        None => "session started".to_owned(),
                    },
                    AgentActivity::Message { text } => text.lines().next().unwrap_or("").to_owned(),
                    AgentActivity::ToolCall { tool, detail } => format!("{tool} {detail}"),
                    AgentActivity::ToolResult { tool, ok, detail } => {
                        if *ok {
                            return;
                        }
                        format!("{tool} failed: {detail}")
                    }
                    AgentActivity::Usage { turns, input_tokens, output_tokens, cost_usd, cost_estimated } => {
                        format!(
                            "{}{input_tokens} tokens in, {output_tokens} out{}",
                            if *turns > 0 { format!("turn {turns}: ") } else { String::new() },
                            cost_usd
                                .map(|c| if *cost_estimated {
                                    format!(", ~${c:.4} (the CLI's estimate at list prices)")
                                } else {
                                    format!(", ${c:.4}")
                                })
                                .unwrap_or_default()
                        )
                    }
                    AgentActivity::Finished { turns, .. } => match turns {
                        Some(n) => format!("reported done after {n} {}", plural(*n as usize, "turn", "turns")),
                        None => "reported done".to_owned(),
                    },
                    AgentActivity::Error { message } => format!("error: {message}"),
                    AgentActivity::Warning { message } => format!("warning: {message}"),
                };
                self.line(format!("{candidate}: {text}"));
            }
            RunEvent::AgentFinished { candidate, outcome, millis } => {
                self.line(format!("{}: {outcome} after {}", self.who(candidate.as_str()), duration(Duration::from_millis(*millis))))
            }
            RunEvent::Collected { candidate, files_changed, insertions, deletions, reference, .. } => self.line(format!(
                "{candidate}: {files_changed} {} changed (+{insertions} -{deletions}), saved to {reference}",
                plural(*files_changed, "file", "files")
            )),
            RunEvent::VerifyShared { candidate, same_as } => {
                self.line(format!("{candidate}: same tree as {same_as}, verified once"))
            }
            RunEvent::StageStarted { subject, stage } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("{subject}: {stage}"));
                }
            }
            RunEvent::StageFinished { subject, result } => {
                self.line(format!("{subject}: {}", stage_summary(result)));
            }
            RunEvent::Warning { message } => {
                if let Some(bar) = &self.bar {
                    bar.println(format!("warning: {message}"));
                } else {
                    eprintln!("warning: {message}");
                }
            }
            RunEvent::Note { message } => self.line(format!("note: {message}")),
            // The run ends with an error that says what changed and how to undo it.
            RunEvent::RepositoryChanged { .. } => {}
            RunEvent::Merged { .. } => {}
            RunEvent::HiddenTests { source, files, left_out } => {
                self.line(hidden_tests_text(source, files, left_out));
            }
            RunEvent::Cancelling { force } => {
                let text = if *force {
                    "stopping now: killing every process".to_owned()
                } else {
                    "stopping: ending agents and stages gracefully, saving their work (Ctrl-C again to kill)".to_owned()
                };
                if let Some(bar) = &self.bar {
                    bar.println(text);
                } else {
                    eprintln!("{text}");
                }
            }
            RunEvent::Ranked { .. } | RunEvent::RunFinished { .. } => self.finish_phase(),
            RunEvent::ProbesRun { subject, probes } => {
                let n = probes.len();
                let crashed = probes.iter().filter(|p| p.exit_code != Some(0)).count();
                self.line(format!(
                    "{subject}: ran {n} {}{}",
                    plural(n, "probe", "probes"),
                    if crashed > 0 { format!(", {crashed} ended with an error") } else { String::new() }
                ));
            }
            RunEvent::ProcessStarted { .. } => {}
        }
    }
}

/// `test passed: 12 tests, 11 passing, 1 failing (2.1s)`.
/// What a run took as hidden tests, and what it left out of their source.
pub(crate) fn hidden_tests_text(source: &str, files: &[String], left_out: &[String]) -> String {
    let list = |v: &[String]| {
        let shown: Vec<&str> = v.iter().take(8).map(String::as_str).collect();
        match v.len().saturating_sub(8) {
            0 => shown.join(", "),
            more => format!("{} and {more} more", shown.join(", ")),
        }
    };
    let mut s = format!(
        "hidden tests from {source}: {} {} ({}), added to every subject only to verify it",
        files.len(),
        plural(files.len(), "file", "files"),
        list(files)
    );
    if !left_out.is_empty() {
        s.push_str(&format!(
            "\nwarning: left out {} {} that {} not tests (a fix among them would reach every candidate): {}",
            left_out.len(),
            plural(left_out.len(), "file", "files"),
            plural(left_out.len(), "is", "are"),
            list(left_out)
        ));
    }
    s
}

pub(crate) fn stage_summary(r: &StageResult) -> String {
    let mut s = format!("{} {}", r.stage, r.status);
    if !r.tests.is_empty() {
        let ok = r.tests.iter().filter(|t| t.status.is_ok()).count();
        let failing = r
            .tests
            .iter()
            .filter(|t| matches!(t.status, TestStatus::Fail | TestStatus::Error | TestStatus::XPass))
            .count();
        s.push_str(&format!(
            ": {} {}, {ok} passing, {failing} failing",
            r.tests.len(),
            plural(r.tests.len(), "test", "tests")
        ));
        if !r.flaky.is_empty() {
            s.push_str(&format!(", {} flaky", r.flaky.len()));
        }
    }
    if !matches!(r.status, StageStatus::Skipped { .. }) {
        s.push_str(&format!(" ({})", duration(Duration::from_millis(r.duration_ms))));
    }
    for n in &r.notes {
        s.push_str(&format!("\n    note: {n}"));
    }
    s
}

/// `850ms`, `4.2s`, `3m 05s`, `1h 02m`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}
