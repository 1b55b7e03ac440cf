//! `network.ping.do`: ICMP echo to an IPv4 or IPv6 literal with surge-ping
//! (an unprivileged datagram ICMP socket where the kernel allows it, a raw
//! socket otherwise).
//!
//! Echo requests leave every `ping_interval`; each waits for its reply until
//! the operation's overall `ping_timeout`. When no reply at all arrived in
//! that time the operation fails (`ping operation timed out after 5s`);
//! otherwise the loss is reported.

use std::net::IpAddr;
use std::time::Duration;

use osapi_api::format::go_duration;
use osapi_api::ops::PingParams;
use osapi_api::results::PingResult;
use surge_ping::{Client, Config, ICMP, PingIdentifier, PingSequence, SurgeError};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{ProviderConfig, ProviderError};

/// Echo requests sent when the job does not say.
pub const DEFAULT_COUNT: u32 = 3;

/// Payload of each echo request.
const PAYLOAD: [u8; 56] = [0; 56];

/// Outcome of one echo request.
enum Echo {
    Reply(Duration),
    Lost,
}

/// `network.ping.do`.
pub async fn ping(
    params: &PingParams,
    config: &ProviderConfig,
) -> Result<PingResult, ProviderError> {
    let wrap = |e: String| ProviderError(format!("ping failed: {e}"));
    if params.address.is_empty() {
        return Err(wrap("missing ping address".into()));
    }
    let addr: IpAddr = params
        .address
        .parse()
        .map_err(|_| wrap(format!("address {:?} is not an IP address", params.address)))?;
    let count = params.count.unwrap_or(DEFAULT_COUNT);
    if count == 0 {
        return Err(wrap("count must be at least 1".into()));
    }

    let icmp = match addr {
        IpAddr::V4(_) => Config::default(),
        IpAddr::V6(_) => Config::builder().kind(ICMP::V6).build(),
    };
    let client =
        Client::new(&icmp).map_err(|e| wrap(format!("cannot open an ICMP socket: {e}")))?;
    let ident = PingIdentifier(uuid::Uuid::new_v4().as_u128() as u16);

    let start = Instant::now();
    let deadline = start + config.ping_timeout;
    let mut echoes: JoinSet<Result<Echo, String>> = JoinSet::new();
    let mut sent = 0u32;
    for seq in 0..count {
        let send_at = start + config.ping_interval * seq;
        if send_at >= deadline {
            break;
        }
        tokio::time::sleep_until(send_at).await;
        let client = client.clone();
        sent += 1;
        echoes.spawn(async move {
            let mut pinger = client.pinger(addr, ident).await;
            pinger.timeout(deadline.saturating_duration_since(Instant::now()));
            let seq = u16::try_from(seq).unwrap_or(u16::MAX);
            match pinger.ping(PingSequence(seq), &PAYLOAD).await {
                Ok((_, rtt)) => Ok(Echo::Reply(rtt)),
                Err(SurgeError::Timeout { .. }) => Ok(Echo::Lost),
                Err(e) => Err(format!("echo request to {addr} failed: {e}")),
            }
        });
    }

    let mut rtts: Vec<Duration> = Vec::new();
    let mut first_error = None;
    while let Some(joined) = echoes.join_next().await {
        match joined {
            Ok(Ok(Echo::Reply(rtt))) => rtts.push(rtt),
            Ok(Ok(Echo::Lost)) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(format!("echo task failed: {e}"));
            }
        }
    }

    summarize(sent, &rtts, first_error, config.ping_timeout).map_err(wrap)
}

/// Builds the result from the echoes sent and the round trips of the
/// replies. No reply at all is an error: the first echo error if there was
/// one, otherwise a timeout.
fn summarize(
    sent: u32,
    rtts: &[Duration],
    first_error: Option<String>,
    timeout: Duration,
) -> Result<PingResult, String> {
    if rtts.is_empty() || sent == 0 {
        return Err(first_error.unwrap_or_else(|| {
            format!("ping operation timed out after {}", go_duration(timeout))
        }));
    }
    let received = u32::try_from(rtts.len()).unwrap_or(u32::MAX).min(sent);
    let nanos = |d: &Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let total: u128 = rtts.iter().map(Duration::as_nanos).sum();
    Ok(PingResult {
        packets_sent: sent,
        packets_received: received,
        packet_loss: f64::from(sent - received) * 100.0 / f64::from(sent),
        min_rtt_ns: rtts.iter().map(nanos).min().unwrap_or(0),
        avg_rtt_ns: u64::try_from(total / rtts.len() as u128).unwrap_or(u64::MAX),
        max_rtt_ns: rtts.iter().map(nanos).max().unwrap_or(0),
        changed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(address: &str) -> PingParams {
        PingParams {
            address: address.into(),
            count: None,
        }
    }

    #[tokio::test]
    async fn ping_loopback_v4() {
        let r = ping(&params("127.0.0.1"), &ProviderConfig::default())
            .await
            .unwrap();
        assert_eq!(r.packets_sent, 3);
        assert_eq!(r.packets_received, 3);
        assert_eq!(r.packet_loss, 0.0);
        assert!(r.min_rtt_ns > 0);
        assert!(r.min_rtt_ns <= r.avg_rtt_ns && r.avg_rtt_ns <= r.max_rtt_ns);
        assert!(!r.changed);
    }

    #[tokio::test]
    async fn ping_loopback_v6() {
        let mut p = params("::1");
        p.count = Some(2);
        let r = ping(&p, &ProviderConfig::default()).await.unwrap();
        assert_eq!((r.packets_sent, r.packets_received), (2, 2));
        assert!(r.avg_rtt_ns > 0);
    }

    #[tokio::test]
    async fn rejects_bad_addresses() {
        let config = ProviderConfig::default();
        let err = ping(&params("example.com"), &config).await.unwrap_err();
        assert_eq!(
            err.0,
            "ping failed: address \"example.com\" is not an IP address"
        );
        let err = ping(&params(""), &config).await.unwrap_err();
        assert_eq!(err.0, "ping failed: missing ping address");
        let mut p = params("127.0.0.1");
        p.count = Some(0);
        assert_eq!(
            ping(&p, &config).await.unwrap_err().0,
            "ping failed: count must be at least 1"
        );
    }

    #[tokio::test]
    async fn count_is_bounded_by_the_overall_timeout() {
        let config = ProviderConfig {
            ping_timeout: Duration::from_millis(300),
            ping_interval: Duration::from_millis(100),
            ..Default::default()
        };
        let mut p = params("127.0.0.1");
        p.count = Some(50);
        let started = std::time::Instant::now();
        let r = ping(&p, &config).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        // Echoes leave at 0, 100 and 200 ms; later ones would pass the deadline.
        assert_eq!(r.packets_sent, 3);
        assert!(r.packets_received >= 1);
    }

    #[test]
    fn summary_timeout_and_loss() {
        let five = Duration::from_secs(5);
        assert_eq!(
            summarize(3, &[], None, five).unwrap_err(),
            "ping operation timed out after 5s"
        );
        assert_eq!(
            summarize(
                3,
                &[],
                Some("echo request to ::2 failed: boom".into()),
                five
            )
            .unwrap_err(),
            "echo request to ::2 failed: boom"
        );
        let r = summarize(
            3,
            &[Duration::from_millis(1), Duration::from_millis(3)],
            None,
            five,
        )
        .unwrap();
        assert_eq!((r.packets_sent, r.packets_received), (3, 2));
        assert!((r.packet_loss - 100.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            (r.min_rtt_ns, r.avg_rtt_ns, r.max_rtt_ns),
            (1_000_000, 2_000_000, 3_000_000)
        );
    }
}
