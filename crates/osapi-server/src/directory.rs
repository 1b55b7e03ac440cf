//! The controller's view of the fleet: live registrations merged with facts
//! and drain flags, cached briefly (agents joining or leaving invalidate the
//! cache at once), and target resolution against it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use osapi_api::agent::{AgentInfo, AgentState, AgentStatus, NodeCondition, condition};
use osapi_api::format::human_uptime;
use osapi_api::records::{AgentRegistration, Facts};
use osapi_api::target::{Target, sanitize_key};
use osapi_bus::{Bus, BusError, BusResult};

use crate::error::ApiError;
use crate::version::version_skew;

/// One live agent as the controller sees it.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// Its latest registration.
    pub registration: AgentRegistration,
    /// Its latest facts.
    pub facts: Option<Facts>,
    /// Drain flag set.
    pub drained: bool,
    /// Why its version falls short of the controller's minimum
    /// (`api.server.min_agent_version`), if it does: listed as a
    /// `VersionSkew` condition. Scheduling ignores it.
    pub version_skew: Option<String>,
}

impl AgentView {
    /// Hostname.
    pub fn hostname(&self) -> &str {
        &self.registration.hostname
    }

    /// State with the drain flag applied: a flag on a Ready agent reads as
    /// Draining until the agent confirms.
    pub fn state(&self) -> AgentState {
        match (self.drained, self.registration.state) {
            (true, AgentState::Ready) => AgentState::Draining,
            (_, s) => s,
        }
    }

    /// True when new jobs may be sent to it.
    pub fn eligible(&self) -> bool {
        !self.drained && self.registration.state == AgentState::Ready
    }

    /// The REST representation.
    pub fn to_info(&self) -> AgentInfo {
        let reg = &self.registration;
        let facts = self.facts.clone().unwrap_or_default();
        let non_empty = |s: String| (!s.is_empty()).then_some(s);
        AgentInfo {
            hostname: reg.hostname.clone(),
            status: AgentStatus::Ready,
            labels: reg.labels.clone(),
            registered_at: Some(reg.registered_at),
            started_at: Some(reg.started_at),
            os_info: reg.os_info.as_ref().map(Into::into),
            uptime: (reg.uptime_seconds > 0).then(|| human_uptime(reg.uptime_seconds)),
            load_average: reg.load.as_ref().map(Into::into),
            memory: reg.memory.as_ref().map(Into::into),
            architecture: non_empty(facts.architecture),
            kernel_version: non_empty(facts.kernel_version),
            cpu_count: (facts.cpu_count > 0).then_some(facts.cpu_count),
            fqdn: non_empty(facts.fqdn),
            service_mgr: non_empty(facts.service_mgr),
            package_mgr: non_empty(facts.package_mgr),
            interfaces: facts.interfaces,
            primary_interface: non_empty(facts.primary_interface),
            routes: facts.routes,
            facts: facts.facts,
            state: Some(self.state()),
            agent_version: non_empty(reg.agent_version.clone()),
            conditions: self.conditions(),
            timeline: Vec::new(),
        }
    }

    /// The agent's conditions, then `VersionSkew` when it holds (since the
    /// agent started: its version cannot change without a restart).
    fn conditions(&self) -> Vec<NodeCondition> {
        let mut conditions = self.registration.conditions.clone();
        if let Some(reason) = &self.version_skew {
            conditions.push(NodeCondition {
                condition_type: condition::VERSION_SKEW.to_string(),
                status: true,
                reason: Some(reason.clone()),
                last_transition_time: self.registration.started_at,
            });
        }
        conditions
    }
}

/// A consistent picture of the live fleet.
#[derive(Debug, Default)]
pub struct Fleet {
    /// Agents by hostname.
    pub agents: Vec<AgentView>,
}

impl Fleet {
    /// An agent by exact hostname.
    pub fn get(&self, hostname: &str) -> Option<&AgentView> {
        self.agents.iter().find(|a| a.hostname() == hostname)
    }
}

/// Cached fleet view.
pub struct AgentDirectory {
    bus: Bus,
    max_age: Duration,
    min_agent_version: Option<semver::Version>,
    cache: Mutex<Option<(Instant, Arc<Fleet>)>>,
    /// Invalidations so far: a view read (in part) before the latest one
    /// is not cached.
    invalidations: std::sync::atomic::AtomicU64,
    /// One refresh of a stale cache at a time, holding how the last ended:
    /// the callers that find the cache stale while one runs take its
    /// outcome (on a large fleet a refresh reads every registration and
    /// facts entry; a burst of job submissions must not read them once
    /// each, nor, when the bus fails, wait for one failure after another).
    refreshing: tokio::sync::Mutex<Option<BusError>>,
    /// Refreshes of a stale cache ended, well or not.
    refreshes: std::sync::atomic::AtomicU64,
}

impl AgentDirectory {
    /// A directory over `bus`, caching for `max_age`; agents older than
    /// `min_agent_version` (when set) carry a version skew.
    pub fn new(bus: Bus, max_age: Duration, min_agent_version: Option<semver::Version>) -> Self {
        AgentDirectory {
            bus,
            max_age,
            min_agent_version,
            cache: Mutex::new(None),
            invalidations: std::sync::atomic::AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(None),
            refreshes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The cached view, if read within `max_age`.
    fn cached(&self, max_age: Duration) -> Option<Arc<Fleet>> {
        match &*crate::lock(&self.cache) {
            Some((at, fleet)) if at.elapsed() < max_age => Some(fleet.clone()),
            _ => None,
        }
    }

    /// Drops the cached view; a read under way when this is called will not
    /// be cached either (it may predate what made the view wrong).
    pub fn invalidate(&self) {
        let mut cache = crate::lock(&self.cache);
        self.invalidations.fetch_add(1, Ordering::SeqCst);
        *cache = None;
    }

    /// The fleet, from the cache when fresh enough; else read once for
    /// all the callers that find it stale at the same time.
    pub async fn fleet(&self) -> BusResult<Arc<Fleet>> {
        if let Some(fleet) = self.cached(self.max_age) {
            return Ok(fleet);
        }
        let before = self.refreshes.load(Ordering::SeqCst);
        let mut last = self.refreshing.lock().await;
        if self.refreshes.load(Ordering::SeqCst) != before {
            // A refresh ended while this call waited: its outcome is as
            // new as this call, but for a view it read before an
            // invalidation, which was not cached.
            if let Some(failed) = &*last {
                return Err(failed.clone());
            }
            if let Some(fleet) = self.cached(Duration::MAX) {
                return Ok(fleet);
            }
        } else if let Some(fleet) = self.cached(self.max_age) {
            return Ok(fleet);
        }
        let read = self.fresh().await;
        *last = read.as_ref().err().cloned();
        self.refreshes.fetch_add(1, Ordering::SeqCst);
        read
    }

    /// The fleet, read from the bus now (and cached, unless the cache was
    /// invalidated while it was read or holds a view read later).
    pub async fn fresh(&self) -> BusResult<Arc<Fleet>> {
        let invalidations = self.invalidations.load(Ordering::SeqCst);
        let started = Instant::now();
        let (registrations, facts, drained) = tokio::try_join!(
            self.bus.registry.list(),
            self.bus.facts.list(),
            self.bus.state.drained()
        )?;
        let fleet = Arc::new(merge(
            registrations,
            facts,
            &drained,
            self.min_agent_version.as_ref(),
        ));
        let mut cache = crate::lock(&self.cache);
        if self.invalidations.load(Ordering::SeqCst) == invalidations
            && cache.as_ref().is_none_or(|(at, _)| *at <= started)
        {
            *cache = Some((started, fleet.clone()));
        }
        Ok(fleet)
    }

    /// One live agent, read from the bus now: its registration, facts and
    /// drain flag only (not the whole fleet's). `hostname` is matched as
    /// its key (`web_01` finds `web-01`), as upstream.
    pub async fn agent(&self, hostname: &str) -> BusResult<Option<AgentView>> {
        // An entry that does not decode is left out, as in a fleet listing.
        fn readable<T>(read: BusResult<Option<T>>) -> BusResult<Option<T>> {
            match read {
                Err(BusError::Corrupt(_)) => Ok(None),
                other => other,
            }
        }
        let (registration, facts, drained) = tokio::try_join!(
            async { readable(self.bus.registry.get(hostname).await) },
            async { readable(self.bus.facts.get(hostname).await) },
            self.bus.state.is_drained(hostname)
        )?;
        Ok(registration.map(|registration| AgentView {
            facts,
            drained,
            version_skew: self
                .min_agent_version
                .as_ref()
                .and_then(|min| version_skew(&registration.agent_version, min)),
            registration,
        }))
    }

    /// Validates a target and returns the hosts a job for it must hear from
    /// (empty for `_any`: whoever takes it).
    pub async fn resolve(&self, target: &Target) -> Result<Vec<String>, ApiError> {
        let fleet = self.fleet().await?;
        match resolve_in(&fleet, target) {
            Ok(hosts) => Ok(hosts),
            // The cache may predate an agent that just joined: look again.
            Err(_) => resolve_in(&*self.fresh().await?, target),
        }
    }
}

fn merge(
    registrations: Vec<AgentRegistration>,
    facts: Vec<(String, Facts)>,
    drained: &BTreeSet<String>,
    min_agent_version: Option<&semver::Version>,
) -> Fleet {
    let mut facts: BTreeMap<String, Facts> = facts
        .into_iter()
        .map(|(host, f)| (sanitize_key(&host), f))
        .collect();
    let mut agents: Vec<AgentView> = registrations
        .into_iter()
        .map(|registration| {
            let key = sanitize_key(&registration.hostname);
            AgentView {
                facts: facts.remove(&key),
                drained: drained.contains(&key),
                version_skew: min_agent_version
                    .and_then(|min| version_skew(&registration.agent_version, min)),
                registration,
            }
        })
        .collect();
    agents.sort_by(|a, b| a.hostname().cmp(b.hostname()));
    Fleet { agents }
}

fn resolve_in(fleet: &Fleet, target: &Target) -> Result<Vec<String>, ApiError> {
    match target {
        Target::Any => {
            if fleet.agents.iter().any(AgentView::eligible) {
                Ok(Vec::new())
            } else if fleet.agents.is_empty() {
                Err(ApiError::bad_request(
                    "no agent is available for target _any: no agents are registered",
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "no agent is available for target _any: all {} registered agents are drained",
                    fleet.agents.len()
                )))
            }
        }
        Target::All => Ok(fleet
            .agents
            .iter()
            .filter(|a| a.eligible())
            .map(|a| a.hostname().to_string())
            .collect()),
        Target::Host(h) => match fleet.get(h) {
            Some(a) => Ok(vec![a.hostname().to_string()]),
            None => Err(ApiError::bad_request(format!(
                "target agent {h:?} not found (registered: {})",
                list_or_none(fleet.agents.iter().map(AgentView::hostname))
            ))),
        },
        // Every listed agent, as for a single hostname (drained ones too).
        Target::Hosts(hosts) => {
            let missing: Vec<&str> = hosts
                .iter()
                .filter(|h| fleet.get(h).is_none())
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "target agents {} not found (registered: {})",
                    missing.join(", "),
                    list_or_none(fleet.agents.iter().map(AgentView::hostname))
                )));
            }
            Ok(hosts
                .iter()
                .filter_map(|h| fleet.get(h))
                .map(|a| a.hostname().to_string())
                .collect())
        }
        Target::Label { .. } => {
            let matching: Vec<&AgentView> = fleet
                .agents
                .iter()
                .filter(|a| target.matches_labels(&a.registration.labels))
                .collect();
            if matching.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "no agent matches label selector {:?}",
                    target.to_string()
                )));
            }
            Ok(matching
                .into_iter()
                .filter(|a| a.eligible())
                .map(|a| a.hostname().to_string())
                .collect())
        }
    }
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is how it fails
    use super::*;
    use time::macros::datetime;

    fn registration(hostname: &str, version: &str) -> AgentRegistration {
        AgentRegistration {
            hostname: hostname.into(),
            instance_id: uuid::Uuid::new_v4(),
            labels: BTreeMap::new(),
            registered_at: datetime!(2026-03-06 10:00:10 UTC),
            started_at: datetime!(2026-03-06 09:00:00 UTC),
            os_info: None,
            uptime_seconds: 0,
            load: None,
            memory: None,
            conditions: Vec::new(),
            state: AgentState::Ready,
            jobs_in_flight: 0,
            agent_version: version.into(),
        }
    }

    fn fleet(min: Option<&str>) -> Fleet {
        let min = min.map(|m| semver::Version::parse(m).unwrap());
        merge(
            vec![
                registration("old", "0.0.9+8d085288c507"),
                registration("current", "0.1.0+8d085288c507"),
                registration("silent", ""),
            ],
            Vec::new(),
            &BTreeSet::new(),
            min.as_ref(),
        )
    }

    fn skew(fleet: &Fleet, host: &str) -> Option<NodeCondition> {
        let info = fleet.get(host).unwrap().to_info();
        let mut skews = info
            .conditions
            .into_iter()
            .filter(|c| c.condition_type == condition::VERSION_SKEW);
        let first = skews.next();
        assert!(skews.next().is_none(), "one VersionSkew at most");
        first
    }

    #[test]
    fn agents_below_the_minimum_are_listed_with_version_skew() {
        let fleet = fleet(Some("0.1.0"));
        let old = skew(&fleet, "old").unwrap();
        assert!(old.status);
        assert_eq!(
            old.reason.as_deref(),
            Some("agent 0.0.9+8d085288c507 is older than the controller's minimum 0.1.0")
        );
        assert_eq!(old.last_transition_time, datetime!(2026-03-06 09:00:00 UTC));
        let silent = skew(&fleet, "silent").unwrap();
        assert_eq!(
            silent.reason.as_deref(),
            Some("agent reports no version; the controller's minimum is 0.1.0")
        );
        assert_eq!(skew(&fleet, "current"), None);
        // The version itself is shown, absent when the agent reports none.
        let info = fleet.get("old").unwrap().to_info();
        assert_eq!(info.agent_version.as_deref(), Some("0.0.9+8d085288c507"));
        assert_eq!(fleet.get("silent").unwrap().to_info().agent_version, None);
    }

    #[test]
    fn skewed_agents_still_get_jobs() {
        let fleet = fleet(Some("0.1.0"));
        assert!(fleet.agents.iter().all(AgentView::eligible));
        let mut all = resolve_in(&fleet, &Target::All).unwrap();
        all.sort();
        assert_eq!(all, ["current", "old", "silent"]);
        assert_eq!(
            resolve_in(&fleet, &Target::Host("old".into())).unwrap(),
            ["old"]
        );
    }

    #[test]
    fn no_minimum_no_skew() {
        let fleet = fleet(None);
        for host in ["old", "current", "silent"] {
            assert_eq!(skew(&fleet, host), None, "{host}");
        }
    }

    /// The real in-memory registry, with every listing counted and made to
    /// take 50 ms, as listing a large fleet on NATS does (a wrapper, not a
    /// stand-in: the directory reads the real registry through it).
    struct SlowListing {
        inner: Arc<dyn osapi_bus::Registry>,
        listings: std::sync::atomic::AtomicUsize,
        /// Listings fail (after their 50 ms), as on a bus that is down.
        failing: std::sync::atomic::AtomicBool,
    }

    /// A memory bus with one agent, `web-01`, whose registry listings are
    /// counted and slow; a directory over it caching for 1 s.
    async fn slow_directory() -> (Arc<AgentDirectory>, Arc<SlowListing>, Bus) {
        let mut bus = osapi_bus::memory::MemoryBus::start(Default::default());
        bus.registry
            .put(registration("web-01", "0.1.0"))
            .await
            .unwrap();
        let counted = Arc::new(SlowListing {
            inner: bus.registry.clone(),
            listings: Default::default(),
            failing: Default::default(),
        });
        bus.registry = counted.clone();
        let directory = Arc::new(AgentDirectory::new(
            bus.clone(),
            Duration::from_secs(1),
            None,
        ));
        (directory, counted, bus)
    }

    #[async_trait::async_trait]
    impl osapi_bus::Registry for SlowListing {
        async fn put(&self, r: AgentRegistration) -> BusResult<Option<uuid::Uuid>> {
            self.inner.put(r).await
        }
        async fn get(&self, hostname: &str) -> BusResult<Option<AgentRegistration>> {
            self.inner.get(hostname).await
        }
        async fn list(&self) -> BusResult<Vec<AgentRegistration>> {
            self.listings.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            if self.failing.load(Ordering::SeqCst) {
                return Err(BusError::Unavailable("the bus is down".into()));
            }
            self.inner.list().await
        }
        async fn remove(&self, hostname: &str, instance_id: uuid::Uuid) -> BusResult<()> {
            self.inner.remove(hostname, instance_id).await
        }
        fn subscribe(&self) -> tokio::sync::broadcast::Receiver<osapi_bus::RegistryEvent> {
            self.inner.subscribe()
        }
        fn ttl(&self) -> Duration {
            self.inner.ttl()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn callers_that_find_the_cache_stale_at_once_share_one_read() {
        let (directory, counted, _bus) = slow_directory().await;
        let reads: Vec<_> = (0..32)
            .map(|_| {
                let d = directory.clone();
                tokio::spawn(async move { d.fleet().await.unwrap() })
            })
            .collect();
        let mut views = Vec::new();
        for r in reads {
            views.push(r.await.unwrap());
        }
        assert_eq!(
            counted.listings.load(Ordering::SeqCst),
            1,
            "one read for 32 callers"
        );
        assert!(views.iter().all(|v| Arc::ptr_eq(v, &views[0])));
        assert_eq!(views[0].agents.len(), 1);
        // Stale again: read again, once.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (a, b) = tokio::join!(directory.fleet(), directory.fleet());
        assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
        assert_eq!(counted.listings.load(Ordering::SeqCst), 2);
        directory.invalidate();
        directory.fleet().await.unwrap();
        assert_eq!(counted.listings.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_under_way_when_an_agent_is_drained_is_not_served() {
        let (directory, _counted, bus) = slow_directory().await;
        // A read starts (the drain flags are read at once, the slow
        // registry listing after 50 ms) ...
        let under_way = tokio::spawn({
            let d = directory.clone();
            async move { d.fleet().await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        // ... the agent is drained meanwhile, as `POST /agent/web-01/drain` does ...
        bus.state.set_drain("web-01").await.unwrap();
        directory.invalidate();
        // ... and a job submitted right after must not target it.
        let after = directory.fleet().await.unwrap();
        assert!(
            after.get("web-01").unwrap().drained,
            "a view from before the drain"
        );
        assert!(!after.get("web-01").unwrap().eligible());
        let before = under_way.await.unwrap();
        assert!(!before.get("web-01").unwrap().drained);
        assert!(
            directory
                .fleet()
                .await
                .unwrap()
                .get("web-01")
                .unwrap()
                .drained
        );
    }

    #[tokio::test(start_paused = true)]
    async fn callers_waiting_on_a_failed_read_share_its_failure() {
        let (directory, counted, _bus) = slow_directory().await;
        counted.failing.store(true, Ordering::SeqCst);
        let reads: Vec<_> = (0..8)
            .map(|_| {
                let d = directory.clone();
                tokio::spawn(async move { d.fleet().await })
            })
            .collect();
        for r in reads {
            let failed = r.await.unwrap().unwrap_err();
            assert!(matches!(failed, BusError::Unavailable(_)), "{failed:?}");
        }
        assert_eq!(
            counted.listings.load(Ordering::SeqCst),
            1,
            "one failure for 8 callers"
        );
        // The next call tries again, and succeeds once the bus is back.
        counted.failing.store(false, Ordering::SeqCst);
        assert_eq!(directory.fleet().await.unwrap().agents.len(), 1);
        assert_eq!(counted.listings.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn one_agent_is_read_by_its_key() {
        let bus = osapi_bus::memory::MemoryBus::start(Default::default());
        bus.registry
            .put(registration("web-01", "0.0.9"))
            .await
            .unwrap();
        bus.state.set_drain("web-01").await.unwrap();
        let min = semver::Version::parse("0.1.0").unwrap();
        let directory = AgentDirectory::new(bus, Duration::from_secs(1), Some(min));
        let found = directory.agent("web_01").await.unwrap().unwrap();
        assert_eq!(found.hostname(), "web-01");
        assert!(found.drained);
        assert!(found.version_skew.is_some());
        assert!(directory.agent("web-02").await.unwrap().is_none());
    }
}
