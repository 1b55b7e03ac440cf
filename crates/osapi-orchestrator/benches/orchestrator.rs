//! Orchestrator benchmarks on the embedded stack (controller, agents and
//! client in this process; the client reaches the controller in process,
//! `Orchestrator::embedded`):
//!
//! 1. a 100-step dependent chain of `node_hostname_get` (target ≤ 0.5 s);
//! 2. a broadcast `command_exec("_all", "true")` to 50 agents (target ≤ 1 s);
//! 3. a 3-step plan on 50 agents: exec `whoami`, a `when`-guarded exec `true`,
//!    deploy a small file (target ≤ 0.6 s);
//! 4. 10 000 `task_fn` steps in a random DAG (target ≤ 0.1 s);
//! 5. declaring 10 000 auto-named steps (target ≤ 20 ms);
//! 6. a 1 000-step dependent chain, declared and run (target ≤ 250 ms);
//! 7. the DAG of 4 with the live renderer drawing every step (to a
//!    line-buffered `/dev/null`, as stdout is): at most 20 % slower;
//! 8. a file deploy to 200 agents rolling in batches of 10 % against the
//!    same deploy at once: at most 1.5× the time.
//!
//! Run: `cargo bench -p osapi-orchestrator --bench orchestrator`. Each
//! scenario runs several times; medians are printed. `OSAPI_BENCH_ONLY=chain`
//! runs only 6 (20 times), `OSAPI_BENCH_ONLY=renderer` only 7 (for
//! profiling; `OSAPI_BENCH_RUNS=N` pairs of runs, 21 by default).
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::time::{Duration, Instant};

use osapi_agent::AgentConfig;
use osapi_agent::providers::{ProviderConfig, ResolvectlMode};
use osapi_orchestrator::prelude::*;
use osapi_orchestrator::render::{ColorChoice, Renderer};
use osapi_orchestrator::{Embedded, OrchestratorBuilder};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

async fn stack(agents: usize, dir: &tempfile::TempDir) -> Embedded {
    let mut b = Embedded::builder().bus_config(|c| c.max_jobs = 100_000);
    for i in 0..agents {
        let name = format!("agent-{i:02}");
        let mut c = AgentConfig::named(&name);
        c.providers = ProviderConfig {
            resolv_conf: dir.path().join("resolv.conf"),
            resolvectl: ResolvectlMode::Never,
            ..ProviderConfig::default()
        };
        b = b.agent(c);
    }
    b.start().await.expect("embedded stack")
}

fn orch(s: &Embedded) -> Orchestrator {
    Orchestrator::embedded(s)
        .quiet()
        .build()
        .expect("orchestrator")
}

async fn time_run(o: &Orchestrator) -> Duration {
    let t = Instant::now();
    let report = o.run().await.expect("run succeeds");
    assert_eq!(report.count(StepStatus::Failed), 0);
    t.elapsed()
}

/// Declares and runs a 1 000-step dependent chain; the time both take.
async fn chain(stack: &Embedded) -> Duration {
    let t = Instant::now();
    let o = orch(stack);
    let mut prev = o.node_hostname_get("_any");
    for _ in 1..1_000 {
        prev = o.node_hostname_get("_any").after(&prev);
    }
    time_run(&o).await;
    t.elapsed()
}

/// Declares 10 000 custom steps in a random DAG (each depends on up to 3
/// earlier steps).
fn dag(o: &Orchestrator) {
    let mut seed = 42u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut steps: Vec<Step<()>> = Vec::with_capacity(10_000);
    for i in 0..10_000usize {
        let mut s = o.task_fn(&format!("t{i}"), |_, _| async {
            Ok(TaskOutput::done_unchanged())
        });
        if i > 0 {
            for _ in 0..(next() % 4) {
                let dep = (next() as usize) % i;
                s = s.after(&steps[dep]);
            }
        }
        steps.push(s);
    }
}

fn offline() -> OrchestratorBuilder {
    Orchestrator::builder("http://127.0.0.1:1", "unused").quiet()
}

/// The DAG of [`dag`], quiet and drawn by the live renderer, alternating
/// (so that both see the same machine, which drifts): the medians.
async fn renderer_overhead() -> (Duration, Duration) {
    let (mut quiet, mut drawn) = (Vec::new(), Vec::new());
    let pairs = std::env::var("OSAPI_BENCH_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(21usize);
    for _ in 0..pairs {
        let o = offline().build().expect("orchestrator");
        dag(&o);
        quiet.push(time_run(&o).await);
        let sink = std::io::LineWriter::new(std::fs::File::create("/dev/null").expect("/dev/null"));
        let renderer = Renderer::new(Box::new(sink), ColorChoice::Never, false, false);
        let o = offline()
            .observer(std::sync::Arc::new(renderer))
            .build()
            .expect("orchestrator");
        dag(&o);
        drawn.push(time_run(&o).await);
    }
    (median(quiet), median(drawn))
}

/// Measures [`renderer_overhead`] and prints it, `note` after the ratio.
async fn print_renderer_overhead(note: &str) {
    let (quiet, drawn) = renderer_overhead().await;
    println!(
        "10 000-step DAG with the live renderer: median {} vs {} quiet ({:.0} % slower{note})",
        ms(drawn),
        ms(quiet),
        (drawn.as_secs_f64() / quiet.as_secs_f64() - 1.0) * 100.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("resolv.conf"), "nameserver 127.0.0.1\n").expect("resolv.conf");

        // `OSAPI_BENCH_ONLY=chain`: only the 1 000-step chain, 20 times
        // (for profiling).
        // `OSAPI_BENCH_ONLY=renderer`: only the renderer's overhead.
        if std::env::var("OSAPI_BENCH_ONLY").as_deref() == Ok("renderer") {
            print_renderer_overhead("").await;
            return;
        }
        if std::env::var("OSAPI_BENCH_ONLY").as_deref() == Ok("chain") {
            let one = stack(1, &dir).await;
            let mut samples = Vec::new();
            for _ in 0..20 {
                samples.push(chain(&one).await);
            }
            println!("1 000-step dependent chain, declared and run: median {}", ms(median(samples)));
            one.shutdown().await;
            return;
        }

        // 1. 100-step chain.
        let one = stack(1, &dir).await;
        let mut samples = Vec::new();
        for _ in 0..7 {
            let o = orch(&one);
            let mut prev = o.node_hostname_get("_any");
            for _ in 1..100 {
                prev = o.node_hostname_get("_any").after(&prev);
            }
            samples.push(time_run(&o).await);
        }
        println!("100-step dependent chain of node_hostname_get: median {} (target <= 500 ms)", ms(median(samples)));
        one.shutdown().await;

        // 2 and 3 on 50 agents.
        let fifty = stack(50, &dir).await;
        let mut samples = Vec::new();
        for _ in 0..7 {
            let o = orch(&fifty);
            let step = o.command_exec("_all", "true", &[]);
            let t = time_run(&o).await;
            let _ = step;
            samples.push(t);
        }
        println!("broadcast command_exec(_all, true) to 50 agents: median {} (target <= 1000 ms)", ms(median(samples)));

        let client = osapi_client::Client::new(fifty.url(), fifty.token()).expect("client");
        client
            .upload_file("motd", ContentType::Raw, &b"hello from the benchmark\n"[..], true)
            .await
            .expect("upload");
        let mut samples = Vec::new();
        for i in 0..7 {
            let o = orch(&fifty);
            let who = o.command_exec("_all", "whoami", &[]);
            let guarded = o
                .command_exec("_all", "true", &[])
                .after(&who)
                .when(|r| r.status("run-whoami") == StepStatus::Changed);
            let path = format!("{}/motd-{i}-@fact.hostname", dir.path().display());
            o.file_deploy("_all", FileDeployOpts::new("motd", path).mode("0644")).after(&guarded);
            samples.push(time_run(&o).await);
        }
        println!("3-step plan (whoami, when-guarded true, deploy) on 50 agents: median {} (target <= 600 ms)", ms(median(samples)));
        fifty.shutdown().await;

        // 8. A deploy to 200 agents, at once and rolling in batches of 10 %
        // (interleaved runs).
        let many = stack(200, &dir).await;
        let client = osapi_client::Client::new(many.url(), many.token()).expect("client");
        client
            .upload_file("motd", ContentType::Raw, &b"hello from the benchmark\n"[..], true)
            .await
            .expect("upload");
        let (mut plain, mut rolling) = (Vec::new(), Vec::new());
        for i in 0..5 {
            for batched in [false, true] {
                let o = orch(&many);
                let path = format!("{}/motd-{i}-{batched}-@fact.hostname", dir.path().display());
                let step = o.file_deploy("_all", FileDeployOpts::new("motd", path));
                if batched {
                    step.rolling(Rollout::batches(["10%"]));
                    rolling.push(time_run(&o).await);
                } else {
                    plain.push(time_run(&o).await);
                }
            }
        }
        let (plain, rolling) = (median(plain), median(rolling));
        println!(
            "deploy to 200 agents rolling in batches of 10 %: median {} vs {} at once ({:.2}x; target <= 1.5x)",
            ms(rolling),
            ms(plain),
            rolling.as_secs_f64() / plain.as_secs_f64()
        );
        many.shutdown().await;

        // 4. 10 000 custom steps in a random DAG (each depends on up to 3 earlier steps).
        let mut samples = Vec::new();
        for _ in 0..5 {
            let o = offline().build().expect("orchestrator");
            dag(&o);
            samples.push(time_run(&o).await);
        }
        println!("10 000 task_fn steps in a random DAG: median {} (target <= 100 ms)", ms(median(samples)));

        // 5. Declaring 10 000 auto-named steps (all `get-hostname`, `-2`, …).
        let mut samples = Vec::new();
        for _ in 0..5 {
            let o = offline().build().expect("orchestrator");
            let t = Instant::now();
            for _ in 0..10_000 {
                o.node_hostname_get("_any");
            }
            samples.push(t.elapsed());
        }
        println!("declaring 10 000 auto-named steps: median {} (target <= 20 ms)", ms(median(samples)));

        // 6. A 1 000-step dependent chain, declared and run.
        let one = stack(1, &dir).await;
        let mut samples = Vec::new();
        for _ in 0..5 {
            samples.push(chain(&one).await);
        }
        println!("1 000-step dependent chain, declared and run: median {} (target <= 250 ms)", ms(median(samples)));
        one.shutdown().await;

        // 7. The DAG of 4, drawn by the live renderer.
        print_renderer_overhead("; target <= 20 %").await;
    });
}
