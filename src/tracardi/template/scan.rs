//! Which text is a reference: the matches of Tracardi's regex, found left to right without
//! overlap (see the module documentation of `template`), and the near misses `check_syntax`
//! reports.

use super::*;

pub(super) enum Attempt {
    Reference(Reference),
    Malformed {
        start: usize,
        problem: SyntaxProblem,
    },
}

/// Tries a match at every `{{`, left to right; a well-formed reference is skipped as a whole.
pub(super) fn scan(template: &str) -> impl Iterator<Item = Attempt> + '_ {
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let start = from + template.get(from..)?.find("{{")?;
            match attempt_at(template, start) {
                Some(Attempt::Reference(r)) => {
                    from = r.span.end;
                    return Some(Attempt::Reference(r));
                }
                other => {
                    // `{` is one byte: the next position is a char boundary.
                    from = start + 1;
                    if other.is_some() {
                        return other;
                    }
                }
            }
        }
    })
}

/// Python's `\s` for `str` patterns: `str.isspace()`.
pub(super) fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

/// `[\[\]0-9a-zA-a_\-\.]`: digits, `-`, `.`, and `A`..=`z` (letters and `[ \ ] ^ _` backtick).
pub(super) fn is_path_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'z' | b'-' | b'.')
}

pub(super) fn skip_py_space(s: &str, mut i: usize) -> usize {
    while let Some(c) = s[i..].chars().next() {
        if !is_py_space(c) {
            break;
        }
        i += c.len_utf8();
    }
    i
}

/// `None` when the text at `start` (a `{{`) does not even look like a reference.
pub(super) fn attempt_at(s: &str, start: usize) -> Option<Attempt> {
    let name_start = skip_py_space(s, start + 2);
    let name_len = s[name_start..]
        .bytes()
        .take_while(u8::is_ascii_alphabetic)
        .count();
    let name_end = name_start + name_len;
    if !s[name_end..].starts_with('@') {
        return None;
    }
    let name = &s[name_start..name_end];
    let malformed = |problem| Some(Attempt::Malformed { start, problem });
    let Some(source) = Source::from_name(name) else {
        return Source::from_name_ignoring_case(name)
            .and_then(|_| malformed(SyntaxProblem::SourceCase(name.to_string())));
    };
    let path_start = name_end + 1;
    let path_end = path_start
        + s[path_start..]
            .bytes()
            .take_while(|&b| is_path_byte(b))
            .count();
    let path = &s[path_start..path_end];
    let close = skip_py_space(s, path_end);
    if s[close..].starts_with("}}") {
        return match path.bytes().last() {
            None => malformed(SyntaxProblem::EmptyPath),
            Some(last @ (b'.' | b'[')) => malformed(SyntaxProblem::BadEnding(char::from(last))),
            Some(_) => Some(Attempt::Reference(Reference {
                source,
                path: path.to_string(),
                span: start..close + 2,
            })),
        };
    }
    match s[close..].chars().next() {
        None | Some('}') => malformed(SyntaxProblem::Unclosed),
        Some(_) => {
            // The first character that broke the path: whitespace, or a forbidden one.
            let bad = s[path_end..].chars().next().unwrap_or('}');
            malformed(SyntaxProblem::Unexpected(bad))
        }
    }
}

/// The text to quote in a syntax error: up to the next `}}` when it is near and on the same
/// line, else up to and including the character that broke the reference.
pub(super) fn snippet(s: &str, start: usize) -> String {
    const MAX_CHARS: usize = 80;
    let rest = &s[start..];
    if let Some(close) = rest[2..].find("}}").map(|i| i + 2) {
        let candidate = &rest[..close + 2];
        let inner = &rest[2..close];
        if !inner.contains('\n') && !inner.contains("{{") && candidate.chars().count() <= MAX_CHARS
        {
            return candidate.to_string();
        }
    }
    // `{{`, whitespace, name, `@`, path, whitespace, then the offending character.
    let at = rest.find('@').map_or(rest.len(), |i| i + 1);
    let path_len = rest[at..].bytes().take_while(|&b| is_path_byte(b)).count();
    let mut end = skip_py_space(rest, at + path_len);
    if let Some(c) = rest[end..].chars().next() {
        end += c.len_utf8();
    }
    rest[..end].chars().take(MAX_CHARS).collect()
}
