//! The agent's life: registration and heartbeats, facts collection, the drain
//! state machine, and the consume loop that hands jobs to [`crate::job`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use osapi_api::agent::{AgentState, NodeCondition, TimelineEvent};
use osapi_api::records::{AgentRegistration, Facts};
use osapi_bus::{Bus, BusError, JobConsumer, QueueKind};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::admission::Admission;
use crate::config::{AgentConfig, AgentError};
use crate::freshness::{Era, Freshness, Moment};
use crate::journal::{Journal, Recovered};
use crate::metrics::AgentMetrics;
use crate::providers::{ProviderConfig, ProviderContext, node};
use crate::running::{Cancelled, Running};
use crate::{conditions, facts};

/// How long jobs stopped at the end of the grace period get to report it.
const HAND_BACK: Duration = Duration::from_secs(2);

/// How often the warning about another agent process under this hostname
/// is repeated while it lasts.
const NAMESAKE_REMINDER: Duration = Duration::from_secs(600);

/// An agent, configured and not yet started.
pub struct Agent {
    config: AgentConfig,
    bus: Bus,
    hostname: String,
}

impl Agent {
    /// Checks the configuration and resolves the hostname.
    pub fn new(config: AgentConfig, bus: Bus) -> Result<Agent, AgentError> {
        config.validate()?;
        let hostname = config.resolved_hostname()?;
        Ok(Agent {
            config,
            bus,
            hostname,
        })
    }

    /// The identity this agent will register under.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Collects facts, registers, and starts heartbeats and job processing.
    /// When this returns, the agent is a valid target.
    pub async fn start(self) -> Result<AgentHandle, AgentError> {
        let Agent {
            config,
            bus,
            hostname,
        } = self;
        if let Some(dir) = &config.state_dir {
            crate::state_dir::prepare(dir).map_err(|source| AgentError::State {
                path: dir.clone(),
                source,
            })?;
        }
        let admission = Admission::new(&config.security, config.state_dir.as_deref())?;
        let journal =
            Journal::open(config.state_dir.as_deref()).map_err(|source| AgentError::State {
                path: config.state_dir.clone().unwrap_or_default(),
                source,
            })?;
        // What a crash of the previous run left: its commands still running
        // (the controller already reported them lost) and half-written files.
        let recovered = journal.recover();
        if recovered != Recovered::default() {
            tracing::warn!(
                hostname = %hostname,
                killed = recovered.killed,
                removed = recovered.removed,
                "cleaned up after a previous run of this agent"
            );
        }
        // A heartbeat takes some time of its own: the gap between two is
        // the interval and then some; past half the TTL it is a disruption.
        if config.heartbeat_interval * 5 > bus.registry.ttl() * 2 {
            tracing::warn!(
                heartbeat_interval = ?config.heartbeat_interval,
                registry_ttl = ?bus.registry.ttl(),
                "heartbeats more than 2/5 of the registry's time to live apart: \
                 jobs' state is read before they start (leave the interval unset for a third of the TTL)"
            );
        }
        let drained_now = bus.state.is_drained(&hostname).await?;
        let cancellations = bus.queue.cancellations(&hostname).await?;
        let shared = Arc::new(Shared {
            admission,
            journal: Arc::new(journal),
            running: Mutex::new(Running::default()),
            cancellations,
            freshness: Freshness::new(bus.registry.ttl()),
            hostname: hostname.clone(),
            instance_id: Uuid::new_v4(),
            started_at: OffsetDateTime::now_utc(),
            facts: RwLock::new(None),
            conditions: Mutex::new(Vec::new()),
            state: Mutex::new(if drained_now {
                AgentState::Cordoned
            } else {
                AgentState::Ready
            }),
            in_flight: AtomicU32::new(0),
            registered: std::sync::atomic::AtomicBool::new(false),
            namesake_told: Mutex::new(None),
            stopping: std::sync::atomic::AtomicBool::new(false),
            idle: Notify::new(),
            drained: watch::channel(drained_now).0,
            providers: Arc::new(config.providers.clone()),
            described: RwLock::new(Described {
                labels: Arc::new(config.labels.clone()),
                facts: config.facts.clone(),
            }),
            metrics: Arc::new(AgentMetrics::new(&config.version)),
            config,
            bus,
        });

        shared.refresh_facts().await?;
        shared.heartbeat().await?;
        let own = shared
            .bus
            .queue
            .consumer(&hostname, QueueKind::Host)
            .await?;
        let any = shared.bus.queue.consumer(&hostname, QueueKind::Any).await?;

        let cancel = CancellationToken::new();
        // Taking jobs stops first on shutdown; heartbeats, cancellations and
        // the drain flag go on until the running jobs are done.
        let taking = cancel.child_token();
        let mut tasks = JoinSet::new();
        tasks.spawn(heartbeat_loop(shared.clone(), cancel.clone()));
        tasks.spawn(facts_loop(shared.clone(), cancel.clone()));
        tasks.spawn(drain_watch_loop(shared.clone(), cancel.clone()));
        tasks.spawn(cancel_loop(shared.clone(), cancel.clone()));
        let permits = Arc::new(Semaphore::new(shared.config.max_jobs));
        let consume = vec![
            tokio::spawn(consume_loop(
                shared.clone(),
                own,
                QueueKind::Host,
                permits.clone(),
                taking.clone(),
            )),
            tokio::spawn(consume_loop(
                shared.clone(),
                any,
                QueueKind::Any,
                permits,
                taking.clone(),
            )),
        ];
        tracing::info!(hostname = %hostname, instance = %shared.instance_id, "agent started");
        Ok(AgentHandle {
            shared,
            cancel,
            taking,
            tasks,
            consume,
        })
    }
}

/// A running agent.
pub struct AgentHandle {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    /// Stops the consume loops only (a child of `cancel`).
    taking: CancellationToken,
    tasks: JoinSet<()>,
    consume: Vec<tokio::task::JoinHandle<()>>,
}

impl AgentHandle {
    /// The agent's identity.
    pub fn hostname(&self) -> &str {
        &self.shared.hostname
    }

    /// Id of this agent process; changes on restart.
    pub fn instance_id(&self) -> Uuid {
        self.shared.instance_id
    }

    /// The agent's metrics, to serve to Prometheus.
    pub fn metrics(&self) -> Arc<AgentMetrics> {
        self.shared.metrics.clone()
    }

    /// Jobs running right now.
    pub fn jobs_in_flight(&self) -> u32 {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Takes new labels and custom facts (a configuration reload): facts
    /// are collected and published and the agent re-registers at once, so
    /// the next job targeted by label sees them. Running jobs go on.
    /// Invalid labels are refused and nothing changes; once taken, a
    /// publish that fails is logged and left to the next heartbeat and
    /// facts update.
    pub async fn reload(
        &self,
        labels: std::collections::BTreeMap<String, String>,
        facts: std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Result<(), AgentError> {
        crate::config::check_labels(&labels)?;
        *self
            .shared
            .described
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Described {
            labels: Arc::new(labels),
            facts,
        };
        if let Err(e) = self.shared.refresh_facts().await {
            tracing::warn!(error = %e, "reloaded facts not published yet; the next update retries");
        }
        if let Err(e) = self.shared.heartbeat().await {
            tracing::warn!(error = %e, "reloaded labels not published yet; the next heartbeat retries");
        }
        Ok(())
    }

    /// Stops taking jobs and lets running ones finish for up to
    /// `shutdown_grace` (10 s).
    /// Jobs still running then are stopped (a command's process group is
    /// killed) and reported failed with "the agent stopped before the job
    /// finished", so their callers know at once; then the agent
    /// deregisters.
    pub async fn shutdown(mut self) {
        // Stop taking jobs; keep heartbeating (the registration must not
        // expire while jobs finish) and listening for cancellations.
        self.taking.cancel();
        let deadline = tokio::time::Instant::now() + self.shared.config.shutdown_grace;
        let mut waiting = Box::pin(join_loops(&mut self.consume));
        if tokio::time::timeout_at(deadline, &mut waiting)
            .await
            .is_err()
        {
            let stopped: Vec<CancellationToken> = {
                let running = lock(&self.shared.running);
                self.shared.stopping.store(true, Ordering::SeqCst);
                running.tokens()
            };
            tracing::warn!(
                hostname = %self.shared.hostname,
                jobs = stopped.len(),
                "jobs still running after the grace period; stopping them"
            );
            for token in stopped {
                token.cancel();
            }
            if tokio::time::timeout(HAND_BACK, &mut waiting).await.is_err() {
                drop(waiting);
                for handle in &self.consume {
                    handle.abort();
                }
            }
        } else {
            drop(waiting);
        }
        // The loops end at their next turn: a heartbeat on its way lands,
        // and is known, before the registration is removed.
        self.cancel.cancel();
        let loops_end = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(HAND_BACK, loops_end).await;
        self.tasks.shutdown().await;
        let deregistered = self
            .shared
            .bus
            .registry
            .remove(&self.shared.hostname, self.shared.instance_id)
            .await;
        if let Err(e) = deregistered {
            tracing::warn!(error = %e, "failed to deregister");
        }
        tracing::info!(hostname = %self.shared.hostname, "agent stopped");
    }

    /// Stops everything at once, as a crash would: running jobs are abandoned
    /// and the registration is left to expire.
    pub fn abort(mut self) {
        for handle in &self.consume {
            handle.abort();
        }
        self.tasks.abort_all();
    }
}

/// Waits for every consume loop (each ends once its running jobs have).
async fn join_loops(handles: &mut [tokio::task::JoinHandle<()>]) {
    for handle in handles.iter_mut() {
        let _ = handle.await;
    }
}

/// State shared by the agent's tasks.
pub(crate) struct Shared {
    pub(crate) admission: Admission,
    /// Work to clean up after a crash.
    pub(crate) journal: Arc<Journal>,
    /// Jobs running here, to stop when cancelled.
    running: Mutex<Running>,
    /// Requests to cancel jobs, read by [`cancel_loop`] and by each job as
    /// it starts.
    cancellations: osapi_bus::CancelFeed,
    pub(crate) freshness: Freshness,
    pub(crate) hostname: String,
    pub(crate) instance_id: Uuid,
    started_at: OffsetDateTime,
    facts: RwLock<Option<Arc<Facts>>>,
    conditions: Mutex<Vec<NodeCondition>>,
    state: Mutex<AgentState>,
    in_flight: AtomicU32,
    /// Set once a heartbeat has gone through.
    registered: std::sync::atomic::AtomicBool,
    /// The last namesake warned about, and when.
    namesake_told: Mutex<Option<(Uuid, std::time::Instant)>>,
    /// Set when a shutdown stops the jobs still running.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    idle: Notify,
    drained: watch::Sender<bool>,
    providers: Arc<ProviderConfig>,
    /// Labels and custom facts: what a reload may change.
    described: RwLock<Described>,
    pub(crate) metrics: Arc<AgentMetrics>,
    pub(crate) config: AgentConfig,
    pub(crate) bus: Bus,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How the agent describes itself, beyond what it reads off the host.
#[derive(Clone)]
struct Described {
    labels: Arc<std::collections::BTreeMap<String, String>>,
    facts: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Shared {
    fn described(&self) -> Described {
        self.described
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(crate) fn facts(&self) -> Option<Arc<Facts>> {
        self.facts.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn provider_context(&self) -> ProviderContext {
        ProviderContext {
            hostname: self.hostname.clone(),
            labels: self.described().labels,
            facts: self.facts(),
            objects: self.bus.objects.clone(),
            file_state: self.bus.file_state.clone(),
            config: self.providers.clone(),
            journal: self.journal.clone(),
        }
    }

    async fn refresh_facts(&self) -> Result<(), BusError> {
        let custom = self.described().facts;
        let (collected, problems) =
            match tokio::task::spawn_blocking(move || facts::collect_counted(&custom)).await {
                Ok(counted) => counted,
                // Collection panicked: nothing was read.
                Err(_) => (Facts::default(), 1),
            };
        for _ in 0..problems {
            self.metrics.fact_error();
        }
        *self.facts.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(collected.clone()));
        let published = self.bus.facts.put(&self.hostname, collected).await;
        if published.is_err() {
            self.metrics.fact_error();
        }
        published
    }

    async fn heartbeat(&self) -> Result<(), BusError> {
        let cpu_count = self.facts().map(|f| f.cpu_count).unwrap_or(0);
        let sample = tokio::task::spawn_blocking(HostSample::read)
            .await
            .unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        let conditions = {
            let mut prev = lock(&self.conditions);
            let next = conditions::evaluate(
                &prev,
                sample.memory.as_ref(),
                sample.load.as_ref(),
                cpu_count,
                &sample.disks,
                &self.config.conditions,
                now,
            );
            *prev = next.clone();
            next
        };
        let registration = AgentRegistration {
            hostname: self.hostname.clone(),
            instance_id: self.instance_id,
            labels: (*self.described().labels).clone(),
            registered_at: now,
            started_at: self.started_at,
            os_info: sample.os_info,
            uptime_seconds: sample.uptime_seconds,
            load: sample.load,
            memory: sample.memory,
            conditions,
            state: *lock(&self.state),
            jobs_in_flight: self.in_flight.load(Ordering::SeqCst),
            agent_version: self.config.version.clone(),
        };
        let sent = Moment::now();
        let accepted = self.bus.registry.put(registration).await;
        self.metrics.heartbeat(accepted.is_ok());
        let Ok(replaced) = accepted else {
            return accepted.map(|_| ());
        };
        self.freshness.heartbeat_went_through(sent);
        // The first write may replace what an earlier run of this agent
        // left: only a later one tells of another process.
        let registered_before = self.registered.swap(true, Ordering::SeqCst);
        if let (Some(other), true) = (replaced, registered_before)
            && self.first_news_of_namesake(other)
        {
            tracing::warn!(
                hostname = %self.hostname,
                instance = %self.instance_id,
                other_instance = %other,
                "another agent process registered under this hostname since this one's last heartbeat: \
                 two hosts share the name, or an earlier agent still runs here; \
                 jobs for this hostname may run on either (said again every 10 minutes while it lasts)"
            );
        }
        Ok(())
    }

    /// Whether another process's write under this hostname is news: its
    /// first, or the first in [`NAMESAKE_REMINDER`].
    fn first_news_of_namesake(&self, other: Uuid) -> bool {
        let mut told = lock(&self.namesake_told);
        let news = told.is_none_or(|(id, at)| id != other || at.elapsed() >= NAMESAKE_REMINDER);
        if news {
            *told = Some((other, std::time::Instant::now()));
        }
        news
    }

    /// Re-registers right away so the controller sees a state change without
    /// waiting for the next heartbeat.
    async fn publish_state(&self, state: AgentState, event: &str, message: &str) {
        *lock(&self.state) = state;
        let timeline = TimelineEvent {
            timestamp: OffsetDateTime::now_utc(),
            event: event.to_string(),
            hostname: self.hostname.clone(),
            message: message.to_string(),
            error: None,
        };
        if let Err(e) = self.bus.state.append_timeline(timeline).await {
            tracing::warn!(error = %e, "failed to write timeline event");
        }
        if let Err(e) = self.heartbeat().await {
            tracing::warn!(error = %e, "failed to publish state");
        }
    }

    /// Applies the drain flag: Ready → Draining → Cordoned, or back to Ready.
    async fn apply_drain(&self, drained: bool) {
        let current = *lock(&self.state);
        // Draining stops taking jobs at once; resuming says Ready first, so
        // nobody sees work done by an agent that still reads as cordoned.
        if drained {
            self.drained
                .send_if_modified(|d| !std::mem::replace(d, true));
        }
        match (drained, current) {
            (true, AgentState::Ready) => {
                self.publish_state(AgentState::Draining, "drain", "Drain initiated")
                    .await;
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    self.publish_state(AgentState::Cordoned, "cordoned", "All jobs completed")
                        .await;
                }
            }
            (false, AgentState::Draining | AgentState::Cordoned) => {
                self.publish_state(AgentState::Ready, "undrain", "Resumed accepting jobs")
                    .await;
            }
            _ => {}
        }
        if !drained {
            self.drained
                .send_if_modified(|d| std::mem::replace(d, false));
        }
    }

    /// Registers a job that starts running here; the token is cancelled
    /// when the job is. `None` when a request to cancel it came before: it
    /// must not start.
    pub(crate) fn track(&self, id: Uuid) -> Option<CancellationToken> {
        let token = CancellationToken::new();
        // Under the lock `shutdown` takes to set `stopping`: a job that
        // gets this far after the grace period ended is stopped at once
        // (and reported), not left to be aborted silently.
        let mut running = lock(&self.running);
        // Every request that came before this job, read now.
        self.take_cancellations(&mut running);
        if self.stopping.load(Ordering::SeqCst) {
            token.cancel();
        }
        running.start(id, token.clone()).then_some(token)
    }

    /// Applies the cancellation requests that have arrived.
    fn take_cancellations(&self, running: &mut Running) {
        for id in self.cancellations.arrived() {
            match running.cancel(id) {
                Cancelled::Stopping => tracing::info!(job_id = %id, "job cancelled: stopping it"),
                Cancelled::Remembered => {}
                Cancelled::ForgotOne => self
                    .freshness
                    .disrupted("too many requests to cancel jobs not started"),
            }
        }
    }

    /// True while the job `id` runs here.
    pub(crate) fn is_running(&self, id: &Uuid) -> bool {
        lock(&self.running).contains(id)
    }

    /// Forgets a job that stopped running.
    pub(crate) fn untrack(&self, id: Uuid) {
        lock(&self.running).remove(&id);
    }

    pub(crate) fn job_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) async fn job_finished(&self) {
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
            let draining = *lock(&self.state) == AgentState::Draining;
            if draining {
                self.publish_state(AgentState::Cordoned, "cordoned", "All jobs completed")
                    .await;
            }
        }
    }
}

/// One reading of the host for a heartbeat.
#[derive(Default)]
struct HostSample {
    os_info: Option<osapi_api::results::OsInfo>,
    uptime_seconds: u64,
    load: Option<osapi_api::results::LoadResult>,
    memory: Option<osapi_api::results::MemoryResult>,
    disks: Vec<osapi_api::results::DiskUsage>,
}

impl HostSample {
    fn read() -> HostSample {
        HostSample {
            os_info: node::os_info().ok(),
            uptime_seconds: node::uptime_seconds().unwrap_or(0),
            load: node::load().ok(),
            memory: node::memory().ok(),
            disks: node::disks().unwrap_or_default(),
        }
    }
}

async fn heartbeat_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        // The drain flag is also watched; this catches a missed notification.
        match shared.bus.state.is_drained(&shared.hostname).await {
            Ok(drained) => shared.apply_drain(drained).await,
            Err(e) => tracing::warn!(error = %e, "failed to read drain flag"),
        }
        if let Err(e) = shared.heartbeat().await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
    }
}

async fn facts_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(shared.config.facts_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = shared.refresh_facts().await {
            tracing::warn!(error = %e, "facts update failed");
        }
    }
}

async fn drain_watch_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut changes = shared.bus.state.subscribe();
    loop {
        let changed = tokio::select! {
            _ = cancel.cancelled() => return,
            c = changes.recv() => c,
        };
        let relevant = match changed {
            Ok(host) => {
                osapi_api::target::sanitize_key(&host)
                    == osapi_api::target::sanitize_key(&shared.hostname)
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if relevant {
            match shared.bus.state.is_drained(&shared.hostname).await {
                Ok(drained) => shared.apply_drain(drained).await,
                Err(e) => tracing::warn!(error = %e, "failed to read drain flag"),
            }
        }
    }
}

/// Stops the jobs the controller cancels.
async fn cancel_loop(shared: Arc<Shared>, cancel: CancellationToken) {
    loop {
        let open = tokio::select! {
            _ = cancel.cancelled() => return,
            open = shared.cancellations.wait() => open,
        };
        if !open {
            // Running jobs still check their slot now and then.
            shared.freshness.deaf();
            return;
        }
        shared.take_cancellations(&mut lock(&shared.running));
    }
}

/// How long one fetch from a queue waits before the loop looks around again.
const FETCH_WAIT: Duration = Duration::from_secs(2);

/// Takes jobs from one queue. `_any` jobs are only taken with a free slot
/// (so a busy agent leaves them to others); the agent's own jobs are taken
/// and then wait for a slot (handed back, reported failed, when the agent
/// stops first).
async fn consume_loop(
    shared: Arc<Shared>,
    mut consumer: Box<dyn JobConsumer>,
    kind: QueueKind,
    permits: Arc<Semaphore>,
    cancel: CancellationToken,
) {
    let mut drained = shared.drained.subscribe();
    let mut running = JoinSet::new();
    // Since when the consumer has asked the bus for messages: after a
    // disruption, what it fetched before is dropped (and comes again as
    // redelivered), so that a delivery saying "nothing behind me" speaks of
    // the queue as it is now.
    let mut asked: Option<Era> = None;
    loop {
        // Reap finished jobs so the set does not grow.
        while running.try_join_next().is_some() {}
        if *drained.borrow_and_update() {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = drained.changed() => continue,
            }
        }
        let early = if kind == QueueKind::Any {
            tokio::select! {
                _ = cancel.cancelled() => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => Some(p),
                    Err(_) => break,
                },
            }
        } else {
            None
        };
        let era = shared.freshness.era(shared.bus.queue.connects());
        if asked != Some(era) {
            if asked.is_some() && kind == QueueKind::Host {
                consumer.restart();
            }
            asked = Some(era);
        }
        let delivery = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = drained.changed() => continue,
            d = consumer.next(FETCH_WAIT) => d,
        };
        match delivery {
            Ok(Some(delivery)) => {
                let ticket = shared.freshness.delivered(
                    kind,
                    delivery.pending,
                    shared.bus.queue.connects(),
                    era,
                );
                let waiting = early.is_none().then(|| shared.metrics.job_waiting());
                let permit = match early {
                    Some(p) => p,
                    None => tokio::select! {
                        _ = cancel.cancelled() => {
                            crate::job::hand_back(&shared, delivery).await;
                            break;
                        }
                        p = permits.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => {
                                crate::job::hand_back(&shared, delivery).await;
                                break;
                            }
                        },
                    },
                };
                drop(waiting);
                shared.job_started();
                let shared = shared.clone();
                running.spawn(async move {
                    crate::job::run(&shared, delivery, ticket).await;
                    shared.job_finished().await;
                    drop(permit);
                });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, queue = ?kind, "job queue error; retrying");
                shared.freshness.disrupted("job queue error");
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    }
    // Graceful stop: let running jobs finish.
    while running.join_next().await.is_some() {}
}
