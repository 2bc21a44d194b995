use baton_core::{AgentActivity, AgentOutcome};
use baton_exec::{Cancel, CancelHandle, CancelLevel, Executor, Spec};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::{OutputParser, Stop};

/// Runs an agent's process to its end: feeds its stdout lines to `parser`, hands each activity
/// to `emit` as soon as it is read, and stops the process when the run is cancelled or the
/// parser asks (a budget ran out, or the agent reported its result but does not exit). Calls
/// `started` with the process id once it runs. The process runs through `executor`. Returns the
/// parser's verdict on how it ended.
pub async fn drive(
    executor: &dyn Executor,
    spec: Spec,
    mut parser: Box<dyn OutputParser>,
    cancel: Cancel,
    started: impl FnOnce(u32),
    mut emit: impl FnMut(AgentActivity),
) -> AgentOutcome {
    // The process listens to its own cancel, raised by the run's or by us.
    let (handle, own) = CancelHandle::new();
    let forward = {
        let (mut cancel, handle) = (cancel, handle.clone());
        tokio::spawn(async move {
            let mut seen = CancelLevel::None;
            while seen != CancelLevel::Force {
                seen = cancel.raised_above(seen).await;
                handle.raise(seen);
            }
        })
    };
    let process = executor.spawn(spec);
    if let Some(pid) = process.pid() {
        started(pid);
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let waiting = process.wait(own, Some(tx));
    let reading = async {
        let mut linger: Option<Instant> = None;
        let mut asked = false;
        loop {
            tokio::select! {
                line = rx.recv() => {
                    let Some(line) = line else { break };
                    for activity in parser.line(&line) {
                        emit(activity);
                    }
                    match parser.stop() {
                        Some(Stop::Now) if !asked => {
                            asked = true;
                            handle.raise(CancelLevel::Graceful);
                        }
                        Some(Stop::After(d)) if linger.is_none() => linger = Some(Instant::now() + d),
                        _ => {}
                    }
                }
                () = sleep_until(linger.unwrap_or_else(Instant::now)), if linger.is_some() && !asked => {
                    asked = true;
                    emit(AgentActivity::Warning {
                        message: "reported its result but did not exit; stopping it".into(),
                    });
                    handle.raise(CancelLevel::Graceful);
                }
            }
        }
    };
    let (finished, ()) = tokio::join!(waiting, reading);
    forward.abort();
    parser.outcome(&finished.end)
}
