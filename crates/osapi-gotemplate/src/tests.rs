//! End-to-end tests of the public API: Go conformance tables (expected
//! outputs recorded from Go's `text/template`), the examples from the
//! specification, newer Go features, documented deviations, resource
//! limits and a deterministic fuzz run over truncated and random input.

use serde_json::{Value, json};

use super::{Template, TemplateError, exec, parser, render};

/// Render and encode the result like the conformance tables: the output,
/// or `PARSE: msg` / `EXEC: msg` with Go's message.
fn outcome(src: &str, data: &Value) -> String {
    match render(src, data) {
        Ok(s) => s,
        Err(TemplateError::Parse(m)) => format!("PARSE: {m}"),
        Err(TemplateError::Execute(m)) => format!("EXEC: {m}"),
    }
}

fn check_table(data: &str, cases: &[(&str, &str)]) {
    let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    assert!(!data.is_null());
    let mut failures = Vec::new();
    for (src, want) in cases {
        let got = outcome(src, &data);
        if got != *want {
            failures.push(format!(
                "template {src:?}\n   want {want:?}\n    got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn ok(src: &str, data: &Value) -> String {
    match render(src, data) {
        Ok(s) => s,
        Err(e) => format!("unexpected error: {e}"),
    }
}

fn parse_err(src: &str) -> String {
    match Template::parse(src) {
        Err(TemplateError::Parse(m)) => m,
        other => format!("expected a parse error, got {other:?}"),
    }
}

fn exec_err(src: &str, data: &Value) -> String {
    match render(src, data) {
        Err(TemplateError::Execute(m)) => m,
        other => format!("expected an execute error, got {other:?}"),
    }
}

// ----- examples from the specification ----------------------------------------

fn spec_data() -> Value {
    json!({
        "Vars": {
            "port": 8080, "env": "prod", "servers": ["a", "b"], "empty": [],
            "list": [1, 2, 3], "m": {"k": "v", "a": 1, "b": 2}, "ab": {"b": 2, "a": 1},
            "db": {"host": "db.local"}, "half": 0.5
        },
        "Hostname": "web-01",
        "Facts": {"architecture": "x86_64"}
    })
}

#[test]
fn spec_examples() {
    let d = spec_data();
    assert_eq!(
        ok(
            "listen {{ .Vars.port }}; # {{ .Hostname }} {{ .Facts.architecture }}",
            &d
        ),
        "listen 8080; # web-01 x86_64"
    );
    assert_eq!(ok("{{ .Vars.missing }}", &d), "<no value>");
    assert_eq!(ok("{{ .Vars.missing.x }}", &d), "<no value>");
    assert_eq!(ok("{{ if .Vars.missing }}t{{ else }}f{{ end }}", &d), "f");
    assert_eq!(
        ok(
            "{{ range $i, $s := .Vars.servers }}{{ if $i }},{{ end }}{{ $s }}{{ end }}",
            &d
        ),
        "a,b"
    );
    assert_eq!(
        ok("{{ range .Vars.empty }}x{{ else }}none{{ end }}", &d),
        "none"
    );
    assert_eq!(
        ok("{{- if eq .Vars.env \"prod\" -}}\n P \n{{- end -}}", &d),
        "P"
    );
    assert_eq!(
        ok(
            r#"{{ printf "%05d|%-4s|%.2f|%q" 42 "ab" 3.14159 "x" }}"#,
            &d
        ),
        r#"00042|ab  |3.14|"x""#
    );
    assert_eq!(ok("{{ len .Vars.list }}", &d), "3");
    assert_eq!(ok("{{ index .Vars.m \"k\" }}", &d), "v");
    assert_eq!(ok("{{ .Vars.port | printf \"%d\" }}", &d), "8080");
    assert_eq!(
        ok("{{ with .Vars.db }}{{ .host }}{{ end }}", &d),
        "db.local"
    );
    assert_eq!(
        ok(
            "{{ define \"t\" }}[{{ . }}]{{ end }}{{ template \"t\" .Hostname }}",
            &d
        ),
        "[web-01]"
    );
    assert_eq!(ok("a{{/* comment */}}b {{- /* trimmed */ -}} c", &d), "abc");
    assert_eq!(ok("{{ and 1 0 }}", &d), "0");
    assert_eq!(ok("{{ or 0 \"x\" }}", &d), "x");
    assert_eq!(ok("{{ not true }}", &d), "false");
    assert_eq!(ok("{{ .Vars.ab }}", &d), "map[a:1 b:2]");
    assert_eq!(ok("{{ .Vars.list }}", &d), "[1 2 3]");
    assert_eq!(ok("{{ .Vars.half }}", &d), "0.5");
    assert_eq!(ok("{{ 1e21 }}", &d), "1e+21");
}

#[test]
fn spec_errors() {
    let d = spec_data();
    assert_eq!(parse_err("{{ .Vars.port "), "template: :1: unclosed action");
    assert_eq!(parse_err("{{ end }}"), "template: :1: unexpected {{end}}");
    assert_eq!(
        parse_err("x\n{{ end }}"),
        "template: :2: unexpected {{end}}"
    );
    assert_eq!(parse_err("{{ if }}"), "template: :1: missing value for if");
    assert_eq!(
        parse_err("{{ foo }}"),
        "template: :1: function \"foo\" not defined"
    );
    assert_eq!(
        parse_err("{{ $x }}"),
        "template: :1: undefined variable \"$x\""
    );
    assert_eq!(
        parse_err("a\nb\n{{ if .x }}c"),
        "template: :3: unexpected EOF"
    );
    assert_eq!(
        exec_err("{{ .Hostname.x }}", &d),
        "template: :1:12: executing \"\" at <.Hostname.x>: can't evaluate field x in type string"
    );
    assert_eq!(
        exec_err("{{ call .x }}", &d),
        "template: :1:3: executing \"\" at <call .x>: error calling call: call is not supported"
    );
    // Display adds the stage prefix.
    let e = render("{{ end }}", &d).err().map(|e| e.to_string());
    assert_eq!(
        e.as_deref(),
        Some("failed to parse template: template: :1: unexpected {{end}}")
    );
    let e = render("{{ .Hostname.x }}", &d).err().map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.starts_with("failed to execute template: template: :1:12:")));
}

// ----- Go conformance tables ----------------------------------------------------

/// Data for `go_actions` cases.
const GO_ACTIONS_DATA: &str = r#"{"big": 12345678901234567890, "emptylist": [], "emptym": {}, "f": 2.5, "f1": 0.1, "f2": 1000000.0, "i64max": 9223372036854775807, "i64min": -9223372036854775808, "list": [1, 2, 3], "m": {"a": 1, "b": 2}, "mixed": [1, "a", null, true], "neg": -0.0, "nested": {"a": [1, {"x": null}], "b": "s"}, "nul": null, "s": "str"}"#;

/// Expected outputs produced by Go's text/template (go1.19) for these templates.
const GO_ACTIONS_CASES: &[(&str, &str)] = &[
    (
        r#"{{ html "<a href='x'>&\"\x00" }}"#,
        "&lt;a href=&#39;x&#39;&gt;&amp;&#34;�",
    ),
    (
        r#"{{ js "a'b\"c<>&=\\\n\t\u00e9\u2028`" }}"#,
        r#"a\'b\"c\u003C\u003E\u0026\u003D\\\u000A\u0009é\u2028`"#,
    ),
    (
        r#"{{ urlquery "a b&c=d/é~_-." }}"#,
        "a+b%26c%3Dd%2F%C3%A9~_-.",
    ),
    (
        r#"{{ printf "%q" "héllo\x00\n\u00a0\u200b\x7f" }}"#,
        r#""héllo\x00\n\u00a0\u200b\x7f""#,
    ),
    (
        r#"{{ printf "%+q" "héllo" }} {{ printf "%#q" "ab" }} {{ printf "%x" "é" }}"#,
        r#""h\u00e9llo" `ab` c3a9"#,
    ),
    ("{{ .Vars.port ", "PARSE: template: :1: unclosed action"),
    ("{{ end }}", "PARSE: template: :1: unexpected {{end}}"),
    ("a\n{{ end }}", "PARSE: template: :2: unexpected {{end}}"),
    ("{{ if }}", "PARSE: template: :1: missing value for if"),
    (
        "{{ foo }}",
        r#"PARSE: template: :1: function "foo" not defined"#,
    ),
    (
        "{{ $x }}",
        r#"PARSE: template: :1: undefined variable "$x""#,
    ),
    (
        "{{ $x = 1 }}{{ $x }}",
        r#"EXEC: template: :1:8: executing "" at <1>: undefined variable: $x"#,
    ),
    ("{{ if 1 }}", "PARSE: template: :1: unexpected EOF"),
    (
        "{{ if 1 }}{{ else }}{{ else }}{{ end }}",
        "PARSE: template: :1: expected end; found {{else}}",
    ),
    (
        "{{ range .x }}{{ else if 1 }}{{ end }}",
        "PARSE: template: :1: unexpected <if> in input",
    ),
    (
        "{{ break }}",
        "PARSE: template: :1: {{break}} outside {{range}}",
    ),
    (
        "{{ range .x }}{{ break 1 }}{{ end }}",
        r#"PARSE: template: :1: unexpected "1" in {{break}}"#,
    ),
    (
        r#"{{ define "a" }}x{{ end }}{{ define "a" }}y{{ end }}"#,
        r#"PARSE: template: :1: template: multiple definition of template "a""#,
    ),
    (
        r#"{{ define "a" }}x{{ end }}{{ template "a" }}{{ template "b" }}"#,
        r#"EXEC: template: :1:56: executing "" at <{{template "b"}}>: template "b" not defined"#,
    ),
    (
        r#"{{ template "a" }}{{ define "a" }}x{{ else }}{{ end }}"#,
        "PARSE: template: :1: unexpected {{else}} in define clause",
    ),
    (
        "{{ 1 2 }}",
        r#"EXEC: template: :1:3: executing "" at <1>: can't give argument to non-function 1"#,
    ),
    (
        r#"{{ "x" | printf "%s" | 1 }}"#,
        "PARSE: template: :1: non executable command in pipeline stage 3",
    ),
    (
        "{{ nil }}",
        r#"EXEC: template: :1:3: executing "" at <nil>: nil is not a command"#,
    ),
    ("{{ print nil }}", "<nil>"),
    (
        "{{ .a b }}",
        r#"PARSE: template: :1: function "b" not defined"#,
    ),
    (
        "{{ (1).x }}",
        r#"EXEC: template: :1:4: executing "" at <1>: can't evaluate field x in type int"#,
    ),
    ("{{ $.x.y }}", "<no value>"),
    (
        "{{/* c */ }}",
        "PARSE: template: :1: comment ends before closing delimiter",
    ),
    ("{{/* c", "PARSE: template: :1: unclosed comment"),
    (
        r#"{{ "abc"#,
        "PARSE: template: :1: unterminated quoted string",
    ),
    (
        "{{ 'ab' }}",
        "PARSE: template: :1: malformed character constant: 'ab'",
    ),
    ("{{ '' }}", "PARSE: template: :1: invalid syntax"),
    (
        "{{ 1a }}",
        r#"PARSE: template: :1: bad number syntax: "1a""#,
    ),
    (
        "{{ 0x1G }}",
        r#"PARSE: template: :1: bad number syntax: "0x1G""#,
    ),
    (
        "{{ 99999999999999999999 }}",
        r#"PARSE: template: :1: integer overflow: "99999999999999999999""#,
    ),
    (
        "{{ 1e400 }}",
        r#"PARSE: template: :1: illegal number syntax: "1e400""#,
    ),
    (r#"{{ "\q" }}"#, "PARSE: template: :1: invalid syntax"),
    (
        "{{ .x | .y }}",
        r#"EXEC: template: :1:8: executing "" at <.y>: y is not a method but has arguments"#,
    ),
    (
        "{{ 3 | len }}",
        r#"EXEC: template: :1:7: executing "" at <len>: error calling len: len of type int"#,
    ),
    (
        "{{ ) }}",
        r#"PARSE: template: :1: unexpected ")" in command"#,
    ),
    ("{{ ( }}", "PARSE: template: :1: unclosed left paren"),
    ("{{ (1 }}", "PARSE: template: :1: unclosed left paren"),
    ("{{ $x := 1 }}{{ $x := 2 }}{{ $x }}", "2"),
    (
        "{{ if 1 }}{{ $x := 1 }}{{ end }}{{ $x }}",
        r#"PARSE: template: :1: undefined variable "$x""#,
    ),
    (
        "{{ range $i, $v, $w := . }}{{ end }}",
        "PARSE: template: :1: too many declarations in range",
    ),
    (
        "{{ with $x, $y := 1 }}{{ end }}",
        "PARSE: template: :1: too many declarations in with",
    ),
    (
        "{{ range $i, 1 }}{{ end }}",
        "PARSE: template: :1: range can only initialize variables",
    ),
    ("{{ .x.y.z", "PARSE: template: :1: unclosed action"),
    (
        "{{ if .x }}\n\n{{ .y",
        "PARSE: template: :3: unclosed action",
    ),
    ("{{ if .x }}\n\nabc", "PARSE: template: :3: unexpected EOF"),
    (
        "{{ printf }}",
        r#"EXEC: template: :1:3: executing "" at <printf>: wrong number of args for printf: want at least 1 got 0"#,
    ),
    (
        "{{ len 1 2 }}",
        r#"EXEC: template: :1:3: executing "" at <len>: wrong number of args for len: want 1 got 2"#,
    ),
    (
        "{{ and }}",
        r#"EXEC: template: :1:3: executing "" at <and>: wrong number of args for and: want at least 1 got 0"#,
    ),
    (
        "{{ not 1 2 }}",
        r#"EXEC: template: :1:3: executing "" at <not>: wrong number of args for not: want 1 got 2"#,
    ),
    (
        "{{ eq 1 }}",
        r#"EXEC: template: :1:3: executing "" at <eq 1>: error calling eq: missing argument for comparison"#,
    ),
    ("{{ index 1 }}", "1"),
    (
        r#"{{ index "abc" 1 }} {{ index "abc" 3 }}"#,
        r#"EXEC: template: :1:23: executing "" at <index "abc" 3>: error calling index: reflect: string index out of range"#,
    ),
    (
        r#"{{ slice "abcdef" 1 3 }} {{ slice "abc" }} {{ slice "abc" 2 1 }}"#,
        r#"EXEC: template: :1:46: executing "" at <slice "abc" 2 1>: error calling slice: invalid slice index: 2 > 1"#,
    ),
    (
        "{{ print 1.0 2.5 'a' 0x10 0o17 0b101 1_000 017 1e3 .5 -3 +4 0x1p4 }}",
        "1 2.5 97 16 15 5 1000 15 1000 0.5 -3 4 16",
    ),
    (
        r#"{{ printf "%v %T" 1e3 1e3 }}{{ printf " %T" 0x1e3 }}"#,
        "1000 float64 int",
    ),
    (
        r#"{{ true }} {{ false }} {{ "s" }} {{ `raw\n` }}"#,
        r#"true false s raw\n"#,
    ),
    (
        "{{ . }}",
        "map[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]",
    ),
    ("{{- /* c */ -}}  x  {{- /* d */}}  y", "x  y"),
    ("  {{- 1 -}}  \n  {{- 2 }}  {{3 -}}\n", "12  3"),
    ("{{-1}} {{ -1 }} {{- -1 -}}", "-1 -1-1"),
    ("{{ 1 -}}x{{- 2 }}", "1x2"),
    (
        r#"{{ if and 1 0 }}y{{ else }}n{{ end }} {{ and 1 0 }} {{ and 1 2 }} {{ or 0 "" }} {{ or 0 "x" 3 }} {{ not 0 }} {{ not "a" }}"#,
        "n 0 2  x true false",
    ),
    ("{{ and 0 .undefinedFunc }}", "0"),
    (
        "{{ 1 | and 0 }} {{ 0 | and 1 }} {{ 0 | or 1 }} {{ 0 | or 0 }}",
        "0 0 1 0",
    ),
    (
        r#"{{ range "abc" }}{{ . }}{{ end }}"#,
        r#"EXEC: template: :1:9: executing "" at <"abc">: range can't iterate over abc"#,
    ),
    (
        r#"{{ block "b" . }}B{{ . }}{{ end }}"#,
        "Bmap[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]",
    ),
    (
        r#"{{ template "x" }}"#,
        r#"EXEC: template: :1:12: executing "" at <{{template "x"}}>: template "x" not defined"#,
    ),
    (
        r#"{{ define "x" }}[{{ . }}|{{ $ }}]{{ end }}{{ template "x" 5 }}{{ template "x" }}"#,
        "[5|5][<no value>|<no value>]",
    ),
    (
        r#"{{ range $i, $v := "x" }}{{ end }}"#,
        r#"EXEC: template: :1:19: executing "" at <"x">: range can't iterate over x"#,
    ),
    (
        "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $x := 3 }}{{ $x = 4 }}{{ end }}{{ $x }}",
        "2",
    ),
    (
        r#"{{ with 0 }}a{{ else }}b{{ end }}{{ with "q" }}{{ . }}{{ end }}"#,
        "bq",
    ),
    ("{{ if 0 }}a{{ else if 1 }}b{{ else }}c{{ end }}", "b"),
    (
        "{{ continue }}",
        "PARSE: template: :1: {{continue}} outside {{range}}",
    ),
    (
        r#"{{ define "a" }}{{ break }}{{ end }}"#,
        "PARSE: template: :1: {{break}} outside {{range}}",
    ),
    (
        r#"{{ range . }}{{ define "a" }}{{ end }}{{ end }}"#,
        "PARSE: template: :1: unexpected <define> in command",
    ),
    (
        r#"{{ template "a" 1 2 }}"#,
        r#"EXEC: template: :1:12: executing "" at <{{template "a" 1 2}}>: template "a" not defined"#,
    ),
    (
        "{{ template x }}",
        r#"PARSE: template: :1: unexpected "x" in template clause"#,
    ),
    (r#"{{ printf "%s" 1 | len }}"#, "10"),
    (
        "{{ 1 }}{{ else }}",
        "PARSE: template: :1: unexpected {{else}}",
    ),
    (
        "{{ if 1 }}{{ end }}{{ end }}",
        "PARSE: template: :1: unexpected {{end}}",
    ),
    (
        "{{ $ }}",
        "map[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]",
    ),
    (
        "{{ $.a := 1 }}",
        r#"PARSE: template: :1: unexpected ":=" in operand"#,
    ),
    (
        "{{ .a := 1 }}",
        r#"PARSE: template: :1: unexpected ":=" in operand"#,
    ),
    (
        "{{ $x := }}",
        "PARSE: template: :1: missing value for command",
    ),
    (
        "{{ := 1 }}",
        r#"PARSE: template: :1: unexpected ":=" in command"#,
    ),
    (
        "{{ $x :- 1 }}",
        r#"PARSE: template: :1: undefined variable "$x""#,
    ),
    (
        "{{ a.b }}",
        r#"PARSE: template: :1: function "a" not defined"#,
    ),
    (
        "{{ print . .. }}",
        "PARSE: template: :1: unexpected <.> in operand",
    ),
    (
        "{{ .a.1 }}",
        r#"PARSE: template: :1: unexpected ".1" in operand"#,
    ),
    (
        "{{ $x.1 }}",
        r#"PARSE: template: :1: undefined variable "$x""#,
    ),
    (
        "{{ #1 }}",
        "PARSE: template: :1: unexpected \"#\" in command",
    ),
    (
        "{{ ~ }}",
        r#"PARSE: template: :1: unexpected "~" in command"#,
    ),
    (
        "{{ é }}",
        r#"PARSE: template: :1: function "é" not defined"#,
    ),
    (
        r#"{{ "a" "b" }}"#,
        r#"EXEC: template: :1:3: executing "" at <"a">: can't give argument to non-function "a""#,
    ),
    (
        r#"{{ print "a" . | print }}"#,
        "amap[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]",
    ),
    (
        "{{ 1 | print | 2 }}",
        "PARSE: template: :1: non executable command in pipeline stage 3",
    ),
    ("{{ print (1 | print) }}", "1"),
    (
        "{{ index .list 1 }} {{ index .list 5 }}",
        r#"EXEC: template: :1:23: executing "" at <index .list 5>: error calling index: index out of range: 5"#,
    ),
    (
        "{{ index .list -1 }}",
        r#"EXEC: template: :1:3: executing "" at <index .list -1>: error calling index: index out of range: -1"#,
    ),
    (
        r#"{{ index .list "a" }}"#,
        r#"EXEC: template: :1:3: executing "" at <index .list "a">: error calling index: cannot index slice/array with type string"#,
    ),
    (
        "{{ index .m 1 }}",
        r#"EXEC: template: :1:3: executing "" at <index .m 1>: error calling index: value has type int; should be string"#,
    ),
    (
        r#"{{ index .nested "a" 1 "x" }} {{ index .nested "a" 1 "x" "y" }}"#,
        r#"EXEC: template: :1:33: executing "" at <index .nested "a" 1 "x" "y">: error calling index: index of nil pointer"#,
    ),
    (
        "{{ index .list 1.0 }}",
        r#"EXEC: template: :1:3: executing "" at <index .list 1.0>: error calling index: cannot index slice/array with type float64"#,
    ),
    (
        "{{ slice .list 1 }} {{ slice .list 1 2 3 }} {{ slice .list 0 5 }}",
        r#"EXEC: template: :1:47: executing "" at <slice .list 0 5>: error calling slice: index out of range: 5"#,
    ),
    (
        r#"{{ slice "abc" 1 2 3 }}"#,
        r#"EXEC: template: :1:3: executing "" at <slice "abc" 1 2 3>: error calling slice: cannot 3-index slice a string"#,
    ),
    (
        "{{ slice .m 1 }}",
        r#"EXEC: template: :1:3: executing "" at <slice .m 1>: error calling slice: can't slice item of type map[string]interface {}"#,
    ),
    (
        r#"{{ len "héllo" }} {{ len .list }} {{ len .m }} {{ len 3 }}"#,
        r#"EXEC: template: :1:51: executing "" at <len 3>: error calling len: len of type int"#,
    ),
    (
        "{{ range $k, $v := .m }}{{ $k }}={{ $v }};{{ end }}",
        "a=1;b=2;",
    ),
    (
        "{{ range .m }}{{ . }}{{ end }} {{ range $v := .list }}{{ $v }}{{ end }}",
        "12 123",
    ),
    (
        "{{ range .list }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ . }}{{ if eq . 2 }}{{ break }}{{ end }}{{ end }}",
        "13",
    ),
    (
        "{{ range .list }}{{ if eq . 2 }}{{ break }}{{ end }}{{ . }}{{ end }}",
        "1",
    ),
    (
        "{{ range $i, $v := .list }}{{ $i }}{{ end }}{{ $i }}",
        r#"PARSE: template: :1: undefined variable "$i""#,
    ),
    (
        "{{ .list }} {{ .m }} {{ .mixed }} {{ .nested }} {{ .f }} {{ .neg }}",
        "[1 2 3] map[a:1 b:2] [1 a <nil> true] map[a:[1 map[x:<nil>]] b:s] 2.5 -0",
    ),
    ("{{ .a.b.c }}", "<no value>"),
    (
        "{{ range .nul }}x{{ else }}e{{ end }}{{ range .missing }}x{{ else }}e{{ end }}",
        "ee",
    ),
    ("{{ with .missing }}x{{ else }}e{{ end }}", "e"),
    (
        r#"{{ template "nope" }}"#,
        r#"EXEC: template: :1:12: executing "" at <{{template "nope"}}>: template "nope" not defined"#,
    ),
];

/// Data for `go_values` cases.
const GO_VALUES_DATA: &str = r#"{"big": 12345678901234567890, "emptylist": [], "emptym": {}, "f": 2.5, "f1": 0.1, "f2": 1000000.0, "i64max": 9223372036854775807, "i64min": -9223372036854775808, "list": [1, 2, 3], "m": {"a": 1, "b": 2}, "mixed": [1, "a", null, true], "neg": -0.0, "nested": {"a": [1, {"x": null}], "b": "s"}, "nul": null, "s": "str"}"#;

/// Expected outputs produced by Go's text/template (go1.19) for these templates.
const GO_VALUES_CASES: &[(&str, &str)] = &[
    (
        r#"{{ printf "%v|%v|%v|%v|%v|%v|%v|%v" 1e20 1e21 123456.7 1234567.8 0.000012345 1e-4 100.0 3.0e-300 }}"#,
        "1e+20|1e+21|123456.7|1.2345678e+06|1.2345e-05|0.0001|100|3e-300",
    ),
    (
        r#"{{ printf "%g|%g|%.2g|%.10g|%#g|%#.3g|%G" 100000.0 1000000.0 1234.0 1.0 1.0 1.0 1e-10 }}"#,
        "100000|1e+06|1.2e+03|1|1.00000|1.00|1E-10",
    ),
    (
        r#"{{ printf "%e|%.0e|%#.0e|%.0f|%#.0f|%f|%F" 0.0 5.5 5.5 2.5 2.5 1e20 1.5 }}"#,
        "0.000000e+00|6e+00|6.e+00|2|2.|100000000000000000000.000000|1.500000",
    ),
    (
        r#"{{ printf "%f %f %f" .inf .ninf .nan }}"#,
        "%!f(<nil>) %!f(<nil>) %!f(<nil>)",
    ),
    (
        r#"{{ printf "%5.1f|%-7.2e|%+g|% g|%010.3f|%-010.3f|%+010.3f" 3.14159 31415.9 1.5 1.5 -3.14159 3.14159 3.14159 }}"#,
        "  3.1|3.14e+04|+1.5| 1.5|-00003.142|3.142     |+00003.142",
    ),
    (
        r#"{{ printf "%d|%5d|%-5d|%05d|%.3d|%8.3d|%+d|% d|%x|%X|%#x|%o|%b|%c|%U" -42 -42 -42 -42 7 7 0 -3 255 255 -255 8 -5 9731 9731 }}"#,
        "-42|  -42|-42  |-0042|007|     007|+0|-3|ff|FF|-0xff|10|-101|☃|U+2603",
    ),
    (r#"{{ printf "%.0d|%5.0d|%05.0d" 0 0 0 }}"#, "|     |     "),
    (
        r#"{{ printf "%5s|%-5s|%.2s|%5.1s|%05s|%-05s" "é" "é" "éèà" "éèà" "é" "é" }}"#,
        "    é|é    |éè|    é|0000é|é    ",
    ),
    (
        r#"{{ printf "%10v|%-10v|%3v" .list .list "abcdef" }}"#,
        "[         1          2          3]|[1          2          3         ]|abcdef",
    ),
    (
        r#"{{ printf "%5d" .list }} {{ printf "%x" .list }} {{ printf "%q" .mixed }} {{ printf "%s" .mixed }}"#,
        r#"[    1     2     3] [1 2 3] ['\x01' "a" <nil> %!q(bool=true)] [%!s(int=1) a <nil> %!s(bool=true)]"#,
    ),
    (
        r#"{{ printf "%d" 3.0 }} {{ printf "%f" 3 }} {{ printf "%s" 3.5 }} {{ printf "%z" 1 }} {{ printf "%!" 1 }}"#,
        "%!d(float64=3) %!f(int=3) %!s(float64=3.5) %!z(int=1) %!!(int=1)",
    ),
    (
        r#"{{ printf "%" 1 }} {{ printf "%-" 1 }} {{ printf "%5" 1 }} {{ printf "abc%" }}"#,
        "%!(NOVERB)%!(EXTRA int=1) %!(NOVERB)%!(EXTRA int=1) %!(NOVERB)%!(EXTRA int=1) abc%!(NOVERB)",
    ),
    (
        r#"{{ printf "%[1]d %d" 1 2 }} {{ printf "%[0]d" 1 }} {{ printf "%[x]d" 1 }} {{ printf "%[1]*d" 3 4 }} {{ printf "%[2]*[1]d" 12 5 }}"#,
        "1 2 %!d(BADINDEX) %!d(BADINDEX)   4    12",
    ),
    (
        r#"{{ printf "%*d" "a" 1 }} {{ printf "%.*d" -1 5 }} {{ printf "%*d" -4 5 }}|"#,
        "%!(BADWIDTH)1 %!(BADPREC)5 5   |",
    ),
    (
        r#"{{ printf "%-+5d|%+-5d|%0-5d|%-05d" 1 1 1 1 }}"#,
        "+1   |+1   |1    |1    ",
    ),
    (r#"{{ printf "%%|%5%|%-5%" }}"#, "%|%|%"),
    (r#"{{ printf "%v %d" true }}"#, "true %!d(MISSING)"),
    (
        r#"{{ printf "%x|%X|% X|%#X|% #x|%.1x|%10x|%-10x|" "abc" "abc" "abc" "abc" "abc" "abc" "abc" "abc" }}"#,
        "616263|616263|61 62 63|0X616263|0x61 0x62 0x63|61|    616263|616263    |",
    ),
    (r#"{{ printf "%x|%5x" "" "" }}|"#, "|     |"),
    (
        r#"{{ printf "%c|%c|%q|%+q|%#q|%#U" -1 1114112 10 233 39 10 }}"#,
        r#"�|�|'\n'|'\u00e9'|'\''|U+000A"#,
    ),
    (
        r#"{{ printf "%v" 12345678901234567890 }}"#,
        r#"EXEC: template: :1:15: executing "" at <12345678901234567890>: 12345678901234567890 overflows int"#,
    ),
    (
        r#"{{ printf "%d %v %x" .big .big .big }} {{ printf "%T" .big }}"#,
        "12345678901234567890 12345678901234567890 ab54a98ceb1f0ad2 uint64",
    ),
    (
        "{{ .big }} {{ eq .big 12345678901234567890 }}",
        r#"EXEC: template: :1:22: executing "" at <12345678901234567890>: 12345678901234567890 overflows int"#,
    ),
    (
        r#"{{ printf "%v %v" .i64min .i64max }}"#,
        "-9223372036854775808 9223372036854775807",
    ),
    (
        r#"{{ printf "%t" 1 }} {{ printf "%t" .nul }} {{ printf "%v|%5v|%-5v|" .nul .nul .nul }}"#,
        "%!t(int=1) %!t(<nil>) <nil>|<nil>|<nil>|",
    ),
    (
        r#"{{ printf "%6.2v|%.3v|%.3v" 3.14159 "abcdef" 3.14159 }}"#,
        "   3.1|abc|3.14",
    ),
    (
        r#"{{ printf "%#v|%#v|%#v|%#v|%#v" 1 "a\"b" true .list 1e21 }}"#,
        r#"1|"a\"b"|true|[]interface {}{1, 2, 3}|1e+21"#,
    ),
    (
        r#"{{ printf "%#v|%#v|%#v" 1.5 100000000.0 0.000001 }}"#,
        "1.5|1e+08|1e-06",
    ),
    (r#"{{ printf "%+v|%+d|%+s" 5 5 "x" }}"#, "5|+5|x"),
    (r#"{{ printf "%#o|%#x|%#b|%#O" 0 0 0 0 }}"#, "0|0x0|0b0|0o0"),
    (
        r#"{{ printf "% d|%+ d|% 5d|%0 5d" 5 5 5 5 }}"#,
        " 5|+5|    5| 0005",
    ),
    (
        "{{ print 1.0 }} {{ print -0.0 }} {{ print 1e100 }} {{ print 5e-324 }} {{ print 1.7976931348623157e308 }}",
        "1 -0 1e+100 5e-324 1.7976931348623157e+308",
    ),
    (
        "{{ print 0.1 0.2 0.30000000000000004 }}",
        "0.1 0.2 0.30000000000000004",
    ),
    (
        "{{ print 1e6 999999.0 1e-4 0.00001 }}",
        "1e+06 999999 0.0001 1e-05",
    ),
    (
        r#"{{ print "a" 1 true }} {{ print 1 true }} {{ print true false }} {{ print .list .list }} {{ print "x" .nul }} {{ print .nul .nul }}"#,
        "a1 true 1 true true false [1 2 3] [1 2 3] x<nil> <nil> <nil>",
    ),
    (r#"{{ println }}{{ println "a" "b" }}"#, "\na b\n"),
    (
        r#"{{ html .nul }} {{ html .list }} {{ js 1 "a" }} {{ html }}|{{ urlquery }}|"#,
        "&lt;no value&gt; [1 2 3] 1a ||",
    ),
    (
        r#"{{ js "\u0001\u001f\u007f\u0080" }}"#,
        "\\u0001\\u001F\u{7f}\\u0080",
    ),
    (r#"{{ html "\u0000x" }}"#, "�x"),
    (r#"{{ urlquery "\u0000 +%" }}"#, "%00+%2B%25"),
    (
        "{{ lt .big 1 }} {{ lt -1 .big }} {{ gt .big 1 }} {{ le .nul 1 }}",
        r#"EXEC: template: :1:52: executing "" at <le .nul 1>: error calling le: invalid type for comparison"#,
    ),
    (
        "{{ lt true true }}",
        r#"EXEC: template: :1:3: executing "" at <lt true true>: error calling lt: invalid type for comparison"#,
    ),
    (
        "{{ lt .list .list }}",
        r#"EXEC: template: :1:3: executing "" at <lt .list .list>: error calling lt: invalid type for comparison"#,
    ),
    (
        "{{ not .nul }} {{ not .missing }} {{ not .list }} {{ not .emptylist }} {{ not .emptym }} {{ not 0.0 }}",
        "true true false true true true",
    ),
    (
        r#"{{ if .emptylist }}t{{ else }}f{{ end }}{{ if .emptym }}t{{ else }}f{{ end }}{{ if "" }}t{{ else }}f{{ end }}{{ if 0.0 }}t{{ else }}f{{ end }}{{ if .m }}t{{ end }}"#,
        "fffft",
    ),
    (
        "{{ and .list .nul }} {{ or .nul .missing }} {{ and .nul 1 }}",
        "<no value> <no value> <no value>",
    ),
    (
        "{{ print (and .nul 1) }} {{ print (or .missing .missing) }}",
        "<nil> <nil>",
    ),
    (
        r#"{{ len .emptylist }} {{ index .m "a" }} {{ index .nested "a" 0 }}"#,
        "0 1 1",
    ),
    (
        r#"{{ (index .nested "a").x }}"#,
        r#"EXEC: template: :1:18: executing "" at <"a">: can't evaluate field x in type []interface {}"#,
    ),
    (
        r#"{{ (index .nested "b").x }}"#,
        r#"EXEC: template: :1:18: executing "" at <"b">: can't evaluate field x in type string"#,
    ),
    (
        r#"{{ (.nested).b }} {{ (.missing).b }} {{ (index .m "zz").q }}"#,
        "s <no value> <no value>",
    ),
    (
        "{{ $x := .nested }}{{ $x.a }} {{ $.nested.b }} {{ $x = 5 }}{{ $x }}",
        "[1 map[x:<nil>]] s 5",
    ),
    ("{{ $x := 1 }}{{ $y := 2 }}{{ $x }}{{ $y }}", "12"),
    (r#"{{ $x := print "a" | print "b" }}{{ $x }}"#, "ba"),
    (
        "{{ range $i, $c := .list }}{{ $i }}:{{ $c }}{{ end }}",
        "0:11:22:3",
    ),
    ("{{ range $i := .list }}{{ $i }}{{ end }}", "123"),
    (
        "{{ range $k, $v := .m }}{{ $k }}{{ $v }}{{ else }}e{{ end }}",
        "a1b2",
    ),
    (
        "{{ range .emptym }}x{{ else }}e{{ end }}{{ range .emptylist }}x{{ else }}e{{ end }}",
        "ee",
    ),
    (
        "{{ range .list }}{{ $ }}{{ end }}",
        "map[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]map[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]map[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]",
    ),
    (
        "{{ range . }}{{ . }}{{ end }}",
        "12345678901234567890[]map[]2.50.11e+069223372036854775807-9223372036854775808[1 2 3]map[a:1 b:2][1 a <nil> true]-0map[a:[1 map[x:<nil>]] b:s]<no value>str",
    ),
    ("{{ with .nested }}{{ .b }}{{ $.s }}{{ end }}", "sstr"),
    ("{{ with $x := .s }}{{ $x }}{{ . }}{{ end }}", "strstr"),
    ("{{ if $x := .s }}{{ $x }}{{ end }}", "str"),
    (
        r#"{{ define "t1" }}T1{{ . }}{{ end }}{{ template "t1" .s }}{{ template "t1" "lit" }}"#,
        "T1strT1lit",
    ),
    (
        r#"{{ block "b" .s }}[{{ . }}]{{ end }}{{ define "b" }}({{ . }}){{ end }}"#,
        r#"PARSE: template: :1: template: multiple definition of template "b""#,
    ),
    (
        r#"{{ define "b" }}({{ . }}){{ end }}{{ block "b" .s }}[{{ . }}]{{ end }}"#,
        r#"PARSE: template: :1: template: multiple definition of template "b""#,
    ),
    (r#"{{ define "" }}X{{ end }}"#, "X"),
    (r#"  {{ define "" }}X{{ end }}  "#, "X"),
    (
        r#"a{{ define "" }}X{{ end }}"#,
        r#"PARSE: template: :1: template: multiple definition of template """#,
    ),
    (
        r#"{{ define "a" }}{{ end }}{{ define "a" }}Y{{ end }}{{ template "a" }}"#,
        "Y",
    ),
    (
        r#"{{ define "a" }}Y{{ end }}{{ define "a" }} {{ end }}{{ template "a" }}"#,
        "Y",
    ),
    (
        r#"{{ define "a" }}{{ $ }}{{ end }}{{ template "a" 1 }}"#,
        "1",
    ),
    (
        r#"{{ define "a" }}{{ $x }}{{ end }}"#,
        r#"PARSE: template: :1: undefined variable "$x""#,
    ),
    (
        r#"{{ $x := 1 }}{{ define "a" }}{{ $x }}{{ end }}"#,
        r#"PARSE: template: :1: undefined variable "$x""#,
    ),
    (
        r#"{{ template "a" . }}{{ define "a" }}{{ range . }}{{ break }}{{ end }}ok{{ end }}"#,
        "ok",
    ),
    (
        r#"{{ define "a" -}}  x  {{- end }}[{{ template "a" }}]"#,
        "[x]",
    ),
    ("{{ if 1 -}}\n   a\n{{- end }}", "a"),
    ("{{ range .list -}} {{ . }} {{- end }}", "123"),
    (r#"x {{- "y" -}} z"#, "xyz"),
    (r#"x {{-  "y"  -}} z"#, "xyz"),
    ("x {{- \t\"y\"\t-}}\n z", "xyz"),
    (
        r#"x {{-"y"}}"#,
        r#"PARSE: template: :1: illegal number syntax: "-""#,
    ),
    (
        r#"x {{"y"-}} z"#,
        r#"PARSE: template: :1: unexpected "-" in operand"#,
    ),
    (r#"{{"y" -}}"#, "y"),
    ("{{ print 1 -}}", "1"),
    (
        "{{ print 1 - }}",
        r#"PARSE: template: :1: illegal number syntax: "-""#,
    ),
    ("{{/* a */}}b{{- /* c */ -}} d", "bd"),
    ("{{/*a*/}}b", "b"),
    (
        "{{ /* a */ }}",
        r#"PARSE: template: :1: unexpected "/" in command"#,
    ),
    ("{{- /* a */}} x", " x"),
    ("{{/* a\n b */}}x", "x"),
    ("a\r\n{{- \"b\" }}", "ab"),
    (
        r#"{{ "a\tb" }}|{{ `a\tb` }}|{{ "\u00e9\x41\101\'" }}"#,
        "PARSE: template: :1: invalid syntax",
    ),
    (
        r#"{{ '\n' }} {{ '\'' }} {{ 'é' }} {{ '\x41' }} {{ '\u00e9' }}"#,
        "10 39 233 65 233",
    ),
    (r#"{{ "\'" }}"#, "PARSE: template: :1: invalid syntax"),
    (r#"{{ '"' }}"#, "34"),
    (
        "{{ 0x_1F }} {{ 0b_1 }} {{ 1__0 }}",
        r#"PARSE: template: :1: illegal number syntax: "1__0""#,
    ),
    (
        "{{ 1_ }}",
        r#"PARSE: template: :1: illegal number syntax: "1_""#,
    ),
    (
        "{{ 0.5e }}",
        r#"PARSE: template: :1: illegal number syntax: "0.5e""#,
    ),
    ("{{ .5 }} {{ 5. }} {{ -.5 }} {{ +5 }}", "0.5 5 -0.5 5"),
    ("{{ 08 }}", r#"PARSE: template: :1: integer overflow: "08""#),
    (
        "{{ 0x }}",
        r#"PARSE: template: :1: illegal number syntax: "0x""#,
    ),
    (
        "{{ - }}",
        r#"PARSE: template: :1: illegal number syntax: "-""#,
    ),
    (
        "{{ -a }}",
        r#"PARSE: template: :1: bad number syntax: "-a""#,
    ),
    (
        "{{ 9223372036854775807 }} {{ -9223372036854775808 }}",
        "9223372036854775807 -9223372036854775808",
    ),
    (
        "{{ 9223372036854775808 }}",
        r#"EXEC: template: :1:3: executing "" at <9223372036854775808>: 9223372036854775808 overflows int"#,
    ),
    (
        "{{ print 9223372036854775808 }}",
        r#"EXEC: template: :1:9: executing "" at <9223372036854775808>: 9223372036854775808 overflows int"#,
    ),
    (
        "{{ 18446744073709551616 }}",
        r#"PARSE: template: :1: integer overflow: "18446744073709551616""#,
    ),
    ("{{ 1e19 }} {{ print 1e19 }}", "1e+19 1e+19"),
    (r#"{{ "a" | printf "%s-%s" "b" }}"#, "b-a"),
    (r#"{{ .s | printf "%s" | printf "[%s]" }}"#, "[str]"),
    (
        "{{ .list | len }} {{ .list | index 1 }}",
        r#"EXEC: template: :1:29: executing "" at <index 1>: error calling index: can't index item of type int"#,
    ),
    ("{{ 1 | index .list }}", "2"),
    (r#"{{ "x" | not }}"#, "false"),
    ("{{ print | print }}", ""),
    ("{{ true | print }}", "true"),
    ("{{ with .s }}{{ . | len }}{{ end }}", "3"),
    (
        "{{ .s | .x }}",
        r#"EXEC: template: :1:8: executing "" at <.x>: x is not a method but has arguments"#,
    ),
    (
        "{{ $ | print }}",
        "map[big:12345678901234567890 emptylist:[] emptym:map[] f:2.5 f1:0.1 f2:1e+06 i64max:9223372036854775807 i64min:-9223372036854775808 list:[1 2 3] m:map[a:1 b:2] mixed:[1 a <nil> true] neg:-0 nested:map[a:[1 map[x:<nil>]] b:s] nul:<nil> s:str]",
    ),
];

/// Data for `go_config` cases.
const GO_CONFIG_DATA: &str = r#"{"Facts": {"architecture": "x86_64", "cpus": 4, "mem_gb": 15.6, "os": {"family": "debian", "release": "12"}}, "Hostname": "web-01", "Vars": {"big": 1e+21, "db": {"host": "db.local", "port": 5432, "user": null}, "empty": [], "env": "prod", "flag": true, "hosts": [{"ip": "10.0.0.1", "name": "h1", "tags": ["x", "y"]}, {"ip": "10.0.0.2", "name": "h2", "tags": []}], "list": [3, 1, 2], "m": {"k": "v", "z": 1}, "mixed": [1, "two", 3.5, true, null, {"k": "v"}, [1, 2]], "name": "web", "neg": -7, "nested": {"a": {"b": {"c": "deep"}}}, "off": false, "pi": 3.14159, "port": 8080, "ratio": 0.5, "servers": ["a", "b", "c"], "str_num": "42", "weights": {"a": 1, "b": 2.5, "c": -3}, "zero": 0}}"#;

/// Expected outputs produced by Go's text/template (go1.19) for these templates.
const GO_CONFIG_CASES: &[(&str, &str)] = &[
    (
        "listen {{ .Vars.port }}; # {{ .Hostname }} {{ .Facts.architecture }}",
        "listen 8080; # web-01 x86_64",
    ),
    ("{{ .Vars.missing }}", "<no value>"),
    ("{{ .Vars.missing.x }}", "<no value>"),
    ("{{ if .Vars.missing }}yes{{ else }}no{{ end }}", "no"),
    (
        "{{ range $i, $s := .Vars.servers }}{{ if $i }},{{ end }}{{ $s }}{{ end }}",
        "a,b,c",
    ),
    ("{{ range .Vars.empty }}x{{ else }}none{{ end }}", "none"),
    (
        r#"{{- if eq .Vars.env "prod" -}}
 P 
{{- end -}}"#,
        "P",
    ),
    (
        r#"{{ printf "%05d|%-4s|%.2f|%q" 42 "ab" 3.14159 "x" }}"#,
        r#"00042|ab  |3.14|"x""#,
    ),
    (
        r#"{{ len .Vars.list }} {{ index .Vars.m "k" }} {{ .Vars.port | printf "%d" }}"#,
        "3 v 8080",
    ),
    (
        "{{ with .Vars.db }}{{ .host }}:{{ .port }}{{ end }}",
        "db.local:5432",
    ),
    (
        "{{ with .Vars.nodb }}{{ .host }}{{ else }}no db{{ end }}",
        "no db",
    ),
    (
        r#"{{ define "srv" }}server {{ .name }} {{ .ip }};{{ end }}{{ range .Vars.hosts }}{{ template "srv" . }}{{ end }}"#,
        "server h1 10.0.0.1;server h2 10.0.0.2;",
    ),
    ("a{{/* comment */}}b {{- /* trimmed */ -}} c", "abc"),
    (
        r#"{{ and 1 0 }} {{ or 0 "x" }} {{ not true }} {{ and 1 2 3 }} {{ or 0 false "" }}"#,
        "0 x false 3 ",
    ),
    (
        "{{ .Vars.m }} {{ .Vars.list }} {{ .Vars.ratio }} {{ .Vars.big }} {{ .Vars.weights }}",
        "map[k:v z:1] [3 1 2] 0.5 1e+21 map[a:1 b:2.5 c:-3]",
    ),
    ("{{ .Vars.mixed }}", "[1 two 3.5 true <nil> map[k:v] [1 2]]"),
    (
        "{{ .Facts }}",
        "map[architecture:x86_64 cpus:4 mem_gb:15.6 os:map[family:debian release:12]]",
    ),
    (
        r#"{{ .Facts.mem_gb }} {{ printf "%.1f" .Facts.mem_gb }} {{ printf "%v" .Facts.cpus }} {{ printf "%d" .Facts.cpus }}"#,
        "15.6 15.6 4 4",
    ),
    (
        "{{ .Vars.db.user }}|{{ print .Vars.db.user }}|{{ if .Vars.db.user }}u{{ else }}nouser{{ end }}",
        "<no value>|<nil>|nouser",
    ),
    (
        "{{ .Vars.db.user.name }}",
        r#"EXEC: template: :1:8: executing "" at <.Vars.db.user.name>: nil pointer evaluating interface {}.name"#,
    ),
    (
        "{{ $.Hostname }} {{ $h := .Hostname }}{{ $h }} {{ with .Vars }}{{ $.Hostname }}/{{ .name }}{{ end }}",
        "web-01 web-01 web-01/web",
    ),
    (
        "{{ range $k, $v := .Vars.weights }}{{ $k }}={{ $v }} {{ end }}",
        "a=1 b=2.5 c=-3 ",
    ),
    (
        "{{ range .Vars.hosts }}{{ .name }}:{{ range .tags }}{{ . }}{{ else }}-{{ end }};{{ end }}",
        "h1:xy;h2:-;",
    ),
    (
        "{{ range $i, $h := .Vars.hosts }}{{ $i }}{{ $h.name }}{{ $.Hostname }}{{ end }}",
        "0h1web-011h2web-01",
    ),
    (
        r#"{{ .Vars.nested.a.b.c }} {{ (index .Vars.nested "a").b.c }} {{ index .Vars.nested "a" "b" "c" }}"#,
        "deep deep deep",
    ),
    (
        "{{ $x := 0 }}{{ range .Vars.list }}{{ $x = . }}{{ end }}{{ $x }}",
        "2",
    ),
    (
        "{{ range $i, $e := .Vars.list }}{{ if gt $e 1 }}{{ $e }}{{ end }}{{ end }}",
        "32",
    ),
    ("{{ if and .Vars.flag (not .Vars.off) }}ok{{ end }}", "ok"),
    (
        "{{ if or .Vars.off .Vars.missing }}t{{ else if .Vars.flag }}f{{ else }}e{{ end }}",
        "f",
    ),
    (
        "{{ if lt .Vars.port 1024 }}priv{{ else }}unpriv{{ end }} {{ if ge .Facts.cpus 4 }}big{{ end }}",
        "unpriv big",
    ),
    (
        r#"{{ eq .Vars.env "dev" "prod" }} {{ ne .Vars.port 80 }} {{ eq .Vars.zero 0 }}"#,
        "true true true",
    ),
    (
        "{{ slice .Vars.servers 1 }} {{ slice .Vars.name 1 2 }} {{ slice .Vars.servers }}",
        "[b c] e [a b c]",
    ),
    (
        "{{ print .Vars.port .Vars.name 1 2 }} {{ println .Vars.port }}",
        "8080web1 2 8080\n",
    ),
    (
        r#"{{ .Vars.name | printf "%s-%s" "pre" }} {{ .Vars.servers | len }}"#,
        "pre-web 3",
    ),
    (
        r#"{{ html "<b>" }} {{ js "it's" }} {{ urlquery "a b" }} {{ .Vars.name | html }}"#,
        r#"&lt;b&gt; it\'s a+b web"#,
    ),
    (
        r#"{{ printf "%T %T %T %T %T" .Vars.port .Vars.ratio .Vars.name .Vars.list .Vars.m }}"#,
        "int float64 string []interface {} map[string]interface {}",
    ),
    (
        r#"{{ printf "%x %X %o %b %e %g" .Vars.port .Vars.port .Vars.port .Vars.port .Vars.pi .Vars.pi }}"#,
        "1f90 1F90 17620 1111110010000 3.141590e+00 3.14159",
    ),
    (
        r#"{{ printf "%v %+v %#v" .Vars.db .Vars.list .Vars.name }}"#,
        r#"map[host:db.local port:5432 user:<nil>] [3 1 2] "web""#,
    ),
    (
        r#"{{ printf "%8.3f|%-8d|%08.2f|%+d" .Vars.pi .Vars.neg .Vars.pi .Vars.neg }}"#,
        "   3.142|-7      |00003.14|-7",
    ),
    (
        r#"{{ printf "%s" .Vars.str_num }} {{ printf "%d" .Vars.str_num }}"#,
        "42 %!d(string=42)",
    ),
    (
        r#"{{ printf "%q" .Vars.servers }} {{ printf "%s" .Vars.m }}"#,
        r#"["a" "b" "c"] map[k:v z:%!s(int=1)]"#,
    ),
    (
        r#"{{ block "footer" . }}default footer {{ .Hostname }}{{ end }}"#,
        "default footer web-01",
    ),
    (
        r#"{{ define "a" }}A({{ . }}){{ template "b" . }}{{ end }}{{ define "b" }}B({{ . }}){{ end }}{{ template "a" .Vars.name }}"#,
        "A(web)B(web)",
    ),
    (
        r#"{{ template "missing" }}"#,
        r#"EXEC: template: :1:12: executing "" at <{{template "missing"}}>: template "missing" not defined"#,
    ),
    (
        "{{ range .Vars.list }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}|{{ range .Vars.list }}{{ if eq . 1 }}{{ break }}{{ end }}{{ . }}{{ end }}",
        "32|3",
    ),
    (
        "{{ index .Vars.list 10 }}",
        r#"EXEC: template: :1:3: executing "" at <index .Vars.list 10>: error calling index: index out of range: 10"#,
    ),
    (
        "{{ index .Vars.list 3 }}",
        r#"EXEC: template: :1:3: executing "" at <index .Vars.list 3>: error calling index: reflect: slice index out of range"#,
    ),
    (
        r#"{{ index .Vars.m "nokey" }} {{ index .Vars.m "nokey" | print }}"#,
        "<no value> <nil>",
    ),
    (
        "{{ len .Vars.port }}",
        r#"EXEC: template: :1:3: executing "" at <len .Vars.port>: error calling len: len of type int"#,
    ),
    (
        "{{ eq .Vars.list .Vars.m }}",
        r#"EXEC: template: :1:3: executing "" at <eq .Vars.list .Vars.m>: error calling eq: non-comparable types [%!s(int=3) %!s(int=1) %!s(int=2)]: []interface {}, map[string]interface {}: map[k:v z:1]"#,
    ),
    (
        "{{ eq .Vars.m .Vars.m }}",
        r#"EXEC: template: :1:3: executing "" at <eq .Vars.m .Vars.m>: error calling eq: non-comparable type map[k:v z:%!s(int=1)]: map[string]interface {}"#,
    ),
    (
        "{{ eq .Vars.missing .Vars.list }} {{ eq .Vars.db.user .Vars.missing }}",
        "false true",
    ),
    (
        "{{ .Vars.db.user.x }}",
        r#"EXEC: template: :1:8: executing "" at <.Vars.db.user.x>: nil pointer evaluating interface {}.x"#,
    ),
    ("line1\nline2 {{ .Vars.port\n}}", "line1\nline2 8080"),
    (
        "{{ .Vars.port }}\n{{ if true }}\n  x\n{{ end }}\n",
        "8080\n\n  x\n\n",
    ),
    (
        "{{ range .Vars.servers }}\n- {{ . }}\n{{ end }}",
        "\n- a\n\n- b\n\n- c\n",
    ),
    (
        "{{- range .Vars.servers }}\n- {{ . }}\n{{- end }}\n",
        "\n- a\n- b\n- c\n",
    ),
    (r#"{{ "a" }}{{/* x */}}{{ "b" }}"#, "ab"),
    (
        "{{ $ }}",
        "map[Facts:map[architecture:x86_64 cpus:4 mem_gb:15.6 os:map[family:debian release:12]] Hostname:web-01 Vars:map[big:1e+21 db:map[host:db.local port:5432 user:<nil>] empty:[] env:prod flag:true hosts:[map[ip:10.0.0.1 name:h1 tags:[x y]] map[ip:10.0.0.2 name:h2 tags:[]]] list:[3 1 2] m:map[k:v z:1] mixed:[1 two 3.5 true <nil> map[k:v] [1 2]] name:web neg:-7 nested:map[a:map[b:map[c:deep]]] off:false pi:3.14159 port:8080 ratio:0.5 servers:[a b c] str_num:42 weights:map[a:1 b:2.5 c:-3] zero:0]]",
    ),
    (
        "{{ $x := .Vars }}{{ $x.port }}{{ $x.missing }}{{ $x.missing.deep }}",
        "8080<no value><no value>",
    ),
    (
        "{{ with $x := .Vars.db }}{{ $x.host }}{{ end }}",
        "db.local",
    ),
    ("{{ range $v := .Vars.servers }}{{ $v }}{{ end }}", "abc"),
    (
        "{{ range $k, $v := .Vars.missing }}x{{ else }}e{{ end }}",
        "e",
    ),
    (
        r#"{{ if .Vars.empty }}t{{ else }}f{{ end }}{{ if .Vars.zero }}t{{ else }}f{{ end }}{{ if .Vars.m }}t{{ end }}{{ if "0" }}t{{ end }}"#,
        "fftt",
    ),
    (
        r#"{{ print nil }} {{ print .Vars.missing "x" }} {{ printf "%v|%s|%d" .Vars.missing .Vars.missing .Vars.missing }}"#,
        "<nil> <nil>x <nil>|%!s(<nil>)|%!d(<nil>)",
    ),
    (r#"{{ printf "%v" }}"#, "%!v(MISSING)"),
    ("{{ printf .Vars.name }}", "web"),
    (
        "{{ printf .Vars.port }}",
        r#"EXEC: template: :1:15: executing "" at <.Vars.port>: wrong type for value; expected string; got int"#,
    ),
    (
        "{{ printf .Vars.missing }}",
        r#"EXEC: template: :1:15: executing "" at <.Vars.missing>: invalid value; expected string"#,
    ),
    (
        "{{ printf nil }}",
        r#"EXEC: template: :1:10: executing "" at <nil>: cannot assign nil to string"#,
    ),
    (
        "{{ printf 1 }}",
        r#"EXEC: template: :1:10: executing "" at <1>: expected string; found 1"#,
    ),
    (r#"{{ index .Vars.hosts 0 "tags" 1 }}"#, "y"),
    ("{{ (index .Vars.hosts 1).name }}", "h2"),
    ("{{ len (index .Vars.hosts 0).tags }}", "2"),
    (
        "{{ $n := len .Vars.servers }}{{ if eq $n 3 }}three{{ end }}",
        "three",
    ),
    (
        "{{ range $i, $s := .Vars.servers }}{{ if eq (len $.Vars.servers) (print $i | len) }}{{ end }}{{ end }}ok",
        "ok",
    ),
    ("{{ .Vars.port | print | len }}", "4"),
    (r#"{{ "x" | print "y" | print "z" }}"#, "zyx"),
    (r#"{{ 3 | printf "%d-%d" 1 }}"#, "1-3"),
    (
        "{{ .Vars.pi }} {{ .Vars.neg }} {{ -0.0 }} {{ 1e6 }} {{ 123456789 }} {{ 1.5e-7 }}",
        "3.14159 -7 -0 1e+06 123456789 1.5e-07",
    ),
    (
        r#"{{ 0x10 }} {{ 0o17 }} {{ 0b11 }} {{ 1_000_000 }} {{ 'a' }} {{ '\n' }} {{ 1.0 }} {{ 2.50 }}"#,
        "16 15 3 1000000 97 10 1 2.5",
    ),
    (
        r#"{{ "tab\there" }} {{ `raw\t` }} {{ "\u00e9" }} {{ "\x41" }}"#,
        "tab\there raw\\t é A",
    ),
    (
        "{{ true }} {{ false }} {{ and true false }} {{ or false true }}",
        "true false false true",
    ),
    (
        "{{ not .Vars.missing }} {{ not .Vars.empty }} {{ not .Vars.servers }}",
        "true true false",
    ),
    (
        r#"{{ if not (eq .Vars.env "dev") }}notdev{{ end }}"#,
        "notdev",
    ),
    (
        "{{ urlquery .Vars.m }} {{ js .Vars.list }} {{ html .Vars.missing }}",
        "map%5Bk%3Av+z%3A1%5D [3 1 2] &lt;no value&gt;",
    ),
    (
        "{{ .Vars.hosts }}",
        "[map[ip:10.0.0.1 name:h1 tags:[x y]] map[ip:10.0.0.2 name:h2 tags:[]]]",
    ),
    (
        r#"{{ printf "%s" .Vars.hosts }}"#,
        "[map[ip:10.0.0.1 name:h1 tags:[x y]] map[ip:10.0.0.2 name:h2 tags:[]]]",
    ),
    (
        r#"{{ printf "%v" .Vars.mixed }} {{ printf "%d" .Vars.mixed }}"#,
        "[1 two 3.5 true <nil> map[k:v] [1 2]] [1 %!d(string=two) %!d(float64=3.5) %!d(bool=true) <nil> map[%!d(string=k):%!d(string=v)] [1 2]]",
    ),
    (r#"{{ printf "%6.2f%%" .Vars.ratio }}"#, "  0.50%"),
    (
        r#"{{ printf "%-10s|%10s|" .Vars.name .Hostname }}"#,
        "web       |    web-01|",
    ),
    (r#"{{ printf "%03d:%02d" 5 7 }}"#, "005:07"),
    (r#"{{ printf "%c%c%c" 72 105 33 }}"#, "Hi!"),
    (r#"{{ printf "%U" 0x1F600 }}"#, "U+1F600"),
    (
        r#"{{ printf "%q %v %s" 'x' 'x' 'x' }}"#,
        "'x' 120 %!s(int=120)",
    ),
    (r#"{{ printf "[%5.1s]" "abc" }}"#, "[    a]"),
    (r#"{{ printf "%t %v" .Vars.flag .Vars.off }}"#, "true false"),
    (
        r#"{{ printf "%x" .Vars.name }} {{ printf "% X" .Vars.name }}"#,
        "776562 77 65 62",
    ),
    (
        r#"{{ printf "%e" 0.0001234 }} {{ printf "%E" 123456789.0 }} {{ printf "%.0f" 0.5 }} {{ printf "%.0f" 1.5 }} {{ printf "%.1f" 0.05 }} {{ printf "%.2f" 2.675 }}"#,
        "1.234000e-04 1.234568E+08 0 2 0.1 2.67",
    ),
    (
        r#"{{ printf "%g %g %g %g %g" 0.000001 0.0000001 1e20 123456.0 1234567.0 }}"#,
        "1e-06 1e-07 1e+20 123456 1.234567e+06",
    ),
    (r#"{{ printf "%v %v" 100000000.0 0.1 }}"#, "1e+08 0.1"),
    (
        r#"{{ printf "%.3v|%10.4v|%-10.3v|" 3.14159 2.0 1e10 }}"#,
        "3.14|         2|1e+10     |",
    ),
    (
        r#"{{ printf "%5t|%-7v|%q" true false "" }}"#,
        r#" true|false  |"""#,
    ),
];

/// Data for `go_generated` cases.
const GO_GENERATED_DATA: &str = r#"{"b": true, "big": 18446744073709551615, "e": "", "el": [], "em": {}, "f": 3.14159, "g": 0.000123, "h": 1e+21, "i": 42, "k": 123456789.0, "l": [1, 2, 3], "m": {"a": "x", "b": 2, "c": null}, "n": -7, "nb": false, "nested": {"x": {"y": [1, {"z": "deep"}]}}, "s": "h\u00e9llo", "sl": ["a", "b"], "u": null, "z": 0}"#;

/// Grammar-generated templates; expected outputs produced by Go's
/// text/template (go1.19).
const GO_GENERATED_CASES: &[(&str, &str)] = &[
    (
        "{{ $y := nil }}{{ $y = gt .n .n }}{{ $y }}",
        r#"EXEC: template: :1:9: executing "" at <nil>: nil is not a command"#,
    ),
    (
        r#"{{- printf "%*f" .nested.x (or .z 1e-7) .missing }}"#,
        "%!(BADWIDTH)0.000000%!(EXTRA <nil>)",
    ),
    (
        r#"{{ printf " %*c " .sl (printf "ab  " ) .f | not }}"#,
        "false",
    ),
    (
        r#"{{ printf "%#oab %+#.2G" (.i) (not "") .i }}"#,
        "052ab %!G(bool=true)%!(EXTRA int=42)",
    ),
    (
        r#"{{ if "" }}{{ and false $ | not }} ,{{ else }},{{ or 1 }}{{ end }}"#,
        ",1",
    ),
    (
        "{{ range .l -}}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        "{{- println .m 'a' .m }}",
        "map[a:x b:2 c:<nil>] 97 map[a:x b:2 c:<nil>]\n",
    ),
    (
        r#"{{ if printf " "  -}},
{{ else }} {{ end }}"#,
        ",\n",
    ),
    (
        "{{ if print 100000.0 .l 100000.0 }}A{{ else if not .big }}B \n{{ else }}C{{ end }}",
        "A",
    ),
    (
        r#"{{ if slice nil "" }}{{ $x := and 1 .m.c .i }}{{ $x }}{{ len 0 }}{{ else }}{{ len 'a' -}},{{ end }}"#,
        r#"EXEC: template: :1:6: executing "" at <slice nil "">: error calling slice: slice of untyped nil"#,
    ),
    ("{{ (html 1 .k) -}}", "1 1.23456789e+08"),
    (
        "{{ range $k, $v := .m }}[{{ $k }}={{ $v }}|, ]{{ else }}E{{ end }}",
        "[a=x|, ][b=2|, ][c=<no value>|, ]",
    ),
    (
        r#"{{- if println  }}{{ len "" }},{{ else }}
 {{ end }}"#,
        "0,",
    ),
    (
        "{{ range $k, $v := .u -}}[{{ $k }}={{ $v }}|\n]{{ else }}E{{ end }}",
        "E",
    ),
    (
        "{{ range .l -}}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        "{{ range .nested.x.y }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        r#"{{ slice (print .h . .f (printf "||" $))  }}"#,
        "1e+21 map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0] 3.14159||%!(EXTRA map[string]interface {}=map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0])",
    ),
    (
        r#"{{ printf "|ab" .m.c 42 }}"#,
        "|ab%!(EXTRA <nil>, int=42)",
    ),
    (
        "{{ with index .m.a .z .em }}<{{ . }}>,{{ end }}",
        r#"EXEC: template: :1:8: executing "" at <index .m.a .z .em>: error calling index: can't index item of type uint8"#,
    ),
    (
        "{{ print (print .e .m.a .f) .k }}",
        "x3.141591.23456789e+08",
    ),
    (
        "{{ range $k, $v := .m }}[{{ $k }}={{ $v }}|\n]{{ else }}E{{ end }}",
        "[a=x|\n][b=2|\n][c=<no value>|\n]",
    ),
    (
        "{{ range $k, $v := .el }}[{{ $k }}={{ $v }}| ]{{ else }}E{{ end }}",
        "E",
    ),
    ("{{ 100000.0 }}", "100000"),
    (
        r#"{{- if html  }}A{{ else if printf "%5v%#x " (printf " ab" ) }}B {{ else }}C{{ end }}"#,
        "B ",
    ),
    ("{{ with not .z }}<{{ . }}>\n\n{{ end }}", "<true>\n\n"),
    ("{{ print 100000.0 }}", "100000"),
    (
        r#"{{ printf " |ab" nil . }}"#,
        " |ab%!(EXTRA <nil>, map[string]interface {}=map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0])",
    ),
    ("{{ with -1 -}}<{{ . }}>,\n{{ end }}", "<-1>,\n"),
    ("{{ with lt 0x10 1 }}<{{ . }}>\n{{ end }}", ""),
    (r#"{{ eq 1 'a' | printf "%v" }}"#, "false"),
    ("{{ if 3.5 }} {{ else }},,{{ end }}", " "),
    ("{{ and nil 0 -}}", "<no value>"),
    (
        "{{- range .nested.x.y }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        r#"{{- printf "|ab ab" 100000.0 .n 'a' }}"#,
        "|ab ab%!(EXTRA float64=100000, int=-7, int=97)",
    ),
    (
        r#"{{ printf "%E%qab|" .h }}"#,
        "1.000000E+21%!q(MISSING)ab|",
    ),
    (
        "{{- range .m }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    ("{{ 1 }}", "1"),
    ("{{ or 1234567.0 true .g -}}", "1.234567e+06"),
    (r#"{{ printf "%[3]o "  }}"#, "%!o(BADINDEX) "),
    ("{{ and .h true .big }}", "18446744073709551615"),
    (
        r#"{{ $y := .sl }}{{ $y = printf "%b" true 'a' (index .em 1) }}{{ $y }}"#,
        r#"EXEC: template: :1:45: executing "" at <index .em 1>: error calling index: value has type int; should be string"#,
    ),
    (
        r#"{{ printf "ab%+3E|" .s .b }}"#,
        "ab%!E(string=héllo)|%!(EXTRA bool=true)",
    ),
    ("{{ not .z -}}", "true"),
    (
        "{{ with ne 'a' 0x10 }}<{{ . }}>\n\n,{{ end }}",
        "<true>\n\n,",
    ),
    (
        r#"{{- with printf "|ab%f"  }}<{{ . }}>
{{ end }}"#,
        "<|ab%!f(MISSING)>\n",
    ),
    (
        "{{ if slice .big .h }}{{ print 1e-7 }}{{ not . }}{{ else }},{{ len .h }} {{ end }}",
        r#"EXEC: template: :1:6: executing "" at <slice .big .h>: error calling slice: can't slice item of type uint64"#,
    ),
    (
        "{{- range .sl }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        r#"{{ or (print .n .el .g) (printf "|" (or .) .h (println 1e-7 1)) 42 }}"#,
        "-7 [] 0.000123",
    ),
    ("{{ 0.1 }}", "0.1"),
    (
        r#"{{ if printf "ab%+U%-s"  }}A{{ else if printf "ab"  }}B {{ else }}C{{ end }}"#,
        "A",
    ),
    (
        "{{- range .nested.x.y }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    ("{{ print .u | print }}", "<nil>"),
    (
        "{{ range $k, $v := .nested.x.y }}[{{ $k }}={{ $v }}|,,\n]{{ else }}E{{ end }}",
        "[0=1|,,\n][1=map[z:deep]|,,\n]",
    ),
    ("{{ $x := and 1e-7 (not (.nested.x.y)) }}{{ $x }}", "false"),
    (
        "{{ len 1e-7 }}",
        r#"EXEC: template: :1:3: executing "" at <len 1e-7>: error calling len: len of type float64"#,
    ),
    (
        "{{ range $k, $v := .el }}[{{ $k }}={{ $v }}|\n ,]{{ else }}E{{ end }}",
        "E",
    ),
    ("{{- 1e-7 -}}", "1e-07"),
    ("{{ or .z .nested.x .s -}}", "map[y:[1 map[z:deep]]]"),
    (
        r#"{{ html . | printf "%q" }}"#,
        r#""map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:&lt;nil&gt;] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:&lt;nil&gt; z:0]""#,
    ),
    (
        "{{ range $k, $v := .sl }}[{{ $k }}={{ $v }}|,\n]{{ else }}E{{ end }}",
        "[0=a|,\n][1=b|,\n]",
    ),
    ("{{ if . }}\n{{ else }}\n {{ end }}", "\n"),
    (
        r#"{{ if printf " %+.0G||" (print .g .em false) }},

{{ else }}
 {{ end }}"#,
        ",\n\n",
    ),
    (
        "{{ and -2.25 $ -}}",
        "map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0]",
    ),
    (r#"{{ and "" .i .s }}"#, ""),
    (
        "{{- if print  }}A{{ else if index 1e-7  }}B,,{{ else }}C{{ end }}",
        "B,,",
    ),
    (
        r#"{{ printf "ab%s|" .n 0.1 .l }}"#,
        "ab%!s(int=-7)|%!(EXTRA float64=0.1, []interface {}=[1 2 3])",
    ),
    (
        r#"{{ with printf "%%%e"  -}}<{{ . }}>,{{ end }}"#,
        "<%%!e(MISSING)>,",
    ),
    (r#"{{- printf " ab%.0%ab" .u }}"#, " ab%ab%!(EXTRA <nil>)"),
    (
        r#"{{ printf "%E||ab" 100000.0 .em }}"#,
        "1.000000E+05||ab%!(EXTRA map[string]interface {}=map[])",
    ),
    ("{{ $x := not .i }}{{ $x }}", "false"),
    (
        "{{- if index (or 255) .el .m.a }}  {{ else }} ,{{ end }}",
        r#"EXEC: template: :1:7: executing "" at <index (or 255) .el .m.a>: error calling index: can't index item of type int"#,
    ),
    ("{{ len (println .h 42) -}}", "9"),
    (
        r#"{{ print (printf "|%12v||" .g) | printf "%q" }}"#,
        r#""|    0.000123||""#,
    ),
    ("{{ not (println 100000.0 (print true .l $ .l)) }}", "false"),
    (r#"{{- ne .e "a" }}"#, "true"),
    ("{{ $y := .k }}{{ $y = ne .n -3 }}{{ $y }}", "true"),
    ("{{- not 1 }}", "false"),
    ("{{- or .f .u }}", "3.14159"),
    (
        r#"{{ if print "str" .m }}A{{ else if print .i 0x1F }}B, {{ else }}C{{ end }}"#,
        "A",
    ),
    (
        "{{ and 1234567.0 -2.25 . -}}",
        "map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0]",
    ),
    (
        "{{- range .m }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    ("{{ urlquery (or 42 .m.a) | html }}", "42"),
    (
        r#"{{ $y := "str" -}}{{ $y = len .nested.x.y }}{{ $y }}"#,
        "2",
    ),
    (
        r#"{{- and (print .u (not 42) 'a' .e) -2.25 (printf " " 100000.0 -1) -}}"#,
        " %!(EXTRA float64=100000, int=-1)",
    ),
    (
        "{{ slice .b  }}",
        r#"EXEC: template: :1:3: executing "" at <slice .b>: error calling slice: can't slice item of type bool"#,
    ),
    ("{{ print  }}", ""),
    (
        r#"{{ $y := .m -}}{{ $y = printf "%8.2X" .big .big }}{{ $y }}"#,
        "FFFFFFFFFFFFFFFF%!(EXTRA uint64=18446744073709551615)",
    ),
    (
        r#"{{ if printf "%.4Gabab "  }},  {{ else }} {{ end }}"#,
        ",  ",
    ),
    (
        r#"{{ with printf "| " $ (slice .l (println ) (printf "ab" `raw`)) true }}<{{ . }}>,{{ end }}"#,
        r#"EXEC: template: :1:23: executing "" at <slice .l (println) (printf "ab" `raw`)>: error calling slice: cannot index slice/array with type string"#,
    ),
    (
        "{{ range $k, $v := .sl }}[{{ $k }}={{ $v }}|\n ]{{ else }}E{{ end }}",
        "[0=a|\n ][1=b|\n ]",
    ),
    ("{{ with 42 }}<{{ . }}>\n\n,{{ end }}", "<42>\n\n,"),
    (
        "{{ range .nested.x.y }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        r#"{{ printf " " (js .sl -2.25) -}}"#,
        " %!(EXTRA string=[a b] -2.25)",
    ),
    ("{{ $x := js nil -}}{{ $x }}", r#"\u003Cno value\u003E"#),
    ("{{- println .s }}", "héllo\n"),
    (
        "{{ range .m }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    (
        "{{- range $k, $v := .l -}}[{{ $k }}={{ $v }}|\n,]{{ else }}E{{ end }}",
        "[0=1|\n,][1=2|\n,][2=3|\n,]",
    ),
    ("{{ urlquery 100000.0 }}", "100000"),
    (
        r#"{{ with printf " " (and .nb (printf "%-0.8e" )) }}<{{ . }}>,{{ end }}"#,
        "< %!(EXTRA bool=false)>,",
    ),
    (
        "{{- if and (index (index 1e-7 1e6) -2.25) .el }}A{{ else if len .n }}B\n\n\n{{ else }}C{{ end }}",
        r#"EXEC: template: :1:19: executing "" at <index 1e-7 1e6>: error calling index: can't index item of type float64"#,
    ),
    (
        "{{ range $k, $v := .el -}}[{{ $k }}={{ $v }}|\n ]{{ else }}E{{ end }}",
        "E",
    ),
    (r#"{{ printf " %-.6sab"  }}"#, " %!s(MISSING)ab"),
    (r#"{{ printf "|%-.7f|%c"  }}"#, "|%!f(MISSING)|%!c(MISSING)"),
    (
        r#"{{ with printf " %6.7E"  }}<{{ . }}>
 {{ end }}"#,
        "< %!E(MISSING)>\n ",
    ),
    (
        "{{- range .l }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    ("{{ print 'a' -}}", "97"),
    ("{{- println -2.25 .u .s }}", "-2.25 <nil> héllo\n"),
    ("{{ if (.n) }} {{ else }},\n{{ end }}", " "),
    (
        r#"{{ with println 100000.0 (println (not 1) -1 "") 255 }}<{{ . }}> {{ end }}"#,
        "<100000 false -1 \n 255\n> ",
    ),
    (
        "{{- len 100000.0 -}}",
        r#"EXEC: template: :1:4: executing "" at <len 100000.0>: error calling len: len of type float64"#,
    ),
    (
        r#"{{- printf " ab%eab" .m.a 42 1234567.0 }}"#,
        " ab%!e(string=x)ab%!(EXTRA int=42, float64=1.234567e+06)",
    ),
    (
        r#"{{ or (printf " ababab" .z 0) 100000.0 .s }}"#,
        " ababab%!(EXTRA int=0, int=0)",
    ),
    (
        r#"{{ printf " abab" .missing | html -}}"#,
        " abab%!(EXTRA &lt;nil&gt;)",
    ),
    (
        r#"{{ $y := 0x1F }}{{ $y = printf "%vab " 3.5 -1 }}{{ $y }}"#,
        "3.5ab %!(EXTRA int=-1)",
    ),
    (r#"{{ printf " %U  " false -}}"#, " %!U(bool=false)  "),
    ("{{ if println .u -1 }}\n{{ else }},\n,{{ end }}", "\n"),
    (
        r#"{{ index (js ) .e "" }}"#,
        r#"EXEC: template: :1:3: executing "" at <index (js) .e "">: error calling index: cannot index slice/array with type string"#,
    ),
    (
        r#"{{ $x := print "str" 42 $ $ -}}{{ $x }}"#,
        "str42 map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0] map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0]",
    ),
    (
        r#"{{ printf " %+ 7t " "str" 0.1 }}"#,
        " %!t(string=    str) %!(EXTRA float64=0.1)",
    ),
    (
        "{{- range $k, $v := .nested.x.y -}}[{{ $k }}={{ $v }}|,\n,]{{ else }}E{{ end }}",
        "[0=1|,\n,][1=map[z:deep]|,\n,]",
    ),
    (
        r#"{{ range $k, $v := .nested.x.y }}[{{ $k }}={{ $v }}|
{{ index ""  }}]{{ else }}E{{ end }}"#,
        "[0=1|\n][1=map[z:deep]|\n]",
    ),
    (
        r#"{{ if printf "%.5%%g%4s"  }}A{{ else if len (printf "%-bab|" ) }}B

 {{ else }}C{{ end }}"#,
        "A",
    ),
    (
        "{{ print (.k) (.) }}",
        "1.23456789e+08 map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0]",
    ),
    (
        r#"{{ printf "ab" .nested.x }}"#,
        "ab%!(EXTRA map[string]interface {}=map[y:[1 map[z:deep]]])",
    ),
    (
        r#"{{ printf "%.1f" 255 (not 1e6) .nb }}"#,
        "%!f(int=255)%!(EXTRA bool=false, bool=false)",
    ),
    (
        r#"{{- printf "  ab|" (printf "ab %.5%" -2.25 `raw`) 'a' }}"#,
        "  ab|%!(EXTRA string=ab %%!(EXTRA float64=-2.25, string=raw), int=97)",
    ),
    (
        r#"{{ printf "ab|" .l . .s }}"#,
        "ab|%!(EXTRA []interface {}=[1 2 3], map[string]interface {}=map[b:true big:18446744073709551615 e: el:[] em:map[] f:3.14159 g:0.000123 h:1e+21 i:42 k:1.23456789e+08 l:[1 2 3] m:map[a:x b:2 c:<nil>] n:-7 nb:false nested:map[x:map[y:[1 map[z:deep]]]] s:héllo sl:[a b] u:<nil> z:0], string=héllo)",
    ),
    ("{{ $y := 255 }}{{ $y = not -2.25 }}{{ $y }}", "false"),
    ("{{ lt 0x10 -3 }}", "false"),
    (
        r#"{{ printf "%12.6%ab" .n "" }}"#,
        "%ab%!(EXTRA int=-7, string=)",
    ),
    ("{{ with len .s }}<{{ . }}>, {{ end }}", "<6>, "),
    (
        r#"{{ printf "abab|ab" (or .sl) 42 }}"#,
        "abab|ab%!(EXTRA []interface {}=[a b], int=42)",
    ),
    (
        "{{ range $k, $v := .nested.x.y }}[{{ $k }}={{ $v }}|, ]{{ else }}E{{ end }}",
        "[0=1|, ][1=map[z:deep]|, ]",
    ),
    (
        "{{ range $k, $v := .em }}[{{ $k }}={{ $v }}|,]{{ else }}E{{ end }}",
        "E",
    ),
    (
        "{{- if or .m.a -}}A{{ else if print .m.c }}B\n,{{ else }}C{{ end }}",
        "A",
    ),
    ("{{ print 'a' .z }}", "97 0"),
    ("{{ 3.5 -}}", "3.5"),
    ("{{ .m -}}", "map[a:x b:2 c:<nil>]"),
    (
        "{{ index .k .u 1e6 }}",
        r#"EXEC: template: :1:3: executing "" at <index .k .u 1e6>: error calling index: can't index item of type float64"#,
    ),
    ("{{ .i }}", "42"),
    ("{{ html  }}", ""),
    (
        r#"{{ if slice .nested.x.y  }}{{- not 100000.0 -}}{{ else }}{{ printf " %-.7U|" .g }}
{{ end }}"#,
        "false",
    ),
    (r#"{{ (printf "|" .n .e) }}"#, "|%!(EXTRA int=-7, string=)"),
    (
        r#"{{ printf "ab|  " .i (printf "% 6oab|" .z .em .g) (print false false (index .l ) .sl) }}"#,
        "ab|  %!(EXTRA int=42, string=     0ab|%!(EXTRA map[string]interface {}=map[], float64=0.000123), string=false false [1 2 3] [a b])",
    ),
    (r#"{{ ge .i .z | printf "%q" }}"#, "%!q(bool=true)"),
    (r#"{{- if printf "%11s"  }},{{ else }}  ,{{ end }}"#, ","),
    (
        "{{- range $k, $v := .sl }}[{{ $k }}={{ $v }}| ]{{ else }}E{{ end }}",
        "[0=a| ][1=b| ]",
    ),
    (r#"{{ printf "||"  -}}"#, "||"),
    (r#"{{ printf " %1X" 1 .m.c }}"#, " 1%!(EXTRA <nil>)"),
    (r#"{{ not .z | printf "%q" }}"#, "%!q(bool=true)"),
    (
        "{{ range .m }}{{ if eq 1 1 }}{{ continue }}{{ end }}{{ break }}{{ end }}",
        "",
    ),
    ("{{ .z }}", "0"),
    (r#"{{ printf "|" 'a' | printf "%v" }}"#, "|%!(EXTRA int=97)"),
    ("{{ urlquery  }}", ""),
    (
        r#"{{ $x := printf "%+g%-#X" .big .f .m.c }}{{ $x }}"#,
        "%!g(uint64=+18446744073709551615)0X1.921F9F01B866EP+01%!(EXTRA <nil>)",
    ),
    (
        "{{ $y := nil -}}{{ $y = (not .big) }}{{ $y }}",
        r#"EXEC: template: :1:9: executing "" at <nil>: nil is not a command"#,
    ),
    (
        r#"{{- if slice 0x1F 0x1F "str" -}}{{ printf "||%v" .m 1e-7 }} {{ else }}
{{ end }}"#,
        r#"EXEC: template: :1:7: executing "" at <slice 0x1F 0x1F "str">: error calling slice: can't slice item of type int"#,
    ),
    ("{{- $y := .big }}{{ $y = index .b  }}{{ $y }}", "true"),
];

#[test]
fn go_conformance_generated() {
    check_table(GO_GENERATED_DATA, GO_GENERATED_CASES);
}

#[test]
fn go_conformance_actions() {
    check_table(GO_ACTIONS_DATA, GO_ACTIONS_CASES);
}

#[test]
fn go_conformance_values() {
    check_table(GO_VALUES_DATA, GO_VALUES_CASES);
}

#[test]
fn go_conformance_config() {
    check_table(GO_CONFIG_DATA, GO_CONFIG_CASES);
}

// ----- newer Go features and documented deviations ----------------------------

#[test]
fn newer_go_features() {
    let d = json!({"n": 3, "list": ["a", "b"], "name": "web", "env": "prod"});
    // Go 1.23: {{else with}}.
    assert_eq!(
        ok(
            "{{ with .missing }}a{{ else with .name }}{{ . }}{{ else }}c{{ end }}",
            &d
        ),
        "web"
    );
    assert_eq!(
        ok(
            "{{ with .missing }}a{{ else with .nope }}b{{ else }}c{{ end }}",
            &d
        ),
        "c"
    );
    // Go 1.22: range over an integer.
    assert_eq!(ok("{{ range .n }}{{ . }}{{ end }}", &d), "012");
    assert_eq!(ok("{{ range $i := 3 }}{{ $i }}{{ end }}", &d), "012");
    assert_eq!(ok("{{ range 0 }}x{{ else }}empty{{ end }}", &d), "empty");
    assert_eq!(
        exec_err("{{ range $i, $e := 3 }}{{ end }}", &d),
        "template: :1:19: executing \"\" at <3>: can't use 3 to iterate over more than one variable"
    );
    assert_eq!(
        exec_err("{{ range 1.5 }}{{ end }}", &d),
        "template: :1:9: executing \"\" at <1.5>: range can't iterate over 1.5"
    );
    // Range with assignment to existing variables (Go 1.21+).
    assert_eq!(
        ok(
            "{{ $i := 0 }}{{ $v := \"\" }}{{ range $i, $v = .list }}{{ end }}{{ $i }}{{ $v }}",
            &d
        ),
        "1b"
    );
    // Messages of current Go versions.
    assert_eq!(
        exec_err("{{ lt 1 \"a\" }}", &d),
        "template: :1:3: executing \"\" at <lt 1 \"a\">: error calling lt: incompatible types for comparison: int and string"
    );
}

#[test]
fn deviations_from_go() {
    let d = json!({"s": "str", "list": [1, {"x": 1}], "port": 8080, "f": 2.5});
    // Numbers compare by value regardless of int/float (Go reports
    // "incompatible types for comparison").
    assert_eq!(
        ok(
            "{{ eq .port 8080.0 }} {{ lt 1 2.5 }} {{ eq .f 2.5 }} {{ gt .f 2 }}",
            &d
        ),
        "true true true true"
    );
    // Field access errors name the concrete JSON type (Go says "interface {}").
    assert_eq!(
        exec_err("{{ .list.x }}", &d),
        "template: :1:8: executing \"\" at <.list.x>: can't evaluate field x in type []interface {}"
    );
    assert_eq!(
        exec_err("{{ .port.x }}", &d),
        "template: :1:8: executing \"\" at <.port.x>: can't evaluate field x in type int"
    );
    // len of a missing value (Go leaks a reflect panic message here).
    assert_eq!(
        exec_err("{{ len .missing }}", &d),
        "template: :1:3: executing \"\" at <len .missing>: error calling len: len of untyped nil"
    );
    // Complex numbers are not supported.
    assert_eq!(
        parse_err("{{ 1+2i }}"),
        "template: :1: complex numbers are not supported: 1+2i"
    );
    // Template recursion depth is 1000 (Go: 100000).
    assert_eq!(
        exec_err(
            "{{ define \"x\" }}{{ template \"x\" . }}{{ end }}{{ template \"x\" . }}",
            &d
        ),
        "template: :1:28: executing \"x\" at <{{template \"x\" .}}>: exceeded maximum template depth (1000)"
    );
}

#[test]
fn variables_and_scopes() {
    let d = json!({"a": {"b": 1}, "list": [1, 2, 3]});
    assert_eq!(
        ok(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $x := 3 }}{{ $x = 4 }}{{ $x }}{{ end }}{{ $x }}",
            &d
        ),
        "42"
    );
    assert_eq!(
        ok("{{ $x := .a }}{{ $x.b }} {{ $.a.b }} {{ $ }}", &d),
        "1 1 map[a:map[b:1] list:[1 2 3]]"
    );
    assert_eq!(ok("{{ range $v := .list }}{{ $v }}{{ end }}", &d), "123");
    assert_eq!(
        ok("{{ with $x := .a.b }}{{ $x }}{{ . }}{{ end }}", &d),
        "11"
    );
    assert_eq!(
        ok(
            "{{ define \"t\" }}{{ $ }}{{ end }}{{ $y := 5 }}{{ template \"t\" $y }}",
            &d
        ),
        "5"
    );
    assert_eq!(
        exec_err("{{ $x = 1 }}", &d),
        "template: :1:8: executing \"\" at <1>: undefined variable: $x"
    );
    assert_eq!(
        parse_err("{{ define \"t\" }}{{ $y }}{{ end }}"),
        "template: :1: undefined variable \"$y\""
    );
}

#[test]
fn whitespace_trimming() {
    let d = json!({"list": ["a", "b"]});
    assert_eq!(ok("  {{- 1 -}}  \n  {{- 2 }}  {{3 -}}\n", &d), "12  3");
    assert_eq!(
        ok("{{- range .list }}\n- {{ . }}\n{{- end }}\n", &d),
        "\n- a\n- b\n"
    );
    assert_eq!(ok("a\r\n\t {{- \"b\" -}} \r\n\tc", &d), "abc");
    assert_eq!(ok("{{-1}} {{- -1 -}} x", &d), "-1-1x");
    assert_eq!(ok("x {{- /* c */}} y {{/* d */ -}} z", &d), "x y z");
}

#[test]
fn data_edge_cases() {
    // Null or scalar root data.
    assert_eq!(
        ok("{{ . }}|{{ .x }}|{{ $ }}", &Value::Null),
        "<no value>|<no value>|<no value>"
    );
    assert_eq!(ok("{{ . }}", &json!("s")), "s");
    assert_eq!(
        ok("{{ . }}", &json!([1, null, "a", [true]])),
        "[1 <nil> a [true]]"
    );
    assert_eq!(
        ok("{{ . }}", &json!(18446744073709551615u64)),
        "18446744073709551615"
    );
    assert_eq!(ok("{{ . }} {{ printf \"%d\" . }}", &json!(-42)), "-42 -42");
    // A JSON null inside a chain is a nil interface, like Go.
    assert_eq!(
        exec_err("{{ .a.b }}", &json!({"a": null})),
        "template: :1:5: executing \"\" at <.a.b>: nil pointer evaluating interface {}.b"
    );
    assert_eq!(
        ok(
            "{{ .a }}|{{ print .a }}|{{ if .a }}t{{ else }}f{{ end }}",
            &json!({"a": null})
        ),
        "<no value>|<nil>|f"
    );
    // Keys print and range sorted by byte order.
    assert_eq!(
        ok("{{ . }}", &json!({"b": 1, "B": 2, "a": 3})),
        "map[B:2 a:3 b:1]"
    );
    assert_eq!(
        ok(
            "{{ range $k, $v := . }}{{ $k }}{{ end }}",
            &json!({"b": 1, "B": 2, "a": 3})
        ),
        "Bab"
    );
}

#[test]
fn templates_are_reusable_and_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Template>();
    assert_send_sync::<TemplateError>();
    let t = Template::parse("{{ define \"x\" }}<{{ . }}>{{ end }}{{ template \"x\" .v }}");
    let Ok(t) = t else {
        panic!("parse failed: {t:?}");
    };
    for i in 0..5 {
        assert_eq!(t.render(&json!({"v": i})), Ok(format!("<{i}>")));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let t = &t;
                s.spawn(move || t.render(&json!({"v": i})))
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.join().ok(), Some(Ok(format!("<{i}>"))));
        }
    });
    assert!(format!("{t:?}").contains("templates"));
}

// ----- limits -------------------------------------------------------------------

fn run_limited(src: &str, data: &Value, limits: &exec::Limits) -> Result<String, String> {
    let trees = parser::parse(src, 256 << 10)?;
    exec::execute(&trees, src, data, limits).map_err(|e| e.0)
}

#[test]
fn output_is_limited() {
    let d = json!({});
    let e = exec_err("{{ range 70 }}{{ printf \"%1000000d\" 0 }}{{ end }}", &d);
    assert!(e.ends_with("output too large"), "{e}");
    let e = exec_err(
        "{{ $x := \"ab\" }}{{ range 100 }}{{ $x = printf \"%s%s\" $x $x }}{{ end }}",
        &d,
    );
    assert!(e.ends_with("output too large"), "{e}");
    let small = exec::Limits {
        max_output: 1000,
        ..exec::Limits::default()
    };
    let e = run_limited("{{ range 100 }}0123456789abcdef{{ end }}", &d, &small);
    assert!(e.is_err_and(|e| e.ends_with("output too large")));
    let e = run_limited("{{ print (printf \"%2000d\" 1) }}", &d, &small);
    assert!(e.is_err_and(|e| e.ends_with("output too large")));
    assert_eq!(
        run_limited("{{ printf \"%999d\" 1 | len }}", &d, &small),
        Ok("999".into())
    );
}

#[test]
fn work_is_limited() {
    let d = json!({});
    let limits = exec::Limits {
        max_steps: 10_000,
        ..exec::Limits::default()
    };
    let e = run_limited("{{ range 100000000000 }}{{ end }}", &d, &limits);
    assert!(e.is_err_and(|e| e.ends_with("execution exceeded the limit of 10000 steps")));
    // Exponential recursion is cut off by the step budget.
    let src = "{{ define \"a\" }}{{ if lt (len .) 40 }}{{ template \"a\" (print . \"x\") }}{{ template \"a\" (print . \"y\") }}{{ end }}{{ end }}{{ template \"a\" \"\" }}";
    let e = run_limited(src, &d, &limits);
    assert!(e.is_err_and(|e| e.contains("steps")));
    assert!(exec::Limits::default().max_steps <= 10_000_000);
}

#[test]
fn recursion_is_limited() {
    let d = json!({});
    // Deep template recursion stops at the depth limit.
    let e = exec_err(
        "{{ define \"x\" }}{{ template \"x\" }}{{ end }}{{ template \"x\" }}",
        &d,
    );
    assert!(e.ends_with("exceeded maximum template depth (1000)"), "{e}");
    // Deeply nested but legal templates work.
    let n = 300;
    let src = format!("{}x{}", "{{ if 1 }}".repeat(n), "{{ end }}".repeat(n));
    assert_eq!(ok(&src, &d), "x");
    let src = format!("{{{{ print {}1{} }}}}", "(print ".repeat(n), ")".repeat(n));
    assert_eq!(ok(&src, &d), "1");
    let src = format!(
        "{{{{ if 0 }}}}{}{{{{ else }}}}z{{{{ end }}}}",
        "{{ else if 0 }}".repeat(n)
    );
    assert_eq!(ok(&src, &d), "z");
    // Too deep: a parse error, not a crash.
    let src = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
    assert_eq!(
        parse_err(&src),
        "template: :1: max nesting depth exceeded (1000)"
    );
    let src = format!("{{{{ {}1{} }}}}", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(
        parse_err(&src),
        "template: :1: max nesting depth exceeded (1000)"
    );
    // Template recursion times nesting is bounded by actual stack use.
    let src = format!(
        "{{{{ define \"x\" }}}}{}{{{{ template \"x\" . }}}}{}{{{{ end }}}}{{{{ template \"x\" 1 }}}}",
        "{{ if 1 }}".repeat(200),
        "{{ end }}".repeat(200)
    );
    let e = exec_err(&src, &d);
    assert!(e.ends_with("template nesting too deep"), "{e}");
    // With a small stack budget the executor errors instead of overflowing.
    let small = exec::Limits {
        max_stack: 64 << 10,
        ..exec::Limits::default()
    };
    let src = format!("{}x{}", "{{ with 1 }}".repeat(900), "{{ end }}".repeat(900));
    let big = 32 << 20;
    let r = std::thread::Builder::new()
        .stack_size(big)
        .spawn(move || {
            let trees = parser::parse(&src, big).map_err(|e| e.to_string())?;
            exec::execute(&trees, &src, &json!({}), &small).map_err(|e| e.0)
        })
        .map(|h| h.join());
    let Ok(Ok(r)) = r else {
        panic!("probe thread failed");
    };
    assert!(r.is_err_and(|e| e.ends_with("template nesting too deep")));
}

#[test]
fn large_inputs_scale_linearly() {
    // 100k actions over ~1.7 MB of source: parsing and rendering must not
    // be quadratic in the template size.
    let src = "line {{ .a }}\n".repeat(100_000);
    let out = ok(&src, &json!({"a": 1}));
    assert_eq!(out.len(), "line 1\n".len() * 100_000);
    let e = parse_err(&format!("{}{{{{ end }}}}", "x\n".repeat(50_000)));
    assert_eq!(e, "template: :50001: unexpected {{end}}");
    // Variable lookups past many declarations are charged to the budget.
    let src = format!(
        "{{{{ $x := 1 }}}}{}{{{{ range 100000000 }}}}{{{{ $x }}}}{{{{ end }}}}",
        "{{ $y := 1 }}".repeat(20_000)
    );
    let limits = exec::Limits {
        max_steps: 1_000_000,
        ..exec::Limits::default()
    };
    let e = run_limited(&src, &json!({}), &limits);
    assert!(e.is_err_and(|e| e.contains("steps")));
    // So are comparisons of long strings.
    let big = json!({"s": "x".repeat(1 << 20)});
    let e = run_limited(
        "{{ range 100000000 }}{{ if eq $.s $.s }}{{ end }}{{ end }}",
        &big,
        &limits,
    );
    assert!(e.is_err_and(|e| e.contains("steps")));
}

#[test]
fn deep_data_is_printed_or_rejected() {
    let mut v = json!(1);
    for _ in 0..100 {
        v = Value::Array(vec![v]);
    }
    let s = ok("{{ . }}", &v);
    assert_eq!(s.len(), 201);
    for _ in 0..2000 {
        v = Value::Array(vec![v]);
    }
    let e = exec_err("{{ . }}", &v);
    assert!(e.ends_with("value nesting too deep to print"), "{e}");
    // serde_json drops deep values recursively; unwind it gradually.
    while let Value::Array(mut a) = v {
        v = a.pop().unwrap_or(Value::Null);
    }
}

// ----- robustness ---------------------------------------------------------------

/// Deterministic xorshift PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const FUZZ_TEMPLATES: &[&str] = &[
    "listen {{ .Vars.port }}; # {{ .Hostname }} {{ .Facts.architecture }}",
    "{{- range $i, $s := .Vars.servers }}{{ if $i }},{{ end }}{{ $s | printf \"%q\" }}{{ else }}none{{ end -}}",
    "{{ define \"srv\" }}server {{ .name }}:{{ .port }};{{ end }}{{ with .Vars.db }}{{ template \"srv\" . }}{{ else with .Vars.x }}x{{ end }}",
    "{{ block \"b\" . }}{{ $x := index .Vars.m \"k\" }}{{ $x = slice $x 0 }}{{ $x }}{{ end }}{{/* c */}}",
    "{{ if and (eq .Vars.env \"prod\") (gt (len .Vars.servers) 1) }}{{ printf \"%-5s|%05.1f|%x\" \"a\" 3.14159 255 }}{{ else if not .Vars.flag }}{{ html \"<\" }}{{ js \"'\" }}{{ urlquery \"a b\" }}{{ end }}",
    "{{ range 3 }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ if eq . 2 }}{{ break }}{{ end }}{{ print . 'a' 0x1F 1e3 `raw` nil true }}{{ end }}",
    "{{ (index .Vars.hosts 0).name }} {{ $.Hostname }} {{ .Vars.missing.deep }} {{ println 1 2 }}",
];

fn fuzz_data() -> Value {
    json!({
        "Vars": {
            "port": 8080, "env": "prod", "servers": ["a", "b"], "flag": true,
            "m": {"k": "v"}, "db": {"name": "db", "port": 5432},
            "hosts": [{"name": "h1"}], "list": [1, 2.5, "x", null, [1], {"a": 1}]
        },
        "Hostname": "web-01",
        "Facts": {"architecture": "x86_64"}
    })
}

/// Parse and render; the result itself does not matter, only that it
/// returns.
fn exercise(src: &str, data: &Value) -> bool {
    let parsed = Template::parse(src);
    let rendered = match &parsed {
        Ok(t) => t.render(data),
        Err(e) => Err(e.clone()),
    };
    let panicked = |r: &Result<String, TemplateError>| matches!(r, Err(e) if e.to_string().contains("panicked"));
    let one_shot = render(src, data);
    // render() must agree with parse()+render(), and nothing may panic
    // (a panic in the worker thread would surface as an internal error).
    rendered == one_shot && !panicked(&rendered) && !panicked(&one_shot)
}

#[test]
fn fuzz_prefixes_of_valid_templates() {
    let data = fuzz_data();
    for src in FUZZ_TEMPLATES {
        assert!(
            render(src, &data).is_ok(),
            "{src}: {:?}",
            render(src, &data)
        );
        for (i, _) in src.char_indices().chain([(src.len(), ' ')]) {
            assert!(exercise(&src[..i], &data), "prefix {:?}", &src[..i]);
            // Also the suffixes, which start in the middle of actions.
            assert!(exercise(&src[i..], &data), "suffix {:?}", &src[i..]);
        }
    }
}

#[test]
fn fuzz_random_inputs() {
    const PIECES: &[&str] = &[
        "{{", "}}", "{{-", "-}}", " ", "\n", ".", "$", "$x", ":=", "=", "|", "(", ")", "\"", "`",
        "'", "/*", "*/", "if", "else", "end", "range", "with", "define", "template", "block",
        "break", "continue", "nil", "true", "printf", "print", "index", "slice", "len", "and",
        "or", "not", "eq", "lt", "html", "js", "urlquery", "call", ".Vars", ".port", ".servers",
        "\"%d\"", "\"x\"", "0", "1", "-1", "2.5", "0x", "1e", "'a'", "\\", ",", "%", "é", "\u{0}",
        "}", "{",
    ];
    let data = fuzz_data();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        // Random raw bytes (lossily decoded) ...
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len).map(|_| (rng.next() & 0xFF) as u8).collect();
        let src = String::from_utf8_lossy(&bytes).into_owned();
        assert!(exercise(&src, &data), "{src:?}");
        // ... and random sequences of template-ish tokens.
        let n = rng.below(30);
        let src: String = (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        assert!(exercise(&src, &data), "{src:?}");
    }
}

#[test]
fn fuzz_mutated_templates() {
    let data = fuzz_data();
    let mut rng = Rng(42);
    for _ in 0..300 {
        let base = FUZZ_TEMPLATES[rng.below(FUZZ_TEMPLATES.len())].as_bytes();
        let mut bytes = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let len = bytes.len().max(1);
            let at = rng.below(len);
            match rng.below(3) {
                0 => {
                    if at < bytes.len() {
                        bytes.remove(at);
                    }
                }
                1 => {
                    const SYNTAX: &[u8] = b"{}()|$.\"'` -";
                    bytes.insert(at.min(bytes.len()), SYNTAX[rng.below(SYNTAX.len())]);
                }
                _ => {
                    let from = rng.below(len);
                    let piece: Vec<u8> = bytes
                        .iter()
                        .skip(from)
                        .take(rng.below(12))
                        .copied()
                        .collect();
                    let at = at.min(bytes.len());
                    bytes.splice(at..at, piece);
                }
            }
        }
        let src = String::from_utf8_lossy(&bytes).into_owned();
        assert!(exercise(&src, &data), "{src:?}");
    }
}
