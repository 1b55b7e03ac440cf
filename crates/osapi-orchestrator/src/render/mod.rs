//! The terminal renderer: turns run [`Event`]s into the terminal output of
//! upstream's lipgloss renderer (plan header, `>>>`/`<<<` level lines,
//! `[start]`/`[changed]`/`[unchanged]`/`[failed]`/`[skip]`/`[retry]` step
//! lines, `Complete:` summary), with upstream HEAD's host lines
//! (`[<hostname>] ok`), verbose `job_id:` and per-host data lines.
//!
//! Deliberate differences from upstream: verbose data keys are sorted,
//! `stderr` and `exit_code` are shown, continuation lines of multi-line
//! values are indented to the value's column, and every event's text is
//! written whole (events are batched), so lines of parallel steps never
//! interleave.
//!
//! On a terminal, each running step also has a live line below the output
//! (elapsed time, hosts answered / expected, failures so far), and once a
//! step has run for a second, each host's line is printed as the host
//! answers (followed by its step's name) rather than with its step's
//! result. Without a terminal the output
//! is exactly upstream's, with nothing extra.

mod format;
mod live;
mod output;
mod style;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use self::format::{data_entries, go_duration, go_quote, push_padded, push_spaces};
use self::live::{Live, Width};
use self::output::Output;
use self::style::{Painter, Style};
use crate::events::{Event, HostEvent, LevelSummary, Observer};
use crate::plan::CUSTOM_STEP_DETAIL;
use crate::results::{HostStatus, StepStatus};

pub use self::style::{ColorChoice, color_enabled};

/// Visible width of the tag column (`[unchanged]`).
const TAG_WIDTH: usize = 11;
/// Width of the step-name column, in runes.
const NAME_WIDTH: usize = 25;
/// Indentation of a failed step's error line: 2 + tag column + 1.
const ERROR_INDENT: usize = 2 + TAG_WIDTH + 1;
/// Indentation of host lines and of step-level verbose lines.
const HOST_INDENT: usize = 13;
/// Indentation of per-host verbose data lines.
const HOST_DATA_INDENT: usize = 15;

/// Draws run events on a terminal (or any writer).
///
/// Each event is rendered into one string and written whole; events that
/// come in a burst are written together, within 10 ms, and everything is
/// written before a custom step's code runs and when a plan ends. Write
/// errors are ignored.
pub struct Renderer {
    out: Output,
    painter: Painter,
    color: bool,
    verbose: bool,
    /// The run is in check mode (host lines say "would change").
    check: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("color", &self.color)
            .field("verbose", &self.verbose)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// Writes to `out`. `color`: `Auto` colours only if `is_tty` is true and
    /// `NO_COLOR` is unset or empty, or if `CLICOLOR_FORCE` is set and not
    /// `"0"` (the variables are read once, here); `Always`; `Never`.
    /// `verbose` adds `job_id:` and result data lines.
    ///
    /// When `is_tty` is true (and `TERM` is not `dumb`), running steps get
    /// live lines redrawn in place, as wide as the terminal on stdout, and
    /// host lines of steps running for more than a second are printed as
    /// hosts answer.
    pub fn new(
        out: Box<dyn Write + Send>,
        color: ColorChoice,
        is_tty: bool,
        verbose: bool,
    ) -> Renderer {
        let no_color = env_var("NO_COLOR");
        let clicolor_force = env_var("CLICOLOR_FORCE");
        let color = color_enabled(
            color,
            is_tty,
            no_color.as_deref(),
            clicolor_force.as_deref(),
        );
        let live = is_tty && env_var("TERM").as_deref() != Some("dumb");
        Renderer::with_color(out, color, verbose, live.then_some(Width::Terminal))
    }

    /// Renders to stdout; `Auto` detects the terminal with
    /// [`std::io::IsTerminal`].
    pub fn stdout(color: ColorChoice, verbose: bool) -> Renderer {
        let stdout = std::io::stdout();
        let is_tty = stdout.is_terminal();
        Renderer::new(Box::new(stdout), color, is_tty, verbose)
    }

    /// A renderer with the colour decision already made, and live lines
    /// of this width when given.
    fn with_color(
        out: Box<dyn Write + Send>,
        color: bool,
        verbose: bool,
        live: Option<Width>,
    ) -> Renderer {
        let live = live.map(|width| Live::new(width, Painter::new(color)));
        Renderer {
            out: Output::new(out, live),
            painter: Painter::new(color),
            color,
            verbose,
            check: Default::default(),
        }
    }

    /// Appends the complete text of one event (possibly empty) to `out`.
    fn render(&self, event: &Event, out: &mut String) {
        match event {
            Event::PlanStarted {
                steps,
                levels,
                check,
            } => {
                self.check
                    .store(*check, std::sync::atomic::Ordering::Relaxed);
                self.plan_started(out, *steps, levels);
                if *check {
                    self.paint(
                        out,
                        Style::Yellow,
                        "Check mode: nothing is changed; \"changed\" says what would change",
                    );
                    out.push('\n');
                }
            }
            Event::LevelStarted {
                level,
                steps,
                parallel,
            } => self.level_started(out, *level, steps, *parallel),
            Event::StepStarted { step, detail, .. } => {
                let custom = detail == CUSTOM_STEP_DETAIL;
                self.out.live(|l| l.started(step, custom));
                self.step_started(out, step, detail);
            }
            Event::StepRetrying {
                step,
                attempt,
                error,
                ..
            } => self.step_retrying(out, step, *attempt, error),
            Event::StepSkipped { step, reason, .. } => {
                self.out.live(|l| l.finished(step));
                self.step_skipped(out, step, reason);
            }
            Event::BatchStarted {
                step,
                batch,
                batches,
                hosts,
                total_hosts,
            } => {
                self.out.live(|l| l.expect_hosts(step, *total_hosts));
                self.batch_started(out, step, (*batch, *batches), hosts);
            }
            Event::BatchFinished {
                step,
                gate,
                stopped,
                ..
            } => self.batch_finished(out, step, gate.as_deref(), stopped.as_deref()),
            Event::JobCreated {
                step,
                expected_hosts,
                ..
            } => self.out.live(|l| l.job_created(step, *expected_hosts)),
            // Without live lines, host lines are drawn with their step's result.
            Event::HostDone { step, host } => {
                if self.out.live(|l| l.host_done(step, host, Instant::now())) {
                    self.host_line(out, host, Some(step));
                    if let Some(data) = host.data.as_ref().filter(|_| self.verbose) {
                        self.data_lines(out, data, HOST_DATA_INDENT);
                    }
                }
            }
            Event::StepFinished {
                step,
                status,
                changed,
                duration_ms,
                job_id,
                error,
                hosts,
                data,
                from_journal,
                ..
            } => {
                let printed = self.out.live(|l| l.finished(step));
                self.step_finished(
                    out,
                    &Finished {
                        step,
                        status: *status,
                        changed: *changed,
                        duration_ms: *duration_ms,
                        job_id: job_id.as_deref(),
                        error: error.as_deref(),
                        hosts,
                        data: data.as_ref(),
                        printed,
                        from_journal: *from_journal,
                    },
                );
            }
            Event::LevelFinished {
                level,
                changed,
                total,
                parallel,
            } => self.level_finished(out, *level, *changed, *total, *parallel),
            Event::PlanFinished {
                summary, duration, ..
            } => {
                self.out.live(Live::clear);
                self.plan_finished(out, summary, duration);
            }
        }
    }

    fn paint(&self, out: &mut String, style: Style, text: &str) {
        self.painter.paint(out, style, text);
    }

    /// A tag (`[start]`, …) padded to the tag column; the padding stays
    /// outside the styled fragment.
    fn tag(&self, out: &mut String, style: Style, tag: &str) {
        self.paint(out, style, tag);
        push_spaces(out, TAG_WIDTH.saturating_sub(tag.chars().count()));
    }

    /// `␠␠<tag><pad>␠<name padded to 25>` — the start of every step line.
    fn step_prefix(&self, out: &mut String, style: Style, tag: &str, step: &str) {
        out.push_str("  ");
        self.tag(out, style, tag);
        out.push(' ');
        push_padded(out, step, NAME_WIDTH);
    }

    fn plan_started(&self, out: &mut String, steps: usize, levels: &[LevelSummary]) {
        out.push('\n');
        self.paint(out, Style::Magenta, "Execution Plan");
        out.push('\n');
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let header = format!(
            "Plan: {} in {}",
            plural(steps, "step", "steps"),
            plural(levels.len(), "level", "levels")
        );
        self.paint(out, Style::Magenta, &header);
        out.push('\n');
        for level in levels {
            let style = if level.parallel {
                Style::Magenta
            } else {
                Style::MagentaFaint
            };
            out.push_str("  ");
            self.painter.paint_with(out, style, |out| {
                let _ = write!(
                    out,
                    "Level {} ({}): ",
                    level.index + 1,
                    mode(level.parallel)
                );
                push_joined(out, &level.steps);
            });
            out.push('\n');
        }
    }

    fn level_started(&self, out: &mut String, level: usize, steps: &[String], parallel: bool) {
        let style = if parallel {
            Style::CyanBold
        } else {
            Style::DimBold
        };
        out.push('\n');
        self.painter.paint_with(out, style, |out| {
            let _ = write!(out, ">>> Level {} ({}): ", level + 1, mode(parallel));
            push_joined(out, steps);
        });
        out.push('\n');
    }

    fn level_finished(
        &self,
        out: &mut String,
        level: usize,
        changed: usize,
        total: usize,
        parallel: bool,
    ) {
        let style = if parallel { Style::Cyan } else { Style::Dim };
        let text = format!("<<< Level {} done: {changed}/{total} changed", level + 1);
        self.paint(out, style, &text);
        out.push('\n');
    }

    fn step_started(&self, out: &mut String, step: &str, detail: &str) {
        self.step_prefix(out, Style::Dim, "[start]", step);
        out.push(' ');
        self.paint(out, Style::Dim, detail);
        out.push('\n');
    }

    /// `[batch]  <step>  2/5 web-03, web-04` (at most five names shown).
    fn batch_started(
        &self,
        out: &mut String,
        step: &str,
        (batch, batches): (usize, usize),
        hosts: &[String],
    ) {
        self.step_prefix(out, Style::Cyan, "[batch]", step);
        let mut names = hosts.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if hosts.len() > 5 {
            names.push_str(&format!(" (+{} more)", hosts.len() - 5));
        }
        out.push_str(&format!(" {batch}/{batches} {names}"));
        out.push('\n');
    }

    /// `[gate]  <step>  passed` / `failed: …`, and `[stop]  <step>  why`
    /// when the rollout stops.
    fn batch_finished(
        &self,
        out: &mut String,
        step: &str,
        gate: Option<&str>,
        stopped: Option<&str>,
    ) {
        if let Some(verdict) = gate {
            let passed = verdict == "passed";
            let style = if passed { Style::Green } else { Style::Red };
            self.step_prefix(out, style, "[gate]", step);
            out.push(' ');
            if passed {
                out.push_str("passed");
            } else {
                out.push_str(&format!("failed: {verdict}"));
            }
            out.push('\n');
        }
        if let Some(why) = stopped {
            self.step_prefix(out, Style::Red, "[stop]", step);
            out.push(' ');
            out.push_str(why);
            out.push('\n');
        }
    }

    fn step_retrying(&self, out: &mut String, step: &str, attempt: u32, error: &str) {
        self.step_prefix(out, Style::Yellow, "[retry]", step);
        out.push_str(&format!(" attempt={attempt} error={}", go_quote(error)));
        out.push('\n');
    }

    fn step_skipped(&self, out: &mut String, step: &str, reason: &str) {
        self.step_prefix(out, Style::YellowFaint, "[skip]", step);
        out.push_str(" reason=");
        out.push_str(&go_quote(reason));
        out.push('\n');
    }

    fn step_finished(&self, out: &mut String, f: &Finished<'_>) {
        // Skips are shown by `StepSkipped` alone.
        if f.status == StepStatus::Skipped {
            return;
        }
        let tag_style = if f.status == StepStatus::Failed {
            Style::Red
        } else {
            Style::Green
        };
        let (tag_style, tag) = if f.from_journal {
            (Style::Cyan, "[journal]")
        } else {
            (tag_style, status_tag(f.status))
        };
        self.step_prefix(out, tag_style, tag, f.step);
        out.push(' ');
        // A failed step's tag says it all: what it may have changed is in
        // its hosts' lines and its result.
        if f.status != StepStatus::Failed {
            if f.changed {
                self.paint(out, Style::GreenBold, "changed=true");
            } else {
                out.push_str("changed=false");
            }
            out.push_str("  ");
        }
        if f.from_journal {
            self.paint(out, Style::Dim, "from the journal");
        } else {
            let duration = go_duration(Duration::from_millis(f.duration_ms));
            self.paint(out, Style::Dim, &duration);
        }
        out.push('\n');

        if let Some(error) = f.error.filter(|e| !e.is_empty()) {
            push_spaces(out, ERROR_INDENT);
            self.painter
                .paint_block(out, Style::Red, error, ERROR_INDENT);
            out.push('\n');
        }

        // Per-host data goes under each host line unless the step carries
        // its own (single-host) data, which is printed once below.
        let host_data = self.verbose && (f.hosts.len() > 1 || f.data.is_none());
        for host in f.hosts.iter().filter(|h| !f.printed.contains(&h.hostname)) {
            self.host_line(out, host, None);
            if host_data && let Some(data) = &host.data {
                self.data_lines(out, data, HOST_DATA_INDENT);
            }
        }

        if self.verbose {
            if let Some(job_id) = f.job_id.filter(|j| !j.is_empty()) {
                push_spaces(out, HOST_INDENT);
                self.paint(out, Style::Dim, &format!("job_id: {job_id}"));
                out.push('\n');
            }
            if let Some(data) = f.data {
                self.data_lines(out, data, HOST_INDENT);
            }
        }
    }

    /// `<13 spaces>[<hostname>] <status>[ changed]`, then `  <step>` when
    /// the line is printed as the host answers.
    fn host_line(&self, out: &mut String, host: &HostEvent, step: Option<&str>) {
        push_spaces(out, HOST_INDENT);
        let name = format!("[{}]", host.hostname);
        self.paint(out, Style::Cyan, &name);
        out.push(' ');
        // Continuation lines of a multi-line error align with the status.
        let status_col = HOST_INDENT + name.chars().count() + 1;
        let error = host.error.as_deref().filter(|e| !e.is_empty());
        let (style, label) = match host.status {
            HostStatus::Ok | HostStatus::Changed => match error {
                Some(_) => (Style::Red, "error"),
                None => (Style::Green, "ok"),
            },
            HostStatus::Failed => (Style::Red, "failed"),
            HostStatus::Lost => (Style::Red, "lost"),
            HostStatus::Skipped => (Style::Yellow, "skipped"),
        };
        let text = match error {
            Some(e) => format!("{label}: {e}"),
            None => label.to_string(),
        };
        self.painter.paint_block(out, style, &text, status_col);
        if let Some(note) = host.note.as_deref().filter(|n| !n.is_empty()) {
            out.push(' ');
            self.paint(out, Style::Dim, &format!("({note})"));
        }
        // As for steps, a failure's line says it failed, not what it may
        // have changed (that is in its result).
        let failed = matches!(host.status, HostStatus::Failed | HostStatus::Lost);
        if !failed && (host.changed || host.status == HostStatus::Changed) {
            let word = if self.check.load(std::sync::atomic::Ordering::Relaxed) {
                " would change"
            } else {
                " changed"
            };
            self.paint(out, Style::GreenBold, word);
        }
        if let Some(step) = step {
            out.push_str("  ");
            self.paint(out, Style::Dim, step);
        }
        out.push('\n');
    }

    /// Verbose data, one dim `key: value` line per entry at `indent`;
    /// continuation lines of multi-line values align with the value.
    fn data_lines(&self, out: &mut String, data: &Value, indent: usize) {
        for (key, value) in data_entries(data) {
            push_spaces(out, indent);
            let value_col = indent + key.chars().count() + 2;
            self.painter
                .paint_block(out, Style::Dim, &format!("{key}: {value}"), value_col);
            out.push('\n');
        }
    }

    fn plan_finished(&self, out: &mut String, summary: &str, duration: &str) {
        out.push('\n');
        self.paint(
            out,
            Style::Header,
            &format!("Complete: {summary} in {duration}"),
        );
        out.push('\n');
    }
}

impl Observer for Renderer {
    fn on_event(&self, event: &Event) {
        thread_local! {
            /// Where events are rendered before they are written: one
            /// buffer per thread, reused (events come from several tasks).
            static TEXT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
        }
        TEXT.with(|text| match text.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                self.render(event, &mut text);
                if !text.is_empty() {
                    self.out.write(&text);
                }
                // A plan's header can be large: that is not kept.
                if text.capacity() > 64 * 1024 {
                    *text = String::new();
                }
            }
            // Rendered from within a render (a writer that emits events).
            Err(_) => {
                let mut text = String::new();
                self.render(event, &mut text);
                self.out.write(&text);
            }
        });
        // A run's output is all there when `run()` returns.
        if matches!(event, Event::PlanFinished { .. }) {
            self.out.flush();
        }
    }

    fn flush(&self) {
        self.out.flush();
    }

    fn mark(&self) -> u64 {
        self.out.collected()
    }

    fn flush_through(&self, mark: u64) {
        self.out.flush_through(mark);
    }
}

/// The fields of a `StepFinished` event.
struct Finished<'a> {
    step: &'a str,
    status: StepStatus,
    changed: bool,
    duration_ms: u64,
    job_id: Option<&'a str>,
    error: Option<&'a str>,
    hosts: &'a [HostEvent],
    data: Option<&'a Value>,
    /// Hosts whose lines were printed as they answered.
    printed: HashSet<String>,
    /// Taken from the run journal.
    from_journal: bool,
}

/// `[changed]`, `[unchanged]`, …: a finished step's tag.
fn status_tag(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Changed => "[changed]",
        StepStatus::Unchanged => "[unchanged]",
        StepStatus::Skipped => "[skipped]",
        StepStatus::Failed => "[failed]",
        StepStatus::Unknown => "[unknown]",
    }
}

/// Appends `names` separated by `, ` (a level's steps: up to every step of
/// the plan, so not joined into a string of their own first).
fn push_joined(out: &mut String, names: &[String]) {
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name);
    }
}

fn mode(parallel: bool) -> &'static str {
    if parallel { "parallel" } else { "sequential" }
}

/// An environment variable, `None` when unset (non-UTF-8 values are
/// converted lossily).
fn env_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;

    /// A shared in-memory writer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A writer that accepts at most 5 bytes per call and yields between
    /// calls, so a multi-call write would interleave without the renderer's
    /// lock.
    #[derive(Clone, Default)]
    struct Choppy(Buf);

    impl Write for Choppy {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            let n = data.len().min(5);
            self.0.write(&data[..n])?;
            std::thread::yield_now();
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn render_all(events: &[Event], color: bool, verbose: bool) -> String {
        let buf = Buf::default();
        let r = Renderer::with_color(Box::new(buf.clone()), color, verbose, None);
        for e in events {
            r.on_event(e);
        }
        r.flush();
        buf.text()
    }

    fn plain(events: &[Event]) -> String {
        render_all(events, false, false)
    }

    fn verbose(events: &[Event]) -> String {
        render_all(events, false, true)
    }

    fn colored(events: &[Event]) -> String {
        render_all(events, true, false)
    }

    fn names(steps: &[&str]) -> Vec<String> {
        steps.iter().map(|s| s.to_string()).collect()
    }

    fn plan(steps: usize, levels: &[&[&str]]) -> Event {
        Event::PlanStarted {
            steps,
            levels: levels
                .iter()
                .enumerate()
                .map(|(index, l)| LevelSummary {
                    index,
                    steps: names(l),
                    parallel: l.len() > 1,
                })
                .collect(),
            check: false,
        }
    }

    fn level_start(level: usize, steps: &[&str]) -> Event {
        Event::LevelStarted {
            level,
            steps: names(steps),
            parallel: steps.len() > 1,
        }
    }

    fn level_done(level: usize, changed: usize, total: usize) -> Event {
        Event::LevelFinished {
            level,
            changed,
            total,
            parallel: total > 1,
        }
    }

    fn start(step: &str, detail: &str) -> Event {
        Event::StepStarted {
            step: step.to_string(),
            level: 0,
            detail: detail.to_string(),
        }
    }

    fn done(step: &str, status: StepStatus, duration_ms: u64) -> Event {
        Event::StepFinished {
            step: step.to_string(),
            level: 0,
            status,
            changed: status == StepStatus::Changed,
            duration_ms,
            attempts: 1,
            job_id: None,
            error: None,
            hosts: Vec::new(),
            data: None,
            from_journal: false,
        }
    }

    fn host(hostname: &str, status: HostStatus, error: Option<&str>) -> HostEvent {
        HostEvent {
            hostname: hostname.to_string(),
            status,
            changed: status == HostStatus::Changed,
            error: error.map(str::to_string),
            note: None,
            data: None,
        }
    }

    /// Sets fields of a `StepFinished` event.
    fn with(
        mut event: Event,
        set_hosts: Vec<HostEvent>,
        set_error: Option<&str>,
        set_job: Option<&str>,
        set_data: Option<Value>,
    ) -> Event {
        if let Event::StepFinished {
            hosts,
            error,
            job_id,
            data,
            ..
        } = &mut event
        {
            *hosts = set_hosts;
            *error = set_error.map(str::to_string);
            *job_id = set_job.map(str::to_string);
            *data = set_data;
        }
        event
    }

    fn skip(step: &str, reason: &str) -> Event {
        Event::StepSkipped {
            step: step.to_string(),
            level: 0,
            reason: reason.to_string(),
        }
    }

    fn retry(step: &str, attempt: u32, error: &str) -> Event {
        Event::StepRetrying {
            step: step.to_string(),
            attempt,
            error: error.to_string(),
            delay_ms: 0,
        }
    }

    fn complete(summary: &str, duration: &str) -> Event {
        Event::PlanFinished {
            summary: summary.to_string(),
            duration_ms: 0,
            duration: duration.to_string(),
            success: true,
        }
    }

    fn basic_events() -> Vec<Event> {
        vec![
            plan(2, &[&["health-check"], &["get-hostname"]]),
            level_start(0, &["health-check"]),
            start("health-check", "(custom function)"),
            done("health-check", StepStatus::Unchanged, 3),
            level_done(0, 0, 1),
            level_start(1, &["get-hostname"]),
            start("get-hostname", "operation=node.hostname.get target=_any"),
            with(
                done("get-hostname", StepStatus::Unchanged, 504),
                vec![host("vm", HostStatus::Ok, None)],
                None,
                Some("6f1c2b8e-0000-4000-8000-000000000001"),
                Some(json!({"hostname": "vm", "labels": {"env": "prod"}})),
            ),
            level_done(1, 0, 1),
            complete("2 steps, 2 unchanged", "507.812345ms"),
        ]
    }

    #[test]
    fn basic_example_transcript() {
        let want = "
Execution Plan
Plan: 2 steps in 2 levels
  Level 1 (sequential): health-check
  Level 2 (sequential): get-hostname

>>> Level 1 (sequential): health-check
  [start]     health-check              (custom function)
  [unchanged] health-check              changed=false  3ms
<<< Level 1 done: 0/1 changed

>>> Level 2 (sequential): get-hostname
  [start]     get-hostname              operation=node.hostname.get target=_any
  [unchanged] get-hostname              changed=false  504ms
             [vm] ok
<<< Level 2 done: 0/1 changed

Complete: 2 steps, 2 unchanged in 507.812345ms
";
        assert_eq!(plain(&basic_events()), want);
    }

    #[test]
    fn basic_example_verbose() {
        let out = verbose(&basic_events());
        let want = "  [unchanged] get-hostname              changed=false  504ms
             [vm] ok
             job_id: 6f1c2b8e-0000-4000-8000-000000000001
             hostname: vm
             labels: env=prod
<<< Level 2 done: 0/1 changed
";
        assert!(out.contains(want), "{out}");
    }

    #[test]
    fn parallel_level() {
        let events = vec![
            plan(3, &[&["health-check"], &["get-disk", "get-load"]]),
            level_start(1, &["get-disk", "get-load"]),
            start("get-disk", "operation=node.disk.get target=_any"),
            start("get-load", "operation=node.load.get target=_any"),
            with(
                done("get-load", StepStatus::Unchanged, 230),
                vec![host("vm", HostStatus::Ok, None)],
                None,
                None,
                None,
            ),
            with(
                done("get-disk", StepStatus::Changed, 1036),
                vec![host("vm", HostStatus::Changed, None)],
                None,
                None,
                None,
            ),
            level_done(1, 1, 2),
        ];
        let want = "
Execution Plan
Plan: 3 steps in 2 levels
  Level 1 (sequential): health-check
  Level 2 (parallel): get-disk, get-load

>>> Level 2 (parallel): get-disk, get-load
  [start]     get-disk                  operation=node.disk.get target=_any
  [start]     get-load                  operation=node.load.get target=_any
  [unchanged] get-load                  changed=false  230ms
             [vm] ok
  [changed]   get-disk                  changed=true  1.036s
             [vm] ok changed
<<< Level 2 done: 1/2 changed
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn skip_line_quotes_reason() {
        let events = [
            skip("run-df", "no dependencies changed"),
            skip(
                "shell-apt-get",
                "when-fact: step \"list-agents\" not found or decode failed: bad\tinput\n",
            ),
        ];
        let want = r#"  [skip]      run-df                    reason="no dependencies changed"
  [skip]      shell-apt-get             reason="when-fact: step \"list-agents\" not found or decode failed: bad\tinput\n"
"#;
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn retry_lines_then_final() {
        let events = [
            start("get-load", "operation=node.load.get target=_any"),
            retry("get-load", 1, "job 9b2c…: timeout"),
            retry("get-load", 2, "get \"load\": 503"),
            done("get-load", StepStatus::Unchanged, 2_504),
        ];
        let want = r#"  [start]     get-load                  operation=node.load.get target=_any
  [retry]     get-load                  attempt=1 error="job 9b2c…: timeout"
  [retry]     get-load                  attempt=2 error="get \"load\": 503"
  [unchanged] get-load                  changed=false  2.504s
"#;
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn failed_step_error_and_host_lines() {
        let events = [with(
            done("get-hostname", StepStatus::Failed, 45),
            vec![
                host("web-01", HostStatus::Ok, None),
                host("web-02", HostStatus::Failed, Some("timeout")),
                host("web-03", HostStatus::Failed, None),
                host("web-04", HostStatus::Lost, Some("agent heartbeat expired")),
                host("web-05", HostStatus::Skipped, None),
                host("web-06", HostStatus::Skipped, Some("unsupported on darwin")),
            ],
            Some("1 of 6 hosts failed"),
            Some("job-1"),
            None,
        )];
        let want = "  [failed]    get-hostname              45ms
              1 of 6 hosts failed
             [web-01] ok
             [web-02] failed: timeout
             [web-03] failed
             [web-04] lost: agent heartbeat expired
             [web-05] skipped
             [web-06] skipped: unsupported on darwin
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn failed_function_step_error_line() {
        let events = [with(
            done("deploy", StepStatus::Failed, 45),
            Vec::new(),
            Some("command exited with code 1\nsecond line"),
            None,
            None,
        )];
        let want = "  [failed]    deploy                    45ms
              command exited with code 1
              second line
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn changed_step_and_hosts() {
        let events = [with(
            done("get-hostname", StepStatus::Changed, 612),
            vec![
                host("web-01", HostStatus::Changed, None),
                host("web-02", HostStatus::Ok, None),
            ],
            None,
            None,
            None,
        )];
        let want = "  [changed]   get-hostname              changed=true  612ms
             [web-01] ok changed
             [web-02] ok
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn skipped_finish_prints_nothing() {
        assert_eq!(plain(&[done("run-df", StepStatus::Skipped, 0)]), "");
    }

    #[test]
    fn zero_duration_and_long_durations() {
        let out = plain(&[
            done("a", StepStatus::Unchanged, 0),
            done("b", StepStatus::Unchanged, 62_500),
            done("c", StepStatus::Unchanged, 7_200_000),
        ]);
        let want = "  [unchanged] a                         changed=false  0s
  [unchanged] b                         changed=false  1m2.5s
  [unchanged] c                         changed=false  2h0m0s
";
        assert_eq!(out, want);
    }

    #[test]
    fn verbose_function_step_data() {
        let data = json!({
            "stdout": "  line one\n  line two\nline three\n",
            "stderr": "warning: low disk",
            "exit_code": 0,
            "changed": true,
            "duration_ms": 42,
            "empty": "",
            "items": ["a", "b", "c"],
            "labels": {"zone": "a", "env": "prod"},
            "load": 0.4567,
        });
        let events = [with(
            done("run-uptime", StepStatus::Changed, 230),
            Vec::new(),
            None,
            None,
            Some(data),
        )];
        let want = "  [changed]   run-uptime                changed=true  230ms
             exit_code: 0
             items: [3 items]
             labels: env=prod zone=a
             load: 0.46
             stderr: warning: low disk
             stdout: line one
                       line two
                     line three
";
        assert_eq!(verbose(&events), want);
        // Without verbose: no data lines.
        assert_eq!(
            plain(&events),
            "  [changed]   run-uptime                changed=true  230ms\n"
        );
    }

    #[test]
    fn verbose_multi_host_data() {
        let mut web1 = host("web-01", HostStatus::Changed, None);
        web1.data = Some(json!({"stdout": "a\nb", "exit_code": 0, "changed": true}));
        let mut web2 = host("web-02", HostStatus::Failed, Some("exit code 2"));
        web2.data = Some(json!({"stdout": "", "stderr": "boom", "exit_code": 2}));
        let web3 = host("web-03", HostStatus::Ok, None);
        let events = [with(
            done("shell-deploy", StepStatus::Changed, 1_200),
            vec![web1, web2, web3],
            None,
            Some("7d1e"),
            None,
        )];
        let want = "  [changed]   shell-deploy              changed=true  1.2s
             [web-01] ok changed
               exit_code: 0
               stdout: a
                       b
             [web-02] failed: exit code 2
               exit_code: 2
               stderr: boom
             [web-03] ok
             job_id: 7d1e
";
        assert_eq!(verbose(&events), want);
        let plain_want = "  [changed]   shell-deploy              changed=true  1.2s
             [web-01] ok changed
             [web-02] failed: exit code 2
             [web-03] ok
";
        assert_eq!(plain(&events), plain_want);
    }

    #[test]
    fn verbose_single_host_step_data_printed_once() {
        let mut vm = host("vm", HostStatus::Ok, None);
        vm.data = Some(json!({"hostname": "vm"}));
        let events = [with(
            done("get-hostname", StepStatus::Unchanged, 504),
            vec![vm.clone()],
            None,
            Some("job-9"),
            Some(json!({"hostname": "vm"})),
        )];
        let want = "  [unchanged] get-hostname              changed=false  504ms
             [vm] ok
             job_id: job-9
             hostname: vm
";
        assert_eq!(verbose(&events), want);
        // Only per-host data: shown under the host line.
        let events = [with(
            done("get-hostname", StepStatus::Unchanged, 504),
            vec![vm],
            None,
            None,
            None,
        )];
        let want = "  [unchanged] get-hostname              changed=false  504ms
             [vm] ok
               hostname: vm
";
        assert_eq!(verbose(&events), want);
    }

    #[test]
    fn job_id_line_only_in_verbose() {
        let events = [with(
            done("get-hostname", StepStatus::Unchanged, 504),
            vec![host("vm", HostStatus::Ok, None)],
            None,
            Some("0b9c4f1a"),
            None,
        )];
        assert_eq!(
            verbose(&events),
            "  [unchanged] get-hostname              changed=false  504ms
             [vm] ok
             job_id: 0b9c4f1a
"
        );
        assert!(!plain(&events).contains("job_id"));
    }

    #[test]
    fn long_name_is_not_truncated() {
        let name = "an-extremely-long-step-name-over-25";
        let events = [
            start(name, "(custom function)"),
            done(name, StepStatus::Unchanged, 1),
            skip(name, "x"),
            retry(name, 1, "e"),
        ];
        let want = "  [start]     an-extremely-long-step-name-over-25 (custom function)
  [unchanged] an-extremely-long-step-name-over-25 changed=false  1ms
  [skip]      an-extremely-long-step-name-over-25 reason=\"x\"
  [retry]     an-extremely-long-step-name-over-25 attempt=1 error=\"e\"
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn multibyte_name_padded_by_runes() {
        // 10 runes, 16 bytes: 15 spaces of padding.
        let name = "déployé-日本";
        assert_eq!(name.chars().count(), 10);
        let events = [
            start(name, "(custom function)"),
            done(name, StepStatus::Changed, 5),
        ];
        let want = "  [start]     déployé-日本                (custom function)
  [changed]   déployé-日本                changed=true  5ms
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn empty_plan() {
        let events = [plan(0, &[]), complete("0 steps", "1.2ms")];
        let want = "
Execution Plan
Plan: 0 steps in 0 levels

Complete: 0 steps in 1.2ms
";
        assert_eq!(plain(&events), want);
    }

    #[test]
    fn start_with_empty_detail_keeps_trailing_space() {
        assert_eq!(
            plain(&[start("get-hostname", "")]),
            "  [start]     get-hostname              \n"
        );
    }

    #[test]
    fn colour_step_lines() {
        let out = colored(&[
            start("get-hostname", "operation=node.hostname.get target=_any"),
            with(
                done("get-hostname", StepStatus::Changed, 612),
                vec![host("web-01", HostStatus::Changed, None)],
                None,
                None,
                None,
            ),
            done("health-check", StepStatus::Unchanged, 3),
        ]);
        let want = "  \x1b[2m[start]\x1b[0m     get-hostname              \x1b[2moperation=node.hostname.get target=_any\x1b[0m
  \x1b[32m[changed]\x1b[0m   get-hostname              \x1b[1;32mchanged=true\x1b[0m  \x1b[2m612ms\x1b[0m
             \x1b[36m[web-01]\x1b[0m \x1b[32mok\x1b[0m\x1b[1;32m changed\x1b[0m
  \x1b[32m[unchanged]\x1b[0m health-check              changed=false  \x1b[2m3ms\x1b[0m
";
        assert_eq!(out, want);
    }

    #[test]
    fn colour_failed_skip_retry_lines() {
        let out = colored(&[
            retry("get-load", 1, "timeout"),
            with(
                done("get-load", StepStatus::Failed, 45),
                vec![
                    host("web-02", HostStatus::Failed, Some("timeout")),
                    host("web-03", HostStatus::Skipped, None),
                ],
                Some("command exited with code 1"),
                None,
                None,
            ),
            skip("run-df", "no dependencies changed"),
        ]);
        let want =
            "  \x1b[33m[retry]\x1b[0m     get-load                  attempt=1 error=\"timeout\"
  \x1b[1;31m[failed]\x1b[0m    get-load                  \x1b[2m45ms\x1b[0m
              \x1b[1;31mcommand exited with code 1\x1b[0m
             \x1b[36m[web-02]\x1b[0m \x1b[1;31mfailed: timeout\x1b[0m
             \x1b[36m[web-03]\x1b[0m \x1b[33mskipped\x1b[0m
  \x1b[2;33m[skip]\x1b[0m      run-df                    reason=\"no dependencies changed\"
";
        assert_eq!(out, want);
    }

    #[test]
    fn colour_plan_and_level_lines() {
        let out = colored(&[
            plan(3, &[&["health-check"], &["a", "b"]]),
            level_start(0, &["health-check"]),
            level_done(0, 0, 1),
            level_start(1, &["a", "b"]),
            level_done(1, 2, 2),
            complete("3 steps, 2 changed, 1 unchanged", "1.5s"),
        ]);
        let want = "\n\x1b[1;35mExecution Plan\x1b[0m
\x1b[1;35mPlan: 3 steps in 2 levels\x1b[0m
  \x1b[1;2;35mLevel 1 (sequential): health-check\x1b[0m
  \x1b[1;35mLevel 2 (parallel): a, b\x1b[0m

\x1b[1;2m>>> Level 1 (sequential): health-check\x1b[0m
\x1b[2m<<< Level 1 done: 0/1 changed\x1b[0m

\x1b[1;36m>>> Level 2 (parallel): a, b\x1b[0m
\x1b[36m<<< Level 2 done: 2/2 changed\x1b[0m

\x1b[1mComplete: 3 steps, 2 changed, 1 unchanged in 1.5s\x1b[0m
";
        assert_eq!(out, want);
    }

    #[test]
    fn colour_verbose_lines() {
        let events = [with(
            done("run-uptime", StepStatus::Unchanged, 5),
            Vec::new(),
            None,
            Some("j1"),
            Some(json!({"stdout": "a\nb"})),
        )];
        let out = render_all(&events, true, true);
        let want = "  \x1b[32m[unchanged]\x1b[0m run-uptime                changed=false  \x1b[2m5ms\x1b[0m
             \x1b[2mjob_id: j1\x1b[0m
             \x1b[2mstdout: a\x1b[0m
                     \x1b[2mb\x1b[0m
";
        assert_eq!(out, want);
    }

    #[test]
    fn no_escape_codes_without_colour() {
        let mut events = basic_events();
        events.push(retry("x", 1, "e"));
        events.push(skip("y", "r"));
        events.push(with(
            done("z", StepStatus::Failed, 1),
            vec![host("h", HostStatus::Lost, Some("gone"))],
            Some("boom"),
            Some("j"),
            Some(json!({"k": "v"})),
        ));
        for verbose in [false, true] {
            assert!(!render_all(&events, false, verbose).contains('\x1b'));
        }
    }

    #[test]
    fn lines_appear_without_a_flush_and_all_are_written_at_drop() {
        let buf = Buf::default();
        let r = Renderer::with_color(Box::new(buf.clone()), false, false, None);
        r.on_event(&skip("a", "b"));
        // The batching thread writes it within its window; no flush asked.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !buf.text().contains("[skip]") {
            assert!(std::time::Instant::now() < deadline, "never written");
            std::thread::yield_now();
        }
        r.on_event(&skip("c", "d"));
        drop(r);
        assert_eq!(buf.text().matches("[skip]").count(), 2, "{}", buf.text());
    }

    #[test]
    fn new_honours_always_and_never() {
        let buf = Buf::default();
        let r = Renderer::new(Box::new(buf.clone()), ColorChoice::Never, true, false);
        r.on_event(&skip("a", "b"));
        r.flush();
        assert!(buf.text().contains("[skip]") && !buf.text().contains('\x1b'));
        let buf = Buf::default();
        let r = Renderer::new(Box::new(buf.clone()), ColorChoice::Always, false, false);
        r.on_event(&skip("a", "b"));
        r.flush();
        assert!(buf.text().contains("\x1b[2;33m[skip]\x1b[0m"));
    }

    #[test]
    fn write_errors_are_ignored() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("closed"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Err(std::io::Error::other("closed"))
            }
        }
        let r = Renderer::with_color(Box::new(Broken), false, false, None);
        for e in basic_events() {
            r.on_event(&e);
        }
    }

    #[test]
    fn renderer_is_an_observer_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Renderer>();
        let _: Arc<dyn Observer> = Arc::new(Renderer::with_color(
            Box::new(std::io::sink()),
            false,
            false,
            None,
        ));
    }

    #[test]
    fn parallel_events_never_interleave() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 200;
        let event = |t: usize, i: usize| -> Event {
            let step = format!("step-{t}-{i}");
            if i.is_multiple_of(2) {
                start(&step, "operation=node.hostname.get target=_all")
            } else {
                with(
                    done(&step, StepStatus::Failed, (t * 1000 + i) as u64),
                    vec![
                        host(&format!("web-{t}-{i}-a"), HostStatus::Ok, None),
                        host(
                            &format!("web-{t}-{i}-b"),
                            HostStatus::Failed,
                            Some("timeout"),
                        ),
                    ],
                    Some("1 host failed"),
                    None,
                    None,
                )
            }
        };
        // Expected text of every event, keyed by its (unique) first line.
        let mut expected: HashMap<String, String> = HashMap::new();
        for t in 0..THREADS {
            for i in 0..PER_THREAD {
                let text = plain(&[event(t, i)]);
                let first = text.lines().next().unwrap().to_string();
                assert!(expected.insert(first, text).is_none());
            }
        }

        let sink = Choppy::default();
        let renderer = Arc::new(Renderer::with_color(
            Box::new(sink.clone()),
            false,
            false,
            None,
        ));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let renderer = Arc::clone(&renderer);
                std::thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        renderer.on_event(&event(t, i));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        renderer.flush();
        let out = sink.0.text();

        // The output is exactly a concatenation of whole event texts.
        let mut rest = out.as_str();
        let mut seen = 0;
        while !rest.is_empty() {
            let first = rest.lines().next().unwrap();
            let text = expected
                .get(first)
                .unwrap_or_else(|| panic!("unexpected line {first:?}"));
            assert!(
                rest.starts_with(text.as_str()),
                "event split near {first:?}"
            );
            rest = &rest[text.len()..];
            seen += 1;
        }
        assert_eq!(seen, THREADS * PER_THREAD);
        // Every line is one expected line.
        let lines: std::collections::HashSet<&str> =
            expected.values().flat_map(|t| t.lines()).collect();
        for line in out.lines() {
            assert!(lines.contains(line), "mixed line {line:?}");
        }
    }
}
