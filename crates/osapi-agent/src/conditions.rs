//! Node conditions evaluated on every heartbeat: `MemoryPressure`,
//! `HighLoad` and `DiskPressure`, always in that order.
//!
//! Unlike upstream, the thresholds have defaults (90 %, 2.0 × CPUs, 90 %),
//! so an agent without a `conditions` section does not report pressure all
//! the time.

use osapi_api::agent::{NodeCondition, condition};
use osapi_api::results::{DiskUsage, LoadResult, MemoryResult};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Bytes in the "GB" of condition reasons (upstream divides by 1024³).
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Limits above which a condition is true.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditionThresholds {
    /// Memory used (total − available) in percent of total (default 90).
    pub memory_pressure_percent: f64,
    /// 1-minute load above CPUs × this (default 2.0).
    pub high_load_multiplier: f64,
    /// Any filesystem's used share in percent (default 90).
    pub disk_pressure_percent: f64,
}

impl Default for ConditionThresholds {
    fn default() -> Self {
        ConditionThresholds {
            memory_pressure_percent: 90.0,
            high_load_multiplier: 2.0,
            disk_pressure_percent: 90.0,
        }
    }
}

/// Evaluates the three conditions.
///
/// Without data (no memory figures or a zero total, no load, `cpu_count` 0,
/// no disks) a condition is false. `last_transition_time` keeps the value
/// from `previous` while a condition's status is unchanged, and is `now`
/// otherwise.
pub fn evaluate(
    previous: &[NodeCondition],
    memory: Option<&MemoryResult>,
    load: Option<&LoadResult>,
    cpu_count: u32,
    disks: &[DiskUsage],
    thresholds: &ConditionThresholds,
    now: OffsetDateTime,
) -> Vec<NodeCondition> {
    let memory_reason = memory.filter(|m| m.total > 0).and_then(|m| {
        let used = m.total.saturating_sub(m.available);
        let pct = used as f64 / m.total as f64 * 100.0;
        (pct > thresholds.memory_pressure_percent).then(|| {
            format!(
                "memory {pct:.0}% used ({:.1}/{:.1} GB)",
                used as f64 / GIB,
                m.total as f64 / GIB
            )
        })
    });

    let load_reason = load.filter(|_| cpu_count > 0).and_then(|l| {
        let threshold = f64::from(cpu_count) * thresholds.high_load_multiplier;
        (l.load1 > threshold).then(|| {
            format!(
                "load {:.2}, threshold {threshold:.2} for {cpu_count} CPUs",
                l.load1
            )
        })
    });

    let disk_reason = disks.iter().filter(|d| d.total > 0).find_map(|d| {
        let pct = d.used as f64 / d.total as f64 * 100.0;
        (pct > thresholds.disk_pressure_percent).then(|| {
            format!(
                "{} {pct:.0}% used ({:.1}/{:.1} GB)",
                d.name,
                d.used as f64 / GIB,
                d.total as f64 / GIB
            )
        })
    });

    [
        (condition::MEMORY_PRESSURE, memory_reason),
        (condition::HIGH_LOAD, load_reason),
        (condition::DISK_PRESSURE, disk_reason),
    ]
    .into_iter()
    .map(|(kind, reason)| {
        let status = reason.is_some();
        let last_transition_time = previous
            .iter()
            .find(|c| c.condition_type == kind && c.status == status)
            .map_or(now, |c| c.last_transition_time);
        NodeCondition {
            condition_type: kind.to_string(),
            status,
            reason,
            last_transition_time,
        }
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const GB: u64 = 1024 * 1024 * 1024;

    fn mem(total: u64, available: u64) -> MemoryResult {
        MemoryResult {
            total,
            available,
            ..Default::default()
        }
    }

    fn load1(v: f64) -> LoadResult {
        LoadResult {
            load1: v,
            ..Default::default()
        }
    }

    fn disk(name: &str, total: u64, used: u64) -> DiskUsage {
        DiskUsage {
            name: name.into(),
            total,
            used,
            free: total - used,
            ..Default::default()
        }
    }

    #[test]
    fn defaults() {
        let t = ConditionThresholds::default();
        assert_eq!(
            (
                t.memory_pressure_percent,
                t.high_load_multiplier,
                t.disk_pressure_percent
            ),
            (90.0, 2.0, 90.0)
        );
        let partial: ConditionThresholds =
            serde_json::from_str(r#"{"high_load_multiplier": 4}"#).unwrap();
        assert_eq!(partial.high_load_multiplier, 4.0);
        assert_eq!(partial.memory_pressure_percent, 90.0);
    }

    #[test]
    fn no_data_is_false_in_order() {
        let now = datetime!(2026-03-06 10:00 UTC);
        let c = evaluate(
            &[],
            None,
            Some(&load1(100.0)),
            0,
            &[],
            &Default::default(),
            now,
        );
        let kinds: Vec<&str> = c.iter().map(|c| c.condition_type.as_str()).collect();
        assert_eq!(kinds, ["MemoryPressure", "HighLoad", "DiskPressure"]);
        assert!(
            c.iter()
                .all(|c| !c.status && c.reason.is_none() && c.last_transition_time == now)
        );
        let c = evaluate(
            &[],
            Some(&mem(0, 0)),
            None,
            4,
            &[disk("/", 0, 0)],
            &Default::default(),
            now,
        );
        assert!(c.iter().all(|c| !c.status));
    }

    #[test]
    fn table() {
        let now = datetime!(2026-03-06 10:00 UTC);
        let t = ConditionThresholds::default();
        struct Case {
            memory: MemoryResult,
            load: f64,
            cpus: u32,
            disks: Vec<DiskUsage>,
            expect: [Option<&'static str>; 3],
        }
        let cases = [
            Case {
                memory: mem(16 * GB, 8 * GB),
                load: 1.0,
                cpus: 4,
                disks: vec![disk("/", 100 * GB, 50 * GB)],
                expect: [None, None, None],
            },
            Case {
                memory: mem(16 * GB, GB),
                load: 8.5,
                cpus: 4,
                disks: vec![
                    disk("/boot", 0, 0),
                    disk("/", 100 * GB, 50 * GB),
                    disk("/data", 200 * GB, 186 * GB),
                    disk("/srv", 10 * GB, 10 * GB),
                ],
                expect: [
                    Some("memory 94% used (15.0/16.0 GB)"),
                    Some("load 8.50, threshold 8.00 for 4 CPUs"),
                    Some("/data 93% used (186.0/200.0 GB)"),
                ],
            },
            // Exactly at the threshold is not above it.
            Case {
                memory: mem(10 * GB, GB),
                load: 8.0,
                cpus: 4,
                disks: vec![disk("/", 10 * GB, 9 * GB)],
                expect: [None, None, None],
            },
            Case {
                memory: mem(1000, 0),
                load: 0.01,
                cpus: 0,
                disks: vec![],
                expect: [Some("memory 100% used (0.0/0.0 GB)"), None, None],
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let c = evaluate(
                &[],
                Some(&case.memory),
                Some(&load1(case.load)),
                case.cpus,
                &case.disks,
                &t,
                now,
            );
            for (cond, expect) in c.iter().zip(case.expect) {
                assert_eq!(
                    cond.reason.as_deref(),
                    expect,
                    "case {i} {}",
                    cond.condition_type
                );
                assert_eq!(cond.status, expect.is_some(), "case {i}");
            }
        }
    }

    #[test]
    fn custom_thresholds() {
        let now = datetime!(2026-03-06 10:00 UTC);
        let t = ConditionThresholds {
            memory_pressure_percent: 40.0,
            high_load_multiplier: 0.5,
            disk_pressure_percent: 40.0,
        };
        let c = evaluate(
            &[],
            Some(&mem(100, 50)),
            Some(&load1(1.5)),
            2,
            &[disk("/", 100, 50)],
            &t,
            now,
        );
        assert!(c.iter().all(|c| c.status));
        assert_eq!(
            c[1].reason.as_deref(),
            Some("load 1.50, threshold 1.00 for 2 CPUs")
        );
    }

    #[test]
    fn transition_time_is_kept_while_unchanged() {
        let t0 = datetime!(2026-03-06 10:00 UTC);
        let t1 = datetime!(2026-03-06 10:00:10 UTC);
        let t2 = datetime!(2026-03-06 10:00:20 UTC);
        let th = ConditionThresholds::default();
        let hot = mem(100, 1);
        let cool = mem(100, 90);

        let first = evaluate(&[], Some(&cool), None, 0, &[], &th, t0);
        assert!(first.iter().all(|c| c.last_transition_time == t0));

        // Memory flips to true: its time moves, the others keep t0.
        let second = evaluate(&first, Some(&hot), None, 0, &[], &th, t1);
        assert!(second[0].status);
        assert_eq!(second[0].last_transition_time, t1);
        assert_eq!(second[1].last_transition_time, t0);
        assert_eq!(second[2].last_transition_time, t0);

        // Still true, with a different reason: the time stays.
        let third = evaluate(&second, Some(&mem(100, 2)), None, 0, &[], &th, t2);
        assert!(third[0].status);
        assert_eq!(
            third[0].reason.as_deref(),
            Some("memory 98% used (0.0/0.0 GB)")
        );
        assert_eq!(third[0].last_transition_time, t1);

        // Back to false: the time moves again.
        let fourth = evaluate(&third, Some(&cool), None, 0, &[], &th, t2);
        assert!(!fourth[0].status);
        assert_eq!(fourth[0].reason, None);
        assert_eq!(fourth[0].last_transition_time, t2);
        assert_eq!(fourth[2].last_transition_time, t0);
    }
}
