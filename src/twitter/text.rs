//! X's weighted tweet length, as twitter-text v3 counts it (`config/v3.json`).
//!
//! Pure functions, no I/O. The rules:
//!
//! - The text is NFC-normalised first (as twitter-text's `text.normalize()`), so `e` + U+0301
//!   counts as the single `é`.
//! - Every URL counts 23 (`transformedURLLength`, the length of a t.co link), however long.
//! - Every emoji counts 2 (`defaultWeight`), the whole sequence: 👍🏽, 👨‍👩‍👧, 🇵🇱 and 1️⃣ are 2 each.
//! - Every other code point counts 1 in the light ranges U+0000–U+10FF, U+2000–U+200D,
//!   U+2010–U+201F, U+2032–U+2037 (Latin, Greek, Cyrillic, Hebrew, Arabic, Indic scripts …,
//!   general punctuation), else 2 (CJK, Hangul, symbols …).
//! - A post may weigh at most [`MAX_WEIGHTED_LENGTH`] = 280.
//!
//! # Emoji (an approximation of twitter-text's twemoji regex)
//!
//! An emoji is, at one position:
//! - a pair of regional indicators (a flag, 🇵🇱), or a lone one;
//! - a keycap: `#`, `*` or a digit, an optional U+FE0F, then U+20E3;
//! - a skin-tone modifier on its own (U+1F3FB–U+1F3FF);
//! - an `Extended_Pictographic` character (Unicode 15 table below), followed by an optional U+FE0F
//!   or skin-tone modifier, then an optional tag sequence (U+E0020–U+E007E ending in U+E007F, the
//!   flags of England, Scotland, Wales). Such a character followed by U+FE0E (text presentation)
//!   is not an emoji, and © and ® (which weigh 1 as text) are emoji only when U+FE0F follows;
//!
//! and any of these joined to further pictographic ones by U+200D (ZWJ sequences, 👨‍👩‍👧,
//! 🏳️‍🌈). twemoji's regex lists the sequences Twitter draws, so an invented ZWJ sequence
//! that twemoji does not know counts 2 here but more on X; nothing in common use differs.
//!
//! # URLs (a subset of twitter-text's `extractUrlsWithIndices`)
//!
//! - A URL starts at the start of the text or after a character that is not an ASCII letter or
//!   digit, `@`, `＠`, `$`, `#` or `＃`.
//! - `http://` or `https://` (any case), a domain, an optional `:port`, an optional `/path`
//!   and an optional `?query`, with twitter-text's rules for which characters may appear in a
//!   path or query and which may end one (so `example.com/a.` leaves the final `.` out, and
//!   paths may hold balanced parentheses two deep).
//! - A domain is dot-separated labels (any characters but ASCII punctuation, whitespace and
//!   U+FEFF/U+FFFE/U+FFFF; `-` inside, `_` inside all but the last label) ending in a known
//!   top-level domain: every two-letter country code, the generic ones in [`GENERIC_TLDS`] (a
//!   list of common ones: twitter-text knows about 1,500; a URL ending in another counts by its
//!   characters here), or punycode `xn--…`. Internationalised top-level domains in non-Latin
//!   scripts are not recognised.
//! - Without a scheme, only the ASCII part of the domain counts as a URL, it must not follow
//!   `-`, `_`, `.` or `/`, and a bare `name.cc` with a country code (`setup.py`, `readme.md`)
//!   is a URL only with a path, except `.co` and `.tv` (`vine.co`). Without a path, a port or a
//!   query that follows the domain counts by its characters, as in twitter-text.
//! - Not reproduced: t.co links' slug limit, the 4,096-character URL limit and IDNA
//!   validation of the domain.

use std::ops::Range;
use unicode_normalization::UnicodeNormalization;

/// The most a post may weigh (`maxWeightedTweetLength`).
pub const MAX_WEIGHTED_LENGTH: usize = 280;

/// What every URL weighs, whatever its length (`transformedURLLength`).
pub const TRANSFORMED_URL_LENGTH: usize = 23;

/// What one emoji weighs (`defaultWeight` / `scale`).
const EMOJI_WEIGHT: usize = 2;

/// The weighted length of `text` as X counts it for a post (see the module documentation).
pub fn weighted_length(text: &str) -> usize {
    let text: String = text.nfc().collect();
    let urls = url_ranges(&text);
    let mut urls = urls.iter().peekable();
    let mut total = 0;
    let mut i = 0;
    while i < text.len() {
        while urls.next_if(|url| url.start < i).is_some() {}
        if let Some(url) = urls.next_if(|url| url.start == i) {
            total += TRANSFORMED_URL_LENGTH;
            i = url.end;
            continue;
        }
        if let Some(end) = emoji_end(&text, i) {
            total += EMOJI_WEIGHT;
            i = end;
            continue;
        }
        let c = next_char(&text, i).unwrap_or_default();
        total += char_weight(c);
        i += c.len_utf8();
    }
    total
}

/// Whether `text` fits in one post.
pub fn fits(text: &str) -> bool {
    weighted_length(text) <= MAX_WEIGHTED_LENGTH
}

/// 1 in twitter-text v3's light ranges, else 2.
fn char_weight(c: char) -> usize {
    match c as u32 {
        0x0000..=0x10ff | 0x2000..=0x200d | 0x2010..=0x201f | 0x2032..=0x2037 => 1,
        _ => 2,
    }
}

fn next_char(s: &str, i: usize) -> Option<char> {
    s.get(i..)?.chars().next()
}

// ---------------------------------------------------------------------------------------------
// Emoji

const ZWJ: char = '\u{200d}';
const VS15: char = '\u{fe0e}';
const VS16: char = '\u{fe0f}';
const KEYCAP: char = '\u{20e3}';

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
fn emoji_end(s: &str, i: usize) -> Option<usize> {
    let mut end = emoji_element_end(s, i)?;
    while next_char(s, end) == Some(ZWJ) {
        let after = end + ZWJ.len_utf8();
        match next_char(s, after) {
            Some(c) if is_pictographic(c) => match emoji_element_end(s, after) {
                Some(next) => end = next,
                None => break,
            },
            _ => break,
        }
    }
    Some(end)
}

/// One emoji without ZWJ continuations.
fn emoji_element_end(s: &str, i: usize) -> Option<usize> {
    let c = next_char(s, i)?;
    let mut end = i + c.len_utf8();
    if is_regional_indicator(c) {
        if let Some(second) = next_char(s, end).filter(|&n| is_regional_indicator(n)) {
            end += second.len_utf8();
        }
        return Some(end);
    }
    if matches!(c, '#' | '*' | '0'..='9') {
        if next_char(s, end) == Some(VS16) {
            end += VS16.len_utf8();
        }
        return (next_char(s, end) == Some(KEYCAP)).then(|| end + KEYCAP.len_utf8());
    }
    if is_skin_tone(c) {
        return Some(end);
    }
    if !is_pictographic(c) {
        return None;
    }
    match next_char(s, end) {
        Some(VS15) => return None,
        Some(VS16) => end += VS16.len_utf8(),
        Some(m) if is_skin_tone(m) => end += m.len_utf8(),
        // © and ® are text unless asked to be emoji.
        _ if char_weight(c) == 1 => return None,
        _ => {}
    }
    let mut tags = end;
    while let Some(t) = next_char(s, tags).filter(|&t| is_tag(t)) {
        tags += t.len_utf8();
    }
    if tags > end && next_char(s, tags) == Some('\u{e007f}') {
        end = tags + '\u{e007f}'.len_utf8();
    }
    Some(end)
}

// ---------------------------------------------------------------------------------------------
// URLs

/// Every two-letter country-code top-level domain twitter-text knows.
const COUNTRY_TLDS: &str = "ac ad ae af ag ai al am an ao aq ar as at au aw ax az ba bb bd be bf \
    bg bh bi bj bl bm bn bo bq br bs bt bv bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv \
    cw cx cy cz de dj dk dm do dz ec ee eg eh er es et eu fi fj fk fm fo fr ga gb gd ge gf gg gh \
    gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht hu id ie il im in io iq ir is it je jm jo \
    jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr ls lt lu lv ly ma mc md me mf mg mh mk \
    ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng ni nl no np nr nu nz om pa pe pf \
    pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd se sg sh si sj sk sl sm sn so \
    sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tp tr tt tv tw tz ua ug uk um us uy \
    uz va vc ve vg vi vn vu wf ws ye yt za zm zw";

/// The generic top-level domains recognised here: the original ones and common new ones.
pub const GENERIC_TLDS: &str = "com net org edu gov mil int info biz name pro mobi aero asia cat \
    coop jobs museum tel travel post xxx arpa \
    academy agency app art audio auto bar beer best bike bio blog book build business buzz cafe \
    camera camp capital car cards care careers cash center chat church city click clinic \
    clothing cloud club codes coffee college community company computer consulting cool \
    credit dance data dating deals degree delivery dental design dev diet digital direct \
    directory discount doctor dog domains download earth eco education email energy \
    engineering events exchange expert express family fans farm fashion film finance \
    fitness florist food football forum foundation free fun fund furniture gallery game games \
    garden gift gifts global gold golf graphics green group guide guru health help holdings \
    holiday host hosting house how icu inc industries institute insurance international \
    jewelry kitchen land law lawyer legal life link live llc loan loans london love ltd \
    management market marketing markets media menu mobile moda money movie music network \
    news ninja nyc one online page paris partners party pet phone photo photography photos \
    pics pictures pizza place plus press productions properties property pub radio realty \
    recipes red rent repair report rest restaurant review reviews rocks run sale school \
    science services sexy shoes shop shopping show site social software solar solutions \
    space store stream studio style support surf systems tax team tech technology tickets \
    tips today tokyo tools top tours town toys trade training tube university vegas \
    ventures video vip vision watch website wedding wiki win wine work works world wtf xyz \
    yoga zone";

fn is_country_tld(word: &str) -> bool {
    word.len() == 2 && COUNTRY_TLDS.split_whitespace().any(|t| t == word)
}

fn is_generic_tld(word: &str) -> bool {
    GENERIC_TLDS.split_whitespace().any(|t| t == word)
}

/// ASCII punctuation that cannot be part of a domain label (twitter-text's `punct`; `"` and
/// the backtick are not in it).
fn is_punct(c: char) -> bool {
    "!'#%&()*+,\\-./:;<=>?@[]^_{|}~$".contains(c)
}

fn is_space(c: char) -> bool {
    matches!(c,
        '\t'..='\r' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{180e}' | '\u{2000}'..='\u{200a}'
        | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

fn is_invalid(c: char) -> bool {
    matches!(c, '\u{fffe}' | '\u{feff}' | '\u{ffff}')
}

fn is_domain_char(c: char) -> bool {
    !is_punct(c) && !is_space(c) && !is_invalid(c)
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

fn is_cyrillic(c: char) -> bool {
    ('\u{400}'..='\u{4ff}').contains(&c)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!*';:=+,.$/%#[]-\u{2013}_~@|&".contains(c)
        || is_cyrillic(c)
        || is_latin_accent(c)
}

fn is_path_ending_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+-=_#/".contains(c) || is_cyrillic(c) || is_latin_accent(c)
}

fn is_query_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!?*'@();:&=+$/%#[]-_.,~|".contains(c)
}

fn is_query_ending_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_&=#/".contains(c)
}

/// The end of a top-level domain starting at `i`, with twitter-text's look-ahead: a generic one
/// may not be followed by `@`, a country code not by `@`, `+` or `-` (and neither by an ASCII
/// letter or digit). Punycode (`xn--…`) has no look-ahead.
fn tld_end(s: &str, i: usize) -> Option<usize> {
    let rest = &s[i..];
    if rest
        .get(..4)
        .is_some_and(|head| head.eq_ignore_ascii_case("xn--"))
    {
        let len = rest[4..]
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .count();
        return (len > 0).then_some(i + 4 + len);
    }
    let len = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
    let word = rest[..len].to_ascii_lowercase();
    let after = rest[len..].chars().next();
    if is_generic_tld(&word) && after != Some('@') {
        return Some(i + len);
    }
    if is_country_tld(&word) && !matches!(after, Some('@' | '+' | '-')) {
        return Some(i + len);
    }
    None
}

/// A label of `label_char`s, `-` and (if `underscore`) `_`, starting and ending with a
/// `label_char`, directly followed by `.`: returns the label's end and whether it has a `_`.
fn label_end(s: &str, i: usize, label_char: fn(char) -> bool) -> Option<(usize, bool)> {
    let mut end = i;
    let mut last = None;
    let mut underscore = false;
    for c in s[i..].chars() {
        if !(label_char(c) || c == '-' || c == '_') {
            break;
        }
        if last.is_none() && !label_char(c) {
            return None;
        }
        underscore |= c == '_';
        last = Some(c);
        end += c.len_utf8();
    }
    let last = last?;
    (label_char(last) && s[end..].starts_with('.')).then_some((end, underscore))
}

/// twitter-text's `validDomain` at `i`: labels, then a top-level domain; the longest wins.
fn domain_end(s: &str, i: usize) -> Option<usize> {
    let mut labels = Vec::new();
    let mut at = i;
    while let Some((end, underscore)) = label_end(s, at, is_domain_char) {
        labels.push((end, underscore));
        at = end + 1;
    }
    labels
        .iter()
        .rev()
        .filter(|(_, underscore)| !underscore)
        .find_map(|&(end, _)| tld_end(s, end + 1))
}

fn is_ascii_domain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || is_latin_accent(c)
}

/// twitter-text's `validAsciiDomain`, found as often as it occurs in `domain`: byte ranges
/// relative to `domain`.
fn ascii_domains(domain: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(c) = next_char(domain, i) {
        let mut labels = Vec::new();
        let mut at = i;
        while let Some((end, underscore)) = label_end(domain, at, is_ascii_domain_char) {
            if underscore {
                break;
            }
            labels.push(end);
            at = end + 1;
        }
        if let Some(end) = labels
            .iter()
            .rev()
            .find_map(|&end| tld_end(domain, end + 1))
        {
            found.push(i..end);
            i = end;
        } else {
            i += c.len_utf8();
        }
    }
    found
}

/// The end of a URL path after its `/`: the longest run of path characters (and balanced
/// parentheses, two deep, not empty) that ends in a path-ending character or a `)`.
fn path_end(s: &str, start: usize) -> usize {
    let mut best = start;
    let mut depth = 0;
    let mut has_content = [false; 3];
    for (offset, c) in s[start..].char_indices() {
        let after = start + offset + c.len_utf8();
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
fn query_end(s: &str, start: usize) -> Option<usize> {
    let mut best = None;
    for (offset, c) in s[start..].char_indices() {
        if !is_query_char(c) {
            break;
        }
        if is_query_ending_char(c) {
            best = Some(start + offset + c.len_utf8());
        }
    }
    best
}

struct UrlMatch {
    start: usize,
    end: usize,
    has_scheme: bool,
    domain: Range<usize>,
    has_path: bool,
}

/// twitter-text's `extractUrl` regex, anchored at `start` (after the preceding character).
fn match_url(s: &str, start: usize) -> Option<UrlMatch> {
    let rest = &s[start..];
    let scheme_len = ["https://", "http://"]
        .into_iter()
        .find(|p| {
            rest.get(..p.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(p))
        })
        .map_or(0, str::len);
    let domain_start = start + scheme_len;
    let domain_end = domain_end(s, domain_start)?;
    let mut end = domain_end;
    if s[end..].starts_with(':') {
        let digits = s[end + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            end += 1 + digits;
        }
    }
    let has_path = s[end..].starts_with('/');
    if has_path {
        end = path_end(s, end + 1);
    }
    if s[end..].starts_with('?')
        && let Some(query) = query_end(s, end + 1)
    {
        end = query;
    }
    Some(UrlMatch {
        start,
        end,
        has_scheme: scheme_len > 0,
        domain: domain_start..domain_end,
        has_path,
    })
}

/// `name.cc`: one label and a country code.
fn is_short_country_domain(domain: &str) -> Option<&str> {
    let (name, tld) = domain.split_once('.')?;
    (!name.is_empty() && !tld.contains('.') && is_country_tld(&tld.to_ascii_lowercase()))
        .then_some(tld)
}

/// Byte ranges of the URLs X would shorten, in order.
fn url_ranges(text: &str) -> Vec<Range<usize>> {
    let mut urls = Vec::new();
    if !text.contains('.') {
        return urls;
    }
    // `Some(None)`: at the start of the text; `Some(Some(c))`: after `c`, which no earlier
    // match used; `None`: right after a match.
    let mut before: Option<Option<char>> = Some(None);
    let mut i = 0;
    while let Some(c) = next_char(text, i) {
        let may_start = match before {
            Some(None) => true,
            Some(Some(b)) => is_valid_preceding(b),
            None => false,
        };
        if may_start && let Some(m) = match_url(text, i) {
            accept(text, &m, before.flatten(), &mut urls);
            i = m.end;
            before = None;
            continue;
        }
        before = Some(Some(c));
        i += c.len_utf8();
    }
    urls
}

fn accept(text: &str, m: &UrlMatch, before: Option<char>, urls: &mut Vec<Range<usize>>) {
    if m.has_scheme {
        urls.push(m.start..m.end);
        return;
    }
    let start = m.domain.start;
    if matches!(before, Some('-' | '_' | '.' | '/')) {
        return;
    }
    let domain = &text[m.domain.clone()];
    let found = ascii_domains(domain);
    let last = found.len().saturating_sub(1);
    for (n, range) in found.into_iter().enumerate() {
        let ascii = &domain[range.clone()];
        let short = is_short_country_domain(ascii);
        let special = short
            .is_some_and(|tld| tld.eq_ignore_ascii_case("co") || tld.eq_ignore_ascii_case("tv"));
        if m.has_path || special || short.is_none() {
            let end = if n == last && m.has_path {
                m.end
            } else {
                start + range.end
            };
            urls.push(start + range.start..end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<&str> {
        url_ranges(text).into_iter().map(|r| &text[r]).collect()
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
    fn tld_lists_are_well_formed() {
        for tld in COUNTRY_TLDS.split_whitespace() {
            assert!(
                tld.len() == 2 && tld.bytes().all(|b| b.is_ascii_lowercase()),
                "{tld}"
            );
        }
        for tld in GENERIC_TLDS.split_whitespace() {
            assert!(
                tld.len() >= 3 && tld.bytes().all(|b| b.is_ascii_lowercase()),
                "{tld}"
            );
        }
    }
}
