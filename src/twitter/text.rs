//! X's weighted tweet length, as twitter-text v3 counts it (`config/v3.json`).
//!
//! Pure functions, no I/O. The rules:
//!
//! - The text is NFC-normalised first (as twitter-text's `text.normalize()`), so `e` + U+0301
//!   counts as the single `é`.
//! - Every URL counts 23 (`transformedURLLength`, the length of a t.co link), however long, up to
//!   twitter-text's limits (below).
//! - Every emoji counts 2 (`defaultWeight`), the whole sequence: 👍🏽, 👨‍👩‍👧, 🇵🇱 and 1️⃣ are 2 each.
//! - Every other code point counts 1 in the light ranges U+0000–U+10FF, U+2000–U+200D,
//!   U+2010–U+201F, U+2032–U+2037 (Latin, Greek, Cyrillic, Hebrew, Arabic, Indic scripts …,
//!   general punctuation), else 2 (CJK, Hangul, symbols …).
//! - A post may weigh at most [`MAX_WEIGHTED_LENGTH`] = 280.
//!
//! twitter-text's own conformance cases (`validate.yml`, in `../shared/vectors/twitter-text/`)
//! check this module: see `text/conformance.rs`.
//!
//! # Cost
//!
//! Counting is linear in the text: every position is looked at a bounded number of times. The
//! URL rules are regular expressions in twitter-text, whose backtracking rescans every following
//! domain label from each possible start; here one right-to-left pass first records, for every
//! position, where the longest domain starting there ends (`label_chain_ends`), and the scan
//! for URLs then reads that table.
//!
//! A text longer than [`MAX_FITTING_BYTES`] cannot fit any post, whatever it holds: callers stop
//! building such a text (the template renderer does) instead of counting it.
//!
//! # Emoji (an approximation of twitter-text's twemoji regex)
//!
//! An emoji is, at one position:
//! - a pair of regional indicators (a flag, 🇵🇱), or a lone one;
//! - a keycap: `#`, `*` or a digit, an optional U+FE0F, then U+20E3;
//! - a skin-tone modifier on its own (U+1F3FB–U+1F3FF);
//! - an `Extended_Pictographic` character (Unicode 15 table below), followed by an optional U+FE0F
//!   or skin-tone modifier, then an optional tag sequence (up to five of U+E0020–U+E007E, ending
//!   in U+E007F: the flags of England, Scotland, Wales). Such a character followed by U+FE0E
//!   (text presentation) is not an emoji, and © and ® (which weigh 1 as text) are emoji only
//!   when U+FE0F follows;
//!
//! and any of these joined to further pictographic ones by U+200D (ZWJ sequences, 👨‍👩‍👧,
//! 🏳️‍🌈), up to four in all, as in the longest sequences Unicode recommends (families,
//! kisses); a ZWJ after the fourth counts on its own and the next pictograph starts a new emoji.
//! twemoji's regex lists the sequences Twitter draws, so an invented ZWJ sequence that twemoji
//! does not know counts 2 here but more on X; nothing in common use differs.
//!
//! # URLs (twitter-text's `extractUrlsWithIndices`)
//!
//! - A URL starts at the start of the text or after a character that is not an ASCII letter or
//!   digit, `@`, `＠`, `$`, `#` or `＃` (nor U+FEFF, U+FFFE, U+FFFF), and not right after the end
//!   of the URL before it.
//! - `http://` or `https://` (any case), a domain, an optional `:port`, an optional `/path`
//!   and an optional `?query`, with twitter-text's rules for which characters may appear in a
//!   path or query and which may end one (so `example.com/a.` leaves the final `.` out, and
//!   paths may hold balanced parentheses two deep).
//! - A domain is dot-separated labels (any characters but ASCII punctuation, whitespace and
//!   U+FEFF/U+FFFE/U+FFFF; `-` inside, `_` inside all but the last label) ending in one of
//!   twitter-text's ~1,500 top-level domains (`tlds.txt`, its `tld_lib.yml`: generic ones,
//!   country codes, internationalised ones such as `рф` or `پاکستان`), or punycode `xn--…`.
//!   A top-level domain may not run on into an ASCII letter or digit, `@`, `+` or `-`.
//! - Without a scheme, only the ASCII parts of the domain count as URLs, it must not follow
//!   `-`, `_`, `.` or `/`, and a bare `name.cc` with a country code (`setup.py`, `readme.md`)
//!   is a URL only with a path, except `.co` and `.tv` (`vine.co`). Without a path, a port or a
//!   query that follows the domain counts by its characters, as in twitter-text.
//! - twitter-text's limits: a URL longer than [`MAX_URL_LENGTH`] (4,096 UTF-16 code units,
//!   counting `https://` in front of one written without a scheme) is not a URL, nor is one
//!   whose host has a label longer than 63 characters once punycode-encoded, nor a t.co link
//!   whose slug is longer than 40 characters; a t.co link ends after its slug. Such a rejected
//!   match counts by its characters, and no URL is looked for inside it.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::LazyLock;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// The most a post may weigh (`maxWeightedTweetLength`).
pub const MAX_WEIGHTED_LENGTH: usize = 280;

/// What every URL weighs, whatever its length (`transformedURLLength`).
pub const TRANSFORMED_URL_LENGTH: usize = 23;

/// The longest URL, in UTF-16 code units with its scheme (twitter-text's `MAX_URL_LENGTH`).
pub const MAX_URL_LENGTH: usize = 4096;

/// What one emoji weighs (`defaultWeight` / `scale`).
const EMOJI_WEIGHT: usize = 2;

/// The most pictographs one ZWJ sequence joins.
const MAX_ZWJ_ELEMENTS: usize = 4;

/// The most tag characters in an emoji tag sequence (before its cancel tag).
const MAX_TAGS: usize = 5;

/// The most code points one emoji spans: four elements, each a pictograph, a modifier, the tags
/// and their cancel tag, and the three ZWJs between them.
const MAX_EMOJI_CHARS: usize = MAX_ZWJ_ELEMENTS * (1 + 1 + MAX_TAGS + 1) + (MAX_ZWJ_ELEMENTS - 1);

/// The most code points an NFC-normalised text that fits a post can have. A URL weighs 23 for at
/// most 4,096 code points, an emoji 2 for at most 35 (`MAX_EMOJI_CHARS`), anything else at least 1
/// per code point: no part spans more than 4,096/23 code points per unit of weight, so a text of
/// weight 280 spans at most 280 × 4,096 / 23 = 49,864.
pub const MAX_FITTING_CHARS: usize = MAX_WEIGHTED_LENGTH * MAX_URL_LENGTH / TRANSFORMED_URL_LENGTH;

// URLs are the densest: the bound above would be wrong if an emoji could be denser.
const _: () = assert!(MAX_EMOJI_CHARS * TRANSFORMED_URL_LENGTH < MAX_URL_LENGTH * EMOJI_WEIGHT);

/// The longest canonical decomposition of a code point (U+1F82 ᾂ is α + three marks): NFC turns
/// at most this many code points into one.
const MAX_DECOMPOSITION: usize = 4;

/// The most bytes of UTF-8 a text that fits a post can have before normalisation: up to
/// 4 code points (`MAX_DECOMPOSITION`) compose into each of the [`MAX_FITTING_CHARS`], and a code
/// point takes at most 4 bytes. A longer text cannot fit, whatever it holds (779 KiB).
pub const MAX_FITTING_BYTES: usize = MAX_FITTING_CHARS * MAX_DECOMPOSITION * 4;

/// The weighted length of `text` as X counts it for a post (see the module documentation).
pub fn weighted_length(text: &str) -> usize {
    weigh(text, Emoji::Counted)
}

/// Whether `text` fits in one post.
pub fn fits(text: &str) -> bool {
    weighted_length(text) <= MAX_WEIGHTED_LENGTH
}

/// Whether emoji count as one unit (twitter-text's `emojiParsingEnabled`: on in config v3, X's;
/// off in v2, whose conformance cases check the rest of this module too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emoji {
    Counted,
    #[cfg(test)]
    ByCodePoint,
}

fn weigh(text: &str, emoji: Emoji) -> usize {
    let text = nfc_chars(text);
    let mut urls = url_ranges(&text).into_iter().peekable();
    let mut total = 0;
    let mut i = 0;
    while i < text.len() {
        // An emoji may have run over the start of a URL, which then counts by its characters.
        while urls.next_if(|url| url.start < i).is_some() {}
        if let Some(url) = urls.next_if(|url| url.start == i) {
            total += TRANSFORMED_URL_LENGTH;
            i = url.end;
            continue;
        }
        if emoji == Emoji::Counted
            && let Some(end) = emoji_end(&text, i)
        {
            total += EMOJI_WEIGHT;
            i = end;
            continue;
        }
        total += char_weight(text[i]);
        i += 1;
    }
    total
}

/// The code points of `text`, NFC-normalised. Most text already is (all ASCII text), which a
/// quick check tells for less than normalising costs.
fn nfc_chars(text: &str) -> Vec<char> {
    let mut chars = Vec::with_capacity(text.len());
    if text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes {
        chars.extend(text.chars());
    } else {
        chars.extend(text.nfc());
    }
    chars
}

/// 1 in twitter-text v3's light ranges, else 2.
fn char_weight(c: char) -> usize {
    match c as u32 {
        0x0000..=0x10ff | 0x2000..=0x200d | 0x2010..=0x201f | 0x2032..=0x2037 => 1,
        _ => 2,
    }
}

/// twitter-text's invalid characters: a text holding one is not a valid post there.
fn is_invalid(c: char) -> bool {
    matches!(c, '\u{fffe}' | '\u{feff}' | '\u{ffff}')
}

// ---------------------------------------------------------------------------------------------
// Emoji

const ZWJ: char = '\u{200d}';
const VS15: char = '\u{fe0e}';
const VS16: char = '\u{fe0f}';
const KEYCAP: char = '\u{20e3}';
const CANCEL_TAG: char = '\u{e007f}';

fn is_regional_indicator(c: char) -> bool {
    ('\u{1f1e6}'..='\u{1f1ff}').contains(&c)
}

fn is_skin_tone(c: char) -> bool {
    ('\u{1f3fb}'..='\u{1f3ff}').contains(&c)
}

fn is_tag(c: char) -> bool {
    ('\u{e0020}'..='\u{e007e}').contains(&c)
}

/// `Extended_Pictographic` (Unicode 15 `emoji-data.txt`).
fn is_pictographic(c: char) -> bool {
    matches!(c as u32,
        0xa9 | 0xae | 0x203c | 0x2049 | 0x2122 | 0x2139 | 0x2194..=0x2199 | 0x21a9..=0x21aa
        | 0x231a..=0x231b | 0x2328 | 0x2388 | 0x23cf | 0x23e9..=0x23f3 | 0x23f8..=0x23fa
        | 0x24c2 | 0x25aa..=0x25ab | 0x25b6 | 0x25c0 | 0x25fb..=0x25fe | 0x2600..=0x2605
        | 0x2607..=0x2612 | 0x2614..=0x2685 | 0x2690..=0x2705 | 0x2708..=0x2712 | 0x2714
        | 0x2716 | 0x271d | 0x2721 | 0x2728 | 0x2733..=0x2734 | 0x2744 | 0x2747 | 0x274c
        | 0x274e | 0x2753..=0x2755 | 0x2757 | 0x2763..=0x2767 | 0x2795..=0x2797 | 0x27a1
        | 0x27b0 | 0x27bf | 0x2934..=0x2935 | 0x2b05..=0x2b07 | 0x2b1b..=0x2b1c | 0x2b50
        | 0x2b55 | 0x3030 | 0x303d | 0x3297 | 0x3299
        | 0x1f000..=0x1f0ff | 0x1f10d..=0x1f10f | 0x1f12f | 0x1f16c..=0x1f171
        | 0x1f17e..=0x1f17f | 0x1f18e | 0x1f191..=0x1f19a | 0x1f1ad..=0x1f1e5
        | 0x1f201..=0x1f20f | 0x1f21a | 0x1f22f | 0x1f232..=0x1f23a | 0x1f23c..=0x1f23f
        | 0x1f249..=0x1f3fa | 0x1f400..=0x1f53d | 0x1f546..=0x1f64f | 0x1f680..=0x1f6ff
        | 0x1f774..=0x1f77f | 0x1f7d5..=0x1f7ff | 0x1f80c..=0x1f80f | 0x1f848..=0x1f84f
        | 0x1f85a..=0x1f85f | 0x1f888..=0x1f88f | 0x1f8ae..=0x1f8ff | 0x1f90c..=0x1f93a
        | 0x1f93c..=0x1f945 | 0x1f947..=0x1faff | 0x1fc00..=0x1fffd
    )
}

/// The end of the emoji (with its ZWJ continuations) that starts at `i`, if one does.
fn emoji_end(s: &[char], i: usize) -> Option<usize> {
    let mut end = emoji_element_end(s, i)?;
    let mut elements = 1;
    while elements < MAX_ZWJ_ELEMENTS && s.get(end) == Some(&ZWJ) {
        let after = end + 1;
        match s.get(after) {
            Some(&c) if is_pictographic(c) => match emoji_element_end(s, after) {
                Some(next) => {
                    end = next;
                    elements += 1;
                }
                None => break,
            },
            _ => break,
        }
    }
    Some(end)
}

/// One emoji without ZWJ continuations.
fn emoji_element_end(s: &[char], i: usize) -> Option<usize> {
    let c = *s.get(i)?;
    let mut end = i + 1;
    if is_regional_indicator(c) {
        if s.get(end).is_some_and(|&n| is_regional_indicator(n)) {
            end += 1;
        }
        return Some(end);
    }
    if matches!(c, '#' | '*' | '0'..='9') {
        if s.get(end) == Some(&VS16) {
            end += 1;
        }
        return (s.get(end) == Some(&KEYCAP)).then_some(end + 1);
    }
    if is_skin_tone(c) {
        return Some(end);
    }
    if !is_pictographic(c) {
        return None;
    }
    match s.get(end) {
        Some(&VS15) => return None,
        Some(&VS16) => end += 1,
        Some(&m) if is_skin_tone(m) => end += 1,
        // © and ® are text unless asked to be emoji.
        _ if char_weight(c) == 1 => return None,
        _ => {}
    }
    let tags = s[end..]
        .iter()
        .take(MAX_TAGS)
        .take_while(|&&t| is_tag(t))
        .count();
    if tags > 0 && s.get(end + tags) == Some(&CANCEL_TAG) {
        end += tags + 1;
    }
    Some(end)
}

// ---------------------------------------------------------------------------------------------
// Top-level domains

/// twitter-text's top-level domains, lowercase, from `tlds.txt`.
struct Tlds {
    generic: HashSet<&'static str>,
    country: HashSet<&'static str>,
    /// The shortest and the longest, in code points: shorter and longer text is not looked up.
    shortest: usize,
    longest: usize,
}

static TLDS: LazyLock<Tlds> = LazyLock::new(|| Tlds::parse(include_str!("tlds.txt")));

impl Tlds {
    /// `# comment` lines, `[country]` and `[generic]` headings, then one domain a line.
    fn parse(file: &'static str) -> Tlds {
        let mut tlds = Tlds {
            generic: HashSet::new(),
            country: HashSet::new(),
            shortest: usize::MAX,
            longest: 0,
        };
        let mut section = None;
        for line in file
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            match line {
                "[country]" => section = Some(&mut tlds.country),
                "[generic]" => section = Some(&mut tlds.generic),
                tld => {
                    let set = section
                        .as_deref_mut()
                        .expect("tlds.txt names its section before its first domain");
                    set.insert(tld);
                    let length = tld.chars().count();
                    tlds.shortest = tlds.shortest.min(length);
                    tlds.longest = tlds.longest.max(length);
                }
            }
        }
        tlds
    }
}

/// The end of a top-level domain at `q`, tried as twitter-text's regex does: a generic one,
/// else a country code, else punycode (`xn--` and letters, digits, `-`). Of the generic (and of
/// the country) ones that match, the longest wins (its list puts a longer one before its
/// prefixes), and none may run on into an ASCII letter or digit, `@`, `+` or `-`.
///
/// `key` is scratch space, kept by the caller to spare an allocation per call.
fn tld_end(s: &[char], q: usize, key: &mut String) -> Option<usize> {
    let tlds = &*TLDS;
    key.clear();
    let (mut generic, mut country) = (None, None);
    for (n, &c) in s.get(q..)?.iter().take(tlds.longest).enumerate() {
        if !is_domain_char(c) {
            break;
        }
        key.extend(c.to_lowercase());
        let end = q + n + 1;
        let runs_on = s
            .get(end)
            .is_some_and(|&next| next.is_ascii_alphanumeric() || matches!(next, '@' | '+' | '-'));
        if runs_on || n + 1 < tlds.shortest {
            continue;
        }
        if tlds.generic.contains(key.as_str()) {
            generic = Some(end);
        } else if tlds.country.contains(key.as_str()) {
            country = Some(end);
        }
    }
    generic.or(country).or_else(|| punycode_end(s, q))
}

/// `xn--[-0-9a-z]+` at `q`, any case.
fn punycode_end(s: &[char], q: usize) -> Option<usize> {
    let head = s.get(q..q + 4)?;
    if !head
        .iter()
        .zip("xn--".chars())
        .all(|(&c, p)| c.to_ascii_lowercase() == p)
    {
        return None;
    }
    let len = s[q + 4..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == '-')
        .count();
    (len > 0).then_some(q + 4 + len)
}

// ---------------------------------------------------------------------------------------------
// Character classes of twitter-text's URL rules

/// ASCII punctuation that cannot be part of a domain label (twitter-text's `punct`; `"` and
/// the backtick are not in it).
fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '"' | '`')
}

fn is_space(c: char) -> bool {
    matches!(c,
        '\t'..='\r' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{180e}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// `validDomainChars`: what a label starts and ends with.
fn is_domain_char(c: char) -> bool {
    !is_punct(c) && !is_space(c) && !is_invalid(c)
}

/// What a label of a domain holds: `-` and `_` besides the domain characters (`_` only in a
/// subdomain).
fn is_label_char(c: char) -> bool {
    is_domain_char(c) || c == '-' || c == '_'
}

fn is_valid_preceding(c: char) -> bool {
    !(c.is_ascii_alphanumeric() || matches!(c, '@' | '＠' | '$' | '#' | '＃') || is_invalid(c))
}

/// twitter-text's `latinAccentChars`.
fn is_latin_accent(c: char) -> bool {
    matches!(c as u32,
        0xc0..=0xd6 | 0xd8..=0xf6 | 0xf8..=0xff | 0x100..=0x24f | 0x253 | 0x254 | 0x256 | 0x257
        | 0x259 | 0x25b | 0x263 | 0x268 | 0x26f | 0x272 | 0x289 | 0x28b | 0x2bb | 0x300..=0x36f
        | 0x1e00..=0x1eff
    )
}

/// What a label of `validAsciiDomain` holds (starting and ending with any of them).
fn is_ascii_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || is_latin_accent(c)
}

fn is_cyrillic(c: char) -> bool {
    ('\u{400}'..='\u{4ff}').contains(&c)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '!' | '*'
                | '\''
                | ';'
                | ':'
                | '='
                | '+'
                | ','
                | '.'
                | '$'
                | '/'
                | '%'
                | '#'
                | '['
                | ']'
                | '-'
                | '\u{2013}'
                | '_'
                | '~'
                | '@'
                | '|'
                | '&'
        )
        || is_cyrillic(c)
        || is_latin_accent(c)
}

fn is_path_ending_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(c, '+' | '-' | '=' | '_' | '#' | '/')
        || is_cyrillic(c)
        || is_latin_accent(c)
}

fn is_query_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '!' | '?'
                | '*'
                | '\''
                | '@'
                | '('
                | ')'
                | ';'
                | ':'
                | '&'
                | '='
                | '+'
                | '$'
                | '/'
                | '%'
                | '#'
                | '['
                | ']'
                | '-'
                | '_'
                | '.'
                | ','
                | '~'
                | '|'
        )
}

fn is_query_ending_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '&' | '=' | '#' | '/')
}

// ---------------------------------------------------------------------------------------------
// Domains, in one pass

/// No domain starts here.
const NONE: usize = usize::MAX;

/// For every position of `s`, where the longest domain starting there ends (or [`NONE`]): labels
/// (runs of `label`-class characters that start and end with an `edge` character, each followed
/// by `.`), then a top-level domain. The last label may not hold `_`. Of all the ways to read
/// the labels, the one with the most labels wins, as the regex's greedy `validSubdomain*`.
///
/// One pass from right to left. A label ends where its run of label characters ends, whatever
/// position of the run it starts at, so the run's end, its top-level domain and the domain that
/// continues after its dot are found once per run; each position then only combines them:
/// the domain that continues after the dot (more labels) if there is one, else the top-level
/// domain right after the dot (if the label starting here holds no `_`).
fn label_chain_ends(s: &[char], label: fn(char) -> bool, edge: fn(char) -> bool) -> Vec<usize> {
    let mut ends = vec![NONE; s.len()];
    let mut key = String::new();
    // The run of label characters the pass is in: what follows its dot, and whether the part
    // of it right of the current position holds a `_`.
    let mut continued = None;
    let mut tld = None;
    let mut underscore = false;
    for p in (0..s.len()).rev() {
        let c = s[p];
        if !label(c) {
            continue;
        }
        let last_of_run = s.get(p + 1).is_none_or(|&next| !label(next));
        if last_of_run {
            underscore = false;
            let dotted = edge(c) && s.get(p + 1) == Some(&'.');
            (continued, tld) = if dotted {
                let after_dot = p + 2;
                let more = ends.get(after_dot).copied().filter(|&end| end != NONE);
                (more, tld_end(s, after_dot, &mut key))
            } else {
                (None, None)
            };
        }
        underscore |= c == '_';
        if edge(c) {
            let own_tld = if underscore { None } else { tld };
            ends[p] = continued.or(own_tld).unwrap_or(NONE);
        }
    }
    ends
}

/// twitter-text's `validAsciiDomain`, found as often as it occurs in `domain`, left to right:
/// ranges relative to `domain`.
fn ascii_domains(domain: &[char]) -> Vec<Range<usize>> {
    let ends = label_chain_ends(domain, is_ascii_label_char, is_ascii_label_char);
    let mut found = Vec::new();
    let mut i = 0;
    while i < domain.len() {
        match ends[i] {
            NONE => i += 1,
            end => {
                found.push(i..end);
                i = end;
            }
        }
    }
    found
}

/// twitter-text's host check (its `idna.toAscii`): every label, punycode-encoded, has 1 to 63
/// characters, and a host written as punycode (`xn--…`) has an ASCII domain in it.
fn is_valid_host(domain: &[char]) -> bool {
    if domain.starts_with(&['x', 'n', '-', '-']) && ascii_domains(domain).is_empty() {
        return false;
    }
    domain
        .split(|&c| c == '.')
        .all(|label| punycoded_length(label).is_some_and(|len| (1..=63).contains(&len)))
}

/// The length of `label` as punycode.js's `toASCII` writes it: its parts (split at the
/// ideographic and full-width full stops) ASCII as they are, others as `xn--` and their
/// punycode, joined by dots. `None` past 63, the most a label may have: encoding never makes
/// a label shorter, so a longer one is not encoded at all.
fn punycoded_length(label: &[char]) -> Option<usize> {
    if label.len() > 63 {
        return None;
    }
    let mut length = 0;
    for (n, part) in label
        .split(|&c| matches!(c, '\u{3002}' | '\u{ff0e}' | '\u{ff61}'))
        .enumerate()
    {
        length += usize::from(n > 0);
        length += if part.iter().all(char::is_ascii) {
            part.len()
        } else {
            "xn--".len() + idna::punycode::encode(part)?.len()
        };
    }
    Some(length)
}

// ---------------------------------------------------------------------------------------------
// URLs

/// The end of a URL path after its `/`: the longest run of path characters (and balanced
/// parentheses, two deep, not empty) that ends in a path-ending character or a `)`.
fn path_end(s: &[char], start: usize) -> usize {
    let mut best = start;
    let mut depth = 0;
    let mut has_content = [false; 3];
    for (i, &c) in s.iter().enumerate().skip(start) {
        let after = i + 1;
        if c == '(' {
            if depth == 2 {
                break;
            }
            depth += 1;
            has_content[depth] = false;
        } else if c == ')' {
            if depth == 0 || !has_content[depth] {
                break;
            }
            depth -= 1;
            if depth == 0 {
                best = after;
            } else {
                has_content[depth] = true;
            }
        } else if is_path_char(c) {
            if depth > 0 {
                has_content[depth] = true;
            } else if is_path_ending_char(c) {
                best = after;
            }
        } else {
            break;
        }
    }
    best
}

/// The end of a query after its `?`, if it has a query-ending character.
fn query_end(s: &[char], start: usize) -> Option<usize> {
    let mut best = None;
    for (i, &c) in s.iter().enumerate().skip(start) {
        if !is_query_char(c) {
            break;
        }
        if is_query_ending_char(c) {
            best = Some(i + 1);
        }
    }
    best
}

struct UrlMatch {
    start: usize,
    end: usize,
    scheme: usize,
    domain: Range<usize>,
    has_path: bool,
}

fn starts_with_ignoring_case(s: &[char], at: usize, prefix: &str) -> bool {
    let mut chars = s.iter().skip(at);
    prefix
        .chars()
        .all(|p| chars.next().is_some_and(|c| c.to_ascii_lowercase() == p))
}

/// twitter-text's `extractUrl` regex, anchored at `start` (after the preceding character);
/// `domains` is [`label_chain_ends`] of the text.
fn match_url(s: &[char], start: usize, domains: &[usize]) -> Option<UrlMatch> {
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|p| starts_with_ignoring_case(s, start, p))
        .map_or(0, str::len);
    let domain_start = start + scheme;
    let domain_end = *domains.get(domain_start).filter(|&&end| end != NONE)?;
    let mut end = domain_end;
    if s.get(end) == Some(&':') {
        let digits = s[end + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits > 0 {
            end += 1 + digits;
        }
    }
    let has_path = s.get(end) == Some(&'/');
    if has_path {
        end = path_end(s, end + 1);
    }
    if s.get(end) == Some(&'?')
        && let Some(query) = query_end(s, end + 1)
    {
        end = query;
    }
    Some(UrlMatch {
        start,
        end,
        scheme,
        domain: domain_start..domain_end,
        has_path,
    })
}

/// `name.cc`: one label (starting and ending with a letter or digit) and a country code.
fn is_short_country_domain(domain: &[char]) -> Option<String> {
    let dot = domain.iter().position(|&c| c == '.')?;
    let (name, tld) = (&domain[..dot], &domain[dot + 1..]);
    let edges_ok = name.first().is_some_and(|&c| is_domain_char(c))
        && name.last().is_some_and(|&c| is_domain_char(c));
    let tld: String = tld.iter().flat_map(|c| c.to_lowercase()).collect();
    (edges_ok && TLDS.country.contains(tld.as_str())).then_some(tld)
}

/// Char ranges of the URLs X would shorten, in order.
fn url_ranges(text: &[char]) -> Vec<Range<usize>> {
    let mut urls = Vec::new();
    if !text.contains(&'.') {
        return urls;
    }
    let domains = label_chain_ends(text, is_label_char, is_domain_char);
    // Where the last match ended: its next character can precede a URL only as the regex's
    // `$2`, so no URL starts right there.
    let mut matched_to = 0;
    let mut i = 0;
    while i < text.len() {
        let may_start = i == 0 || (i > matched_to && is_valid_preceding(text[i - 1]));
        if may_start && let Some(m) = match_url(text, i, &domains) {
            accept(text, &m, &mut urls);
            matched_to = m.end;
            i = m.end;
            continue;
        }
        i += 1;
    }
    urls
}

/// What twitter-text keeps of a match: nothing past its limits; with a scheme, the URL (a t.co
/// link up to its slug); without, its ASCII domains.
fn accept(text: &[char], m: &UrlMatch, urls: &mut Vec<Range<usize>>) {
    let domain = &text[m.domain.clone()];
    let implied_scheme = if m.scheme > 0 { 0 } else { "https://".len() };
    let length: usize = text[m.start..m.end].iter().map(|c| c.len_utf16()).sum();
    if length + implied_scheme > MAX_URL_LENGTH || !is_valid_host(domain) {
        return;
    }
    if m.scheme > 0 {
        match tco_slug(&text[..m.end], m) {
            Some(slug) if slug.len() > MAX_TCO_SLUG_LENGTH => {}
            Some(slug) => urls.push(m.start..slug.end),
            None => urls.push(m.start..m.end),
        }
        return;
    }
    let before = m.start.checked_sub(1).map(|i| text[i]);
    if matches!(before, Some('-' | '_' | '.' | '/')) {
        return;
    }
    let found = ascii_domains(domain);
    let last = found.len().saturating_sub(1);
    for (n, range) in found.into_iter().enumerate() {
        let short = is_short_country_domain(&domain[range.clone()]);
        let special = short
            .as_deref()
            .is_some_and(|tld| tld == "co" || tld == "tv");
        if m.has_path || special || short.is_none() {
            let end = if n == last && m.has_path {
                m.end
            } else {
                m.domain.start + range.end
            };
            urls.push(m.domain.start + range.start..end);
        }
    }
}

/// The longest t.co slug X accepts (twitter-text's `MAX_TCO_SLUG_LENGTH`).
const MAX_TCO_SLUG_LENGTH: usize = 40;

/// In a t.co link (`t.co/` right after the scheme, any case), its slug: the letters and digits
/// after the `/`. `url` ends where the match ends.
fn tco_slug(url: &[char], m: &UrlMatch) -> Option<Range<usize>> {
    let host = m.start + m.scheme;
    if !starts_with_ignoring_case(url, host, "t.co/") {
        return None;
    }
    let start = host + "t.co/".len();
    let len = url[start..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    (len > 0).then_some(start..start + len)
}

#[cfg(test)]
mod conformance;

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<String> {
        let chars: Vec<char> = text.nfc().collect();
        url_ranges(&chars)
            .into_iter()
            .map(|r| chars[r].iter().collect())
            .collect()
    }

    #[test]
    fn ascii_boundary() {
        assert_eq!(weighted_length(""), 0);
        assert_eq!(weighted_length("Hello"), 5);
        let ok = "a".repeat(280);
        assert_eq!(weighted_length(&ok), 280);
        assert!(fits(&ok));
        let long = "a".repeat(281);
        assert_eq!(weighted_length(&long), 281);
        assert!(!fits(&long));
        assert_eq!(MAX_WEIGHTED_LENGTH, 280);
    }

    #[test]
    fn cjk_counts_two() {
        let ok = "漢".repeat(140);
        assert_eq!(weighted_length(&ok), 280);
        assert!(fits(&ok));
        let long = "漢".repeat(141);
        assert_eq!(weighted_length(&long), 282);
        assert!(!fits(&long));
        assert_eq!(weighted_length("こんにちは"), 10);
        assert_eq!(weighted_length("안녕"), 4);
        // 139 CJK + 2 ASCII = 280; one more ASCII is over.
        let mixed = format!("{}ab", "字".repeat(139));
        assert!(fits(&mixed));
        assert!(!fits(&format!("{mixed}c")));
    }

    #[test]
    fn light_ranges() {
        // Latin, accents, Greek, Cyrillic, Hebrew, Arabic, Devanagari: all below U+1100.
        assert_eq!(weighted_length("zażółć"), 6);
        assert_eq!(weighted_length("Ωмשعक"), 5);
        // General punctuation in the light ranges.
        assert_eq!(
            weighted_length("\u{2013}\u{201c}\u{201d}\u{2019}\u{2032}"),
            5
        );
        // Outside them: U+2020 †, U+2038 ‸, U+20AC €, U+2122 ™.
        assert_eq!(weighted_length("†‸€™"), 8);
        // U+1100 (Hangul jamo) is the first heavy code point.
        assert_eq!(weighted_length("\u{10ff}\u{1100}"), 3);
    }

    #[test]
    fn emoji_count_two_each() {
        let cases = [
            ("😀", 2),
            ("👍", 2),
            ("👍🏽", 2),
            ("👨\u{200d}👩\u{200d}👧", 2),
            ("👨\u{200d}👩\u{200d}👧\u{200d}👦", 2),
            ("🇵🇱", 2),
            ("🇵🇱🇺🇦", 4),
            ("🇵", 2),
            ("❤\u{fe0f}", 2),
            ("❤", 2),
            ("🏳\u{fe0f}\u{200d}🌈", 2),
            ("🧑🏽\u{200d}💻", 2),
            (
                "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}",
                2,
            ),
            ("1\u{fe0f}\u{20e3}", 2),
            ("#\u{20e3}", 2),
            ("©\u{fe0f}", 2),
            ("🏽", 2),
            ("👍👍👍", 6),
        ];
        for (text, expected) in cases {
            assert_eq!(weighted_length(text), expected, "{text:?}");
        }
    }

    #[test]
    fn text_symbols_that_are_not_emoji() {
        // © without VS16 is text, in the light range.
        assert_eq!(weighted_length("©"), 1);
        assert_eq!(weighted_length("© 2024"), 6);
        // Text presentation: the symbol and the selector count on their own.
        assert_eq!(weighted_length("☀\u{fe0e}"), 4);
        // A digit without a keycap is a digit; a stray ZWJ is light.
        assert_eq!(weighted_length("1"), 1);
        assert_eq!(weighted_length("a\u{200d}b"), 3);
        // A ZWJ followed by a non-pictograph does not join.
        assert_eq!(weighted_length("👍\u{200d}a"), 4);
    }

    #[test]
    fn emoji_at_the_limit() {
        let ok = "👍🏽".repeat(140);
        assert_eq!(weighted_length(&ok), 280);
        assert!(!fits(&format!("{ok}!")));
        let text = format!("{}👨\u{200d}👩\u{200d}👧", "a".repeat(278));
        assert_eq!(weighted_length(&text), 280);
    }

    #[test]
    fn nfc_first() {
        // e + combining acute → é: 1, not 2.
        assert_eq!(weighted_length("e\u{301}"), 1);
        // Decomposed Hangul jamo compose into one syllable: 2, not 6.
        assert_eq!(weighted_length("\u{1112}\u{1161}\u{11ab}"), 2);
    }

    #[test]
    fn a_long_url_counts_23() {
        let url = format!("https://example.com/{}", "x".repeat(200));
        assert_eq!(weighted_length(&url), 23);
        assert_eq!(weighted_length(&format!("Read {url} now")), 5 + 23 + 4);
        assert_eq!(weighted_length("http://a.co"), 23);
        assert_eq!(weighted_length("HTTPS://EXAMPLE.COM/A?b=c#d"), 23);
    }

    #[test]
    fn urls_at_the_limit() {
        let text = format!(
            "{} https://example.com/{}",
            "a".repeat(256),
            "p".repeat(100)
        );
        assert_eq!(weighted_length(&text), 280);
        assert!(fits(&text));
        assert!(!fits(&format!("{text}!")));
    }

    #[test]
    fn urls_with_a_scheme() {
        assert_eq!(
            urls("see https://example.com/path."),
            vec!["https://example.com/path"]
        );
        assert_eq!(
            urls("(https://example.com/a)"),
            vec!["https://example.com/a"]
        );
        assert_eq!(
            urls("https://en.wikipedia.org/wiki/Primer_(film), yes"),
            vec!["https://en.wikipedia.org/wiki/Primer_(film)"]
        );
        assert_eq!(
            urls("http://example.com:8080/x?q=1&r=2!"),
            vec!["http://example.com:8080/x?q=1&r=2"]
        );
        assert_eq!(urls("https://example.com?"), vec!["https://example.com"]);
        assert_eq!(
            urls("https://sub_domain.example.com"),
            vec!["https://sub_domain.example.com"]
        );
        assert_eq!(
            urls("https://xn--80ak6aa92e.xn--p1ai/"),
            vec!["https://xn--80ak6aa92e.xn--p1ai/"]
        );
        assert_eq!(
            urls("https://example.com/a https://example.org/b"),
            vec!["https://example.com/a", "https://example.org/b"]
        );
        // No known top-level domain, no URL.
        assert!(urls("http://localhost:8080/x").is_empty());
        assert!(urls("http://192.168.0.1/").is_empty());
        // Glued to a word or a mention.
        assert!(urls("xhttps://example.com").is_empty());
        assert!(urls("@example.com").is_empty());
        assert!(urls("#example.com").is_empty());
    }

    #[test]
    fn urls_without_a_scheme() {
        assert_eq!(urls("visit example.com today"), vec!["example.com"]);
        assert_eq!(urls("www.example.pl"), vec!["www.example.pl"]);
        assert_eq!(urls("example.pl/path"), vec!["example.pl/path"]);
        assert_eq!(urls("vine.co and MLB.tv"), vec!["vine.co", "MLB.tv"]);
        assert_eq!(urls("hello.world"), vec!["hello.world"]);
        assert_eq!(urls("\"example.com\""), vec!["example.com"]);
        assert_eq!(urls("日本語example.com"), vec!["example.com"]);
        assert_eq!(urls("example.com."), vec!["example.com"]);
        // A port or query without a path is not part of it.
        assert_eq!(urls("example.com:8080"), vec!["example.com"]);
        // name + country code without a path: not a URL.
        for text in [
            "setup.py",
            "readme.md",
            "example.de",
            "e.g. this",
            "v1.2.3",
            "3.14",
        ] {
            assert!(urls(text).is_empty(), "{text}");
        }
        // Not after `-`, `_`, `.` or `/`; not inside an e-mail address.
        for text in [
            "-example.com",
            "_example.com",
            "/example.com",
            "user@example.com",
        ] {
            assert!(urls(text).is_empty(), "{text}: {:?}", urls(text));
        }
        // Only the ASCII-domain part after an `_` counts, as in twitter-text.
        assert_eq!(urls("a_b.example.com/x"), vec!["b.example.com/x"]);
        // Unknown extensions are not top-level domains.
        assert!(urls("report.pdf script.js").is_empty());
    }

    #[test]
    fn mixed_text() {
        // "Cześć " 6 + emoji 2 + " " 1 + URL 23 + " " 1 + "漢字" 4 + " #tag" 5 = 42
        let text = "Cześć 👋🏼 https://example.com/a/very/long/path?with=query 漢字 #tag";
        assert_eq!(weighted_length(text), 42);
        assert_eq!(
            weighted_length("Hi Ada! 🇵🇱 example.com/x — ok"),
            8 + 2 + 1 + 23 + 1 + 1 + 3
        );
    }

    #[test]
    fn tld_list_is_well_formed() {
        assert!(TLDS.country.len() > 300, "{}", TLDS.country.len());
        assert!(TLDS.generic.len() > 1200, "{}", TLDS.generic.len());
        assert!(TLDS.country.is_disjoint(&TLDS.generic));
        for tld in TLDS.country.iter().chain(&TLDS.generic) {
            assert!(
                !tld.is_empty() && tld.chars().all(is_domain_char),
                "{tld:?}"
            );
            assert_eq!(tld.to_lowercase(), *tld);
        }
        for tld in [
            "com",
            "pl",
            "co",
            "tv",
            "xyz",
            "onion",
            "рф",
            "پاکستان",
            "삼성",
            "vermögensberater",
        ] {
            assert!(
                TLDS.country.contains(tld) || TLDS.generic.contains(tld),
                "{tld}"
            );
        }
    }

    #[test]
    fn tlds_that_were_missing() {
        // The list used to hold about 300 of twitter-text's top-level domains.
        assert_eq!(
            urls("see nic.google and foo.accountants"),
            ["nic.google", "foo.accountants"]
        );
        assert_eq!(urls("http://пример.рф/путь"), ["http://пример.рф/путь"]);
        assert_eq!(urls("http://foobar.پاکستان/"), ["http://foobar.پاکستان/"]);
        // Without a scheme, only the ASCII part is a URL.
        assert_eq!(urls("пример.рф"), Vec::<String>::new());
    }

    #[test]
    fn the_longest_tld_wins_and_may_not_run_on() {
        assert_eq!(urls("example.community"), ["example.community"]);
        assert_eq!(urls("example.comx example.com1"), Vec::<String>::new());
        assert_eq!(urls("example.com-x"), Vec::<String>::new());
        assert_eq!(urls("example.comé"), ["example.com"]);
        assert_eq!(urls("a.b.example.co.uk/x"), ["a.b.example.co.uk/x"]);
        assert_eq!(urls("example.com.x"), ["example.com"]);
    }

    fn ascii_url_of_length(length: usize) -> String {
        let head = "https://example.com/";
        format!("{head}{}", "p".repeat(length - head.len()))
    }

    #[test]
    fn a_url_of_more_than_4096_is_not_a_url() {
        assert_eq!(weighted_length(&ascii_url_of_length(4096)), 23);
        assert_eq!(weighted_length(&ascii_url_of_length(4097)), 4097);
        // Without a scheme, `https://` is counted in front.
        let bare = |length: usize| format!("example.com/{}", "p".repeat(length - 12));
        assert_eq!(weighted_length(&bare(4088)), 23);
        assert_eq!(weighted_length(&bare(4089)), 4089);
        // UTF-16 code units: a Cyrillic path character is one, as an ASCII one.
        let cyrillic = format!("https://example.com/{}", "ж".repeat(4076));
        assert_eq!(weighted_length(&cyrillic), 23);
        assert_eq!(weighted_length(&format!("{cyrillic}ж")), 4097);
        // The case: posted as one URL before.
        let huge = "x.com/".repeat(1_000_000);
        assert_eq!(weighted_length(&huge), 6_000_000);
        // A rejected match is not searched for URLs inside it; what follows is.
        let text = format!("{} https://a.co", ascii_url_of_length(5000));
        assert_eq!(weighted_length(&text), 5000 + 1 + 23);
    }

    #[test]
    fn labels_longer_than_63_are_not_hosts() {
        let host = |label: usize| format!("https://{}.com/x", "a".repeat(label));
        assert_eq!(weighted_length(&host(63)), 23);
        assert_eq!(weighted_length(&host(64)), 8 + 64 + 6);
        // Punycode counts: 20 hiragana are `xn--l8j` and 19 `a`; 60 are 66 characters encoded.
        let japanese = |n: usize| format!("http://{}.com", "あ".repeat(n));
        assert_eq!(weighted_length(&japanese(20)), 23);
        assert_eq!(weighted_length(&japanese(60)), 7 + 120 + 4);
        assert!(punycoded_length(&['a'; 64]).is_none());
        assert_eq!(punycoded_length(&['a'; 63]), Some(63));
        assert_eq!(
            punycoded_length(&['日', '\u{3002}', 'a']),
            Some("xn--wgv".len() + 1 + 1)
        );
        // `xn--` without an ASCII domain in it is not a host.
        assert_eq!(urls("http://xn--日本.com"), Vec::<String>::new());
        assert_eq!(urls("http://xn--p1ai.com"), ["http://xn--p1ai.com"]);
    }

    #[test]
    fn tco_links_end_after_their_slug() {
        assert_eq!(
            urls("https://t.co/abc123/more?x=1"),
            ["https://t.co/abc123"]
        );
        assert_eq!(weighted_length("https://t.co/abc123/more"), 23 + 5);
        let slug = |n: usize| format!("https://t.co/{}", "a".repeat(n));
        assert_eq!(weighted_length(&slug(40)), 23);
        assert_eq!(weighted_length(&slug(41)), 13 + 41);
        assert_eq!(urls("HTTP://T.CO/Ab"), ["HTTP://T.CO/Ab"]);
    }

    #[test]
    fn zwj_sequences_join_at_most_four() {
        let thumbs = |n: usize| vec!["👍"; n].join("\u{200d}");
        assert_eq!(weighted_length(&thumbs(4)), 2);
        // The fifth: a ZWJ (1) and a new emoji (2).
        assert_eq!(weighted_length(&thumbs(5)), 2 + 1 + 2);
        assert_eq!(weighted_length(&thumbs(8)), 2 + 1 + 2);
        // Tag sequences: five tags and the cancel tag.
        let flag = |tags: &str| format!("🏴{tags}\u{e007f}");
        assert_eq!(
            weighted_length(&flag("\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}")),
            2
        );
        let six = flag("\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e0067}");
        assert_eq!(weighted_length(&six), 2 + 7 * 2);
    }

    #[test]
    fn the_bound_on_fitting_texts() {
        assert_eq!(MAX_FITTING_CHARS, 49_864);
        assert_eq!(MAX_FITTING_BYTES, 797_824);
        // No code point decomposes into more than MAX_DECOMPOSITION.
        let longest = ('\0'..=char::MAX)
            .map(|c| c.nfd().count())
            .max()
            .unwrap_or_default();
        assert_eq!(longest, MAX_DECOMPOSITION);
        // The densest text that fits: eleven URLs of 4,096, spaces, and 17 more characters.
        let url = ascii_url_of_length(MAX_URL_LENGTH);
        let text = format!("{}{}", [url.as_str(); 11].join(" "), " ".repeat(17));
        assert_eq!(weighted_length(&text), 280);
        assert!(text.chars().count() <= MAX_FITTING_CHARS);
    }

    /// The worst patterns for the URL scan: every position may start a URL and the domain
    /// labels run on (a quadratic scan took 90 s for 16 KB of `a.`).
    fn hostile(pattern: &str, bytes: usize) -> String {
        let mut text = String::with_capacity(bytes + 8);
        while text.len() < bytes {
            text.push_str(pattern);
        }
        text
    }

    fn hostile_cases(bytes: usize) -> Vec<(&'static str, String, usize)> {
        let dots = hostile("a.", bytes);
        let cjk = {
            let half = hostile("中", bytes / 2);
            format!("{half}.{half}")
        };
        let hyphens = {
            let half = hostile("a-", bytes / 2);
            format!("{half}a.{half}")
        };
        let emoji = hostile("👍\u{200d}", bytes);
        let thumbs = emoji.chars().count() / 2;
        let arabic = hostile("مثال.", bytes);
        let chars = |s: &str| s.chars().count();
        vec![
            ("a.", dots.clone(), chars(&dots)),
            // CJK weighs 2, the dot 1.
            ("CJK with a dot", cjk.clone(), 2 * (chars(&cjk) - 1) + 1),
            ("a-a-", hyphens.clone(), chars(&hyphens)),
            // Four thumbs joined weigh 2, the ZWJ after them 1.
            ("emoji", emoji.clone(), 3 * thumbs.div_ceil(4)),
            ("Arabic", arabic.clone(), chars(&arabic)),
        ]
    }

    #[test]
    fn hostile_input_at_1_kb_and_1_mb() {
        for bytes in [1024, 1024 * 1024] {
            for (name, text, expected) in hostile_cases(bytes) {
                assert!(text.len() >= bytes, "{name}");
                assert_eq!(weighted_length(&text), expected, "{name} at {bytes} bytes");
            }
        }
    }

    #[test]
    fn hostile_urls_still_count() {
        // Many URLs in a row, each found once.
        let text = "https://a.co/x ".repeat(10_000);
        assert_eq!(weighted_length(&text), 24 * 10_000);
        let bare = "a.co/x ".repeat(10_000);
        assert_eq!(weighted_length(&bare), 24 * 10_000);
        // A long chain of labels that ends in a top-level domain: a URL up to 4,096.
        let chain = |labels: usize| format!("{}com", "a.".repeat(labels));
        assert_eq!(weighted_length(&chain(1000)), 23);
        assert_eq!(weighted_length(&chain(3000)), 6003);
    }
}
