//! Parser: builds parse trees from lexed items, following Go's
//! `text/template/parse` grammar and error messages (`template: :LINE: msg`).
//!
//! Besides the main template (named `""`), `{{define}}` and `{{block}}`
//! produce additional named trees. Nesting depth is bounded so that deeply
//! nested input cannot exhaust the stack.

use std::collections::HashMap;

use super::lexer::{Item, ItemKind, lex};
use super::node::{Arg, Branch, Command, List, Node, Number, Pipe, is_empty_list};

/// Maximum nesting of control structures, `else if` chains and
/// parenthesised pipelines.
pub(super) const MAX_PARSE_DEPTH: usize = 1000;

/// Names of the builtin functions known to the parser.
pub(super) const BUILTINS: &[&str] = &[
    "and", "call", "eq", "ge", "gt", "html", "index", "js", "le", "len", "lt", "ne", "not", "or",
    "print", "printf", "println", "slice", "urlquery",
];

/// All trees defined by one source text, keyed by template name.
pub(super) type Trees = HashMap<String, List>;

type PResult<T> = Result<T, String>;

/// What ended an item list: `{{end}}` or `{{else}}`.
enum Terminator {
    End,
    Else { pos: usize },
}

impl Terminator {
    fn describe(&self) -> &'static str {
        match self {
            Terminator::End => "{{end}}",
            Terminator::Else { .. } => "{{else}}",
        }
    }
}

enum Parsed {
    Node(Node),
    Term(Terminator),
}

static EOF_ITEM: Item = Item {
    kind: ItemKind::Eof,
    pos: 0,
    val: String::new(),
};

struct Parser {
    items: Vec<Item>,
    /// Index of the next item to return.
    idx: usize,
    /// Highest index handed out so far (Go reports this token's line).
    furthest: usize,
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
    action_line: usize,
    trees: Trees,
    stack_base: usize,
    max_stack: usize,
    /// Byte offsets of the newlines in `src`, for line lookups.
    newlines: Vec<usize>,
}

/// Parse a template source into its named trees, using at most about
/// `max_stack` bytes of stack for recursion.
pub(super) fn parse(src: &str, max_stack: usize) -> PResult<Trees> {
    let mut p = Parser {
        items: lex(src),
        idx: 0,
        furthest: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        action_line: 0,
        trees: HashMap::new(),
        stack_base: super::exec::stack_position(),
        max_stack,
        newlines: src
            .bytes()
            .enumerate()
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i)
            .collect(),
    };
    let root = p.parse_root()?;
    p.add(String::new(), root)?;
    Ok(p.trees)
}

impl Parser {
    // ----- token access -------------------------------------------------

    fn item(&self, i: usize) -> &Item {
        self.items
            .get(i)
            .or_else(|| self.items.last())
            .unwrap_or(&EOF_ITEM)
    }

    fn clamp(&self, i: usize) -> usize {
        i.min(self.items.len().saturating_sub(1))
    }

    fn next(&mut self) -> Item {
        let i = self.clamp(self.idx);
        self.idx = i + 1;
        self.furthest = self.furthest.max(i);
        self.item(i).clone()
    }

    fn peek(&mut self) -> Item {
        let i = self.clamp(self.idx);
        self.furthest = self.furthest.max(i);
        self.item(i).clone()
    }

    fn backup(&mut self) {
        self.idx = self.idx.saturating_sub(1);
    }

    fn next_non_space(&mut self) -> Item {
        loop {
            let t = self.next();
            if t.kind != ItemKind::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Item {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn line(&self, item: &Item) -> usize {
        1 + self.newlines.partition_point(|&nl| nl < item.pos)
    }

    // ----- errors -------------------------------------------------------

    fn errorf<T>(&self, msg: impl std::fmt::Display) -> PResult<T> {
        let line = self.line(self.item(self.furthest));
        Err(format!("template: :{line}: {msg}"))
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> PResult<T> {
        if token.kind == ItemKind::Error {
            let mut extra = String::new();
            let line = self.line(token);
            if self.action_line != 0 && self.action_line != line {
                extra = format!(" in action started at :{}", self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_string();
                }
            }
            return self.errorf(format_args!("{token}{extra}"));
        }
        self.errorf(format_args!("unexpected {token} in {context}"))
    }

    fn expect(&mut self, kind: ItemKind, context: &str) -> PResult<Item> {
        let t = self.next_non_space();
        if t.kind != kind {
            return self.unexpected(&t, context);
        }
        Ok(t)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_PARSE_DEPTH {
            return self.errorf(format_args!(
                "max nesting depth exceeded ({MAX_PARSE_DEPTH})"
            ));
        }
        if super::exec::stack_position().abs_diff(self.stack_base) > self.max_stack {
            return self.errorf("template nesting too deep");
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    // ----- trees --------------------------------------------------------

    fn add(&mut self, name: String, root: List) -> PResult<()> {
        match self.trees.get(&name) {
            Some(existing) if !is_empty_list(existing) => {
                if !is_empty_list(&root) {
                    return self.errorf(format_args!(
                        "template: multiple definition of template {}",
                        super::gofmt::quote(&name)
                    ));
                }
            }
            _ => {
                self.trees.insert(name, root);
            }
        }
        Ok(())
    }

    fn parse_root(&mut self) -> PResult<List> {
        let mut root = List {
            pos: self.peek().pos,
            nodes: Vec::new(),
        };
        while self.peek().kind != ItemKind::Eof {
            if self.peek().kind == ItemKind::LeftDelim {
                let save = self.idx;
                self.next();
                if self.next_non_space().kind == ItemKind::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = save;
            }
            match self.text_or_action()? {
                Parsed::Term(t) => {
                    return self.errorf(format_args!("unexpected {}", t.describe()));
                }
                Parsed::Node(n) => root.nodes.push(n),
            }
        }
        Ok(root)
    }

    /// Parse a nested tree (define/block body) with its own variable scope.
    fn sub_tree(&mut self, context: &str) -> PResult<List> {
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let saved_range = std::mem::replace(&mut self.range_depth, 0);
        let saved_action = std::mem::replace(&mut self.action_line, 0);
        self.enter()?;
        let (list, end) = self.item_list()?;
        self.leave();
        if !matches!(end, Terminator::End) {
            return self.errorf(format_args!("unexpected {} in {context}", end.describe()));
        }
        self.vars = saved_vars;
        self.range_depth = saved_range;
        self.action_line = saved_action;
        Ok(list)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let name = self.next_non_space();
        if !matches!(name.kind, ItemKind::String | ItemKind::RawString) {
            return self.unexpected(&name, CONTEXT);
        }
        let name = match unquote(&name.val) {
            Ok(s) => s,
            Err(e) => return self.errorf(e),
        };
        self.expect(ItemKind::RightDelim, CONTEXT)?;
        let root = self.sub_tree(CONTEXT)?;
        self.add(name, root)
    }

    fn item_list(&mut self) -> PResult<(List, Terminator)> {
        let mut list = List {
            pos: self.peek_non_space().pos,
            nodes: Vec::new(),
        };
        while self.peek_non_space().kind != ItemKind::Eof {
            match self.text_or_action()? {
                Parsed::Term(t) => return Ok((list, t)),
                Parsed::Node(n) => list.nodes.push(n),
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        match token.kind {
            ItemKind::Text => Ok(Parsed::Node(Node::Text {
                pos: token.pos,
                text: token.val,
            })),
            ItemKind::LeftDelim => {
                self.action_line = self.line(&token);
                let r = self.action();
                self.action_line = 0;
                r
            }
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let token = self.next_non_space();
        let node = match token.kind {
            ItemKind::Block => self.block_control()?,
            ItemKind::Break => self.break_control(token.pos, "break")?,
            ItemKind::Continue => self.break_control(token.pos, "continue")?,
            ItemKind::Else => return self.else_control(),
            ItemKind::End => {
                self.expect(ItemKind::RightDelim, "end")?;
                return Ok(Parsed::Term(Terminator::End));
            }
            ItemKind::If => Node::If(self.parse_control("if")?),
            ItemKind::Range => Node::Range(self.parse_control("range")?),
            ItemKind::Template => self.template_control()?,
            ItemKind::With => Node::With(self.parse_control("with")?),
            _ => {
                self.backup();
                let pos = self.peek().pos;
                let pipe = self.pipeline("command", ItemKind::RightDelim)?;
                Node::Action { pos, pipe }
            }
        };
        Ok(Parsed::Node(node))
    }

    fn break_control(&mut self, pos: usize, word: &str) -> PResult<Node> {
        let context = format!("{{{{{word}}}}}");
        let t = self.next_non_space();
        if t.kind != ItemKind::RightDelim {
            return self.unexpected(&t, &context);
        }
        if self.range_depth == 0 {
            return self.errorf(format_args!("{context} outside {{{{range}}}}"));
        }
        Ok(if word == "break" {
            Node::Break { pos }
        } else {
            Node::Continue { pos }
        })
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if matches!(peek.kind, ItemKind::If | ItemKind::With) {
            // "{{else if ..." is treated as "{{else}}{{if ...".
            return Ok(Parsed::Term(Terminator::Else { pos: peek.pos }));
        }
        let t = self.expect(ItemKind::RightDelim, "else")?;
        Ok(Parsed::Term(Terminator::Else { pos: t.pos }))
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let vars_len = self.vars.len();
        let pipe = self.pipeline(context, ItemKind::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth = self.range_depth.saturating_sub(1);
        }
        let mut else_list = None;
        if let Terminator::Else { pos } = next {
            let peek = self.peek().kind;
            if context == "if" && peek == ItemKind::If {
                self.next();
                let nested = self.parse_control("if")?;
                else_list = Some(List {
                    pos,
                    nodes: vec![Node::If(nested)],
                });
            } else if context == "with" && peek == ItemKind::With {
                self.next();
                let nested = self.parse_control("with")?;
                else_list = Some(List {
                    pos,
                    nodes: vec![Node::With(nested)],
                });
            } else {
                let (l, next) = self.item_list()?;
                if !matches!(next, Terminator::End) {
                    return self.errorf(format_args!("expected end; found {}", next.describe()));
                }
                else_list = Some(l);
            }
        }
        self.vars.truncate(vars_len);
        self.leave();
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn parse_template_name(&mut self, token: &Item, context: &str) -> PResult<String> {
        match token.kind {
            ItemKind::String | ItemKind::RawString => match unquote(&token.val) {
                Ok(s) => Ok(s),
                Err(e) => self.errorf(e),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space().kind != ItemKind::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(CONTEXT, ItemKind::RightDelim)?);
        }
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn block_control(&mut self) -> PResult<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.parse_template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, ItemKind::RightDelim)?;
        let root = self.sub_tree(CONTEXT)?;
        self.add(name.clone(), root)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: ItemKind) -> PResult<Pipe> {
        let token = self.peek_non_space();
        let mut pipe = Pipe {
            pos: token.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Are there declarations or assignments?
        loop {
            let v = self.peek_non_space();
            if v.kind != ItemKind::Variable {
                break;
            }
            let save = self.idx;
            self.next();
            let next = self.peek_non_space();
            match next.kind {
                ItemKind::Assign | ItemKind::Declare => {
                    pipe.is_assign = next.kind == ItemKind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                }
                ItemKind::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val);
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            ItemKind::Variable | ItemKind::RightDelim | ItemKind::RightParen => {
                                // Second initialized variable in a range pipeline.
                                continue;
                            }
                            _ => return self.errorf("range can only initialize variables"),
                        }
                    }
                    return self.errorf(format_args!("too many declarations in {context}"));
                }
                _ => self.idx = save,
            }
            break;
        }
        loop {
            let token = self.next_non_space();
            if token.kind == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match token.kind {
                ItemKind::Bool
                | ItemKind::CharConstant
                | ItemKind::Complex
                | ItemKind::Dot
                | ItemKind::Field
                | ItemKind::Identifier
                | ItemKind::Number
                | ItemKind::Nil
                | ItemKind::RawString
                | ItemKind::String
                | ItemKind::Variable
                | ItemKind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format_args!("missing value for {context}"));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(
                    Arg::Bool { .. }
                        | Arg::Dot { .. }
                        | Arg::Nil { .. }
                        | Arg::Number(_)
                        | Arg::String { .. }
                )
            ) {
                return self.errorf(format_args!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let mut cmd = Command {
            pos: self.peek_non_space().pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space(); // skip leading spaces
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let token = self.next();
            match token.kind {
                ItemKind::Space => continue,
                ItemKind::RightDelim | ItemKind::RightParen => self.backup(),
                ItemKind::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if cmd.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != ItemKind::Field {
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == ItemKind::Field {
            let f = self.next();
            fields.push(f.val.get(1..).unwrap_or("").to_string());
        }
        Ok(Some(match node {
            Arg::Field { mut idents, .. } => {
                idents.extend(fields);
                Arg::Field { pos, idents }
            }
            Arg::Variable { mut idents, .. } => {
                idents.extend(fields);
                Arg::Variable { pos, idents }
            }
            Arg::Bool { .. }
            | Arg::String { .. }
            | Arg::Number(_)
            | Arg::Nil { .. }
            | Arg::Dot { .. } => {
                return self.errorf(format_args!(
                    "unexpected . after term {}",
                    super::gofmt::quote(&node.to_string())
                ));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                fields,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        let arg = match token.kind {
            ItemKind::Identifier => {
                if !BUILTINS.contains(&token.val.as_str()) {
                    return self.errorf(format_args!(
                        "function {} not defined",
                        super::gofmt::quote(&token.val)
                    ));
                }
                Arg::Identifier {
                    pos,
                    name: token.val,
                }
            }
            ItemKind::Dot => Arg::Dot { pos },
            ItemKind::Nil => Arg::Nil { pos },
            ItemKind::Variable => {
                if !self.vars.contains(&token.val) {
                    return self.errorf(format_args!(
                        "undefined variable {}",
                        super::gofmt::quote(&token.val)
                    ));
                }
                Arg::Variable {
                    pos,
                    idents: vec![token.val],
                }
            }
            ItemKind::Field => Arg::Field {
                pos,
                idents: vec![token.val.get(1..).unwrap_or("").to_string()],
            },
            ItemKind::Bool => Arg::Bool {
                pos,
                val: token.val == "true",
            },
            ItemKind::CharConstant | ItemKind::Complex | ItemKind::Number => {
                match new_number(pos, &token.val, token.kind) {
                    Ok(n) => Arg::Number(n),
                    Err(e) => return self.errorf(e),
                }
            }
            ItemKind::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", ItemKind::RightParen)?;
                self.leave();
                Arg::Pipe(Box::new(p))
            }
            ItemKind::String | ItemKind::RawString => match unquote(&token.val) {
                Ok(text) => Arg::String {
                    pos,
                    quoted: token.val,
                    text,
                },
                Err(e) => return self.errorf(e),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }
}

// ----- literals -------------------------------------------------------------

const SYNTAX: &str = "invalid syntax";

fn unhex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// Go's `strconv.UnquoteChar`: decode one (possibly escaped) character from
/// the start of `s`. Returns (value, multibyte, rest).
fn unquote_char(s: &[u8], quote: u8) -> Result<(u32, bool, &[u8]), &'static str> {
    let Some(&c) = s.first() else {
        return Err(SYNTAX);
    };
    if c == quote && (quote == b'\'' || quote == b'"') {
        return Err(SYNTAX);
    }
    if c >= 0x80 {
        let text = std::str::from_utf8(s).unwrap_or_else(|e| {
            // Only the valid prefix matters for decoding the first character.
            std::str::from_utf8(&s[..e.valid_up_to()]).unwrap_or("")
        });
        return match text.chars().next() {
            Some(ch) => Ok((ch as u32, true, &s[ch.len_utf8()..])),
            None => Ok((0xFFFD, true, &s[1..])),
        };
    }
    if c != b'\\' {
        return Ok((c as u32, false, &s[1..]));
    }
    let Some(&e) = s.get(1) else {
        return Err(SYNTAX);
    };
    let mut rest = &s[2..];
    let value = match e {
        b'a' => 7,
        b'b' => 8,
        b'f' => 12,
        b'n' => 10,
        b'r' => 13,
        b't' => 9,
        b'v' => 11,
        b'x' | b'u' | b'U' => {
            let n = match e {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            if rest.len() < n {
                return Err(SYNTAX);
            }
            let mut v: u32 = 0;
            for &b in &rest[..n] {
                v = (v << 4) | unhex(b).ok_or(SYNTAX)?;
            }
            rest = &rest[n..];
            if e == b'x' {
                return Ok((v, false, rest));
            }
            if char::from_u32(v).is_none() {
                return Err(SYNTAX);
            }
            return Ok((v, true, rest));
        }
        b'0'..=b'7' => {
            let mut v = (e - b'0') as u32;
            if rest.len() < 2 {
                return Err(SYNTAX);
            }
            for &b in &rest[..2] {
                if !(b'0'..=b'7').contains(&b) {
                    return Err(SYNTAX);
                }
                v = (v << 3) | (b - b'0') as u32;
            }
            rest = &rest[2..];
            if v > 255 {
                return Err(SYNTAX);
            }
            v
        }
        b'\\' => b'\\' as u32,
        b'\'' | b'"' => {
            if e != quote {
                return Err(SYNTAX);
            }
            e as u32
        }
        _ => return Err(SYNTAX),
    };
    Ok((value, false, rest))
}

/// Go's `strconv.Unquote` for `"..."` and `` `...` `` literals. Byte escapes
/// that do not form valid UTF-8 are replaced by U+FFFD.
pub(super) fn unquote(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    if b.len() < 2 {
        return Err(SYNTAX);
    }
    let quote = b[0];
    if quote != b[b.len() - 1] {
        return Err(SYNTAX);
    }
    let inner = &b[1..b.len() - 1];
    match quote {
        b'`' => {
            if inner.contains(&b'`') {
                return Err(SYNTAX);
            }
            let text = s.get(1..s.len() - 1).unwrap_or("");
            Ok(text.replace('\r', ""))
        }
        b'"' => {
            if inner.contains(&b'\n') {
                return Err(SYNTAX);
            }
            let mut out: Vec<u8> = Vec::with_capacity(inner.len());
            let mut rest = inner;
            while !rest.is_empty() {
                let (v, multibyte, tail) = unquote_char(rest, quote)?;
                rest = tail;
                if v < 0x80 || !multibyte {
                    out.push(v as u8);
                } else {
                    let ch = char::from_u32(v).unwrap_or('\u{FFFD}');
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
            }
            Ok(String::from_utf8_lossy(&out).into_owned())
        }
        _ => Err(SYNTAX),
    }
}

// ----- numbers --------------------------------------------------------------

/// Go's `underscoreOK`: underscores only between digits or after a base prefix.
fn underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some(&c) = b.first()
        && (c == b'-' || c == b'+')
    {
        b = &b[1..];
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        let lc = c.to_ascii_lowercase();
        if c.is_ascii_digit() || (hex && (b'a'..=b'f').contains(&lc)) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn parse_uint(s0: &str) -> Option<u64> {
    let mut s = s0.as_bytes();
    if s.is_empty() {
        return None;
    }
    let mut base = 10u64;
    if s[0] == b'0' {
        if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'b') {
            base = 2;
            s = &s[2..];
        } else if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'o') {
            base = 8;
            s = &s[2..];
        } else if s.len() >= 3 && s[1].eq_ignore_ascii_case(&b'x') {
            base = 16;
            s = &s[2..];
        } else {
            base = 8;
            s = &s[1..];
        }
    }
    let mut n: u64 = 0;
    let mut underscores = false;
    for &c in s {
        let d = match c {
            b'_' => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => (c - b'0') as u64,
            b'a'..=b'z' => (c - b'a' + 10) as u64,
            b'A'..=b'Z' => (c - b'A' + 10) as u64,
            _ => return None,
        };
        if d >= base {
            return None;
        }
        n = n.checked_mul(base)?.checked_add(d)?;
    }
    if underscores && !underscore_ok(s0) {
        return None;
    }
    Some(n)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint(body)?;
    if neg {
        if u <= i64::MAX as u64 {
            Some(-(u as i64))
        } else if u == i64::MAX as u64 + 1 {
            Some(i64::MIN)
        } else {
            None
        }
    } else {
        i64::try_from(u).ok()
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the syntax the lexer can produce
/// (decimal and hexadecimal mantissas, optional underscores).
fn parse_float(s: &str) -> Option<f64> {
    if s.contains('_') && !underscore_ok(s) {
        return None;
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let v = if body.len() > 2 && (body.starts_with("0x") || body.starts_with("0X")) {
        parse_hex_float(&body[2..])?
    } else {
        if body.is_empty()
            || !body
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    if v.is_infinite() {
        return None; // out of range
    }
    Some(if neg { -v } else { v })
}

fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.find(['p', 'P']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let exp: i32 = match exp {
        // A hexadecimal mantissa requires a 'p' exponent.
        None => return None,
        Some(e) => e.parse().ok()?,
    };
    let mut m: f64 = 0.0;
    let mut frac_digits: i32 = 0; // saturating: only the exponent matters
    let mut seen_dot = false;
    let mut any = false;
    for c in mant.chars() {
        if c == '.' {
            if seen_dot {
                return None;
            }
            seen_dot = true;
            continue;
        }
        let d = c.to_digit(16)?;
        any = true;
        m = m * 16.0 + d as f64;
        if seen_dot {
            frac_digits = frac_digits.saturating_add(1);
        }
    }
    if !any {
        return None;
    }
    let e = exp.saturating_sub(frac_digits.saturating_mul(4));
    Some(m * 2f64.powi(e))
}

/// Go's `parse.(*Tree).newNumber`.
fn new_number(pos: usize, text: &str, kind: ItemKind) -> Result<Number, String> {
    let mut n = Number {
        pos,
        text: text.to_string(),
        is_int: false,
        is_uint: false,
        is_float: false,
        int64: 0,
        uint64: 0,
        float64: 0.0,
    };
    if kind == ItemKind::CharConstant {
        let b = text.as_bytes();
        let (v, _, tail) = unquote_char(b.get(1..).unwrap_or(&[]), b'\'')?;
        if tail != b"'" {
            return Err(format!("malformed character constant: {text}"));
        }
        n.int64 = v as i64;
        n.is_int = true;
        n.uint64 = v as u64;
        n.is_uint = true;
        n.float64 = v as f64;
        n.is_float = true;
        return Ok(n);
    }
    if kind == ItemKind::Complex || text.ends_with('i') {
        return Err(format!("complex numbers are not supported: {text}"));
    }
    if let Some(u) = parse_uint(text) {
        n.is_uint = true;
        n.uint64 = u;
    }
    if let Some(i) = parse_int(text) {
        n.is_int = true;
        n.int64 = i;
        if i == 0 {
            n.is_uint = true; // in case of -0
            n.uint64 = 0;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float64 = n.int64 as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float64 = n.uint64 as f64;
    } else if let Some(f) = parse_float(text) {
        // If we parsed it as a float but it looks like an integer, it's a
        // huge number too large to fit in an int. Reject it.
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("integer overflow: {}", super::gofmt::quote(text)));
        }
        n.is_float = true;
        n.float64 = f;
        if f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f) {
            n.is_int = true;
            n.int64 = f as i64;
        }
        if f.fract() == 0.0 && (0.0..1.844_674_407_370_955_2e19).contains(&f) {
            n.is_uint = true;
            n.uint64 = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!(
            "illegal number syntax: {}",
            super::gofmt::quote(text)
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: usize = 256 << 10;

    fn parse(src: &str) -> PResult<Trees> {
        super::parse(src, STACK)
    }

    fn perr(src: &str) -> String {
        parse(src).err().unwrap_or_default()
    }

    #[test]
    fn parse_errors_match_go() {
        for (src, want) in [
            ("{{ .Vars.port ", "template: :1: unclosed action"),
            ("{{ end }}", "template: :1: unexpected {{end}}"),
            ("a\n{{ end }}", "template: :2: unexpected {{end}}"),
            ("{{ if }}", "template: :1: missing value for if"),
            ("{{ foo }}", "template: :1: function \"foo\" not defined"),
            ("{{ $x }}", "template: :1: undefined variable \"$x\""),
            ("{{ if 1 }}", "template: :1: unexpected EOF"),
            ("{{ if .x }}\n\n{{ .y", "template: :3: unclosed action"),
            ("{{ if .x }}\n\nabc", "template: :3: unexpected EOF"),
            ("{{ .x\n\n", "template: :3: unclosed action started at :1"),
            (
                "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
                "template: :1: expected end; found {{else}}",
            ),
            (
                "{{ range .x }}{{ else if 1 }}{{ end }}",
                "template: :1: unexpected <if> in input",
            ),
            ("{{ break }}", "template: :1: {{break}} outside {{range}}"),
            (
                "{{ continue }}",
                "template: :1: {{continue}} outside {{range}}",
            ),
            (
                "{{ range .x }}{{ break 1 }}{{ end }}",
                "template: :1: unexpected \"1\" in {{break}}",
            ),
            (
                "{{ define \"a\" }}x{{ end }}{{ define \"a\" }}y{{ end }}",
                "template: :1: template: multiple definition of template \"a\"",
            ),
            (
                "{{ template \"a\" }}{{ define \"a\" }}x{{ else }}{{ end }}",
                "template: :1: unexpected {{else}} in define clause",
            ),
            (
                "{{ \"x\" | printf \"%s\" | 1 }}",
                "template: :1: non executable command in pipeline stage 3",
            ),
            (
                "{{/* c */ }}",
                "template: :1: comment ends before closing delimiter",
            ),
            ("{{/* c", "template: :1: unclosed comment"),
            ("{{ \"abc", "template: :1: unterminated quoted string"),
            (
                "{{ 'ab' }}",
                "template: :1: malformed character constant: 'ab'",
            ),
            ("{{ '' }}", "template: :1: invalid syntax"),
            ("{{ 1a }}", "template: :1: bad number syntax: \"1a\""),
            (
                "{{ 99999999999999999999 }}",
                "template: :1: integer overflow: \"99999999999999999999\"",
            ),
            (
                "{{ 1e400 }}",
                "template: :1: illegal number syntax: \"1e400\"",
            ),
            ("{{ \"\\q\" }}", "template: :1: invalid syntax"),
            ("{{ ) }}", "template: :1: unexpected \")\" in command"),
            ("{{ ( }}", "template: :1: unclosed left paren"),
            ("{{ (1 }}", "template: :1: unclosed left paren"),
            (
                "{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}",
                "template: :1: undefined variable \"$x\"",
            ),
            (
                "{{ range $i, $v, $w := . }}{{ end }}",
                "template: :1: too many declarations in range",
            ),
            (
                "{{ with $x, $y := 1 }}{{ end }}",
                "template: :1: too many declarations in with",
            ),
            (
                "{{ range $i, 1 }}{{ end }}",
                "template: :1: range can only initialize variables",
            ),
            (
                "{{ range . }}{{ define \"a\" }}{{ end }}{{ end }}",
                "template: :1: unexpected <define> in command",
            ),
            (
                "{{ template x }}",
                "template: :1: unexpected \"x\" in template clause",
            ),
            ("{{ 1 }}{{ else }}", "template: :1: unexpected {{else}}"),
            (
                "{{ $.a := 1 }}",
                "template: :1: unexpected \":=\" in operand",
            ),
            ("{{ $x := }}", "template: :1: missing value for command"),
            ("{{ := 1 }}", "template: :1: unexpected \":=\" in command"),
            (
                "{{ print . .. }}",
                "template: :1: unexpected <.> in operand",
            ),
            ("{{ .a.1 }}", "template: :1: unexpected \".1\" in operand"),
            ("{{ #1 }}", "template: :1: unexpected \"#\" in command"),
            ("{{ é }}", "template: :1: function \"é\" not defined"),
            ("x {{-\"y\"}}", "template: :1: illegal number syntax: \"-\""),
            (
                "x {{\"y\"-}} z",
                "template: :1: unexpected \"-\" in operand",
            ),
            ("{{ /* a */ }}", "template: :1: unexpected \"/\" in command"),
            (
                "{{ 1__0 }}",
                "template: :1: illegal number syntax: \"1__0\"",
            ),
            ("{{ 1_ }}", "template: :1: illegal number syntax: \"1_\""),
            (
                "{{ 0.5e }}",
                "template: :1: illegal number syntax: \"0.5e\"",
            ),
            ("{{ 08 }}", "template: :1: integer overflow: \"08\""),
            ("{{ 0x }}", "template: :1: illegal number syntax: \"0x\""),
            ("{{ -a }}", "template: :1: bad number syntax: \"-a\""),
            (
                "{{ 18446744073709551616 }}",
                "template: :1: integer overflow: \"18446744073709551616\"",
            ),
            (
                "{{ \"a\".x }}",
                "template: :1: unexpected . after term \"\\\"a\\\"\"",
            ),
            (
                "a{{ define \"\" }}X{{ end }}",
                "template: :1: template: multiple definition of template \"\"",
            ),
            (
                "{{ with 1 }}{{ else if 2 }}{{ end }}",
                "template: :1: unexpected <if> in input",
            ),
        ] {
            assert_eq!(perr(src), want, "source {src:?}");
        }
    }

    #[test]
    fn parses_valid_templates() {
        for src in [
            "",
            "plain",
            "{{ .Vars.port }}",
            "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
            "{{ range $i, $v := . }}{{ $i }}{{ $v }}{{ break }}{{ continue }}{{ else }}{{ end }}",
            "{{ if 1 }}{{ else if 2 }}{{ else }}{{ end }}",
            "{{ with 1 }}{{ else with 2 }}{{ else }}{{ end }}",
            "{{ define \"a\" }}x{{ end }}{{ template \"a\" . }}",
            "{{ block \"b\" . }}x{{ end }}",
            "{{ (index . \"a\").b }}",
            "{{ $x := 1 }}{{ $x.y }}",
            "{{ print 1 2.5 'a' 0x10 0o17 0b101 1_000 017 1e3 .5 -3 +4 0x1p4 0x_1F 0b_1 }}",
        ] {
            assert!(parse(src).is_ok(), "source {src:?}: {:?}", parse(src));
        }
    }

    #[test]
    fn define_trees() {
        let trees = parse("{{ define \"a\" }}A{{ end }}main{{ block \"b\" . }}B{{ end }}")
            .unwrap_or_default();
        let mut names: Vec<&String> = trees.keys().collect();
        names.sort();
        assert_eq!(names, vec!["", "a", "b"]);
        // A define of "" replaces an empty main template.
        let trees = parse("  {{ define \"\" }}X{{ end }}  ").unwrap_or_default();
        assert_eq!(trees.len(), 1);
        assert_eq!(trees.get("").map(|l| l.to_string()), Some("X".to_string()));
        // An empty redefinition does not replace a non-empty one.
        let trees =
            parse("{{ define \"a\" }}Y{{ end }}{{ define \"a\" }} {{ end }}").unwrap_or_default();
        assert_eq!(trees.get("a").map(|l| l.to_string()), Some("Y".to_string()));
    }

    #[test]
    fn numbers() {
        let n = new_number(0, "0x1F", ItemKind::Number).ok();
        assert_eq!(n.as_ref().map(|n| (n.is_int, n.int64)), Some((true, 31)));
        let n = new_number(0, "1e3", ItemKind::Number).ok();
        assert_eq!(
            n.as_ref().map(|n| (n.is_int, n.int64, n.float64)),
            Some((true, 1000, 1000.0))
        );
        let n = new_number(0, "017", ItemKind::Number).ok();
        assert_eq!(n.map(|n| n.int64), Some(15));
        let n = new_number(0, "'\\n'", ItemKind::CharConstant).ok();
        assert_eq!(n.map(|n| n.int64), Some(10));
        let n = new_number(0, "'é'", ItemKind::CharConstant).ok();
        assert_eq!(n.map(|n| n.int64), Some(233));
        let n = new_number(0, "0x1p4", ItemKind::Number).ok();
        assert_eq!(n.map(|n| n.float64), Some(16.0));
        let n = new_number(0, "-9223372036854775808", ItemKind::Number).ok();
        assert_eq!(n.map(|n| n.int64), Some(i64::MIN));
        let n = new_number(0, "9223372036854775808", ItemKind::Number).ok();
        assert_eq!(n.map(|n| (n.is_int, n.is_uint)), Some((false, true)));
        assert!(new_number(0, "1i", ItemKind::Number).is_err());
    }

    #[test]
    fn unquoting() {
        assert_eq!(
            unquote("\"a\\tb\\u00e9\\x41\\101\\\\\\\"\""),
            Ok("a\tbéAA\\\"".to_string())
        );
        assert_eq!(unquote("`a\\t\r\nb`"), Ok("a\\t\nb".to_string()));
        assert_eq!(unquote("\"\\'\""), Err(SYNTAX));
        assert_eq!(unquote("\"\\ud800\""), Err(SYNTAX));
        assert_eq!(unquote("\"\\xff\""), Ok("\u{FFFD}".to_string()));
        assert_eq!(unquote("\""), Err(SYNTAX));
    }

    #[test]
    fn nesting_is_bounded() {
        let big = 64 << 20;
        let deep_parens = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
        assert!(perr(&deep_parens).contains("template nesting too deep"));
        let deep_ifs = format!("{}{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
        assert!(perr(&deep_ifs).contains("template nesting too deep"));
        let ok = format!("{}{}", "{{ if 1 }}".repeat(20), "{{ end }}".repeat(20));
        assert!(parse(&ok).is_ok());
        // With plenty of stack the deterministic depth limit applies.
        let r = std::thread::Builder::new()
            .stack_size(big + (8 << 20))
            .spawn(move || {
                let a = super::parse(&deep_parens, big).err().unwrap_or_default();
                let b = super::parse(&deep_ifs, big).err().unwrap_or_default();
                let n = MAX_PARSE_DEPTH;
                let fits = format!("{}{}", "{{ if 1 }}".repeat(n), "{{ end }}".repeat(n));
                (a, b, super::parse(&fits, big).is_ok())
            })
            .map(|h| h.join());
        let Ok(Ok((a, b, fits))) = r else {
            panic!("probe thread failed");
        };
        assert_eq!(a, "template: :1: max nesting depth exceeded (1000)");
        assert_eq!(b, "template: :1: max nesting depth exceeded (1000)");
        assert!(fits);
    }
}
