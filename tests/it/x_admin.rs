//! The management half of X's real-time activity (issue 14): the real binary's `webhook` and
//! `subscribe` commands against the fake X, which runs its CRC against the running service; the
//! subscriptions made when a visitor connects through OAuth 2.0 (`X_ACTIVITY_EVENTS`); and the
//! start-up check of the scopes those need.

use crate::fake_tracardi::FakeTracardi;
use crate::fake_x::{self, ACCOUNT_ID, FakeX, Keys, Scenario, SubscriptionFailure};
use crate::support::TestApp;
use serde_json::Value;
use std::process::Output;
use std::time::{Duration, SystemTime};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tracardi-twitter");
const WAIT: Duration = Duration::from_secs(15);

/// Settings the commands read: cleared so that the tests' environment cannot change them.
const SETTINGS: [&str; 16] = [
    "TWITTER_API_URL",
    "VALIDATE_TIMEOUT",
    "PUBLIC_URL",
    "TWITTER_BEARER_TOKEN",
    "TWITTER_API_KEY",
    "TWITTER_API_SECRET",
    "TWITTER_ACCESS_TOKEN",
    "TWITTER_ACCESS_TOKEN_SECRET",
    "X_ACTIVITY_EVENTS",
    "X_WEBHOOK_ID",
    "TWITTER_CLIENT_ID",
    "TWITTER_CLIENT_SECRET",
    "TWITTER_SCOPES",
    "RUST_LOG",
    "HTTP_PROXY",
    "HTTPS_PROXY",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// X's app: its four keys (the app's consumer keys and the brand account's token) and its
/// app-only Bearer token, known to the fake.
struct XApp {
    x: FakeX,
    keys: Keys,
    bearer: String,
}

async fn x_app(tag: &str) -> XApp {
    let keys = Keys::unique(tag);
    let x = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read-write"),
        },
        &keys,
    )
    .await;
    let bearer = format!("AAAA{tag}bearer{}", uuid::Uuid::new_v4().simple());
    x.webhook_app(&bearer, &keys.api_key, &keys.api_secret);
    XApp { x, keys, bearer }
}

/// The service at a public URL the test knows before it starts, answering X's CRC with
/// `consumer_secret`; the URL.
async fn service(app: &XApp, consumer_secret: &str) -> (TestApp, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let service = TestApp::spawn_on(
        listener,
        &[
            "--public-url",
            &public,
            "--twitter-api-url",
            &app.x.url,
            "--twitter-consumer-key",
            &app.keys.api_key,
            "--twitter-consumer-secret",
            consumer_secret,
        ],
    )
    .await;
    (service, public)
}

/// What a command is given.
#[derive(Clone, Copy)]
enum Creds {
    Bearer,
    FourKeys,
    Both,
}

fn command(app: &XApp, public: &str, creds: Creds, args: &[&str]) -> Command {
    crate::support::init();
    let mut command = Command::new(BIN);
    command.args(args).kill_on_drop(true);
    for name in SETTINGS {
        command.env_remove(name);
    }
    for name in ["http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"] {
        command.env_remove(name);
    }
    command
        .env("TWITTER_API_URL", &app.x.url)
        .env("VALIDATE_TIMEOUT", "10s")
        .env("PUBLIC_URL", public);
    if matches!(creds, Creds::Bearer | Creds::Both) {
        command.env("TWITTER_BEARER_TOKEN", &app.bearer);
    }
    if matches!(creds, Creds::FourKeys | Creds::Both) {
        command
            .env("TWITTER_API_KEY", &app.keys.api_key)
            .env("TWITTER_API_SECRET", &app.keys.api_secret)
            .env("TWITTER_ACCESS_TOKEN", &app.keys.access_token)
            .env("TWITTER_ACCESS_TOKEN_SECRET", &app.keys.access_token_secret);
    }
    command
}

/// Runs a command: its exit code, standard output and standard error, after checking that no
/// secret of the app was printed.
async fn run(app: &XApp, public: &str, creds: Creds, args: &[&str]) -> (i32, String, String) {
    let out: Output = tokio::time::timeout(
        Duration::from_secs(60),
        command(app, public, creds, args).output(),
    )
    .await
    .expect("the command finishes within 60 s")
    .expect("the binary runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for secret in [
        &app.bearer,
        &app.keys.api_secret,
        &app.keys.access_token,
        &app.keys.access_token_secret,
    ] {
        assert!(
            !stdout.contains(secret.as_str()) && !stderr.contains(secret.as_str()),
            "{args:?} printed a secret:\n{stdout}{stderr}"
        );
    }
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

#[tokio::test]
async fn webhook_register_list_validate_delete_with_the_bearer_token() {
    let app = x_app("xadm1").await;
    let (service, public) = service(&app, &app.keys.api_secret).await;
    let url = format!("{public}/x/webhook");

    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "register"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let webhooks = app.x.webhooks();
    assert_eq!(webhooks.len(), 1);
    let id = webhooks[0].id.clone();
    assert_eq!(webhooks[0].url, url);
    assert!(webhooks[0].valid);
    assert!(out.contains("REGISTERED") && out.contains(&id), "{out}");
    assert!(out.contains(&format!("X_WEBHOOK_ID={id}")), "{out}");
    let checks = app.x.crc_checks();
    assert_eq!(checks.len(), 1, "X ran its CRC against the service");
    assert_eq!(checks[0].failure, None, "{checks:?}");
    assert_eq!(checks[0].url, url);
    assert!(checks[0].crc_token.len() > 16, "a fresh random token");

    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "list"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{id} {url} valid (this service's)")),
        "{out}"
    );

    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "validate"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("VALID: webhook {id}")), "{out}");
    assert_eq!(app.x.crc_checks().len(), 2);

    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "delete"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("DELETED: webhook {id}")), "{out}");
    assert!(app.x.webhooks().is_empty());
    let (code, out, _) = run(&app, &public, Creds::Bearer, &["webhook", "list"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("0 webhook(s)"), "{out}");

    // Every call carried the app's Bearer token.
    for call in app
        .x
        .received()
        .iter()
        .filter(|r| r.path.starts_with("/2/webhooks"))
    {
        let auth = call.headers["authorization"].to_str().unwrap();
        assert_eq!(auth, format!("Bearer {}", app.bearer));
    }
    service.shutdown().await;
}

#[tokio::test]
async fn webhook_commands_sign_with_the_four_keys_without_a_bearer_token() {
    let app = x_app("xadm2").await;
    let (service, public) = service(&app, &app.keys.api_secret).await;

    let (code, out, err) = run(&app, &public, Creds::FourKeys, &["webhook", "register"]).await;
    assert_eq!(code, 0, "{out}{err}");
    let id = app.x.webhooks()[0].id.clone();
    let register = &app.x.calls("POST", "/2/webhooks")[0];
    assert!(register.signature_ok, "signed with OAuth 1.0a");
    assert_eq!(register.oauth["oauth_token"], app.keys.access_token);

    // Listing and finding the id by URL need the Bearer token: said, exit 2, X not asked.
    for args in [
        vec!["webhook", "list"],
        vec!["webhook", "validate"],
        vec!["webhook", "replay", "--from", "2026-01-01T00:00:00Z"],
    ] {
        let before = app.x.count();
        let (code, out, err) = run(&app, &public, Creds::FourKeys, &args).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("TWITTER_BEARER_TOKEN"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        if args[1] != "replay" {
            assert_eq!(app.x.count(), before, "{args:?}");
        }
    }

    let (code, out, err) = run(
        &app,
        &public,
        Creds::FourKeys,
        &["webhook", "validate", &id],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&app, &public, Creds::FourKeys, &["webhook", "delete", &id]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(app.x.webhooks().is_empty());
    for call in app.x.received() {
        assert!(call.signature_ok, "{} {}", call.method, call.path);
    }

    // Nothing to sign with: exit 2, one line.
    let (code, _, err) = run(&app, &public, Creds::Bearer, &["webhook", "delete", "12a"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("not a webhook id"), "{err}");
    service.shutdown().await;
}

#[tokio::test]
async fn a_failing_crc_is_refused_and_named() {
    let app = x_app("xadm3").await;
    let (service, public) = service(&app, &app.keys.api_secret).await;
    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "register"]).await;
    assert_eq!(code, 0, "{out}{err}");

    // The API Key Secret is regenerated at X, the service still has the old one: X's next CRC
    // fails and the webhook is invalid.
    let new_secret = format!("regenerated{}", uuid::Uuid::new_v4().simple());
    app.x.set_app_secret(&app.keys.api_key, &new_secret);
    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "validate"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("CrcValidationFailed"), "{out}");
    assert!(out.contains("invalid"), "{out}");
    assert!(out.contains("TWITTER_CONSUMER_SECRET"), "{out}");
    assert!(!app.x.webhooks()[0].valid);
    let failure = app.x.crc_checks().last().unwrap().failure.clone();
    assert!(failure.unwrap().contains("response_token"));
    let (code, out, _) = run(&app, &public, Creds::Bearer, &["webhook", "list"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("INVALID"), "{out}");

    // Registering anew fails the same way, and nothing is registered.
    let (code, _, _) = run(&app, &public, Creds::Bearer, &["webhook", "delete"]).await;
    assert_eq!(code, 0);
    let (code, out, err) = run(&app, &public, Creds::Bearer, &["webhook", "register"]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("REFUSED") && out.contains("CrcValidationFailed"),
        "{out}"
    );
    assert!(app.x.webhooks().is_empty());

    // A URL where nothing answers: no answer to the CRC is a failure too.
    let nowhere = FakeX::refusing_url();
    let (code, out, _) = run(&app, &nowhere, Creds::Bearer, &["webhook", "register"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("CrcValidationFailed"), "{out}");
    // A URL X does not accept.
    let (code, out, _) = run(
        &app,
        "http://tt.example",
        Creds::Bearer,
        &["webhook", "register"],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("UrlValidationFailed"), "{out}");
    // X unreachable: exit 2.
    let mut unreachable = command(&app, &public, Creds::Bearer, &["webhook", "list"]);
    unreachable.env("TWITTER_API_URL", FakeX::refusing_url());
    let out = unreachable.output().await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    service.shutdown().await;
}

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

#[tokio::test]
async fn replay_asks_x_for_a_window_of_the_last_24_hours() {
    let app = x_app("xadm4").await;
    let public = "https://tt.example";
    let id = app
        .x
        .registered_webhook(&app.keys.api_key, "https://tt.example/x/webhook");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let from = rfc3339(two_hours_ago);
    let (code, out, err) = run(
        &app,
        public,
        Creds::Bearer,
        &["webhook", "replay", "--from", &from],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let jobs = app.x.replays();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].webhook_id, id, "found by URL");
    let expected: String = from.chars().take(16).filter(char::is_ascii_digit).collect();
    assert_eq!(jobs[0].from_date, expected);
    assert_eq!(jobs[0].to_date.len(), 12);
    assert!(jobs[0].to_date > jobs[0].from_date);
    assert!(out.contains(&jobs[0].job_id), "{out}");

    let to = rfc3339(two_hours_ago + Duration::from_secs(1800));
    let (code, out, err) = run(
        &app,
        public,
        Creds::Bearer,
        &[
            "webhook",
            "replay",
            "--from",
            &from,
            "--to",
            &to,
            "--webhook-id",
            &id,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");

    let too_old = rfc3339(SystemTime::now() - Duration::from_secs(30 * 3600));
    for (from, says) in [(too_old.as_str(), "24 hours"), ("2h ago", "RFC 3339")] {
        let (code, _, err) = run(
            &app,
            public,
            Creds::Bearer,
            &["webhook", "replay", "--from", from],
        )
        .await;
        assert_eq!(code, 2, "{from}");
        assert!(err.contains(says), "{from}: {err}");
    }
    assert_eq!(app.x.replays().len(), 2);
}

#[tokio::test]
async fn subscribe_makes_the_brand_account_s_subscriptions() {
    let app = x_app("xadm5").await;
    let public = "https://tt.example";
    let id = app
        .x
        .registered_webhook(&app.keys.api_key, "https://tt.example/x/webhook");
    let (code, out, err) = run(
        &app,
        public,
        Creds::Both,
        &[
            "subscribe",
            "--events",
            "post.mention.create, dm.received",
            "--profile-id",
            "brand-1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let made = app.x.subscriptions();
    assert_eq!(made.len(), 2);
    for (subscription, event_type) in made.iter().zip(["post.mention.create", "dm.received"]) {
        assert_eq!(subscription.event_type, event_type);
        assert_eq!(subscription.user_id, ACCOUNT_ID, "the token's own account");
        assert_eq!(subscription.webhook_id.as_deref(), Some(id.as_str()));
        assert_eq!(
            subscription.tag.as_deref(),
            Some("tracardi:profile:brand-1")
        );
        assert_eq!(
            subscription.created_by,
            format!("oauth1:{}", app.keys.access_token)
        );
        assert!(out.contains(&subscription.id), "{out}");
    }

    // One refused, one there already: exit 1, both said.
    app.x
        .fail_subscriptions("like.create", Some(SubscriptionFailure::RateLimited));
    let (code, out, err) = run(
        &app,
        public,
        Creds::FourKeys,
        &[
            "subscribe",
            "--events",
            "like.create,post.mention.create",
            "--webhook-id",
            &id,
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("REFUSED") && out.contains("like.create"),
        "{out}"
    );
    assert!(
        out.contains("post.mention.create (subscribed already)"),
        "{out}"
    );

    // Bad input: exit 2 before X is asked.
    let before = app.x.count();
    for (args, says) in [
        (
            vec!["subscribe", "--events", "mentions"],
            "unknown event type",
        ),
        (vec!["subscribe", "--events", ""], "at least one"),
        (
            vec!["subscribe", "--events", "like.create", "--webhook-id", "x1"],
            "not a webhook id",
        ),
    ] {
        let (code, _, err) = run(&app, public, Creds::Both, &args).await;
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let (code, _, err) = run(
        &app,
        public,
        Creds::Bearer,
        &["subscribe", "--events", "like.create"],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("four keys"), "{err}");
    assert_eq!(app.x.count(), before);
}

// --- Subscriptions when a visitor connects ---------------------------------------------------

const CLIENT_ID: &str = "eGFkbWluLWNsaWVudDoxOmNp";
const CLIENT_SECRET: &str = "xadmin-client-secret";
const SOURCE: &str = "xadmin-source";

struct Connecting {
    app: XApp,
    tracardi: FakeTracardi,
    service: TestApp,
    /// The webhook registered at the fake for `{PUBLIC_URL}/x/webhook`.
    webhook_id: String,
    http: reqwest::Client,
}

/// How the service learns the webhook's id.
#[derive(Clone, Copy, PartialEq)]
enum Subscribing {
    /// No X_ACTIVITY_EVENTS.
    Off,
    /// X_ACTIVITY_EVENTS, and X_WEBHOOK_ID.
    WebhookId,
    /// X_ACTIVITY_EVENTS, and TWITTER_BEARER_TOKEN to look the id up.
    LookUp,
}

async fn connecting(tag: &str, subscribing: Subscribing) -> Connecting {
    let app = x_app(tag).await;
    app.x.oauth2_client(CLIENT_ID, Some(CLIENT_SECRET));
    let tracardi = FakeTracardi::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let webhook_id = app
        .x
        .registered_webhook(&app.keys.api_key, &format!("{public}/x/webhook"));
    let authorize = app.x.oauth2_authorize_url();
    let mut args = vec![
        "--public-url",
        &public,
        "--twitter-api-url",
        &app.x.url,
        "--twitter-client-id",
        CLIENT_ID,
        "--twitter-client-secret",
        CLIENT_SECRET,
        "--twitter-oauth2-authorize-url",
        &authorize,
        "--twitter-consumer-key",
        &app.keys.api_key,
        "--twitter-consumer-secret",
        &app.keys.api_secret,
        "--tracardi-api-url",
        &tracardi.url,
        "--tracardi-source-id",
        SOURCE,
        "--delivery-retry-base",
        "50ms",
        "--delivery-retry-cap",
        "500ms",
    ];
    if subscribing != Subscribing::Off {
        args.extend(["--x-activity-events", EVENTS, "--twitter-scopes", SCOPES]);
    }
    match subscribing {
        Subscribing::Off => {}
        Subscribing::WebhookId => args.extend(["--x-webhook-id", &webhook_id]),
        Subscribing::LookUp => args.extend(["--twitter-bearer-token", &app.bearer]),
    }
    let service = TestApp::spawn_on(listener, &args).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    Connecting {
        app,
        tracardi,
        service,
        webhook_id,
        http,
    }
}

impl Connecting {
    /// A visitor with this profile connects through OAuth 2.0; the n-th connected event (from
    /// 1) once it reached Tracardi.
    async fn connect(&self, profile_id: &str, nth: usize) -> Value {
        let response = self
            .http
            .get(
                self.service
                    .url(&format!("/authorize?flow=oauth2&profile_id={profile_id}")),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        let page = response.headers()["location"].to_str().unwrap().to_owned();
        let back = fake_x::link(&page, "approve").await;
        let response = self.http.get(&back).send().await.unwrap();
        assert_eq!(response.status(), 200, "the connection is done");
        assert!(response.text().await.unwrap().contains("is connected"));
        let connected = |t: &FakeTracardi| -> Vec<Value> {
            t.events()
                .into_iter()
                .filter(|e| e["type"] == "twitter-account-connected")
                .collect()
        };
        self.tracardi
            .wait_until(WAIT, "the connected event", |t| connected(t).len() >= nth)
            .await;
        connected(&self.tracardi)[nth - 1].clone()
    }
}

const EVENTS: &str = "post.mention.create,like.create,dm.received";
const SCOPES: &str = "tweet.read users.read like.read dm.read offline.access";

#[tokio::test]
async fn connecting_subscribes_the_account_with_the_visitor_s_token() {
    // X_WEBHOOK_ID unset: the webhook's id is looked up with the app's Bearer token.
    let c = connecting("xadm6", Subscribing::LookUp).await;
    let event = c.connect("prof-s1", 1).await;
    let report = &event["properties"]["activity_subscriptions"];
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    let created = report["created"].as_array().unwrap();
    let made = c.app.x.subscriptions();
    assert_eq!(made.len(), 3);
    let token = &c.app.x.bearer_tokens()[0];
    for (i, event_type) in EVENTS.split(',').enumerate() {
        let subscription = made.iter().find(|s| s.event_type == event_type).unwrap();
        assert_eq!(subscription.user_id, ACCOUNT_ID);
        assert_eq!(
            subscription.tag.as_deref(),
            Some("tracardi:profile:prof-s1")
        );
        assert_eq!(
            subscription.webhook_id.as_deref(),
            Some(c.webhook_id.as_str())
        );
        assert_eq!(subscription.created_by, format!("oauth2:{}", token.token));
        // In X_ACTIVITY_EVENTS' order, each id read from whichever of the three shapes.
        assert_eq!(created[i]["event_type"], event_type);
        assert_eq!(created[i]["subscription_id"], subscription.id.as_str());
    }
    assert_eq!(c.app.x.calls("GET", "/2/webhooks").len(), 1);

    // The same account connects again (another visitor's profile): X says the subscriptions
    // exist; the webhook's id is not asked for again.
    let event = c.connect("prof-s2", 2).await;
    let report = &event["properties"]["activity_subscriptions"];
    let created = report["created"].as_array().unwrap();
    assert_eq!(created.len(), 3, "{report}");
    assert!(
        created.iter().all(|c| c["already_subscribed"] == true),
        "{report}"
    );
    assert_eq!(c.app.x.subscriptions().len(), 3);
    assert_eq!(c.app.x.calls("GET", "/2/webhooks").len(), 1, "cached");

    let logs = crate::support::logs();
    for secret in c
        .app
        .x
        .bearer_tokens()
        .iter()
        .map(|b| b.token.clone())
        .chain([c.app.bearer.clone()])
    {
        assert!(!logs.contains(&secret), "a token was logged");
    }
    c.service.shutdown().await;
}

#[tokio::test]
async fn a_failed_subscription_leaves_the_connection_done() {
    let c = connecting("xadm7", Subscribing::WebhookId).await;
    c.app
        .x
        .fail_subscriptions("like.create", Some(SubscriptionFailure::ServerError));

    let event = c.connect("prof-f1", 1).await;
    let report = &event["properties"]["activity_subscriptions"];
    let created: Vec<&str> = report["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["post.mention.create", "dm.received"], "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["event_type"], "like.create");
    assert!(
        failed[0]["error"].as_str().unwrap().contains("HTTP 503"),
        "{report}"
    );
    assert!(
        c.app.x.calls("GET", "/2/webhooks").is_empty(),
        "X_WEBHOOK_ID is set"
    );
    let logs = crate::support::logs();
    assert!(logs.contains("X refused an activity subscription"));

    // Connecting again retries it: now it works, the others are there already.
    c.app.x.fail_subscriptions("like.create", None);
    let event = c.connect("prof-f1", 2).await;
    let report = &event["properties"]["activity_subscriptions"];
    assert_eq!(report["failed"], serde_json::json!([]), "{report}");
    assert_eq!(c.app.x.subscriptions().len(), 3);
    c.service.shutdown().await;
}

#[tokio::test]
async fn x_refuses_a_subscription_whose_scope_the_token_lacks() {
    // A token granted without dm.read, from the fake's own flow, straight at the fake.
    let c = connecting("xadm8", Subscribing::Off).await;
    c.connect("prof-n1", 1).await;
    let token = c.app.x.bearer_tokens()[0].token.clone();
    let url = format!("{}/2/activity/subscriptions", c.app.x.url);
    let client = crate::support::client();
    let body = |event_type: &str| serde_json::json!({"event_type": event_type, "filter": {"user_id": ACCOUNT_ID}});
    let refused = client
        .post(&url)
        .bearer_auth(&token)
        .json(&body("dm.received"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("dm.read"),
        "{problem}"
    );
    let created = client
        .post(&url)
        .bearer_auth(&token)
        .json(&body("post.mention.create"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    // Another user's private events, or the app's Bearer token for them: refused.
    let other =
        serde_json::json!({"event_type": "post.mention.create", "filter": {"user_id": "1"}});
    let app_bearer = c.app.bearer.clone();
    for (bearer, subscription, status) in [
        (&token, other, 403),
        (&app_bearer, body("post.mention.create"), 403),
        // A public event.
        (&app_bearer, body("profile.update.bio"), 200),
    ] {
        let response = client
            .post(&url)
            .bearer_auth(bearer)
            .json(&subscription)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{subscription}");
    }
    c.service.shutdown().await;
}

#[tokio::test]
async fn start_up_refuses_missing_scopes_in_one_line() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(BIN);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command
        .kill_on_drop(true)
        .env("DATA_DIR", data_dir.path())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("PUBLIC_URL", "https://tt.example")
        .env("TWITTER_CLIENT_ID", CLIENT_ID)
        .env("X_WEBHOOK_ID", "1976325569252868099")
        .env(
            "X_ACTIVITY_EVENTS",
            "post.mention.create dm.received,like.create dm.sent",
        )
        .env("TWITTER_SCOPES", "tweet.read users.read");
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("TWITTER_SCOPES"), "{stderr}");
    assert!(
        stderr.contains("dm.read (for dm.received, dm.sent), like.read (for like.create)"),
        "{stderr}"
    );
}

#[tokio::test]
async fn subscriptions_are_deleted_by_id_with_the_app_s_bearer_token() {
    use tracardi_twitter::twitter::webhooks::Auth;
    let c = connecting("xadm9", Subscribing::WebhookId).await;
    c.connect("prof-d1", 1).await;
    let ids: Vec<String> = c.app.x.subscriptions().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 3);
    let x =
        tracardi_twitter::twitter::client::XClient::new(&tracardi_twitter::config::TwitterConfig {
            api_url: c.app.x.url.clone(),
            timeout: Duration::from_secs(10),
        });
    let bearer = secrecy::SecretString::from(c.app.bearer.clone());
    let one = x
        .delete_subscriptions(Auth::Bearer(&bearer), &[&ids[0]])
        .await
        .unwrap();
    assert_eq!(one.status, 200);
    let body: Value = serde_json::from_slice(&one.body).unwrap();
    assert_eq!(body["data"]["deleted"], true);
    assert_eq!(body["meta"]["total_subscriptions"], 2);
    let many = x
        .delete_subscriptions(Auth::Bearer(&bearer), &[&ids[1], &ids[2]])
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&many.body).unwrap();
    assert_eq!(body["data"][1]["deleted"], true, "{body}");
    assert_eq!(body["meta"]["total_subscriptions"], 0);
    assert!(c.app.x.subscriptions().iter().all(|s| s.deleted));
    c.service.shutdown().await;
}

#[tokio::test]
async fn help_lists_the_commands_and_their_settings() {
    let help = |args: &[&str]| {
        let mut command = Command::new(BIN);
        command.args(args).kill_on_drop(true);
        async move { text(&command.output().await.unwrap().stdout) }
    };
    let top = help(&["--help"]).await;
    for word in [
        "webhook",
        "subscribe",
        "X_ACTIVITY_EVENTS",
        "X_WEBHOOK_ID",
        "TWITTER_BEARER_TOKEN",
    ] {
        assert!(top.contains(word), "--help lacks {word}:\n{top}");
    }
    let webhook = help(&["webhook", "--help"]).await;
    for word in ["register", "list", "validate", "delete", "replay"] {
        assert!(
            webhook.contains(word),
            "webhook --help lacks {word}:\n{webhook}"
        );
    }
    let register = help(&["webhook", "register", "--help"]).await;
    let subscribe = help(&["subscribe", "--help"]).await;
    for word in [
        "PUBLIC_URL",
        "TWITTER_BEARER_TOKEN",
        "TWITTER_API_KEY",
        "TWITTER_API_URL",
    ] {
        assert!(register.contains(word), "register --help lacks {word}");
        assert!(subscribe.contains(word), "subscribe --help lacks {word}");
    }
    let replay = help(&["webhook", "replay", "--help"]).await;
    assert!(
        replay.contains("--from") && replay.contains("RFC 3339"),
        "{replay}"
    );
}

/// The tag a subscription gets at connect time is the one the receiver routes by: an activity
/// X delivers for that subscription lands on the visitor's profile.
#[tokio::test]
async fn an_activity_of_a_subscription_made_at_connect_lands_on_the_visitor_s_profile() {
    let c = connecting("xadm10", Subscribing::WebhookId).await;
    c.connect("prof-e1", 1).await;
    let subscription = c
        .app
        .x
        .subscriptions()
        .into_iter()
        .find(|s| s.event_type == "post.mention.create")
        .unwrap();
    let body = serde_json::json!({"data": {
        "event_uuid": format!("{}", uuid::Uuid::new_v4().as_u128() % 1_000_000_000_000),
        "event_type": "post.mention.create",
        "tag": subscription.tag,
        "filter": {"user_id": "1111111111111111111"},
        "payload": {"id": "2080765813578191303", "text": "hey @acme", "author_id": "2222222222222222222",
                    "created_at": "2026-07-24T21:23:23.000Z"}}});
    let sender = fake_x::WebhookSender::new(&c.service.url("/x/webhook"), &c.app.keys.api_secret);
    let answer = sender.deliver(&body.to_string()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    c.tracardi
        .wait_until(WAIT, "the mention", |t| {
            t.events().iter().any(|e| e["type"] == "twitter-mention")
        })
        .await;
    let on_profile = c.tracardi.payloads().into_iter().any(|p| {
        p["profile"]["id"] == "prof-e1"
            && p["events"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["type"] == "twitter-mention"))
    });
    assert!(on_profile, "{:?}", c.tracardi.payloads());
    c.service.shutdown().await;
}

/// X's CRC fails on a redirect (never followed) and on an error status, whatever comes after.
#[tokio::test]
async fn a_crc_answered_with_a_redirect_or_an_error_fails() {
    use axum::response::IntoResponse;
    let app = x_app("xadm11").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route(
            "/moved/x/webhook",
            axum::routing::get(|| async { axum::response::Redirect::temporary("/elsewhere") }),
        )
        .route(
            "/broken/x/webhook",
            axum::routing::get(|| async {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()
            }),
        );
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    for (path, why) in [("moved", "redirect"), ("broken", "HTTP 500")] {
        let public = format!("{base}/{path}");
        let (code, out, _) = run(&app, &public, Creds::Bearer, &["webhook", "register"]).await;
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("CrcValidationFailed") && out.contains(why),
            "{out}"
        );
    }
    assert!(app.x.webhooks().is_empty());
    server.abort();
}

/// An account that revokes the app loses its subscriptions: the receiver deletes them with the
/// app's Bearer token, and the revocation lands on the visitor's profile.
#[tokio::test]
async fn a_revoked_account_s_subscriptions_are_deleted() {
    let c = connecting("xadm14", Subscribing::LookUp).await;
    c.connect("prof-rv", 1).await;
    let made = c.app.x.subscriptions();
    assert!(!made.is_empty() && made.iter().all(|s| !s.deleted));
    let revoke = serde_json::json!({"data": {"event_uuid": "-91", "event_type": "oauth.revoke",
        "filter": {}, "payload": {"date_time": "2026-07-23T21:44:05+00:00",
        "user_id": ACCOUNT_ID, "app_id": "29820954"}}});
    let sender = fake_x::WebhookSender::new(&c.service.url("/x/webhook"), &c.app.keys.api_secret);
    let answer = sender.deliver(&revoke.to_string()).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    crate::support::wait_until(WAIT, "the revoked account's subscriptions deleted", || {
        c.app.x.subscriptions().iter().all(|s| s.deleted)
    })
    .await;
    c.tracardi
        .wait_until(WAIT, "the revocation", |t| {
            t.payloads().iter().any(|p| {
                p["profile"]["id"] == "prof-rv" && p["events"][0]["type"] == "twitter-app-revoked"
            })
        })
        .await;
    c.service.shutdown().await;
}
