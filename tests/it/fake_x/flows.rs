//! The sign-in flows (twitter-api.md §3): OAuth 1.0a 3-legged, and OAuth 2.0 with PKCE.

use super::*;

/// v1.1 401 for a rejected signature or unknown client credentials (§2.4 row 1).
pub const COULD_NOT_AUTHENTICATE: &str =
    r#"{"errors":[{"code":32,"message":"Could not authenticate you."}]}"#;
/// v1.1 401 for a request token that is unknown or was already exchanged (§2.4 row 3).
pub const INVALID_OR_EXPIRED_TOKEN: &str =
    r#"{"errors":[{"code":89,"message":"Invalid or expired token."}]}"#;
/// The 403 of `oauth/request_token` for a callback the app did not register (§2.4 row 18).
pub const CALLBACK_NOT_APPROVED: &str = r#"<?xml version='1.0' encoding='UTF-8'?><errors><error code="415">Callback URL not approved for this client application. Approved callback URLs can be adjusted in your application settings</error></errors>"#;
/// The 403 of the legacy Essential plan, seen on `oauth/access_token` (§2.4 row 7; truncated as sent).
pub const ESSENTIAL_ACCESS: &str = r#"{"errors":[{"message":"You currently have Essential access which includes access to Twitter API v2 endpoints only. If you need access to this endpoint, you’ll need to apply for Elevated access via the Developer Portal. You can learn more here: https://developer.twitter.com/en/docs/twitter-api/getting-started/about-twitter-api#v2-access-leve","code":453}]}"#;
/// Row 13: the app is suspended (Sign in with X).
pub const APP_SUSPENDED: &str = r#"{"errors":[{"code":416,"message":"Invalid / suspended App."}]}"#;
/// Row 19: a desktop app sent a callback other than `oob`.
pub const OOB_ONLY: &str = r#"{"errors":[{"code":417,"message":"Desktop applications only support the `oauth_callback` value `oob`."}]}"#;
/// v1.1 400 for a request without usable OAuth data, e.g. no `oauth_callback` (§2.4 row 4).
pub const BAD_AUTHENTICATION_DATA: &str =
    r#"{"errors":[{"code":215,"message":"Bad Authentication data."}]}"#;
/// `oauth/access_token` with a missing or wrong `oauth_verifier` (X answers in plain text).
pub const INVALID_VERIFIER: &str =
    "Error processing your OAuth request: Invalid oauth_verifier parameter";
/// Row 20: `/2/oauth2/token` with a code that is unknown, used, expired, issued for another
/// client or redirect URI, or whose PKCE verifier does not match.
pub const INVALID_CODE: &str = r#"{"error":"invalid_request","error_description":"Value passed for the authorization code was invalid."}"#;
/// Row 20: a confidential client without (valid) Basic authentication.
pub const MISSING_AUTHORIZATION: &str =
    r#"{"error":"unauthorized_client","error_description":"Missing valid authorization header"}"#;
/// Row 20.
pub const MISSING_GRANT_TYPE: &str =
    r#"{"error":"invalid_request","error_description":"Missing required parameter [grant_type]."}"#;

/// How X refuses a step of the sign-in flows, set with [`FakeX::set_flow_failure`]; it stays
/// until changed. The step's call is recorded either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowFailure {
    /// `oauth/request_token`: 403 with X's XML error 415 ([`CALLBACK_NOT_APPROVED`]).
    CallbackNotApproved,
    /// `oauth/request_token`: 200, but `oauth_callback_confirmed=false`.
    CallbackNotConfirmed,
    /// `oauth/request_token`: 401 code 416, the app is suspended.
    AppSuspended,
    /// `oauth/request_token`: 401 code 417, a desktop app supports `oob` only.
    DesktopAppOobOnly,
    /// `oauth/request_token` answers (normally) only after this long.
    RequestTokenSlow(Duration),
    /// The exchange (`oauth/access_token`, `/2/oauth2/token`): 401, X says unauthorized
    /// ([`COULD_NOT_AUTHENTICATE`], or [`MISSING_AUTHORIZATION`] for OAuth 2.0). The request
    /// token or code is spent all the same.
    ExchangeUnauthorized,
    /// The exchange: 403 code 453 ([`ESSENTIAL_ACCESS`]). The token or code is spent.
    ExchangeEssentialPlan,
    /// The exchange answers (normally) only after this long.
    ExchangeSlow(Duration),
}

/// A request token as the fake handed it out.
#[derive(Clone, Debug)]
pub struct RequestToken {
    pub consumer_key: String,
    pub token: String,
    pub secret: String,
    /// The `oauth_callback` it was asked with.
    pub callback: String,
    /// Set when the approval page was first shown.
    pub verifier: Option<String>,
    /// Presented once at `oauth/access_token`: it works no more.
    pub used: bool,
}

/// An OAuth 2.0 authorization code as the approval page handed it out.
#[derive(Clone, Debug)]
pub struct AuthorizationCode {
    pub code: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: String,
    pub code_challenge: String,
    /// Presented once at `/2/oauth2/token`: it works no more.
    pub used: bool,
}

/// An OAuth 2.0 user access token handed out by `/2/oauth2/token`.
#[derive(Clone, Debug)]
pub struct BearerToken {
    pub token: String,
    pub client_id: String,
    pub scope: String,
}

#[derive(Default)]
pub(super) struct Flows {
    /// OAuth 1.0a apps: consumer key and secret.
    pub(super) apps: Vec<(String, String)>,
    /// The callbacks registered at X; `None` approves any.
    pub(super) callbacks: Option<Vec<String>>,
    /// OAuth 2.0 clients: id and, for a confidential one, secret.
    pub(super) clients: Vec<(String, Option<String>)>,
    pub(super) failure: Option<FlowFailure>,
    pub(super) request_tokens: Vec<RequestToken>,
    pub(super) codes: Vec<AuthorizationCode>,
    pub(super) bearers: Vec<BearerToken>,
    pub(super) user_keys: Vec<Keys>,
}

impl Flows {
    pub(super) fn app_secret(&self, consumer_key: &str) -> Option<String> {
        self.apps
            .iter()
            .find(|(key, _)| key == consumer_key)
            .map(|(_, secret)| secret.clone())
    }

    pub(super) fn request_token(&self, consumer_key: &str, token: &str) -> Option<&RequestToken> {
        self.request_tokens
            .iter()
            .find(|t| t.token == token && t.consumer_key == consumer_key)
    }

    /// `Some(secret)` for a known client (`Some(None)` when it is public).
    pub(super) fn client(&self, client_id: &str) -> Option<Option<String>> {
        self.clients
            .iter()
            .find(|(id, _)| id == client_id)
            .map(|(_, secret)| secret.clone())
    }
}

/// Which handler answers a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    RequestToken,
    AccessToken,
    Oauth1Page,
    Oauth2Page,
    Oauth2Token,
    UsersMe,
    Other,
}

impl Route {
    pub(super) fn of(method: &axum::http::Method, path: &str) -> Self {
        use axum::http::Method;
        match (method, path) {
            (&Method::POST, "/oauth/request_token") => Route::RequestToken,
            (&Method::POST, "/oauth/access_token") => Route::AccessToken,
            (&Method::GET, "/oauth/authorize") => Route::Oauth1Page,
            (&Method::GET, "/i/oauth2/authorize") => Route::Oauth2Page,
            (&Method::POST, "/2/oauth2/token") => Route::Oauth2Token,
            (&Method::GET, "/2/users/me") => Route::UsersMe,
            _ => Route::Other,
        }
    }
}

pub(super) async fn request_token(
    shared: &Shared,
    verdict: Result<(), Rejection>,
    oauth: &BTreeMap<String, String>,
) -> Response {
    if verdict.is_err() {
        return with_type(StatusCode::UNAUTHORIZED, JSON, COULD_NOT_AUTHENTICATE);
    }
    let Some(callback) = oauth.get("oauth_callback").cloned() else {
        return with_type(StatusCode::BAD_REQUEST, JSON, BAD_AUTHENTICATION_DATA);
    };
    let (failure, approved) = {
        let flows = shared.flows.lock().unwrap();
        let approved = flows
            .callbacks
            .as_ref()
            .is_none_or(|approved| approved.contains(&callback));
        (flows.failure.clone(), approved)
    };
    match failure {
        Some(FlowFailure::CallbackNotApproved) => return callback_not_approved(),
        Some(FlowFailure::AppSuspended) => {
            return with_type(StatusCode::UNAUTHORIZED, JSON, APP_SUSPENDED);
        }
        Some(FlowFailure::DesktopAppOobOnly) => {
            return with_type(StatusCode::UNAUTHORIZED, JSON, OOB_ONLY);
        }
        Some(FlowFailure::RequestTokenSlow(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    if !approved {
        return callback_not_approved();
    }
    let confirmed = failure != Some(FlowFailure::CallbackNotConfirmed);
    let issued = RequestToken {
        consumer_key: oauth["oauth_consumer_key"].clone(),
        token: random("rt"),
        secret: random("rts"),
        callback,
        verifier: None,
        used: false,
    };
    let body = format!(
        "oauth_token={}&oauth_token_secret={}&oauth_callback_confirmed={confirmed}",
        issued.token, issued.secret
    );
    shared.flows.lock().unwrap().request_tokens.push(issued);
    with_type(StatusCode::OK, HTML, &body)
}

pub(super) fn callback_not_approved() -> Response {
    with_type(
        StatusCode::FORBIDDEN,
        "application/xml;charset=utf-8",
        CALLBACK_NOT_APPROVED,
    )
}

pub(super) async fn access_token(
    shared: &Shared,
    verdict: Result<(), Rejection>,
    oauth: &BTreeMap<String, String>,
    form: Option<&str>,
    query: Option<&str>,
) -> Response {
    let consumer_key = oauth.get("oauth_consumer_key").cloned().unwrap_or_default();
    match verdict {
        Ok(()) => {}
        // The app is known, so the token is not (anymore).
        Err(Rejection::UnknownCredentials)
            if oauth.contains_key("oauth_token")
                && shared
                    .flows
                    .lock()
                    .unwrap()
                    .app_secret(&consumer_key)
                    .is_some() =>
        {
            return with_type(StatusCode::UNAUTHORIZED, JSON, INVALID_OR_EXPIRED_TOKEN);
        }
        Err(_) => return with_type(StatusCode::UNAUTHORIZED, JSON, COULD_NOT_AUTHENTICATE),
    }
    // RFC 5849 §2.3: in the header, or (also signed) in a form body or the query.
    let verifier = oauth
        .get("oauth_verifier")
        .cloned()
        .or_else(|| form_param(form, "oauth_verifier"))
        .or_else(|| form_param(query, "oauth_verifier"));
    // A request token works once, whatever happens next.
    let (issued, failure, consumer_secret) = {
        let mut flows = shared.flows.lock().unwrap();
        let consumer_secret = flows.app_secret(&consumer_key).unwrap_or_default();
        let failure = flows.failure.clone();
        let token = &oauth["oauth_token"];
        let Some(issued) = flows
            .request_tokens
            .iter_mut()
            .find(|t| &t.token == token && t.consumer_key == consumer_key)
        else {
            return with_type(StatusCode::UNAUTHORIZED, JSON, INVALID_OR_EXPIRED_TOKEN);
        };
        if issued.used {
            return with_type(StatusCode::UNAUTHORIZED, JSON, INVALID_OR_EXPIRED_TOKEN);
        }
        issued.used = true;
        (issued.clone(), failure, consumer_secret)
    };
    match failure {
        Some(FlowFailure::ExchangeUnauthorized) => {
            return with_type(StatusCode::UNAUTHORIZED, JSON, COULD_NOT_AUTHENTICATE);
        }
        Some(FlowFailure::ExchangeEssentialPlan) => {
            return with_type(StatusCode::FORBIDDEN, JSON, ESSENTIAL_ACCESS);
        }
        Some(FlowFailure::ExchangeSlow(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    if issued.verifier.is_none() || verifier != issued.verifier {
        return with_type(
            StatusCode::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            INVALID_VERIFIER,
        );
    }
    let keys = Keys {
        api_key: consumer_key,
        api_secret: consumer_secret,
        access_token: format!("{ACCOUNT_ID}-{}", random("ut")),
        access_token_secret: random("uts"),
    };
    let body = format!(
        "oauth_token={}&oauth_token_secret={}&user_id={ACCOUNT_ID}&screen_name={USERNAME}",
        keys.access_token, keys.access_token_secret
    );
    shared.flows.lock().unwrap().user_keys.push(keys.clone());
    shared.known.lock().unwrap().push(keys);
    with_type(StatusCode::OK, HTML, &body)
}

/// X's OAuth 1.0a approval page for a request token.
pub(super) fn oauth1_page(shared: &Shared, query: Option<&str>) -> Response {
    let token = form_param(query, "oauth_token").unwrap_or_default();
    let mut flows = shared.flows.lock().unwrap();
    let Some(issued) = flows
        .request_tokens
        .iter_mut()
        .find(|t| t.token == token && !t.used)
    else {
        return page(
            StatusCode::NOT_FOUND,
            "Page not found",
            "<h1>This page is no longer valid.</h1><p>It looks like someone already used the token information you provided. Please return to the application that sent you here and try again; you'll probably need to sign in again.</p>",
        );
    };
    let verifier = issued.verifier.get_or_insert_with(|| random("v")).clone();
    let approve = with_query(
        &issued.callback,
        &[("oauth_token", &token), ("oauth_verifier", &verifier)],
    );
    let refuse = with_query(&issued.callback, &[("denied", &token)]);
    approval_page(&approve, &refuse)
}

/// X's OAuth 2.0 approval page: checks the authorization request and hands out a code.
pub(super) fn oauth2_page(shared: &Shared, query: Option<&str>) -> Response {
    let params: BTreeMap<String, String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let mut flows = shared.flows.lock().unwrap();
    let wrong = if get("response_type") != "code" {
        Some("response_type must be code")
    } else if flows.client(get("client_id")).is_none() {
        Some("unknown client_id")
    } else if !get("redirect_uri").starts_with("http://")
        && !get("redirect_uri").starts_with("https://")
    {
        Some("redirect_uri must be an absolute http(s) URL")
    } else if get("scope").trim().is_empty() {
        Some("scope is missing")
    } else if get("state").is_empty() || get("state").len() > 500 {
        Some("state must have 1 to 500 characters")
    } else if get("code_challenge_method") != "S256" {
        Some("code_challenge_method must be S256")
    } else if !is_s256_challenge(get("code_challenge")) {
        Some("code_challenge must be 43 base64url characters")
    } else {
        None
    };
    if let Some(wrong) = wrong {
        return page(
            StatusCode::BAD_REQUEST,
            "Something went wrong",
            &format!(
                "<h1>Something went wrong</h1><p>You weren't able to give access to the App. Go back and try logging in again.</p><p id=\"reason\">{}</p>",
                html_escape(wrong)
            ),
        );
    }
    let issued = AuthorizationCode {
        code: random("code"),
        client_id: get("client_id").to_owned(),
        redirect_uri: get("redirect_uri").to_owned(),
        scope: get("scope").to_owned(),
        state: get("state").to_owned(),
        code_challenge: get("code_challenge").to_owned(),
        used: false,
    };
    let approve = with_query(
        &issued.redirect_uri,
        &[("state", &issued.state), ("code", &issued.code)],
    );
    let refuse = with_query(
        &issued.redirect_uri,
        &[("error", "access_denied"), ("state", &issued.state)],
    );
    flows.codes.push(issued);
    approval_page(&approve, &refuse)
}

/// `POST /2/oauth2/token` with `grant_type=authorization_code`.
pub(super) async fn oauth2_token(shared: &Shared, headers: &HeaderMap, body: &str) -> Response {
    let invalid = |body: &str| with_type(StatusCode::BAD_REQUEST, JSON, body);
    let unauthorized = || with_type(StatusCode::UNAUTHORIZED, JSON, MISSING_AUTHORIZATION);
    if !is_form(headers) {
        return invalid(
            r#"{"error":"invalid_request","error_description":"Content-Type must be application/x-www-form-urlencoded."}"#,
        );
    }
    let params: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| params.get(name).map(String::as_str);
    match get("grant_type") {
        None => return invalid(MISSING_GRANT_TYPE),
        Some("authorization_code") => {}
        Some(_) => {
            return invalid(
                r#"{"error":"invalid_request","error_description":"Value passed for the grant type was invalid."}"#,
            );
        }
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .map(parse_basic);
    let (issued, failure) = {
        let mut flows = shared.flows.lock().unwrap();
        // Who the client is: Basic for a confidential client, `client_id` for a public one.
        let client_id = match basic {
            Some(Some((id, secret))) => {
                let Some(Some(expected)) = flows.client(&id) else {
                    return unauthorized();
                };
                if !credential_matches(&secret, &expected) {
                    return unauthorized();
                }
                if get("client_id").is_some_and(|body_id| body_id != id) {
                    return invalid(
                        r#"{"error":"invalid_request","error_description":"Value passed for the client_id was invalid."}"#,
                    );
                }
                id
            }
            Some(None) => return unauthorized(),
            None => {
                let id = get("client_id").unwrap_or("");
                match flows.client(id) {
                    Some(None) => id.to_owned(),
                    // Confidential, or unknown: X wants the client's Basic authentication.
                    Some(Some(_)) | None => return unauthorized(),
                }
            }
        };
        let failure = flows.failure.clone();
        // A code works once, whatever happens next.
        let Some(issued) = flows
            .codes
            .iter_mut()
            .find(|c| Some(c.code.as_str()) == get("code") && !c.used)
        else {
            return invalid(INVALID_CODE);
        };
        issued.used = true;
        if issued.client_id != client_id {
            return invalid(INVALID_CODE);
        }
        (issued.clone(), failure)
    };
    match failure {
        Some(FlowFailure::ExchangeUnauthorized) => return unauthorized(),
        Some(FlowFailure::ExchangeEssentialPlan) => {
            return with_type(StatusCode::FORBIDDEN, JSON, ESSENTIAL_ACCESS);
        }
        Some(FlowFailure::ExchangeSlow(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    let verifier = get("code_verifier").unwrap_or("");
    if get("redirect_uri") != Some(issued.redirect_uri.as_str())
        || !is_code_verifier(verifier)
        || s256_challenge(verifier) != issued.code_challenge
    {
        return invalid(INVALID_CODE);
    }
    let token = BearerToken {
        token: random("bearer"),
        client_id: issued.client_id,
        scope: issued.scope,
    };
    let body = serde_json::json!({
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": token.token,
        "scope": token.scope,
    })
    .to_string();
    shared.flows.lock().unwrap().bearers.push(token);
    with_type(StatusCode::OK, JSON, &body)
}

/// `base64url_nopad(sha256(verifier))`: the S256 code challenge (RFC 7636 §4.2).
pub fn s256_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
pub(super) fn is_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is a base64url SHA-256 without padding: exactly 43 characters.
pub(super) fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// `Basic base64(id:secret)` → the id and secret as sent; `None` for another scheme or an
/// unreadable value.
pub(super) fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1 form-encodes both before base64 (some clients do, some do not).
    let id = form_decode(id).unwrap_or_else(|| id.to_owned());
    Some((id, secret.to_owned()))
}

/// A client secret as sent (raw, or form-encoded as RFC 6749 §2.3.1 says) against the real one.
pub(super) fn credential_matches(sent: &str, expected: &str) -> bool {
    sent == expected || form_decode(sent).as_deref() == Some(expected)
}

/// The token of `Authorization: Bearer <token>`.
pub(super) fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("Bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub(super) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|t| {
            t.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The first value of `name` in a form-encoded string.
pub(super) fn form_param(form: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(form?.as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// `base` with these parameters added to its query (form-encoded).
pub(super) fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}{}", query.finish())
}

/// A fresh unguessable value, tagged for whoever reads a failing test.
pub(super) fn random(tag: &str) -> String {
    format!("{tag}{}", uuid::Uuid::new_v4().simple())
}

pub(super) const HTML: &str = "text/html; charset=utf-8";

/// The approval page: two plain links, as a visitor at X would click them.
pub(super) fn approval_page(approve: &str, refuse: &str) -> Response {
    page(
        StatusCode::OK,
        "Authorize app - X",
        &format!(
            "<h1>Authorize app to access your account?</h1><p>Signed in as @{USERNAME} ({NAME}).</p><p><a id=\"approve\" href=\"{}\">Authorize app</a></p><p><a id=\"refuse\" href=\"{}\">Cancel</a></p>",
            html_escape(approve),
            html_escape(refuse)
        ),
    )
}

pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    with_type(
        status,
        HTML,
        &format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>{body}</body></html>\n",
            html_escape(title)
        ),
    )
}

pub(super) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(super) fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Where the link `#id` (`approve` or `refuse`) of an approval page leads, as a browser clicking
/// it would go: for tests of the flows over plain HTTP. The page is fetched from `page_url`
/// (the `Location` that `/authorize` answered with).
pub async fn link(page_url: &str, id: &str) -> String {
    let response = crate::support::client()
        .get(page_url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("the approval page {page_url} answers: {e}"));
    let status = response.status();
    let html = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "the approval page {page_url}: {html}");
    find_link(&html, id).unwrap_or_else(|| panic!("no link #{id} on the page: {html}"))
}

/// The `href` of `<a id="{id}" href="…">` in a page the fake made.
pub(super) fn find_link(html: &str, id: &str) -> Option<String> {
    let prefix = format!("<a id=\"{id}\" href=\"");
    let start = html.find(&prefix)? + prefix.len();
    let end = start + html[start..].find('"')?;
    Some(html_unescape(&html[start..end]))
}
