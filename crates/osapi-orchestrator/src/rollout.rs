//! Rolling changes: a broadcast step run on its hosts in batches (a canary
//! first, then larger groups), stopped before the next batch when too many
//! hosts failed or a health gate says no.
//!
//! ```no_run
//! use std::time::Duration;
//! use osapi_orchestrator::prelude::*;
//!
//! # let o = Orchestrator::builder("http://c", "t").build().unwrap();
//! o.file_deploy("role:web", FileDeployOpts::new("app.conf", "/etc/app.conf"))
//!     .rolling(Rollout::batches(["1", "25%", "100%"]))
//!     .max_fail_percent(10.0)
//!     .pause_between(Duration::from_secs(5))
//!     .gate_with(|batch| match batch.iter().find(|h| h.failed()) {
//!         Some(h) => Err(format!("{} failed", h.hostname)),
//!         None => Ok(()),
//!     });
//! ```

use std::fmt;

/// How many hosts one batch takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchSize {
    /// A number of hosts (at least 1).
    Count(usize),
    /// A share of the step's hosts, rounded up (at least 1 host).
    Percent(f64),
    /// A size that could not be read (`"ten"`, `"150%"`): the step is
    /// invalid and the plan does not run.
    Invalid,
}

impl BatchSize {
    /// Hosts in a batch of this size out of `total`.
    pub fn hosts(self, total: usize) -> usize {
        let n = match self {
            BatchSize::Count(n) => n,
            BatchSize::Percent(p) => ((total as f64) * p / 100.0).ceil() as usize,
            BatchSize::Invalid => total,
        };
        n.clamp(1, total.max(1))
    }
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchSize::Count(n) => write!(f, "{n}"),
            BatchSize::Percent(p) => write!(f, "{p}%"),
            BatchSize::Invalid => write!(f, "?"),
        }
    }
}

impl From<usize> for BatchSize {
    fn from(n: usize) -> Self {
        if n == 0 {
            BatchSize::Invalid
        } else {
            BatchSize::Count(n)
        }
    }
}

impl From<u32> for BatchSize {
    fn from(n: u32) -> Self {
        BatchSize::from(n as usize)
    }
}

impl From<i32> for BatchSize {
    fn from(n: i32) -> Self {
        usize::try_from(n).map_or(BatchSize::Invalid, BatchSize::from)
    }
}

impl From<&str> for BatchSize {
    /// `"3"` (hosts) or `"25%"` (of the step's hosts, more than 0 and at
    /// most 100).
    fn from(s: &str) -> Self {
        let s = s.trim();
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => BatchSize::Percent(p),
                _ => BatchSize::Invalid,
            },
            None => s
                .parse::<usize>()
                .map_or(BatchSize::Invalid, BatchSize::from),
        }
    }
}

/// The batches of a rolling step.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    pub(crate) sizes: Vec<BatchSize>,
}

impl Rollout {
    /// Batches of these sizes, in order; the last size repeats until every
    /// host had its turn. Sizes are counts or percentages of the step's
    /// hosts: `Rollout::batches(["1", "25%", "100%"])`,
    /// `Rollout::batches([2, 5])`.
    ///
    /// ```
    /// use osapi_orchestrator::rollout::Rollout;
    /// let r = Rollout::batches(["1", "25%"]);
    /// assert_eq!(r.plan(10), vec![1, 3, 3, 3]);
    /// assert_eq!(Rollout::batches([2]).plan(5), vec![2, 2, 1]);
    /// ```
    pub fn batches<S: Into<BatchSize>>(sizes: impl IntoIterator<Item = S>) -> Rollout {
        Rollout {
            sizes: sizes.into_iter().map(Into::into).collect(),
        }
    }

    /// How many hosts each batch takes, for `total` hosts.
    pub fn plan(&self, total: usize) -> Vec<usize> {
        let mut batches = Vec::new();
        let mut left = total;
        let mut sizes = self.sizes.iter().copied();
        let mut last = BatchSize::Percent(100.0);
        while left > 0 {
            if let Some(size) = sizes.next() {
                last = size;
            }
            let n = last.hosts(total).min(left);
            batches.push(n);
            left -= n;
        }
        batches
    }

    /// Why these sizes cannot be used, if they cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.sizes.is_empty() {
            return Some("a rollout needs at least one batch size".into());
        }
        self.sizes
            .contains(&BatchSize::Invalid)
            .then(|| "batch sizes are counts of at least 1 or percentages in (0, 100]".into())
    }
}

impl fmt::Display for Rollout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: Vec<String> = self.sizes.iter().map(ToString::to_string).collect();
        write!(f, "{}", sizes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_resolve() {
        assert_eq!(BatchSize::from("3"), BatchSize::Count(3));
        assert_eq!(BatchSize::from(" 25% "), BatchSize::Percent(25.0));
        for bad in ["0", "0%", "150%", "ten", "-1", ""] {
            assert_eq!(BatchSize::from(bad), BatchSize::Invalid, "{bad}");
        }
        assert_eq!(BatchSize::from(-2), BatchSize::Invalid);
        assert_eq!(BatchSize::Percent(10.0).hosts(200), 20);
        assert_eq!(BatchSize::Percent(10.0).hosts(3), 1);
        assert_eq!(BatchSize::Count(50).hosts(3), 3);
    }

    #[test]
    fn batches_cover_every_host_once_and_the_last_size_repeats() {
        let r = Rollout::batches(["1", "25%", "100%"]);
        assert_eq!(r.plan(3), vec![1, 1, 1]);
        assert_eq!(r.plan(20), vec![1, 5, 14]);
        assert_eq!(Rollout::batches(["10%"]).plan(200), vec![20; 10]);
        assert_eq!(Rollout::batches([1, 100]).plan(3), vec![1, 2]);
        assert!(Rollout::batches(["1", "x"]).problem().is_some());
        assert!(Rollout::batches(Vec::<usize>::new()).problem().is_some());
        assert!(Rollout::batches(["1", "100%"]).problem().is_none());
        for total in 1..50 {
            let plan = Rollout::batches(["1", "33%"]).plan(total);
            assert_eq!(plan.iter().sum::<usize>(), total);
            assert!(plan.iter().all(|&n| n >= 1));
        }
    }
}
