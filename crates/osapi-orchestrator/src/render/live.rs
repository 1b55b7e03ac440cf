//! The live lines of a run on a terminal: one line per running step
//! (`[running]`, its name, elapsed time, hosts answered / expected,
//! failures so far), kept below the lines already written and redrawn in
//! place. The renderer feeds it events; the writer ([`super::output`])
//! draws its lines after each batch of text and on a tick.
//!
//! Written here rather than with `indicatif`: the renderer already owns
//! the terminal through one writer thread that writes each event whole;
//! a progress crate would be a second writer to the same terminal, and
//! its lines would interleave with ours.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::format::push_padded;
use super::style::{Painter, Style};
use super::{NAME_WIDTH, TAG_WIDTH};
use crate::events::HostEvent;
use crate::results::HostStatus;

/// How wide the live lines may be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Width {
    /// The terminal on stdout, asked at each draw (80 when it cannot say).
    Terminal,
    /// A fixed width (tests).
    #[cfg(test)]
    Fixed(usize),
}

impl Width {
    fn columns(self) -> usize {
        match self {
            #[cfg(test)]
            Width::Fixed(n) => n,
            Width::Terminal => terminal_size::terminal_size()
                .map(|(w, _)| usize::from(w.0))
                .filter(|w| *w > 0)
                .unwrap_or(80),
        }
    }
}

/// A step's host lines are printed as hosts answer once it has run this
/// long; a quicker step's hosts are listed under its result, as without
/// a terminal.
const HOST_LINES_AFTER: Duration = Duration::from_secs(1);

/// One running step.
struct Running {
    step: String,
    started: Instant,
    /// Hosts the job waits for, when known.
    expected: Option<usize>,
    /// Hosts that answered during this attempt.
    answered: HashSet<String>,
    /// Those of them whose line was printed as they answered.
    printed: HashSet<String>,
    failed: usize,
    custom: bool,
}

/// The running steps and the lines on screen.
pub(crate) struct Live {
    running: Vec<Running>,
    width: Width,
    painter: Painter,
    /// The lines drawn last, bottom of the screen (none when hidden).
    drawn: Vec<String>,
}

impl Live {
    pub(crate) fn new(width: Width, painter: Painter) -> Live {
        Live {
            running: Vec::new(),
            width,
            painter,
            drawn: Vec::new(),
        }
    }

    fn find(&mut self, step: &str) -> Option<&mut Running> {
        self.running.iter_mut().find(|r| r.step == step)
    }

    /// A step started (a retry keeps its line and its start time).
    pub(crate) fn started(&mut self, step: &str, custom: bool) {
        if self.find(step).is_none() {
            self.running.push(Running {
                step: step.to_string(),
                started: Instant::now(),
                expected: None,
                answered: HashSet::new(),
                printed: HashSet::new(),
                failed: 0,
                custom,
            });
        }
    }

    /// A step's job was created: a new attempt, counted from zero.
    pub(crate) fn job_created(&mut self, step: &str, expected: Option<usize>) {
        if let Some(r) = self.find(step) {
            r.expected = expected;
            r.answered.clear();
            r.printed.clear();
            r.failed = 0;
        }
    }

    /// A rolling step's hosts: counted across its batches.
    pub(crate) fn expect_hosts(&mut self, step: &str, total: usize) {
        if let Some(r) = self.find(step) {
            r.expected = Some(total);
        }
    }

    /// A host answered; true when its line is to be printed now (the
    /// first time it is reported, once the step has run for
    /// [`HOST_LINES_AFTER`]).
    pub(crate) fn host_done(&mut self, step: &str, host: &HostEvent, now: Instant) -> bool {
        let Some(r) = self.find(step) else {
            return false;
        };
        if !r.answered.insert(host.hostname.clone()) {
            return false;
        }
        let failed = matches!(host.status, HostStatus::Failed | HostStatus::Lost)
            || host.error.as_deref().is_some_and(|e| !e.is_empty());
        if failed {
            r.failed += 1;
        }
        let print = now.saturating_duration_since(r.started) >= HOST_LINES_AFTER;
        if print {
            r.printed.insert(host.hostname.clone());
        }
        print
    }

    /// A step ended: its line goes; returns the hosts already printed.
    pub(crate) fn finished(&mut self, step: &str) -> HashSet<String> {
        match self.running.iter().position(|r| r.step == step) {
            Some(i) => self.running.remove(i).printed,
            None => HashSet::new(),
        }
    }

    /// Forgets every running step (the run is over).
    pub(crate) fn clear(&mut self) {
        self.running.clear();
    }

    /// True while there are lines to keep up to date.
    pub(crate) fn ticking(&self) -> bool {
        !self.running.is_empty()
    }

    /// The lines to show now. None while a custom step runs: its code may
    /// print, and lines redrawn in place would overwrite what it printed.
    fn lines(&self, now: Instant) -> Vec<String> {
        if self.running.iter().any(|r| r.custom) {
            return Vec::new();
        }
        // One column is left free: a full line would wrap on some terminals.
        let width = self.width.columns().saturating_sub(1).max(20);
        self.running
            .iter()
            .map(|r| {
                let mut text = String::from("  ");
                push_padded(&mut text, "[running]", TAG_WIDTH);
                text.push(' ');
                push_padded(&mut text, &r.step, NAME_WIDTH);
                text.push(' ');
                text.push_str(&elapsed(now.saturating_duration_since(r.started)));
                let answered = r.answered.len();
                match r.expected {
                    Some(n) => text.push_str(&format!("  {answered}/{} hosts", n.max(answered))),
                    None if answered > 0 => text.push_str(&format!("  {answered} hosts")),
                    None => {}
                }
                if r.failed > 0 {
                    text.push_str(&format!(", {} failed", r.failed));
                }
                let text: String = text.chars().take(width).collect();
                let mut line = String::new();
                self.painter.paint(&mut line, Style::Dim, &text);
                line
            })
            .collect()
    }

    /// The bytes that replace the lines on screen with `text` followed by
    /// the current lines; `None` when there is nothing to write.
    pub(crate) fn frame(&mut self, text: &[u8], now: Instant) -> Option<Vec<u8>> {
        let lines = self.lines(now);
        if text.is_empty() && lines == self.drawn {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() + 64 * (lines.len() + 1));
        if !self.drawn.is_empty() {
            // Back to the first live line, then clear to the end of the screen.
            out.extend_from_slice(format!("\r\x1b[{}A\x1b[J", self.drawn.len()).as_bytes());
        }
        out.extend_from_slice(text);
        for line in &lines {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
        self.drawn = lines;
        Some(out)
    }
}

/// `7s`, `1m05s`, `2h03m`.
fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live::new(Width::Fixed(80), Painter::new(false))
    }

    fn host(name: &str, status: HostStatus) -> HostEvent {
        HostEvent {
            hostname: name.to_string(),
            status,
            changed: false,
            error: None,
            note: None,
            data: None,
        }
    }

    fn text(frame: Option<Vec<u8>>) -> String {
        String::from_utf8(frame.unwrap_or_default()).unwrap_or_default()
    }

    #[test]
    fn counts_hosts_and_failures_once() {
        let mut l = live();
        l.started("deploy", false);
        l.job_created("deploy", Some(3));
        let t0 = l.running[0].started;
        // Within the first second, lines wait for the step's result.
        assert!(!l.host_done("deploy", &host("a", HostStatus::Ok), t0));
        let later = t0 + Duration::from_secs(2);
        assert!(!l.host_done("deploy", &host("a", HostStatus::Ok), later));
        assert!(l.host_done("deploy", &host("b", HostStatus::Lost), later));
        let printed = l.running[0].printed.clone();
        assert_eq!(printed, HashSet::from(["b".to_string()]));
        let now = t0 + Duration::from_secs(65);
        let out = text(l.frame(b"", now));
        assert_eq!(
            out,
            "  [running]   deploy                    1m05s  2/3 hosts, 1 failed\n"
        );
        // Nothing changed: nothing to write.
        assert!(l.frame(b"", now).is_none());
    }

    #[test]
    fn text_goes_above_the_lines_which_are_redrawn() {
        let mut l = live();
        l.started("s", false);
        let t0 = l.running[0].started;
        let first = text(l.frame(b"", t0));
        assert_eq!(first, "  [running]   s                         0s\n");
        let second = text(l.frame(b"line\n", t0 + Duration::from_secs(2)));
        assert_eq!(
            second,
            "\r\x1b[1A\x1b[Jline\n  [running]   s                         2s\n"
        );
        let printed = l.finished("s");
        assert!(printed.is_empty());
        // The step ended: its line is erased and nothing is drawn.
        assert_eq!(text(l.frame(b"", t0)), "\r\x1b[1A\x1b[J");
        assert!(!l.ticking());
    }

    #[test]
    fn a_retry_counts_from_zero_and_lines_fit_the_width() {
        let mut l = Live::new(Width::Fixed(30), Painter::new(false));
        l.started("a-step-with-a-long-name-indeed", false);
        l.job_created("a-step-with-a-long-name-indeed", Some(2));
        let later = Instant::now() + Duration::from_secs(2);
        let failed = host("x", HostStatus::Failed);
        assert!(l.host_done("a-step-with-a-long-name-indeed", &failed, later));
        l.job_created("a-step-with-a-long-name-indeed", Some(2));
        assert_eq!(l.running[0].failed, 0);
        assert!(l.running[0].answered.is_empty() && l.running[0].printed.is_empty());
        let out = text(l.frame(b"", Instant::now()));
        assert_eq!(out.trim_end_matches('\n').chars().count(), 29, "{out:?}");
    }

    #[test]
    fn no_lines_while_custom_code_runs() {
        let mut l = live();
        l.started("job", false);
        l.started("custom", true);
        assert!(l.frame(b"", Instant::now()).is_none());
        l.finished("custom");
        assert!(text(l.frame(b"", Instant::now())).contains("[running]   job"));
    }

    #[test]
    fn elapsed_formats() {
        assert_eq!(elapsed(Duration::from_millis(999)), "0s");
        assert_eq!(elapsed(Duration::from_secs(59)), "59s");
        assert_eq!(elapsed(Duration::from_secs(3599)), "59m59s");
        assert_eq!(elapsed(Duration::from_secs(7380)), "2h03m");
    }
}
