//! Reading X's answers: pure functions from status, headers and body to what they mean.
//!
//! X's error bodies and headers are catalogued in twitter-api.md §2.3-§2.4; each arm below names
//! the row it recognises.

use super::credentials::{ACCESS_TOKEN, API_KEY};
use super::report::{
    AccessLevel, Account, CredentialProblem, RateLimit, Severity, ValidationReport,
};
use axum::http::HeaderMap;
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far X's clock may be from ours before a 401 is blamed on the clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// An HTTP answer from X, as received.
#[derive(Debug, Clone)]
pub struct XAnswer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why X refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: wrong keys, revoked or regenerated token, suspended app (v2 cannot say which).
    InvalidCredentials { token_expired: bool },
    /// 401 while X's clock and ours differ by more than [`MAX_CLOCK_SKEW`].
    ClockSkew { skew_seconds: u64 },
    /// 403 `client-not-enrolled`: the app is not enrolled for API v2 (an older app outside a
    /// Project).
    ClientNotEnrolled,
    /// 403 code 453: the plan does not include the endpoint.
    PlanLacksEndpoint,
    /// 403 `user-suspended` (or v1.1 codes 64/326).
    UserSuspended,
    /// 403 `oauth1-permissions`: the token cannot write.
    ReadOnlyToken,
    /// 403 duplicate content (v1.1 code 187).
    Duplicate,
    /// 400 text too long (v1.1 code 186).
    TooLong,
    /// 402: the pay-per-use account is out of credits.
    OutOfCredits,
    /// 429: rate limit or usage cap; seconds until it resets.
    RateLimited {
        retry_after: u64,
        usage_capped: bool,
    },
    /// Anything else: an answer this service does not understand.
    Unexpected { status: u16, summary: String },
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header's value as a whole number, when it is one.
pub fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    header(headers, name).and_then(|v| v.trim().parse().ok())
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// X's rate-limit window, when all three headers are there.
pub fn rate_limit(headers: &HeaderMap) -> Option<RateLimit> {
    Some(RateLimit {
        limit: header_u64(headers, "x-rate-limit-limit")?,
        remaining: header_u64(headers, "x-rate-limit-remaining")?,
        reset: header_u64(headers, "x-rate-limit-reset")?,
    })
}

/// How far X's `Date` header is from `now`, in seconds.
pub fn clock_skew(headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    let date = httpdate::parse_http_date(header(headers, "date")?).ok()?;
    Some(unix_seconds(date).abs_diff(unix_seconds(now)))
}

/// v1.1 error codes in `{"errors":[{"code":N,...}]}`.
fn v1_codes(body: &Value) -> Vec<i64> {
    body.get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e.get("code")?.as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// The last segment of a v2 problem `type`, e.g. `client-forbidden`.
fn problem_type(body: &Value) -> &str {
    body.get("type")
        .and_then(Value::as_str)
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or("")
}

fn text_field<'a>(body: &'a Value, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or("")
}

/// Seconds until a rate limit resets: from `x-rate-limit-reset`, else `Retry-After`, else a minute.
fn retry_after(headers: &HeaderMap, now: SystemTime) -> u64 {
    if let Some(reset) = header_u64(headers, "x-rate-limit-reset") {
        return reset.saturating_sub(unix_seconds(now)).max(1);
    }
    header_u64(headers, "retry-after").unwrap_or(60).max(1)
}

/// What a non-success answer from X means.
pub fn refusal(answer: &XAnswer, now: SystemTime) -> Refusal {
    let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let codes = v1_codes(&body);
    let kind = problem_type(&body);
    match answer.status {
        // Rows 1-3, 5: v2 says only "Unauthorized"; the clock is the one cause we can check.
        401 => match clock_skew(&answer.headers, now) {
            Some(skew) if skew > MAX_CLOCK_SKEW.as_secs() => {
                Refusal::ClockSkew { skew_seconds: skew }
            }
            _ if codes.contains(&135) => Refusal::ClockSkew {
                skew_seconds: clock_skew(&answer.headers, now).unwrap_or(0),
            },
            _ => Refusal::InvalidCredentials {
                token_expired: codes.contains(&89),
            },
        },
        // Row 8.
        403 if kind == "client-forbidden"
            || text_field(&body, "reason") == "client-not-enrolled" =>
        {
            Refusal::ClientNotEnrolled
        }
        // Rows 6-7.
        403 if codes.contains(&453) => Refusal::PlanLacksEndpoint,
        // Row 12.
        403 if kind == "user-suspended" || codes.contains(&64) || codes.contains(&326) => {
            Refusal::UserSuspended
        }
        // Rows 9-10.
        403 if kind == "oauth1-permissions" || codes.contains(&261) => Refusal::ReadOnlyToken,
        // Row 17.
        403 if codes.contains(&187)
            || text_field(&body, "detail").contains("duplicate content") =>
        {
            Refusal::Duplicate
        }
        // §4: "Your Tweet text is too long" (v2) or code 186 (v1.1).
        400 if codes.contains(&186) || answer_text(&answer.body).contains("too long") => {
            Refusal::TooLong
        }
        402 => Refusal::OutOfCredits,
        // Rows 14-15.
        429 => Refusal::RateLimited {
            retry_after: retry_after(&answer.headers, now),
            usage_capped: kind == "usage-capped",
        },
        status => Refusal::Unexpected {
            status,
            summary: summary(&body, &answer.body),
        },
    }
}

fn answer_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).to_ascii_lowercase()
}

/// A short, safe description of an answer we do not understand: X's own title or detail, cut.
/// X's bodies never echo our keys, and we keep at most 200 characters.
fn summary(body: &Value, raw: &[u8]) -> String {
    let text = [text_field(body, "detail"), text_field(body, "title")]
        .into_iter()
        .find(|t| !t.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            body.get("errors")
                .and_then(|e| e.get(0))
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            if raw.is_empty() {
                "an empty body".to_owned()
            } else {
                "a body that is not X's JSON".to_owned()
            }
        });
    text.chars().take(200).collect()
}

/// Why no verdict on the keys could be reached: the caller decides how to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecided {
    /// 429: X will answer again after `retry_after` seconds.
    RateLimited {
        retry_after: u64,
        usage_capped: bool,
    },
    /// X answered something this service cannot read as a verdict on the keys.
    Unexpected {
        status: u16,
        summary: String,
    },
    Timeout(std::time::Duration),
    Unreachable(String),
}

/// Diagnoses the answer to a signed `GET /2/users/me`.
///
/// `token_user_id` is the number before the `-` of the access token, when it has one.
pub fn diagnose_users_me(
    answer: &XAnswer,
    token_user_id: Option<&str>,
    now: SystemTime,
) -> Result<ValidationReport, Undecided> {
    let rate_limit = rate_limit(&answer.headers);
    if answer.status == 200 {
        return match parse_account(&answer.body) {
            Some(account) => Ok(accepted(answer, account, token_user_id, rate_limit)),
            None => Err(Undecided::Unexpected {
                status: 200,
                summary: "a 200 without the account in data.id, data.username and data.name".into(),
            }),
        };
    }
    let problem = match refusal(answer, now) {
        Refusal::InvalidCredentials { token_expired } => invalid_credentials(token_expired),
        Refusal::ClockSkew { skew_seconds } => clock_skew_problem(skew_seconds),
        Refusal::ClientNotEnrolled => client_not_enrolled(),
        Refusal::PlanLacksEndpoint => plan_lacks_endpoint(),
        Refusal::UserSuspended => user_suspended(),
        Refusal::OutOfCredits => out_of_credits(),
        Refusal::RateLimited {
            retry_after,
            usage_capped,
        } => {
            return Err(Undecided::RateLimited {
                retry_after,
                usage_capped,
            });
        }
        Refusal::ReadOnlyToken | Refusal::Duplicate | Refusal::TooLong => {
            return Err(Undecided::Unexpected {
                status: answer.status,
                summary: "a refusal that does not apply to reading an account".into(),
            });
        }
        Refusal::Unexpected { status, summary } => {
            return Err(Undecided::Unexpected { status, summary });
        }
    };
    Ok(ValidationReport {
        valid: false,
        account: None,
        access_level: None,
        problems: vec![problem],
        rate_limit,
        cached: false,
    })
}

fn parse_account(body: &[u8]) -> Option<Account> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let data = body.get("data")?;
    let field = |name: &str| data.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(Account {
        id: field("id")?,
        username: field("username")?,
        name: field("name").unwrap_or_default(),
    })
}

fn accepted(
    answer: &XAnswer,
    account: Account,
    token_user_id: Option<&str>,
    rate_limit: Option<RateLimit>,
) -> ValidationReport {
    let access_level = header(&answer.headers, "x-access-level").and_then(AccessLevel::from_header);
    let mut problems = Vec::new();
    if access_level == Some(AccessLevel::Read) {
        problems.push(read_only_token(&account.username));
    }
    if let Some(prefix) = token_user_id
        && prefix != account.id
    {
        problems.push(token_account_mismatch(prefix, &account));
    }
    ValidationReport {
        valid: true,
        account: Some(account),
        access_level,
        problems,
        rate_limit,
        cached: false,
    }
}

fn error(
    code: &'static str,
    field: Option<&'static str>,
    message: &str,
    fix: &str,
) -> CredentialProblem {
    CredentialProblem {
        code,
        severity: Severity::Error,
        field,
        message: message.to_owned(),
        fix: fix.to_owned(),
    }
}

fn invalid_credentials(token_expired: bool) -> CredentialProblem {
    if token_expired {
        return error(
            "invalid_credentials",
            Some(ACCESS_TOKEN),
            "X says the Access Token is invalid or expired.",
            "The token was revoked or regenerated. In X's Developer Console (Apps → your app → Keys and tokens → \
             Authentication Tokens) regenerate the Access Token and Secret and paste both.",
        );
    }
    error(
        "invalid_credentials",
        None,
        "X rejected the keys (401 Unauthorized).",
        "Check, in this order: (1) the API Key and API Key Secret are the current \"Consumer Keys\" of the app (they \
         change when regenerated); (2) the Access Token and Secret were generated for this same app and not \
         regenerated or revoked since; (3) no value was swapped with another or cut short when pasted; (4) the app \
         is not suspended (X's Developer Console shows it).",
    )
}

fn clock_skew_problem(skew_seconds: u64) -> CredentialProblem {
    error(
        "clock_skew",
        None,
        &format!(
            "X rejected the request and its clock differs from this server's by {skew_seconds} seconds; X refuses \
             signatures made too far in the past or future."
        ),
        "Synchronise this server's clock (enable NTP, e.g. `timedatectl set-ntp true`), then validate again.",
    )
}

fn client_not_enrolled() -> CredentialProblem {
    error(
        "client_not_enrolled",
        Some(API_KEY),
        "X refuses this app on API v2 (client-not-enrolled): the keys are not from an app enrolled for v2, such as \
         an older app outside a Project.",
        "Use keys of an app X enrolls for API v2: create or open the app in X's Developer Console (Apps in the side \
         navigation) and copy its keys from \"Keys and tokens\". An older app made in the previous developer portal \
         must sit inside a Project: add it to one (Projects & Apps, the Project, Add App), then regenerate the keys \
         if asked.",
    )
}

fn plan_lacks_endpoint() -> CredentialProblem {
    error(
        "plan_lacks_endpoint",
        None,
        "The keys work, but the app's access plan does not include this endpoint (X error 453).",
        "Upgrade the plan, or buy pay-per-use credits, in X's Developer Console, then validate again.",
    )
}

fn user_suspended() -> CredentialProblem {
    error(
        "user_suspended",
        Some(ACCESS_TOKEN),
        "The account the Access Token belongs to is suspended or locked.",
        "Sign in to that account on x.com and resolve the suspension or lock, or use tokens of another account.",
    )
}

fn out_of_credits() -> CredentialProblem {
    error(
        "out_of_credits",
        None,
        "X refuses requests because the developer account has no API credits left (402).",
        "Buy credits or change the plan in X's Developer Console, then validate again.",
    )
}

fn read_only_token(username: &str) -> CredentialProblem {
    CredentialProblem {
        code: "read_only_token",
        severity: Severity::Warning,
        field: Some(ACCESS_TOKEN),
        message: format!("The keys work for @{username}, but the Access Token is read-only: it cannot tweet."),
        fix: "In X's Developer Console set the app's permissions to \"Read and write\" (User authentication settings), \
              then regenerate the Access Token and Secret and paste the new ones: tokens keep the permission they \
              were created with."
            .into(),
    }
}

fn token_account_mismatch(prefix: &str, account: &Account) -> CredentialProblem {
    CredentialProblem {
        code: "token_account_mismatch",
        severity: Severity::Warning,
        field: Some(ACCESS_TOKEN),
        message: format!(
            "The Access Token names account {prefix}, but X answered as @{} (id {}).",
            account.username, account.id
        ),
        fix: "Keys and tokens from different apps or accounts may be mixed: copy all four from the same app's Keys \
              and tokens tab."
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: u16, headers: &[(&'static str, String)], body: Value) -> XAnswer {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().unwrap());
        }
        XAnswer {
            status,
            headers: map,
            body: if body.is_null() {
                Vec::new()
            } else {
                body.to_string().into_bytes()
            },
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn report(outcome: Result<ValidationReport, Undecided>) -> ValidationReport {
        outcome.expect("a verdict")
    }

    fn codes(r: &ValidationReport) -> Vec<&str> {
        r.problems.iter().map(|p| p.code).collect()
    }

    const ME: &str =
        r#"{"data":{"id":"2244994945","name":"X Developers","username":"XDevelopers"}}"#;

    #[test]
    fn accepted_read_write() {
        let a = answer(
            200,
            &[
                ("x-access-level", "read-write".into()),
                ("x-rate-limit-limit", "75".into()),
                ("x-rate-limit-remaining", "74".into()),
                ("x-rate-limit-reset", "1800000900".into()),
            ],
            serde_json::from_str(ME).unwrap(),
        );
        let r = report(diagnose_users_me(&a, Some("2244994945"), now()));
        assert!(r.valid);
        assert_eq!(r.account.unwrap().username, "XDevelopers");
        assert_eq!(r.access_level, Some(AccessLevel::ReadWrite));
        assert!(r.problems.is_empty());
        assert_eq!(r.rate_limit.unwrap().remaining, 74);
    }

    #[test]
    fn read_only_and_mismatched_tokens_warn() {
        let a = answer(
            200,
            &[("x-access-level", "read".into())],
            serde_json::from_str(ME).unwrap(),
        );
        let r = report(diagnose_users_me(&a, Some("6253282"), now()));
        assert!(r.valid);
        assert_eq!(codes(&r), ["read_only_token", "token_account_mismatch"]);
        assert!(r.problems.iter().all(|p| p.severity == Severity::Warning));
    }

    #[test]
    fn unauthorized_is_the_keys_unless_the_clock_is_off() {
        let body = json!({"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"});
        let in_sync = answer(
            401,
            &[("date", httpdate::fmt_http_date(now()))],
            body.clone(),
        );
        assert_eq!(
            codes(&report(diagnose_users_me(&in_sync, None, now()))),
            ["invalid_credentials"]
        );
        let skewed = answer(
            401,
            &[(
                "date",
                httpdate::fmt_http_date(now() + Duration::from_secs(301)),
            )],
            body,
        );
        let r = report(diagnose_users_me(&skewed, None, now()));
        assert_eq!(codes(&r), ["clock_skew"]);
        assert!(r.problems[0].message.contains("301 seconds"));
        let v1_skew = answer(
            401,
            &[],
            json!({"errors":[{"code":135,"message":"Timestamp out of bounds."}]}),
        );
        assert_eq!(
            codes(&report(diagnose_users_me(&v1_skew, None, now()))),
            ["clock_skew"]
        );
        let expired = answer(
            401,
            &[],
            json!({"errors":[{"code":89,"message":"Invalid or expired token."}]}),
        );
        let r = report(diagnose_users_me(&expired, None, now()));
        assert_eq!(r.problems[0].field, Some(ACCESS_TOKEN));
    }

    #[test]
    fn forbidden_answers_name_their_cause() {
        let cases = [
            (
                json!({"client_id":"1","detail":"…","title":"Client Forbidden","reason":"client-not-enrolled","type":"https://api.twitter.com/2/problems/client-forbidden"}),
                "client_not_enrolled",
            ),
            (
                json!({"errors":[{"message":"You currently have access to a subset…","code":453}]}),
                "plan_lacks_endpoint",
            ),
            (
                json!({"detail":"The user used for authentication is suspended","title":"Forbidden","status":403,"type":"https://api.twitter.com/2/problems/user-suspended"}),
                "user_suspended",
            ),
        ];
        for (body, code) in cases {
            let r = report(diagnose_users_me(&answer(403, &[], body), None, now()));
            assert!(!r.valid);
            assert_eq!(codes(&r), [code]);
        }
    }

    #[test]
    fn rate_limits_and_nonsense_decide_nothing() {
        let limited = answer(
            429,
            &[("x-rate-limit-reset", "1800000060".into())],
            json!({"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}),
        );
        assert_eq!(
            diagnose_users_me(&limited, None, now()),
            Err(Undecided::RateLimited {
                retry_after: 60,
                usage_capped: false
            })
        );
        let capped = answer(
            429,
            &[],
            json!({"type":"https://api.twitter.com/2/problems/usage-capped"}),
        );
        assert!(matches!(
            diagnose_users_me(&capped, None, now()),
            Err(Undecided::RateLimited {
                usage_capped: true,
                ..
            })
        ));
        let broken = answer(503, &[], Value::Null);
        assert!(matches!(
            diagnose_users_me(&broken, None, now()),
            Err(Undecided::Unexpected { status: 503, .. })
        ));
        let garbage_200 = answer(200, &[], json!({"nope": 1}));
        assert!(matches!(
            diagnose_users_me(&garbage_200, None, now()),
            Err(Undecided::Unexpected { status: 200, .. })
        ));
    }

    #[test]
    fn posting_refusals() {
        let dup = answer(
            403,
            &[],
            json!({"detail":"You are not allowed to create a Tweet with duplicate content.","type":"about:blank","title":"Forbidden","status":403}),
        );
        assert_eq!(refusal(&dup, now()), Refusal::Duplicate);
        let ro = answer(
            403,
            &[],
            json!({"title":"Forbidden","status":403,"detail":"Your client app is not configured with the appropriate oauth1 app permissions for this endpoint.","type":"https://api.twitter.com/2/problems/oauth1-permissions"}),
        );
        assert_eq!(refusal(&ro, now()), Refusal::ReadOnlyToken);
        assert_eq!(
            refusal(&answer(402, &[], Value::Null), now()),
            Refusal::OutOfCredits
        );
    }
}
