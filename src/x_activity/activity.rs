//! What one signed webhook body says: X Activity API envelopes (XAA) and Account Activity API
//! bodies (AAA) turned into activities, each with the Tracardi event type it becomes, the
//! properties a workflow reads, and the stable key its event id is made from
//! (x-activity.md §2.5–§2.7, §3.2–§3.4, §6). Pure: no I/O.

use super::time::{iso_from_millis, iso_from_twitter_date};
use serde_json::{Map, Value, json};

/// The Tracardi event types, one per kind of activity (README has the table).
pub mod types {
    pub const MENTION: &str = "twitter-mention";
    pub const REPLY: &str = "twitter-reply";
    pub const QUOTE: &str = "twitter-quote";
    pub const REPOST: &str = "twitter-repost";
    pub const POST_CREATED: &str = "twitter-post-created";
    pub const POST_DELETED: &str = "twitter-post-deleted";
    pub const LIKE: &str = "twitter-like";
    pub const FOLLOW: &str = "twitter-follow";
    pub const UNFOLLOW: &str = "twitter-unfollow";
    pub const DM_RECEIVED: &str = "twitter-dm-received";
    pub const DM_SENT: &str = "twitter-dm-sent";
    pub const PROFILE_UPDATED: &str = "twitter-profile-updated";
    pub const APP_REVOKED: &str = "twitter-app-revoked";
    /// Everything else X sends (blocks, mutes, typing, chat, Spaces, broadcasts, news, types
    /// added after this service): kept, with `x_event_type` naming it.
    pub const OTHER: &str = "twitter-activity";
}

/// The prefix of an XAA subscription's `tag` that names the Tracardi profile it was made for.
pub const PROFILE_TAG_PREFIX: &str = "tracardi:profile:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xaa,
    Aaa,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Xaa => "xaa",
            Format::Aaa => "aaa",
        }
    }
}

/// One thing that happened on X, ready to become one Tracardi event.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// What the event id is made from: the same activity delivered again, replayed, or
    /// received through the other API during a migration has the same key.
    pub key: String,
    /// The Tracardi event type.
    pub event_type: &'static str,
    /// X's name for it, in XAA's dot form (`post.mention.create`, `follow.follow`, ...).
    pub x_event_type: String,
    pub format: Format,
    /// The subscribed account: whose activity this is.
    pub account_id: Option<String>,
    /// Who acted (the author of a mention, the follower, the sender of a DM), when known.
    pub actor_id: Option<String>,
    /// The profile the subscription was made for (its `tag`), when it was made here.
    pub tagged_profile: Option<String>,
    /// The X account whose link to its profile this activity revokes.
    pub revokes: Option<String>,
    pub properties: Map<String, Value>,
}

/// What a correctly signed body is.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Activities(Vec<Activity>),
    /// X's notice that a replay job ended: logged, not an event.
    ReplayNotice(Value),
    /// Not a shape this service knows: kept as a dead letter, with why.
    Unknown {
        reason: String,
    },
}

/// Reads a signed body (x-activity.md §3.4, in that order).
pub fn read_body(body: &Value) -> Body {
    if let Some(event_type) = body["data"]["event_type"].as_str() {
        return Body::Activities(vec![xaa(&body["data"], event_type)]);
    }
    if body.get("replay_job_status").is_some() {
        return Body::ReplayNotice(body["replay_job_status"].clone());
    }
    if let Some(revoke) = body["user_event"].get("revoke") {
        return Body::Activities(vec![aaa_revoke(revoke)]);
    }
    let Some(object) = body.as_object() else {
        return Body::Unknown {
            reason: "the body is not a JSON object".into(),
        };
    };
    let Some(for_user) = text(&body["for_user_id"]) else {
        return Body::Unknown {
            reason: "neither an X Activity API envelope (data.event_type) nor an Account \
                     Activity API body (for_user_id with *_events)"
                .into(),
        };
    };
    let mut activities = Vec::new();
    for (name, items) in object {
        let Some(items) = items.as_array().filter(|_| name.ends_with("_events")) else {
            continue;
        };
        for item in items {
            activities.push(aaa(&for_user, name, item, body));
        }
    }
    if activities.is_empty() {
        return Body::Unknown {
            reason: "an Account Activity API body without any *_events item".into(),
        };
    }
    Body::Activities(activities)
}

/// A string id as X sends it: a string, or (older payloads) a number.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A v2 user, bare or wrapped as `{"data": {...}}` (XAA-PAY wraps, the OAS does not).
fn user(value: &Value) -> &Value {
    if value.get("data").is_some_and(Value::is_object) {
        &value["data"]
    } else {
        value
    }
}

/// XAA's legacy PascalCase names (before 18 Mar 2026) as dot names.
pub fn dot_name(event_type: &str) -> String {
    let known = match event_type {
        "ProfileBioUpdate" => "profile.update.bio",
        "ProfilePictureUpdate" => "profile.update.profile_picture",
        "ProfileBannerUpdate" => "profile.update.banner_picture",
        "ProfileGeoUpdate" => "profile.update.geo",
        "ProfileUrlUpdate" => "profile.update.url",
        "ProfileScreennameUpdate" => "profile.update.screenname",
        "ProfileHandleUpdate" => "profile.update.handle",
        "FollowFollow" => "follow.follow",
        "FollowUnfollow" => "follow.unfollow",
        "NewsNew" => "news.new",
        other if other.contains('.') || !other.starts_with(|c: char| c.is_ascii_uppercase()) => {
            return other.to_owned();
        }
        // Another PascalCase name: its words, lower-cased, joined with dots.
        other => {
            let mut dotted = String::with_capacity(other.len() + 4);
            for c in other.chars() {
                if c.is_ascii_uppercase() && !dotted.is_empty() {
                    dotted.push('.');
                }
                dotted.push(c.to_ascii_lowercase());
            }
            return dotted;
        }
    };
    known.to_owned()
}

/// A post's Tracardi type by its XAA name.
fn post_type(x_event_type: &str) -> Option<&'static str> {
    Some(match x_event_type {
        "post.create" => types::POST_CREATED,
        "post.mention.create" => types::MENTION,
        "post.reply.create" => types::REPLY,
        "post.quote.create" => types::QUOTE,
        "post.repost.create" => types::REPOST,
        _ => return None,
    })
}

/// The key of a post activity, the same from both APIs: `account:type:post id`.
fn post_key(account: Option<&str>, x_event_type: &str, post_id: &str) -> String {
    format!("post|{}|{x_event_type}|{post_id}", account.unwrap_or(""))
}

struct Builder {
    activity: Activity,
}

/// What both APIs say of a post, read from their own shapes (v2 Post, v1.1 Tweet).
struct Post<'a> {
    id: Option<String>,
    text: Option<&'a str>,
    lang: Option<&'a str>,
    /// ISO 8601.
    created_at: Option<String>,
    author: Option<String>,
    author_username: Option<String>,
    in_reply_to: Option<String>,
}

impl Builder {
    fn new(format: Format, x_event_type: String, event_type: &'static str) -> Self {
        Self {
            activity: Activity {
                key: String::new(),
                event_type,
                x_event_type,
                format,
                account_id: None,
                actor_id: None,
                tagged_profile: None,
                revokes: None,
                properties: Map::new(),
            },
        }
    }

    fn set(&mut self, name: &str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.activity.properties.insert(name.into(), value.into());
        }
    }

    /// A post's properties; its author is who acted.
    fn post(&mut self, post: Post<'_>) {
        let url = post
            .id
            .as_deref()
            .map(|id| post_url(post.author_username.as_deref(), id));
        self.set("post_id", post.id);
        self.set("text", post.text);
        self.set("post_url", url);
        self.set("lang", post.lang);
        self.set("created_at", post.created_at);
        self.set("author_id", post.author.clone());
        self.set("author_username", post.author_username.clone());
        self.set("actor_username", post.author_username);
        self.set("in_reply_to_post_id", post.in_reply_to);
        self.activity.actor_id = post.author;
    }

    fn finish(mut self, key: String, x_payload: Value) -> Activity {
        let a = &mut self.activity;
        a.key = key;
        let mut properties = Map::new();
        properties.insert("x_event_type".into(), a.x_event_type.clone().into());
        properties.insert("x_format".into(), a.format.as_str().into());
        if let Some(id) = &a.account_id {
            properties.insert("account_id".into(), id.clone().into());
        }
        if let Some(id) = &a.actor_id {
            properties.insert("actor_id".into(), id.clone().into());
        }
        properties.append(&mut a.properties);
        properties.insert("x_payload".into(), x_payload);
        a.properties = properties;
        self.activity
    }
}

// --- X Activity API -----------------------------------------------------------------------

fn xaa(data: &Value, event_type: &str) -> Activity {
    let x_event_type = dot_name(event_type);
    let payload = &data["payload"];
    let users = xaa_users(data);
    let username = |id: &Option<String>| id.as_ref().and_then(|id| users.get(id).cloned());
    let account = text(&data["filter"]["user_id"]);
    let event_uuid = text(&data["event_uuid"]);
    let tagged_profile = data["tag"]
        .as_str()
        .and_then(|tag| tag.strip_prefix(PROFILE_TAG_PREFIX))
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    let mut key = None;
    let event_type = post_type(&x_event_type).unwrap_or(match x_event_type.as_str() {
        "post.delete" => types::POST_DELETED,
        "like.create" => types::LIKE,
        "follow.follow" => types::FOLLOW,
        "follow.unfollow" => types::UNFOLLOW,
        "dm.received" => types::DM_RECEIVED,
        "dm.sent" => types::DM_SENT,
        "oauth.revoke" => types::APP_REVOKED,
        name if name.starts_with("profile.update.") => types::PROFILE_UPDATED,
        _ => types::OTHER,
    });
    let mut b = Builder::new(Format::Xaa, x_event_type.clone(), event_type);
    b.activity.account_id = account.clone();
    b.activity.tagged_profile = tagged_profile;
    b.set("account_username", username(&account));
    match event_type {
        types::POST_CREATED | types::MENTION | types::REPLY | types::QUOTE | types::REPOST => {
            let author = text(&payload["author_id"]);
            let post_id = text(&payload["id"]);
            b.post(Post {
                id: post_id.clone(),
                text: payload["text"].as_str(),
                lang: payload["lang"].as_str(),
                created_at: payload["created_at"].as_str().map(str::to_owned),
                author_username: username(&author),
                author,
                in_reply_to: text(&payload["in_reply_to_tweet_id"]),
            });
            b.set("conversation_id", text(&payload["conversation_id"]));
            b.set(
                "referenced_post_id",
                payload["referenced_tweets"][0]["id"].as_str(),
            );
            key = post_id.map(|id| post_key(account.as_deref(), &x_event_type, &id));
        }
        types::POST_DELETED => {
            let post_id = text(&payload["id"]);
            b.set("post_id", post_id.clone());
            b.set("author_id", text(&payload["author_id"]));
            b.activity.actor_id = text(&payload["author_id"]);
            key = post_id.map(|id| post_key(account.as_deref(), &x_event_type, &id));
        }
        types::LIKE => {
            let direction = data["filter"]["direction"].as_str();
            b.set("like_id", text(&payload["id"]));
            b.set("post_id", text(&payload["liked_tweet_id"]));
            b.set("post_author_id", text(&payload["liked_tweet_author_id"]));
            b.set("post_created_at", payload["created_at"].as_str());
            b.set(
                "liked_at",
                text(&payload["timestamp_ms"])
                    .and_then(|ms| ms.parse().ok())
                    .map(iso_from_millis),
            );
            b.set("direction", direction);
            // Outbound: the subscribed account liked; inbound: X does not say who did.
            if direction == Some("outbound") {
                b.activity.actor_id = account.clone();
            }
        }
        types::FOLLOW | types::UNFOLLOW => {
            pair(&mut b, payload, account.as_deref(), "follower", "followed");
        }
        types::DM_RECEIVED | types::DM_SENT => {
            let users = &payload["users"];
            if let Some(dm) = payload["direct_message_events"].get(0) {
                direct_message(&mut b, dm, users);
            }
        }
        types::PROFILE_UPDATED => {
            b.set(
                "field",
                x_event_type
                    .strip_prefix("profile.update.")
                    .map(str::to_owned),
            );
            b.set("before", payload.get("before").cloned());
            b.set("after", payload.get("after").cloned());
            b.activity.actor_id = account.clone();
        }
        types::APP_REVOKED => {
            let user_id = text(&payload["user_id"]);
            b.set("revoked_at", payload["date_time"].as_str());
            b.set("app_id", text(&payload["app_id"]));
            b.activity.account_id = user_id.clone();
            b.activity.actor_id = user_id.clone();
            b.activity.revokes = user_id;
        }
        _ => {
            // Blocks and mutes have the follow's source/target pair; the others carry what
            // they carry, under x_payload.
            if payload.get("source").is_some() && payload.get("target").is_some() {
                pair(&mut b, payload, account.as_deref(), "source", "target");
            }
        }
    }
    let key = key.unwrap_or_else(|| match &event_uuid {
        Some(uuid) => format!("xaa|{uuid}"),
        // No event_uuid (never seen, but nothing is assumed): the envelope as received.
        None => format!("xaa-body|{data}"),
    });
    b.finish(key, data.clone())
}

/// XAA's `includes.users`, bare or wrapped: id → username.
fn xaa_users(data: &Value) -> std::collections::HashMap<String, String> {
    data["includes"]["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| {
            let u = user(u);
            Some((text(&u["id"])?, u["username"].as_str()?.to_owned()))
        })
        .collect()
}

/// A source → target pair (follow, block, mute): who acted and on whom.
fn pair(b: &mut Builder, payload: &Value, account: Option<&str>, source: &str, target: &str) {
    let (s, t) = (user(&payload["source"]), user(&payload["target"]));
    let s_id = text(&s["id"]).or_else(|| text(&s["id_str"]));
    let t_id = text(&t["id"]).or_else(|| text(&t["id_str"]));
    let username = |u: &Value| {
        u["username"]
            .as_str()
            .or(u["screen_name"].as_str())
            .map(str::to_owned)
    };
    b.set(&format!("{source}_id"), s_id.clone());
    b.set(&format!("{source}_username"), username(s));
    b.set(&format!("{target}_id"), t_id.clone());
    b.set(&format!("{target}_username"), username(t));
    b.set("actor_username", username(s));
    if let Some(account) = account {
        let direction = if s_id.as_deref() == Some(account) {
            "outbound"
        } else {
            "inbound"
        };
        b.set("direction", Some(direction));
    }
    b.activity.actor_id = s_id;
}

/// The DM shape XAA and AAA share (`message_create`), with the `users` map beside it.
fn direct_message(b: &mut Builder, dm: &Value, users: &Value) {
    let create = &dm["message_create"];
    let sender = text(&create["sender_id"]);
    let recipient = text(&create["target"]["recipient_id"]);
    let username = |id: &Option<String>| {
        let u = user(&users[id.as_deref()?]);
        u["username"]
            .as_str()
            .or(u["screen_name"].as_str())
            .map(str::to_owned)
    };
    b.set("dm_id", text(&dm["id"]));
    b.set("text", create["message_data"]["text"].as_str());
    b.set("sender_id", sender.clone());
    b.set("sender_username", username(&sender));
    b.set("recipient_id", recipient.clone());
    b.set("recipient_username", username(&recipient));
    b.set("actor_username", username(&sender));
    b.set(
        "sent_at",
        text(&dm["created_timestamp"])
            .and_then(|ms| ms.parse().ok())
            .map(iso_from_millis),
    );
    b.activity.actor_id = sender;
}

fn post_url(username: Option<&str>, id: &str) -> String {
    format!("https://x.com/{}/status/{id}", username.unwrap_or("i"))
}

// --- Account Activity API -----------------------------------------------------------------

/// One item of an AAA `*_events` array, for the subscribed account `for_user`.
fn aaa(for_user: &str, name: &str, item: &Value, body: &Value) -> Activity {
    let account = Some(for_user.to_owned());
    let key_of = |parts: &[Option<String>]| {
        let parts: Vec<String> = parts
            .iter()
            .map(|p| p.clone().unwrap_or_default())
            .collect();
        format!("aaa|{for_user}|{name}|{}", parts.join("|"))
    };
    let (mut b, key) = match name {
        "tweet_create_events" => return aaa_tweet(for_user, item),
        "tweet_delete_events" => {
            let post_id = text(&item["status"]["id"]).or_else(|| text(&item["status"]["id_str"]));
            let mut b = Builder::new(Format::Aaa, "post.delete".into(), types::POST_DELETED);
            let author = text(&item["status"]["user_id"]);
            b.set("post_id", post_id.clone());
            b.set("author_id", author.clone());
            b.set(
                "deleted_at",
                text(&item["timestamp_ms"])
                    .and_then(|ms| ms.parse().ok())
                    .map(iso_from_millis),
            );
            b.activity.actor_id = author;
            let key = match &post_id {
                Some(id) => post_key(account.as_deref(), "post.delete", id),
                None => key_of(&[text(&item["timestamp_ms"])]),
            };
            (b, key)
        }
        "favorite_events" => {
            let mut b = Builder::new(Format::Aaa, "like.create".into(), types::LIKE);
            let liker = text(&item["user"]["id_str"]).or_else(|| text(&item["user"]["id"]));
            let status = &item["favorited_status"];
            b.set("like_id", text(&item["id"]));
            b.set(
                "post_id",
                text(&status["id_str"]).or_else(|| text(&status["id"])),
            );
            b.set(
                "post_author_id",
                text(&status["user"]["id_str"]).or_else(|| text(&status["user"]["id"])),
            );
            b.set(
                "post_created_at",
                status["created_at"]
                    .as_str()
                    .and_then(iso_from_twitter_date),
            );
            b.set(
                "liked_at",
                item["timestamp_ms"]
                    .to_string()
                    .trim_matches('"')
                    .parse()
                    .ok()
                    .map(iso_from_millis),
            );
            b.set("actor_username", item["user"]["screen_name"].as_str());
            b.set(
                "direction",
                Some(if liker.as_deref() == Some(for_user) {
                    "outbound"
                } else {
                    "inbound"
                }),
            );
            b.activity.actor_id = liker;
            (b, key_of(&[text(&item["id"])]))
        }
        "follow_events" | "unfollow_events" | "block_events" | "mute_events" => {
            let kind = item["type"].as_str().unwrap_or(match name {
                "unfollow_events" => "unfollow",
                "block_events" => "block",
                "mute_events" => "mute",
                _ => "follow",
            });
            let (x_event_type, event_type) = match kind {
                "follow" => ("follow.follow", types::FOLLOW),
                "unfollow" => ("follow.unfollow", types::UNFOLLOW),
                "block" => ("block.block", types::OTHER),
                "unblock" => ("block.unblock", types::OTHER),
                "mute" => ("mute.mute", types::OTHER),
                "unmute" => ("mute.unmute", types::OTHER),
                _ => ("", types::OTHER),
            };
            let x_event_type = if x_event_type.is_empty() {
                format!("aaa.{name}.{kind}")
            } else {
                x_event_type.to_owned()
            };
            let mut b = Builder::new(Format::Aaa, x_event_type, event_type);
            let (source, target) = if event_type == types::OTHER {
                ("source", "target")
            } else {
                ("follower", "followed")
            };
            pair(&mut b, item, Some(for_user), source, target);
            b.set(
                "happened_at",
                text(&item["created_timestamp"])
                    .and_then(|ms| ms.parse().ok())
                    .map(iso_from_millis),
            );
            let key = key_of(&[
                Some(kind.to_owned()),
                text(&item["source"]["id"]).or_else(|| text(&item["source"]["id_str"])),
                text(&item["target"]["id"]).or_else(|| text(&item["target"]["id_str"])),
                text(&item["created_timestamp"]),
            ]);
            (b, key)
        }
        "direct_message_events" => {
            let sender = text(&item["message_create"]["sender_id"]);
            let (x_event_type, event_type) = if sender.as_deref() == Some(for_user) {
                ("dm.sent", types::DM_SENT)
            } else {
                ("dm.received", types::DM_RECEIVED)
            };
            let mut b = Builder::new(Format::Aaa, x_event_type.into(), event_type);
            direct_message(&mut b, item, &body["users"]);
            (b, key_of(&[text(&item["id"])]))
        }
        "direct_message_indicate_typing_events" | "direct_message_mark_read_events" => {
            let x_event_type = if name.contains("typing") {
                "dm.indicate_typing"
            } else {
                "dm.read"
            };
            let mut b = Builder::new(Format::Aaa, x_event_type.into(), types::OTHER);
            let sender = text(&item["sender_id"]);
            b.set("sender_id", sender.clone());
            b.set("recipient_id", text(&item["target"]["recipient_id"]));
            b.set(
                "happened_at",
                text(&item["created_timestamp"])
                    .and_then(|ms| ms.parse().ok())
                    .map(iso_from_millis),
            );
            b.activity.actor_id = sender;
            (
                b,
                key_of(&[text(&item["sender_id"]), text(&item["created_timestamp"])]),
            )
        }
        _ => {
            // A kind of AAA item this service does not know: kept whole, keyed by its content.
            let b = Builder::new(Format::Aaa, format!("aaa.{name}"), types::OTHER);
            (b, key_of(&[Some(item.to_string())]))
        }
    };
    b.activity.account_id = account;
    let mut payload = json!({"for_user_id": for_user});
    payload[name] = json!([item]);
    if let Some(users) = body.get("users") {
        payload["users"] = users.clone();
    }
    b.finish(key, payload)
}

/// AAA's `tweet_create_events` item: which of XAA's post types it is, for the subscribed
/// account (x-activity.md §3.3): its own post, else a repost, quote, reply or mention of it.
fn aaa_tweet(for_user: &str, tweet: &Value) -> Activity {
    let id_of = |v: &Value| text(&v["id_str"]).or_else(|| text(&v["id"]));
    let author = id_of(&tweet["user"]);
    let mentions = |t: &Value| {
        t["entities"]["user_mentions"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| id_of(m).as_deref() == Some(for_user)))
    };
    let x_event_type = if author.as_deref() == Some(for_user) {
        "post.create"
    } else if id_of(&tweet["retweeted_status"]["user"]).as_deref() == Some(for_user) {
        "post.repost.create"
    } else if id_of(&tweet["quoted_status"]["user"]).as_deref() == Some(for_user) {
        "post.quote.create"
    } else if text(&tweet["in_reply_to_user_id_str"])
        .or_else(|| text(&tweet["in_reply_to_user_id"]))
        .as_deref()
        == Some(for_user)
    {
        "post.reply.create"
    } else if mentions(tweet) || mentions(&tweet["extended_tweet"]) {
        "post.mention.create"
    } else {
        // Delivered to this account for a reason X did not spell out: still a post.
        "post.create"
    };
    let event_type = post_type(x_event_type).unwrap_or(types::POST_CREATED);
    let mut b = Builder::new(Format::Aaa, x_event_type.into(), event_type);
    let post_id = id_of(tweet);
    b.activity.account_id = Some(for_user.to_owned());
    b.post(Post {
        id: post_id.clone(),
        text: tweet["extended_tweet"]["full_text"]
            .as_str()
            .or(tweet["full_text"].as_str())
            .or(tweet["text"].as_str()),
        lang: tweet["lang"].as_str(),
        created_at: tweet["created_at"].as_str().and_then(iso_from_twitter_date),
        author_username: tweet["user"]["screen_name"].as_str().map(str::to_owned),
        author,
        in_reply_to: text(&tweet["in_reply_to_status_id_str"])
            .or_else(|| text(&tweet["in_reply_to_status_id"])),
    });
    let key = match &post_id {
        Some(id) => post_key(Some(for_user), x_event_type, id),
        None => format!("aaa|{for_user}|tweet_create_events|{tweet}"),
    };
    b.finish(
        key,
        json!({"for_user_id": for_user, "tweet_create_events": [tweet]}),
    )
}

/// AAA's `user_event.revoke`: no `for_user_id`; the account is the revoke's source.
fn aaa_revoke(revoke: &Value) -> Activity {
    let user_id = text(&revoke["source"]["user_id"]);
    let date_time = revoke["date_time"].as_str();
    let mut b = Builder::new(Format::Aaa, "oauth.revoke".into(), types::APP_REVOKED);
    b.set("revoked_at", date_time);
    b.set("app_id", text(&revoke["target"]["app_id"]));
    b.activity.account_id = user_id.clone();
    b.activity.actor_id = user_id.clone();
    b.activity.revokes = user_id.clone();
    let key = format!(
        "aaa|revoke|{}|{}",
        user_id.unwrap_or_default(),
        date_time.unwrap_or_default()
    );
    b.finish(key, json!({"user_event": {"revoke": revoke}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activities(body: Value) -> Vec<Activity> {
        match read_body(&body) {
            Body::Activities(a) => a,
            other => panic!("not activities: {other:?}"),
        }
    }

    fn one(body: Value) -> Activity {
        let mut all = activities(body);
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    #[test]
    fn tells_the_formats_apart_in_the_documented_order() {
        // An XAA envelope wins even beside AAA-looking keys.
        let xaa = json!({"data": {"event_type": "post.create", "event_uuid": "1", "payload": {"id": "9"}},
            "for_user_id": "1", "tweet_create_events": []});
        assert_eq!(one(xaa).format, Format::Xaa);
        assert!(matches!(
            read_body(&json!({"replay_job_status": {"job_id": "j"}})),
            Body::ReplayNotice(_)
        ));
        assert_eq!(
            one(json!({"user_event": {"revoke": {"source": {"user_id": "7"}}}})).revokes,
            Some("7".into())
        );
        for unknown in [
            json!([]),
            json!("x"),
            json!({"errors": [{"title": "x"}]}),
            json!({"for_user_id": "1"}),
        ] {
            assert!(
                matches!(read_body(&unknown), Body::Unknown { .. }),
                "{unknown}"
            );
        }
    }

    #[test]
    fn a_post_has_one_key_through_both_apis() {
        let xaa = one(
            json!({"data": {"event_uuid": "-5", "event_type": "post.reply.create",
            "filter": {"user_id": "U"}, "payload": {"id": "P", "author_id": "A", "text": "hi"}}}),
        );
        let aaa = one(
            json!({"for_user_id": "U", "tweet_create_events": [{"id_str": "P",
            "text": "hi", "in_reply_to_user_id_str": "U", "user": {"id_str": "A"}}]}),
        );
        assert_eq!(
            (xaa.event_type, aaa.event_type),
            (types::REPLY, types::REPLY)
        );
        assert_eq!(xaa.key, aaa.key);
        // Another subscribed account's copy of the same post is its own event.
        let other = one(
            json!({"for_user_id": "V", "tweet_create_events": [{"id_str": "P",
            "text": "hi", "in_reply_to_user_id_str": "V", "user": {"id_str": "A"}}]}),
        );
        assert_ne!(other.key, aaa.key);
        // Other XAA types are keyed by event_uuid, an opaque string.
        let like = |uuid: &str| {
            one(json!({"data": {"event_uuid": uuid, "event_type": "like.create", "payload": {}}}))
                .key
        };
        assert_eq!(like("-3402274206530057851"), like("-3402274206530057851"));
        assert_ne!(like("0f52b591-aa"), like("0f52b591-ab"));
    }

    #[test]
    fn an_aaa_tweet_is_the_post_type_it_is_for_the_account() {
        let kind = |tweet: Value| {
            one(json!({"for_user_id": "U", "tweet_create_events": [tweet]})).x_event_type
        };
        let author = json!({"id_str": "A"});
        assert_eq!(
            kind(json!({"id_str": "1", "user": {"id_str": "U"}, "in_reply_to_user_id_str": "X"})),
            "post.create"
        );
        assert_eq!(
            kind(
                json!({"id_str": "1", "user": author, "retweeted_status": {"user": {"id_str": "U"}}})
            ),
            "post.repost.create"
        );
        assert_eq!(
            kind(
                json!({"id_str": "1", "user": author, "quoted_status": {"user": {"id_str": "U"}}})
            ),
            "post.quote.create"
        );
        assert_eq!(
            kind(json!({"id_str": "1", "user": author, "in_reply_to_user_id_str": "U"})),
            "post.reply.create"
        );
        assert_eq!(
            kind(json!({"id_str": "1", "user": author, "truncated": true,
                "extended_tweet": {"full_text": "long @u", "entities": {"user_mentions": [{"id_str": "U"}]}}})),
            "post.mention.create"
        );
        let long = one(
            json!({"for_user_id": "U", "tweet_create_events": [{"id_str": "1", "text": "short…",
            "user": author, "extended_tweet": {"full_text": "the whole text"}}]}),
        );
        assert_eq!(long.properties["text"], "the whole text");
    }

    #[test]
    fn every_aaa_item_is_an_activity() {
        let all = activities(
            json!({"for_user_id": "U", "users": {"S": {"id": "S", "screen_name": "sam"}},
            "direct_message_events": [
                {"type": "message_create", "id": "d1", "created_timestamp": "1000",
                 "message_create": {"sender_id": "S", "target": {"recipient_id": "U"}, "message_data": {"text": "in"}}},
                {"type": "message_create", "id": "d2", "created_timestamp": "2000",
                 "message_create": {"sender_id": "U", "target": {"recipient_id": "S"}, "message_data": {"text": "out"}}}]}),
        );
        assert_eq!(
            all.iter().map(|a| a.event_type).collect::<Vec<_>>(),
            [types::DM_RECEIVED, types::DM_SENT]
        );
        assert_eq!(all[0].properties["sender_username"], "sam");
        assert_eq!(all[0].properties["sent_at"], "1970-01-01T00:00:01.000Z");
        assert_ne!(all[0].key, all[1].key);
        // Blocks, mutes, typing and kinds unknown here are kept as `twitter-activity`.
        let others = activities(json!({"for_user_id": "U",
            "block_events": [{"type": "block", "created_timestamp": "1", "source": {"id": "U"}, "target": {"id": "T"}}],
            "direct_message_indicate_typing_events": [{"created_timestamp": "2", "sender_id": "T", "target": {"recipient_id": "U"}}],
            "brand_new_events": [{"anything": true}]}));
        assert_eq!(
            others
                .iter()
                .map(|a| (a.event_type, a.x_event_type.as_str()))
                .collect::<Vec<_>>(),
            [
                (types::OTHER, "block.block"),
                (types::OTHER, "dm.indicate_typing"),
                (types::OTHER, "aaa.brand_new_events"),
            ]
        );
    }

    #[test]
    fn legacy_names_become_dot_names() {
        assert_eq!(dot_name("ProfileBioUpdate"), "profile.update.bio");
        assert_eq!(dot_name("FollowFollow"), "follow.follow");
        assert_eq!(dot_name("NewsNew"), "news.new");
        assert_eq!(dot_name("SpacesStart"), "spaces.start");
        assert_eq!(dot_name("post.create"), "post.create");
        let bio = one(
            json!({"data": {"event_uuid": "1", "event_type": "ProfileUrlUpdate",
            "filter": {"user_id": "U"}, "payload": {"before": "a", "after": "b"}}}),
        );
        assert_eq!(
            (bio.event_type, bio.properties["field"].as_str()),
            (types::PROFILE_UPDATED, Some("url"))
        );
    }

    #[test]
    fn only_this_service_s_tags_name_a_profile() {
        let tagged = |tag: &str| {
            one(json!({"data": {"event_uuid": "1", "event_type": "post.create", "tag": tag, "payload": {}}}))
                .tagged_profile
        };
        assert_eq!(tagged("tracardi:profile:p-1"), Some("p-1".into()));
        assert_eq!(tagged("tr:p-42"), None);
        assert_eq!(tagged("tracardi:profile:"), None);
    }
}
