//! The controller's Prometheus metrics, served as text (exposition format
//! 0.0.4) on `telemetry.metrics.path` (`/metrics`): HTTP requests by route
//! and status with latencies, authentication failures by reason, jobs
//! created and finished by operation and target kind with their latencies
//! (submit → first host answer → terminal), hosts lost, long-poll waiters,
//! bus errors and reconnects, and agents by state.
//!
//! Job latencies are measured by the controller that created the job (it
//! knows when it was submitted); every controller of a fleet counts only its
//! own jobs, so the fleet's figures are the sum over controllers.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use osapi_api::agent::AgentState;
use osapi_api::job::JobStatus;
use osapi_api::target::Target;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use uuid::Uuid;

/// Most hostnames remembered as lost (a fleet churning through names
/// cannot grow the set without bound).
const MAX_LOST: usize = 65_536;

/// Upper bounds (seconds) of request and job latency buckets: 1 ms to 5 min.
const LATENCY_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// Registers `metric` in `registry` and returns it (a handle to the same
/// values) for the code that updates it.
fn add<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// Why a request was refused by authentication or authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    /// No `Authorization: Bearer` header.
    MissingToken,
    /// A token that does not verify (signature, claims, unknown role).
    InvalidToken,
    /// A token past its `exp`.
    ExpiredToken,
    /// A valid token without the permission the route needs (403).
    Forbidden,
}

impl AuthFailure {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::MissingToken => "missing_token",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::ExpiredToken => "expired_token",
            AuthFailure::Forbidden => "forbidden",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    operation: String,
    target_kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    operation: String,
    target_kind: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// A job this controller created, followed until it ends.
struct Followed {
    submitted: Instant,
    operation: String,
    target_kind: &'static str,
    answered: bool,
}

/// The kind of a job target, for the `target_kind` label: `any`, `all`,
/// `host`, `hosts` or `label`.
pub fn target_kind(target: &Target) -> &'static str {
    match target {
        Target::Any => "any",
        Target::All => "all",
        Target::Host(_) => "host",
        Target::Hosts(_) => "hosts",
        Target::Label { .. } => "label",
    }
}

/// Every metric of one controller.
pub struct ControllerMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    auth_failures: Family<ReasonLabels, Counter>,
    jobs_created: Family<JobLabels, Counter>,
    jobs_finished: Family<FinishedLabels, Counter>,
    first_answer_seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    job_seconds: Family<OperationLabels, Histogram, fn() -> Histogram>,
    hosts_lost: Counter,
    waiters: Gauge,
    bus_errors: Counter,
    bus_reconnects: Counter,
    agents: Family<StateLabels, Gauge>,
    followed: Mutex<HashMap<Uuid, Followed>>,
    /// Agents that left the registry and have not come back.
    departed: Mutex<HashSet<String>>,
    /// Readings of the bus's own counters at the last scrape.
    seen_bus_errors: AtomicU64,
    seen_reconnects: AtomicU64,
}

impl ControllerMetrics {
    /// Registers every metric under the `osapi_` prefix; `version` is the
    /// controller's (`build_info`).
    pub fn new(version: &str) -> Self {
        let mut registry = Registry::with_prefix("osapi");
        let r = &mut registry;
        let build = Family::<VersionLabels, Gauge>::default();
        build
            .get_or_create(&VersionLabels {
                version: version.to_string(),
            })
            .set(1);
        add(r, "build_info", "The controller's version", build);
        ControllerMetrics {
            requests: add(
                r,
                "http_requests",
                "HTTP requests answered, by method, route and status",
                Family::default(),
            ),
            request_seconds: add(
                r,
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method and route",
                Family::new_with_constructor(latency_histogram),
            ),
            auth_failures: add(
                r,
                "auth_failures",
                "Requests refused by authentication (401) or authorisation (403), by reason",
                Family::default(),
            ),
            jobs_created: add(
                r,
                "jobs_created",
                "Jobs this controller created, by operation and target kind",
                Family::default(),
            ),
            jobs_finished: add(
                r,
                "jobs_finished",
                "Jobs this controller created that ended, by operation, target kind and status (completed, failed, partial_failure)",
                Family::default(),
            ),
            first_answer_seconds: add(
                r,
                "job_first_answer_seconds",
                "Time from a job's submission to its first host answer, by operation",
                Family::new_with_constructor(latency_histogram),
            ),
            job_seconds: add(
                r,
                "job_duration_seconds",
                "Time from a job's submission to its end, by operation",
                Family::new_with_constructor(latency_histogram),
            ),
            hosts_lost: add(
                r,
                "hosts_lost",
                "Hosts recorded lost by this controller (agent gone or restarted while a job waited for it)",
                Counter::default(),
            ),
            waiters: add(
                r,
                "long_poll_waiters",
                "Requests waiting for a job to end (GET /job/{id}?wait=…, synchronous node routes)",
                Gauge::default(),
            ),
            bus_errors: add(
                r,
                "bus_errors",
                "Errors from the bus (NATS or memory) in this process",
                Counter::default(),
            ),
            bus_reconnects: add(
                r,
                "bus_reconnects",
                "Times the connection to NATS was re-established",
                Counter::default(),
            ),
            agents: add(
                r,
                "agents",
                "Agents by state: ready, draining, cordoned (registered) and lost (seen by this controller, registered no longer)",
                Family::default(),
            ),
            followed: Mutex::new(HashMap::new()),
            departed: Mutex::new(HashSet::new()),
            seen_bus_errors: AtomicU64::new(0),
            seen_reconnects: AtomicU64::new(0),
            registry,
        }
    }

    /// Counts an answered request; `route` is the route's template
    /// (`/job/{id}`), never the path a client sent.
    pub fn request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_string(),
                route: route.to_string(),
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// Counts a refused request.
    pub fn auth_failure(&self, why: AuthFailure) {
        self.auth_failures
            .get_or_create(&ReasonLabels {
                reason: why.as_str(),
            })
            .inc();
    }

    /// Follows a job this controller is about to create (before it is
    /// stored, so that no news of it can come first).
    pub fn job_submitted(&self, id: Uuid, operation: &str, target_kind: &'static str) {
        crate::lock(&self.followed).insert(
            id,
            Followed {
                submitted: Instant::now(),
                operation: operation.to_string(),
                target_kind,
                answered: false,
            },
        );
    }

    /// Counts a job stored (after [`ControllerMetrics::job_submitted`]).
    pub fn job_created(&self, operation: &str, target_kind: &'static str) {
        self.jobs_created
            .get_or_create(&JobLabels {
                operation: operation.to_string(),
                target_kind,
            })
            .inc();
    }

    /// What the job index learnt of a job: its status and whether any host
    /// answered. Only jobs this controller created are measured.
    pub fn job_progress(&self, id: Uuid, status: JobStatus, answered: bool) {
        let mut followed = crate::lock(&self.followed);
        let Some(job) = followed.get_mut(&id) else {
            return;
        };
        let elapsed = job.submitted.elapsed().as_secs_f64();
        if answered && !job.answered {
            job.answered = true;
            self.first_answer_seconds
                .get_or_create(&OperationLabels {
                    operation: job.operation.clone(),
                })
                .observe(elapsed);
        }
        if !status.is_terminal() {
            return;
        }
        if let Some(job) = followed.remove(&id) {
            self.jobs_finished
                .get_or_create(&FinishedLabels {
                    operation: job.operation.clone(),
                    target_kind: job.target_kind,
                    status: status.as_str(),
                })
                .inc();
            self.job_seconds
                .get_or_create(&OperationLabels {
                    operation: job.operation,
                })
                .observe(elapsed);
        }
    }

    /// Stops following a job (not stored, deleted, or expired from the bus).
    pub fn job_forgotten(&self, id: Uuid) {
        crate::lock(&self.followed).remove(&id);
    }

    /// After the job index was loaded afresh: stops following jobs it no
    /// longer holds (deleted or expired while the feed was away), except
    /// those submitted in the last minute (the load may predate them).
    pub fn forget_missing(&self, held: impl Fn(&Uuid) -> bool) {
        crate::lock(&self.followed).retain(|id, job| {
            held(id) || job.submitted.elapsed() < std::time::Duration::from_secs(60)
        });
    }

    /// Counts a host recorded lost.
    pub fn host_lost(&self) {
        self.hosts_lost.inc();
    }

    /// An agent left the registry (stopped, or its heartbeat expired).
    pub fn agent_left(&self, hostname: &str) {
        let mut departed = crate::lock(&self.departed);
        if departed.len() < MAX_LOST {
            departed.insert(hostname.to_string());
        }
    }

    /// An agent (re)joined the registry.
    pub fn agent_joined(&self, hostname: &str) {
        crate::lock(&self.departed).remove(hostname);
    }

    /// A request starts waiting for a job; the gauge goes down when the
    /// returned guard is dropped.
    pub fn waiting(&self) -> WaitingGuard {
        self.waiters.inc();
        WaitingGuard(self.waiters.clone())
    }

    /// The text a scrape returns, with the values read at scrape time
    /// brought up to date: the state of each registered agent, and the
    /// bus's reconnections so far.
    pub fn render(&self, agents: impl IntoIterator<Item = AgentState>, reconnects: u64) -> String {
        let mut counts = [0i64; 3];
        for state in agents {
            counts[state_index(state)] += 1;
        }
        for state in [
            AgentState::Ready,
            AgentState::Draining,
            AgentState::Cordoned,
        ] {
            self.agents
                .get_or_create(&StateLabels {
                    state: state_label(state),
                })
                .set(counts[state_index(state)]);
        }
        let lost = crate::lock(&self.departed).len();
        self.agents
            .get_or_create(&StateLabels { state: "lost" })
            .set(lost as i64);
        advance(
            &self.bus_errors,
            osapi_bus::error_count(),
            &self.seen_bus_errors,
        );
        advance(&self.bus_reconnects, reconnects, &self.seen_reconnects);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

/// Moves `counter` up by what `total` (a process-wide count) gained since
/// `seen`.
fn advance(counter: &Counter, total: u64, seen: &AtomicU64) {
    let before = seen.swap(total, Ordering::Relaxed);
    if total > before {
        counter.inc_by(total - before);
    }
}

fn state_index(state: AgentState) -> usize {
    match state {
        AgentState::Ready => 0,
        AgentState::Draining => 1,
        AgentState::Cordoned => 2,
    }
}

fn state_label(state: AgentState) -> &'static str {
    match state {
        AgentState::Ready => "ready",
        AgentState::Draining => "draining",
        AgentState::Cordoned => "cordoned",
    }
}

/// Holds the long-poll gauge up while a request waits.
pub struct WaitingGuard(Gauge);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_followed_job_is_measured_once_from_submission_to_end() {
        let m = ControllerMetrics::new("0.1.0+test");
        let id = Uuid::new_v4();
        m.job_submitted(id, "node.hostname.get", "all");
        m.job_created("node.hostname.get", "all");
        m.job_progress(id, JobStatus::Processing, true);
        m.job_progress(id, JobStatus::Processing, true);
        m.job_progress(id, JobStatus::Completed, true);
        // Seen again (another feed update): not counted twice.
        m.job_progress(id, JobStatus::Completed, true);
        // Another controller's job: not measured here.
        m.job_progress(Uuid::new_v4(), JobStatus::Failed, true);
        let text = m.render([], 0);
        assert!(text.contains(
            "osapi_jobs_created_total{operation=\"node.hostname.get\",target_kind=\"all\"} 1"
        ));
        assert!(text.contains("osapi_jobs_finished_total{operation=\"node.hostname.get\",target_kind=\"all\",status=\"completed\"} 1"), "{text}");
        assert!(
            text.contains(
                "osapi_job_first_answer_seconds_count{operation=\"node.hostname.get\"} 1"
            )
        );
        assert!(
            text.contains("osapi_job_duration_seconds_count{operation=\"node.hostname.get\"} 1")
        );
        assert!(!text.contains("status=\"failed\""));
    }

    #[test]
    fn scrape_time_values_are_brought_up_to_date() {
        let m = ControllerMetrics::new("0.1.0+test");
        let guard = m.waiting();
        for host in ["a", "b", "c", "d"] {
            m.agent_left(host);
        }
        m.agent_joined("d");
        let text = m.render(
            [AgentState::Ready, AgentState::Cordoned, AgentState::Ready],
            4,
        );
        assert!(text.contains("osapi_long_poll_waiters 1"));
        assert!(text.contains("osapi_agents{state=\"ready\"} 2"));
        assert!(text.contains("osapi_agents{state=\"draining\"} 0"));
        assert!(text.contains("osapi_agents{state=\"cordoned\"} 1"));
        assert!(text.contains("osapi_agents{state=\"lost\"} 3"));
        assert!(text.contains("osapi_bus_reconnects_total 4"));
        drop(guard);
        let text = m.render([], 4);
        assert!(text.contains("osapi_long_poll_waiters 0"));
        assert!(text.contains("osapi_bus_reconnects_total 4"));
        assert!(text.contains("osapi_build_info{version="));
    }
}
