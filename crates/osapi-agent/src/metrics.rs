//! The agent's Prometheus metrics: jobs run by operation and outcome with
//! their durations, jobs running, jobs refused (bad signature, replay), the
//! age of the last heartbeat, and failed heartbeats and fact updates. The
//! command serves them on `agent.metrics.listen` when set.

use std::sync::Mutex;
use std::time::Instant;

use osapi_api::ops::Operation;
use osapi_api::signing::Rejection;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

/// Upper bounds (seconds) of job duration buckets: 1 ms to 15 min.
const DURATION_BUCKETS: [f64; 15] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 300.0, 900.0,
];

/// Registers `metric` in `registry` and returns it (a handle to the same
/// values) for the code that updates it.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Why the agent refused a job (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No signature while the agent requires one.
    Unsigned,
    /// Signed by a key the agent does not trust.
    UnknownKey,
    /// Modified after signing.
    BadSignature,
    /// Taken before (a replayed message).
    Replay,
}

impl Refusal {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::UnknownKey => "unknown_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::Replay => "replay",
        }
    }
}

impl From<&Rejection> for Refusal {
    fn from(r: &Rejection) -> Self {
        match r {
            Rejection::Unsigned => Refusal::Unsigned,
            Rejection::UnknownKey(_) => Refusal::UnknownKey,
            Rejection::BadSignature => Refusal::BadSignature,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    operation: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// The label of an operation: its wire name, or `unknown` (a name the
/// agent does not implement cannot grow the label set).
pub fn operation_label(op: Option<Operation>) -> &'static str {
    op.map_or("unknown", Operation::as_str)
}

/// Every metric of one agent.
pub struct AgentMetrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    job_seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    running: Gauge,
    waiting: Gauge,
    rejected: Family<ReasonLabels, Counter>,
    heartbeat_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    heartbeat_errors: Counter,
    fact_errors: Counter,
    last_heartbeat: Mutex<Option<Instant>>,
}

impl AgentMetrics {
    /// Registers every metric under the `osapi_agent_` prefix; `version` is
    /// the agent's (`build_info`).
    pub fn new(version: &str) -> Self {
        let mut registry = Registry::with_prefix("osapi_agent");
        let r = &mut registry;
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: version.to_string(),
            })
            .set(1);
        add(r, "build_info", "The agent's version", build);
        AgentMetrics {
            jobs: add(
                r,
                "jobs",
                "Jobs this agent ran, by operation and outcome (completed, failed, cancelled, stopped, skipped, refused, duplicate)",
                Family::default(),
            ),
            job_seconds: add(
                r,
                "job_duration_seconds",
                "Time a job ran on this agent, by operation",
                Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
            ),
            running: add(r, "jobs_running", "Jobs running now", Gauge::default()),
            waiting: add(
                r,
                "jobs_waiting",
                "Jobs taken from this agent's own queue that wait for a free slot (agent.max_jobs)",
                Gauge::default(),
            ),
            rejected: add(
                r,
                "jobs_rejected",
                "Jobs refused before running, by reason (unsigned, unknown_key, bad_signature, replay)",
                Family::default(),
            ),
            heartbeat_age: add(
                r,
                "heartbeat_age_seconds",
                "Seconds since the last heartbeat the bus accepted",
                Gauge::default(),
            ),
            heartbeat_errors: add(
                r,
                "heartbeat_errors",
                "Heartbeats the bus did not accept",
                Counter::default(),
            ),
            fact_errors: add(
                r,
                "fact_errors",
                "Fact sources that could not be read, and fact updates that could not be published",
                Counter::default(),
            ),
            last_heartbeat: Mutex::new(None),
            registry,
        }
    }

    /// A job starts running; the gauge goes down when the guard is dropped.
    pub(crate) fn job_running(&self) -> RunningGuard {
        self.running.inc();
        RunningGuard(self.running.clone())
    }

    /// A job waits for a free slot; the gauge goes down when the guard is
    /// dropped.
    pub(crate) fn job_waiting(&self) -> RunningGuard {
        self.waiting.inc();
        RunningGuard(self.waiting.clone())
    }

    /// A job ended with `outcome` after `seconds`.
    pub(crate) fn job_done(&self, operation: &'static str, outcome: &'static str, seconds: f64) {
        self.jobs
            .get_or_create(&JobLabels { operation, outcome })
            .inc();
        self.job_seconds
            .get_or_create(&OperationLabels { operation })
            .observe(seconds);
    }

    /// A job ended with `outcome` without running (no duration observed).
    pub(crate) fn job_outcome(&self, operation: &'static str, outcome: &'static str) {
        self.jobs
            .get_or_create(&JobLabels { operation, outcome })
            .inc();
    }

    /// A job was refused.
    pub(crate) fn job_refused(&self, operation: &'static str, why: Refusal) {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
        self.jobs
            .get_or_create(&JobLabels {
                operation,
                outcome: "refused",
            })
            .inc();
    }

    /// The outcome of a heartbeat.
    pub(crate) fn heartbeat(&self, accepted: bool) {
        if accepted {
            *crate::runtime::lock(&self.last_heartbeat) = Some(Instant::now());
        } else {
            self.heartbeat_errors.inc();
        }
    }

    /// A fact source could not be read, or a fact update not published.
    pub(crate) fn fact_error(&self) {
        self.fact_errors.inc();
    }

    /// The text a scrape returns.
    pub fn render(&self) -> String {
        let age = crate::runtime::lock(&self.last_heartbeat)
            .map_or(f64::NAN, |at| at.elapsed().as_secs_f64());
        self.heartbeat_age.set(age);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Holds the running gauge up while a job runs.
/// Holds a gauge one higher while it lives.
pub(crate) struct RunningGuard(Gauge);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_jobs_refusals_and_heartbeats() {
        let m = AgentMetrics::new("0.1.0+test");
        {
            let _running = m.job_running();
            let _waiting = m.job_waiting();
            assert!(m.render().contains("osapi_agent_jobs_running 1"));
            assert!(m.render().contains("osapi_agent_jobs_waiting 1"));
            m.job_done("command.exec.execute", "completed", 0.02);
        }
        m.job_refused("command.exec.execute", Refusal::Replay);
        m.job_refused("unknown", Refusal::from(&Rejection::BadSignature));
        m.heartbeat(false);
        let before = m.render();
        assert!(
            before.contains("osapi_agent_heartbeat_age_seconds NaN"),
            "{before}"
        );
        m.heartbeat(true);
        let text = m.render();
        assert!(text.contains("osapi_agent_jobs_running 0"));
        assert!(text.contains("osapi_agent_jobs_waiting 0"));
        assert!(text.contains(
            "osapi_agent_jobs_total{operation=\"command.exec.execute\",outcome=\"completed\"} 1"
        ));
        assert!(text.contains("osapi_agent_jobs_rejected_total{reason=\"replay\"} 1"));
        assert!(text.contains("osapi_agent_jobs_rejected_total{reason=\"bad_signature\"} 1"));
        assert!(text.contains("osapi_agent_heartbeat_errors_total 1"));
        assert!(!text.contains("heartbeat_age_seconds NaN"));
        assert!(text.contains(
            "osapi_agent_job_duration_seconds_count{operation=\"command.exec.execute\"} 1"
        ));
    }
}
