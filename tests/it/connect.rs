//! "Connect Twitter": both flows end to end against the fake X, with the event that reaches the
//! fake Tracardi; refusal, expiry, replay, forgery, open redirects, X's failures; and a real
//! browser clicking through the fake X's approval page.

use crate::browser::Browser;
use crate::fake_tracardi::FakeTracardi;
use crate::fake_x::{self, ACCOUNT_ID, FakeX, FlowFailure, NAME, Scenario, USERNAME};
use crate::support::TestApp;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const CONSUMER_KEY: &str = "connect-consumer-key";
pub const CONSUMER_SECRET: &str = "connect-consumer-secret";
const CLIENT_ID: &str = "Y29ubmVjdC1jbGllbnQ6MTpjaQ";
pub const CLIENT_SECRET: &str = "connect-client-secret";
const SOURCE: &str = "connect-source";
const SHOP: &str = "https://shop.example";
const WAIT: Duration = Duration::from_secs(15);

/// The service with both connect flows set up against the fake X, delivering to a fake
/// Tracardi (shared with the X activity tests, which connect accounts too).
pub struct Setup {
    pub x: FakeX,
    pub tracardi: FakeTracardi,
    pub app: TestApp,
    /// Follows no redirect: tests look at each hop.
    pub http: reqwest::Client,
}

pub async fn setup(extra: &[&str]) -> Setup {
    let x = FakeX::start(Scenario::Ok {
        access_level: Some("read-write"),
    })
    .await;
    x.oauth1_app(CONSUMER_KEY, CONSUMER_SECRET);
    x.oauth2_client(CLIENT_ID, Some(CLIENT_SECRET));
    let tracardi = FakeTracardi::start().await;
    // PUBLIC_URL must name the address the service listens on: bind it first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    x.approve_callbacks(&[&format!("{public}/callback")]);
    let (authorize1, authorize2) = (x.oauth1_authorize_url(), x.oauth2_authorize_url());
    let mut args = vec![
        "--public-url",
        &public,
        "--twitter-api-url",
        &x.url,
        "--twitter-consumer-key",
        CONSUMER_KEY,
        "--twitter-consumer-secret",
        CONSUMER_SECRET,
        "--twitter-client-id",
        CLIENT_ID,
        "--twitter-client-secret",
        CLIENT_SECRET,
        "--twitter-authorize-url",
        &authorize1,
        "--twitter-oauth2-authorize-url",
        &authorize2,
        "--return-to-allowlist",
        SHOP,
        "--tracardi-api-url",
        &tracardi.url,
        "--tracardi-source-id",
        SOURCE,
        "--delivery-retry-base",
        "50ms",
        "--delivery-retry-cap",
        "500ms",
    ];
    args.extend_from_slice(extra);
    let app = TestApp::spawn_on(listener, &args).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    Setup {
        x,
        tracardi,
        app,
        http,
    }
}

impl Setup {
    pub async fn get(&self, url: &str) -> reqwest::Response {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            self.app.url(url)
        };
        self.http.get(url).send().await.unwrap()
    }

    /// `/authorize` answers 302 to X's page; returns that page's URL.
    pub async fn start(&self, query: &str) -> String {
        let response = self.get(&format!("/authorize?{query}")).await;
        assert_eq!(response.status(), 302, "{}", response.text().await.unwrap());
        location(&response)
    }

    /// The events Tracardi received, with the payload each came in.
    fn events(&self) -> Vec<(Value, Value)> {
        self.tracardi
            .payloads()
            .into_iter()
            .flat_map(|p| {
                let events = p["events"].as_array().cloned().unwrap_or_default();
                events.into_iter().map(move |e| (p.clone(), e))
            })
            .collect()
    }

    async fn wait_for_event(&self, event_type: &str) -> (Value, Value) {
        self.tracardi
            .wait_until(WAIT, event_type, |t| {
                t.events().iter().any(|e| e["type"] == event_type)
            })
            .await;
        self.events()
            .into_iter()
            .find(|(_, e)| e["type"] == event_type)
            .unwrap()
    }
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a Location header")
        .to_owned()
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn oauth1_connects_the_account_to_the_visitor_s_profile() {
    let s = setup(&[]).await;
    let page = s
        .start("flow=oauth1&profile_id=prof-1&session_id=sess-1")
        .await;
    assert!(page.starts_with(&s.x.oauth1_authorize_url()), "{page}");
    assert!(query_of(&page).contains_key("oauth_token"));
    let asked = &s.x.request_token_calls()[0];
    assert_eq!(asked.oauth["oauth_callback"], s.app.url("/callback"));

    let back = fake_x::link(&page, "approve").await;
    let response = s.get(&back).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    assert!(
        text.contains(&format!("@{USERNAME} is connected")),
        "{text}"
    );

    let (payload, event) = s.wait_for_event("twitter-account-connected").await;
    assert_eq!(payload["profile"]["id"], "prof-1");
    assert_eq!(payload["session"]["id"], "sess-1");
    assert_eq!(payload["profile_less"], false);
    assert_eq!(payload["source"]["id"], SOURCE);
    // Tracardi put it on the visitor's profile.
    let processed = s.tracardi.processed();
    let on = processed
        .iter()
        .find(|p| p.event_id == event["id"])
        .unwrap();
    assert_eq!(on.profile.as_deref(), Some("prof-1"));
    let properties = &event["properties"];
    assert_eq!(properties["flow"], "oauth1");
    assert_eq!(properties["user_id"], ACCOUNT_ID);
    assert_eq!(properties["username"], USERNAME);
    assert_eq!(properties["name"], NAME);
    // No one-time secret and no user token leaves the service.
    let sent = s
        .tracardi
        .payloads()
        .iter()
        .map(Value::to_string)
        .collect::<String>();
    let logs = crate::support::logs();
    for user in s.x.user_keys() {
        for secret in [&user.access_token, &user.access_token_secret] {
            assert!(!sent.contains(secret.as_str()) && !logs.contains(secret.as_str()));
        }
    }
    for token in s.x.request_tokens() {
        assert!(!sent.contains(&token.secret) && !logs.contains(&token.secret));
        if let Some(verifier) = token.verifier {
            assert!(!sent.contains(&verifier) && !logs.contains(&verifier));
        }
    }
    s.app.shutdown().await;
}

#[tokio::test]
async fn oauth2_with_pkce_returns_the_visitor_to_the_site() {
    let s = setup(&[]).await;
    let page = s
        .start(&format!(
            "flow=oauth2&profile_id=prof-2&return_to={SHOP}/account%3Ftab%3Dsocial"
        ))
        .await;
    let q = query_of(&page);
    assert!(page.starts_with(&s.x.oauth2_authorize_url()));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], s.app.url("/callback"));
    assert_eq!(q["scope"], "tweet.read users.read");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 32);

    let back = fake_x::link(&page, "approve").await;
    let response = s.get(&back).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        location(&response),
        format!("{SHOP}/account?tab=social&twitter=connected")
    );
    let (payload, event) = s.wait_for_event("twitter-account-connected").await;
    assert_eq!(payload["profile"]["id"], "prof-2");
    assert_eq!(event["properties"]["flow"], "oauth2");
    assert_eq!(event["properties"]["username"], USERNAME);
    // The confidential client authenticated with Basic; the fake checked the PKCE verifier.
    let exchange = &s.x.oauth2_token_calls()[0];
    assert!(
        exchange.headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let logs = crate::support::logs();
    for code in s.x.authorization_codes() {
        assert!(
            !logs.contains(&code.code),
            "an authorization code was logged"
        );
    }
    for bearer in s.x.bearer_tokens() {
        assert!(!logs.contains(&bearer.token));
    }
    s.app.shutdown().await;
}

#[tokio::test]
async fn a_refusal_is_recorded_with_the_visitor_s_context() {
    let s = setup(&[]).await;
    for (flow, profile) in [("oauth1", "prof-r1"), ("oauth2", "prof-r2")] {
        let page = s.start(&format!("flow={flow}&profile_id={profile}")).await;
        let back = fake_x::link(&page, "refuse").await;
        let response = s.get(&back).await;
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().contains("refused"));
        s.tracardi
            .wait_until(WAIT, "the refusal", |t| {
                t.payloads().iter().any(|p| {
                    p["profile"]["id"] == profile
                        && p["events"][0]["type"] == "twitter-authorization-denied"
                })
            })
            .await;
    }
    let flows: Vec<Value> = s
        .events()
        .iter()
        .map(|(_, e)| e["properties"]["flow"].clone())
        .collect();
    assert!(flows.contains(&"oauth1".into()) && flows.contains(&"oauth2".into()));
    assert_eq!(s.x.exchange_count(), 0, "a refusal exchanges nothing");
    s.app.shutdown().await;
}

#[tokio::test]
async fn a_used_link_cannot_be_replayed() {
    let s = setup(&[]).await;
    let page = s.start("flow=oauth2&profile_id=prof-3").await;
    let back = fake_x::link(&page, "approve").await;
    assert_eq!(s.get(&back).await.status(), 200);
    let replay = s.get(&back).await;
    assert_eq!(replay.status(), 400);
    let text = replay.text().await.unwrap();
    assert!(
        text.contains("expired") && text.contains("Start again"),
        "{text}"
    );
    assert!(
        text.contains("&#x2f;authorize?flow=oauth2&amp;profile_id=prof-3"),
        "{text}"
    );
    assert_eq!(s.x.exchange_count(), 1, "the code was exchanged once");
    s.app.shutdown().await;
}

#[tokio::test]
async fn an_expired_authorization_exchanges_nothing() {
    let s = setup(&["--authorize-ttl", "100ms"]).await;
    let page = s.start("flow=oauth1").await;
    let back = fake_x::link(&page, "approve").await;
    // Waiting is the point: the authorization must outlive its time to live.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let response = s.get(&back).await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("expired"));
    assert_eq!(s.x.exchange_count(), 0);
    s.app.shutdown().await;
}

#[tokio::test]
async fn forged_and_foreign_states() {
    let s = setup(&[]).await;
    // Shaped like ours, MAC wrong: refused.
    let forged = format!("{}.{}", "A".repeat(32), "B".repeat(43));
    let response = s
        .get(&format!("/callback?code=stolen&state={forged}"))
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("does not belong"));
    // Someone else's flow (not our shape): forwarded as a raw callback, exchanging nothing.
    let response = s.get("/callback?code=theirs&state=their-own-state").await;
    assert_eq!(response.status(), 200);
    let (payload, event) = s.wait_for_event("twitter-authorization-granted").await;
    assert_eq!(payload["profile_less"], true);
    assert_eq!(event["properties"]["state"], "their-own-state");
    assert_eq!(s.x.exchange_count(), 0);
    s.app.shutdown().await;
}

#[tokio::test]
async fn return_to_cannot_leave_the_allowlist() {
    let s = setup(&[]).await;
    for target in [
        "https://evil.example/",
        "//evil.example/x",
        "https://shop.example.evil.com/",
        "http://shop.example/",
        "javascript:alert(1)",
    ] {
        let response = s
            .get(&format!(
                "/authorize?flow=oauth2&return_to={}",
                urlencode(target)
            ))
            .await;
        assert_eq!(response.status(), 400, "{target}");
        assert!(response.headers().get("location").is_none());
    }
    let response = s
        .get("/authorize?flow=oauth1&return_to=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(response.status(), 400);
    assert!(s.x.request_token_calls().is_empty());
    s.app.shutdown().await;
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn an_unregistered_callback_is_named_in_the_log() {
    let s = setup(&[]).await;
    s.x.set_flow_failure(Some(FlowFailure::CallbackNotApproved));
    let response = s.get("/authorize?flow=oauth1&profile_id=prof-415").await;
    assert_eq!(response.status(), 502);
    assert!(response.text().await.unwrap().contains("did not confirm"));
    let logs = crate::support::logs();
    assert!(
        logs.contains("the callback URL is not registered"),
        "the operator learns the cause"
    );
    s.app.shutdown().await;
}

#[tokio::test]
async fn a_rejected_exchange_is_never_retried() {
    // VALIDATE_TIMEOUT bounds every call to X, the exchanges included.
    let s = setup(&["--validate-timeout", "1s"]).await;
    s.x.set_flow_failure(Some(FlowFailure::ExchangeUnauthorized));
    for flow in ["oauth1", "oauth2"] {
        let page = s.start(&format!("flow={flow}")).await;
        let back = fake_x::link(&page, "approve").await;
        let before = s.x.exchange_count();
        let response = s.get(&back).await;
        assert_eq!(response.status(), 502, "{flow}");
        assert_eq!(s.x.exchange_count(), before + 1);
        // The visitor reloads: nothing is sent to X again.
        assert_eq!(s.get(&back).await.status(), 400);
        assert_eq!(
            s.x.exchange_count(),
            before + 1,
            "{flow}: a rejected code is not retried"
        );
    }
    s.x.set_flow_failure(Some(FlowFailure::ExchangeSlow(Duration::from_secs(3))));
    let page = s.start("flow=oauth2").await;
    let back = fake_x::link(&page, "approve").await;
    assert_eq!(s.get(&back).await.status(), 504);
    s.app.shutdown().await;
}

#[tokio::test]
async fn flows_without_settings_say_which_are_missing() {
    let app = TestApp::spawn(&[]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let oauth1 = http
        .get(app.url("/authorize?flow=oauth1"))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth1.status(), 404);
    let text = oauth1.text().await.unwrap();
    assert!(
        text.contains("TWITTER_CONSUMER_KEY") && text.contains("PUBLIC_URL"),
        "{text}"
    );
    let oauth2 = http
        .get(app.url("/authorize?flow=oauth2"))
        .send()
        .await
        .unwrap();
    assert_eq!(oauth2.status(), 404);
    assert!(oauth2.text().await.unwrap().contains("TWITTER_CLIENT_ID"));
    // The missing settings come first, whatever else the address holds.
    let refused_return_to = http
        .get(app.url("/authorize?flow=oauth2&return_to=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused_return_to.status(), 404);
    let bad = http
        .get(app.url("/authorize?flow=oauth3"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    // The rest of the service works.
    assert_eq!(
        http.get(app.url("/callback?denied=x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_person_connects_and_refuses_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let s = setup(&[]).await;
    browser
        .goto(
            &s.app
                .url("/authorize?flow=oauth1&profile_id=prof-b1&session_id=sess-b1"),
        )
        .await;
    browser.click("#approve").await;
    browser.wait_for_text("is connected").await;
    let text = browser.text().await;
    assert!(
        text.contains(&format!("@{USERNAME} is connected")),
        "{text}"
    );
    assert!(text.contains("You can close this window"));
    assert!(browser.url().await.starts_with(&s.app.url("/callback")));
    let (payload, _) = s.wait_for_event("twitter-account-connected").await;
    assert_eq!(payload["profile"]["id"], "prof-b1");

    browser
        .goto(&s.app.url("/authorize?flow=oauth2&profile_id=prof-b2"))
        .await;
    browser.click("#refuse").await;
    browser.wait_for_text("refused").await;
    s.tracardi
        .wait_until(WAIT, "the refusal", |t| {
            t.payloads().iter().any(|p| {
                p["profile"]["id"] == "prof-b2"
                    && p["events"][0]["type"] == "twitter-authorization-denied"
            })
        })
        .await;
    browser.close().await;
    s.app.shutdown().await;
}

/// Started flows are rows on disk until their visitor comes back: past
/// MAX_PENDING_AUTHORIZATIONS, new starts get 503 (with Retry-After) and X is not asked for a
/// request token; a finished flow makes room again.
#[tokio::test]
async fn waiting_flows_are_capped() {
    let s = setup(&["--max-pending-authorizations", "2"]).await;
    let first = s.start("flow=oauth2&profile_id=cap-1").await;
    s.start("flow=oauth1&profile_id=cap-2").await;
    let token_requests = s.x.received().len();
    for flow in ["oauth1", "oauth2"] {
        let refused = s.get(&format!("/authorize?flow={flow}")).await;
        assert_eq!(refused.status(), 503, "{flow}");
        assert!(refused.headers().contains_key("retry-after"));
        assert!(refused.text().await.unwrap().contains("try again"));
    }
    assert_eq!(
        s.x.received().len(),
        token_requests,
        "X was asked for a refused flow"
    );
    // The visitor of the first flow comes back: one waiting flow fewer, room for a new one.
    let back = fake_x::link(&first, "approve").await;
    assert_eq!(s.get(&back).await.status(), 200);
    s.start("flow=oauth2&profile_id=cap-3").await;
}
