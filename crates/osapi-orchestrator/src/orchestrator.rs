//! The [`Orchestrator`]: holds the REST client and the plan, creates steps,
//! runs the plan, and discovers agents.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osapi_api::agent::AgentInfo;
use osapi_client::{Client, ClientError, LocalTransport};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::engine::{self, RunConfig};
use crate::error::{PlanError, TaskError};
use crate::events::{JsonLines, Observer};
use crate::lock;
use crate::plan::{self, FuncOutput, PlanInner, StepKind, StepSpec, TaskContext};
use crate::predicate::{Predicate, fact_text, match_all};
use crate::render::{ColorChoice, Renderer};
use crate::report::{Report, RunError};
use crate::results::Results;
use crate::step::{Step, TaskOutput};

/// Declares and runs a plan against one controller.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use osapi_orchestrator::Orchestrator;
/// use osapi_orchestrator::types::HostnameResult;
/// let o = Orchestrator::new("http://127.0.0.1:8080", "<token>")?;
/// let health = o.health_check();
/// let host = o.node_hostname_get("_any").after(&health);
/// let report = o.run().await?;
/// let h: HostnameResult = report.result(&host)?;
/// println!("{}", h.hostname);
/// # Ok(()) }
/// ```
pub struct Orchestrator {
    pub(crate) client: Client,
    pub(crate) plan: Arc<Mutex<PlanInner>>,
    config: RunConfig,
    /// Where runs append their journal.
    journal: Option<std::path::PathBuf>,
}

/// Options of an [`Orchestrator`].
pub struct OrchestratorBuilder {
    url: String,
    token: String,
    verbose: bool,
    render: bool,
    color: ColorChoice,
    json: Option<Box<dyn Write + Send>>,
    render_to: Option<Box<dyn Write + Send>>,
    observers: Vec<Arc<dyn Observer>>,
    max_in_flight: usize,
    request_timeout: Option<Duration>,
    job_deadline: Duration,
    local: Option<Arc<dyn LocalTransport>>,
    journal: Option<std::path::PathBuf>,
}

/// How long a job step without a timeout waits by default.
pub const DEFAULT_JOB_DEADLINE: Duration = Duration::from_secs(300);

impl OrchestratorBuilder {
    /// Appends each finished step's result to the journal at `path` (JSON
    /// lines, see [`crate::journal`]) while the plan runs; a crash or
    /// Ctrl-C leaves what was done readable, and
    /// [`Orchestrator::resume_from`] picks up from it.
    pub fn journal(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.journal = Some(path.into());
        self
    }

    /// Print stdout, stderr and result data of each step.
    pub fn verbose(mut self) -> Self {
        self.verbose = true;
        self
    }

    /// No terminal output (events still reach observers and the JSON sink).
    pub fn quiet(mut self) -> Self {
        self.render = false;
        self
    }

    /// When the terminal output uses colour (default: on a TTY, honouring
    /// `NO_COLOR` and `CLICOLOR_FORCE`).
    pub fn color(mut self, choice: ColorChoice) -> Self {
        self.color = choice;
        self
    }

    /// Draws the live run to `out` instead of stdout (a file, a buffer, a
    /// log), with [`Self::verbose`] and [`Self::color`] as set here (no
    /// colour unless [`ColorChoice::Always`]).
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let log = std::fs::File::create("run.log")?;
    /// let o = osapi_orchestrator::Orchestrator::builder("http://127.0.0.1:8080", "<token>")
    ///     .render_to(log)
    ///     .verbose()
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn render_to(mut self, out: impl Write + Send + 'static) -> Self {
        self.render_to = Some(Box::new(out));
        self.render = true;
        self
    }

    /// Also write every event as a JSON line to `out` (schema: `docs/events.md`).
    pub fn json_events(mut self, out: impl Write + Send + 'static) -> Self {
        self.json = Some(Box::new(out));
        self
    }

    /// Also send every event to `observer` (replaces nothing; add a custom
    /// renderer with `.quiet().observer(…)`).
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// At most `n` steps run at once (default 64; at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Per-request timeout of the REST client (long-polls get their wait on top).
    pub fn request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = Some(t);
        self
    }

    /// How long a job step without a `.timeout(…)` waits for its hosts
    /// (default 5 min; a command at least its own timeout and 30 s). A job
    /// still running then fails the step, and broadcast hosts that never
    /// answered are `lost`. Upstream's controller sets no deadline of its
    /// own, so this is what ends a wait for a job nobody picks up.
    pub fn job_deadline(mut self, d: Duration) -> Self {
        self.job_deadline = d;
        self
    }

    /// Reaches the controller in this process through `transport` instead
    /// of HTTP (see [`Orchestrator::embedded`]).
    pub fn local(mut self, transport: Arc<dyn LocalTransport>) -> Self {
        self.local = Some(transport);
        self
    }

    /// Builds the orchestrator; fails only on an unusable URL.
    pub fn build(self) -> Result<Orchestrator, ClientError> {
        let mut client = Client::builder(&self.url, &self.token);
        if let Some(t) = self.request_timeout {
            client = client.timeout(t);
        }
        if let Some(local) = self.local {
            client = client.local(local);
        }
        let client = client.build()?;
        let mut observers = Vec::new();
        if self.render {
            let renderer = match self.render_to {
                Some(out) => Renderer::new(out, self.color, false, self.verbose),
                None => Renderer::stdout(self.color, self.verbose),
            };
            observers.push(Arc::new(renderer) as Arc<dyn Observer>);
        }
        if let Some(out) = self.json {
            observers.push(Arc::new(JsonLines::new(out)) as Arc<dyn Observer>);
        }
        observers.extend(self.observers);
        Ok(Orchestrator {
            client,
            plan: Arc::new(Mutex::new(PlanInner::new())),
            config: RunConfig {
                observers,
                max_in_flight: self.max_in_flight,
                verbose: self.verbose,
                job_deadline: self.job_deadline,
                journal: None,
                resume: None,
                check: false,
            },
            journal: self.journal,
        })
    }
}

impl Orchestrator {
    /// An orchestrator for the controller at `url` with a bearer `token`,
    /// rendering to stdout.
    pub fn new(url: &str, token: &str) -> Result<Orchestrator, ClientError> {
        Self::builder(url, token).build()
    }

    /// Options for a plan against an embedded stack, reached in this
    /// process (the same routes, checks and audit as over HTTP, without the
    /// loopback connection) with the stack's admin token.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use osapi_orchestrator::{Embedded, Orchestrator};
    /// let stack = Embedded::builder().start().await?;
    /// let o = Orchestrator::embedded(&stack).build()?;
    /// let host = o.node_hostname_get("_any");
    /// o.run().await?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "embedded")]
    pub fn embedded(stack: &osapi_embedded::Embedded) -> OrchestratorBuilder {
        Self::builder(stack.url(), stack.token()).local(stack.local_transport())
    }

    /// Options.
    pub fn builder(url: &str, token: &str) -> OrchestratorBuilder {
        OrchestratorBuilder {
            url: url.to_string(),
            token: token.to_string(),
            verbose: false,
            render: true,
            color: ColorChoice::Auto,
            json: None,
            render_to: None,
            observers: Vec::new(),
            max_in_flight: 64,
            request_timeout: None,
            job_deadline: DEFAULT_JOB_DEADLINE,
            journal: None,
            local: None,
        }
    }

    /// The REST client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn add<T>(&self, prefix: &str, kind: StepKind) -> Step<T> {
        let mut plan = lock(&self.plan);
        let name = plan.auto_name(prefix);
        let index = plan.push(StepSpec::new(name, kind));
        drop(plan);
        Step::new(self.plan.clone(), index)
    }

    pub(crate) fn add_invalid<T>(&self, prefix: &str, kind: StepKind, message: String) -> Step<T> {
        let step: Step<T> = self.add(prefix, kind);
        if let Some(spec) = lock(&self.plan).steps.last_mut() {
            Arc::make_mut(spec).invalid = Some(message);
        }
        step
    }

    /// A custom step named `name`: `f` gets the context (client, attempt,
    /// cancellation) and the results so far, and returns whether it changed
    /// anything plus optional data of type `T`.
    ///
    /// ```no_run
    /// # fn demo(o: &osapi_orchestrator::Orchestrator) {
    /// use osapi_orchestrator::{TaskOutput, types::HostnameResult};
    /// let host = o.node_hostname_get("_any");
    /// let summary = o
    ///     .task_fn("summarize", |_ctx, results| async move {
    ///         let h: HostnameResult = results.decode("get-hostname")?;
    ///         Ok(TaskOutput::changed(format!("ran on {}", h.hostname)))
    ///     })
    ///     .after(&host);
    /// # }
    /// ```
    pub fn task_fn<T, F, Fut>(&self, name: &str, f: F) -> Step<T>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(TaskContext, Results) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<TaskOutput<T>, TaskError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let body: plan::StepFn = Arc::new(move |ctx, results| {
            let fut = f(ctx, results);
            Box::pin(async move {
                let out = fut.await?;
                let data = match out.data {
                    Some(d) => serde_json::to_value(d)
                        .map_err(|e| TaskError(format!("cannot encode the step's result: {e}")))?,
                    None => serde_json::Value::Null,
                };
                Ok(FuncOutput {
                    changed: out.changed,
                    data,
                })
            })
        });
        let mut plan = lock(&self.plan);
        let index = plan.push(StepSpec::new(name.to_string(), StepKind::Func(body)));
        drop(plan);
        Step::new(self.plan.clone(), index)
    }

    /// [`Self::task_fn`] with data the step's code owns: `data` is handed
    /// to every call (a clone per attempt), so the closure needs no clone
    /// of its own to move captured values into its future.
    ///
    /// ```no_run
    /// # fn demo(o: &osapi_orchestrator::Orchestrator) {
    /// use osapi_orchestrator::TaskOutput;
    /// let host = o.node_hostname_get("_any");
    /// o.task_fn_with("summarize", host.clone(), |_ctx, results, host| async move {
    ///     let h = results.result(&host)?;
    ///     Ok(TaskOutput::changed(format!("ran on {}", h.hostname)))
    /// })
    /// .after(&host);
    /// # }
    /// ```
    pub fn task_fn_with<D, T, F, Fut>(&self, name: &str, data: D, f: F) -> Step<T>
    where
        D: Clone + Send + Sync + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(TaskContext, Results, D) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<TaskOutput<T>, TaskError>> + Send + 'static,
    {
        self.task_fn(name, move |ctx, results| f(ctx, results, data.clone()))
    }

    /// The plan as text: levels, steps, dependencies, guards and policies.
    pub fn explain(&self) -> String {
        plan::explain(&lock(&self.plan).steps)
    }

    /// Step names by level (for display).
    pub fn levels(&self) -> Result<Vec<Vec<String>>, PlanError> {
        let plan = lock(&self.plan);
        plan::validate(&plan.steps)?;
        let level = plan::levels(&plan.steps);
        Ok(plan::level_groups(&level)
            .into_iter()
            .map(|g| g.into_iter().map(|i| plan.steps[i].name.clone()).collect())
            .collect())
    }

    /// Runs the plan. `Err` carries the report when a step failed with
    /// `StopAll` (the default), the plan was invalid, or the run was cancelled.
    pub async fn run(&self) -> Result<Report, RunError> {
        self.run_with(CancellationToken::new()).await
    }

    /// Runs the plan until done or until `cancel` is cancelled.
    pub async fn run_with(&self, cancel: CancellationToken) -> Result<Report, RunError> {
        self.run_from(None, cancel).await
    }

    /// Runs the plan again after a run that stopped (a failure, Ctrl-C, a
    /// crash), from the journal at `path` (written with
    /// [`OrchestratorBuilder::journal`]): a step whose last entry there
    /// succeeded, with the same fingerprint (the same operation, target and
    /// parameters), is not run again; its recorded result counts as if it
    /// had just run (for guards, custom steps and the report, where it is
    /// marked `from_journal`). Failed, cancelled and never-started steps
    /// run. Custom steps are matched by name only.
    ///
    /// ```no_run
    /// # async fn demo(o: osapi_orchestrator::Orchestrator) -> Result<(), osapi_orchestrator::RunError> {
    /// let report = o.resume_from("deploy.journal").await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume_from(&self, path: impl AsRef<std::path::Path>) -> Result<Report, RunError> {
        let entries = crate::journal::read(path.as_ref()).map_err(|error| RunError::Journal {
            error,
            report: Box::default(),
        })?;
        self.run_from(Some(Arc::new(entries)), CancellationToken::new())
            .await
    }

    /// Runs the plan in check mode: nothing changes on the hosts or in the
    /// controller's store, and the report says what would. File deploys
    /// compare with each host's file (templates rendered with its facts)
    /// and return a unified diff (`FileDeployResult::diff`, shown in
    /// verbose output); DNS updates compare; commands and custom steps are
    /// skipped (`check mode`) unless marked `.safe_in_check()`; reads run.
    /// Guards see the predicted `changed`, so `only_if_changed` chains
    /// preview as they would run. Nothing is journaled.
    ///
    /// ```no_run
    /// # async fn demo(o: osapi_orchestrator::Orchestrator) -> Result<(), osapi_orchestrator::RunError> {
    /// let preview = o.check().await?;
    /// println!("{}", preview.summary());
    /// # Ok(()) }
    /// ```
    pub async fn check(&self) -> Result<Report, RunError> {
        let steps = lock(&self.plan).steps.clone();
        let plan = crate::check::prepare(&steps);
        let mut config = self.config.clone();
        config.check = true;
        let result = engine::spawn_run(
            self.client.clone(),
            plan.steps,
            config,
            CancellationToken::new(),
        )
        .await;
        for copy in plan.copies {
            // Gone already when no upload ran (a plan error, a stop).
            let _ = self.client.delete_file(&copy).await;
        }
        result
    }

    async fn run_from(
        &self,
        resume: Option<Arc<std::collections::HashMap<String, crate::journal::Entry>>>,
        cancel: CancellationToken,
    ) -> Result<Report, RunError> {
        let steps: Arc<[Arc<StepSpec>]> = lock(&self.plan).steps.clone().into();
        let mut config = self.config.clone();
        if let Some(path) = &self.journal {
            let writer = crate::journal::Writer::open(path).map_err(|error| RunError::Journal {
                error,
                report: Box::default(),
            })?;
            config.journal = Some(Arc::new(writer));
        }
        config.resume = resume;
        engine::spawn_run(self.client.clone(), steps, config, cancel).await
    }

    /// Agents matching every predicate (all agents without predicates), by hostname.
    pub async fn discover(&self, predicates: &[Predicate]) -> Result<Vec<AgentInfo>, ClientError> {
        let agents = self.client.agents().await?.agents;
        Ok(agents
            .into_iter()
            .filter(|a| match_all(a, predicates))
            .collect())
    }

    /// Matching agents grouped by a fact's value (`os.distribution`,
    /// `architecture`, a custom fact …); agents without the fact are left out.
    pub async fn group_by_fact(
        &self,
        key: &str,
        predicates: &[Predicate],
    ) -> Result<BTreeMap<String, Vec<AgentInfo>>, ClientError> {
        let mut groups: BTreeMap<String, Vec<AgentInfo>> = BTreeMap::new();
        for agent in self.discover(predicates).await? {
            if let Some(value) = fact_text(&agent, key) {
                groups.entry(value).or_default().push(agent);
            }
        }
        Ok(groups)
    }
}
