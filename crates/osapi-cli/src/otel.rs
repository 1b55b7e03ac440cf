//! OpenTelemetry export of spans (`telemetry.tracing.exporter: otlp`), in
//! builds with the `otel` cargo feature: OTLP over HTTP with protobuf to
//! `telemetry.tracing.otlp_endpoint` (a collector's port 4318; a URL
//! without a path gets `/v1/traces`). Upstream exports over gRPC (port
//! 4317); collectors take both, and HTTP spares the build a gRPC stack.

use crate::config::SpanExport;
use crate::logging::SpanLayer;

/// What must outlive the program's work for spans to leave: dropping it
/// sends what is still buffered.
#[derive(Default)]
pub struct Exporting {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Exporting {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        // Bounded: an unreachable collector must not hold up a stop.
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown_with_timeout(std::time::Duration::from_secs(2))
        {
            eprintln!("warning: spans not exported at exit: {e}");
        }
    }
}

/// The layer that sends finished spans to the OTLP collector at `endpoint`.
#[cfg(not(feature = "otel"))]
pub(crate) fn layer(endpoint: &str) -> anyhow::Result<(SpanLayer, Exporting)> {
    anyhow::bail!(
        "telemetry.tracing.exporter: otlp (to {endpoint}) needs a build with the `otel` feature \
         (cargo install --locked --features otel --path crates/osapi-cli); this build exports \
         spans to stdout only"
    )
}

/// The layer that sends finished spans to the OTLP collector at `endpoint`.
#[cfg(feature = "otel")]
pub(crate) fn layer(endpoint: &str) -> anyhow::Result<(SpanLayer, Exporting)> {
    use anyhow::Context;
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::WithExportConfig;
    use tracing_subscriber::Layer;

    let url = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(url)
        .build()
        .context("telemetry.tracing: cannot build the OTLP exporter")?;
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("osapi")
                .build(),
        )
        .build();
    let tracer = provider.tracer("osapi");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Ok((
        layer,
        Exporting {
            provider: Some(provider),
        },
    ))
}

/// Carries a request's trace to the agents (`ServerConfig::trace_parent`),
/// when spans go to an OTLP collector; `None` otherwise, and in builds
/// without the `otel` feature.
pub(crate) fn trace_parent_hook(export: &SpanExport) -> Option<fn() -> Option<String>> {
    #[cfg(feature = "otel")]
    if matches!(export, SpanExport::Otlp { .. }) {
        return Some(current_traceparent);
    }
    let _ = export;
    None
}

/// Puts a job's span in its request's trace (`AgentConfig::trace_adopt`),
/// when spans go to an OTLP collector; `None` otherwise, and in builds
/// without the `otel` feature.
pub(crate) fn trace_adopt_hook(export: &SpanExport) -> Option<fn(&tracing::Span, &str)> {
    #[cfg(feature = "otel")]
    if matches!(export, SpanExport::Otlp { .. }) {
        return Some(adopt_traceparent);
    }
    let _ = export;
    None
}

/// The W3C `traceparent` of the current span, if it is in a trace.
#[cfg(feature = "otel")]
fn current_traceparent() -> Option<String> {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let cx = tracing::Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `parent` (a W3C `traceparent`) the parent of `span`; a malformed
/// one is ignored (it came over the bus, and only steers traces).
#[cfg(feature = "otel")]
fn adopt_traceparent(span: &tracing::Span, parent: &str) {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let carrier =
        std::collections::HashMap::from([("traceparent".to_string(), parent.to_string())]);
    let cx = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The URL spans are posted to: `endpoint` as given when it has a path,
/// else with `/v1/traces`.
#[cfg(any(feature = "otel", test))]
fn traces_url(endpoint: &str) -> anyhow::Result<String> {
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        anyhow::anyhow!(
            "telemetry.tracing.otlp_endpoint {endpoint:?} must be a URL such as http://collector:4318"
        )
    })?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        anyhow::bail!(
            "telemetry.tracing.otlp_endpoint {endpoint:?} must be an http:// or https:// URL"
        );
    }
    Ok(match rest.split_once('/') {
        Some((_, path)) if !path.is_empty() => endpoint.to_string(),
        _ => format!("{}/v1/traces", endpoint.trim_end_matches('/')),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_get_the_traces_path_unless_they_name_one() {
        let url = |e: &str| super::traces_url(e).unwrap();
        assert_eq!(url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(url("https://c/otlp/v1/traces"), "https://c/otlp/v1/traces");
        assert!(super::traces_url("c:4317").is_err());
        assert!(super::traces_url("grpc://c:4317").is_err());
    }
}
