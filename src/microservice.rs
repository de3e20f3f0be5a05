//! The service as Tracardi's microservice protocol sees it: one service ("Twitter") whose
//! resource is the four keys and whose one action is "Send tweet".

use crate::tracardi::form::{Form, FormField, FormGroup};
use crate::tracardi::plugin::RunResponse;
use crate::tracardi::template::{self, Sources, TemplateError};
use crate::twitter::client::{TransportError, XClient};
use crate::twitter::credentials::API_KEY;
use crate::twitter::credentials::Credentials;
use crate::twitter::diagnosis::{Refusal, refusal};
use crate::twitter::report::{Severity, ValidationReport};
use crate::twitter::text::{MAX_FITTING_BYTES, MAX_WEIGHTED_LENGTH, weighted_length};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Fixed, lowercase (Tracardi lowercases ids it stores and sends them back so).
pub const SERVICE_ID: &str = "4a0b3c2e-7f51-4d8a-9c36-2e1f0b7d5a91";
pub const SERVICE_NAME: &str = "Twitter";
pub const SEND_TWEET_ID: &str = "c1f7e9a2-3b64-4e0d-8a5f-9d2c7b1e6f30";
pub const SEND_TWEET_NAME: &str = "Send tweet";

/// Ids are compared without regard to case: Tracardi may have lowercased what it stored.
pub fn is_service(id: &str) -> bool {
    id.trim().eq_ignore_ascii_case(SERVICE_ID)
}

pub fn is_send_tweet(id: &str) -> bool {
    id.trim().eq_ignore_ascii_case(SEND_TWEET_ID)
}

const TWEET_HELP: &str = "The text to post, at most 280 characters as X counts them (a link counts 23, an \
    emoji 2). Insert data with Tracardi references: {{source@path}}, where source is payload, profile, event, \
    session or memory, and path is a dotted path with list indexes, e.g. \"Hi {{profile@data.pii.firstname}}, \
    thanks for {{event@properties.items.0.name}}!\". A reference to data that is missing fails the node on its \
    error port instead of posting.";

/// The node's configuration form: one textarea.
pub fn send_tweet_form() -> Form {
    Form {
        submit: None,
        default: Map::new(),
        title: Some("Send tweet".into()),
        groups: vec![FormGroup {
            name: Some("Tweet".into()),
            description: Some(
                "Posts a tweet as the account whose keys this service's resource holds (X API v2, POST /2/tweets)."
                    .into(),
            ),
            fields: vec![FormField::new("tweet", "Tweet", TWEET_HELP, "textarea")],
        }],
    }
}

pub fn send_tweet_init() -> Value {
    json!({"tweet": ""})
}

/// Checks a node configuration; returns the cleaned config that becomes the node's `init`.
/// What keeps keys from serving "Send tweet", as Tracardi's GUI shows it under the form's
/// fields: every error, and a read-only token (it works, but cannot post). Field id → the
/// problem and its fix; the first problem of a field wins, and one that names no field is
/// shown under the API Key. Empty: the keys can post.
pub fn send_tweet_blockers(report: &ValidationReport) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for problem in &report.problems {
        if problem.severity == Severity::Error || problem.code == "read_only_token" {
            fields
                .entry(problem.field.unwrap_or(API_KEY).to_owned())
                .or_insert_with(|| format!("{} {}", problem.message, problem.fix));
        }
    }
    fields
}

pub fn validate_config(config: &Value) -> Result<Value, BTreeMap<String, String>> {
    let error = |message: String| Err(BTreeMap::from([("tweet".to_owned(), message)]));
    let tweet = match config.get("tweet") {
        None | Some(Value::Null) => return error("Field required".into()),
        Some(Value::String(tweet)) => tweet,
        Some(_) => return error("Input should be a valid string".into()),
    };
    if tweet.trim().is_empty() {
        return error(
            "Tweet must not be empty: write the text to post, e.g. Hello {{profile@data.pii.firstname}}".into(),
        );
    }
    if let Err(e) = template::check_syntax(tweet) {
        return error(format!("{e}"));
    }
    // Without references the text is final: its length can be judged now (a text past
    // MAX_FITTING_BYTES cannot fit and is not weighed, which keeps this bounded).
    if template::references(tweet).is_empty() {
        if tweet.len() > MAX_FITTING_BYTES {
            return error(format!(
                "Tweet is far longer than {MAX_WEIGHTED_LENGTH} characters as X counts them ({} bytes)",
                tweet.len()
            ));
        }
        let length = weighted_length(tweet);
        if length > MAX_WEIGHTED_LENGTH {
            return error(format!(
                "Tweet is {length} characters as X counts them; the limit is {MAX_WEIGHTED_LENGTH}"
            ));
        }
    }
    Ok(json!({ "tweet": tweet }))
}

/// Runs "Send tweet" for one `/plugin/run` request body, an object with `init`, `context` and
/// `params`.
///
/// Every outcome is a `RunResponse`: success on `response`, each failure on `error` with a
/// stable `code`. The post is sent once; a post that timed out is reported, never repeated,
/// since X may have published it.
///
/// Rendering the template and weighing the text cost time in proportion to the data (up to
/// [`MAX_FITTING_BYTES`] of text): they run on the blocking pool, with the body (whose freeing
/// costs time too), so that a large run does not hold an async worker and with it `/health`,
/// `/callback` and the request timeout.
pub async fn send_tweet(x: &XClient, run: Value) -> RunResponse {
    let answer = run_send_tweet(x, run).await;
    let port = answer.result.port;
    let code = answer.result.value["code"].as_str().unwrap_or("ok");
    crate::metrics::send_tweet_run(port, code);
    answer
}

async fn run_send_tweet(x: &XClient, run: Value) -> RunResponse {
    let tweet = match tokio::task::spawn_blocking(move || prepare(&run)).await {
        Ok(Ok(tweet)) => tweet,
        Ok(Err(refusal)) => return *refusal,
        Err(failed) => {
            tracing::error!(error = %failed, "preparing a tweet failed");
            return RunResponse::error(
                "internal_error",
                "The tweet could not be prepared (an internal error, logged); nothing was posted."
                    .into(),
                Map::new(),
            );
        }
    };
    post(x, &tweet.credentials, &tweet.text).await
}

/// What [`prepare`] hands to the post.
struct Tweet {
    credentials: Credentials,
    text: String,
}

/// The keys from the node and the text to post, rendered and checked; or the answer that
/// refuses the run.
fn prepare(run: &Value) -> Result<Tweet, Box<RunResponse>> {
    let (init, context, params) = (&run["init"], &run["context"], &run["params"]);
    let no_extra = Map::new;
    let Some(template_text) = init.get("tweet").and_then(Value::as_str) else {
        return Err(RunResponse::error(
            "invalid_config",
            "The node has no tweet text: open the node, write the tweet and save the workflow."
                .into(),
            no_extra(),
        )
        .into());
    };
    let resource = &context["node"]["microservice"]["plugin"]["resource"];
    let credentials = match Credentials::from_json(resource) {
        Ok(parsed) => parsed.credentials,
        Err(fields) => {
            let missing: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(RunResponse::error(
                "missing_credentials",
                format!(
                    "The node carries no usable Twitter keys (context.node.microservice.plugin.resource lacks: {}). \
                     Reinstall the microservice resource with the four keys.",
                    missing.join(", ")
                ),
                no_extra(),
            )
            .into());
        }
    };
    let null = Value::Null;
    let sources = Sources {
        payload: params.get("payload").unwrap_or(&null),
        profile: context.get("profile").unwrap_or(&null),
        event: context.get("event").unwrap_or(&null),
        session: context.get("session").unwrap_or(&null),
        memory: context.get("memory").unwrap_or(&null),
        flow: &null,
    };
    let text = match template::render(template_text, &sources, MAX_FITTING_BYTES) {
        Ok(text) => text,
        Err(TemplateError::TooLong { .. }) => {
            return Err(RunResponse::error(
                "too_long",
                format!(
                    "The tweet is far longer than {MAX_WEIGHTED_LENGTH} characters as X counts them: with the data \
                     inserted it passes {} KB, more than any tweet can hold. Nothing was posted.",
                    MAX_FITTING_BYTES / 1024
                ),
                no_extra(),
            )
            .into());
        }
        Err(e) => {
            return Err(RunResponse::error("missing_path", format!("{e}"), no_extra()).into());
        }
    };
    if text.trim().is_empty() {
        return Err(RunResponse::error(
            "empty_tweet",
            "The tweet is empty after inserting the data.".into(),
            no_extra(),
        )
        .into());
    }
    let length = weighted_length(&text);
    if length > MAX_WEIGHTED_LENGTH {
        let mut extra = Map::new();
        extra.insert("length".into(), json!(length));
        return Err(RunResponse::error(
            "too_long",
            format!(
                "The tweet is {length} characters as X counts them; the limit is {MAX_WEIGHTED_LENGTH}. Nothing was posted."
            ),
            extra,
        )
        .into());
    }
    Ok(Tweet { credentials, text })
}

/// Posts the text once and turns X's answer into the node's.
async fn post(x: &XClient, credentials: &Credentials, text: &str) -> RunResponse {
    let no_extra = Map::new;
    match x.post_tweet(credentials, text).await {
        Ok(answer) if answer.status == 200 || answer.status == 201 => {
            let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
            match body["data"]["id"].as_str() {
                Some(id) => RunResponse::response(
                    json!({"tweet_id": id, "text": body["data"]["text"].as_str().unwrap_or(text)}),
                    format!("Tweet {id} posted."),
                ),
                None => RunResponse::error(
                    "x_error",
                    "X accepted the post but its answer did not name the tweet; check the account's timeline before repeating."
                        .into(),
                    no_extra(),
                ),
            }
        }
        Ok(answer) => refused(refusal(&answer, SystemTime::now())),
        Err(TransportError::Timeout(after)) => RunResponse::error(
            "x_timeout",
            format!(
                "X did not answer within {} ms. The tweet may or may not have been posted; it was not sent again.",
                after.as_millis()
            ),
            no_extra(),
        ),
        Err(TransportError::Unreachable(cause)) => RunResponse::error(
            "x_unreachable",
            format!("X could not be reached ({cause}); nothing was posted."),
            no_extra(),
        ),
    }
}

fn refused(refusal: Refusal) -> RunResponse {
    let mut extra = Map::new();
    let (code, message) = match refusal {
        Refusal::Duplicate => ("duplicate", "X refused a duplicate of a recent tweet of this account.".to_owned()),
        Refusal::ReadOnlyToken => (
            "read_only_token",
            "The Access Token is read-only: set the app to \"Read and write\", then regenerate the Access Token and Secret.".to_owned(),
        ),
        Refusal::PlanLacksEndpoint => (
            "plan_lacks_endpoint",
            "The app's X plan does not include posting (error 453); upgrade it or buy credits.".to_owned(),
        ),
        Refusal::RateLimited { retry_after, usage_capped } => {
            extra.insert("retry_after".into(), json!(retry_after));
            let what = if usage_capped { "usage cap" } else { "rate limit" };
            ("rate_limited", format!("X's {what} is reached; posting is possible again in {retry_after} seconds."))
        }
        Refusal::InvalidCredentials { .. } => (
            "invalid_credentials",
            "X rejected the keys (401); check them with the resource validation.".to_owned(),
        ),
        Refusal::ClockSkew { skew_seconds } => (
            "clock_skew",
            format!("X rejected the signature; this server's clock is {skew_seconds} seconds off X's: synchronise it (NTP)."),
        ),
        Refusal::ClientNotEnrolled => (
            "client_not_enrolled",
            "X refuses this app on API v2 (client-not-enrolled): use keys of an app made in X's Developer Console, or add an older app to a Project.".to_owned(),
        ),
        Refusal::UserSuspended => ("user_suspended", "The posting account is suspended or locked.".to_owned()),
        Refusal::TooLong => ("too_long", "X says the tweet is too long.".to_owned()),
        Refusal::OutOfCredits => ("out_of_credits", "The X developer account has no credits left (402).".to_owned()),
        Refusal::Unexpected { status, summary } => {
            extra.insert("status".into(), json!(status));
            ("x_error", format!("X answered HTTP {status} with {summary}; nothing was posted."))
        }
    };
    RunResponse::error(code, message, extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Errors and a read-only token block "Send tweet", each under its field (the API Key when
    /// the problem names none, the first problem of a field winning); other warnings do not.
    #[test]
    fn what_blocks_send_tweet() {
        use crate::twitter::report::CredentialProblem;
        let problem = |code, severity, field| CredentialProblem {
            code,
            severity,
            field,
            message: format!("{code}."),
            fix: "Fix it.".into(),
        };
        let mut report =
            ValidationReport::invalid(problem("invalid_credentials", Severity::Error, None));
        report.problems.extend([
            problem("read_only_token", Severity::Warning, Some("access_token")),
            problem("whitespace_trimmed", Severity::Warning, Some("api_secret")),
            problem("user_suspended", Severity::Error, Some("access_token")),
        ]);
        assert_eq!(
            send_tweet_blockers(&report),
            BTreeMap::from([
                (
                    "api_key".to_owned(),
                    "invalid_credentials. Fix it.".to_owned()
                ),
                (
                    "access_token".to_owned(),
                    "read_only_token. Fix it.".to_owned()
                ),
            ])
        );
        report
            .problems
            .retain(|p| p.severity == Severity::Warning && p.code != "read_only_token");
        assert!(send_tweet_blockers(&report).is_empty());
    }

    #[test]
    fn config_validation() {
        assert_eq!(
            validate_config(&json!({"tweet": "Hi {{profile@data.pii.firstname}}", "x": 1}))
                .unwrap(),
            json!({"tweet": "Hi {{profile@data.pii.firstname}}"})
        );
        assert_eq!(
            validate_config(&json!({})).unwrap_err()["tweet"],
            "Field required"
        );
        assert!(
            validate_config(&json!({"tweet": "  "})).unwrap_err()["tweet"]
                .starts_with("Tweet must not be empty")
        );
        assert!(validate_config(&json!({"tweet": 5})).is_err());
        assert!(
            validate_config(&json!({"tweet": "a".repeat(281)})).unwrap_err()["tweet"]
                .contains("281")
        );
        assert!(validate_config(&json!({"tweet": "a".repeat(280)})).is_ok());
    }

    #[test]
    fn ids_are_lowercase() {
        assert_eq!(SERVICE_ID, SERVICE_ID.to_lowercase());
        assert_eq!(SEND_TWEET_ID, SEND_TWEET_ID.to_lowercase());
        assert!(is_service(&SERVICE_ID.to_uppercase()));
    }

    /// A run whose template inserts a 60 KB property a thousand times: 60 MB if rendered whole.
    fn expanding_run() -> Value {
        let keys = json!({"api_key": "k", "api_secret": "s", "access_token": "t", "access_token_secret": "ts"});
        json!({
            "init": {"tweet": "{{event@properties.big}} ".repeat(1000)},
            "context": {
                "event": {"properties": {"big": "x".repeat(60_000)}},
                "node": {"microservice": {"plugin": {"resource": keys}}}
            },
            "params": {"payload": {}}
        })
    }

    fn nowhere() -> XClient {
        crate::install_crypto_provider();
        XClient::new(&crate::config::TwitterConfig {
            api_url: "http://127.0.0.1:9".into(),
            timeout: std::time::Duration::from_secs(1),
        })
    }

    #[test]
    fn a_template_that_expands_past_any_tweet_is_too_long() {
        let answer = prepare(&expanding_run()).err().expect("refused");
        assert_eq!(answer.result.port, "error");
        assert_eq!(answer.result.value["code"], "too_long");
        assert!(answer.result.value.get("length").is_none());
        let message = answer.result.value["message"].as_str().unwrap_or_default();
        assert!(message.contains("Nothing was posted"), "{message}");
        // Missing data is still reported first.
        let mut run = expanding_run();
        run["init"]["tweet"] = json!(format!(
            "{} {{{{event@nope}}}}",
            run["init"]["tweet"].as_str().unwrap_or_default()
        ));
        let answer = prepare(&run).err().expect("refused");
        assert_eq!(answer.result.value["code"], "missing_path");
    }

    #[test]
    fn the_work_is_done_on_the_blocking_pool() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let x = nowhere();
            let mut run = std::pin::pin!(send_tweet(&x, expanding_run()));
            // Rendering and weighing on this (async) thread would finish within the first poll,
            // since this run never reaches X: handed to the blocking pool, they cannot.
            let first =
                std::future::poll_fn(|cx| std::task::Poll::Ready(run.as_mut().poll(cx))).await;
            assert!(
                first.is_pending(),
                "the run was rendered on the async thread"
            );
            let answer = run.await;
            assert_eq!(answer.result.value["code"], "too_long");
        });
    }

    #[test]
    fn config_too_long_to_weigh() {
        let long = "a.".repeat(MAX_FITTING_BYTES);
        let error = validate_config(&json!({ "tweet": long })).unwrap_err();
        assert!(
            error["tweet"].starts_with("Tweet is far longer"),
            "{error:?}"
        );
    }
}
