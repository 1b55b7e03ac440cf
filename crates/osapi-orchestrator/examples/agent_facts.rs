//! Agent facts: list the fleet and print what every agent reports about its
//! host.
//!
//! DAG: `health-check` → `list-agents` → `print-agent-facts` (custom step
//! that decodes `list-agents`).
//!
//! Prints `  Agents: <n> total`, a blank line, then for each agent
//! `  Agent: <hostname>` followed by indented Status, Architecture, Kernel,
//! CPUs, FQDN, Package Mgr, Service Mgr, Uptime, Labels (`k=v`, sorted),
//! Started and Registered (`%Y-%m-%d %H:%M:%S`, UTC), OS, Load, Memory,
//! Interfaces (`name ipv4=… mac=…`), custom Facts, and a blank line.
//!
//! Relative to upstream: upstream's load averages were always `0.00` (its
//! result type's JSON keys did not match the API's) and labels printed in Go
//! map syntax; a failed decode was silently ignored. We print the real load,
//! `k=v` labels and the custom facts, and a decode error fails the step.
//!
//! `cargo run --example agent-facts` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller.

mod common;

use osapi_orchestrator::prelude::*;
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

fn timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_else(|_| t.to_string())
}

fn fact_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_agent(a: &AgentInfo) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    println!("  Agent: {}", a.hostname);
    println!("    Status:       {}", a.status);
    println!("    Architecture: {}", text(&a.architecture));
    println!("    Kernel:       {}", text(&a.kernel_version));
    println!("    CPUs:         {}", a.cpu_count.unwrap_or(0));
    println!("    FQDN:         {}", text(&a.fqdn));
    println!("    Package Mgr:  {}", text(&a.package_mgr));
    println!("    Service Mgr:  {}", text(&a.service_mgr));
    println!("    Uptime:       {}", text(&a.uptime));
    println!("    Labels:       {}", common::key_values(&a.labels));
    if let Some(t) = a.started_at {
        println!("    Started:      {}", timestamp(t));
    }
    if let Some(t) = a.registered_at {
        println!("    Registered:   {}", timestamp(t));
    }
    if let Some(os) = &a.os_info {
        println!("    OS:           {} {}", os.distribution, os.version);
    }
    if let Some(l) = &a.load_average {
        println!(
            "    Load:         {:.2} {:.2} {:.2}",
            l.one_min, l.five_min, l.fifteen_min
        );
    }
    if let Some(m) = &a.memory {
        println!(
            "    Memory:       total={} used={} free={}",
            m.total, m.used, m.free
        );
    }
    if !a.interfaces.is_empty() {
        println!("    Interfaces:");
        for i in &a.interfaces {
            println!(
                "      {:<12} ipv4={:<15} mac={}",
                i.name,
                i.ipv4.as_deref().unwrap_or(""),
                i.mac.as_deref().unwrap_or("")
            );
        }
    }
    if !a.facts.is_empty() {
        let facts: Vec<String> = a
            .facts
            .iter()
            .map(|(k, v)| format!("{k}={}", fact_value(v)))
            .collect();
        println!("    Facts:        {}", facts.join(", "));
    }
    println!();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let agents = o.agent_list().after(&health);
    let agents_step = agents.name();
    o.task_fn("print-agent-facts", move |_ctx, results| {
        let agents_step = agents_step.clone();
        async move {
            let list: AgentListResult = results.decode(&agents_step)?;
            println!("  Agents: {} total", list.total);
            println!();
            for a in &list.agents {
                print_agent(a);
            }
            Ok(TaskOutput::done_unchanged())
        }
    })
    .after(&agents);

    env.run(&o).await?;
    env.shutdown().await;
    Ok(())
}
