//! OAuth 1.0a verification (RFC 5849 §3.4), written independently of the service's signer.

use super::*;

/// Why a request's signature was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    NoOAuthHeader,
    Malformed(&'static str),
    UnknownCredentials,
    BadSignature,
}

/// `scheme://host[:port]/path`: scheme and host lowercased, the scheme's default port dropped.
pub fn base_string_uri(scheme: &str, host_and_port: &str, path: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let host = host_and_port.to_ascii_lowercase();
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let host = host.strip_suffix(default_port).unwrap_or(&host);
    let path = if path.is_empty() { "/" } else { path };
    format!("{scheme}://{host}{path}")
}

/// Checks the `Authorization: OAuth ...` header of a request, whose query and form body (when
/// it is `application/x-www-form-urlencoded`) are signed too. `secrets` maps the consumer key
/// and token to the consumer secret and token secret, when the fake knows them (the token
/// secret is "" for a request signed with client credentials only).
pub fn verify(
    method: &str,
    base_uri: &str,
    query: Option<&str>,
    form: Option<&str>,
    authorization: &str,
    secrets: impl Fn(&str, Option<&str>) -> Option<(String, String)>,
) -> Result<(), Rejection> {
    let oauth = parse_authorization(authorization).ok_or(Rejection::NoOAuthHeader)?;
    let get = |name: &str| {
        oauth
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for required in [
        "oauth_consumer_key",
        "oauth_nonce",
        "oauth_signature",
        "oauth_signature_method",
        "oauth_timestamp",
    ] {
        if get(required).is_none() {
            return Err(Rejection::Malformed(required));
        }
    }
    if get("oauth_signature_method") != Some("HMAC-SHA1") {
        return Err(Rejection::Malformed("oauth_signature_method"));
    }
    if get("oauth_version").is_some_and(|v| v != "1.0") {
        return Err(Rejection::Malformed("oauth_version"));
    }
    // X refuses duplicate protocol parameters (RFC 5849 §3.1).
    let mut names: Vec<&str> = oauth.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Rejection::Malformed("duplicate parameter"));
    }
    let (consumer_secret, token_secret) =
        secrets(get("oauth_consumer_key").unwrap_or(""), get("oauth_token"))
            .ok_or(Rejection::UnknownCredentials)?;

    let mut params: Vec<(String, String)> = Vec::new();
    let pairs = query
        .unwrap_or("")
        .split('&')
        .chain(form.unwrap_or("").split('&'));
    for pair in pairs.filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((
            enc(&form_decode(name).ok_or(Rejection::Malformed("parameters"))?),
            enc(&form_decode(value).ok_or(Rejection::Malformed("parameters"))?),
        ));
    }
    for (name, value) in &oauth {
        if name != "oauth_signature" && name != "realm" {
            params.push((enc(name), enc(value)));
        }
    }
    params.sort();
    let parameter_string = params
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base_string = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        enc(base_uri),
        enc(&parameter_string)
    );
    let key = format!("{}&{}", enc(&consumer_secret), enc(&token_secret));
    let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(base_string.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if get("oauth_signature") == Some(expected.as_str()) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// `OAuth k="v", k2="v2"` → decoded pairs, in the order sent. `None` when it is not OAuth.
pub(super) fn parse_authorization(header: &str) -> Option<Vec<(String, String)>> {
    let header = header.trim_start();
    let (scheme, rest) = header.split_at(header.find(' ').unwrap_or(header.len()));
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return None;
    }
    let mut pairs = Vec::new();
    let mut rest = rest.trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let name = rest[..eq].trim();
        let after = rest[eq + 1..].trim_start().strip_prefix('"')?;
        let close = after.find('"')?;
        pairs.push((pct_decode(name)?, pct_decode(&after[..close])?));
        rest = after[close + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Some(pairs)
}

/// Percent-encoding of RFC 5849 §3.6: unreserved bytes stay, every other byte is `%XX`.
pub(super) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        }
    }
    out
}

pub(super) fn pct_decode(s: &str) -> Option<String> {
    decode(s, false)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space.
pub(super) fn form_decode(s: &str) -> Option<String> {
    decode(s, true)
}

pub(super) fn decode(s: &str, plus_is_space: bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
