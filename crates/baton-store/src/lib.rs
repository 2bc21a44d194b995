//! The run store: one SQLite file (no server) plus artifact files, inside the repository's git
//! directory so that `git clean` cannot remove it and it is never committed.
//!
//! The store is written by replaying the run's event stream into it ([`Store::record`]): every
//! [`RunEvent`] is appended to the `events` table and also updates the tables that queries
//! need (runs, candidates, stage and test results). A stored run can therefore be shown again
//! through the same renderers that showed it live. The schema evolves by numbered migrations
//! in `migrations/`, tracked with `PRAGMA user_version`; a column is never reused.

use std::path::{Path, PathBuf};

use baton_core::{
    AgentOutcome, CandidateId, RunEvent, RunId, RunStatus, Scoreboard, StageResult, Stamped, Subject, Task,
    TestCase, TestStatus,
};
use rusqlite::{Connection, params};

/// Numbered migrations, applied in order. Append only.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run store at {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the run store at {} was written by a newer baton (schema {found}, this baton knows {known})", path.display())]
    TooNew { path: PathBuf, found: i64, known: i64 },
    #[error("run store query failed")]
    Sql(#[from] rusqlite::Error),
    #[error("the run store holds data this baton cannot read")]
    Corrupt(#[from] serde_json::Error),
    #[error("cannot create {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A run as stored.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: RunId,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub repo_root: String,
    pub base_commit: String,
    pub base_rev: String,
    pub target_branch: Option<String>,
    pub target_commit: Option<String>,
    pub workspace_root: String,
    pub task: Task,
    pub winner: Option<CandidateId>,
    pub scoreboard: Option<Scoreboard>,
    pub owner_pid: Option<u32>,
    pub owner_start: Option<u64>,
    pub merged_commit: Option<String>,
}

/// A candidate as stored.
#[derive(Debug, Clone)]
pub struct CandidateRow {
    pub id: CandidateId,
    pub agent: String,
    pub strategy: String,
    pub workspace: Option<String>,
    pub outcome: Option<AgentOutcome>,
    pub agent_millis: Option<u64>,
    pub commit: Option<String>,
    pub reference: Option<String>,
    pub files_changed: Option<usize>,
    pub insertions: Option<usize>,
    pub deletions: Option<usize>,
    pub verified_as: Option<CandidateId>,
    pub rank: Option<usize>,
}

/// A process a run started, recorded so that a later baton can end it if this one crashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRow {
    pub run: RunId,
    pub pid: u32,
    pub start_ticks: u64,
    pub label: String,
}

pub struct Store {
    conn: Connection,
    dir: PathBuf,
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The database's file name in the store's directory.
pub const DB_FILE: &str = "baton.db";

impl Store {
    /// Opens (creating if needed) the store in `dir`, usually `<git-common-dir>/baton`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })?;
        let path = dir.join(DB_FILE);
        let open_err = |source| StoreError::Open { path: path.clone(), source };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
        migrate(&mut conn, &path)?;
        Ok(Store { conn, dir: dir.to_owned() })
    }

    /// Where a run's artifacts (logs, diffs) live.
    pub fn artifacts_dir(&self, run: &RunId) -> PathBuf {
        self.dir.join("runs").join(run.as_str())
    }

    /// Records that this process owns `run` (for crash recovery).
    pub fn set_owner(&self, run: &RunId, pid: u32, start_ticks: Option<u64>) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET owner_pid = ?2, owner_start = ?3 WHERE id = ?1",
            params![run.as_str(), pid, start_ticks.map(|t| t as i64)],
        )?;
        Ok(())
    }

    /// Applies one event of run `run`: appends it to the log and updates the query tables. The
    /// event's own time is the one stored.
    pub fn record(&mut self, run: &RunId, stamped: &Stamped) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let (at, event) = (&stamped.at, &stamped.event);
        if let RunEvent::RunStarted {
            base,
            base_rev,
            target_branch,
            target_commit,
            repo_root,
            workspace_root,
            task,
            candidates,
            ..
        } = event
        {
            tx.execute(
                "INSERT INTO runs (id, started_at, status, repo_root, base_commit, base_rev, target_branch,
                     target_commit, workspace_root, task_title, task_body, task_source)
                 VALUES (?1, ?2, 'running', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    run.as_str(),
                    at,
                    repo_root,
                    base,
                    base_rev,
                    target_branch,
                    target_commit,
                    workspace_root,
                    task.title,
                    task.body,
                    task.source
                ],
            )?;
            for (i, c) in candidates.iter().enumerate() {
                tx.execute(
                    "INSERT INTO candidates (run_id, id, ordinal, agent, strategy) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![run.as_str(), c.id.as_str(), i as i64, c.agent, c.strategy],
                )?;
            }
        }
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?1",
            [run.as_str()],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO events (run_id, seq, at, body) VALUES (?1, ?2, ?3, ?4)",
            params![run.as_str(), seq, at, serde_json::to_string(event)?],
        )?;
        match event {
            RunEvent::RunStarted { .. } => {}
            RunEvent::WorkspaceReady { candidate, path, .. } => {
                tx.execute(
                    "UPDATE candidates SET workspace = ?3 WHERE run_id = ?1 AND id = ?2",
                    params![run.as_str(), candidate.as_str(), path],
                )?;
            }
            RunEvent::AgentFinished { candidate, outcome, millis } => {
                tx.execute(
                    "UPDATE candidates SET outcome = ?3, agent_millis = ?4 WHERE run_id = ?1 AND id = ?2",
                    params![
                        run.as_str(),
                        candidate.as_str(),
                        serde_json::to_string(outcome)?,
                        *millis as i64
                    ],
                )?;
            }
            RunEvent::Collected { candidate, commit, reference, files_changed, insertions, deletions } => {
                tx.execute(
                    "UPDATE candidates SET commit_id = ?3, ref_name = ?4, files_changed = ?5, insertions = ?6,
                         deletions = ?7 WHERE run_id = ?1 AND id = ?2",
                    params![
                        run.as_str(),
                        candidate.as_str(),
                        commit,
                        reference,
                        *files_changed as i64,
                        *insertions as i64,
                        *deletions as i64
                    ],
                )?;
            }
            RunEvent::VerifyShared { candidate, same_as } => {
                tx.execute(
                    "UPDATE candidates SET verified_as = ?3 WHERE run_id = ?1 AND id = ?2",
                    params![run.as_str(), candidate.as_str(), same_as.as_str()],
                )?;
            }
            RunEvent::StageFinished { subject, result } => {
                let ordinal: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM stage_results WHERE run_id = ?1 AND subject = ?2",
                    params![run.as_str(), subject.to_string()],
                    |r| r.get(0),
                )?;
                let without_tests = StageResult { tests: Vec::new(), ..result.clone() };
                tx.execute(
                    "INSERT OR REPLACE INTO stage_results (run_id, subject, ordinal, stage, result)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        run.as_str(),
                        subject.to_string(),
                        ordinal,
                        result.stage,
                        serde_json::to_string(&without_tests)?
                    ],
                )?;
                let mut insert = tx.prepare(
                    "INSERT OR REPLACE INTO test_results (run_id, subject, stage, ordinal, name, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for (i, t) in result.tests.iter().enumerate() {
                    insert.execute(params![
                        run.as_str(),
                        subject.to_string(),
                        result.stage,
                        i as i64,
                        t.name,
                        t.status.as_str()
                    ])?;
                }
            }
            RunEvent::Ranked { scoreboard } => {
                tx.execute(
                    "UPDATE runs SET scoreboard = ?2, winner = ?3 WHERE id = ?1",
                    params![
                        run.as_str(),
                        serde_json::to_string(scoreboard)?,
                        scoreboard.decision.winner().map(|w| w.as_str().to_owned())
                    ],
                )?;
                for c in &scoreboard.candidates {
                    tx.execute(
                        "UPDATE candidates SET rank = ?3, eligible = ?4 WHERE run_id = ?1 AND id = ?2",
                        params![run.as_str(), c.id.as_str(), c.rank as i64, c.eligible],
                    )?;
                }
            }
            RunEvent::RunFinished { status, .. } => {
                tx.execute(
                    "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
                    params![run.as_str(), status.as_str(), at],
                )?;
                tx.execute("UPDATE processes SET ended = 1 WHERE run_id = ?1", [run.as_str()])?;
            }
            RunEvent::Merged { commit, .. } => {
                tx.execute(
                    "UPDATE runs SET merged_commit = ?2 WHERE id = ?1",
                    params![run.as_str(), commit],
                )?;
            }
            RunEvent::ProcessStarted { pid, start_ticks: Some(start_ticks), label } => {
                tx.execute(
                    "INSERT OR REPLACE INTO processes (run_id, pid, start_ticks, label, ended) VALUES (?1, ?2, ?3, ?4, 0)",
                    params![run.as_str(), pid, *start_ticks as i64, label],
                )?;
            }
            RunEvent::ProcessStarted { start_ticks: None, .. }
            | RunEvent::PhaseStarted { .. }
            | RunEvent::AgentStarted { .. }
            | RunEvent::AgentActivity { .. }
            | RunEvent::StageStarted { .. }
            | RunEvent::Verified { .. }
            | RunEvent::ProbesRun { .. }
            | RunEvent::Warning { .. }
            | RunEvent::Note { .. }
            | RunEvent::HiddenTests { .. }
            | RunEvent::RepositoryChanged { .. }
            | RunEvent::Cancelling { .. } => {}
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks a run as ended with `status` without an event (crash recovery).
    pub fn mark_abandoned(&self, run: &RunId) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE runs SET status = 'failed', finished_at = ?2 WHERE id = ?1 AND status = 'running'",
            params![run.as_str(), now()],
        )?;
        self.conn.execute("UPDATE processes SET ended = 1 WHERE run_id = ?1", [run.as_str()])?;
        Ok(())
    }

    pub fn process_ended(&self, run: &RunId, pid: u32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE processes SET ended = 1 WHERE run_id = ?1 AND pid = ?2",
            params![run.as_str(), pid],
        )?;
        Ok(())
    }

    /// Processes of runs still marked running, not known to have ended.
    pub fn unfinished_processes(&self, run: &RunId) -> Result<Vec<ProcessRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT pid, start_ticks, label FROM processes WHERE run_id = ?1 AND ended = 0")?;
        let rows = stmt.query_map([run.as_str()], |r| {
            Ok(ProcessRow {
                run: run.clone(),
                pid: r.get(0)?,
                start_ticks: r.get::<_, i64>(1)? as u64,
                label: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn run(&self, id: &RunId) -> Result<Option<RunRow>, StoreError> {
        self.query_runs("WHERE id = ?1", params![id.as_str()]).map(|mut v| v.pop())
    }

    /// The most recent run, if any.
    pub fn latest_run(&self) -> Result<Option<RunRow>, StoreError> {
        self.query_runs("ORDER BY started_at DESC, rowid DESC LIMIT 1", params![]).map(|mut v| v.pop())
    }

    /// Runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        self.query_runs("ORDER BY started_at DESC, rowid DESC LIMIT ?1", params![limit as i64])
    }

    /// Runs still marked running.
    pub fn running_runs(&self) -> Result<Vec<RunRow>, StoreError> {
        self.query_runs("WHERE status = 'running'", params![])
    }

    fn query_runs(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT id, started_at, finished_at, status, repo_root, base_commit, base_rev, target_branch,
                    target_commit, workspace_root, task_title, task_body, task_source, winner, scoreboard,
                    owner_pid, owner_start, merged_commit
             FROM runs {tail}"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, String>(9)?,
                Task { title: r.get(10)?, body: r.get(11)?, source: r.get(12)? },
                r.get::<_, Option<String>>(13)?,
                r.get::<_, Option<String>>(14)?,
                r.get::<_, Option<i64>>(15)?,
                r.get::<_, Option<i64>>(16)?,
                r.get::<_, Option<String>>(17)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                started_at,
                finished_at,
                status,
                repo_root,
                base_commit,
                base_rev,
                target_branch,
                target_commit,
                workspace_root,
                task,
                winner,
                scoreboard,
                owner_pid,
                owner_start,
                merged_commit,
            ) = row?;
            out.push(RunRow {
                id: RunId::new(id).map_err(corrupt)?,
                started_at,
                finished_at,
                status: RunStatus::parse(&status).unwrap_or(RunStatus::Failed),
                repo_root,
                base_commit,
                base_rev,
                target_branch,
                target_commit,
                workspace_root,
                task,
                winner: winner.map(CandidateId::new).transpose().map_err(corrupt)?,
                scoreboard: scoreboard.map(|s| serde_json::from_str(&s)).transpose()?,
                owner_pid: owner_pid.map(|p| p as u32),
                owner_start: owner_start.map(|p| p as u64),
                merged_commit,
            });
        }
        Ok(out)
    }

    pub fn candidates(&self, run: &RunId) -> Result<Vec<CandidateRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, agent, strategy, workspace, outcome, agent_millis, commit_id, ref_name, files_changed,
                    insertions, deletions, verified_as, rank
             FROM candidates WHERE run_id = ?1 ORDER BY ordinal",
        )?;
        let rows = stmt.query_map([run.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<i64>>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<i64>>(10)?,
                r.get::<_, Option<String>>(11)?,
                r.get::<_, Option<i64>>(12)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                agent,
                strategy,
                workspace,
                outcome,
                millis,
                commit,
                reference,
                files,
                ins,
                del,
                verified_as,
                rank,
            ) = row?;
            out.push(CandidateRow {
                id: CandidateId::new(id).map_err(corrupt)?,
                agent,
                strategy,
                workspace,
                outcome: outcome.map(|o| serde_json::from_str(&o)).transpose()?,
                agent_millis: millis.map(|m| m as u64),
                commit,
                reference,
                files_changed: files.map(|n| n as usize),
                insertions: ins.map(|n| n as usize),
                deletions: del.map(|n| n as usize),
                verified_as: verified_as.map(CandidateId::new).transpose().map_err(corrupt)?,
                rank: rank.map(|n| n as usize),
            });
        }
        Ok(out)
    }

    /// Every stage result of a run, with its tests, in the order they were recorded per subject.
    pub fn stage_results(&self, run: &RunId) -> Result<Vec<(Subject, StageResult)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT subject, stage, result FROM stage_results WHERE run_id = ?1 ORDER BY subject, ordinal",
        )?;
        let rows = stmt.query_map([run.as_str()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut tests_stmt = self.conn.prepare(
            "SELECT name, status FROM test_results WHERE run_id = ?1 AND subject = ?2 AND stage = ?3 ORDER BY ordinal",
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (subject, stage, json) = row?;
            let mut result: StageResult = serde_json::from_str(&json)?;
            let tests = tests_stmt.query_map(params![run.as_str(), subject, stage], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for t in tests {
                let (name, status) = t?;
                if let Some(status) = TestStatus::parse(&status) {
                    result.tests.push(TestCase { name, status });
                }
            }
            out.push((Subject::parse(&subject).map_err(corrupt)?, result));
        }
        Ok(out)
    }

    /// The run's events in order, with their times, for replay.
    pub fn events(&self, run: &RunId) -> Result<Vec<Stamped>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT at, body FROM events WHERE run_id = ?1 ORDER BY seq")?;
        let rows =
            stmt.query_map([run.as_str()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (at, body) = row?;
            out.push(Stamped { at, event: serde_json::from_str(&body)? });
        }
        Ok(out)
    }

    /// Finds a run by a unique prefix of its id.
    pub fn find_run(&self, prefix: &str) -> Result<Vec<RunId>, StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT id FROM runs WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id")?;
        let rows = stmt.query_map([prefix], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for id in rows {
            out.push(RunId::new(id?).map_err(corrupt)?);
        }
        Ok(out)
    }
}

fn corrupt(e: baton_core::IdError) -> StoreError {
    StoreError::Corrupt(serde_json::Error::io(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        e.to_string(),
    )))
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { path: path.to_owned(), found: version, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
