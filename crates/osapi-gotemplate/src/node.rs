//! Parse tree: the node types produced by the parser and walked by the
//! executor, plus their Go-style `String()` renderings (used in error
//! messages such as `executing "" at <.Vars.x>`).

use std::fmt;

/// A sequence of nodes.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct List {
    pub pos: usize,
    pub nodes: Vec<Node>,
}

/// A control structure: `if`, `range` or `with`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

/// A node of a list.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    Text {
        pos: usize,
        text: String,
    },
    Action {
        pos: usize,
        pipe: Pipe,
    },
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break {
        pos: usize,
    },
    Continue {
        pos: usize,
    },
}

/// A pipeline with optional variable declarations.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    /// Declared/assigned variable names (e.g. `$x`).
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

/// A command: a function or value with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A parsed numeric constant (Go's `NumberNode`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Number {
    pub pos: usize,
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub int64: i64,
    pub uint64: u64,
    pub float64: f64,
}

/// An operand of a command.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    /// `.a.b` – identifiers without the dots.
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    /// `$x.a.b` – first identifier is the variable name including `$`.
    Variable {
        pos: usize,
        idents: Vec<String>,
    },
    /// `(pipeline).a.b` or other term followed by fields.
    Chain {
        pos: usize,
        node: Box<Arg>,
        fields: Vec<String>,
    },
    /// A function name.
    Identifier {
        pos: usize,
        name: String,
    },
    Dot {
        pos: usize,
    },
    Nil {
        pos: usize,
    },
    Bool {
        pos: usize,
        val: bool,
    },
    Number(Number),
    /// A string literal: original quoted text and unquoted value.
    String {
        pos: usize,
        quoted: String,
        text: String,
    },
    /// A parenthesised pipeline.
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Identifier { pos, .. }
            | Arg::Dot { pos }
            | Arg::Nil { pos }
            | Arg::Bool { pos, .. }
            | Arg::String { pos, .. } => *pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl Node {
    pub fn pos(&self) -> usize {
        match self {
            Node::Text { pos, .. }
            | Node::Action { pos, .. }
            | Node::Template { pos, .. }
            | Node::Break { pos }
            | Node::Continue { pos } => *pos,
            Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
        }
    }
}

impl fmt::Display for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for n in &self.nodes {
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

fn write_branch(f: &mut fmt::Formatter<'_>, name: &str, b: &Branch) -> fmt::Result {
    write!(f, "{{{{{name} {}}}}}{}", b.pipe, b.list)?;
    if let Some(e) = &b.else_list {
        write!(f, "{{{{else}}}}{e}")?;
    }
    f.write_str("{{end}}")
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text { text, .. } => f.write_str(text),
            Node::Action { pipe, .. } => write!(f, "{{{{{pipe}}}}}"),
            Node::If(b) => write_branch(f, "if", b),
            Node::Range(b) => write_branch(f, "range", b),
            Node::With(b) => write_branch(f, "with", b),
            Node::Template { name, pipe, .. } => {
                write!(f, "{{{{template {}", super::gofmt::quote(name))?;
                if let Some(p) = pipe {
                    write!(f, " {p}")?;
                }
                f.write_str("}}")
            }
            Node::Break { .. } => f.write_str("{{break}}"),
            Node::Continue { .. } => f.write_str("{{continue}}"),
        }
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(" := ")?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            match a {
                Arg::Pipe(p) => write!(f, "({p})")?,
                other => write!(f, "{other}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { idents, .. } => {
                for i in idents {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Variable { idents, .. } => f.write_str(&idents.join(".")),
            Arg::Chain { node, fields, .. } => {
                match node.as_ref() {
                    Arg::Pipe(p) => write!(f, "({p})")?,
                    other => write!(f, "{other}")?,
                }
                for i in fields {
                    write!(f, ".{i}")?;
                }
                Ok(())
            }
            Arg::Identifier { name, .. } => f.write_str(name),
            Arg::Dot { .. } => f.write_str("."),
            Arg::Nil { .. } => f.write_str("nil"),
            Arg::Bool { val, .. } => f.write_str(if *val { "true" } else { "false" }),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::String { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

// Dropping is iterative so that deeply nested trees cannot exhaust the
// stack of whichever thread drops them.

impl Drop for List {
    fn drop(&mut self) {
        let mut stack: Vec<Node> = std::mem::take(&mut self.nodes);
        while let Some(node) = stack.pop() {
            if let Node::If(mut b) | Node::Range(mut b) | Node::With(mut b) = node {
                stack.append(&mut b.list.nodes);
                if let Some(e) = b.else_list.as_mut() {
                    stack.append(&mut e.nodes);
                }
            }
        }
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let mut stack: Vec<Command> = std::mem::take(&mut self.cmds);
        while let Some(cmd) = stack.pop() {
            for arg in cmd.args {
                let arg = match arg {
                    Arg::Chain { node, .. } => *node,
                    other => other,
                };
                if let Arg::Pipe(mut p) = arg {
                    stack.append(&mut p.cmds);
                }
            }
        }
    }
}

/// Go's `parse.IsEmptyTree`: a list containing only whitespace text.
pub(super) fn is_empty_list(list: &List) -> bool {
    list.nodes.iter().all(|n| match n {
        Node::Text { text, .. } => text.trim().is_empty(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_go() {
        let field = Arg::Field {
            pos: 0,
            idents: vec!["Vars".into(), "port".into()],
        };
        assert_eq!(field.to_string(), ".Vars.port");
        let cmd = Command {
            pos: 0,
            args: vec![
                Arg::Identifier {
                    pos: 0,
                    name: "index".into(),
                },
                field.clone(),
                Arg::Pipe(Box::new(Pipe {
                    pos: 0,
                    is_assign: false,
                    decl: vec![],
                    cmds: vec![Command {
                        pos: 0,
                        args: vec![Arg::Dot { pos: 0 }],
                    }],
                })),
            ],
        };
        assert_eq!(cmd.to_string(), "index .Vars.port (.)");
        let pipe = Pipe {
            pos: 0,
            is_assign: false,
            decl: vec!["$x".into()],
            cmds: vec![cmd.clone(), cmd],
        };
        assert_eq!(
            pipe.to_string(),
            "$x := index .Vars.port (.) | index .Vars.port (.)"
        );
        let node = Node::Template {
            pos: 0,
            name: "a".into(),
            pipe: None,
        };
        assert_eq!(node.to_string(), "{{template \"a\"}}");
        let chain = Arg::Chain {
            pos: 0,
            node: Box::new(Arg::Variable {
                pos: 0,
                idents: vec!["$x".into()],
            }),
            fields: vec!["y".into()],
        };
        assert_eq!(chain.to_string(), "$x.y");
    }

    #[test]
    fn deep_trees_drop_iteratively() {
        let mut list = List {
            pos: 0,
            nodes: vec![],
        };
        let mut pipe = Pipe {
            pos: 0,
            is_assign: false,
            decl: vec![],
            cmds: vec![],
        };
        for _ in 0..100_000 {
            let inner = std::mem::replace(
                &mut pipe,
                Pipe {
                    pos: 0,
                    is_assign: false,
                    decl: vec![],
                    cmds: vec![],
                },
            );
            pipe.cmds.push(Command {
                pos: 0,
                args: vec![Arg::Chain {
                    pos: 0,
                    node: Box::new(Arg::Pipe(Box::new(inner))),
                    fields: vec!["x".into()],
                }],
            });
            let inner = std::mem::replace(
                &mut list,
                List {
                    pos: 0,
                    nodes: vec![],
                },
            );
            list.nodes.push(Node::If(Branch {
                pos: 0,
                pipe: Pipe {
                    pos: 0,
                    is_assign: false,
                    decl: vec![],
                    cmds: vec![],
                },
                list: inner,
                else_list: None,
            }));
        }
        // Would overflow a small stack if dropping recursed.
        let r = std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || {
                drop(list);
                drop(pipe);
            })
            .map(|h| h.join().is_ok());
        assert_eq!(r.ok(), Some(true));
    }

    #[test]
    fn empty_list() {
        let l = List {
            pos: 0,
            nodes: vec![Node::Text {
                pos: 0,
                text: " \n\t".into(),
            }],
        };
        assert!(is_empty_list(&l));
        let l = List {
            pos: 0,
            nodes: vec![Node::Break { pos: 0 }],
        };
        assert!(!is_empty_list(&l));
    }
}
