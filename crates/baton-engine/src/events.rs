//! The run's event stream: the clock that stamps each event, the emitter every part of a run
//! shares, and the recorder, the one owner of the store and the reporter (and so the one place
//! where events are redacted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use baton_core::{RunEvent, RunId, Stamped};
use baton_exec::{Cancel, CancelLevel, Redactor};
use baton_store::Store;

use crate::EngineError;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Where a run's times come from.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// The system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock for tests: it starts at a fixed instant and moves one millisecond at each reading, so
/// that events keep their order and every run of a test reads the same times.
#[derive(Debug)]
pub struct FixedClock {
    start: OffsetDateTime,
    readings: AtomicU64,
}

impl FixedClock {
    pub fn at(start: OffsetDateTime) -> FixedClock {
        FixedClock { start, readings: AtomicU64::new(0) }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        let n = self.readings.fetch_add(1, Ordering::Relaxed);
        self.start + time::Duration::milliseconds(n as i64)
    }
}

/// What reporters receive: every event of a run, stamped, in order.
pub type Reporter = Box<dyn FnMut(&Stamped) + Send>;

/// An event's time as the store and reporters carry it: RFC 3339, UTC, to the millisecond.
pub(crate) fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The event sink every part of the run shares.
#[derive(Clone)]
pub(crate) struct Emitter {
    tx: mpsc::UnboundedSender<Stamped>,
    clock: Arc<dyn Clock>,
}

impl Emitter {
    pub(crate) fn emit(&self, event: RunEvent) {
        // The recorder outlives every sender; a send can only fail after it stopped.
        let _ = self.tx.send(Stamped { at: stamp(self.clock.now()), event });
    }

    /// A plain function that emits, for code that takes one (the stage runner).
    pub(crate) fn sink(&self) -> impl Fn(RunEvent) + Send + Sync + 'static {
        let emitter = self.clone();
        move |e| emitter.emit(e)
    }
}

/// The recorder of one run: stores every event, then shows it, in order.
pub(crate) struct Recorder {
    task: tokio::task::JoinHandle<Store>,
    error: Arc<Mutex<Option<baton_store::StoreError>>>,
}

impl Recorder {
    /// Starts the recorder; the returned emitter feeds it. It ends when every emitter is gone.
    /// Each event is redacted with `redactor` before it is stored and shown.
    pub(crate) fn start(
        run: RunId,
        store: Store,
        reporter: Reporter,
        clock: Arc<dyn Clock>,
        redactor: Arc<Redactor>,
    ) -> (Recorder, Emitter) {
        let (tx, rx) = mpsc::unbounded_channel();
        let error = Arc::new(Mutex::new(None));
        let task = tokio::spawn(record(run, store, rx, reporter, redactor, error.clone()));
        (Recorder { task, error }, Emitter { tx, clock })
    }

    /// Waits until every event is stored and shown; the first error the store gave, if any.
    pub(crate) async fn finish(self) -> Result<Store, EngineError> {
        let store = self.task.await.map_err(|e| EngineError::Failed(format!("the recorder stopped: {e}")))?;
        match self.error.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(e) => Err(EngineError::Store(e)),
            None => Ok(store),
        }
    }
}

async fn record(
    run: RunId,
    mut store: Store,
    mut rx: mpsc::UnboundedReceiver<Stamped>,
    mut reporter: Reporter,
    redactor: Arc<Redactor>,
    error: Arc<Mutex<Option<baton_store::StoreError>>>,
) -> Store {
    while let Some(event) = rx.recv().await {
        let event = Stamped { at: event.at, event: crate::redact::event(&redactor, event.event) };
        let result = store.record(&run, &event).and_then(|()| {
            if matches!(event.event, RunEvent::RunStarted { .. }) {
                let me = std::process::id();
                store.set_owner(&run, me, baton_exec::identity_of(me).map(|i| i.start_ticks))
            } else {
                Ok(())
            }
        });
        if let Err(e) = result {
            let mut slot = error.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(e);
            }
        }
        reporter(&event);
    }
    store
}

/// Turns each raise of the cancellation level into a `Cancelling` event.
pub(crate) async fn watch_cancel(mut cancel: Cancel, emitter: Emitter) {
    let mut seen = CancelLevel::None;
    loop {
        let level = cancel.raised_above(seen).await;
        seen = level;
        emitter.emit(baton_core::RunEvent::Cancelling { force: level == CancelLevel::Force });
        if level == CancelLevel::Force {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_a_millisecond_per_reading_and_stamps_read_alike() {
        let clock = FixedClock::at(time::macros::datetime!(2026-12-03 10:00:00 UTC));
        assert_eq!(stamp(clock.now()), "2026-12-03T10:00:00.000Z");
        assert_eq!(stamp(clock.now()), "2026-12-03T10:00:00.001Z");
    }
}
