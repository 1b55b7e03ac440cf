//! Turns what is recorded about a job (record, events, responses) into the
//! REST view: computed status, `result` or `responses`, `agent_states`,
//! `timeline`. Pure functions, no I/O.
//!
//! Rules (ours, on top of upstream's):
//! * the hosts that must answer are fixed at creation (`expected_hosts`); for
//!   `_any` it is the agent that took the job;
//! * a host's first terminal event wins (completed, failed, lost, expired);
//! * unicast jobs (`_any`, a hostname) answer with `result`, broadcast jobs
//!   (`_all`, labels) with `responses`, whatever the number of answers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use osapi_api::format::{go_duration, rfc3339, rfc3339_seconds};
use osapi_api::job::{AgentJobState, HostResponse, JobDetail, JobStatus, JobTimelineEntry};
use osapi_api::records::{API_HOST, AgentResponse, EventKind, JobEvent, ResponseStatus};
use osapi_api::target::{Target, sanitize_host};
use osapi_bus::JobSnapshot;
use time::OffsetDateTime;
use uuid::Uuid;

/// Pseudo-host of controller events about an `_any` job no agent took.
pub const ANY_HOST: &str = Target::ANY;

/// What the events say about one host.
#[derive(Debug, Clone, Default)]
pub struct HostTrack {
    /// Latest event kind (write order).
    pub last: Option<EventKind>,
    /// First terminal event and its error.
    pub terminal: Option<(EventKind, Option<String>, OffsetDateTime)>,
    /// Instance that acknowledged or started the job.
    pub instance: Option<Uuid>,
    /// First `started` time.
    pub started: Option<OffsetDateTime>,
}

/// Per-host tracks, keyed by raw hostname (controller events excluded).
pub fn tracks(events: &[Arc<JobEvent>]) -> BTreeMap<String, HostTrack> {
    let mut out: BTreeMap<String, HostTrack> = BTreeMap::new();
    for e in events {
        if e.hostname == API_HOST || e.hostname.is_empty() {
            continue;
        }
        let t = out.entry(e.hostname.clone()).or_default();
        t.last = Some(e.event);
        if e.instance_id.is_some() && t.instance.is_none() {
            t.instance = e.instance_id;
        }
        if e.event == EventKind::Started && t.started.is_none() {
            t.started = Some(e.timestamp);
        }
        if e.event.is_terminal() && t.terminal.is_none() {
            t.terminal = Some((e.event, e.error.clone(), e.timestamp));
        }
    }
    out
}

/// Hosts that must answer: the recorded ones, or for `_any` the agent that took it.
pub fn expected_hosts(snapshot: &JobSnapshot) -> Vec<String> {
    if snapshot.record.is_any() {
        return snapshot
            .events
            .iter()
            .find(|e| e.event == EventKind::Acknowledged && e.hostname != ANY_HOST)
            .map(|e| vec![e.hostname.clone()])
            .unwrap_or_default();
    }
    snapshot.record.expected_hosts.clone()
}

/// A host that has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Hostname, or [`ANY_HOST`] for an `_any` job nobody took.
    pub hostname: String,
    /// Instance that took the job, if one did.
    pub instance: Option<Uuid>,
}

/// Hosts still owing an answer.
pub fn pending(snapshot: &JobSnapshot) -> Vec<Pending> {
    let tracks = tracks(&snapshot.events);
    let expected = expected_hosts(snapshot);
    if expected.is_empty() && snapshot.record.is_any() {
        let settled = tracks.get(ANY_HOST).is_some_and(|t| t.terminal.is_some());
        return if settled {
            Vec::new()
        } else {
            vec![Pending {
                hostname: ANY_HOST.to_string(),
                instance: None,
            }]
        };
    }
    expected
        .into_iter()
        .filter_map(|h| {
            let t = tracks.get(&h);
            if t.is_some_and(|t| t.terminal.is_some()) {
                return None;
            }
            Some(Pending {
                instance: t.and_then(|t| t.instance),
                hostname: h,
            })
        })
        .collect()
}

fn message(e: &JobEvent) -> String {
    let h = &e.hostname;
    match e.event {
        EventKind::Submitted => "Job submitted to queue".to_string(),
        EventKind::Acknowledged => format!("Job acknowledged by agent {h}"),
        EventKind::Started => format!("Job processing started on {h}"),
        EventKind::Completed => format!("Job completed successfully on {h}"),
        EventKind::Failed => format!("Job failed on {h}"),
        EventKind::Retried => match e.data.get("new_job_id").and_then(|v| v.as_str()) {
            Some(id) => format!("Job retried as {id}"),
            None => "Job retried".to_string(),
        },
        EventKind::Lost => format!("Agent {h} lost while the job was pending"),
        EventKind::Expired => format!("Job deadline passed before {h} answered"),
        EventKind::Cancelled => format!("Job cancelled before {h} answered"),
    }
}

/// The `submitted` event, derived from the record (not stored: one write less per job).
fn submitted(record: &osapi_api::records::JobRecord) -> JobEvent {
    JobEvent {
        job_id: record.id,
        event: EventKind::Submitted,
        hostname: API_HOST.to_string(),
        timestamp: record.created,
        instance_id: None,
        error: None,
        data: serde_json::json!({"target_hostname": record.target, "operation_type": record.op_type}),
    }
}

/// What the events and responses say about a job as a whole.
struct Outcome {
    tracks: BTreeMap<String, HostTrack>,
    expected: Vec<String>,
    /// One answer per expected host that has settled, in `expected` order.
    answers: Vec<(String, HostResponse)>,
    /// Why an `_any` job nobody took ended, if it did.
    any_expired: Option<String>,
    status: JobStatus,
}

fn outcome(snapshot: &JobSnapshot) -> Outcome {
    let record = &snapshot.record;
    let tracks = tracks(&snapshot.events);
    let expected = expected_hosts(snapshot);

    // A host's first answer stands, as its first terminal event does (a
    // replayed message the agent refused later must not replace it).
    let mut first: BTreeMap<&str, &AgentResponse> = BTreeMap::new();
    for r in snapshot.responses.iter().map(|r| r.as_ref()) {
        first.entry(r.hostname.as_str()).or_insert(r);
    }

    // One answer per expected host that has settled.
    let mut answers: Vec<(String, HostResponse)> = Vec::new();
    let (mut ok, mut bad) = (0usize, 0usize);
    for host in &expected {
        let Some((kind, error, _)) = tracks.get(host).and_then(|t| t.terminal.clone()) else {
            continue;
        };
        let response = first.get(host.as_str());
        let answer = match (kind, response) {
            (EventKind::Completed, Some(r)) if r.status == ResponseStatus::Completed => {
                ok += 1;
                HostResponse {
                    status: "completed".into(),
                    hostname: host.clone(),
                    data: r.data.clone(),
                    error: None,
                    changed: Some(r.changed),
                }
            }
            _ => {
                bad += 1;
                HostResponse {
                    status: "failed".into(),
                    hostname: host.clone(),
                    data: response.and_then(|r| r.data.clone()),
                    error: error
                        .or_else(|| response.and_then(|r| r.error.clone()))
                        .or_else(|| Some(format!("job {} on {host}", kind.as_str()))),
                    changed: response.map(|r| r.changed),
                }
            }
        };
        answers.push((host.clone(), answer));
    }

    let agent_events = snapshot.events.iter().any(|e| e.hostname != API_HOST);
    let any_expired = tracks
        .get(ANY_HOST)
        .and_then(|t| t.terminal.clone())
        .map(|(_, err, _)| err.unwrap_or_else(|| "no agent took the job".into()));
    let all_settled = answers.len() == expected.len();
    let status = if let Some(_err) = &any_expired
        && expected.is_empty()
    {
        JobStatus::Failed
    } else if expected.is_empty() && record.is_any() {
        JobStatus::Submitted
    } else if !all_settled {
        if agent_events {
            JobStatus::Processing
        } else {
            JobStatus::Submitted
        }
    } else if bad == 0 {
        JobStatus::Completed
    } else if ok == 0 {
        JobStatus::Failed
    } else {
        JobStatus::PartialFailure
    };
    Outcome {
        tracks,
        expected,
        answers,
        any_expired,
        status,
    }
}

/// The computed status alone (what listing and counting need).
pub fn status(snapshot: &JobSnapshot) -> JobStatus {
    outcome(snapshot).status
}

/// Builds the REST view. `full` adds `responses`, `agent_states` and `timeline`
/// (the list endpoint leaves them out).
pub fn build(snapshot: &JobSnapshot, full: bool) -> JobDetail {
    let record = &snapshot.record;
    let broadcast = Target::parse(&record.target).is_ok_and(|t| t.is_broadcast());
    let Outcome {
        tracks,
        expected,
        answers,
        any_expired,
        status,
    } = outcome(snapshot);

    let last_settled = snapshot
        .events
        .iter()
        .rfind(|e| e.event.is_terminal() && e.hostname != API_HOST);
    let error = (status == JobStatus::Failed).then(|| {
        any_expired.unwrap_or_else(|| {
            snapshot
                .events
                .iter()
                .filter(|e| e.event.is_terminal() && e.event != EventKind::Completed)
                .filter_map(|e| e.error.clone())
                .next_back()
                .unwrap_or_else(|| "job failed".to_string())
        })
    });
    let changed = answers
        .iter()
        .any(|(_, a)| a.changed == Some(true) && a.status == "completed");

    let mut detail = JobDetail {
        id: Some(record.id),
        status: Some(status),
        created: Some(rfc3339_seconds(record.created)),
        operation: Some(record.operation.clone()),
        error,
        hostname: last_settled
            .filter(|e| e.hostname != ANY_HOST)
            .map(|e| e.hostname.clone()),
        updated_at: snapshot
            .events
            .iter()
            .map(|e| e.timestamp)
            .max()
            .map(rfc3339),
        result: None,
        responses: None,
        agent_states: None,
        timeline: None,
        target: Some(record.target.clone()),
        expected_hosts: Some(expected),
        changed: Some(changed),
    };

    if broadcast {
        if full {
            detail.responses = Some(
                answers
                    .into_iter()
                    .map(|(h, a)| (sanitize_host(&h), a))
                    .collect(),
            );
        }
    } else if let Some((_, a)) = answers.into_iter().next()
        && a.status == "completed"
    {
        detail.result = a.data;
    }

    if full {
        detail.agent_states = Some(
            tracks
                .iter()
                .filter(|(h, _)| h.as_str() != ANY_HOST)
                .map(|(h, t)| {
                    let (status, error, finished) = match &t.terminal {
                        Some((kind, err, at)) => (kind.as_str(), err.clone(), Some(*at)),
                        None => (
                            t.last.map(EventKind::as_str).unwrap_or("pending"),
                            None,
                            None,
                        ),
                    };
                    let duration = match (t.started, finished) {
                        (Some(s), Some(f)) if f >= s => {
                            Some(go_duration(Duration::try_from(f - s).unwrap_or_default()))
                        }
                        _ => None,
                    };
                    (
                        h.clone(),
                        AgentJobState {
                            status: status.to_string(),
                            error,
                            duration,
                        },
                    )
                })
                .collect(),
        );
        let first = submitted(record);
        let mut events: Vec<&JobEvent> = std::iter::once(&first)
            .chain(snapshot.events.iter().map(|e| e.as_ref()))
            .collect();
        events.sort_by_key(|e| e.timestamp);
        detail.timeline = Some(
            events
                .into_iter()
                .map(|e| JobTimelineEntry {
                    timestamp: rfc3339(e.timestamp),
                    event: e.event.as_str().to_string(),
                    hostname: e.hostname.clone(),
                    message: message(e),
                    error: e.error.clone(),
                })
                .collect(),
        );
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;
    use osapi_api::ops::JobClass;
    use osapi_api::records::JobRecord;

    fn snapshot(target: &str, expected: &[&str]) -> JobSnapshot {
        JobSnapshot {
            record: Arc::new(JobRecord {
                id: Uuid::new_v4(),
                created: OffsetDateTime::now_utc(),
                operation: serde_json::json!({"type": "node.hostname.get"}),
                op_type: "node.hostname.get".into(),
                class: JobClass::Query,
                target: target.into(),
                expected_hosts: expected.iter().map(|s| s.to_string()).collect(),
                deadline: OffsetDateTime::now_utc() + Duration::from_secs(60),
                retry_of: None,
                signature: None,
                trace_parent: None,
            }),
            events: vec![],
            responses: vec![],
        }
    }

    fn ev(s: &mut JobSnapshot, e: JobEvent) {
        s.events.push(Arc::new(e));
    }

    fn answer(s: &mut JobSnapshot, host: &str, ok: bool) {
        let id = s.record.id;
        ev(s, JobEvent::now(id, EventKind::Acknowledged, host));
        ev(s, JobEvent::now(id, EventKind::Started, host));
        s.responses.push(Arc::new(AgentResponse {
            job_id: id,
            hostname: host.into(),
            status: if ok {
                ResponseStatus::Completed
            } else {
                ResponseStatus::Failed
            },
            data: ok.then(|| serde_json::json!({"hostname": host})),
            changed: false,
            error: (!ok).then(|| "boom".to_string()),
            timestamp: OffsetDateTime::now_utc(),
            data_parts: None,
        }));
        let kind = if ok {
            EventKind::Completed
        } else {
            EventKind::Failed
        };
        let mut e = JobEvent::now(id, kind, host);
        if !ok {
            e = e.with_error("boom");
        }
        ev(s, e);
    }

    #[test]
    fn any_job_lifecycle() {
        let mut s = snapshot("_any", &[]);
        assert_eq!(build(&s, true).status, Some(JobStatus::Submitted));
        assert_eq!(
            pending(&s),
            vec![Pending {
                hostname: ANY_HOST.into(),
                instance: None
            }]
        );
        answer(&mut s, "web-01", true);
        let d = build(&s, true);
        assert_eq!(d.status, Some(JobStatus::Completed));
        assert_eq!(d.result.unwrap()["hostname"], "web-01");
        assert_eq!(d.hostname.as_deref(), Some("web-01"));
        assert_eq!(d.agent_states.unwrap()["web-01"].status, "completed");
        assert_eq!(d.timeline.unwrap().len(), 4);
        assert!(pending(&s).is_empty());
    }

    #[test]
    fn broadcast_partial_failure_is_terminal_with_responses() {
        let mut s = snapshot("_all", &["web-01", "db.01"]);
        answer(&mut s, "web-01", true);
        let d = build(&s, true);
        assert_eq!(d.status, Some(JobStatus::Processing));
        assert_eq!(pending(&s).len(), 1);
        answer(&mut s, "db.01", false);
        let d = build(&s, true);
        assert_eq!(d.status, Some(JobStatus::PartialFailure));
        assert!(d.status.unwrap().is_terminal());
        let r = d.responses.unwrap();
        assert_eq!(r["db_01"].error.as_deref(), Some("boom"));
        assert_eq!(r["db_01"].hostname, "db.01");
        assert_eq!(r["web-01"].status, "completed");
        assert!(d.result.is_none());
        assert!(d.error.is_none());
    }

    #[test]
    fn lost_host_fails_the_job() {
        let mut s = snapshot("web-01", &["web-01"]);
        let id = s.record.id;
        ev(&mut s, JobEvent::now(id, EventKind::Started, "web-01"));
        ev(
            &mut s,
            JobEvent::now(id, EventKind::Lost, "web-01").with_error("agent web-01 lost"),
        );
        let d = build(&s, true);
        assert_eq!(d.status, Some(JobStatus::Failed));
        assert_eq!(d.error.as_deref(), Some("agent web-01 lost"));
        assert_eq!(d.agent_states.unwrap()["web-01"].status, "lost");
    }

    #[test]
    fn broadcast_to_nobody_completes() {
        let s = snapshot("_all", &[]);
        let d = build(&s, true);
        assert_eq!(d.status, Some(JobStatus::Completed));
        assert_eq!(d.responses.unwrap().len(), 0);
    }

    #[test]
    fn any_expired_without_taker_fails() {
        let mut s = snapshot("_any", &[]);
        let id = s.record.id;
        ev(
            &mut s,
            JobEvent::now(id, EventKind::Expired, ANY_HOST).with_error("no agent took it"),
        );
        let d = build(&s, false);
        assert_eq!(d.status, Some(JobStatus::Failed));
        assert_eq!(d.error.as_deref(), Some("no agent took it"));
        assert!(pending(&s).is_empty());
    }
}
