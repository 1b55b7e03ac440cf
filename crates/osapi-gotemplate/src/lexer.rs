//! Lexer: turns template source into a flat list of items, mirroring the
//! state machine of Go's `text/template/parse` lexer (default `{{ }}`
//! delimiters, trim markers, comments, literals and keywords).
//!
//! The lexer always terminates: every state either consumes input or moves
//! to a state that does, and lexing stops at the first error item or at EOF.

use std::fmt;

/// Kind of a lexed item (Go's `itemType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemKind {
    Error,
    Bool,
    Char,
    CharConstant,
    Complex,
    Assign,
    Declare,
    Eof,
    Field,
    Identifier,
    LeftDelim,
    LeftParen,
    Number,
    Pipe,
    RawString,
    RightDelim,
    RightParen,
    Space,
    String,
    Text,
    Variable,
    // Keywords (Go prints these as `<word>` in error messages).
    Block,
    Break,
    Continue,
    Dot,
    Define,
    Else,
    End,
    If,
    Nil,
    Range,
    Template,
    With,
}

impl ItemKind {
    fn is_keyword(self) -> bool {
        matches!(
            self,
            ItemKind::Block
                | ItemKind::Break
                | ItemKind::Continue
                | ItemKind::Dot
                | ItemKind::Define
                | ItemKind::Else
                | ItemKind::End
                | ItemKind::If
                | ItemKind::Nil
                | ItemKind::Range
                | ItemKind::Template
                | ItemKind::With
        )
    }
}

/// One lexed item: its kind, byte offset in the source and text
/// (for error items, the error message).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Item {
    pub kind: ItemKind,
    pub pos: usize,
    pub val: String,
}

impl fmt::Display for Item {
    /// Go's `item.String()`, used in "unexpected ..." parse errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ItemKind::Eof => f.write_str("EOF"),
            ItemKind::Error => f.write_str(&self.val),
            k if k.is_keyword() => write!(f, "<{}>", self.val),
            _ => {
                if self.val.chars().count() > 10 {
                    let short: String = self.val.chars().take(10).collect();
                    write!(f, "{}...", super::gofmt::quote(&short))
                } else {
                    f.write_str(&super::gofmt::quote(&self.val))
                }
            }
        }
    }
}

const LEFT_DELIM: &str = "{{";
const RIGHT_DELIM: &str = "}}";
const LEFT_COMMENT: &str = "/*";
const RIGHT_COMMENT: &str = "*/";
const TRIM_MARKER_LEN: usize = 2;

#[derive(Clone, Copy)]
enum State {
    Text,
    LeftDelim,
    Comment,
    RightDelim,
    InsideAction,
    Space,
    Identifier,
    Field,
    Variable,
    Char,
    Quote,
    RawQuote,
    Number,
}

struct Lexer<'s> {
    input: &'s str,
    pos: usize,
    start: usize,
    paren_depth: i64,
    items: Vec<Item>,
}

/// Lex the whole input. The returned list always ends with an `Eof` or an
/// `Error` item.
pub(super) fn lex(input: &str) -> Vec<Item> {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        paren_depth: 0,
        items: Vec::new(),
    };
    let mut state = Some(State::Text);
    while let Some(s) = state {
        state = l.step(s);
    }
    match l.items.last() {
        Some(it) if matches!(it.kind, ItemKind::Eof | ItemKind::Error) => {}
        _ => l.items.push(Item {
            kind: ItemKind::Eof,
            pos: input.len(),
            val: String::new(),
        }),
    }
    l.items
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn has_left_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(b[1] as char)
}

fn has_right_trim_marker(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(b[0] as char) && b[1] == b'-'
}

fn rest(s: &str, at: usize) -> &str {
    s.get(at..).unwrap_or("")
}

impl<'s> Lexer<'s> {
    fn peek(&self) -> Option<char> {
        rest(self.input, self.pos).chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Back up over a character previously returned by `next`.
    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos = self.pos.saturating_sub(c.len_utf8());
        }
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, valid: &str) {
        while self.accept(valid) {}
    }

    fn current(&self) -> &'s str {
        self.input.get(self.start..self.pos).unwrap_or("")
    }

    fn emit(&mut self, kind: ItemKind) {
        let val = self.current().to_string();
        self.items.push(Item {
            kind,
            pos: self.start,
            val,
        });
        self.start = self.pos;
    }

    fn ignore(&mut self) {
        self.start = self.pos;
    }

    fn errorf(&mut self, msg: String) -> Option<State> {
        self.items.push(Item {
            kind: ItemKind::Error,
            pos: self.start,
            val: msg,
        });
        None
    }

    /// Is the input at a right delimiter (optionally preceded by a trim marker)?
    /// Returns (at delimiter, with trim marker).
    fn at_right_delim(&self) -> (bool, bool) {
        let r = rest(self.input, self.pos);
        if has_right_trim_marker(r) && rest(r, TRIM_MARKER_LEN).starts_with(RIGHT_DELIM) {
            return (true, true);
        }
        if r.starts_with(RIGHT_DELIM) {
            return (true, false);
        }
        (false, false)
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) => is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(' | '}'),
        }
    }

    fn step(&mut self, state: State) -> Option<State> {
        match state {
            State::Text => self.lex_text(),
            State::LeftDelim => self.lex_left_delim(),
            State::Comment => self.lex_comment(),
            State::RightDelim => self.lex_right_delim(),
            State::InsideAction => self.lex_inside_action(),
            State::Space => self.lex_space(),
            State::Identifier => self.lex_identifier(),
            State::Field => self.lex_field_or_variable(ItemKind::Field),
            State::Variable => {
                if self.at_terminator() {
                    self.emit(ItemKind::Variable);
                    return Some(State::InsideAction);
                }
                self.lex_field_or_variable(ItemKind::Variable)
            }
            State::Char => self.lex_char(),
            State::Quote => self.lex_quote(),
            State::RawQuote => self.lex_raw_quote(),
            State::Number => self.lex_number(),
        }
    }

    fn lex_text(&mut self) -> Option<State> {
        let r = rest(self.input, self.pos);
        if let Some(x) = r.find(LEFT_DELIM) {
            if x > 0 {
                self.pos += x;
                let delim_end = self.pos + LEFT_DELIM.len();
                let mut trim_len = 0;
                if has_left_trim_marker(rest(self.input, delim_end)) {
                    let text = self.current();
                    trim_len = text.len() - text.trim_end_matches([' ', '\t', '\r', '\n']).len();
                }
                let end = self.pos - trim_len;
                let text = self.input.get(self.start..end).unwrap_or("");
                if !text.is_empty() {
                    self.items.push(Item {
                        kind: ItemKind::Text,
                        pos: self.start,
                        val: text.to_string(),
                    });
                }
                self.ignore();
            }
            return Some(State::LeftDelim);
        }
        self.pos = self.input.len();
        if self.pos > self.start {
            self.emit(ItemKind::Text);
        }
        self.emit(ItemKind::Eof);
        None
    }

    fn lex_left_delim(&mut self) -> Option<State> {
        self.pos += LEFT_DELIM.len();
        let trim = has_left_trim_marker(rest(self.input, self.pos));
        let after_marker = if trim { TRIM_MARKER_LEN } else { 0 };
        if rest(self.input, self.pos + after_marker).starts_with(LEFT_COMMENT) {
            self.pos += after_marker;
            self.ignore();
            return Some(State::Comment);
        }
        self.emit(ItemKind::LeftDelim);
        self.pos += after_marker;
        self.ignore();
        self.paren_depth = 0;
        Some(State::InsideAction)
    }

    fn lex_comment(&mut self) -> Option<State> {
        self.pos += LEFT_COMMENT.len();
        let Some(x) = rest(self.input, self.pos).find(RIGHT_COMMENT) else {
            return self.errorf("unclosed comment".to_string());
        };
        self.pos += x + RIGHT_COMMENT.len();
        let (delim, trim) = self.at_right_delim();
        if !delim {
            return self.errorf("comment ends before closing delimiter".to_string());
        }
        if trim {
            self.pos += TRIM_MARKER_LEN;
        }
        self.pos += RIGHT_DELIM.len();
        if trim {
            self.pos += left_trim_length(rest(self.input, self.pos));
        }
        self.ignore();
        Some(State::Text)
    }

    fn lex_right_delim(&mut self) -> Option<State> {
        let trim = has_right_trim_marker(rest(self.input, self.pos));
        if trim {
            self.pos += TRIM_MARKER_LEN;
            self.ignore();
        }
        self.pos += RIGHT_DELIM.len();
        self.emit(ItemKind::RightDelim);
        if trim {
            self.pos += left_trim_length(rest(self.input, self.pos));
            self.ignore();
        }
        Some(State::Text)
    }

    fn lex_inside_action(&mut self) -> Option<State> {
        let (delim, _) = self.at_right_delim();
        if delim {
            if self.paren_depth == 0 {
                return Some(State::RightDelim);
            }
            return self.errorf("unclosed left paren".to_string());
        }
        let c = self.next();
        let Some(r) = c else {
            return self.errorf("unclosed action".to_string());
        };
        match r {
            _ if is_space(r) => {
                self.backup(c);
                return Some(State::Space);
            }
            '=' => self.emit(ItemKind::Assign),
            ':' => {
                if self.next() != Some('=') {
                    return self.errorf("expected :=".to_string());
                }
                self.emit(ItemKind::Declare);
            }
            '|' => self.emit(ItemKind::Pipe),
            '"' => return Some(State::Quote),
            '`' => return Some(State::RawQuote),
            '$' => return Some(State::Variable),
            '\'' => return Some(State::Char),
            '.' => {
                // Special look-ahead for ".field" so we don't break backup().
                match self.peek() {
                    Some(n) if n.is_ascii_digit() => {
                        self.backup(c);
                        return Some(State::Number);
                    }
                    None => {
                        self.backup(c);
                        return Some(State::Number);
                    }
                    _ => return Some(State::Field),
                }
            }
            '+' | '-' | '0'..='9' => {
                self.backup(c);
                return Some(State::Number);
            }
            _ if is_alphanumeric(r) => {
                self.backup(c);
                return Some(State::Identifier);
            }
            '(' => {
                self.emit(ItemKind::LeftParen);
                self.paren_depth += 1;
            }
            ')' => {
                self.emit(ItemKind::RightParen);
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return self.errorf(format!(
                        "unexpected right paren {}",
                        super::gofmt::sharp_u(r)
                    ));
                }
            }
            _ if r.is_ascii() && !r.is_ascii_control() => self.emit(ItemKind::Char),
            _ => {
                return self.errorf(format!(
                    "unrecognized character in action: {}",
                    super::gofmt::sharp_u(r)
                ));
            }
        }
        Some(State::InsideAction)
    }

    fn lex_space(&mut self) -> Option<State> {
        let mut num_spaces = 0;
        while let Some(c) = self.peek() {
            if !is_space(c) {
                break;
            }
            self.pos += c.len_utf8();
            num_spaces += 1;
        }
        // Be careful about a trim-marked closing delimiter, which has a minus
        // after a space. We know there is a space, so check for the '-' that
        // might follow.
        let before = self.pos.saturating_sub(1);
        let r = rest(self.input, before);
        if has_right_trim_marker(r) && rest(r, TRIM_MARKER_LEN).starts_with(RIGHT_DELIM) {
            self.pos = before;
            if num_spaces == 1 {
                return Some(State::RightDelim);
            }
        }
        self.emit(ItemKind::Space);
        Some(State::InsideAction)
    }

    fn lex_identifier(&mut self) -> Option<State> {
        loop {
            let c = self.next();
            match c {
                Some(r) if is_alphanumeric(r) => {}
                _ => {
                    self.backup(c);
                    break;
                }
            }
        }
        if !self.at_terminator() {
            let bad = self.peek().unwrap_or('\u{FFFD}');
            return self.errorf(format!("bad character {}", super::gofmt::sharp_u(bad)));
        }
        let kind = match self.current() {
            "block" => ItemKind::Block,
            "break" => ItemKind::Break,
            "continue" => ItemKind::Continue,
            "define" => ItemKind::Define,
            "else" => ItemKind::Else,
            "end" => ItemKind::End,
            "if" => ItemKind::If,
            "range" => ItemKind::Range,
            "nil" => ItemKind::Nil,
            "template" => ItemKind::Template,
            "with" => ItemKind::With,
            "true" | "false" => ItemKind::Bool,
            _ => ItemKind::Identifier,
        };
        self.emit(kind);
        Some(State::InsideAction)
    }

    /// Lex a field (`.name`) or variable (`$name`); the leading `.`/`$` has
    /// been consumed.
    fn lex_field_or_variable(&mut self, kind: ItemKind) -> Option<State> {
        if self.at_terminator() {
            // Nothing interesting follows -> "." or "$".
            self.emit(if kind == ItemKind::Variable {
                ItemKind::Variable
            } else {
                ItemKind::Dot
            });
            return Some(State::InsideAction);
        }
        loop {
            let c = self.next();
            match c {
                Some(r) if is_alphanumeric(r) => {}
                _ => {
                    self.backup(c);
                    break;
                }
            }
        }
        if !self.at_terminator() {
            let bad = self.peek().unwrap_or('\u{FFFD}');
            return self.errorf(format!("bad character {}", super::gofmt::sharp_u(bad)));
        }
        self.emit(kind);
        Some(State::InsideAction)
    }

    fn lex_char(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(r) if r != '\n' => {}
                    _ => return self.errorf("unterminated character constant".to_string()),
                },
                None | Some('\n') => {
                    return self.errorf("unterminated character constant".to_string());
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemKind::CharConstant);
        Some(State::InsideAction)
    }

    fn lex_quote(&mut self) -> Option<State> {
        loop {
            match self.next() {
                Some('\\') => match self.next() {
                    Some(r) if r != '\n' => {}
                    _ => return self.errorf("unterminated quoted string".to_string()),
                },
                None | Some('\n') => {
                    return self.errorf("unterminated quoted string".to_string());
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemKind::String);
        Some(State::InsideAction)
    }

    fn lex_raw_quote(&mut self) -> Option<State> {
        loop {
            match self.next() {
                None => return self.errorf("unterminated raw quoted string".to_string()),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(ItemKind::RawString);
        Some(State::InsideAction)
    }

    fn lex_number(&mut self) -> Option<State> {
        if !self.scan_number() {
            let text = super::gofmt::quote(self.current());
            return self.errorf(format!("bad number syntax: {text}"));
        }
        if matches!(self.peek(), Some('+' | '-')) {
            // Complex: 1+2i. No spaces, must end in 'i'.
            if !self.scan_number() || !self.current().ends_with('i') {
                let text = super::gofmt::quote(self.current());
                return self.errorf(format!("bad number syntax: {text}"));
            }
            self.emit(ItemKind::Complex);
        } else {
            self.emit(ItemKind::Number);
        }
        Some(State::InsideAction)
    }

    fn scan_number(&mut self) -> bool {
        self.accept("+-");
        let mut digits = "0123456789_";
        if self.accept("0") {
            // Note: Leading 0 does not mean octal in floats.
            if self.accept("xX") {
                digits = "0123456789abcdefABCDEF_";
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits.len() == 10 + 1 && self.accept("eE") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        if digits.len() == 16 + 6 + 1 && self.accept("pP") {
            self.accept("+-");
            self.accept_run("0123456789_");
        }
        // Is it imaginary?
        self.accept("i");
        // Next thing mustn't be alphanumeric.
        if let Some(c) = self.peek()
            && is_alphanumeric(c)
        {
            self.pos += c.len_utf8();
            return false;
        }
        true
    }
}

fn left_trim_length(s: &str) -> usize {
    s.len() - s.trim_start_matches([' ', '\t', '\r', '\n']).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<ItemKind> {
        lex(src).into_iter().map(|i| i.kind).collect()
    }

    #[test]
    fn text_only() {
        let items = lex("hello");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].kind, ItemKind::Text);
        assert_eq!(items[0].val, "hello");
        assert_eq!(items[1].kind, ItemKind::Eof);
    }

    #[test]
    fn empty_input() {
        assert_eq!(kinds(""), vec![ItemKind::Eof]);
    }

    #[test]
    fn action_items() {
        use ItemKind::*;
        assert_eq!(
            kinds("{{ .Vars.port | printf \"%d\" }}"),
            vec![
                LeftDelim, Space, Field, Field, Space, Pipe, Space, Identifier, Space, String,
                Space, RightDelim, Eof
            ]
        );
        assert_eq!(
            kinds("{{$x := 1}}{{$ = 2}}"),
            vec![
                LeftDelim, Variable, Space, Declare, Space, Number, RightDelim, LeftDelim,
                Variable, Space, Assign, Space, Number, RightDelim, Eof
            ]
        );
    }

    #[test]
    fn keywords_and_literals() {
        use ItemKind::*;
        assert_eq!(
            kinds(
                "{{if true}}{{else}}{{end}}{{range .}}{{break}}{{continue}}{{nil}}{{'a'}}{{`r`}}"
            ),
            vec![
                LeftDelim,
                If,
                Space,
                Bool,
                RightDelim,
                LeftDelim,
                Else,
                RightDelim,
                LeftDelim,
                End,
                RightDelim,
                LeftDelim,
                Range,
                Space,
                Dot,
                RightDelim,
                LeftDelim,
                Break,
                RightDelim,
                LeftDelim,
                Continue,
                RightDelim,
                LeftDelim,
                Nil,
                RightDelim,
                LeftDelim,
                CharConstant,
                RightDelim,
                LeftDelim,
                RawString,
                RightDelim,
                Eof
            ]
        );
    }

    #[test]
    fn trim_markers() {
        let items = lex("a  {{- 1 -}}  b");
        assert_eq!(items[0].val, "a");
        assert_eq!(items[1].kind, ItemKind::LeftDelim);
        assert_eq!(items[2].kind, ItemKind::Number);
        assert_eq!(items[3].kind, ItemKind::RightDelim);
        assert_eq!(items[4].val, "b");
        // "{{-1}}" is a negative number, not a trim marker.
        let items = lex("a {{-1}}");
        assert_eq!(items[0].val, "a ");
        assert_eq!(items[2].val, "-1");
    }

    #[test]
    fn comments() {
        let items = lex("a {{- /* c */ -}} b");
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].val, "a");
        assert_eq!(items[1].val, "b");
        let items = lex("{{/* c");
        assert_eq!(
            items.last().map(|i| i.val.as_str()),
            Some("unclosed comment")
        );
        let items = lex("{{/* c */ }}");
        assert_eq!(
            items.last().map(|i| i.val.as_str()),
            Some("comment ends before closing delimiter")
        );
    }

    #[test]
    fn errors_terminate() {
        for src in [
            "{{ .Vars.port ",
            "{{",
            "{{ \"abc",
            "{{ 'a",
            "{{ `abc",
            "{{ 1a }}",
            "{{ ) }}",
            "{{ ( }}",
            "{{ \u{1} }}",
            "{{ .a# }}",
            "{{ : }}",
        ] {
            let items = lex(src);
            assert_eq!(
                items.last().map(|i| i.kind),
                Some(ItemKind::Error),
                "source {src:?}"
            );
        }
        assert_eq!(
            lex("{{ .x ").last().map(|i| i.val.clone()),
            Some("unclosed action".into())
        );
        assert_eq!(
            lex("{{ .a# }}").last().map(|i| i.val.clone()),
            Some("bad character U+0023 '#'".into())
        );
        assert_eq!(
            lex("{{ 1a }}").last().map(|i| i.val.clone()),
            Some("bad number syntax: \"1a\"".into())
        );
    }

    #[test]
    fn numbers() {
        for (src, want) in [
            ("{{0x1F}}", "0x1F"),
            ("{{1_000}}", "1_000"),
            ("{{-.5}}", "-.5"),
            ("{{1e-3}}", "1e-3"),
            ("{{0x1p4}}", "0x1p4"),
            ("{{0b101}}", "0b101"),
        ] {
            let items = lex(src);
            assert_eq!(items[1].kind, ItemKind::Number, "{src}");
            assert_eq!(items[1].val, want);
        }
        assert_eq!(lex("{{1+2i}}")[1].kind, ItemKind::Complex);
    }

    #[test]
    fn item_display() {
        let it = Item {
            kind: ItemKind::End,
            pos: 0,
            val: "end".into(),
        };
        assert_eq!(it.to_string(), "<end>");
        let it = Item {
            kind: ItemKind::String,
            pos: 0,
            val: "\"abcdefghijkl\"".into(),
        };
        assert_eq!(it.to_string(), "\"\\\"abcdefghi\"...");
    }
}
