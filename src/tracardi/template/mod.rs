//! Tracardi's `DotTemplate`: `Hello {{profile@data.pii.firstname}}` → `Hello Ada`.
//!
//! Pure functions, no I/O. This reimplements, by hand, what Tracardi 0.8.x does in
//! `tracardi/service/notation/dot_template.py` (`re.sub` with the regex below, each match
//! replaced by `str(dot[match])`), `dot_accessor.py` and its `dotty_dict` fork.
//!
//! # Which text is a reference
//!
//! Exactly the matches of Tracardi's regex:
//!
//! ```text
//! \{{2}\s*((?:payload|profile|event|session|flow|memory)@[\[\]0-9a-zA-a_\-\.]+(?<![\.\[]))\s*\}{2}
//! ```
//!
//! - `{{`, optional whitespace (Python's Unicode `\s`, which also counts U+001C–U+001F), one of
//!   the six **lowercase** source names, `@`;
//! - a path of one or more of `0-9`, `-`, `.` and the ASCII range `A`..=`z` — the `A-a` typo in
//!   the class admits `[ \ ] ^ _` and the backtick besides the letters — not ending in `.` or `[`;
//! - optional whitespace, `}}`.
//!
//! Matches are found left to right and do not overlap, as `re.sub` finds them. Anything else
//! (`{{Profile@x}}`, `{{profile@...}}`, `{{profile@a b}}`, `{{profile@x}` …) stays verbatim.
//! [`check_syntax`] tells an operator about such near misses; rendering never does.
//!
//! # Lookup (dotty)
//!
//! The path is split on `.`; `\.` is a literal dot inside a key and `\\.` is a literal
//! backslash that ends the key (dotty's two escape stamps, applied in dotty's order).
//! Each segment then selects, from the current value:
//!
//! - in an object: the member with exactly that name;
//! - in a list: the element at that index, when the segment is all ASCII digits (`01` is 1).
//!   Negative indexes are **not** supported, as in Tracardi: `-1` is not a digit string there
//!   either, so it is a missing path. Slices (`a:b`) cannot occur: `:` is not a path character.
//!
//! Anything else is [`TemplateError::MissingPath`]: a missing key, an index out of range, a step
//! into `null`, an empty container, a string, a number or a boolean. A source that is `null` is
//! an empty object (so every path under `flow`, always `null` for a microservice, is missing).
//! A final value of `null` is not missing: it prints as `None`, as in Tracardi.
//!
//! A path starting with `...` (e.g. `{{payload@...all}}`) is Tracardi's "whole source" form:
//! it renders the entire source object (`{}` for a `null` source), as `DotAccessor.get_all` does.
//!
//! Deliberate differences from Tracardi, each making a template work that fails there:
//! - a digit segment in an **object** selects the member with that name (`{"0": "x"}`);
//!   Tracardi's `__contains__` raises `KeyError` there;
//! - a list element that is falsy in Python (`0`, `""`, `false`, `[]`, `{}`, `null`) is found;
//!   Tracardi's existence check returns the element itself and so calls it missing.
//!
//! A source that is neither an object nor `null` (e.g. a list as `payload`) makes Tracardi fail
//! before rendering; here it fails only when a reference reads from it, with
//! [`TemplateError::SourceNotObject`].
//!
//! # Printing (`str(value)`)
//!
//! A string is inserted as it is; everything else as Python prints it: `None`, `True`/`False`,
//! integers in decimal, floats as Python's `repr` (shortest round-trip digits, `1.0`, `1e-05`,
//! `1e+16`), lists and objects as Python's `repr` (`{'a': 1, 'b': [True, None, 'x']}`), with
//! strings inside quoted and escaped as `repr` does. Object members keep the order they had in
//! the JSON (serde_json's `preserve_order`), as Python's `dict` does.
//!
//! Numbers beyond 64-bit integers reach this code as floats (serde_json without
//! `arbitrary_precision`), so they print as floats, where Python would print the exact integer;
//! likewise the JSON `-0` reads as the float `-0.0` (Python: the integer `0`).

mod lookup;
mod repr;
mod scan;

use lookup::*;
use repr::*;
pub use repr::{python_float_repr, python_repr, python_str};
use scan::*;
use serde_json::{Map, Value};
use std::fmt;
use std::ops::Range;
use std::sync::LazyLock;

/// One of the six data sources a reference can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Payload,
    Profile,
    Event,
    Session,
    Flow,
    Memory,
}

impl Source {
    /// Every source, in Tracardi's regex order.
    pub const ALL: [Source; 6] = [
        Source::Payload,
        Source::Profile,
        Source::Event,
        Source::Session,
        Source::Flow,
        Source::Memory,
    ];

    /// The name as written in a template (always lowercase).
    pub fn name(self) -> &'static str {
        match self {
            Source::Payload => "payload",
            Source::Profile => "profile",
            Source::Event => "event",
            Source::Session => "session",
            Source::Flow => "flow",
            Source::Memory => "memory",
        }
    }

    fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.name() == name)
    }

    fn from_name_ignoring_case(name: &str) -> Option<Source> {
        Source::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

static NULL: Value = Value::Null;

/// The data a template reads. `null` where a source is absent (it then behaves as `{}`).
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub payload: &'a Value,
    pub profile: &'a Value,
    pub event: &'a Value,
    pub session: &'a Value,
    pub memory: &'a Value,
    /// Always `null` for a microservice (Tracardi sends `flow: null`).
    pub flow: &'a Value,
}

impl<'a> Sources<'a> {
    /// The value of one source.
    pub fn get(&self, source: Source) -> &'a Value {
        match source {
            Source::Payload => self.payload,
            Source::Profile => self.profile,
            Source::Event => self.event,
            Source::Session => self.session,
            Source::Flow => self.flow,
            Source::Memory => self.memory,
        }
    }
}

impl Default for Sources<'static> {
    /// Every source `null`.
    fn default() -> Self {
        Sources {
            payload: &NULL,
            profile: &NULL,
            event: &NULL,
            session: &NULL,
            memory: &NULL,
            flow: &NULL,
        }
    }
}

/// One well-formed reference found in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub source: Source,
    /// The path after `@`, as written (escapes not yet applied).
    pub path: String,
    /// Byte range of the whole reference, from `{{` to `}}` inclusive.
    pub span: Range<usize>,
}

impl Reference {
    /// `source@path`, the form Tracardi's messages use.
    pub fn expression(&self) -> String {
        format!("{}@{}", self.source, self.path)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.source, self.path)
    }
}

/// Why text that starts like a reference is not one (see [`check_syntax`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxProblem {
    /// `{{profile@}}`.
    EmptyPath,
    /// The path ends in `.` or `[` (`{{profile@data.}}`, `{{profile@...}}`).
    BadEnding(char),
    /// A character that may not appear in a path, or whitespace inside it.
    Unexpected(char),
    /// No `}}` right after the path.
    Unclosed,
    /// The source name is not lowercase (`{{Profile@x}}`); the name as written.
    SourceCase(String),
}

impl fmt::Display for SyntaxProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxProblem::EmptyPath => f.write_str("the path after `@` is empty"),
            SyntaxProblem::BadEnding(c) => write!(f, "a path must not end with `{c}`"),
            SyntaxProblem::Unexpected(c) if is_py_space(*c) => f.write_str(
                "a path cannot contain whitespace, and must be followed directly by `}}`",
            ),
            SyntaxProblem::Unexpected(c) => write!(
                f,
                "{c:?} cannot appear in a path (allowed: letters A-Z a-z, digits, and _ - . [ ]), \
                 and the path must be followed by `}}}}`"
            ),
            SyntaxProblem::Unclosed => f.write_str("the reference is not closed with `}}`"),
            SyntaxProblem::SourceCase(name) => write!(
                f,
                "source names are lowercase: write `{}@`, not `{name}@`",
                name.to_ascii_lowercase()
            ),
        }
    }
}

/// What can go wrong with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A well-formed reference whose path has no value (Tracardi raises `KeyError` here).
    #[error("Invalid data reference: `{reference}` does not point to any data")]
    MissingPath {
        /// `source@path`, e.g. `profile@data.pii.firstname`.
        reference: String,
    },
    /// A reference reads from a source that is neither an object nor `null`.
    #[error("Invalid data reference: `{reference}` reads from a source that is not a JSON object")]
    SourceNotObject { reference: String },
    /// The rendered text passed the limit given to [`render`]; rendering stopped there.
    #[error("the text passes {max_bytes} bytes once the data is inserted")]
    TooLong { max_bytes: usize },
    /// Text that starts like a reference but is not one (only from [`check_syntax`]).
    #[error("malformed reference `{snippet}` at character {position}: {problem}")]
    Malformed {
        /// The offending text, from its `{{` to its `}}` or to the offending character.
        snippet: String,
        /// Byte offset of the `{{` in the template.
        offset: usize,
        /// 1-based character position of the `{{` in the template.
        position: usize,
        problem: SyntaxProblem,
    },
}

/// Renders `template`, replacing every reference by its value as Python's `str()` prints it.
/// The first reference without a value stops rendering with [`TemplateError::MissingPath`].
/// Malformed references are left as they are (as in Tracardi); see [`check_syntax`].
///
/// A text that would pass `max_bytes` is [`TemplateError::TooLong`]: writing stops at the
/// limit, so a small template that inserts a large value many times costs no more than the
/// limit (a 63 KB request once rendered to 54 MB). The references after that point are still
/// looked up, so that a missing one is reported first, as it would be without a limit.
pub fn render(
    template: &str,
    sources: &Sources,
    max_bytes: usize,
) -> Result<String, TemplateError> {
    let mut out = Output {
        text: String::with_capacity(template.len().min(max_bytes)),
        max_bytes,
    };
    let mut full = false;
    let mut copied = 0;
    for reference in references(template) {
        let value = resolve(&reference, sources)?;
        if !full {
            full = out
                .push(&template[copied..reference.span.start])
                .and_then(|()| write_str_value(&mut out, value))
                .is_err();
        }
        copied = reference.span.end;
    }
    if full || out.push(&template[copied..]).is_err() {
        return Err(TemplateError::TooLong { max_bytes });
    }
    Ok(out.text)
}

/// Text being written, refused past `max_bytes`.
struct Output {
    text: String,
    max_bytes: usize,
}

/// The [`Output`] would pass its limit.
struct Full;

impl Output {
    fn unbounded() -> Output {
        Output {
            text: String::new(),
            max_bytes: usize::MAX,
        }
    }

    fn push(&mut self, s: &str) -> Result<(), Full> {
        if self.text.len().saturating_add(s.len()) > self.max_bytes {
            return Err(Full);
        }
        self.text.push_str(s);
        Ok(())
    }

    fn push_char(&mut self, c: char) -> Result<(), Full> {
        self.push(c.encode_utf8(&mut [0; 4]))
    }
}

/// Every well-formed reference, in order, as `re.finditer` would find them.
pub fn references(template: &str) -> Vec<Reference> {
    scan(template)
        .filter_map(|attempt| match attempt {
            Attempt::Reference(r) => Some(r),
            Attempt::Malformed { .. } => None,
        })
        .collect()
}

/// Reports the first *malformed* reference, for `/plugin/validate`.
///
/// The rule: wherever the template has `{{`, optional whitespace, one of the six source names
/// in any letter case, and `@`, and that text is not the start of a well-formed reference (see
/// the module documentation), the template is malformed. So `{{profile@data.}}`,
/// `{{profile@...}}`, `{{profile@}}`, `{{profile@first name}}`, `{{profile@name}`,
/// `{{profile@a:b}}` and `{{Profile@name}}` are reported, with the reason; `{{name}}`,
/// `{{user@x}}`, `{ {profile@x}}` and `profile@x` are plain text and are not. Positions are
/// tried left to right, skipping the text of well-formed references, as the regex does.
///
/// Tracardi itself would print all of these verbatim; [`render`] does too.
pub fn check_syntax(template: &str) -> Result<(), TemplateError> {
    for attempt in scan(template) {
        if let Attempt::Malformed { start, problem } = attempt {
            return Err(TemplateError::Malformed {
                snippet: snippet(template, start),
                offset: start,
                position: template[..start].chars().count() + 1,
                problem,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render_with(
        template: &str,
        payload: Value,
        profile: Value,
    ) -> Result<String, TemplateError> {
        let null = Value::Null;
        let sources = Sources {
            payload: &payload,
            profile: &profile,
            event: &null,
            session: &null,
            memory: &null,
            flow: &null,
        };
        render(template, &sources, usize::MAX)
    }

    fn profile() -> Value {
        json!({
            "id": "p-1",
            "data": {
                "pii": {"firstname": "Ada", "lastname": "Lovelace"},
                "contact": {"email": {"main": "ada@example.com"}}
            },
            "traits": {"score": 1.0, "vip": true, "nothing": null},
            "interests": ["math", "engines", {"name": "poetry"}]
        })
    }

    fn missing(reference: &str) -> Result<String, TemplateError> {
        Err(TemplateError::MissingPath {
            reference: reference.to_string(),
        })
    }

    #[test]
    fn nested_paths_are_replaced() {
        assert_eq!(
            render_with(
                "Hello {{profile@data.pii.firstname}} {{profile@data.pii.lastname}}!",
                Value::Null,
                profile()
            ),
            Ok("Hello Ada Lovelace!".into())
        );
        assert_eq!(
            render_with(
                "{{profile@data.contact.email.main}}",
                Value::Null,
                profile()
            ),
            Ok("ada@example.com".into())
        );
    }

    #[test]
    fn every_source_is_read() {
        let payload = json!({"v": "P"});
        let profile = json!({"v": "R"});
        let event = json!({"v": "E", "properties": {"sku": "X-1"}});
        let session = json!({"v": "S"});
        let memory = json!({"v": "M"});
        let flow = json!({"v": "F"});
        let sources = Sources {
            payload: &payload,
            profile: &profile,
            event: &event,
            session: &session,
            memory: &memory,
            flow: &flow,
        };
        assert_eq!(
            render(
                "{{payload@v}}{{profile@v}}{{event@v}}{{session@v}}{{memory@v}}{{flow@v}} \
                 {{event@properties.sku}}",
                &sources,
                usize::MAX
            ),
            Ok("PRESMF X-1".into())
        );
    }

    #[test]
    fn list_indexes() {
        let p = profile();
        assert_eq!(
            render_with("{{profile@interests.0}}", Value::Null, p.clone()),
            Ok("math".into())
        );
        assert_eq!(
            render_with("{{profile@interests.2.name}}", Value::Null, p.clone()),
            Ok("poetry".into())
        );
        // Python's int("01") is 1.
        assert_eq!(
            render_with("{{profile@interests.01}}", Value::Null, p.clone()),
            Ok("engines".into())
        );
        assert_eq!(
            render_with("{{profile@interests.3}}", Value::Null, p.clone()),
            missing("profile@interests.3")
        );
        assert_eq!(
            render_with(
                "{{profile@interests.99999999999999999999999}}",
                Value::Null,
                p.clone()
            ),
            missing("profile@interests.99999999999999999999999")
        );
    }

    #[test]
    fn negative_indexes_and_brackets_are_not_list_indexes() {
        let p = profile();
        assert_eq!(
            render_with("{{profile@interests.-1}}", Value::Null, p.clone()),
            missing("profile@interests.-1")
        );
        // `[0]` is part of the key name, as in Tracardi.
        assert_eq!(
            render_with("{{profile@interests[0]}}", Value::Null, p.clone()),
            missing("profile@interests[0]")
        );
        assert_eq!(
            render_with(
                "{{payload@a[0]}}",
                json!({"a[0]": "bracket key"}),
                Value::Null
            ),
            Ok("bracket key".into())
        );
    }

    #[test]
    fn digit_keys_in_objects_and_falsy_list_elements_are_found() {
        let payload = json!({"by_id": {"7": "seven", "07": "oh-seven"}, "scores": [0, "", false]});
        assert_eq!(
            render_with(
                "{{payload@by_id.7}} {{payload@by_id.07}}",
                payload.clone(),
                Value::Null
            ),
            Ok("seven oh-seven".into())
        );
        assert_eq!(
            render_with(
                "{{payload@scores.0}}|{{payload@scores.1}}|{{payload@scores.2}}",
                payload,
                Value::Null
            ),
            Ok("0||False".into())
        );
    }

    #[test]
    fn escaped_dots() {
        let payload = json!({
            "a.b": {"c": "dotted key"},
            "x\\": {"y": "backslash key"},
            "a": {"b": {"c": "plain"}}
        });
        assert_eq!(
            render_with(r"{{payload@a\.b.c}}", payload.clone(), Value::Null),
            Ok("dotted key".into())
        );
        assert_eq!(
            render_with(r"{{payload@a.b.c}}", payload.clone(), Value::Null),
            Ok("plain".into())
        );
        // `\\.` is an escaped backslash that ends the key.
        assert_eq!(
            render_with(r"{{payload@x\\.y}}", payload, Value::Null),
            Ok("backslash key".into())
        );
        assert_eq!(split_path(r"a\.b.c"), vec!["a.b", "c"]);
        assert_eq!(split_path(r"x\\.y"), vec!["x\\", "y"]);
        assert_eq!(split_path("a..b"), vec!["a", "", "b"]);
    }

    #[test]
    fn missing_paths_are_named() {
        let p = profile();
        for path in [
            "profile@data.pii.middlename",
            "profile@nope",
            "profile@data.pii.firstname.more",
            "profile@traits.nothing.deeper",
            "profile@traits.score.x",
            "profile@interests.name",
        ] {
            let template = format!("Hi {{{{{path}}}}}");
            assert_eq!(
                render_with(&template, Value::Null, p.clone()),
                missing(path)
            );
        }
        let err = render_with("{{profile@data.pii.firstname}}", Value::Null, json!({}))
            .expect_err("missing");
        assert!(
            err.to_string().contains("`profile@data.pii.firstname`"),
            "{err}"
        );
    }

    #[test]
    fn empty_and_null_containers_are_missing() {
        let payload = json!({"empty": {}, "list": [], "null": null});
        for path in [
            "payload@empty.a",
            "payload@list.0",
            "payload@null.a",
            "payload@null.0",
        ] {
            let template = format!("{{{{{path}}}}}");
            assert_eq!(
                render_with(&template, payload.clone(), Value::Null),
                missing(path)
            );
        }
        // A null source behaves as `{}`; flow is always null for a microservice.
        assert_eq!(
            render_with("{{payload@a}}", Value::Null, Value::Null),
            missing("payload@a")
        );
        assert_eq!(
            render("{{flow@id}}", &Sources::default(), usize::MAX),
            missing("flow@id")
        );
    }

    #[test]
    fn the_first_missing_reference_stops_rendering() {
        assert_eq!(
            render_with("{{payload@a}} {{payload@b}}", json!({"x": 1}), Value::Null),
            missing("payload@a")
        );
    }

    #[test]
    fn a_source_that_is_not_an_object() {
        assert_eq!(
            render_with("{{payload@0}}", json!(["a"]), Value::Null),
            Err(TemplateError::SourceNotObject {
                reference: "payload@0".into()
            })
        );
        // Not referenced: no error.
        assert_eq!(
            render_with("plain", json!(["a"]), Value::Null),
            Ok("plain".into())
        );
    }

    #[test]
    fn whole_source_form() {
        assert_eq!(
            render_with("{{payload@...all}}", json!({"b": 1, "a": "x"}), Value::Null),
            Ok("{'b': 1, 'a': 'x'}".into())
        );
        assert_eq!(
            render("{{flow@...x}}", &Sources::default(), usize::MAX),
            Ok("{}".into())
        );
        // `{{payload@...}}` does not match: the path ends in `.`.
        assert_eq!(
            render_with("{{payload@...}}", json!({"a": 1}), Value::Null),
            Ok("{{payload@...}}".into())
        );
    }

    #[test]
    fn non_string_values_print_as_python() {
        let payload = json!({
            "none": null, "t": true, "f": false, "int": 42, "neg": -7, "big": 18446744073709551615u64,
            "float": 1.0, "dec": 2.75, "small": 0.00001, "large": 1e16, "mid": 123456789.5,
            "list": [1, "two", null, true, 2.5],
            "dict": {"a": 1, "b": [true, null, "x"]},
            "quotes": ["it's", "say \"hi\"", "both ' and \"", "back\\slash", "tab\there\nline"],
            "empty": {"l": [], "d": {}}
        });
        let cases = [
            ("none", "None"),
            ("t", "True"),
            ("f", "False"),
            ("int", "42"),
            ("neg", "-7"),
            ("big", "18446744073709551615"),
            ("float", "1.0"),
            ("dec", "2.75"),
            ("small", "1e-05"),
            ("large", "1e+16"),
            ("mid", "123456789.5"),
            ("list", "[1, 'two', None, True, 2.5]"),
            ("dict", "{'a': 1, 'b': [True, None, 'x']}"),
            (
                "quotes",
                r#"["it's", 'say "hi"', 'both \' and "', 'back\\slash', 'tab\there\nline']"#,
            ),
            ("empty", "{'l': [], 'd': {}}"),
        ];
        for (key, expected) in cases {
            let template = format!("{{{{payload@{key}}}}}");
            assert_eq!(
                render_with(&template, payload.clone(), Value::Null),
                Ok(expected.to_string()),
                "payload@{key}"
            );
        }
    }

    #[test]
    fn strings_are_inserted_as_they_are_at_the_top_level() {
        let payload = json!({"s": "it's \"quoted\" \\ and\nnew line"});
        assert_eq!(
            render_with("{{payload@s}}", payload, Value::Null),
            Ok("it's \"quoted\" \\ and\nnew line".into())
        );
    }

    #[test]
    fn object_order_is_kept() {
        // Needs serde_json's `preserve_order`: Python dicts keep insertion order.
        let payload: Value =
            serde_json::from_str(r#"{"o": {"zeta": 1, "alpha": 2, "mid": 3}}"#).expect("json");
        assert_eq!(
            render_with("{{payload@o}}", payload, Value::Null),
            Ok("{'zeta': 1, 'alpha': 2, 'mid': 3}".into())
        );
    }

    #[test]
    fn python_float_repr_matches_python() {
        let cases = [
            (1.0, "1.0"),
            (-1.5, "-1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123, "0.000123"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (1e100, "1e+100"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (100.0, "100.0"),
            (123.456, "123.456"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (f, expected) in cases {
            assert_eq!(python_float_repr(f), expected, "{f:e}");
        }
        // JSON numbers as serde_json reads them.
        let v: Value = serde_json::from_str("[1e2, 1E-7, 2.50, -3]").expect("json");
        assert_eq!(python_repr(&v), "[100.0, 1e-07, 2.5, -3]");
    }

    #[test]
    fn python_string_repr() {
        let cases = [
            ("plain", "'plain'"),
            ("it's", r#""it's""#),
            ("\"q\"", r#"'"q"'"#),
            ("'\"", r#"'\'"'"#),
            ("a\\b", r"'a\\b'"),
            ("\u{7}\u{1b}\u{7f}", r"'\x07\x1b\x7f'"),
            ("zażółć 漢字 👍", "'zażółć 漢字 👍'"),
            ("\u{85}\u{a0}\u{ad}", r"'\x85\xa0\xad'"),
            ("a\u{200d}b\u{2028}\u{feff}", r"'a\u200db\u2028\ufeff'"),
            ("\u{e0001}\u{f0000}", r"'\U000e0001\U000f0000'"),
            ("👨\u{200d}👩\u{200d}👧", r"'👨\u200d👩\u200d👧'"),
        ];
        for (s, expected) in cases {
            assert_eq!(python_repr(&json!(s)), expected, "{s:?}");
        }
        assert_eq!(python_str(&json!("it's")), "it's");
    }

    #[test]
    fn lookalikes_stay_verbatim() {
        let payload = json!({"x": "X", "a": {"b": "B"}});
        for template in [
            "{{Profile@x}}",
            "{{PAYLOAD@x}}",
            "{{payload@...}}",
            "{{payload@x.}}",
            "{{payload@x[}}",
            "{{payload@}}",
            "{{payload@a b}}",
            "{{payload@x}",
            "{payload@x}}",
            "{ {payload@x}}",
            "{{payload @x}}",
            "{{payload@x:y}}",
            "{{payload@zażółć}}",
            "{{user@x}}",
            "{{x}}",
            "payload@x",
            "{{payload#x}}",
            "{{ payload@x }",
            "",
        ] {
            assert_eq!(
                render_with(template, payload.clone(), Value::Null),
                Ok(template.to_string()),
                "{template}"
            );
            assert!(references(template).is_empty(), "{template}");
        }
    }

    #[test]
    fn whitespace_inside_braces() {
        let payload = json!({"x": "X"});
        for template in [
            "{{ payload@x }}",
            "{{\tpayload@x\n}}",
            "{{   payload@x}}",
            "{{payload@x   }}",
            "{{\u{a0}payload@x\u{3000}}}",
            "{{\u{1c}payload@x\u{2029}}}",
        ] {
            assert_eq!(
                render_with(template, payload.clone(), Value::Null),
                Ok("X".into()),
                "{template:?}"
            );
        }
        // Zero-width space is not whitespace in Python: verbatim.
        assert_eq!(
            render_with("{{\u{200b}payload@x}}", payload, Value::Null),
            Ok("{{\u{200b}payload@x}}".into())
        );
    }

    #[test]
    fn extra_braces_around_a_reference() {
        let payload = json!({"x": "X"});
        assert_eq!(
            render_with("{{{payload@x}}}", payload.clone(), Value::Null),
            Ok("{X}".into())
        );
        assert_eq!(
            render_with("{{{{payload@x}}}}", payload, Value::Null),
            Ok("{{X}}".into())
        );
    }

    #[test]
    fn multiple_references_and_unicode_around_them() {
        let payload = json!({"name": "Zoë", "city": "Kraków", "n": 3});
        assert_eq!(
            render_with(
                "Cześć {{payload@name}} 👋 z {{payload@city}}! 漢字{{payload@n}}漢字 {{payload@name}}",
                payload,
                Value::Null
            ),
            Ok("Cześć Zoë 👋 z Kraków! 漢字3漢字 Zoë".into())
        );
    }

    #[test]
    fn values_are_not_rendered_again() {
        let payload = json!({"a": "{{payload@b}}", "b": "no"});
        assert_eq!(
            render_with("{{payload@a}}", payload, Value::Null),
            Ok("{{payload@b}}".into())
        );
    }

    #[test]
    fn typo_range_characters_are_path_characters() {
        // `A-a` admits `[ \ ] ^ _` and backtick.
        let payload = json!({"a^b": "caret", "a`b": "tick", "a_b": "under", "a]": "bracket"});
        assert_eq!(
            render_with(
                "{{payload@a^b}} {{payload@a`b}} {{payload@a_b}} {{payload@a]}}",
                payload,
                Value::Null
            ),
            Ok("caret tick under bracket".into())
        );
        for b in 0u8..=127 {
            let expected = b.is_ascii_alphanumeric() || b"[\\]^_`-.".contains(&b);
            assert_eq!(is_path_byte(b), expected, "{:?}", char::from(b));
        }
    }

    #[test]
    fn references_are_listed_with_spans() {
        let template = "Hi {{ profile@data.pii.firstname }}, see {{payload@items.0}}{{Profile@x}}";
        let refs = references(template);
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].source, Source::Profile);
        assert_eq!(refs[0].path, "data.pii.firstname");
        assert_eq!(
            &template[refs[0].span.clone()],
            "{{ profile@data.pii.firstname }}"
        );
        assert_eq!(refs[0].expression(), "profile@data.pii.firstname");
        assert_eq!(refs[1].source, Source::Payload);
        assert_eq!(&template[refs[1].span.clone()], "{{payload@items.0}}");
        assert_eq!(refs[1].to_string(), "payload@items.0");
    }

    fn problem(template: &str) -> (String, SyntaxProblem) {
        match check_syntax(template) {
            Err(TemplateError::Malformed {
                snippet, problem, ..
            }) => (snippet, problem),
            other => panic!("{template:?}: {other:?}"),
        }
    }

    #[test]
    fn check_syntax_accepts_well_formed_and_plain_text() {
        for template in [
            "",
            "Hello world",
            "Hello {{profile@data.pii.firstname}} {{ payload@a.0 }}",
            "{{x}} {{user@name}} { {profile@x}} profile@x {{payload#x}} {{profilex@y}}",
            "{{{payload@x}}}",
            "price: {{ 5 }} @ {{",
        ] {
            assert_eq!(check_syntax(template), Ok(()), "{template:?}");
        }
    }

    #[test]
    fn check_syntax_reports_malformed_references() {
        use SyntaxProblem::*;
        let cases = [
            ("Hi {{profile@data.}}!", "{{profile@data.}}", BadEnding('.')),
            ("{{profile@...}}", "{{profile@...}}", BadEnding('.')),
            ("{{profile@items[}}", "{{profile@items[}}", BadEnding('[')),
            ("{{profile@}}", "{{profile@}}", EmptyPath),
            ("{{ profile@ }}", "{{ profile@ }}", EmptyPath),
            (
                "{{profile@first name}}",
                "{{profile@first name}}",
                Unexpected(' '),
            ),
            ("{{profile@ name}}", "{{profile@ name}}", Unexpected(' ')),
            ("{{profile@a:b}}", "{{profile@a:b}}", Unexpected(':')),
            ("{{profile@imię}}", "{{profile@imię}}", Unexpected('ę')),
            ("{{profile@name} x", "{{profile@name}", Unclosed),
            ("Hi {{profile@name", "{{profile@name", Unclosed),
            ("{{profile@name }", "{{profile@name }", Unclosed),
            (
                "{{Profile@name}}",
                "{{Profile@name}}",
                SourceCase("Profile".into()),
            ),
            (
                "{{ EVENT@type }}",
                "{{ EVENT@type }}",
                SourceCase("EVENT".into()),
            ),
        ];
        for (template, snippet, expected) in cases {
            assert_eq!(
                problem(template),
                (snippet.to_string(), expected),
                "{template:?}"
            );
        }
    }

    #[test]
    fn check_syntax_snippets_stop_at_the_line_or_the_next_reference() {
        assert_eq!(
            problem("{{profile@a b\nmore}}").0,
            "{{profile@a b".to_string()
        );
        assert_eq!(
            problem("{{profile@a b {{payload@x}}").0,
            "{{profile@a b".to_string()
        );
        assert_eq!(problem("{{profile@a,b").0, "{{profile@a,".to_string());
    }

    #[test]
    fn check_syntax_reports_the_first_problem_with_its_position() {
        let err =
            check_syntax("Zoë {{payload@ok}} {{profile@bad.}} {{profile@}}").expect_err("bad");
        assert_eq!(
            err,
            TemplateError::Malformed {
                snippet: "{{profile@bad.}}".into(),
                offset: 20,
                position: 20,
                problem: SyntaxProblem::BadEnding('.'),
            }
        );
        assert_eq!(
            err.to_string(),
            "malformed reference `{{profile@bad.}}` at character 20: a path must not end with `.`"
        );
        let unexpected = check_syntax("{{payload@a b}}")
            .expect_err("bad")
            .to_string();
        assert!(unexpected.contains("whitespace"), "{unexpected}");
        let forbidden = check_syntax("{{payload@a:b}}")
            .expect_err("bad")
            .to_string();
        assert!(forbidden.contains("':'"), "{forbidden}");
    }

    #[test]
    fn malformed_references_render_verbatim_next_to_good_ones() {
        let payload = json!({"x": "X"});
        assert_eq!(
            render_with(
                "{{payload@x.}} {{payload@x}} {{Payload@x}}",
                payload,
                Value::Null
            ),
            Ok("{{payload@x.}} X {{Payload@x}}".into())
        );
    }

    #[test]
    fn rendering_stops_at_the_limit() {
        let payload = json!({"s": "abc", "l": ["ab"], "big": "x".repeat(60_000)});
        let sources = Sources {
            payload: &payload,
            ..Sources::default()
        };
        assert_eq!(render("{{payload@s}}", &sources, 3), Ok("abc".into()));
        assert_eq!(
            render("{{payload@s}}", &sources, 2),
            Err(TemplateError::TooLong { max_bytes: 2 })
        );
        assert_eq!(render("[{{payload@s}}]", &sources, 5), Ok("[abc]".into()));
        assert!(render("[{{payload@s}}]", &sources, 4).is_err());
        assert_eq!(render("{{payload@l}}", &sources, 6), Ok("['ab']".into()));
        assert!(render("{{payload@l}}", &sources, 5).is_err());
        // A 60 KB value a thousand times: 60 MB unbounded, refused at the limit.
        let template = "{{payload@big}}".repeat(1000);
        assert_eq!(
            render(&template, &sources, 1_000_000),
            Err(TemplateError::TooLong {
                max_bytes: 1_000_000
            })
        );
        // The whole source, printed as Python does, stops too.
        let whole = "{{payload@...all}}".repeat(1000);
        assert!(render(&whole, &sources, 1_000_000).is_err());
    }

    #[test]
    fn a_missing_reference_past_the_limit_is_still_reported() {
        let payload = json!({"big": "x".repeat(1000)});
        let sources = Sources {
            payload: &payload,
            ..Sources::default()
        };
        let template = format!("{}{{{{payload@nope}}}}", "{{payload@big}}".repeat(10));
        assert_eq!(render(&template, &sources, 5000), missing("payload@nope"));
    }
}
