//! Dotty's lookup: a reference's path split on `.` (with dotty's escapes) and followed through
//! objects and lists of its source (see the module documentation of `template`).

use super::*;

/// Dotty's `_split`: `\\.` → a key ending in `\`, then `\.` → a literal `.`, then split on `.`.
pub(super) fn split_path(path: &str) -> Vec<String> {
    // Sentinels cannot collide: a path holds only ASCII from the path class.
    const SKIP: &str = "\u{0}";
    const ESCAPED: &str = "\u{1}";
    path.replace("\\\\.", &format!("{SKIP}."))
        .replace("\\.", ESCAPED)
        .split('.')
        .map(|key| key.replace(ESCAPED, ".").replace(SKIP, "\\"))
        .collect()
}

/// `{}`, what the whole-source form renders for a `null` source.
pub(super) static EMPTY_OBJECT: LazyLock<Value> = LazyLock::new(|| Value::Object(Map::new()));

/// The value a reference points to, borrowed from the sources: a large value referenced many
/// times is not copied each time.
pub(super) fn resolve<'a>(
    reference: &Reference,
    sources: &Sources<'a>,
) -> Result<&'a Value, TemplateError> {
    let missing = || TemplateError::MissingPath {
        reference: reference.expression(),
    };
    let root = sources.get(reference.source);
    let whole_source = reference.path.starts_with("...");
    let map: &Map<String, Value> = match root {
        Value::Object(map) => map,
        Value::Null if whole_source => return Ok(&EMPTY_OBJECT),
        Value::Null => return Err(missing()),
        _ => {
            return Err(TemplateError::SourceNotObject {
                reference: reference.expression(),
            });
        }
    };
    if whole_source {
        return Ok(root);
    }
    let mut segments = split_path(&reference.path).into_iter();
    let first = segments.next().unwrap_or_default();
    let mut current = map.get(&first).ok_or_else(missing)?;
    for segment in segments {
        current = match current {
            Value::Object(map) => map.get(&segment),
            Value::Array(list) => list_index(&segment).and_then(|i| list.get(i)),
            _ => None,
        }
        .ok_or_else(missing)?;
    }
    Ok(current)
}

/// Python's `it.isdigit()` then `int(it)`, for ASCII paths. Too large an index is out of range.
pub(super) fn list_index(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(segment.parse().unwrap_or(usize::MAX))
}
