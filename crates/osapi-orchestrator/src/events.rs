//! What happens during a run, as events: the terminal renderer draws them,
//! the JSON-lines sink writes them one per line, and custom [`Observer`]s
//! receive them. The JSON schema is documented in `docs/events.md`; every
//! event carries `"event"` (its kind) and `"ts"` (RFC 3339 time).

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

use crate::results::{HostStatus, StepStatus};

/// One level of the plan (steps whose longest dependency chain has the same length).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelSummary {
    /// 0-based level index.
    pub index: usize,
    /// Step names, in declaration order.
    pub steps: Vec<String>,
    /// True when the level has more than one step.
    pub parallel: bool,
}

/// One host's outcome, as events carry it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostEvent {
    /// Agent hostname.
    pub hostname: String,
    /// Outcome.
    pub status: HostStatus,
    /// Whether the host changed.
    pub changed: bool,
    /// Error text, for failed and lost hosts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the host had nothing to do, when its result says (a command a
    /// condition skipped: `creates: /x exists`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Result data (verbose runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// A run event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The plan was validated and is about to run.
    PlanStarted {
        /// Number of steps.
        steps: usize,
        /// Levels, for display.
        levels: Vec<LevelSummary>,
        /// Check mode: nothing changes, `changed` is a prediction.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        check: bool,
    },
    /// The first step of a level started or was skipped.
    LevelStarted {
        /// 0-based level index.
        level: usize,
        /// Step names of the level.
        steps: Vec<String>,
        /// More than one step.
        parallel: bool,
    },
    /// A step started running.
    StepStarted {
        /// Step name.
        step: String,
        /// 0-based level.
        level: usize,
        /// `operation=<op> target=<target>`, or `(custom function)`.
        detail: String,
    },
    /// An attempt failed and another will follow.
    StepRetrying {
        /// Step name.
        step: String,
        /// 1-based number of the attempt that failed.
        attempt: u32,
        /// Why it failed.
        error: String,
        /// Pause before the next attempt.
        delay_ms: u64,
    },
    /// A step was skipped without running.
    StepSkipped {
        /// Step name.
        step: String,
        /// 0-based level.
        level: usize,
        /// Why.
        reason: String,
    },
    /// A step finished (changed, unchanged or failed).
    StepFinished {
        /// Step name.
        step: String,
        /// 0-based level.
        level: usize,
        /// Outcome.
        status: StepStatus,
        /// Whether anything changed.
        changed: bool,
        /// Wall time including retries.
        duration_ms: u64,
        /// Attempts made.
        attempts: u32,
        /// Job of the last attempt, for job steps.
        #[serde(skip_serializing_if = "Option::is_none")]
        job_id: Option<String>,
        /// Error, when failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Per-host outcomes, for job steps.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        hosts: Vec<HostEvent>,
        /// Result data (verbose runs only; single-host and function steps).
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// Taken from the run journal (a resumed run), not run again.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        from_journal: bool,
    },
    /// A job step's job was created on the controller (once per attempt).
    JobCreated {
        /// Step name.
        step: String,
        /// The job's id.
        job_id: String,
        /// How many hosts the job waits for, when known: the controller's
        /// or the library's list for broadcasts, 1 for `_any` and a
        /// hostname.
        #[serde(skip_serializing_if = "Option::is_none")]
        expected_hosts: Option<usize>,
    },
    /// A batch of a rolling step started: one job per host.
    BatchStarted {
        /// Step name.
        step: String,
        /// 1-based batch number.
        batch: usize,
        /// Batches planned.
        batches: usize,
        /// The batch's hosts.
        hosts: Vec<String>,
        /// Hosts of the whole rollout.
        total_hosts: usize,
    },
    /// A batch of a rolling step ended.
    BatchFinished {
        /// Step name.
        step: String,
        /// 1-based batch number.
        batch: usize,
        /// Batches planned.
        batches: usize,
        /// Hosts of this batch that failed.
        failed: usize,
        /// The gate's verdict after this batch: `passed`, or why it failed
        /// (absent without a gate, or when the rollout already stopped).
        #[serde(skip_serializing_if = "Option::is_none")]
        gate: Option<String>,
        /// Why the rollout stops here (absent when it goes on or is done).
        #[serde(skip_serializing_if = "Option::is_none")]
        stopped: Option<String>,
    },
    /// A host of a running job step answered (before the step's
    /// `StepFinished`, which lists every host again). Hosts are reported as
    /// the step sees them: at least every second while its job runs, and
    /// the rest (lost ones included) when it ends.
    HostDone {
        /// Step name.
        step: String,
        /// The host's outcome.
        host: HostEvent,
    },
    /// Every step of a level is done.
    LevelFinished {
        /// 0-based level index.
        level: usize,
        /// Steps of the level that changed something.
        changed: usize,
        /// Steps in the level.
        total: usize,
        /// More than one step.
        parallel: bool,
    },
    /// The run ended.
    PlanFinished {
        /// `N tasks, a changed, …` (upstream's summary format).
        summary: String,
        /// Wall time.
        duration_ms: u64,
        /// Duration as text (`1.036s`).
        duration: String,
        /// True when no step failed in a way that stops the plan.
        success: bool,
    },
}

/// Receives run events. Called from the engine's tasks; keep it quick.
pub trait Observer: Send + Sync {
    /// One event.
    fn on_event(&self, event: &Event);

    /// Called before user code (a custom step's body) runs: an observer
    /// that holds output back writes it now, so that what the code prints
    /// comes after it. Nothing by default.
    fn flush(&self) {}

    /// How far the output held back so far reaches (any measure that only
    /// grows, such as bytes collected). Taken when a custom step starts,
    /// and handed to [`Observer::flush_through`] before its code runs.
    /// 0 by default.
    fn mark(&self) -> u64 {
        0
    }

    /// Called before a custom step's code runs, with the [`Observer::mark`]
    /// taken when the step started: the output up to `mark` must be
    /// written now; an observer that has written it already can return at
    /// once (steps that start together then cost one write, not one
    /// each). [`Observer::flush`] by default. An observer that wraps
    /// another forwards both this and [`Observer::mark`], or neither.
    fn flush_through(&self, mark: u64) {
        let _ = mark;
        self.flush();
    }
}

/// Writes one JSON object per event per line.
pub struct JsonLines<W: Write + Send> {
    out: Mutex<W>,
}

impl<W: Write + Send> JsonLines<W> {
    /// A sink writing to `out`.
    pub fn new(out: W) -> Self {
        JsonLines {
            out: Mutex::new(out),
        }
    }

    /// The writer back (for tests).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Serialize)]
struct Stamped<'a> {
    ts: String,
    #[serde(flatten)]
    event: &'a Event,
}

impl<W: Write + Send> Observer for JsonLines<W> {
    fn on_event(&self, event: &Event) {
        let stamped = Stamped {
            ts: osapi_api::format::rfc3339(time::OffsetDateTime::now_utc()),
            event,
        };
        let Ok(mut line) = serde_json::to_vec(&stamped) else {
            return;
        };
        line.push(b'\n');
        let mut out = crate::lock(&self.out);
        // One write per event: lines never interleave.
        let _ = out.write_all(&line);
        let _ = out.flush();
    }
}
