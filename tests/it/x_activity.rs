//! X's activity webhook end to end: the CRC, signed deliveries of every documented X Activity
//! API and Account Activity API example (x-activity.md §2.7, §3.2) through the fake X's sender,
//! and the events that reach the fake Tracardi: their types, properties, profiles, and one
//! event per activity however often X delivers it.

use crate::fake_x::{self, ACCOUNT_ID, USERNAME, WebhookSender, x_signature};
use crate::redis_server::RedisServer;
use crate::support::{self, TestApp};
use serde_json::{Value, json};
use std::time::Duration;

use crate::connect::{CLIENT_SECRET, CONSUMER_SECRET};

const WAIT: Duration = Duration::from_secs(15);

/// The subscribed account of the documented examples.
const ACME: &str = "1111111111111111111";

// x-activity.md §2.7, as printed there.
const XAA_MENTION: &str = r#"{"data":{"event_uuid":"2080765813578191303","event_type":"post.mention.create","tag":"tr:p-42",
 "filter":{"user_id":"1111111111111111111"},
 "payload":{"id":"2080765813578191303","text":"hey @acme","author_id":"2222222222222222222",
  "created_at":"2026-07-24T21:23:23.000Z","conversation_id":"2080765813578191303","lang":"en",
  "edit_history_tweet_ids":["2080765813578191303"],
  "entities":{"mentions":[{"start":4,"end":9,"username":"acme","id":"1111111111111111111"}]}},
 "includes":{"users":[{"id":"2222222222222222222","username":"fan","name":"A Fan"}]}}}"#;
const XAA_LIKE: &str = r#"{"data":{"event_uuid":"-3402274206530057851","event_type":"like.create","tag":"tr:p-42",
 "filter":{"user_id":"1111111111111111111","direction":"inbound"},
 "payload":{"id":"87719f50ee17bdfa06a3089098a2b9ed","liked_tweet_id":"2079814480427442556",
  "liked_tweet_author_id":"1111111111111111111","created_at":"2026-07-24T21:12:45.000Z",
  "timestamp_ms":"1784927565236"}}}"#;
const XAA_FOLLOW: &str = r#"{"data":{"event_uuid":"7953119945885597316","event_type":"follow.follow",
 "filter":{"user_id":"1111111111111111111"},
 "payload":{"source":{"data":{"id":"4444444444444444444","username":"newfan","name":"New Fan"}},
            "target":{"data":{"id":"1111111111111111111","username":"acme","name":"Acme"}}}}}"#;
const XAA_DM: &str = r#"{"data":{"event_uuid":"-6850472171600526495","event_type":"dm.received",
 "filter":{"user_id":"1111111111111111111"},
 "payload":{"direct_message_events":[{"type":"message_create","id":"2080765901528535096",
   "created_timestamp":"1784928224372","message_create":{"target":{"recipient_id":"1111111111111111111"},
   "sender_id":"2222222222222222222","message_data":{"text":"hello!","entities":{"hashtags":[],
   "symbols":[],"user_mentions":[],"urls":[]}}}}],
  "users":{"2222222222222222222":{"data":{"id":"2222222222222222222","username":"fan"}}}}}}"#;
const XAA_DELETE: &str = r#"{"data":{"event_uuid":"-2781149976877970683","event_type":"post.delete","filter":{"user_id":"1111111111111111111"},
 "payload":{"id":"2080761269309813134","author_id":"1111111111111111111"}}}"#;
const XAA_BIO: &str = r#"{"data":{"event_uuid":"8917909039855612786","event_type":"profile.update.bio","filter":{"user_id":"1111111111111111111"},
 "payload":{"before":"Old bio","after":"New bio"}}}"#;
const XAA_REVOKE: &str = r#"{"data":{"event_uuid":"5934540941047412905","event_type":"oauth.revoke","filter":{},
 "payload":{"date_time":"2026-07-23T21:44:05+00:00","user_id":"1111111111111111111","app_id":"29820954"}}}"#;

// x-activity.md §3.2, as printed there.
const AAA_MENTION: &str = r#"{"for_user_id":"2244994945","tweet_create_events":[{"id_str":"1924465506158878979","text":"@acme hi",
  "created_at":"Mon May 19 14:01:46 +0000 2025","user":{"id_str":"99","screen_name":"ada"},
  "entities":{"user_mentions":[{"id_str":"2244994945","screen_name":"acme","indices":[0,5]}]}}]}"#;
const AAA_FAVORITE: &str = r#"{"for_user_id":"2244994945","favorite_events":[{"id":"a7ba59eab0bfcba386f7acedac279542",
  "created_at":"Mon Mar 26 16:33:26 +0000 2018","timestamp_ms":1522082006140,
  "favorited_status":{"id_str":"1","user":{"id_str":"2244994945"}},"user":{"id_str":"99"}}]}"#;
const AAA_FOLLOW: &str = r#"{"for_user_id":"2244994945","follow_events":[{"type":"follow","created_timestamp":"1517588749178",
  "source":{"id":"99","screen_name":"ada"},"target":{"id":"2244994945","screen_name":"acme"}}]}"#;
const AAA_REVOKE: &str = r#"{"user_event":{"revoke":{"date_time":"2018-05-24T09:48:12+00:00","target":{"app_id":"13090192"},
  "source":{"user_id":"63046977"}}}}"#;

/// The connect tests' service (both flows, a fake Tracardi), and X's sender for its webhook,
/// signing with the app's consumer secret.
struct Setup {
    connect: crate::connect::Setup,
    sender: WebhookSender,
}

impl std::ops::Deref for Setup {
    type Target = crate::connect::Setup;

    fn deref(&self) -> &Self::Target {
        &self.connect
    }
}

async fn setup(extra: &[&str]) -> Setup {
    let connect = crate::connect::setup(extra).await;
    let sender = WebhookSender::new(&connect.app.url("/x/webhook"), CONSUMER_SECRET);
    Setup { connect, sender }
}

impl Setup {
    /// Delivers a body and expects it stored (or recognised as stored).
    async fn deliver(&self, body: &str) -> Value {
        let answer = self.sender.deliver(body).await;
        assert_eq!(answer.status, 200, "{body}: {:?}", answer.body);
        answer.body
    }

    /// Waits until Tracardi has processed `n` events; returns them with the profile each got.
    async fn wait_for_events(&self, n: usize) -> Vec<(Value, Option<String>)> {
        self.tracardi
            .wait_until(WAIT, &format!("{n} events"), |t| t.processed().len() >= n)
            .await;
        let events = self.tracardi.events();
        let processed = self.tracardi.processed();
        events
            .into_iter()
            .zip(processed)
            .map(|(event, p)| {
                assert_eq!(event["id"], p.event_id);
                (event, p.profile)
            })
            .collect()
    }

    /// Connects the fake X's account (ACCOUNT_ID, @USERNAME) through OAuth 2.0 for `profile`.
    async fn connect(&self, profile: &str) {
        let page = self
            .start(&format!("flow=oauth2&profile_id={profile}"))
            .await;
        let back = fake_x::link(&page, "approve").await;
        let response = self.get(&back).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
}

fn of_type<'a>(
    events: &'a [(Value, Option<String>)],
    event_type: &str,
) -> &'a (Value, Option<String>) {
    events
        .iter()
        .find(|(e, _)| e["type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} among {events:#?}"))
}

#[tokio::test]
async fn the_crc_is_answered_with_the_consumer_secret() {
    let vector = TestApp::spawn(&[
        "--twitter-consumer-key",
        "key",
        "--twitter-consumer-secret",
        "consumer-secret",
    ])
    .await;
    let response = vector
        .client
        .get(vector.url("/x/webhook?crc_token=challenge_string"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(support::content_type(&response).starts_with("application/json"));
    let body: Value = response.json().await.unwrap();
    // x-activity.md §1.4's vector: key `consumer-secret`, token `challenge_string`.
    assert_eq!(
        body,
        json!({"response_token": "sha256=S/mG8E9n5SjoGuCqHguvP8K8uuu5ogCPF0dOpIdyZlk="})
    );
    // Any token, with any secret, answered as X computes it (the fake X's own HMAC).
    let s = setup(&[]).await;
    let token = "ZjAxNTNlMzYtNGIxYS00ZDQ3LTk2ZTctYjUwZjNjYjFkYzZm+/=";
    let mut url = url::Url::parse(&s.app.url("/x/webhook")).unwrap();
    url.query_pairs_mut().append_pair("crc_token", token);
    let response = s.http.get(url).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["response_token"],
        x_signature(CONSUMER_SECRET, token.as_bytes())
    );

    for query in ["", "?crc_token=", "?other=1"] {
        let response = s
            .http
            .get(s.app.url(&format!("/x/webhook{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "crc_token_missing", "{query}");
    }
    // The operator sees when X last checked.
    let app = &s.app;
    let seen = crate::support::eventually(WAIT, "/outbox to show the CRC", || async {
        Some(app.outbox().await["x_webhook"].clone()).filter(|seen| seen["last_crc"].is_string())
    })
    .await;
    assert!(seen["last_crc"].as_str().unwrap().ends_with('Z'), "{seen}");
    assert_eq!(seen["warning"], Value::Null);
}

#[tokio::test]
async fn the_crc_key_can_be_the_client_secret_and_is_needed() {
    let s = setup(&["--x-webhook-crc-key", "client"]).await;
    let body: Value = s
        .http
        .get(s.app.url("/x/webhook?crc_token=challenge_string"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["response_token"],
        x_signature(CLIENT_SECRET, b"challenge_string")
    );

    // Without the app's secrets there is nothing to answer with: 404 naming the setting.
    let bare = TestApp::spawn(&[]).await;
    let response = bare
        .client
        .get(bare.url("/x/webhook?crc_token=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("TWITTER_CONSUMER_SECRET")
    );
    let response = bare
        .client
        .post(bare.url("/x/webhook"))
        .header("x-twitter-webhooks-signature", "sha256=AAAA")
        .body(XAA_BIO)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn nothing_unsigned_is_stored() {
    let s = setup(&[]).await;
    let good = x_signature(CONSUMER_SECRET, XAA_BIO.as_bytes());
    let refusals = [
        vec![],
        vec![("x-twitter-webhooks-signature", "")],
        vec![("x-twitter-webhooks-signature", "sha256=not base64")],
        vec![("x-twitter-webhooks-signature", &good[7..])],
        // Signed with another secret, or over other bytes (the JSON re-serialised).
        vec![(
            "x-twitter-webhooks-signature",
            &*Box::leak(x_signature("another-secret", XAA_BIO.as_bytes()).into_boxed_str()),
        )],
        vec![(
            "x-twitter-webhooks-signature",
            &*Box::leak(
                x_signature(
                    CONSUMER_SECRET,
                    serde_json::from_str::<Value>(XAA_BIO)
                        .unwrap()
                        .to_string()
                        .as_bytes(),
                )
                .into_boxed_str(),
            ),
        )],
        vec![(
            "x-twitter-webhooks-signature-oauth2",
            &*Box::leak(x_signature("another-secret", XAA_BIO.as_bytes()).into_boxed_str()),
        )],
    ];
    for headers in &refusals {
        let answer = s.sender.post(XAA_BIO, headers).await;
        assert_eq!(answer.status, 403, "{headers:?}: {:?}", answer.body);
        assert!(
            answer.body["code"]
                .as_str()
                .is_some_and(|c| c.starts_with("signature_")),
            "{:?}",
            answer.body
        );
    }
    let counts = s.app.outbox().await;
    assert_eq!(
        (
            counts["pending"].as_u64(),
            counts["delivered"].as_u64(),
            counts["dead"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{counts}"
    );
    assert_eq!(s.tracardi.requests(), 0);

    // The OAuth 2.0 header, with the client secret, is X's proof too.
    let oauth2 = x_signature(CLIENT_SECRET, XAA_BIO.as_bytes());
    let answer = s
        .sender
        .post(XAA_BIO, &[("x-twitter-webhooks-signature-oauth2", &oauth2)])
        .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.body["stored"], 1);
    s.wait_for_events(1).await;
}

#[tokio::test]
async fn every_documented_example_becomes_its_event() {
    let s = setup(&[]).await;
    for body in [
        XAA_MENTION,
        XAA_LIKE,
        XAA_FOLLOW,
        XAA_DM,
        XAA_DELETE,
        XAA_BIO,
        XAA_REVOKE,
        AAA_MENTION,
        AAA_FAVORITE,
        AAA_FOLLOW,
        AAA_REVOKE,
    ] {
        let answer = s.deliver(body).await;
        assert_eq!(answer["stored"], 1, "{body}: {answer}");
    }
    let events = s.wait_for_events(11).await;
    assert_eq!(events.len(), 11);
    // No account is linked and no tag is ours: every event is profile-less, and reached
    // Tracardi as such (`/track?profile_less=true`).
    assert!(events.iter().all(|(_, profile)| profile.is_none()));
    assert!(s.tracardi.received().iter().all(|r| r.profile_less));

    let p = |event_type: &str, x_event_type: &str| -> Value {
        events
            .iter()
            .find(|(e, _)| {
                e["type"] == event_type && e["properties"]["x_event_type"] == x_event_type
            })
            .unwrap_or_else(|| panic!("no {event_type} ({x_event_type})"))
            .0["properties"]
            .clone()
    };
    let mention = p("twitter-mention", "post.mention.create");
    assert_eq!(mention["x_format"], "xaa");
    assert_eq!(mention["post_id"], "2080765813578191303");
    assert_eq!(mention["text"], "hey @acme");
    assert_eq!(
        mention["post_url"],
        "https://x.com/fan/status/2080765813578191303"
    );
    assert_eq!(mention["lang"], "en");
    assert_eq!(mention["created_at"], "2026-07-24T21:23:23.000Z");
    assert_eq!(mention["account_id"], ACME);
    assert_eq!(mention["actor_id"], "2222222222222222222");
    assert_eq!(mention["actor_username"], "fan");
    assert_eq!(mention["x_payload"]["payload"]["id"], "2080765813578191303");

    let like = p("twitter-like", "like.create");
    assert_eq!(like["post_id"], "2079814480427442556");
    assert_eq!(like["direction"], "inbound");
    assert_eq!(like["liked_at"], "2026-07-24T21:12:45.236Z");

    let follow = &events
        .iter()
        .find(|(e, _)| e["type"] == "twitter-follow" && e["properties"]["x_format"] == "xaa")
        .unwrap()
        .0["properties"];
    assert_eq!(follow["follower_id"], "4444444444444444444");
    assert_eq!(follow["follower_username"], "newfan");
    assert_eq!(follow["followed_username"], "acme");
    assert_eq!(follow["direction"], "inbound");
    assert_eq!(follow["actor_id"], "4444444444444444444");

    let dm = p("twitter-dm-received", "dm.received");
    assert_eq!(dm["text"], "hello!");
    assert_eq!(dm["sender_id"], "2222222222222222222");
    assert_eq!(dm["sender_username"], "fan");
    assert_eq!(dm["recipient_id"], ACME);
    assert_eq!(dm["sent_at"], "2026-07-24T21:23:44.372Z");

    let deleted = p("twitter-post-deleted", "post.delete");
    assert_eq!(deleted["post_id"], "2080761269309813134");

    let bio = p("twitter-profile-updated", "profile.update.bio");
    assert_eq!(
        (
            bio["field"].as_str(),
            bio["before"].as_str(),
            bio["after"].as_str()
        ),
        (Some("bio"), Some("Old bio"), Some("New bio"))
    );

    let revoked = &events
        .iter()
        .find(|(e, _)| e["type"] == "twitter-app-revoked" && e["properties"]["x_format"] == "xaa")
        .unwrap()
        .0["properties"];
    assert_eq!(revoked["account_id"], ACME);
    assert_eq!(revoked["revoked_at"], "2026-07-23T21:44:05+00:00");
    assert_eq!(revoked["app_id"], "29820954");

    // Account Activity API: the v1.1 shapes, times as ISO 8601.
    let aaa_mention = &events
        .iter()
        .find(|(e, _)| e["type"] == "twitter-mention" && e["properties"]["x_format"] == "aaa")
        .unwrap()
        .0["properties"];
    assert_eq!(aaa_mention["post_id"], "1924465506158878979");
    assert_eq!(aaa_mention["created_at"], "2025-05-19T14:01:46.000Z");
    assert_eq!(aaa_mention["actor_username"], "ada");
    assert_eq!(
        aaa_mention["post_url"],
        "https://x.com/ada/status/1924465506158878979"
    );
    assert_eq!(aaa_mention["x_payload"]["for_user_id"], "2244994945");
    let aaa_like = &events
        .iter()
        .find(|(e, _)| e["type"] == "twitter-like" && e["properties"]["x_format"] == "aaa")
        .unwrap()
        .0["properties"];
    assert_eq!(aaa_like["actor_id"], "99");
    assert_eq!(aaa_like["liked_at"], "2018-03-26T16:33:26.140Z");
    assert_eq!(aaa_like["direction"], "inbound");
    let aaa_follow = &events
        .iter()
        .find(|(e, _)| e["type"] == "twitter-follow" && e["properties"]["x_format"] == "aaa")
        .unwrap()
        .0["properties"];
    assert_eq!(aaa_follow["follower_username"], "ada");
    assert_eq!(aaa_follow["followed_id"], "2244994945");
    let aaa_revoke = &events
        .iter()
        .find(|(e, _)| e["type"] == "twitter-app-revoked" && e["properties"]["x_format"] == "aaa")
        .unwrap()
        .0["properties"];
    assert_eq!(aaa_revoke["account_id"], "63046977");
    // Every event has a time, and the X payload under one key.
    assert!(
        events
            .iter()
            .all(|(e, _)| e["time"]["create"].is_string()
                && e["properties"]["x_payload"].is_object())
    );
}

#[tokio::test]
async fn repeats_replays_and_the_other_api_make_one_event() {
    let s = setup(&[]).await;
    assert_eq!(s.deliver(XAA_MENTION).await["stored"], 1);
    assert_eq!(s.deliver(XAA_FOLLOW).await["stored"], 1);
    // X delivers again (a retry), then replays everything.
    let again = s.deliver(XAA_MENTION).await;
    assert_eq!(
        (again["stored"].as_u64(), again["repeats"].as_u64()),
        (Some(0), Some(1))
    );
    let answers = s.sender.replay("job-1").await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    // The replay's notice is acknowledged and is not an event.
    assert_eq!(answers.last().unwrap().body["stored"], 0);
    assert_eq!(answers.last().unwrap().body["dead_letter"], false);

    // The same mention through the Account Activity API (a migration runs both): one event.
    let aaa = json!({"for_user_id": ACME, "tweet_create_events": [{
        "id_str": "2080765813578191303", "text": "hey @acme",
        "created_at": "Fri Jul 24 21:23:23 +0000 2026",
        "user": {"id_str": "2222222222222222222", "screen_name": "fan"},
        "entities": {"user_mentions": [{"id_str": ACME, "screen_name": "acme", "indices": [4, 9]}]}}]})
    .to_string();
    let answer = s.deliver(&aaa).await;
    assert_eq!(
        (answer["stored"].as_u64(), answer["repeats"].as_u64()),
        (Some(0), Some(1)),
        "{answer}"
    );
    // An event_uuid that differs but the same post: still one mention.
    let relabelled = XAA_MENTION.replace(
        "\"event_uuid\":\"2080765813578191303\"",
        "\"event_uuid\":\"0f52b591-1e55-4c1a-9a6e-0000000000aa\"",
    );
    assert_eq!(s.deliver(&relabelled).await["repeats"], 1);

    // Something new after all that is delivered, so the repeats had their chance to arrive.
    assert_eq!(s.deliver(XAA_BIO).await["stored"], 1);
    let events = s.wait_for_events(3).await;
    s.tracardi
        .wait_until(WAIT, "the bio event", |t| {
            t.events()
                .iter()
                .any(|e| e["type"] == "twitter-profile-updated")
        })
        .await;
    assert_eq!(s.tracardi.duplicates(), 0, "{:?}", s.tracardi.id_counts());
    assert_eq!(s.tracardi.event_ids().len(), 3, "{events:?}");
    let outbox = s.app.outbox().await;
    assert_eq!(outbox["dead"], 0);
    assert!(outbox["x_webhook"]["last_delivery"].is_string() || outbox["delivered"] == 3);
}

#[tokio::test]
async fn events_go_to_the_profile_linked_to_the_account() {
    let s = setup(&[]).await;
    // The visitor of profile prof-x connects the fake X's account (ACCOUNT_ID, @XDevelopers).
    s.connect("prof-x").await;
    s.tracardi
        .wait_until(WAIT, "the connect event", |t| t.processed().len() == 1)
        .await;
    let ours = |body: &str| body.replace(ACME, ACCOUNT_ID);

    // Subscribed account linked: its profile, and its username from the link.
    s.deliver(&ours(XAA_BIO)).await;
    // A tag made here names the profile, whatever the link says.
    let tagged = XAA_DM.replace(
        "\"event_type\":\"dm.received\",",
        "\"event_type\":\"dm.received\",\"tag\":\"tracardi:profile:prof-tag\",",
    );
    s.deliver(&ours(&tagged)).await;
    // Unknown subscribed account, but the actor (the follower) is linked.
    let follow = json!({"data": {"event_uuid": "77", "event_type": "follow.follow",
        "filter": {"user_id": "5555"},
        "payload": {"source": {"id": ACCOUNT_ID, "username": USERNAME}, "target": {"id": "5555", "username": "other"}}}})
    .to_string();
    s.deliver(&follow).await;
    // Nobody linked: profile-less, with the X ids in its properties.
    s.deliver(XAA_LIKE).await;
    // The account revokes the app: the event lands on its profile.
    s.deliver(&ours(XAA_REVOKE)).await;

    let events = s.wait_for_events(6).await;
    let (bio, profile) = of_type(&events, "twitter-profile-updated");
    assert_eq!(profile.as_deref(), Some("prof-x"));
    assert_eq!(bio["properties"]["account_username"], USERNAME);
    assert_eq!(
        of_type(&events, "twitter-dm-received").1.as_deref(),
        Some("prof-tag")
    );
    let (follow, profile) = of_type(&events, "twitter-follow");
    assert_eq!(profile.as_deref(), Some("prof-x"));
    // Seen from the subscribed account (5555): it was followed.
    assert_eq!(follow["properties"]["direction"], "inbound");
    let (like, profile) = of_type(&events, "twitter-like");
    assert_eq!(*profile, None);
    assert_eq!(like["properties"]["account_id"], ACME);
    let (_, profile) = of_type(&events, "twitter-app-revoked");
    assert_eq!(profile.as_deref(), Some("prof-x"));
    // Each went to Tracardi the way Tracardi needs: a profile named, or profile_less=true.
    let received = s.tracardi.received();
    let like_request = received
        .iter()
        .find(|r| {
            r.event_ids
                .contains(&like["id"].as_str().unwrap().to_owned())
        })
        .unwrap();
    assert!(like_request.profile_less);
}

#[tokio::test]
async fn bodies_not_understood_are_kept_as_dead_letters() {
    let s = setup(&[]).await;
    // Signed, but no shape X documents: acknowledged (X would only retry), kept for an operator.
    for body in [
        r#"{"something":"new"}"#,
        "not json at all",
        r#"{"for_user_id":"1","nothing_here":[]}"#,
    ] {
        let answer = s.deliver(body).await;
        assert_eq!(answer["dead_letter"], true, "{body}: {answer}");
        assert_eq!(answer["stored"], 0);
    }
    // An event type this service does not know is still an event, named as X names it.
    let new_type = XAA_BIO
        .replace("profile.update.bio", "spaces.start")
        .replace("8917909039855612786", "42");
    let legacy = XAA_BIO
        .replace("profile.update.bio", "ProfileBioUpdate")
        .replace("8917909039855612786", "43");
    assert_eq!(s.deliver(&new_type).await["stored"], 1);
    assert_eq!(s.deliver(&legacy).await["stored"], 1);
    let events = s.wait_for_events(2).await;
    let (other, _) = of_type(&events, "twitter-activity");
    assert_eq!(other["properties"]["x_event_type"], "spaces.start");
    let (bio, _) = of_type(&events, "twitter-profile-updated");
    assert_eq!(bio["properties"]["x_event_type"], "profile.update.bio");
    assert_eq!(bio["properties"]["field"], "bio");

    let outbox = s.app.outbox().await;
    assert_eq!(outbox["dead"], 3, "{outbox}");
    // A repeat of a dead letter is recognised too.
    assert_eq!(
        s.deliver(r#"{"something":"new"}"#).await["dead_letter"],
        true
    );
    assert_eq!(s.app.outbox().await["dead"], 3);

    // Over 1 MiB: refused before it is read.
    let huge = format!("{{\"pad\":\"{}\"}}", "a".repeat(1 << 20));
    let answer = s.sender.deliver(&huge).await;
    assert_eq!(answer.status, 413);
}

#[tokio::test]
async fn replicas_on_redis_share_repeats_and_links() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let url = redis.url();
    // Replica A delivers to Tracardi; replica B only receives (both store in the one Redis).
    let a = setup(&["--redis-url", &url]).await;
    let b = TestApp::spawn(&[
        "--redis-url",
        &url,
        "--twitter-consumer-key",
        "key",
        "--twitter-consumer-secret",
        CONSUMER_SECRET,
    ])
    .await;
    let to_b = WebhookSender::new(&b.url("/x/webhook"), CONSUMER_SECRET);
    assert_eq!(a.deliver(XAA_MENTION).await["stored"], 1);
    let repeat = to_b.deliver(XAA_MENTION).await;
    assert_eq!((repeat.status, &repeat.body["repeats"]), (200, &json!(1)));

    // Connected on A, the account's activity received by B lands on the visitor's profile.
    a.connect("prof-r").await;
    let bio = XAA_BIO.replace(ACME, ACCOUNT_ID);
    assert_eq!(to_b.deliver(&bio).await.body["stored"], 1);
    let events = a.wait_for_events(3).await;
    assert_eq!(
        of_type(&events, "twitter-profile-updated").1.as_deref(),
        Some("prof-r")
    );
    assert_eq!(a.tracardi.duplicates(), 0);
}

#[tokio::test]
async fn a_large_delivery_is_checked_off_the_async_workers_and_stored() {
    let s = setup(&[]).await;
    // A DM of about 900 KB: its HMAC and parse run on the blocking pool (over 64 KiB).
    let text = "ü".repeat(450_000);
    let body = XAA_DM.replace("hello!", &text);
    assert!(body.len() > 900_000 && body.len() < 1 << 20);
    assert_eq!(s.deliver(&body).await["stored"], 1);
    let events = s.wait_for_events(1).await;
    assert_eq!(
        events[0].0["properties"]["text"].as_str().map(str::len),
        Some(text.len())
    );
    // A wrong signature over a large body is refused the same way.
    let answer = s
        .sender
        .post(
            &body,
            &[(
                "x-twitter-webhooks-signature",
                &x_signature("wrong", body.as_bytes()),
            )],
        )
        .await;
    assert_eq!(answer.status, 403);
}
