//! The operator's commands for X's webhook and subscriptions (x-activity.md §1.2, §2.1):
//! `tracardi-twitter webhook register|list|validate|delete|replay` and `tracardi-twitter
//! subscribe`. Each prints what X answered, with every secret masked, and exits 0 on success,
//! 1 when X refused, 2 when it could not run (a setting missing, X unreachable).

use crate::config::TwitterArgs;
use crate::oauth1;
use crate::twitter::activity;
use crate::twitter::client::{TransportError, XClient};
use crate::twitter::diagnosis::XAnswer;
use crate::twitter::webhooks::{Auth, NewSubscription, is_webhook_id, webhook_id_for};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use std::time::{Duration, SystemTime};

/// Success.
pub const OK: u8 = 0;
/// X refused.
pub const REFUSED: u8 = 1;
/// It could not run: a setting is missing or wrong, or X could not be reached.
pub const CANNOT_RUN: u8 = 2;

/// X's four keys. They carry an `x-` prefix on the command line, so that they cannot be mistaken
/// for the service's own `--api-key`; the environment names stay `TWITTER_*`.
#[derive(clap::Args, Clone)]
pub struct KeyArgs {
    /// The X app's API Key (Keys and tokens → Consumer Keys).
    #[arg(long = "x-api-key", env = "TWITTER_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The X app's API Key Secret (Consumer Keys).
    #[arg(
        long = "x-api-secret",
        env = "TWITTER_API_SECRET",
        hide_env_values = true
    )]
    pub api_secret: Option<String>,
    /// The X account's Access Token (Keys and tokens → Authentication Tokens).
    #[arg(
        long = "x-access-token",
        env = "TWITTER_ACCESS_TOKEN",
        hide_env_values = true
    )]
    pub access_token: Option<String>,
    /// The X account's Access Token Secret (Authentication Tokens).
    #[arg(
        long = "x-access-token-secret",
        env = "TWITTER_ACCESS_TOKEN_SECRET",
        hide_env_values = true
    )]
    pub access_token_secret: Option<String>,
}

impl KeyArgs {
    fn values(&self) -> [Option<&str>; 4] {
        [
            &self.api_key,
            &self.api_secret,
            &self.access_token,
            &self.access_token_secret,
        ]
        .map(|v| v.as_deref().map(str::trim).filter(|v| !v.is_empty()))
    }

    /// OAuth 1.0a user context, when all four keys are given.
    fn oauth1(&self) -> Option<oauth1::Keys<'_>> {
        let [
            Some(consumer_key),
            Some(consumer_secret),
            Some(token),
            Some(token_secret),
        ] = self.values()
        else {
            return None;
        };
        Some(oauth1::Keys {
            consumer_key,
            consumer_secret,
            token: Some(token),
            token_secret: Some(token_secret),
        })
    }
}

/// What every command reads: where X is, the webhook's URL, and the app's credentials.
#[derive(clap::Args, Clone)]
pub struct AdminArgs {
    /// This service's externally visible base URL: the webhook is `{PUBLIC_URL}/x/webhook`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The app's app-only Bearer token (Keys and tokens → Bearer Token). `list` and `replay`
    /// need it; the other commands sign with the four keys without it.
    #[arg(long, env = "TWITTER_BEARER_TOKEN", hide_env_values = true)]
    pub twitter_bearer_token: Option<String>,
    #[command(flatten)]
    pub keys: KeyArgs,
    #[command(flatten)]
    pub twitter: TwitterArgs,
}

/// `tracardi-twitter webhook …`
#[derive(clap::Subcommand)]
pub enum WebhookCommand {
    /// Register {PUBLIC_URL}/x/webhook at X. X runs a CRC against it at once, so the service
    /// must be running there with TWITTER_CONSUMER_SECRET. Prints the webhook's id.
    Register(AdminArgs),
    /// List the app's webhooks and whether X considers each valid (needs TWITTER_BEARER_TOKEN).
    List(AdminArgs),
    /// Have X run a CRC now; a pass re-enables an invalid webhook.
    Validate(IdArgs),
    /// Delete the webhook.
    Delete(IdArgs),
    /// Have X deliver again what it delivered, or tried to, between two times within the last
    /// 24 hours (needs TWITTER_BEARER_TOKEN).
    Replay(ReplayArgs),
}

/// A command on one webhook.
#[derive(clap::Args, Clone)]
pub struct IdArgs {
    /// The webhook's id; without it, the one X lists for {PUBLIC_URL}/x/webhook (which needs
    /// TWITTER_BEARER_TOKEN).
    pub id: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

#[derive(clap::Args, Clone)]
pub struct ReplayArgs {
    /// Start, a UTC time in RFC 3339, e.g. 2026-11-29T08:00:00Z (within the last 24 hours).
    #[arg(long)]
    pub from: String,
    /// End, a UTC time in RFC 3339; default: now.
    #[arg(long)]
    pub to: Option<String>,
    /// The webhook's id; without it, the one X lists for {PUBLIC_URL}/x/webhook.
    #[arg(long, env = "X_WEBHOOK_ID")]
    pub webhook_id: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// `tracardi-twitter subscribe`: X Activity API subscriptions for the brand's own account, made
/// in its user context (the four keys).
#[derive(clap::Args, Clone)]
pub struct SubscribeArgs {
    /// The account's X user id; default: the one that starts TWITTER_ACCESS_TOKEN (`123-…`).
    #[arg(long)]
    pub user_id: Option<String>,
    /// Event types, separated by commas or spaces, e.g. post.mention.create,dm.received.
    #[arg(long, env = "X_ACTIVITY_EVENTS")]
    pub events: String,
    /// The webhook to deliver to; without it, the one X lists for {PUBLIC_URL}/x/webhook.
    #[arg(long, env = "X_WEBHOOK_ID")]
    pub webhook_id: Option<String>,
    /// The Tracardi profile the account's events belong to: tags the subscriptions
    /// `tracardi:profile:<id>`.
    #[arg(long)]
    pub profile_id: Option<String>,
    #[command(flatten)]
    pub admin: AdminArgs,
}

/// Why a command stops: its exit code and what to say.
struct Stop(u8, String);

fn cannot_run(message: impl Into<String>) -> Stop {
    Stop(CANNOT_RUN, message.into())
}

/// What a command works with, once its settings are checked.
struct Admin<'a> {
    x: XClient,
    args: &'a AdminArgs,
    bearer: Option<SecretString>,
}

impl<'a> Admin<'a> {
    fn new(args: &'a AdminArgs) -> Result<Self, Stop> {
        let twitter = args
            .twitter
            .check()
            .map_err(|e| cannot_run(format!("configuration error: {e}")))?;
        let bearer = args
            .twitter_bearer_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned()));
        Ok(Self {
            x: XClient::new(&twitter),
            args,
            bearer,
        })
    }

    fn webhook_url(&self) -> Result<String, Stop> {
        webhook_url(self.args.public_url.as_deref()).map_err(cannot_run)
    }

    fn bearer(&self, what: &str) -> Result<&SecretString, Stop> {
        self.bearer.as_ref().ok_or_else(|| {
            cannot_run(format!(
                "{what} needs TWITTER_BEARER_TOKEN (--twitter-bearer-token): X accepts only the \
                 app-only Bearer token there (Developer Console → the app → Keys and tokens → Bearer Token)"
            ))
        })
    }

    /// The Bearer token, else OAuth 1.0a user context with the four keys.
    fn auth(&self) -> Result<Auth<'_>, Stop> {
        if let Some(bearer) = &self.bearer {
            return Ok(Auth::Bearer(bearer));
        }
        self.args.keys.oauth1().map(Auth::OAuth1).ok_or_else(|| {
            cannot_run(
                "set TWITTER_BEARER_TOKEN, or the four keys TWITTER_API_KEY, TWITTER_API_SECRET, \
                 TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_TOKEN_SECRET (see --help)",
            )
        })
    }

    /// Every secret this command knows, to be masked wherever it shows up.
    fn secrets(&self) -> Vec<String> {
        let mut secrets: Vec<String> = self
            .args
            .keys
            .values()
            .iter()
            .flatten()
            .map(|s| (*s).to_owned())
            .collect();
        if let Some(bearer) = &self.bearer {
            secrets.push(bearer.expose_secret().to_owned());
        }
        secrets
    }

    /// Prints X's answer (masked) and passes it on; a transport error stops with 2.
    fn answer(
        &self,
        what: &str,
        answer: Result<XAnswer, TransportError>,
    ) -> Result<(u16, Value), Stop> {
        let answer = answer.map_err(|e| cannot_run(format!("{what}: {e}")))?;
        let secrets = self.secrets();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        println!(
            "{what}: X answered HTTP {}\n{}",
            answer.status,
            masked(&answer.body, &secrets)
        );
        let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        Ok((answer.status, body))
    }

    /// The id given, else the one X lists for `{PUBLIC_URL}/x/webhook`.
    async fn webhook_id(&self, given: Option<&str>) -> Result<String, Stop> {
        if let Some(id) = given.map(str::trim).filter(|id| !id.is_empty()) {
            if !is_webhook_id(id) {
                return Err(cannot_run(format!(
                    "'{id}' is not a webhook id (1 to 19 digits; `tracardi-twitter webhook list` shows them)"
                )));
            }
            return Ok(id.to_owned());
        }
        let url = self.webhook_url()?;
        let bearer = self.bearer("finding the webhook's id without one given (GET /2/webhooks)")?;
        let (status, body) = self.answer("GET /2/webhooks", self.x.list_webhooks(bearer).await)?;
        if status != 200 {
            return Err(Stop(
                REFUSED,
                format!("X refused to list the webhooks: {}", summary(&body)),
            ));
        }
        webhook_id_for(&body, &url).ok_or_else(|| {
            Stop(
                REFUSED,
                format!(
                    "X lists no webhook for {url}: `tracardi-twitter webhook register` registers it"
                ),
            )
        })
    }
}

/// `{PUBLIC_URL}/x/webhook`.
pub fn webhook_url(public_url: Option<&str>) -> Result<String, String> {
    let public_url = public_url.map(str::trim).filter(|u| !u.is_empty()).ok_or(
        "PUBLIC_URL is not set: the webhook X calls is {PUBLIC_URL}/x/webhook (--public-url)",
    )?;
    let base =
        crate::config::parse_base_url("PUBLIC_URL", public_url).map_err(|e| e.to_string())?;
    Ok(format!("{base}/x/webhook"))
}

fn summary(body: &Value) -> String {
    activity::error_summary(body.to_string().as_bytes())
}

/// An answer for a person: pretty JSON when it is JSON, with every value under a name that
/// holds a secret (`*token*` but pagination tokens, `*secret*`) and every known secret
/// replaced by `****`.
pub fn masked(body: &[u8], secrets: &[&str]) -> String {
    let mut text = match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            mask_value(&mut value);
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "****");
    }
    text
}

fn mask_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, inner) in map.iter_mut() {
                let name = name.to_ascii_lowercase();
                let secret = name.contains("secret")
                    || (name.contains("token")
                        && !matches!(
                            name.as_str(),
                            "next_token" | "previous_token" | "pagination_token"
                        ));
                if secret && !inner.is_null() {
                    *inner = Value::String("****".into());
                } else {
                    mask_value(inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_value),
        _ => {}
    }
}

/// `yyyymmddhhmm` in UTC, as `/2/webhooks/replay` takes its bounds.
pub fn x_date(time: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(time).to_string();
    text.chars().take(16).filter(char::is_ascii_digit).collect()
}

/// The replay window: RFC 3339 UTC times, `to` defaulting to `now`, the start within the last
/// 24 hours and before the end, the end not in the future. The error says what is wrong.
pub fn replay_window(
    from: &str,
    to: Option<&str>,
    now: SystemTime,
) -> Result<(String, String), String> {
    let parse = |flag: &str, text: &str| {
        humantime::parse_rfc3339(text.trim()).map_err(|_| {
            format!("--{flag} '{text}' is not a UTC time in RFC 3339 like 2026-11-29T08:00:00Z")
        })
    };
    let from_time = parse("from", from)?;
    let to_time = match to {
        Some(to) => parse("to", to)?,
        None => now,
    };
    if from_time > to_time {
        return Err("--from must not be later than --to".into());
    }
    // A minute of slack: the bounds have a minute's precision.
    if to_time > now + Duration::from_secs(60) {
        return Err("--to is in the future".into());
    }
    if from_time + Duration::from_secs(24 * 3600) < now {
        return Err("--from is more than 24 hours ago: X replays the last 24 hours only".into());
    }
    Ok((x_date(from_time), x_date(to_time)))
}

/// What the reason in X's refusal of a webhook call means for the operator.
fn advice(body: &Value, url: &str) -> Option<String> {
    let text = body.to_string();
    if text.contains("CrcValidationFailed") {
        Some(format!(
            "X's CRC (GET {url}?crc_token=…) failed: the service must be running at PUBLIC_URL, \
             reachable from the internet over https without a port or a redirect, with \
             TWITTER_CONSUMER_SECRET set to this app's API Key Secret"
        ))
    } else if text.contains("UrlValidationFailed") {
        Some(format!(
            "X does not accept {url}: it must be https, without a port"
        ))
    } else if text.contains("DuplicateUrlFailed") {
        Some("the URL is registered already: `tracardi-twitter webhook list` shows its id".into())
    } else if text.contains("WebhookLimitExceeded") {
        Some("the app has as many webhooks as its plan allows: delete one first".into())
    } else if text.contains("WebhookIdInvalid") {
        Some("X knows no webhook with this id for this app: `tracardi-twitter webhook list`".into())
    } else {
        None
    }
}

fn finish(result: Result<String, Stop>) -> u8 {
    match result {
        Ok(message) => {
            println!("{message}");
            OK
        }
        Err(Stop(code, message)) => {
            if code == REFUSED {
                println!("REFUSED: {message}");
            } else {
                eprintln!("tracardi-twitter: {message}");
            }
            code
        }
    }
}

/// Runs `tracardi-twitter webhook …`; the exit code.
pub async fn webhook(command: WebhookCommand) -> u8 {
    finish(match &command {
        WebhookCommand::Register(args) => register(args).await,
        WebhookCommand::List(args) => list(args).await,
        WebhookCommand::Validate(args) => validate(args).await,
        WebhookCommand::Delete(args) => delete(args).await,
        WebhookCommand::Replay(args) => replay(args).await,
    })
}

fn refused(what: &str, body: &Value, url: &str) -> Stop {
    let mut message = format!("{what}: {}", summary(body));
    if let Some(advice) = advice(body, url) {
        message.push_str(&format!("\n  Fix: {advice}"));
    }
    Stop(REFUSED, message)
}

async fn register(args: &AdminArgs) -> Result<String, Stop> {
    let admin = Admin::new(args)?;
    let url = admin.webhook_url()?;
    let auth = admin.auth()?;
    let (status, body) = admin.answer(
        "POST /2/webhooks",
        admin.x.register_webhook(auth, &url).await,
    )?;
    if !(200..300).contains(&status) {
        return Err(refused("X did not register the webhook", &body, &url));
    }
    let id = body["data"]["id"].as_str().unwrap_or("?");
    Ok(format!(
        "REGISTERED: {url} is webhook {id} (valid: {}). Set X_WEBHOOK_ID={id} for the service.",
        body["data"]["valid"]
    ))
}

async fn list(args: &AdminArgs) -> Result<String, Stop> {
    let admin = Admin::new(args)?;
    let bearer = admin.bearer("listing the webhooks (GET /2/webhooks)")?;
    let (status, body) = admin.answer("GET /2/webhooks", admin.x.list_webhooks(bearer).await)?;
    if status != 200 {
        return Err(refused("X did not list the webhooks", &body, ""));
    }
    let ours = webhook_url(args.public_url.as_deref()).ok();
    let webhooks = body["data"].as_array().cloned().unwrap_or_default();
    let mut lines = vec![format!("{} webhook(s):", webhooks.len())];
    for w in &webhooks {
        let valid = w["valid"].as_bool();
        let url = w["url"].as_str().unwrap_or("?");
        lines.push(format!(
            "  {} {url} {}{}",
            w["id"].as_str().unwrap_or("?"),
            match valid {
                Some(true) => "valid",
                Some(false) => "INVALID (X sends it no events: `webhook validate` re-runs the CRC)",
                None => "validity unknown",
            },
            if ours.as_deref() == Some(url) {
                " (this service's)"
            } else {
                ""
            }
        ));
    }
    Ok(lines.join("\n"))
}

async fn validate(args: &IdArgs) -> Result<String, Stop> {
    let admin = Admin::new(&args.admin)?;
    let auth = admin.auth()?;
    let id = admin.webhook_id(args.id.as_deref()).await?;
    let url = webhook_url(args.admin.public_url.as_deref())
        .unwrap_or_else(|_| "the webhook's URL".into());
    let (status, body) = admin.answer(
        &format!("PUT /2/webhooks/{id}"),
        admin.x.validate_webhook(auth, &id).await,
    )?;
    if !(200..300).contains(&status) {
        return Err(refused(
            &format!("X's CRC of webhook {id} did not pass; it is invalid"),
            &body,
            &url,
        ));
    }
    match body["data"]["valid"].as_bool() {
        Some(true) => Ok(format!("VALID: webhook {id} passed X's CRC")),
        _ => Err(Stop(
            REFUSED,
            format!(
                "webhook {id} did not pass X's CRC: it is invalid and gets no events\n  Fix: {}",
                advice(&Value::String("CrcValidationFailed".into()), &url).unwrap_or_default()
            ),
        )),
    }
}

async fn delete(args: &IdArgs) -> Result<String, Stop> {
    let admin = Admin::new(&args.admin)?;
    let auth = admin.auth()?;
    let id = admin.webhook_id(args.id.as_deref()).await?;
    let (status, body) = admin.answer(
        &format!("DELETE /2/webhooks/{id}"),
        admin.x.delete_webhook(auth, &id).await,
    )?;
    if (200..300).contains(&status) && body["data"]["deleted"] == true {
        Ok(format!("DELETED: webhook {id}"))
    } else {
        Err(refused(
            &format!("X did not delete webhook {id}"),
            &body,
            "",
        ))
    }
}

async fn replay(args: &ReplayArgs) -> Result<String, Stop> {
    let admin = Admin::new(&args.admin)?;
    let bearer = admin.bearer("replay (POST /2/webhooks/replay)")?;
    let (from, to) =
        replay_window(&args.from, args.to.as_deref(), SystemTime::now()).map_err(cannot_run)?;
    let id = admin.webhook_id(args.webhook_id.as_deref()).await?;
    let (status, body) = admin.answer(
        "POST /2/webhooks/replay",
        admin.x.replay_webhook(bearer, &id, &from, &to).await,
    )?;
    if !(200..300).contains(&status) {
        return Err(refused("X did not start the replay", &body, ""));
    }
    Ok(format!(
        "REPLAYING: job {} re-sends to webhook {id} what X delivered from {from} to {to} (UTC)",
        body["data"]["job_id"].as_str().unwrap_or("?")
    ))
}

/// Runs `tracardi-twitter subscribe`; the exit code.
pub async fn subscribe(args: SubscribeArgs) -> u8 {
    finish(subscribe_all(&args).await)
}

async fn subscribe_all(args: &SubscribeArgs) -> Result<String, Stop> {
    let admin = Admin::new(&args.admin)?;
    let event_types = activity::parse_event_types(&args.events)
        .map_err(|e| cannot_run(format!("--events: {e}")))?;
    if event_types.is_empty() {
        return Err(cannot_run(
            "--events: name at least one event type, e.g. post.mention.create",
        ));
    }
    let keys = args.admin.keys.oauth1().ok_or_else(|| {
        cannot_run(
            "subscribe acts as the brand's account: set its four keys TWITTER_API_KEY, \
             TWITTER_API_SECRET, TWITTER_ACCESS_TOKEN and TWITTER_ACCESS_TOKEN_SECRET (see --help)",
        )
    })?;
    let user_id = match args
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(id) => id.to_owned(),
        None => keys
            .token
            .and_then(|t| t.split_once('-'))
            .map(|(id, _)| id)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| cannot_run("--user-id: give the account's X user id"))?
            .to_owned(),
    };
    let webhook_id = admin.webhook_id(args.webhook_id.as_deref()).await?;
    let tag = args
        .profile_id
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(activity::profile_tag);
    let (mut created, mut refused, mut unreachable) = (Vec::new(), Vec::new(), Vec::new());
    for event_type in &event_types {
        let subscription = NewSubscription {
            event_type,
            user_id: &user_id,
            tag: tag.as_deref(),
            webhook_id: Some(&webhook_id),
        };
        let what = format!("POST /2/activity/subscriptions ({event_type})");
        let answer = admin
            .x
            .create_subscription(Auth::OAuth1(keys), &subscription)
            .await;
        match admin.answer(&what, answer) {
            Err(Stop(_, message)) => unreachable.push(message),
            Ok((status, body)) if (200..300).contains(&status) => {
                let id = activity::created_subscription_id(&body).unwrap_or_else(|| "?".into());
                created.push(format!("{event_type} (subscription {id})"));
            }
            Ok((status, body))
                if activity::is_duplicate_subscription(status, body.to_string().as_bytes()) =>
            {
                created.push(format!("{event_type} (subscribed already)"));
            }
            Ok((_, body)) => refused.push(format!("{event_type}: {}", summary(&body))),
        }
    }
    let mut report = format!(
        "SUBSCRIBED user {user_id} to webhook {webhook_id}: {}",
        if created.is_empty() {
            "none".to_owned()
        } else {
            created.join(", ")
        }
    );
    if !refused.is_empty() {
        report.push_str(&format!("\nREFUSED: {}", refused.join("; ")));
        return Err(Stop(REFUSED, report));
    }
    if !unreachable.is_empty() {
        println!("{report}");
        return Err(cannot_run(unreachable.join("; ")));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_is_under_public_url() {
        assert_eq!(
            webhook_url(Some("https://tt.example/base/")).unwrap(),
            "https://tt.example/base/x/webhook"
        );
        assert!(webhook_url(None).unwrap_err().contains("PUBLIC_URL"));
        assert!(
            webhook_url(Some("tt.example"))
                .unwrap_err()
                .starts_with("PUBLIC_URL: ")
        );
    }

    #[test]
    fn answers_are_shown_with_secrets_masked() {
        let body = br#"{"data":{"id":"1","access_token":"abc","client_secret":"def","meta":{"next_token":"n1"}},"echo":"Bearer SECRETBEARER"}"#;
        let shown = masked(body, &["SECRETBEARER"]);
        assert!(
            !shown.contains("abc") && !shown.contains("def") && !shown.contains("SECRETBEARER"),
            "{shown}"
        );
        assert!(
            shown.contains("n1"),
            "pagination tokens are no secret: {shown}"
        );
        assert!(shown.contains("\"id\": \"1\""), "{shown}");
        assert_eq!(
            masked(b"plain SECRETBEARER text", &["SECRETBEARER", ""]),
            "plain **** text"
        );
    }

    #[test]
    fn replay_bounds_are_minutes_in_utc() {
        let now = humantime::parse_rfc3339("2026-11-29T13:28:08Z").unwrap();
        assert_eq!(x_date(now), "202611291328");
        assert_eq!(
            replay_window("2026-11-29T10:00:00Z", None, now).unwrap(),
            ("202611291000".into(), "202611291328".into())
        );
        assert_eq!(
            replay_window(
                "2026-11-29T10:00:00Z",
                Some("2026-11-29T12:05:59+00:00"),
                now
            )
            .unwrap(),
            ("202611291000".into(), "202611291205".into())
        );
        for (from, to, says) in [
            ("yesterday", None, "RFC 3339"),
            ("2026-11-29T10:00:00+01:00", None, "UTC"),
            ("2026-11-28T13:00:00Z", None, "24 hours"),
            (
                "2026-11-29T12:00:00Z",
                Some("2026-11-29T11:00:00Z"),
                "later than --to",
            ),
            (
                "2026-11-29T12:00:00Z",
                Some("2026-11-29T15:00:00Z"),
                "future",
            ),
        ] {
            let error = replay_window(from, to, now).unwrap_err();
            assert!(error.contains(says), "{from} {to:?}: {error}");
        }
    }

    #[test]
    fn refusals_come_with_advice() {
        let body = serde_json::json!({"errors": [{"message": "CrcValidationFailed: Invalid `response_token`"}]});
        let Stop(code, message) = refused(
            "X did not register the webhook",
            &body,
            "https://t.example/x/webhook",
        );
        assert_eq!(code, REFUSED);
        assert!(
            message.contains("CrcValidationFailed: Invalid"),
            "{message}"
        );
        assert!(message.contains("TWITTER_CONSUMER_SECRET"), "{message}");
    }
}
