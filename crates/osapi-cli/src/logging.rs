//! Logs and spans of the `osapi` commands: human lines or JSON lines on
//! stderr (`--log-format json`, `OSAPI_LOG_FORMAT=json`), filtered by
//! `OSAPI_LOG` (default `info`, or `debug` with `--debug`), and finished
//! spans exported as `telemetry.tracing` says. Requests and jobs run in
//! spans carrying the job id, so every line about a job names it, on the
//! controller and on the agent alike.

use clap::ValueEnum;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::SpanExport;
pub use crate::otel::Exporting;

/// A layer that exports finished spans.
pub(crate) type SpanLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync + 'static>;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (coloured on a terminal).
    #[default]
    Human,
    /// One JSON object per line, with the fields of the spans it is in.
    Json,
}

/// What [`init`] sets up.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// `debug` instead of `info` when `OSAPI_LOG` is unset.
    pub debug: bool,
    /// Line format.
    pub format: LogFormat,
    /// Where finished spans go.
    pub spans: SpanExport,
}

/// Installs the global subscriber. Call once, before anything logs; keep
/// what it returns until the program ends (spans still buffered for an
/// exporter leave when it is dropped).
pub fn init(settings: &LogSettings) -> anyhow::Result<Exporting> {
    let default = if settings.debug { "debug" } else { "info" };
    let filter = EnvFilter::try_from_env("OSAPI_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a terminal, and never with NO_COLOR set.
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let lines = match settings.format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let mut exporting = Exporting::default();
    let spans: Option<SpanLayer> = match &settings.spans {
        SpanExport::None => None,
        // One JSON line per finished span (its fields, busy and idle
        // time), and nothing else: events stay on stderr.
        SpanExport::Stdout => Some(
            tracing_subscriber::fmt::layer()
                .json()
                .with_span_events(FmtSpan::CLOSE)
                .with_writer(std::io::stdout)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| m.is_span()))
                .boxed(),
        ),
        SpanExport::Otlp { endpoint } => {
            let (layer, guard) = crate::otel::layer(endpoint)?;
            exporting = guard;
            Some(layer)
        }
    };
    tracing_subscriber::registry()
        .with(spans)
        .with(filter)
        .with(lines)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))?;
    Ok(exporting)
}
