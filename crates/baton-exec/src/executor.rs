//! Where a run's processes run. Every process a run starts (agents, stages, probes) goes
//! through one [`Executor`]: this machine today ([`Local`]); a sandbox that confines each
//! process, or a job on a cluster engine, is another executor, and nothing that starts
//! processes has to change for it.

use std::sync::Arc;

use crate::{Process, Redactor, Spec, spawn};

/// Starts a run's processes.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Starts `spec`, supervised as [`spawn`] does.
    fn spawn(&self, spec: Spec) -> Process;

    /// Where processes run, as the run header and `doctor` say it.
    fn describe(&self) -> String;

    /// Whether it enforces a [`Spec`]'s confinement (otherwise what a process did outside its
    /// workspace can only be found afterwards).
    fn confines(&self) -> bool {
        false
    }

    /// Whether it gives a confined process a network of its own, left only by the
    /// [`Route`](crate::Route) its confinement names, if any.
    fn confines_network(&self) -> bool {
        false
    }
}

/// Processes on this machine, as the user's.
#[derive(Debug, Default, Clone, Copy)]
pub struct Local;

impl Executor for Local {
    fn spawn(&self, spec: Spec) -> Process {
        spawn(spec)
    }

    fn describe(&self) -> String {
        "this machine, unconfined".into()
    }
}

/// Every process under the same [`Limits`](crate::Limits) (unless its spec sets its own),
/// started by `inner`.
#[derive(Debug, Clone)]
pub struct Limited {
    pub limits: crate::Limits,
    pub inner: Arc<dyn Executor>,
}

impl Executor for Limited {
    fn spawn(&self, mut spec: Spec) -> Process {
        spec.limits.get_or_insert(self.limits);
        self.inner.spawn(spec)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn confines(&self) -> bool {
        self.inner.confines()
    }

    fn confines_network(&self) -> bool {
        self.inner.confines_network()
    }
}

/// Every process's log redacted with the same [`Redactor`] (unless its spec brings its own),
/// started by `inner`. A run wraps its executor in it, so that no log of the run, whoever
/// builds its `Spec`, can miss the redactor.
#[derive(Debug, Clone)]
pub struct Redacting {
    pub redactor: Arc<Redactor>,
    pub inner: Arc<dyn Executor>,
}

impl Executor for Redacting {
    fn spawn(&self, mut spec: Spec) -> Process {
        spec.redact.get_or_insert_with(|| self.redactor.clone());
        self.inner.spawn(spec)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn confines(&self) -> bool {
        self.inner.confines()
    }

    fn confines_network(&self) -> bool {
        self.inner.confines_network()
    }
}
