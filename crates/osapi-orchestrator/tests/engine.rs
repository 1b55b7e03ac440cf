//! Engine semantics with custom steps only (no controller needed): scheduling,
//! skip rules, guards, error strategies, retries, timeouts, cancellation,
//! validation, explain, and the event stream. Adapted from upstream's engine
//! and DSL test lists.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use osapi_orchestrator::events::{Event, JsonLines, Observer};
use osapi_orchestrator::prelude::*;
use osapi_orchestrator::render::{ColorChoice, Renderer};
use osapi_orchestrator::{PlanError, StepRef};
use serde_json::{Value, json};
use support::SharedBuf;

fn orch() -> Orchestrator {
    Orchestrator::builder("http://127.0.0.1:1", "unused")
        .quiet()
        .build()
        .unwrap()
}

/// Records the events of a run.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn on_event(&self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::StepStarted { step, .. } => Some(format!("start {step}")),
                Event::StepSkipped { step, reason, .. } => Some(format!("skip {step}: {reason}")),
                Event::StepRetrying { step, attempt, .. } => {
                    Some(format!("retry {step} {attempt}"))
                }
                Event::StepFinished { step, status, .. } => {
                    Some(format!("done {step} {}", status.as_str()))
                }
                _ => None,
            })
            .collect()
    }
}

fn recorded() -> (Orchestrator, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let o = Orchestrator::builder("http://127.0.0.1:1", "unused")
        .quiet()
        .observer(rec.clone())
        .build()
        .unwrap();
    (o, rec)
}

fn ok(o: &Orchestrator, name: &str, changed: bool) -> Step<Value> {
    o.task_fn(name, move |_, _| async move {
        Ok(if changed {
            TaskOutput::changed(json!({"ok": true}))
        } else {
            TaskOutput::unchanged(json!({"ok": true}))
        })
    })
}

fn fail(o: &Orchestrator, name: &str) -> Step<Value> {
    o.task_fn(name, |_, _| async {
        Err::<TaskOutput<Value>, _>(TaskError::new("boom"))
    })
}

#[tokio::test]
async fn linear_chain_runs_in_order_and_summarises() {
    let (o, rec) = recorded();
    let a = ok(&o, "a", true);
    let b = ok(&o, "b", true).after(&a);
    ok(&o, "c", false).after(&b);
    let report = o.run().await.unwrap();
    assert_eq!(report.summary(), "3 steps, 2 changed, 1 unchanged");
    assert_eq!(
        rec.lines(),
        [
            "start a",
            "done a changed",
            "start b",
            "done b changed",
            "start c",
            "done c unchanged"
        ]
    );
    assert_eq!(
        report.steps.iter().map(|s| s.level).collect::<Vec<_>>(),
        [0, 1, 2]
    );
}

// Paused time: sleeps order the steps without waiting for the clock.
#[tokio::test(start_paused = true)]
async fn eager_scheduling_does_not_wait_for_unrelated_slow_steps() {
    let o = orch();
    let order = Arc::new(Mutex::new(Vec::new()));
    let log = |name: &'static str, ms: u64| {
        let order = order.clone();
        move |_: TaskContext, _: Results| {
            let order = order.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                order.lock().unwrap().push(name);
                Ok(TaskOutput::done_unchanged())
            }
        }
    };
    let slow = o.task_fn("slow", log("slow", 300));
    let fast = o.task_fn("fast", log("fast", 1));
    o.task_fn("after-fast", log("after-fast", 1)).after(&fast);
    o.task_fn("after-slow", log("after-slow", 1)).after(&slow);
    o.run().await.unwrap();
    // A level barrier would make after-fast wait for slow.
    assert_eq!(
        *order.lock().unwrap(),
        ["fast", "after-fast", "slow", "after-slow"]
    );
}

// Paused time: sleeps order the steps without waiting for the clock.
#[tokio::test(start_paused = true)]
async fn steps_in_a_level_run_concurrently_up_to_the_cap() {
    for (cap, expect_max) in [(64, 5), (2, 2)] {
        let o = Orchestrator::builder("http://127.0.0.1:1", "t")
            .quiet()
            .max_in_flight(cap)
            .build()
            .unwrap();
        let now = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        for i in 0..5 {
            let (now, peak) = (now.clone(), peak.clone());
            o.task_fn(&format!("s{i}"), move |_, _| {
                let (now, peak) = (now.clone(), peak.clone());
                async move {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    Ok(TaskOutput::done_unchanged())
                }
            });
        }
        o.run().await.unwrap();
        assert_eq!(peak.load(Ordering::SeqCst), expect_max, "cap {cap}");
    }
}

// Paused time: sleeps order the steps without waiting for the clock.
#[tokio::test(start_paused = true)]
async fn stop_all_finishes_running_steps_and_reports_the_rest_skipped() {
    let (o, rec) = recorded();
    let a = fail(&o, "a");
    let sibling = o.task_fn("sibling", |_, _| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(TaskOutput::done_changed())
    });
    ok(&o, "b", true).after(&a);
    ok(&o, "c", true).after(&sibling);
    let err = o.run().await.unwrap_err();
    let RunError::StepFailed {
        step,
        error,
        report,
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((step.as_str(), error.as_str()), ("a", "boom"));
    assert_eq!(
        report.step("sibling").unwrap().status,
        StepStatus::Changed,
        "running sibling finished"
    );
    let b = report.step("b").unwrap();
    assert_eq!(b.status, StepStatus::Skipped);
    assert_eq!(b.skip_reason.as_deref(), Some("dependency failed: a"));
    let c = report.step("c").unwrap();
    assert_eq!(c.status, StepStatus::Skipped);
    assert_eq!(
        c.skip_reason.as_deref(),
        Some("not run: step \"a\" failed and stopped the plan")
    );
    assert_eq!(report.summary(), "4 steps, 1 changed, 2 skipped, 1 failed");
    assert!(!rec.lines().contains(&"start c".to_string()));
}

#[tokio::test]
async fn continue_skips_dependents_transitively_and_runs_the_rest() {
    let o = orch();
    let a = fail(&o, "a").continue_on_error();
    let b = ok(&o, "b", true).after(&a);
    ok(&o, "c", true).after(&b);
    ok(&o, "d", true);
    let report = o
        .run()
        .await
        .expect("Continue failures do not fail the run");
    assert_eq!(report.step("a").unwrap().status, StepStatus::Failed);
    assert_eq!(report.step("b").unwrap().status, StepStatus::Skipped);
    assert_eq!(
        report.step("c").unwrap().skip_reason.as_deref(),
        Some("dependency failed: b"),
        "cascades"
    );
    assert_eq!(report.step("d").unwrap().status, StepStatus::Changed);
    assert!(!report.succeeded());
}

#[tokio::test]
async fn retries_compose_with_either_strategy() {
    // Retry then succeed.
    let (o, rec) = recorded();
    let tries = Arc::new(AtomicU32::new(0));
    let t = tries.clone();
    o.task_fn("flaky", move |ctx, _| {
        let t = t.clone();
        async move {
            t.fetch_add(1, Ordering::SeqCst);
            if ctx.attempt < 3 {
                Err(TaskError::new(format!("try {}", ctx.attempt)))
            } else {
                Ok(TaskOutput::done_changed())
            }
        }
    })
    .retry(2);
    let report = o.run().await.unwrap();
    assert_eq!(tries.load(Ordering::SeqCst), 3);
    assert_eq!(report.step("flaky").unwrap().attempts, 3);
    assert_eq!(
        rec.lines(),
        [
            "start flaky",
            "retry flaky 1",
            "retry flaky 2",
            "done flaky changed"
        ]
    );

    // Retries exhausted, then Continue: the run goes on (upstream's single slot lost the retries).
    let o = orch();
    let calls = Arc::new(AtomicU32::new(0));
    let c = calls.clone();
    let a = o
        .task_fn("a", move |_, _| {
            let c = c.clone();
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                Err::<TaskOutput<()>, _>(TaskError::new("still broken"))
            }
        })
        .retry(2)
        .continue_on_error();
    ok(&o, "independent", true);
    ok(&o, "dependent", true).after(&a);
    let report = o.run().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        report.step("a").unwrap().error.as_deref(),
        Some("still broken")
    );
    assert_eq!(
        report.step("independent").unwrap().status,
        StepStatus::Changed
    );

    // Back-off delays between attempts.
    let o = orch();
    let stamps = Arc::new(Mutex::new(Vec::new()));
    let s = stamps.clone();
    o.task_fn("slow-retry", move |_, _| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(Instant::now());
            Err::<TaskOutput<()>, _>(TaskError::new("no"))
        }
    })
    .retry_with(
        RetryPolicy::exponential(2)
            .initial(Duration::from_millis(50))
            .without_jitter(),
    );
    assert!(o.run().await.is_err());
    let s = stamps.lock().unwrap();
    assert_eq!(s.len(), 3);
    assert!(
        s[1] - s[0] >= Duration::from_millis(45) && s[2] - s[1] >= Duration::from_millis(95),
        "{:?}",
        (s[1] - s[0], s[2] - s[1])
    );
}

#[tokio::test]
async fn only_if_changed_and_guards() {
    let (o, _) = recorded();
    let unchanged = ok(&o, "unchanged", false);
    let changed = ok(&o, "changed", true);
    ok(&o, "needs-change", true)
        .after(&unchanged)
        .only_if_changed();
    ok(&o, "has-change", true)
        .after(&unchanged)
        .after(&changed)
        .only_if_changed();
    ok(&o, "no-deps", true).only_if_changed();
    ok(&o, "when-false", true).after(&changed).when(|_| false);
    ok(&o, "when-reason", true)
        .after(&changed)
        .when_with_reason("host is unreachable", |_| false);
    ok(&o, "when-reads-results", true)
        .after(&changed)
        .when(|r| r.status("changed") == StepStatus::Changed && r.changed("changed"));
    ok(&o, "all-changed", true)
        .after(&changed)
        .after(&unchanged)
        .only_if_all_changed();
    ok(&o, "all-changed-yes", true)
        .after(&changed)
        .only_if_all_changed();
    // Several guards all apply (upstream: the last one silently won).
    ok(&o, "two-guards", true)
        .after(&changed)
        .when(|_| true)
        .only_if_failed();
    let report = o.run().await.unwrap();
    let reason = |n: &str| report.step(n).unwrap().skip_reason.clone();
    assert_eq!(
        reason("needs-change").as_deref(),
        Some("no dependencies changed")
    );
    assert_eq!(
        report.step("has-change").unwrap().status,
        StepStatus::Changed
    );
    assert_eq!(
        reason("no-deps").as_deref(),
        Some("no dependencies changed")
    );
    assert_eq!(
        reason("when-false").as_deref(),
        Some("when: guard returned false")
    );
    assert_eq!(
        reason("when-reason").as_deref(),
        Some("host is unreachable")
    );
    assert_eq!(
        report.step("when-reads-results").unwrap().status,
        StepStatus::Changed
    );
    assert_eq!(
        reason("all-changed").as_deref(),
        Some("only-if-all-changed: not all dependencies changed")
    );
    assert_eq!(
        report.step("all-changed-yes").unwrap().status,
        StepStatus::Changed
    );
    assert_eq!(
        reason("two-guards").as_deref(),
        Some("only-if-failed: no dependency failed")
    );
}

#[tokio::test]
async fn guarded_steps_run_after_failures_and_guard_skips_do_not_cascade() {
    let o = orch();
    let a = fail(&o, "a").continue_on_error();
    let recover = ok(&o, "recover", true).after(&a).only_if_failed();
    let not_needed = ok(&o, "not-needed", true).after(&a).when(|_| false);
    ok(&o, "after-guard-skip", true).after(&not_needed);
    ok(&o, "after-recover", true).after(&recover);
    // A dependency-failed skip is not a failure to only_if_failed (it is not transitive).
    let skipped = ok(&o, "skipped", true).after(&a);
    ok(&o, "sees-skip", true).after(&skipped).only_if_failed();
    let report = o.run().await.unwrap();
    assert_eq!(report.step("recover").unwrap().status, StepStatus::Changed);
    assert_eq!(
        report.step("not-needed").unwrap().status,
        StepStatus::Skipped
    );
    assert_eq!(
        report.step("after-guard-skip").unwrap().status,
        StepStatus::Changed,
        "guard skips are not failures"
    );
    assert_eq!(
        report.step("after-recover").unwrap().status,
        StepStatus::Changed
    );
    assert_eq!(
        report.step("sees-skip").unwrap().skip_reason.as_deref(),
        Some("only-if-failed: no dependency failed")
    );
}

// Paused time: sleeps order the steps without waiting for the clock.
#[tokio::test(start_paused = true)]
async fn timeouts_and_cancellation() {
    let o = orch();
    o.task_fn("sleepy", |_, _| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(TaskOutput::done_unchanged())
    })
    .timeout(Duration::from_millis(50))
    .continue_on_error();
    let started = Instant::now();
    let report = o.run().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        report.step("sleepy").unwrap().error.as_deref(),
        Some("timed out after 50ms")
    );

    let o = orch();
    let long = o.task_fn("long", |ctx, _| async move {
        ctx.cancel.cancelled().await;
        Err::<TaskOutput<()>, _>(TaskError::new("stopped"))
    });
    ok(&o, "later", true).after(&long);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = o.run_with(cancel).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let RunError::Cancelled { report } = err else {
        panic!("expected cancellation")
    };
    assert_eq!(report.step("long").unwrap().status, StepStatus::Failed);
    assert_eq!(
        report.step("later").unwrap().skip_reason.as_deref(),
        Some("not run: the run was cancelled")
    );
}

/// Tells a channel when dropped.
struct DropSignal(Option<tokio::sync::oneshot::Sender<()>>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

// The engine runs in a task of its own: dropping the run must still stop
// every step it started, as dropping any future stops its work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_run_stops_its_steps() {
    let o = orch();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let parts = Arc::new(Mutex::new(Some((started_tx, dropped_tx))));
    let after_drop = Arc::new(AtomicU32::new(0));
    let ran_on = after_drop.clone();
    let forever = o.task_fn("forever", move |_, _| {
        let parts = parts.lock().unwrap().take();
        async move {
            let (started, dropped) = parts.expect("runs once");
            let _signal = DropSignal(Some(dropped));
            let _ = started.send(());
            std::future::pending::<()>().await;
            Ok(TaskOutput::done_unchanged())
        }
    });
    let next = ok(&o, "next", true).after(&forever);
    o.task_fn("never", move |_, _| {
        ran_on.fetch_add(1, Ordering::SeqCst);
        async { Ok(TaskOutput::done_unchanged()) }
    })
    .after(&next);
    tokio::select! {
        _ = o.run() => panic!("the run cannot finish"),
        _ = started_rx => {}
    }
    // The run future is dropped here; its step's future must be too.
    tokio::time::timeout(Duration::from_secs(10), dropped_rx)
        .await
        .expect("the step was still running 10 s after its run was dropped")
        .unwrap();
    assert_eq!(after_drop.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn panics_become_failures() {
    let o = orch();
    o.task_fn("explodes", |_, _| async {
        if true {
            panic!("kaboom");
        }
        Ok(TaskOutput::done_unchanged())
    })
    .continue_on_error();
    ok(&o, "guard-explodes", true)
        .when(|_| panic!("guard kaboom"))
        .continue_on_error();
    let report = o.run().await.unwrap();
    assert_eq!(
        report.step("explodes").unwrap().error.as_deref(),
        Some("step panicked: kaboom")
    );
    assert_eq!(
        report.step("guard-explodes").unwrap().error.as_deref(),
        Some("when guard panicked: guard kaboom")
    );
}

#[tokio::test]
async fn results_flow_to_later_steps_and_decode() {
    let o = orch();
    let first = o.task_fn("first", |_, _| async {
        Ok(TaskOutput::changed(json!({"hostname": "web-01"})))
    });
    let second = o
        .task_fn("second", |_, results| async move {
            let h: HostnameResult = results.decode("first")?;
            Ok(TaskOutput::unchanged(format!("saw {}", h.hostname)))
        })
        .after(&first);
    let report = o.run().await.unwrap();
    let saw: String = report.result(&second).unwrap();
    assert_eq!(saw, "saw web-01");
    assert_eq!(
        report.decode::<HostnameResult>("first").unwrap().hostname,
        "web-01"
    );
    assert!(matches!(
        report.decode::<HostnameResult>("nope"),
        Err(DecodeError::NoStep(_))
    ));
    assert!(matches!(
        report.decode::<u32>("first"),
        Err(DecodeError::Invalid { .. })
    ));
}

#[tokio::test]
async fn validation_rejects_bad_plans_before_anything_runs() {
    let (o, rec) = recorded();
    ok(&o, "x", true);
    ok(&o, "x", true);
    let err = o.run().await.unwrap_err();
    assert!(
        matches!(
            err,
            RunError::Plan {
                error: PlanError::DuplicateName { .. },
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "plan validation: duplicate step name \"x\" (steps #1 and #2); rename one with .named(…)"
    );
    assert!(
        rec.0.lock().unwrap().is_empty(),
        "no event before validation passes"
    );

    let o = orch();
    let a = ok(&o, "a", true);
    let b = ok(&o, "b", true).after(&a);
    let _ = a.clone().after(&b);
    let err = o.run().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "plan validation: cycle detected: a -> b -> a"
    );
    assert!(o.explain().starts_with("invalid plan: cycle detected"));

    let other = orch();
    let foreign = ok(&other, "foreign", true);
    let o = orch();
    ok(&o, "mine", true).after(&foreign);
    assert!(matches!(
        o.run().await.unwrap_err(),
        RunError::Plan {
            error: PlanError::ForeignDependency { .. },
            ..
        }
    ));

    let o = orch();
    o.command_shell("_any", "   ");
    o.file_deploy("_any", FileDeployOpts::new("x", "relative/path"));
    o.node_hostname_get("bad target");
    let err = o.run().await.unwrap_err().to_string();
    assert!(err.contains("command must not be empty"), "{err}");

    // A colon makes a label selector, and half of one is a plan error.
    for target in ["role:", ":web"] {
        let o = orch();
        let step = o.node_hostname_get(target);
        let err = o.run().await.unwrap_err().to_string();
        assert!(
            err.contains(&step.name()) && err.contains("key:value with both parts"),
            "{target}: {err}"
        );
    }
}

#[tokio::test]
async fn explain_shows_levels_guards_and_policies() {
    let o = orch();
    let health = o.health_check();
    let host = o
        .node_hostname_get("_all")
        .after(&health)
        .retry(3)
        .timeout(Duration::from_secs(30));
    let list = o.agent_list().after(&health);
    o.command_exec("role:web", "uptime", &[])
        .after(&host)
        .only_if_changed()
        .when_fact(&list, os("debian"))
        .continue_on_error()
        .tolerate_host_failures(1);
    let text = o.explain();
    assert_eq!(
        text,
        "Plan: 4 steps, 3 levels\n\nLevel 0:\n  health-check [fn]\n\nLevel 1 (parallel):\n  get-hostname [job node.hostname.get -> _all] <- health-check (retry 3, timeout 30s)\n  list-agents [fn] <- health-check\n\nLevel 2:\n  run-uptime [job command.exec.execute -> role:web] <- get-hostname, list-agents (only-if-changed, when-fact os == \"debian\" on list-agents, continue-on-error, tolerate 1 failed hosts)\n"
    );
    assert_eq!(
        o.levels().unwrap(),
        vec![
            vec!["health-check"],
            vec!["get-hostname", "list-agents"],
            vec!["run-uptime"]
        ]
    );
}

#[tokio::test]
async fn json_events_stream_every_event_as_a_line() {
    let buf = SharedBuf::default();
    let o = Orchestrator::builder("http://127.0.0.1:1", "t")
        .quiet()
        .json_events(buf.clone())
        .build()
        .unwrap();
    let a = ok(&o, "a", true);
    ok(&o, "b", false).after(&a).when(|_| false);
    o.run().await.unwrap();
    let text = buf.text();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "plan_started",
            "level_started",
            "step_started",
            "step_finished",
            "level_finished",
            "level_started",
            "step_skipped",
            "level_finished",
            "plan_finished"
        ]
    );
    assert!(
        events
            .iter()
            .all(|e| e["ts"].as_str().is_some_and(|t| t.ends_with('Z')))
    );
    assert_eq!(events[0]["steps"], 2);
    assert_eq!(events[3]["status"], "changed");
    assert_eq!(events[6]["reason"], "when: guard returned false");
    assert_eq!(events[8]["summary"], "2 steps, 1 changed, 1 skipped");
    assert_eq!(events[8]["success"], true);
}

#[tokio::test]
async fn after_all_accepts_mixed_step_types() {
    let o = orch();
    let a = ok(&o, "a", true);
    let b = o.health_check().named("b");
    let deps: Vec<StepRef> = vec![(&a).into(), (&b).into()];
    let c = ok(&o, "c", true).after_all(&deps);
    assert_eq!(c.name(), "c");
    assert!(o.explain().contains("c [fn] <- a, b"));
}

#[tokio::test]
async fn empty_plan_runs() {
    let (o, rec) = recorded();
    let report = o.run().await.unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.summary(), "0 steps");
    assert!(matches!(
        rec.0.lock().unwrap().first(),
        Some(Event::PlanStarted { steps: 0, .. })
    ));
}

#[test]
fn json_lines_sink_is_usable_directly() {
    let sink = JsonLines::new(Vec::new());
    sink.on_event(&Event::StepSkipped {
        step: "x".into(),
        level: 0,
        reason: "r".into(),
    });
    let out = String::from_utf8(sink.into_inner()).unwrap();
    assert!(out.ends_with("}\n") && out.contains(r#""event":"step_skipped""#));
}

#[tokio::test]
async fn a_guard_skip_never_cascades_whatever_its_reason_says() {
    let o = orch();
    let a = ok(&o, "a", true);
    // A user reason worded like a dependency failure is still a guard skip.
    let b = ok(&o, "b", true)
        .after(&a)
        .when_with_reason("dependency failed: pretend", |_| false);
    ok(&o, "c", true).after(&b);
    let report = o.run().await.unwrap();
    let b = report.step("b").unwrap();
    assert_eq!(b.status, StepStatus::Skipped);
    assert_eq!(b.skip_reason.as_deref(), Some("dependency failed: pretend"));
    assert_eq!(
        report.step("c").unwrap().status,
        StepStatus::Changed,
        "a skipped (not failed) dependency does not skip its dependents"
    );
}

#[tokio::test]
async fn render_to_draws_the_run_into_a_writer_with_one_verbose_switch() {
    let buf = SharedBuf::default();
    let o = Orchestrator::builder("http://127.0.0.1:1", "unused")
        .render_to(buf.clone())
        .verbose()
        .build()
        .unwrap();
    o.task_fn("count", |_, _| async {
        Ok(TaskOutput::changed(serde_json::json!({"items": 3})))
    });
    o.run().await.unwrap();
    let out = buf.text();
    assert!(out.contains("Plan: 1 step in 1 level"), "{out}");
    assert!(out.contains("[changed]   count"), "{out}");
    assert!(out.contains("items: 3"), "verbose shows the data: {out}");
    assert!(!out.contains('\u{1b}'), "no colour in a writer: {out}");
}

#[tokio::test]
async fn steps_are_looked_up_by_name_or_handle_in_guards_and_reports() {
    let o = orch();
    let a = ok(&o, "a", true);
    let handle = a.clone();
    let b = ok(&o, "b", true)
        .after(&a)
        .when(move |r| r.changed(&handle) && r.status("a") == StepStatus::Changed);
    let report = o.run().await.unwrap();
    assert_eq!(report.step(&b).unwrap().status, StepStatus::Changed);
    assert_eq!(report.step("b").unwrap().status, StepStatus::Changed);
    let untyped: StepRef = (&a).into();
    assert_eq!(report.step(&untyped).unwrap().name, "a");
}

#[tokio::test]
async fn task_fn_with_hands_its_data_to_every_attempt() {
    let o = orch();
    let first = ok(&o, "first", true);
    let attempts = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = attempts.clone();
    let second = o
        .task_fn_with("second", first.clone(), move |ctx, results, first| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let data: Value = results.result(&first)?;
                if ctx.attempt < 2 {
                    return Err(TaskError("not yet".into()));
                }
                Ok(TaskOutput::unchanged(data))
            }
        })
        .after(&first)
        .retry(2);
    let report = o.run().await.unwrap();
    assert_eq!(report.result(&second).unwrap(), json!({"ok": true}));
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// What the steps of [`steps_saying_they_run`] said, in `lines`: each
/// line's index, its step and whether it was the step's first attempt.
fn bodies<S: AsRef<str>>(lines: &[S]) -> Vec<(usize, &str, bool)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(at, line)| {
            let (step, attempt) = line.as_ref().strip_prefix("body ")?.split_once(' ')?;
            Some((at, step, attempt == "1"))
        })
        .collect()
}

/// Declares a root step and `n` custom steps `s0`… after it, each saying
/// `body <step> <attempt>` through `say` when its code runs; `s7` fails its
/// first attempt and is retried.
fn steps_saying_they_run(
    o: &Orchestrator,
    n: usize,
    say: impl Fn(String) + Clone + Send + Sync + 'static,
) {
    let root = o.task_fn("root", |_, _| async { Ok(TaskOutput::done_unchanged()) });
    for i in 0..n {
        let say = say.clone();
        let name = format!("s{i}");
        o.task_fn(&name.clone(), move |ctx, _| {
            let (say, name) = (say.clone(), name.clone());
            async move {
                say(format!("body {name} {}", ctx.attempt));
                if name == "s7" && ctx.attempt == 1 {
                    Err(TaskError::new("once more"))
                } else {
                    Ok(TaskOutput::done_unchanged())
                }
            }
        })
        .after(&root)
        .retry(1);
    }
}

/// Writes "event <kind> <step>" and "flush" into one log shared with the
/// steps' bodies.
struct FlushLog(Arc<Mutex<Vec<String>>>);

impl Observer for FlushLog {
    fn on_event(&self, e: &Event) {
        let line = match e {
            Event::StepStarted { step, .. } => format!("started {step}"),
            Event::StepRetrying { step, .. } => format!("retrying {step}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
    fn flush(&self) {
        self.0.lock().unwrap().push("flush".into());
    }
}

/// Observers write what they hold back before a custom step's code runs,
/// on every attempt, so what the code prints comes after the lines drawn
/// for it (many steps start together: one flush may serve them all).
#[tokio::test]
async fn observers_flush_before_custom_code_runs() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let o = Orchestrator::builder("http://127.0.0.1:1", "unused")
        .quiet()
        .observer(Arc::new(FlushLog(log.clone())))
        .build()
        .unwrap();
    let sink = log.clone();
    steps_saying_they_run(&o, 20, move |line| sink.lock().unwrap().push(line));
    o.run().await.unwrap();
    let log = log.lock().unwrap().clone();
    let said = bodies(&log);
    for &(at, step, first) in &said {
        let line = &log[at];
        let announced = if first {
            format!("started {step}")
        } else {
            format!("retrying {step}")
        };
        let event = log[..at]
            .iter()
            .rposition(|l| *l == announced)
            .unwrap_or_else(|| panic!("{line} before {announced}: {log:#?}"));
        assert!(
            log[event..at].iter().any(|l| l == "flush"),
            "no flush between {announced} and {line}: {log:#?}"
        );
    }
    assert_eq!(said.len(), 21, "{log:#?}");
}

/// With the terminal renderer (which collects lines and writes them in
/// batches), what each custom step writes to the same output comes after
/// the step's `[start]` line, for many steps started at once and on a
/// retry: a step's own lines are written before its code runs, whichever
/// step's task writes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendered_lines_come_before_what_custom_code_prints() {
    let buf = SharedBuf::default();
    let renderer = Renderer::new(Box::new(buf.clone()), ColorChoice::Never, false, false);
    let o = Orchestrator::builder("http://127.0.0.1:1", "unused")
        .quiet()
        .observer(Arc::new(renderer))
        .build()
        .unwrap();
    let out = buf.clone();
    steps_saying_they_run(&o, 300, move |line| {
        let mut out = out.0.lock().unwrap();
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    });
    o.run().await.unwrap();
    let text = buf.text();
    let lines: Vec<&str> = text.lines().collect();
    let said = bodies(&lines);
    for &(at, step, first) in &said {
        let line = lines[at];
        let tag = if first { "[start]" } else { "[retry]" };
        assert!(
            lines[..at].iter().any(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(tag) && words.next() == Some(step)
            }),
            "{line} before its {tag} line:\n{text}"
        );
    }
    assert_eq!(said.len(), 301, "{text}");
}

/// A plan of three custom steps a → b → c, counting the runs of each;
/// `c` fails when `c_fails`, and sleeps `c_sleeps` first.
fn journaled_plan(
    journal: &std::path::Path,
    runs: &Arc<[AtomicU32; 3]>,
    c_fails: bool,
    c_sleeps: Duration,
) -> Orchestrator {
    let o = Orchestrator::builder("http://127.0.0.1:1", "unused")
        .quiet()
        .journal(journal)
        .build()
        .unwrap();
    let counted = |i: usize| {
        let runs = runs.clone();
        move || {
            runs[i].fetch_add(1, Ordering::SeqCst);
        }
    };
    let (ra, rb, rc) = (counted(0), counted(1), counted(2));
    let a = o.task_fn("a", move |_, _| {
        ra();
        async { Ok(TaskOutput::changed(json!({"version": 2}))) }
    });
    let b = o
        .task_fn("b", move |_, results| {
            rb();
            // Reads a's result: from the journal on a resumed run.
            let version = results
                .decode::<Value>("a")
                .ok()
                .map(|v| v["version"].clone());
            async move { Ok(TaskOutput::unchanged(json!({"saw": version}))) }
        })
        .after(&a);
    o.task_fn("c", move |_, _| {
        rc();
        async move {
            tokio::time::sleep(c_sleeps).await;
            if c_fails {
                Err::<TaskOutput<()>, _>(TaskError::new("disk full"))
            } else {
                Ok(TaskOutput::done_changed())
            }
        }
    })
    .after(&b);
    o
}

/// Every finished step is a journal line; a resumed run takes the steps
/// that succeeded from it (they do not run again; later steps read their
/// results) and runs the rest.
#[tokio::test]
async fn journal_then_resume_runs_only_what_did_not_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.journal");
    let runs: Arc<[AtomicU32; 3]> = Arc::new(Default::default());
    let first = journaled_plan(&journal, &runs, true, Duration::ZERO);
    let failed = first.run().await.unwrap_err();
    assert_eq!(
        failed.report().summary(),
        "3 steps, 1 changed, 1 unchanged, 1 failed"
    );
    let lines: Vec<Value> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let names: Vec<&str> = lines.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(lines[2]["status"], "failed");
    assert_eq!(lines[2]["error"], "disk full");
    assert_eq!(lines[0]["data"], json!({"version": 2}));
    assert!(
        lines
            .iter()
            .all(|l| l["fingerprint"].as_str().unwrap().len() == 32)
    );

    let resumed = journaled_plan(&journal, &runs, false, Duration::ZERO);
    let report = resumed.resume_from(&journal).await.unwrap();
    // a and b ran once (in the first run), c twice.
    let counts: Vec<u32> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [1, 1, 2]);
    assert!(report.step("a").unwrap().from_journal);
    assert_eq!(report.step("a").unwrap().status, StepStatus::Changed);
    assert_eq!(report.step("b").unwrap().data, json!({"saw": 2}));
    assert!(!report.step("c").unwrap().from_journal);
    assert_eq!(
        report.summary(),
        "3 steps, 2 changed, 1 unchanged, 2 from the journal"
    );
    // The journal now ends with c's success: a third run takes everything.
    let third = journaled_plan(&journal, &runs, false, Duration::ZERO);
    let report = third.resume_from(&journal).await.unwrap();
    assert!(report.steps.iter().all(|s| s.from_journal));
    assert_eq!(runs[2].load(Ordering::SeqCst), 2);
    // A missing journal is an error before anything runs.
    let err = third
        .resume_from(dir.path().join("nope"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(err.report().steps.is_empty());
}

/// Set in the child process of `resume_after_a_killed_run`: the journal to
/// write before being killed.
const CHILD_JOURNAL: &str = "OSAPI_TEST_CHILD_JOURNAL";

/// A run killed with SIGKILL (while `c` runs) leaves a journal that a new
/// process resumes from: `a` and `b` are not run again.
#[tokio::test]
async fn resume_after_a_killed_run() {
    let runs: Arc<[AtomicU32; 3]> = Arc::new(Default::default());
    if let Ok(path) = std::env::var(CHILD_JOURNAL) {
        // The child: runs until killed (c sleeps far longer than the test).
        let o = journaled_plan(
            std::path::Path::new(&path),
            &runs,
            false,
            Duration::from_secs(600),
        );
        let _ = o.run().await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("run.journal");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "resume_after_a_killed_run", "--nocapture"])
        .env(CHILD_JOURNAL, &journal)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for a's and b's lines (c's cannot come: it sleeps).
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&journal).map_or(0, |t| t.lines().count()) < 2 {
        assert!(Instant::now() < deadline, "the child wrote no journal");
        assert!(child.try_wait().unwrap().is_none(), "the child ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let o = journaled_plan(&journal, &runs, false, Duration::ZERO);
    let report = o.resume_from(&journal).await.unwrap();
    let counts: Vec<u32> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, [0, 0, 1], "only c runs in this process");
    assert_eq!(report.step("b").unwrap().data, json!({"saw": 2}));
    assert_eq!(
        report.summary(),
        "3 steps, 2 changed, 1 unchanged, 2 from the journal"
    );
}
