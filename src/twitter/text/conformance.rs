//! twitter-text's own data, from `../shared/vectors/twitter-text/` (Apache License 2.0):
//! every case of the weighted-length sections of `validate.yml`, X's v3 weighting
//! (`config-v3.json`), and the list of top-level domains (`tld_lib.yml`) that `tlds.txt` copies.
//!
//! Where that folder is absent (a checkout without `shared/` beside it) these tests say so and
//! pass; CI always has it.

use super::*;
use serde::Deserialize;
use std::path::PathBuf;

/// A file of `../shared/vectors/twitter-text/`, or `None` (said on stderr) when the folder is
/// absent. A folder without the file is an error.
fn shared_file(name: &str) -> Option<String> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/twitter-text");
    if !folder.is_dir() {
        eprintln!(
            "SKIPPED: {} is absent, so twitter-text's conformance data was not read \
             (check out shared/ beside this repository)",
            folder.display()
        );
        return None;
    }
    let path = folder.join(name);
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[derive(Deserialize)]
struct ValidateFile {
    tests: Sections,
}

/// The weighted-length sections (the file's other sections test things this module does not
/// do: usernames, hashtags, lists, URL validity).
#[derive(Deserialize)]
struct Sections {
    /// Config v2: the same weights, emoji counted by code point.
    #[serde(rename = "WeightedTweetsCounterTest")]
    v2: Vec<Case>,
    /// Config v3, what X uses: emoji count 2.
    #[serde(rename = "WeightedTweetsWithDiscountedEmojiCounterTest")]
    v3: Vec<Case>,
    /// Config v3.
    #[serde(rename = "UnicodeDirectionalMarkerCounterTest")]
    directional: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    description: String,
    text: String,
    expected: Expected,
}

/// The fields of `parseTweet` this module computes; the display and valid ranges (UTF-16
/// indexes for an editor's highlighting) are not read.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expected {
    weighted_length: usize,
    valid: bool,
    permillage: usize,
}

/// Runs every case of a section; returns how many ran.
fn check(section: &str, cases: &[Case], emoji: Emoji) -> usize {
    assert!(!cases.is_empty(), "{section} has no cases");
    let mut failures = Vec::new();
    for case in cases {
        let length = weigh(&case.text, emoji);
        // twitter-text's `valid`: not blank, no invalid character, and within the limit.
        let valid = !case.text.trim().is_empty()
            && !case.text.chars().any(is_invalid)
            && length <= MAX_WEIGHTED_LENGTH;
        let permillage = length * 1000 / MAX_WEIGHTED_LENGTH;
        let expected = &case.expected;
        if (length, valid, permillage)
            != (
                expected.weighted_length,
                expected.valid,
                expected.permillage,
            )
        {
            failures.push(format!(
                "{section} / {}: weightedLength {length} valid {valid} permillage {permillage}, \
                 expected {} {} {}",
                case.description, expected.weighted_length, expected.valid, expected.permillage
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("{section}: all {} cases pass, none skipped", cases.len());
    cases.len()
}

#[test]
fn weighted_length_conformance() {
    let Some(file) = shared_file("validate.yml") else {
        return;
    };
    let file: ValidateFile = serde_saphyr::from_str(&file).expect("validate.yml parses");
    let sections = file.tests;
    let ran = check(
        "WeightedTweetsCounterTest",
        &sections.v2,
        Emoji::ByCodePoint,
    ) + check(
        "WeightedTweetsWithDiscountedEmojiCounterTest",
        &sections.v3,
        Emoji::Counted,
    ) + check(
        "UnicodeDirectionalMarkerCounterTest",
        &sections.directional,
        Emoji::Counted,
    );
    assert!(ran >= 40, "only {ran} cases");
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    max_weighted_tweet_length: usize,
    scale: u32,
    default_weight: u32,
    emoji_parsing_enabled: bool,
    #[serde(rename = "transformedURLLength")]
    transformed_url_length: usize,
    ranges: Vec<WeightedRange>,
}

#[derive(Deserialize)]
struct WeightedRange {
    start: u32,
    end: u32,
    weight: u32,
}

#[test]
fn the_weights_are_xs_v3_config() {
    let Some(file) = shared_file("config-v3.json") else {
        return;
    };
    let config: Config = serde_json::from_str(&file).expect("config-v3.json parses");
    assert_eq!(config.max_weighted_tweet_length, MAX_WEIGHTED_LENGTH);
    assert_eq!(config.transformed_url_length, TRANSFORMED_URL_LENGTH);
    assert!(config.emoji_parsing_enabled);
    assert_eq!(
        (config.default_weight / config.scale) as usize,
        EMOJI_WEIGHT
    );
    for c in '\0'..=char::MAX {
        let weight = config
            .ranges
            .iter()
            .find(|r| (r.start..=r.end).contains(&(c as u32)))
            .map_or(config.default_weight, |r| r.weight);
        assert_eq!(
            char_weight(c),
            (weight / config.scale) as usize,
            "U+{:04X}",
            c as u32
        );
    }
}

/// `tlds.txt`'s two lists, in the file's order.
fn repository_tlds() -> (Vec<&'static str>, Vec<&'static str>) {
    let (mut country, mut generic) = (Vec::new(), Vec::new());
    let mut section = None;
    for line in include_str!("../tlds.txt").lines() {
        match line {
            "" => {}
            comment if comment.starts_with('#') => {}
            "[country]" => section = Some(&mut country),
            "[generic]" => section = Some(&mut generic),
            tld => section.as_deref_mut().expect("a section").push(tld),
        }
    }
    (country, generic)
}

#[derive(Deserialize)]
struct TldLib {
    country: Vec<String>,
    generic: Vec<String>,
}

#[test]
fn tlds_txt_is_twitter_texts_list() {
    let Some(file) = shared_file("tld_lib.yml") else {
        return;
    };
    let lib: TldLib = serde_saphyr::from_str(&file).expect("tld_lib.yml parses");
    let (country, generic) = repository_tlds();
    assert_eq!(country, lib.country, "[country] differs from tld_lib.yml");
    assert_eq!(generic, lib.generic, "[generic] differs from tld_lib.yml");
    eprintln!(
        "tlds.txt holds tld_lib.yml's {} country and {} generic top-level domains",
        country.len(),
        generic.len()
    );
}

/// [`tld_end`] takes the longest matching top-level domain; twitter-text's regex takes the
/// first alternative in the list's order. The two agree because the list puts every domain
/// before the domains that are its prefixes.
#[test]
fn the_list_puts_longer_tlds_before_their_prefixes() {
    let (country, generic) = repository_tlds();
    for list in [country, generic] {
        for (i, shorter) in list.iter().enumerate() {
            if let Some(later) = list[i + 1..]
                .iter()
                .find(|longer| longer.starts_with(shorter))
            {
                panic!("{later} comes after its prefix {shorter}");
            }
        }
    }
}
