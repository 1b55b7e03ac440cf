//! Waiting for jobs: long-poll with `?wait=`, jittered exponential back-off
//! when the server answers before the wait (upstream servers ignore it), and
//! riding out a controller restart (transport errors are retried until the
//! deadline: the job lives on in the bus).

use std::time::Duration;

use osapi_api::job::JobDetail;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{Backoff, Client, ClientError, Result};

/// How [`Client::wait_job`] polls.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitPolicy {
    /// Longest single long-poll (default 30 s).
    pub long_poll: Duration,
    /// Pauses between polls when the server does not hold requests
    /// (default: 50 ms growing by 1.5× up to 1 s, jitter included).
    pub backoff: Backoff,
    /// How long the controller may stay unreachable during a wait (default 2 min).
    pub max_outage: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            long_poll: Duration::from_secs(30),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(1))
                .multiplier(1.5),
            max_outage: Duration::from_secs(120),
        }
    }
}

pub(crate) async fn wait_job(
    client: &Client,
    id: Uuid,
    timeout: Duration,
    policy: &WaitPolicy,
) -> Result<JobDetail> {
    let end = Instant::now() + timeout;
    let mut attempt = 0u32;
    let mut outage_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let remaining = end.saturating_duration_since(now);
        let wait = remaining.min(policy.long_poll);
        let detail = match client.job_wait(id, wait).await {
            Ok(d) => {
                outage_since = None;
                d
            }
            // The controller restarted or is briefly unreachable: the job
            // lives on in the bus, so keep waiting until the deadline.
            Err(e)
                if transient(&e)
                    && Instant::now() < end
                    && outage_since.get_or_insert_with(Instant::now).elapsed()
                        < policy.max_outage =>
            {
                back_off(policy, &mut attempt, end).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let status = detail.status();
        if status.is_terminal() {
            return Ok(detail);
        }
        if Instant::now() >= end {
            return Err(ClientError::Timeout {
                message: format!(
                    "job {id} still {status} after {:.1}s",
                    timeout.as_secs_f64()
                ),
            });
        }
        // Answered well before the wait ended: the server does not long-poll.
        if now.elapsed() < wait / 2 {
            back_off(policy, &mut attempt, end).await;
        }
    }
}

/// Sleeps the back-off for poll number `attempt` (never past `end`) and counts it.
async fn back_off(policy: &WaitPolicy, attempt: &mut u32, end: Instant) {
    let delay = policy
        .backoff
        .delay(*attempt)
        .min(end.saturating_duration_since(Instant::now()));
    *attempt = attempt.saturating_add(1);
    tokio::time::sleep(delay).await;
}

/// Errors worth waiting out: no connection, or a gateway/unavailable status.
fn transient(e: &ClientError) -> bool {
    matches!(e, ClientError::Transport { .. }) || matches!(e.status(), Some(502..=504))
}
