//! TEMPORARY stand-in for the Go `text/template` engine used by file deploy.
//!
//! It only substitutes simple field paths such as `{{ .Vars.port }}`,
//! `{{ .Hostname }}` and `{{ .Facts.architecture }}`; a missing key renders
//! as `<no value>` like Go. The real engine replaces this file with the same
//! signature.

use std::fmt;

use serde_json::Value;

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template text is malformed.
    Parse(String),
    /// The template could not be executed against the data.
    Execute(String),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Parse(m) => write!(f, "failed to parse template: {m}"),
            TemplateError::Execute(m) => write!(f, "failed to execute template: {m}"),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Renders `source` with `data` as the template's dot.
pub fn render(source: &str, data: &Value) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| TemplateError::Parse("unclosed action".into()))?;
        let expr = after[..end].trim();
        let path = expr
            .strip_prefix('.')
            .ok_or_else(|| TemplateError::Parse(format!("unsupported action {{{{{expr}}}}}")))?;
        let mut value = Some(data);
        for key in path.split('.').filter(|k| !k.is_empty()) {
            value = value.and_then(|v| v.get(key));
        }
        match value {
            None | Some(Value::Null) => out.push_str("<no value>"),
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn simple_fields() {
        let data = json!({"Vars": {"port": 8080}, "Hostname": "web-01", "Facts": null});
        assert_eq!(
            render(
                "listen {{ .Vars.port }}; # {{ .Hostname }} {{ .Facts.architecture }}",
                &data
            )
            .unwrap(),
            "listen 8080; # web-01 <no value>"
        );
        assert!(matches!(
            render("{{ .Vars", &data),
            Err(TemplateError::Parse(_))
        ));
    }
}
