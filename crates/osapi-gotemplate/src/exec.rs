//! Executor: walks parse trees against JSON data, following Go's
//! `text/template` exec semantics (variables and scoping, pipelines, field
//! chains, range/if/with/break/continue, template calls, argument
//! evaluation and error messages like `template: :1:10: executing "" at
//! <.x.y>: ...`).
//!
//! Execution is bounded: template call depth, total work steps, output
//! size and the total size of strings produced by functions are limited.

use std::fmt::{self, Display};

use serde_json::Value;

use super::funcs;
use super::gofmt::{self, PrintError, Printer};
use super::node::{Arg, Branch, Command, List, Node, Number, Pipe};
use super::parser::Trees;
use super::value::{Str, Val, sorted_entries};

/// Resource limits for one execution.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    /// Maximum nesting of `{{template}}` calls.
    pub max_depth: usize,
    /// Maximum size of the rendered output (and of any produced string).
    pub max_output: usize,
    /// Maximum number of execution steps (nodes, iterations, calls).
    pub max_steps: u64,
    /// Maximum total bytes of strings produced by functions.
    pub max_alloc: usize,
    /// Maximum bytes of stack the executor may use (nesting guard).
    pub max_stack: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 1000,
            max_output: 64 << 20,
            max_steps: 10_000_000,
            max_alloc: 256 << 20,
            max_stack: 256 << 10,
        }
    }
}

/// An execution error, already formatted like Go's.
#[derive(Debug)]
pub(super) struct ExecError(pub String);

type R<T> = Result<T, ExecError>;

/// How a list finished: normally or via `{{break}}` / `{{continue}}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

/// The node being evaluated, for error context (Go's `state.at`).
#[derive(Clone, Copy)]
enum At<'a> {
    None,
    Node(&'a Node),
    Arg(&'a Arg),
    Cmd(&'a Command),
    Pipe(&'a Pipe),
}

impl At<'_> {
    fn pos(&self) -> Option<usize> {
        match self {
            At::None => None,
            At::Node(n) => Some(n.pos()),
            At::Arg(a) => Some(a.pos()),
            At::Cmd(c) => Some(c.pos),
            At::Pipe(p) => Some(p.pos),
        }
    }
}

impl Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::None => Ok(()),
            At::Node(n) => write!(f, "{n}"),
            At::Arg(a) => write!(f, "{a}"),
            At::Cmd(c) => write!(f, "{c}"),
            At::Pipe(p) => write!(f, "{p}"),
        }
    }
}

/// Parameter types of builtins, as far as argument evaluation cares.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PType {
    /// No type (Go's nil `reflect.Type`, used for chain receivers).
    Untyped,
    /// `reflect.Value`: receives the value as is, missing stays missing.
    Value,
    /// `interface{}`: missing becomes nil.
    Any,
    /// `string`.
    Str,
}

/// Signature of a builtin: fixed parameters and optional variadic type.
struct Sig {
    fixed: &'static [PType],
    variadic: Option<PType>,
}

fn signature(name: &str) -> Sig {
    use PType::*;
    let (fixed, variadic): (&'static [PType], Option<PType>) = match name {
        "and" | "or" | "index" | "slice" | "eq" | "call" => (&[Value], Some(Value)),
        "not" | "len" => (&[Value], None),
        "ne" | "lt" | "le" | "gt" | "ge" => (&[Value, Value], None),
        "printf" => (&[Str], Some(Any)),
        _ => (&[], Some(Any)), // print, println, html, js, urlquery
    };
    Sig { fixed, variadic }
}

/// Failure of a builtin call.
enum CallError {
    /// Reported as "error calling NAME: msg".
    Msg(String),
    /// A resource limit was hit.
    Limit,
}

impl From<String> for CallError {
    fn from(s: String) -> Self {
        CallError::Msg(s)
    }
}

const OUTPUT_TOO_LARGE: &str = "output too large";

struct State<'a, 'l> {
    trees: &'a Trees,
    src: &'a str,
    limits: &'l Limits,
    /// Name of the template being executed.
    name: &'a str,
    out: String,
    vars: Vec<(&'a str, Val<'a>)>,
    /// Variables below this index belong to calling templates.
    var_base: usize,
    depth: usize,
    steps: u64,
    alloc: usize,
    at: At<'a>,
    stack_base: usize,
}

/// Approximate current stack position: the address of a local in a fresh
/// frame. Comparing two positions tells how much stack lies between them
/// (whatever the direction of growth), which bounds recursion by actual
/// stack use rather than by a guessed per-level frame size.
#[inline(never)]
pub(super) fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Execute the main template (`""`) of `trees` against `data`.
pub(super) fn execute(
    trees: &Trees,
    src: &str,
    data: &Value,
    limits: &Limits,
) -> Result<String, ExecError> {
    let root = match data {
        Value::Null => Val::Missing,
        other => Val::from_json(other),
    };
    let Some((name, main)) = trees.get_key_value("") else {
        return Err(ExecError(
            "template: : \"\" is an incomplete or empty template".into(),
        ));
    };
    let mut s = State {
        trees,
        src,
        limits,
        name,
        out: String::new(),
        vars: vec![("$", root.clone())],
        var_base: 0,
        depth: 0,
        steps: 0,
        alloc: 0,
        at: At::None,
        stack_base: stack_position(),
    };
    s.walk_list(&root, main)?;
    Ok(s.out)
}

/// Go's `ErrorContext` location: 1-based line and 0-based byte column.
fn line_col(src: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(src.len());
    let text = src.as_bytes().get(..pos).unwrap_or(&[]);
    let line = 1 + text.iter().filter(|&&b| b == b'\n').count();
    let col = match text.iter().rposition(|&b| b == b'\n') {
        Some(nl) => pos - (nl + 1),
        None => pos,
    };
    (line, col)
}

fn is_hex_int(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > 2 && b[0] == b'0' && (b[1] == b'x' || b[1] == b'X') && !s.contains(['p', 'P'])
}

impl<'a> State<'a, '_> {
    // ----- errors and limits ---------------------------------------------

    fn errorf(&self, msg: impl Display) -> ExecError {
        let name = gofmt::quote(self.name);
        match self.at.pos() {
            Some(pos) => {
                let (line, col) = line_col(self.src, pos);
                let ctx = self.at.to_string();
                ExecError(format!(
                    "template: :{line}:{col}: executing {name} at <{ctx}>: {msg}"
                ))
            }
            None => ExecError(format!("template: {}: {msg}", self.name)),
        }
    }

    fn check_stack(&self) -> R<()> {
        let used = stack_position().abs_diff(self.stack_base);
        if used > self.limits.max_stack {
            return Err(self.errorf("template nesting too deep"));
        }
        Ok(())
    }

    fn tick(&mut self) -> R<()> {
        self.tick_n(1)
    }

    /// Charge `n` steps of work.
    fn tick_n(&mut self, n: u64) -> R<()> {
        self.steps = self.steps.saturating_add(n);
        if self.steps > self.limits.max_steps {
            return Err(self.errorf(format_args!(
                "execution exceeded the limit of {} steps",
                self.limits.max_steps
            )));
        }
        Ok(())
    }

    fn emit(&mut self, s: &str) -> R<()> {
        if self.out.len().saturating_add(s.len()) > self.limits.max_output {
            return Err(self.errorf(OUTPUT_TOO_LARGE));
        }
        self.out.push_str(s);
        Ok(())
    }

    /// Room left for strings produced by functions.
    fn string_limit(&self) -> usize {
        self.limits
            .max_output
            .min(self.limits.max_alloc.saturating_sub(self.alloc))
    }

    fn produced(&mut self, s: String) -> Result<Val<'a>, CallError> {
        self.alloc = self.alloc.saturating_add(s.len());
        if self.alloc > self.limits.max_alloc || s.len() > self.limits.max_output {
            return Err(CallError::Limit);
        }
        Ok(Val::owned_str(s))
    }

    // ----- variables -------------------------------------------------------

    /// Index of the innermost visible variable called `name`. The search
    /// cost is charged to the step budget.
    fn find_var(&mut self, name: &str) -> R<usize> {
        let scope = self.vars.get(self.var_base..).unwrap_or(&[]);
        let found = scope.iter().rposition(|(n, _)| *n == name);
        let scanned = scope.len() - found.map_or(0, |i| i + 1);
        self.tick_n(scanned as u64 / 16)?;
        match found {
            Some(i) => Ok(self.var_base + i),
            None => Err(self.errorf(format_args!("undefined variable: {name}"))),
        }
    }

    fn var_value(&mut self, name: &str) -> R<Val<'a>> {
        let i = self.find_var(name)?;
        Ok(self.vars.get(i).map_or(Val::Missing, |(_, v)| v.clone()))
    }

    fn set_var(&mut self, name: &str, value: Val<'a>) -> R<()> {
        let i = self.find_var(name)?;
        if let Some(slot) = self.vars.get_mut(i) {
            slot.1 = value;
        }
        Ok(())
    }

    /// Set the n'th variable from the top of the stack (1-based).
    fn set_top_var(&mut self, n: usize, value: Val<'a>) {
        let len = self.vars.len();
        if n <= len - self.var_base.min(len)
            && let Some(slot) = self.vars.get_mut(len - n)
        {
            slot.1 = value;
        }
    }

    // ----- walking -----------------------------------------------------------

    fn walk_list(&mut self, dot: &Val<'a>, list: &'a List) -> R<Flow> {
        for n in &list.nodes {
            let flow = self.walk(dot, n)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Val<'a>, node: &'a Node) -> R<Flow> {
        self.tick()?;
        self.check_stack()?;
        self.at = At::Node(node);
        match node {
            Node::Text { text, .. } => self.emit(text)?,
            Node::Action { pipe, .. } => self.walk_action(dot, node, pipe)?,
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => self.walk_range(dot, node, b)?,
            Node::Template { name, pipe, .. } => self.walk_template(dot, node, name, pipe)?,
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_action(&mut self, dot: &Val<'a>, node: &'a Node, pipe: &'a Pipe) -> R<()> {
        let val = self.eval_pipeline(dot, pipe)?;
        if !pipe.decl.is_empty() {
            return Ok(());
        }
        self.at = At::Node(node);
        if val.is_nil() {
            return self.emit("<no value>");
        }
        let limit = self.limits.max_output.saturating_sub(self.out.len());
        match gofmt::sprint_one(&val, limit) {
            Ok(s) => self.emit(&s),
            Err(PrintError::TooLarge) => Err(self.errorf(OUTPUT_TOO_LARGE)),
            Err(PrintError::TooDeep) => Err(self.errorf("value nesting too deep to print")),
        }
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &Val<'a>, b: &'a Branch) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let r = if val.truth() {
            if with {
                self.walk_list(&val, &b.list)
            } else {
                self.walk_list(dot, &b.list)
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        r
    }

    fn walk_range(&mut self, dot: &Val<'a>, node: &'a Node, b: &'a Branch) -> R<()> {
        self.at = At::Node(node);
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let r = self.range_over(dot, b, val);
        self.vars.truncate(mark);
        r
    }

    fn range_over(&mut self, dot: &Val<'a>, b: &'a Branch, val: Val<'a>) -> R<()> {
        // Mark the top of the stack before any variables in the body are pushed.
        let mark = self.vars.len();
        match val {
            Val::Array(a) if !a.is_empty() => {
                for (i, e) in a.iter().enumerate() {
                    let flow =
                        self.one_iteration(b, mark, Val::Int(i as i64), Val::from_json(e))?;
                    if flow == Flow::Break {
                        break;
                    }
                }
                return Ok(());
            }
            Val::Object(m) if !m.is_empty() => {
                for (k, v) in sorted_entries(m) {
                    let key = Val::Str(Str::Borrowed(k));
                    let flow = self.one_iteration(b, mark, key, Val::from_json(v))?;
                    if flow == Flow::Break {
                        break;
                    }
                }
                return Ok(());
            }
            Val::Int(_) | Val::Uint(_) => {
                let n: u64 = match val {
                    Val::Int(i) => u64::try_from(i).unwrap_or(0),
                    Val::Uint(u) => u,
                    _ => 0,
                };
                if b.pipe.decl.len() > 1 {
                    let shown = self.sprint_value(&val);
                    return Err(self.errorf(format_args!(
                        "can't use {shown} to iterate over more than one variable"
                    )));
                }
                if n > 0 {
                    for i in 0..n {
                        let elem = i64::try_from(i).map_or(Val::Uint(i), Val::Int);
                        let flow = self.one_iteration(b, mark, Val::Missing, elem)?;
                        if flow == Flow::Break {
                            break;
                        }
                    }
                    return Ok(());
                }
            }
            Val::Array(_) | Val::Object(_) | Val::Missing | Val::Nil => {}
            other => {
                let shown = self.sprint_value(&other);
                return Err(self.errorf(format_args!("range can't iterate over {shown}")));
            }
        }
        if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?;
        }
        Ok(())
    }

    fn sprint_value(&self, v: &Val<'_>) -> String {
        gofmt::sprint_one(v, 4096).unwrap_or_default()
    }

    fn one_iteration(
        &mut self,
        b: &'a Branch,
        mark: usize,
        index: Val<'a>,
        elem: Val<'a>,
    ) -> R<Flow> {
        self.tick()?;
        let decl = &b.pipe.decl;
        if b.pipe.is_assign {
            match decl.as_slice() {
                [v] => self.set_var(v, elem.clone())?,
                [i, v, ..] => {
                    self.set_var(i, index)?;
                    self.set_var(v, elem.clone())?;
                }
                [] => {}
            }
        } else {
            if !decl.is_empty() {
                // Set top var (lexically the second if there are two) to the element.
                self.set_top_var(1, elem.clone());
            }
            if decl.len() > 1 {
                // Set next var (lexically the first if there are two) to the index.
                self.set_top_var(2, index);
            }
        }
        let r = self.walk_list(&elem, &b.list);
        self.vars.truncate(mark);
        r
    }

    fn walk_template(
        &mut self,
        dot: &Val<'a>,
        node: &'a Node,
        name: &'a str,
        pipe: &'a Option<Pipe>,
    ) -> R<()> {
        self.at = At::Node(node);
        let Some(tree) = self.trees.get(name) else {
            return Err(self.errorf(format_args!("template {} not defined", gofmt::quote(name))));
        };
        if self.depth >= self.limits.max_depth {
            return Err(self.errorf(format_args!(
                "exceeded maximum template depth ({})",
                self.limits.max_depth
            )));
        }
        // Variables declared by the pipeline persist.
        let new_dot = match pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => Val::Missing,
        };
        let saved_base = self.var_base;
        let saved_name = self.name;
        let mark = self.vars.len();
        // No dynamic scoping: template invocations inherit no variables.
        self.var_base = mark;
        self.vars.push(("$", new_dot.clone()));
        self.name = name;
        self.depth += 1;
        let r = self.walk_list(&new_dot, tree);
        self.depth -= 1;
        self.name = saved_name;
        self.vars.truncate(mark);
        self.var_base = saved_base;
        r.map(|_| ())
    }

    // ----- evaluation ----------------------------------------------------------

    fn eval_pipeline(&mut self, dot: &Val<'a>, pipe: &'a Pipe) -> R<Val<'a>> {
        self.at = At::Pipe(pipe);
        self.check_stack()?;
        let mut value: Option<Val<'a>> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            // A nil interface becomes "no value" (Go digs into interface{}).
            value = Some(match v {
                Val::Nil => Val::Missing,
                other => other,
            });
        }
        let value = value.unwrap_or(Val::Missing);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(var, value.clone())?;
            } else {
                self.vars.push((var.as_str(), value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<Val<'a>>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            let first = args.first().map(|a| a.to_string()).unwrap_or_default();
            return Err(self.errorf(format_args!("can't give argument to non-function {first}")));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Val<'a>,
        cmd: &'a Command,
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        let Some(first) = cmd.args.first() else {
            return Err(self.errorf("empty command"));
        };
        match first {
            Arg::Field { idents, .. } => {
                self.at = At::Arg(first);
                self.eval_field_chain(dot.clone(), idents, &cmd.args, fin)
            }
            Arg::Chain { .. } => self.eval_chain_node(dot, first, &cmd.args, fin),
            Arg::Identifier { name, .. } => {
                let rest = cmd.args.get(1..).unwrap_or(&[]);
                self.eval_function(dot, first, name, At::Cmd(cmd), rest, fin)
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Variable { idents, .. } => self.eval_variable_node(first, idents, &cmd.args, fin),
            _ => {
                self.at = At::Arg(first);
                self.not_a_function(&cmd.args, &fin)?;
                match first {
                    Arg::Bool { val, .. } => Ok(Val::Bool(*val)),
                    Arg::Dot { .. } => Ok(dot.clone()),
                    Arg::Nil { .. } => Err(self.errorf("nil is not a command")),
                    Arg::Number(n) => self.ideal_constant(first, n),
                    Arg::String { text, .. } => Ok(Val::Str(Str::Borrowed(text))),
                    other => Err(self.errorf(format_args!("can't evaluate command {other}"))),
                }
            }
        }
    }

    fn ideal_constant(&mut self, node: &'a Arg, n: &Number) -> R<Val<'a>> {
        self.at = At::Arg(node);
        let t = &n.text;
        if n.is_float
            && !is_hex_int(t)
            && !t.starts_with('\'')
            && t.contains(['.', 'e', 'E', 'p', 'P'])
        {
            return Ok(Val::Float(n.float64));
        }
        if n.is_int {
            return Ok(Val::Int(n.int64));
        }
        if n.is_uint {
            return Err(self.errorf(format_args!("{t} overflows int")));
        }
        Ok(Val::Missing)
    }

    fn eval_chain_node(
        &mut self,
        dot: &Val<'a>,
        chain: &'a Arg,
        args: &'a [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        self.at = At::Arg(chain);
        let Arg::Chain { node, fields, .. } = chain else {
            return Err(self.errorf("internal error: not a chain"));
        };
        if fields.is_empty() {
            return Err(self.errorf("internal error: no fields in evalChainNode"));
        }
        if matches!(node.as_ref(), Arg::Nil { .. }) {
            return Err(self.errorf(format_args!("indirection through explicit nil in {chain}")));
        }
        // (pipe).Field1.Field2 has pipe as .Node, fields as .Field.
        let receiver = self.eval_arg(dot, PType::Untyped, node)?;
        self.eval_field_chain(receiver, fields, args, fin)
    }

    fn eval_variable_node(
        &mut self,
        var: &'a Arg,
        idents: &'a [String],
        args: &'a [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        self.at = At::Arg(var);
        let name = idents.first().map_or("", String::as_str);
        let value = self.var_value(name)?;
        if idents.len() <= 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(value, &idents[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        receiver: Val<'a>,
        idents: &'a [String],
        args: &'a [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        let Some((last, init)) = idents.split_last() else {
            return Ok(receiver);
        };
        let mut receiver = receiver;
        for ident in init {
            receiver = self.eval_field(ident, &[], None, receiver)?;
        }
        // Now if it's a method, it gets the arguments.
        self.eval_field(last, args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        name: &str,
        args: &[Arg],
        fin: Option<Val<'a>>,
        receiver: Val<'a>,
    ) -> R<Val<'a>> {
        match receiver {
            Val::Missing => Ok(Val::Missing),
            Val::Nil => {
                Err(self.errorf(format_args!("nil pointer evaluating interface {{}}.{name}")))
            }
            Val::Object(m) => {
                if args.len() > 1 || fin.is_some() {
                    return Err(
                        self.errorf(format_args!("{name} is not a method but has arguments"))
                    );
                }
                Ok(m.get(name).map_or(Val::Missing, Val::from_json))
            }
            other => Err(self.errorf(format_args!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }

    fn validate_type(&self, v: Val<'a>, typ: PType) -> R<Val<'a>> {
        match typ {
            PType::Untyped | PType::Value => Ok(v),
            PType::Any => Ok(match v {
                Val::Missing => Val::Nil,
                other => other,
            }),
            PType::Str => match v {
                Val::Str(_) => Ok(v),
                Val::Missing => Err(self.errorf("invalid value; expected string")),
                other => Err(self.errorf(format_args!(
                    "wrong type for value; expected string; got {}",
                    other.type_name()
                ))),
            },
        }
    }

    fn eval_arg(&mut self, dot: &Val<'a>, typ: PType, n: &'a Arg) -> R<Val<'a>> {
        self.at = At::Arg(n);
        let v = match n {
            Arg::Dot { .. } => dot.clone(),
            Arg::Nil { .. } => {
                return match typ {
                    PType::Any | PType::Untyped => Ok(Val::Nil),
                    PType::Value => Ok(Val::Missing),
                    PType::Str => Err(self.errorf("cannot assign nil to string")),
                };
            }
            Arg::Field { idents, .. } => {
                self.eval_field_chain(dot.clone(), idents, std::slice::from_ref(n), None)?
            }
            Arg::Variable { idents, .. } => self.eval_variable_node(n, idents, &[], None)?,
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Identifier { name, .. } => {
                self.eval_function(dot, n, name, At::Arg(n), &[], None)?
            }
            Arg::Chain { .. } => self.eval_chain_node(dot, n, &[], None)?,
            Arg::Bool { val, .. } => {
                if typ == PType::Str {
                    return Err(self.errorf(format_args!("expected string; found {n}")));
                }
                return Ok(Val::Bool(*val));
            }
            Arg::Number(num) => {
                if typ == PType::Str {
                    return Err(self.errorf(format_args!("expected string; found {n}")));
                }
                return self.ideal_constant(n, num);
            }
            Arg::String { text, .. } => return Ok(Val::Str(Str::Borrowed(text))),
        };
        self.validate_type(v, typ)
    }

    fn eval_function(
        &mut self,
        dot: &Val<'a>,
        ident: &'a Arg,
        name: &'a str,
        call_node: At<'a>,
        args: &'a [Arg],
        fin: Option<Val<'a>>,
    ) -> R<Val<'a>> {
        self.at = At::Arg(ident);
        let sig = signature(name);
        let num_fixed = sig.fixed.len();
        let num_in = args.len() + usize::from(fin.is_some());
        match sig.variadic {
            Some(_) if num_in < num_fixed => {
                return Err(self.errorf(format_args!(
                    "wrong number of args for {name}: want at least {num_fixed} got {}",
                    args.len()
                )));
            }
            None if num_in != num_fixed => {
                return Err(self.errorf(format_args!(
                    "wrong number of args for {name}: want {num_fixed} got {num_in}"
                )));
            }
            _ => {}
        }
        // Special case for builtin and/or, which short-circuit.
        if name == "and" || name == "or" {
            let want = name == "or";
            let mut v = Val::Missing;
            for arg in args {
                v = self.eval_arg(dot, PType::Value, arg)?;
                if v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let param = |i: usize| -> PType {
            sig.fixed
                .get(i)
                .copied()
                .or(sig.variadic)
                .unwrap_or(PType::Any)
        };
        let mut argv: Vec<Val<'a>> = Vec::with_capacity(num_in);
        for (i, arg) in args.iter().enumerate() {
            argv.push(self.eval_arg(dot, param(i), arg)?);
        }
        if let Some(f) = fin {
            let t = param(num_in - 1);
            argv.push(self.validate_type(f, t)?);
        }
        // Comparing or slicing long strings costs in proportion to their size.
        let bytes: usize = argv
            .iter()
            .map(|v| match v {
                Val::Str(s) => s.as_str().len(),
                _ => 0,
            })
            .sum();
        self.tick_n(1 + bytes as u64 / 4096)?;
        match self.call_builtin(name, argv) {
            Ok(v) => Ok(v),
            Err(CallError::Msg(e)) => {
                self.at = call_node;
                Err(self.errorf(format_args!("error calling {name}: {e}")))
            }
            Err(CallError::Limit) => {
                self.at = call_node;
                Err(self.errorf(OUTPUT_TOO_LARGE))
            }
        }
    }

    fn print_builtin(&mut self, name: &str, argv: &[Val<'a>]) -> Result<Val<'a>, CallError> {
        let mut p = Printer::new(self.string_limit());
        match name {
            "print" => p.sprint(argv),
            "println" => p.sprintln(argv),
            _ => {
                let format = match argv.first() {
                    Some(Val::Str(s)) => s.as_str(),
                    _ => "",
                };
                p.sprintf(format, argv.get(1..).unwrap_or(&[]));
            }
        }
        match p.finish() {
            Ok(s) => self.produced(s),
            Err(PrintError::TooLarge) => Err(CallError::Limit),
            Err(PrintError::TooDeep) => {
                Err(CallError::Msg("value nesting too deep to print".into()))
            }
        }
    }

    fn call_builtin(&mut self, name: &str, argv: Vec<Val<'a>>) -> Result<Val<'a>, CallError> {
        let arg = |i: usize| argv.get(i).cloned().unwrap_or(Val::Missing);
        match name {
            "not" => Ok(Val::Bool(!arg(0).truth())),
            "len" => Ok(funcs::len(&arg(0))?),
            "index" => Ok(funcs::index(arg(0), argv.get(1..).unwrap_or(&[]))?),
            "slice" => match funcs::slice(arg(0), argv.get(1..).unwrap_or(&[]))? {
                // A slice of a produced string is a new allocation.
                Val::Str(Str::Owned(s)) => self.produced(s.to_string()),
                other => Ok(other),
            },
            "eq" => Ok(Val::Bool(funcs::eq(&arg(0), argv.get(1..).unwrap_or(&[]))?)),
            "ne" => Ok(Val::Bool(funcs::ne(&arg(0), &arg(1))?)),
            "lt" => Ok(Val::Bool(funcs::lt(&arg(0), &arg(1))?)),
            "le" => Ok(Val::Bool(funcs::le(&arg(0), &arg(1))?)),
            "gt" => Ok(Val::Bool(funcs::gt(&arg(0), &arg(1))?)),
            "ge" => Ok(Val::Bool(funcs::ge(&arg(0), &arg(1))?)),
            "print" | "printf" | "println" => self.print_builtin(name, &argv),
            "html" | "js" | "urlquery" => {
                let s = match funcs::eval_args(&argv, self.string_limit()) {
                    Ok(s) => s,
                    Err(PrintError::TooLarge) => return Err(CallError::Limit),
                    Err(PrintError::TooDeep) => {
                        return Err(CallError::Msg("value nesting too deep to print".into()));
                    }
                };
                let escaped = match name {
                    "html" => funcs::html_escape(&s),
                    "js" => funcs::js_escape(&s),
                    _ => funcs::query_escape(&s),
                };
                self.produced(escaped)
            }
            "call" => Err(CallError::Msg("call is not supported".into())),
            other => Err(CallError::Msg(format!("function {other} not defined"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, data: &Value) -> Result<String, String> {
        let trees = super::super::parser::parse(src, 256 << 10)?;
        execute(&trees, src, data, &Limits::default()).map_err(|e| e.0)
    }

    #[test]
    fn locations() {
        assert_eq!(line_col("abc", 2), (1, 2));
        assert_eq!(line_col("a\nbc\nd", 3), (2, 1));
        assert_eq!(line_col("a\nb", 99), (2, 1));
        assert!(is_hex_int("0x1F"));
        assert!(!is_hex_int("0x1p4"));
        assert!(!is_hex_int("12"));
    }

    #[test]
    fn errors_name_template_and_node() {
        let e = run(
            "{{ define \"t\" }}\n  {{ .a.b }}{{ end }}{{ template \"t\" . }}",
            &json!({"a": 1}),
        );
        assert_eq!(
            e,
            Err(
                "template: :2:7: executing \"t\" at <.a.b>: can't evaluate field b in type int"
                    .into()
            )
        );
        let e = run("{{ index . 5 }}", &json!([1]));
        assert_eq!(
            e,
            Err("template: :1:3: executing \"\" at <index . 5>: error calling index: index out of range: 5".into())
        );
        let e = run("{{ printf 1 }}", &json!({}));
        assert_eq!(
            e,
            Err("template: :1:10: executing \"\" at <1>: expected string; found 1".into())
        );
        let e = run("{{ printf .x }}", &json!({}));
        assert_eq!(
            e,
            Err("template: :1:10: executing \"\" at <.x>: invalid value; expected string".into())
        );
        let e = run("{{ printf nil }}", &json!({}));
        assert_eq!(
            e,
            Err("template: :1:10: executing \"\" at <nil>: cannot assign nil to string".into())
        );
    }

    #[test]
    fn variable_scopes_do_not_leak_into_templates() {
        let src = "{{ define \"t\" }}{{ $ }}{{ end }}{{ $x := 1 }}{{ template \"t\" 2 }}{{ $x }}";
        assert_eq!(run(src, &json!({})), Ok("21".into()));
        // Variables declared by a template call's pipeline persist in the caller.
        let src = "{{ define \"t\" }}{{ . }}{{ end }}{{ template \"t\" $y := 3 }}{{ $y }}";
        assert_eq!(run(src, &json!({})), Ok("33".into()));
    }

    #[test]
    fn break_and_continue_only_affect_the_innermost_range() {
        let src = "{{ range $i := 3 }}{{ range 3 }}{{ if eq . 1 }}{{ break }}{{ end }}{{ $i }}{{ . }}{{ end }};{{ end }}";
        assert_eq!(run(src, &json!({})), Ok("00;10;20;".into()));
        let src = "{{ range 4 }}{{ if eq . 1 2 }}{{ continue }}{{ end }}{{ . }}{{ end }}";
        assert_eq!(run(src, &json!({})), Ok("03".into()));
    }
}
