//! A Go `text/template`-compatible template engine rendering over
//! `serde_json::Value`.
//!
//! Templates written for Go's `text/template` (default `{{ }}` delimiters,
//! Go's builtin functions only) render with the same output: actions,
//! trim markers, comments, variables, pipelines, `if`/`range`/`with`/
//! `break`/`continue`, `define`/`template`/`block`, and the builtins
//! `and or not len index slice print printf println eq ne lt le gt ge html
//! js urlquery` with Go's `fmt` formatting. JSON objects play the role of
//! Go's `map[string]interface{}`: a missing key renders as `<no value>`.
//!
//! Parsing and execution never panic and always terminate:
//! - nesting of control structures and parentheses is limited to 1000,
//!   `{{template}}` recursion to depth 1000;
//! - execution is limited to 10 million steps (nodes, iterations, calls),
//!   64 MiB of output and 256 MiB of strings produced by functions
//!   (`output too large`);
//! - parsing and execution run on a helper thread with a 32 MiB stack and
//!   check their actual stack use, so pathological nesting yields an error
//!   (`template nesting too deep`) instead of a stack overflow. If no
//!   thread can be started they run in place with a small stack budget.
//!
//! Deliberate differences from Go: numbers compare by value across
//! int/float (`eq 1 1.0` is true; Go reports incompatible types);
//! "can't evaluate field" errors name the JSON value's type (`string`)
//! rather than `interface {}`; `slice` accepts integer indexes taken from
//! data; `call` and complex numbers are not supported; byte-slicing a
//! string in the middle of a UTF-8 sequence yields U+FFFD; `unicode.IsPrint`
//! (used by `%q` and `js`) is approximated.
//!
//! ```
//! let data = serde_json::json!({"Hostname": "web-01", "Vars": {"port": 8080}});
//! let out = osapi_gotemplate::render("{{.Hostname}}:{{.Vars.port}}", &data).unwrap();
//! assert_eq!(out, "web-01:8080");
//! ```
//!
//! Module layout: `lexer` (items), `parser` (trees), `node` (tree types),
//! `exec` (execution), `funcs` (builtins), `gofmt` (Go `fmt`/`strconv`
//! port), `value` (runtime values).

mod exec;
mod funcs;
mod gofmt;
mod lexer;
mod node;
mod parser;
mod value;

#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::Value;

/// Errors from parsing or executing a template. Messages follow Go's
/// format, e.g. `template: :3: unexpected {{end}}` or
/// `template: :1:10: executing "" at <.Hostname.x>: can't evaluate field x in type string`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template text is not valid.
    #[error("failed to parse template: {0}")]
    Parse(String),
    /// Rendering failed (bad field access, function error, limits).
    #[error("failed to execute template: {0}")]
    Execute(String),
}

/// A parsed template, reusable for any number of renders (also from
/// several threads at once).
pub struct Template {
    source: String,
    trees: parser::Trees,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.trees.keys().collect();
        names.sort();
        f.debug_struct("Template")
            .field("source_len", &self.source.len())
            .field("templates", &names)
            .finish()
    }
}

/// Stack size of the helper thread that parses and executes templates.
const THREAD_STACK: usize = 32 << 20;
/// Stack the parser/executor may use on the helper thread.
const THREAD_STACK_BUDGET: usize = 24 << 20;
/// Stack the parser/executor may use when no helper thread could be
/// started and the work runs on the caller's (unknown-size) stack.
const INLINE_STACK_BUDGET: usize = 256 << 10;

/// Run `work` on a helper thread with a large stack, passing the stack
/// budget it may use for recursion. Falls back to the caller's thread with
/// a conservative budget if no thread can be started.
fn with_stack<T: Send>(
    work: &(dyn Fn(usize) -> Result<T, TemplateError> + Sync),
    failure: fn(String) -> TemplateError,
) -> Result<T, TemplateError> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("gotemplate".into())
            .stack_size(THREAD_STACK)
            .spawn_scoped(scope, || work(THREAD_STACK_BUDGET));
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(failure("internal error: template worker panicked".into()))
            }),
            Err(_) => work(INLINE_STACK_BUDGET),
        }
    })
}

fn execute(
    source: &str,
    trees: &parser::Trees,
    data: &Value,
    max_stack: usize,
) -> Result<String, TemplateError> {
    let limits = exec::Limits {
        max_stack,
        ..exec::Limits::default()
    };
    exec::execute(trees, source, data, &limits).map_err(|e| TemplateError::Execute(e.0))
}

impl Template {
    /// Parse a template source.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let trees = with_stack(
            &|budget| parser::parse(source, budget).map_err(TemplateError::Parse),
            TemplateError::Parse,
        )?;
        Ok(Template {
            source: source.to_string(),
            trees,
        })
    }

    /// Render the template against `data` (the template's `.` and `$`).
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        with_stack(
            &|budget| execute(&self.source, &self.trees, data, budget),
            TemplateError::Execute,
        )
    }
}

/// Parse and render in one go.
pub fn render(source: &str, data: &Value) -> Result<String, TemplateError> {
    with_stack(
        &|budget| {
            let trees = parser::parse(source, budget).map_err(TemplateError::Parse)?;
            execute(source, &trees, data, budget)
        },
        TemplateError::Execute,
    )
}
