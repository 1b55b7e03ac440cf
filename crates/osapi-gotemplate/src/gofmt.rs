//! A port of the parts of Go's `fmt` and `strconv` packages that templates
//! use: `Sprint`/`Sprintln`/`Sprintf` over runtime values (verbs, flags,
//! widths, precisions, argument indexes and Go's `%!verb(...)` error
//! forms), Go float formatting (`%v`/`%g` shortest representation) and
//! string/rune quoting.

use super::value::{Val, sorted_entries};
use serde_json::Value;

/// Maximum nesting of arrays/maps that will be printed.
const MAX_VALUE_DEPTH: usize = 1000;

// ----- quoting ----------------------------------------------------------------

/// Approximation of Go's `unicode.IsPrint` (letters, marks, numbers,
/// punctuation, symbols and the ASCII space).
pub(super) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    if u & 0xFFFE == 0xFFFE {
        return false; // noncharacters
    }
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xFDD0..=0xFDEF | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF | 0xF0000..)
}

const LOWERHEX: &[u8; 16] = b"0123456789abcdef";

fn append_escaped_rune(buf: &mut String, r: char, quote: char, ascii_only: bool) {
    if r == quote || r == '\\' {
        buf.push('\\');
        buf.push(r);
        return;
    }
    if ascii_only {
        if r.is_ascii() && is_print(r) {
            buf.push(r);
            return;
        }
    } else if is_print(r) {
        buf.push(r);
        return;
    }
    match r {
        '\u{7}' => buf.push_str("\\a"),
        '\u{8}' => buf.push_str("\\b"),
        '\u{c}' => buf.push_str("\\f"),
        '\n' => buf.push_str("\\n"),
        '\r' => buf.push_str("\\r"),
        '\t' => buf.push_str("\\t"),
        '\u{b}' => buf.push_str("\\v"),
        _ => {
            let u = r as u32;
            if u < 0x20 || u == 0x7f {
                buf.push_str("\\x");
                buf.push(LOWERHEX[(u >> 4) as usize & 0xF] as char);
                buf.push(LOWERHEX[u as usize & 0xF] as char);
            } else if u < 0x10000 {
                buf.push_str("\\u");
                for s in [12, 8, 4, 0] {
                    buf.push(LOWERHEX[(u >> s) as usize & 0xF] as char);
                }
            } else {
                buf.push_str("\\U");
                for s in [28, 24, 20, 16, 12, 8, 4, 0] {
                    buf.push(LOWERHEX[(u >> s) as usize & 0xF] as char);
                }
            }
        }
    }
}

fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut buf = String::with_capacity(s.len() + 2);
    buf.push(quote);
    for c in s.chars() {
        append_escaped_rune(&mut buf, c, quote, ascii_only);
    }
    buf.push(quote);
    buf
}

/// Go's `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

/// Go's `strconv.QuoteToASCII`.
pub(super) fn quote_ascii(s: &str) -> String {
    quote_with(s, '"', true)
}

/// Go's `strconv.QuoteRune` / `QuoteRuneToASCII` for a code point that may
/// be invalid (replaced by U+FFFD like Go).
pub(super) fn quote_rune(u: u64, ascii_only: bool) -> String {
    let c = u32::try_from(u)
        .ok()
        .and_then(char::from_u32)
        .unwrap_or('\u{FFFD}');
    let mut buf = String::from("'");
    append_escaped_rune(&mut buf, c, '\'', ascii_only);
    buf.push('\'');
    buf
}

/// Go's `strconv.CanBackquote`.
fn can_backquote(s: &str) -> bool {
    s.chars().all(|c| {
        if c.len_utf8() > 1 {
            return c != '\u{FEFF}' && c != '\u{FFFD}';
        }
        !((c < ' ' && c != '\t') || c == '`' || c == '\u{7F}')
    })
}

/// Go's `%#U` formatting of a rune, e.g. `U+0023 '#'`.
pub(super) fn sharp_u(c: char) -> String {
    let mut s = format!("U+{:04X}", c as u32);
    if is_print(c) {
        s.push_str(" '");
        s.push(c);
        s.push('\'');
    }
    s
}

// ----- float formatting -------------------------------------------------------

/// Decimal digits of a float: `0.d1d2d3... * 10^dp`, no trailing zeros.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

impl Digits {
    fn nd(&self) -> i32 {
        self.d.len() as i32
    }
}

/// Parse Rust's `{:e}` output ("1.2345e-5") of a non-negative value.
fn digits_from_exp(s: &str) -> Digits {
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// Shortest digits that round-trip.
fn shortest_digits(a: f64) -> Digits {
    digits_from_exp(&format!("{a:e}"))
}

/// `n` significant digits, correctly rounded.
fn fixed_digits(a: f64, n: i32) -> Digits {
    let prec = (n.max(1) - 1) as usize;
    digits_from_exp(&format!("{a:.prec$e}"))
}

fn fmt_e(out: &mut String, d: &Digits, prec: i32, e: char) {
    out.push(d.d.first().map_or('0', |&c| c as char));
    if prec > 0 {
        out.push('.');
        let mut i = 1;
        let m = d.nd().min(prec + 1);
        if i < m {
            for &c in &d.d[i as usize..m as usize] {
                out.push(c as char);
            }
            i = m;
        }
        while i <= prec {
            out.push('0');
            i += 1;
        }
    }
    out.push(e);
    let mut exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

fn fmt_f(out: &mut String, d: &Digits, prec: i32) {
    if d.dp > 0 {
        let m = d.nd().min(d.dp);
        for &c in &d.d[..m as usize] {
            out.push(c as char);
        }
        for _ in m..d.dp {
            out.push('0');
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            let j = d.dp + i - 1;
            let ch = if j >= 0 && j < d.nd() {
                d.d[j as usize] as char
            } else {
                '0'
            };
            out.push(ch);
        }
    }
}

/// Mantissa (with implicit bit) and binary exponent of a finite float, as
/// Go's strconv computes them: `v = mant * 2^(exp - 52)`.
fn float_bits(v: f64) -> (u64, i32) {
    let bits = v.to_bits();
    let mut exp = ((bits >> 52) & 0x7FF) as i32;
    let mut mant = bits & ((1u64 << 52) - 1);
    if exp == 0 {
        exp += 1; // denormalized
    } else {
        mant |= 1u64 << 52;
    }
    (mant, exp - 1023)
}

/// Go's `%b` for floats: decimal mantissa and binary exponent, `4503599627370496p-52`.
fn fmt_b(out: &mut String, mant: u64, exp: i32) {
    out.push_str(&mant.to_string());
    out.push('p');
    let e = exp - 52;
    if e >= 0 {
        out.push('+');
    }
    out.push_str(&e.to_string());
}

/// Go's `%x`/`%X` for floats: `0x1.921f9f01b866ep+01`.
fn fmt_x(out: &mut String, prec: i32, upper: bool, mant: u64, exp: i32) {
    let mut mant = mant;
    let mut exp = if mant == 0 { 0 } else { exp };
    // Shift digits so the leading 1 (if any) is at bit 1<<60.
    mant <<= 60 - 52;
    while mant != 0 && mant & (1 << 60) == 0 {
        mant <<= 1;
        exp -= 1;
    }
    // Round if requested.
    if (0..15).contains(&prec) {
        let shift = (prec * 4) as u32;
        let extra = (mant << shift) & ((1u64 << 60) - 1);
        mant >>= 60 - shift;
        if extra | (mant & 1) > 1 << 59 {
            mant += 1;
        }
        mant <<= 60 - shift;
        if mant & (1 << 61) != 0 {
            // Wrapped around.
            mant >>= 1;
            exp += 1;
        }
    }
    let hex: &[u8; 16] = if upper {
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    out.push('0');
    out.push(if upper { 'X' } else { 'x' });
    out.push(if (mant >> 60) & 1 == 1 { '1' } else { '0' });
    mant <<= 4; // remove leading 0 or 1
    if prec < 0 && mant != 0 {
        out.push('.');
        while mant != 0 {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    } else if prec > 0 {
        out.push('.');
        for _ in 0..prec {
            out.push(hex[((mant >> 60) & 15) as usize] as char);
            mant <<= 4;
        }
    }
    out.push(if upper { 'P' } else { 'p' });
    if exp < 0 {
        out.push('-');
        exp = -exp;
    } else {
        out.push('+');
    }
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
}

/// Go's `strconv.FormatFloat(v, fmt, prec, 64)` for `fmt` in `bxXeEfFgG`
/// (`prec < 0` means the shortest representation).
pub(super) fn format_float(v: f64, fmt: char, prec: i32) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let a = v.abs();
    match fmt {
        'b' => {
            let (mant, exp) = float_bits(a);
            fmt_b(&mut out, mant, exp);
        }
        'x' | 'X' => {
            let (mant, exp) = float_bits(a);
            fmt_x(&mut out, prec, fmt == 'X', mant, exp);
        }
        'f' | 'F' => {
            if prec < 0 {
                let d = shortest_digits(a);
                fmt_f(&mut out, &d, (d.nd() - d.dp).max(0));
            } else {
                let p = prec as usize;
                out.push_str(&format!("{a:.p$}"));
            }
        }
        'e' | 'E' => {
            let (d, prec) = if prec < 0 {
                let d = shortest_digits(a);
                let p = (d.nd() - 1).max(0);
                (d, p)
            } else {
                (fixed_digits(a, prec.saturating_add(1)), prec)
            };
            fmt_e(&mut out, &d, prec, fmt);
        }
        _ => {
            // 'g' / 'G'
            let e = if fmt == 'G' { 'E' } else { 'e' };
            let shortest = prec < 0;
            let (d, mut prec) = if shortest {
                let d = shortest_digits(a);
                let n = d.nd();
                (d, n)
            } else {
                let p = if prec == 0 { 1 } else { prec };
                (fixed_digits(a, p), p)
            };
            let mut eprec = prec;
            if eprec > d.nd() && d.nd() >= d.dp {
                eprec = d.nd();
            }
            if shortest {
                eprec = 6;
            }
            let exp = d.dp - 1;
            if exp < -4 || exp >= eprec {
                if prec > d.nd() {
                    prec = d.nd();
                }
                fmt_e(&mut out, &d, prec - 1, e);
            } else {
                if prec > d.dp {
                    prec = d.nd();
                }
                fmt_f(&mut out, &d, (prec - d.dp).max(0));
            }
        }
    }
    out
}

// ----- the printer ------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Flags {
    wid: usize,
    prec: usize,
    wid_present: bool,
    prec_present: bool,
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
}

/// Why printing stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PrintError {
    TooLarge,
    TooDeep,
}

/// Go's `fmt.pp`: formats values into a bounded buffer.
pub(super) struct Printer {
    buf: String,
    limit: usize,
    error: Option<PrintError>,
    f: Flags,
    reordered: bool,
    good_arg_num: bool,
}

fn too_large(x: usize) -> bool {
    x > 1_000_000
}

/// Go's `parsenum`: (number, is number, new index).
fn parsenum(b: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num = 0usize;
    let mut isnum = false;
    let mut i = start;
    while i < end && b[i].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + (b[i] - b'0') as usize;
        isnum = true;
        i += 1;
    }
    (num, isnum, i)
}

/// Go's `parseArgNumber`: (zero-based index, bytes consumed, ok).
fn parse_arg_number(b: &[u8]) -> (i64, usize, bool) {
    if b.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..b.len() {
        if b[i] == b']' {
            let (width, ok, newi) = parsenum(b, 1, i);
            if !ok || newi != i {
                return (0, i + 1, false);
            }
            return (width as i64 - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

/// Go's `intFromArg`: (value, is int, new arg number).
fn int_from_arg(a: &[Val<'_>], arg_num: usize) -> (i64, bool, usize) {
    let Some(arg) = a.get(arg_num) else {
        return (0, false, arg_num);
    };
    let (mut num, mut ok) = match arg {
        Val::Int(i) => (*i, true),
        Val::Uint(u) => match i64::try_from(*u) {
            Ok(i) => (i, true),
            Err(_) => (0, false),
        },
        _ => (0, false),
    };
    if num.unsigned_abs() > 1_000_000 {
        num = 0;
        ok = false;
    }
    (num, ok, arg_num + 1)
}

impl Printer {
    pub fn new(limit: usize) -> Printer {
        Printer {
            buf: String::new(),
            limit,
            error: None,
            f: Flags::default(),
            reordered: false,
            good_arg_num: true,
        }
    }

    pub fn finish(self) -> Result<String, PrintError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.buf),
        }
    }

    fn room(&mut self, n: usize) -> bool {
        if self.error.is_some() {
            return false;
        }
        if self.buf.len().saturating_add(n) > self.limit {
            self.error = Some(PrintError::TooLarge);
            return false;
        }
        true
    }

    fn write(&mut self, s: &str) {
        if self.room(s.len()) {
            self.buf.push_str(s);
        }
    }

    fn write_char(&mut self, c: char) {
        if self.room(c.len_utf8()) {
            self.buf.push(c);
        }
    }

    fn write_padding(&mut self, n: usize) {
        if n == 0 || !self.room(n) {
            return;
        }
        let c = if self.f.zero { '0' } else { ' ' };
        self.buf.extend(std::iter::repeat_n(c, n));
    }

    fn pad(&mut self, s: &str) {
        if !self.f.wid_present || self.f.wid == 0 {
            self.write(s);
            return;
        }
        let width = self.f.wid.saturating_sub(s.chars().count());
        if !self.f.minus {
            self.write_padding(width);
            self.write(s);
        } else {
            self.write(s);
            self.write_padding(width);
        }
    }

    // ----- entry points -----

    /// Go's `fmt.Sprint` semantics.
    pub fn sprint(&mut self, a: &[Val<'_>]) {
        let mut prev_string = false;
        for (n, arg) in a.iter().enumerate() {
            let is_string = matches!(arg, Val::Str(_));
            if n > 0 && !is_string && !prev_string {
                self.write_char(' ');
            }
            self.f = Flags::default();
            self.print_arg(arg, 'v');
            prev_string = is_string;
        }
    }

    /// Go's `fmt.Sprintln` semantics.
    pub fn sprintln(&mut self, a: &[Val<'_>]) {
        for (n, arg) in a.iter().enumerate() {
            if n > 0 {
                self.write_char(' ');
            }
            self.f = Flags::default();
            self.print_arg(arg, 'v');
        }
        self.write_char('\n');
    }

    /// Go's `fmt.Sprintf` semantics.
    pub fn sprintf(&mut self, format: &str, a: &[Val<'_>]) {
        let b = format.as_bytes();
        let end = b.len();
        let mut arg_num = 0usize;
        let mut after_index;
        self.reordered = false;
        let mut i = 0usize;
        while i < end {
            if self.error.is_some() {
                return;
            }
            self.good_arg_num = true;
            let lasti = i;
            while i < end && b[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.write(format.get(lasti..i).unwrap_or(""));
            }
            if i >= end {
                break;
            }
            i += 1; // skip %
            self.f = Flags::default();
            while i < end {
                match b[i] {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            (arg_num, i, after_index) = self.arg_number(arg_num, b, i, a.len());
            // Width.
            if i < end && b[i] == b'*' {
                i += 1;
                let (w, ok, n) = int_from_arg(a, arg_num);
                arg_num = n;
                self.f.wid_present = ok;
                if !ok {
                    self.write("%!(BADWIDTH)");
                }
                if w < 0 {
                    self.f.minus = true;
                    self.f.zero = false;
                }
                self.f.wid = if ok { w.unsigned_abs() as usize } else { 0 };
                after_index = false;
            } else {
                let (w, present, ni) = parsenum(b, i, end);
                self.f.wid = w;
                self.f.wid_present = present;
                i = ni;
                if after_index && present {
                    self.good_arg_num = false;
                }
            }
            // Precision.
            if i + 1 < end && b[i] == b'.' {
                i += 1;
                if after_index {
                    self.good_arg_num = false;
                }
                (arg_num, i, after_index) = self.arg_number(arg_num, b, i, a.len());
                if i < end && b[i] == b'*' {
                    i += 1;
                    let (p, ok, n) = int_from_arg(a, arg_num);
                    arg_num = n;
                    if p < 0 || !ok {
                        self.f.prec = 0;
                        self.f.prec_present = false;
                    } else {
                        self.f.prec = p as usize;
                        self.f.prec_present = true;
                    }
                    if !self.f.prec_present {
                        self.write("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (p, present, ni) = parsenum(b, i, end);
                    i = ni;
                    self.f.prec = if present { p } else { 0 };
                    self.f.prec_present = true;
                }
            }
            if !after_index {
                (arg_num, i, _) = self.arg_number(arg_num, b, i, a.len());
            }
            if i >= end {
                self.write("%!(NOVERB)");
                break;
            }
            let verb = format
                .get(i..)
                .and_then(|s| s.chars().next())
                .unwrap_or('\u{FFFD}');
            i += verb.len_utf8().max(1);
            if verb == '%' {
                self.write_char('%');
            } else if !self.good_arg_num {
                self.write("%!");
                self.write_char(verb);
                self.write("(BADINDEX)");
            } else if arg_num >= a.len() {
                self.write("%!");
                self.write_char(verb);
                self.write("(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&a[arg_num], verb);
                arg_num += 1;
            }
        }
        if !self.reordered && arg_num < a.len() {
            self.f = Flags::default();
            self.write("%!(EXTRA ");
            for (n, arg) in a[arg_num..].iter().enumerate() {
                if n > 0 {
                    self.write(", ");
                }
                if arg.is_nil() {
                    self.write("<nil>");
                } else {
                    self.write(arg.type_name());
                    self.write_char('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.write_char(')');
        }
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        b: &[u8],
        i: usize,
        num_args: usize,
    ) -> (usize, usize, bool) {
        if b.len() <= i || b[i] != b'[' {
            return (arg_num, i, false);
        }
        self.reordered = true;
        let (index, wid, ok) = parse_arg_number(&b[i..]);
        if ok && index >= 0 && (index as usize) < num_args {
            return (index as usize, i + wid, true);
        }
        self.good_arg_num = false;
        (arg_num, i + wid, ok)
    }

    // ----- values -----

    fn print_arg(&mut self, arg: &Val<'_>, verb: char) {
        if arg.is_nil() {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        match verb {
            'T' => self.fmt_s(arg.type_name()),
            'p' => self.bad_verb(verb, arg),
            _ => self.print_value(arg, verb, 0),
        }
    }

    fn bad_verb(&mut self, verb: char, v: &Val<'_>) {
        self.write("%!");
        self.write_char(verb);
        self.write_char('(');
        if v.is_nil() {
            self.write("<nil>");
        } else {
            self.write(v.type_name());
            self.write_char('=');
            self.print_value(v, 'v', 0);
        }
        self.write_char(')');
    }

    fn print_elem(&mut self, e: &Value, verb: char, depth: usize) {
        match e {
            Value::Null => {
                if self.f.sharp_v {
                    self.write("interface {}(nil)");
                } else {
                    self.write("<nil>");
                }
            }
            other => self.print_value(&Val::from_json(other), verb, depth),
        }
    }

    fn print_value(&mut self, v: &Val<'_>, verb: char, depth: usize) {
        if depth > MAX_VALUE_DEPTH {
            self.error = Some(PrintError::TooDeep);
            return;
        }
        if self.error.is_some() {
            return;
        }
        match v {
            Val::Missing | Val::Nil => self.write("<nil>"),
            Val::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, v),
            },
            Val::Int(i) => self.fmt_integer_verb(*i as u64, true, verb, v),
            Val::Uint(u) => self.fmt_integer_verb(*u, false, verb, v),
            Val::Float(f) => self.fmt_float_verb(*f, verb, v),
            Val::Str(s) => self.fmt_string(s.as_str(), verb, v),
            Val::Array(a) => {
                if self.f.sharp_v {
                    self.write("[]interface {}{");
                    for (i, e) in a.iter().enumerate() {
                        if i > 0 {
                            self.write(", ");
                        }
                        self.print_elem(e, verb, depth + 1);
                    }
                    self.write_char('}');
                } else {
                    self.write_char('[');
                    for (i, e) in a.iter().enumerate() {
                        if i > 0 {
                            self.write_char(' ');
                        }
                        self.print_elem(e, verb, depth + 1);
                    }
                    self.write_char(']');
                }
            }
            Val::Object(m) => {
                if self.f.sharp_v {
                    self.write("map[string]interface {}{");
                } else {
                    self.write("map[");
                }
                for (i, (k, e)) in sorted_entries(m).into_iter().enumerate() {
                    if i > 0 {
                        if self.f.sharp_v {
                            self.write(", ");
                        } else {
                            self.write_char(' ');
                        }
                    }
                    let key = Val::Str(super::value::Str::Borrowed(k));
                    self.print_value(&key, verb, depth + 1);
                    self.write_char(':');
                    self.print_elem(e, verb, depth + 1);
                }
                self.write_char(if self.f.sharp_v { '}' } else { ']' });
            }
        }
    }

    fn fmt_string(&mut self, s: &str, verb: char, v: &Val<'_>) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    self.fmt_q(s);
                } else {
                    self.fmt_s(s);
                }
            }
            's' => self.fmt_s(s),
            'x' => self.fmt_sx(s, false),
            'X' => self.fmt_sx(s, true),
            'q' => self.fmt_q(s),
            _ => self.bad_verb(verb, v),
        }
    }

    fn truncate<'s>(&self, s: &'s str) -> &'s str {
        if self.f.prec_present
            && let Some((i, _)) = s.char_indices().nth(self.f.prec)
        {
            return &s[..i];
        }
        s
    }

    fn fmt_s(&mut self, s: &str) {
        let s = self.truncate(s);
        self.pad(s);
    }

    fn fmt_q(&mut self, s: &str) {
        let s = self.truncate(s);
        if self.f.sharp && can_backquote(s) {
            let q = format!("`{s}`");
            self.pad(&q);
            return;
        }
        let q = if self.f.plus {
            quote_ascii(s)
        } else {
            quote(s)
        };
        self.pad(&q);
    }

    fn fmt_sx(&mut self, s: &str, upper: bool) {
        let digits: &[u8] = if upper {
            b"0123456789ABCDEFX"
        } else {
            b"0123456789abcdefx"
        };
        let b = s.as_bytes();
        let mut length = b.len();
        if self.f.prec_present && self.f.prec < length {
            length = self.f.prec;
        }
        let mut width = 2 * length;
        if width > 0 {
            if self.f.space {
                if self.f.sharp {
                    width *= 2;
                }
                width += length - 1;
            } else if self.f.sharp {
                width += 2;
            }
        } else {
            if self.f.wid_present {
                self.write_padding(self.f.wid);
            }
            return;
        }
        if self.f.wid_present && self.f.wid > width && !self.f.minus {
            self.write_padding(self.f.wid - width);
        }
        let mut out = String::with_capacity(width);
        if self.f.sharp {
            out.push('0');
            out.push(digits[16] as char);
        }
        for (i, &c) in b[..length].iter().enumerate() {
            if self.f.space && i > 0 {
                out.push(' ');
                if self.f.sharp {
                    out.push('0');
                    out.push(digits[16] as char);
                }
            }
            out.push(digits[(c >> 4) as usize] as char);
            out.push(digits[(c & 0xF) as usize] as char);
        }
        self.write(&out);
        if self.f.wid_present && self.f.wid > width && self.f.minus {
            self.write_padding(self.f.wid - width);
        }
    }

    fn fmt_integer_verb(&mut self, u: u64, signed: bool, verb: char, v: &Val<'_>) {
        match verb {
            'v' => {
                if self.f.sharp_v && !signed {
                    let sharp = self.f.sharp;
                    self.f.sharp = true;
                    self.fmt_integer(u, 16, signed, verb, false);
                    self.f.sharp = sharp;
                } else {
                    self.fmt_integer(u, 10, signed, verb, false);
                }
            }
            'd' => self.fmt_integer(u, 10, signed, verb, false),
            'b' => self.fmt_integer(u, 2, signed, verb, false),
            'o' | 'O' => self.fmt_integer(u, 8, signed, verb, false),
            'x' => self.fmt_integer(u, 16, signed, verb, false),
            'X' => self.fmt_integer(u, 16, signed, verb, true),
            'c' => {
                let c = u32::try_from(u)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                self.pad(c.encode_utf8(&mut [0u8; 4]));
            }
            'q' => {
                let q = quote_rune(u, self.f.plus);
                self.pad(&q);
            }
            'U' => self.fmt_unicode(u),
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_integer(&mut self, u: u64, base: u64, signed: bool, verb: char, upper: bool) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative { u.wrapping_neg() } else { u };
        let digits: &[u8] = if upper {
            b"0123456789ABCDEFX"
        } else {
            b"0123456789abcdefx"
        };
        let mut prec = 0usize;
        if self.f.prec_present {
            prec = self.f.prec;
            if prec == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                self.write_padding(self.f.wid);
                self.f.zero = old;
                return;
            }
        } else if self.f.zero && self.f.wid_present {
            prec = self.f.wid;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        if !self.room(prec) {
            return;
        }
        // Built in reverse.
        let mut buf: Vec<u8> = Vec::with_capacity(prec.max(24));
        loop {
            buf.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while buf.len() < prec {
            buf.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => buf.extend_from_slice(b"b0"),
                8 if buf.last() != Some(&b'0') => buf.push(b'0'),
                16 => {
                    buf.push(digits[16]);
                    buf.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            buf.extend_from_slice(b"o0");
        }
        if negative {
            buf.push(b'-');
        } else if self.f.plus {
            buf.push(b'+');
        } else if self.f.space {
            buf.push(b' ');
        }
        buf.reverse();
        let s = String::from_utf8_lossy(&buf).into_owned();
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old;
    }

    fn fmt_unicode(&mut self, u: u64) {
        let mut prec = 4usize;
        if self.f.prec_present && self.f.prec > 4 {
            prec = self.f.prec;
        }
        if !self.room(prec) {
            return;
        }
        let hex = format!("{u:X}");
        let mut s = String::from("U+");
        for _ in hex.len()..prec {
            s.push('0');
        }
        s.push_str(&hex);
        if self.f.sharp
            && let Some(c) = u32::try_from(u).ok().and_then(char::from_u32)
            && is_print(c)
        {
            s.push_str(" '");
            s.push(c);
            s.push('\'');
        }
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old;
    }

    fn fmt_float_verb(&mut self, f: f64, verb: char, v: &Val<'_>) {
        match verb {
            'v' => self.fmt_float(f, 'g', -1),
            'b' | 'g' | 'G' | 'x' | 'X' => {
                if self.f.sharp_v {
                    self.fmt_float(f, 'g', -1);
                } else {
                    self.fmt_float(f, verb, -1);
                }
            }
            'f' | 'F' | 'e' | 'E' => {
                if self.f.sharp_v {
                    self.fmt_float(f, 'g', -1);
                } else {
                    self.fmt_float(f, verb, 6);
                }
            }
            _ => self.bad_verb(verb, v),
        }
    }

    fn fmt_float(&mut self, v: f64, verb: char, prec: i32) {
        let prec = if self.f.prec_present {
            i32::try_from(self.f.prec).unwrap_or(i32::MAX)
        } else {
            prec
        };
        if prec > 0 && !self.room(prec as usize) {
            return;
        }
        let s = format_float(v, verb, prec);
        let mut num: Vec<u8> = if s.starts_with('-') || s.starts_with('+') {
            s.into_bytes()
        } else {
            let mut n = vec![b'+'];
            n.extend_from_slice(s.as_bytes());
            n
        };
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.get(1) == Some(&b'I') || num.get(1) == Some(&b'N') {
            let old = self.f.zero;
            self.f.zero = false;
            if num.get(1) == Some(&b'N') && !self.f.space && !self.f.plus {
                num.remove(0);
            }
            let s = String::from_utf8_lossy(&num).into_owned();
            self.pad(&s);
            self.f.zero = old;
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: i64 = 0;
            if matches!(verb, 'v' | 'g' | 'G' | 'x') {
                digits = prec as i64;
                if digits == -1 {
                    digits = 6;
                }
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut body: Vec<u8> = vec![num[0]];
            let mut has_dot = false;
            let mut saw_nonzero = false;
            let mut i = 1;
            while i < num.len() {
                let c = num[i];
                match c {
                    b'.' => {
                        has_dot = true;
                        body.push(c);
                    }
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[i..]);
                        break;
                    }
                    b'e' | b'E' if verb != 'x' && verb != 'X' => {
                        tail.extend_from_slice(&num[i..]);
                        break;
                    }
                    _ => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                        body.push(c);
                    }
                }
                i += 1;
            }
            if !has_dot {
                if body.len() == 2 && body[1] == b'0' {
                    digits -= 1;
                }
                body.push(b'.');
            }
            while digits > 0 {
                body.push(b'0');
                digits -= 1;
            }
            body.extend_from_slice(&tail);
            num = body;
        }
        let s = String::from_utf8_lossy(&num).into_owned();
        if self.f.plus || !s.starts_with('+') {
            if self.f.zero && self.f.wid_present && self.f.wid > s.len() {
                let (sign, rest) = s.split_at(1);
                self.write(sign);
                self.write_padding(self.f.wid - s.len());
                self.write(rest);
                return;
            }
            self.pad(&s);
            return;
        }
        self.pad(&s[1..]);
    }
}

/// Go's `fmt.Sprint` of a single value (what an action prints).
pub(super) fn sprint_one(v: &Val<'_>, limit: usize) -> Result<String, PrintError> {
    let mut p = Printer::new(limit);
    p.sprint(std::slice::from_ref(v));
    p.finish()
}

#[cfg(test)]
#[allow(clippy::approx_constant)] // 3.14159 etc. are the literal values of Go examples
mod tests {
    use super::super::value::Str;
    use super::*;
    use serde_json::json;

    fn s(x: &'static str) -> Val<'static> {
        Val::Str(Str::Borrowed(x))
    }

    fn sprintf(f: &str, a: &[Val<'_>]) -> String {
        let mut p = Printer::new(1 << 20);
        p.sprintf(f, a);
        p.finish().unwrap_or_else(|e| format!("{e:?}"))
    }

    fn sprint(a: &[Val<'_>]) -> String {
        let mut p = Printer::new(1 << 20);
        p.sprint(a);
        p.finish().unwrap_or_else(|e| format!("{e:?}"))
    }

    #[test]
    fn floats_like_go_v() {
        let cases: &[(f64, &str)] = &[
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (1e21, "1e+21"),
            (0.5, "0.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789.0, "1.23456789e+08"),
            (1234567.8, "1.2345678e+06"),
            (123456.7, "123456.7"),
            (3e-300, "3e-300"),
            (0.1, "0.1"),
            (-0.0, "-0"),
            (0.0, "0"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.30000000000000004, "0.30000000000000004"),
            (8080.0, "8080"),
            (2.5, "2.5"),
        ];
        for (v, want) in cases {
            assert_eq!(format_float(*v, 'g', -1), *want, "{v}");
        }
    }

    #[test]
    fn printf_numbers() {
        let f = Val::Float;
        let i = Val::Int;
        assert_eq!(
            sprintf("%05d|%-4s|%.2f|%q", &[i(42), s("ab"), f(3.14159), s("x")]),
            "00042|ab  |3.14|\"x\""
        );
        assert_eq!(
            sprintf(
                "%e|%E|%g|%G|%.3e|%.3g|%8.2f|%+d|% d|%+.1f",
                &[
                    f(1234.5678),
                    f(0.000012),
                    f(1e-7),
                    f(1e21),
                    f(123456.0),
                    f(0.00012345),
                    f(3.14159),
                    i(5),
                    i(5),
                    f(2.25)
                ]
            ),
            "1.234568e+03|1.200000E-05|1e-07|1E+21|1.235e+05|0.000123|    3.14|+5| 5|+2.2"
        );
        assert_eq!(
            sprintf(
                "%g|%g|%.2g|%.10g|%#g|%#.3g|%G",
                &[
                    f(100000.0),
                    f(1000000.0),
                    f(1234.0),
                    f(1.0),
                    f(1.0),
                    f(1.0),
                    f(1e-10)
                ]
            ),
            "100000|1e+06|1.2e+03|1|1.00000|1.00|1E-10"
        );
        assert_eq!(
            sprintf(
                "%e|%.0e|%#.0e|%.0f|%#.0f|%f|%F",
                &[f(0.0), f(5.5), f(5.5), f(2.5), f(2.5), f(1e20), f(1.5)]
            ),
            "0.000000e+00|6e+00|6.e+00|2|2.|100000000000000000000.000000|1.500000"
        );
        assert_eq!(
            sprintf(
                "%5.1f|%-7.2e|%+g|% g|%010.3f|%-010.3f|%+010.3f",
                &[
                    f(3.14159),
                    f(31415.9),
                    f(1.5),
                    f(1.5),
                    f(-3.14159),
                    f(3.14159),
                    f(3.14159)
                ]
            ),
            "  3.1|3.14e+04|+1.5| 1.5|-00003.142|3.142     |+00003.142"
        );
        assert_eq!(
            sprintf(
                "%d|%5d|%-5d|%05d|%.3d|%8.3d|%+d|% d|%x|%X|%#x|%o|%b|%c|%U",
                &[
                    i(-42),
                    i(-42),
                    i(-42),
                    i(-42),
                    i(7),
                    i(7),
                    i(0),
                    i(-3),
                    i(255),
                    i(255),
                    i(-255),
                    i(8),
                    i(-5),
                    i(9731),
                    i(9731)
                ]
            ),
            "-42|  -42|-42  |-0042|007|     007|+0|-3|ff|FF|-0xff|10|-101|☃|U+2603"
        );
        assert_eq!(
            sprintf("%.0d|%5.0d|%05.0d", &[i(0), i(0), i(0)]),
            "|     |     "
        );
        assert_eq!(
            sprintf(
                "%c|%q|%U|%#U|%o|%O|%b|%#o|%#b",
                &[i(65), i(65), i(65), i(65), i(8), i(8), i(5), i(8), i(5)]
            ),
            "A|'A'|U+0041|U+0041 'A'|10|0o10|101|010|0b101"
        );
        assert_eq!(
            sprintf(
                "%c|%c|%q|%+q|%#q|%#U",
                &[i(-1), i(1114112), i(10), i(233), i(39), i(10)]
            ),
            "\u{FFFD}|\u{FFFD}|'\\n'|'\\u00e9'|'\\''|U+000A"
        );
        assert_eq!(
            sprintf("%#o|%#x|%#b|%#O", &[i(0), i(0), i(0), i(0)]),
            "0|0x0|0b0|0o0"
        );
        assert_eq!(
            sprintf("% d|%+ d|% 5d|%0 5d", &[i(5), i(5), i(5), i(5)]),
            " 5|+5|    5| 0005"
        );
        assert_eq!(
            sprintf("%-+5d|%+-5d|%0-5d|%-05d", &[i(1), i(1), i(1), i(1)]),
            "+1   |+1   |1    |1    "
        );
        assert_eq!(
            sprintf(
                "%6.2f|%-8.3f|%08.3f|%+08d|%x",
                &[f(-3.14159), f(2.0), f(-3.14159), i(42), i(-255)]
            ),
            " -3.14|2.000   |-003.142|+0000042|-ff"
        );
        let big = Val::Uint(12345678901234567890);
        assert_eq!(
            sprintf(
                "%d %v %x %T %#v",
                &[big.clone(), big.clone(), big.clone(), big.clone(), big]
            ),
            "12345678901234567890 12345678901234567890 ab54a98ceb1f0ad2 uint64 0xab54a98ceb1f0ad2"
        );
        assert_eq!(
            sprintf("%6.2v|%.3v|%.3v", &[f(3.14159), s("abcdef"), f(3.14159)]),
            "   3.1|abc|3.14"
        );
    }

    #[test]
    fn printf_float_bits() {
        let f = Val::Float;
        assert_eq!(
            sprintf(
                "%x|%X|%.4x|%b|%b|%x|%x",
                &[
                    f(3.14159),
                    f(0.1),
                    f(0.000123),
                    f(1e6),
                    f(1e-7),
                    f(0.0),
                    f(-1.0)
                ]
            ),
            "0x1.921f9f01b866ep+01|0X1.999999999999AP-04|0x1.01f3p-13|8589934592000000p-33|7555786372591432p-76|0x0p+00|-0x1p+00"
        );
        assert_eq!(
            sprintf("%#x %#X %#.0x %#b", &[f(0.5), f(255.0), f(2.5), f(1.0)]),
            "0x1.0000p-01 0X1.FEP+07 0x1.p+01 4503599627370496p-52"
        );
    }

    #[test]
    fn printf_strings() {
        assert_eq!(
            sprintf(
                "%05s|%-05d|%x|%X|% x|%#x",
                &[
                    s("ab"),
                    Val::Int(3),
                    s("hi"),
                    Val::Int(255),
                    s("hi"),
                    Val::Int(255)
                ]
            ),
            "000ab|3    |6869|FF|68 69|0xff"
        );
        assert_eq!(
            sprintf(
                "%5s|%-5s|%.2s|%5.1s|%05s|%-05s",
                &[s("é"), s("é"), s("éèà"), s("éèà"), s("é"), s("é")]
            ),
            "    é|é    |éè|    é|0000é|é    "
        );
        let abc = s("abc");
        assert_eq!(
            sprintf(
                "%x|%X|% X|%#X|% #x|%.1x|%10x|%-10x|",
                &[
                    abc.clone(),
                    abc.clone(),
                    abc.clone(),
                    abc.clone(),
                    abc.clone(),
                    abc.clone(),
                    abc.clone(),
                    abc
                ]
            ),
            "616263|616263|61 62 63|0X616263|0x61 0x62 0x63|61|    616263|616263    |"
        );
        assert_eq!(sprintf("%x|%5x", &[s(""), s("")]), "|     ");
        assert_eq!(
            sprintf("%q", &[s("héllo\u{0}\n\u{a0}\u{200b}\u{7f}")]),
            "\"héllo\\x00\\n\\u00a0\\u200b\\x7f\""
        );
        assert_eq!(
            sprintf("%+q %#q %x", &[s("héllo"), s("ab"), s("é")]),
            "\"h\\u00e9llo\" `ab` c3a9"
        );
        assert_eq!(
            sprintf(
                "%t|%v|%s|%d",
                &[
                    Val::Bool(true),
                    Val::Bool(false),
                    Val::Bool(true),
                    Val::Bool(true)
                ]
            ),
            "true|false|%!s(bool=true)|%!d(bool=true)"
        );
    }

    #[test]
    fn printf_errors_and_indexes() {
        let i = Val::Int;
        assert_eq!(
            sprintf("%d %s", &[s("a"), i(5)]),
            "%!d(string=a) %!s(int=5)"
        );
        assert_eq!(sprintf("%5s", &[i(5)]), "%!s(int=    5)");
        assert_eq!(sprintf("%d %d", &[i(1)]), "1 %!d(MISSING)");
        assert_eq!(sprintf("%d", &[i(1), i(2)]), "1%!(EXTRA int=2)");
        assert_eq!(sprintf("%", &[]), "%!(NOVERB)");
        assert_eq!(sprintf("%[2]d %[1]d", &[i(1), i(2)]), "2 1");
        assert_eq!(sprintf("%[5]d", &[i(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%[1]d %d", &[i(1), i(2)]), "1 2");
        assert_eq!(sprintf("%[0]d", &[i(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%[x]d", &[i(1)]), "%!d(BADINDEX)");
        assert_eq!(sprintf("%[1]*d", &[i(3), i(4)]), "  4");
        assert_eq!(sprintf("%[2]*[1]d", &[i(12), i(5)]), "   12");
        assert_eq!(
            sprintf(
                "%*d|%-*d|%.*f",
                &[i(5), i(1), i(4), i(2), i(2), Val::Float(3.14159)]
            ),
            "    1|2   |3.14"
        );
        assert_eq!(sprintf("%*d", &[s("a"), i(1)]), "%!(BADWIDTH)1");
        assert_eq!(sprintf("%.*d", &[i(-1), i(5)]), "%!(BADPREC)5");
        assert_eq!(sprintf("%*d|", &[i(-4), i(5)]), "5   |");
        assert_eq!(sprintf("%%|%5%|%-5%", &[]), "%|%|%");
        assert_eq!(sprintf("%v %d", &[Val::Bool(true)]), "true %!d(MISSING)");
        assert_eq!(sprintf("%z %!", &[i(1), i(1)]), "%!z(int=1) %!!(int=1)");
        assert_eq!(
            sprintf("%d %f %s", &[Val::Float(3.0), i(3), Val::Float(3.5)]),
            "%!d(float64=3) %!f(int=3) %!s(float64=3.5)"
        );
        assert_eq!(
            sprintf(
                "%t %t %v|%5v|%-5v|",
                &[i(1), Val::Nil, Val::Nil, Val::Nil, Val::Nil]
            ),
            "%!t(int=1) %!t(<nil>) <nil>|<nil>|<nil>|"
        );
        assert_eq!(sprintf("abc%", &[]), "abc%!(NOVERB)");
        assert_eq!(sprintf("%-", &[i(1)]), "%!(NOVERB)%!(EXTRA int=1)");
    }

    #[test]
    fn printf_composites() {
        let data = json!({"list": [1, 2, 3], "m": {"b": 2, "a": 1}, "mixed": [1, "a", null, true], "nested": {"a": [1, {"x": null}], "b": "s"}});
        let get = |k: &str| data.get(k).map(Val::from_json).unwrap_or(Val::Missing);
        assert_eq!(sprintf("%d", &[get("list")]), "[1 2 3]");
        assert_eq!(
            sprintf("%d", &[get("m")]),
            "map[%!d(string=a):1 %!d(string=b):2]"
        );
        assert_eq!(sprintf("%s", &[Val::Nil]), "%!s(<nil>)");
        assert_eq!(
            sprintf("%d", &[get("mixed")]),
            "[1 %!d(string=a) <nil> %!d(bool=true)]"
        );
        assert_eq!(
            sprintf("%q", &[get("mixed")]),
            "['\\x01' \"a\" <nil> %!q(bool=true)]"
        );
        assert_eq!(
            sprintf("%s", &[get("mixed")]),
            "[%!s(int=1) a <nil> %!s(bool=true)]"
        );
        assert_eq!(sprintf("%5d", &[get("list")]), "[    1     2     3]");
        assert_eq!(
            sprintf("%10v|%-10v", &[get("list"), get("list")]),
            "[         1          2          3]|[1          2          3         ]"
        );
        assert_eq!(
            sprintf("%v", &[get("nested")]),
            "map[a:[1 map[x:<nil>]] b:s]"
        );
        assert_eq!(
            sprintf("%#v", &[get("nested")]),
            "map[string]interface {}{\"a\":[]interface {}{1, map[string]interface {}{\"x\":interface {}(nil)}}, \"b\":\"s\"}"
        );
        assert_eq!(
            sprintf(
                "%T %T %T %T %T %T %T",
                &[
                    Val::Int(1),
                    Val::Float(1.5),
                    s("s"),
                    Val::Bool(true),
                    get("list"),
                    get("m"),
                    Val::Nil
                ]
            ),
            "int float64 string bool []interface {} map[string]interface {} <nil>"
        );
        assert_eq!(
            sprintf(
                "%#v|%#v|%#v|%#v",
                &[Val::Int(1), s("a\"b"), Val::Bool(true), get("list")]
            ),
            "1|\"a\\\"b\"|true|[]interface {}{1, 2, 3}"
        );
        assert_eq!(
            sprintf(
                "%#v|%#v|%#v",
                &[Val::Float(1.5), Val::Float(1e8), Val::Float(1e-6)]
            ),
            "1.5|1e+08|1e-06"
        );
    }

    #[test]
    fn sprint_spacing() {
        let i = Val::Int;
        assert_eq!(
            sprint(&[
                i(1),
                i(2),
                s("a"),
                i(3),
                s("b"),
                s("c"),
                i(4),
                Val::Nil,
                i(5)
            ]),
            "1 2a3bc4 <nil> 5"
        );
        assert_eq!(sprint(&[s("a"), i(1), Val::Bool(true)]), "a1 true");
        assert_eq!(sprint(&[s("x"), Val::Nil]), "x<nil>");
        let mut p = Printer::new(100);
        p.sprintln(&[i(1), s("a"), i(2)]);
        assert_eq!(p.finish(), Ok("1 a 2\n".to_string()));
    }

    #[test]
    fn limits() {
        let mut p = Printer::new(10);
        p.sprintf("%20d", &[Val::Int(1)]);
        assert_eq!(p.finish(), Err(PrintError::TooLarge));
        let mut p = Printer::new(1 << 20);
        p.sprintf("%99999999999d", &[Val::Int(1)]);
        assert!(p.finish().is_ok());
        let mut p = Printer::new(1 << 20);
        p.sprintf("%.9999999f", &[Val::Float(1.0)]);
        assert_eq!(p.finish(), Err(PrintError::TooLarge));
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a\"b\\c\u{1}"), "\"a\\\"b\\\\c\\x01\"");
        assert_eq!(quote("\u{1F600}\u{10FFFF}"), "\"\u{1F600}\\U0010ffff\"");
        assert_eq!(sharp_u('#'), "U+0023 '#'");
        assert_eq!(sharp_u('\u{1}'), "U+0001");
        assert_eq!(quote_rune(0xD800, false), "'\u{FFFD}'");
    }
}
