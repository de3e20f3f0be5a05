//! The X Activity API's event types as subscriptions name them, and the OAuth 2.0 scopes each
//! needs (x-activity.md §2.3, §2.4). Pure functions: the start-up check and the CLI use them.

/// The event types a subscription may name: the create enum of X's OpenAPI file v2.167
/// (x-activity.md §2.4), dot names only. Left out: `news.new` (Enterprise/Partner only, filtered
/// by keyword, not by a user) and `oauth.revoke` (documented, but not in the create enum).
pub const EVENT_TYPES: &[&str] = &[
    "post.create",
    "post.delete",
    "post.mention.create",
    "post.reply.create",
    "post.quote.create",
    "post.repost.create",
    "like.create",
    "follow.follow",
    "follow.unfollow",
    "profile.update.bio",
    "profile.update.profile_picture",
    "profile.update.banner_picture",
    "profile.update.screenname",
    "profile.update.handle",
    "profile.update.geo",
    "profile.update.url",
    "profile.update.verified_badge",
    "profile.update.affiliate_badge",
    "dm.received",
    "dm.sent",
    "dm.read",
    "dm.indicate_typing",
    "chat.received",
    "chat.sent",
    "chat.conversation_join",
    "chat.conversation.join",
    "chat.conversation.member_added",
    "chat.conversation.member_removed",
    "chat.conversation.admin_added",
    "chat.conversation.admin_removed",
    "chat.update.group_name",
    "chat.update.restrictions",
    "mute.mute",
    "mute.unmute",
    "block.block",
    "block.unblock",
    "spaces.start",
    "spaces.end",
    "broadcast.start",
    "broadcast.end",
    "broadcast.chat",
];

/// Legacy PascalCase names (before 18 Mar 2026) and the dot name that replaced each; named in
/// the error, not accepted, so that the settings say what X is sent.
const LEGACY_NAMES: &[(&str, &str)] = &[
    ("ProfileBioUpdate", "profile.update.bio"),
    ("ProfilePictureUpdate", "profile.update.profile_picture"),
    ("ProfileBannerUpdate", "profile.update.banner_picture"),
    ("ProfileGeoUpdate", "profile.update.geo"),
    ("ProfileUrlUpdate", "profile.update.url"),
    ("ProfileScreennameUpdate", "profile.update.screenname"),
    ("FollowFollow", "follow.follow"),
    ("FollowUnfollow", "follow.unfollow"),
];

/// The scope the user's OAuth 2.0 token needs to subscribe to `event_type` (x-activity.md §2.3).
pub fn scope_for(event_type: &str) -> &'static str {
    let family = event_type.split('.').next().unwrap_or_default();
    match family {
        "dm" | "chat" => "dm.read",
        "like" => "like.read",
        "mute" => "mute.read",
        "block" => "block.read",
        "broadcast" if event_type == "broadcast.chat" => "broadcast.read",
        _ => "tweet.read",
    }
}

/// Whether X delivers `event_type` to an app-only Bearer token (public events, §2.3).
pub fn is_public(event_type: &str) -> bool {
    event_type.starts_with("profile.update.")
        || matches!(
            event_type,
            "post.create" | "post.delete" | "broadcast.start" | "broadcast.end"
        )
}

/// `X_ACTIVITY_EVENTS` or `--events`: event types separated by commas and/or white space, each
/// named once. Empty text is no event type. The error names what is wrong and lists the known
/// names.
pub fn parse_event_types(text: &str) -> Result<Vec<String>, String> {
    let mut types: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    for name in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
    {
        if EVENT_TYPES.contains(&name) {
            if !types.iter().any(|t| t == name) {
                types.push(name.to_owned());
            }
        } else if let Some((_, dot)) = LEGACY_NAMES.iter().find(|(legacy, _)| *legacy == name) {
            unknown.push(format!("'{name}' (now '{dot}')"));
        } else if name == "news.new" || name == "oauth.revoke" {
            unknown.push(format!(
                "'{name}' (not subscribable per account: news.new is Enterprise-only and filtered \
                 by keyword; oauth.revoke is not a type X lets you create)"
            ));
        } else {
            unknown.push(format!("'{name}'"));
        }
    }
    if unknown.is_empty() {
        Ok(types)
    } else {
        Err(format!(
            "unknown event type {}: use X's dot names, one of {}",
            unknown.join(", "),
            EVENT_TYPES.join(", ")
        ))
    }
}

/// The scopes that `granted` (space separated, as `TWITTER_SCOPES`) lacks for subscribing to
/// `event_types` with the user's token and reading the account (`users.read`), each with the
/// event types that need it, in a stable order. Empty: nothing is missing.
pub fn missing_scopes(event_types: &[String], granted: &str) -> Vec<(&'static str, Vec<String>)> {
    let granted: Vec<&str> = granted.split_whitespace().collect();
    let mut missing: Vec<(&'static str, Vec<String>)> = Vec::new();
    if !event_types.is_empty() && !granted.contains(&"users.read") {
        missing.push(("users.read", vec!["GET /2/users/me".to_owned()]));
    }
    for event_type in event_types {
        let scope = scope_for(event_type);
        if granted.contains(&scope) {
            continue;
        }
        match missing.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, types)) => types.push(event_type.clone()),
            None => missing.push((scope, vec![event_type.clone()])),
        }
    }
    missing
}

/// [`missing_scopes`] as one line: `dm.read (for dm.received, dm.sent), like.read (for like.create)`.
pub fn describe_missing(missing: &[(&'static str, Vec<String>)]) -> String {
    missing
        .iter()
        .map(|(scope, types)| format!("{scope} (for {})", types.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tag a subscription carries so that the receiver can put its events on the visitor's
/// Tracardi profile. The receiver reads this exact format.
pub fn profile_tag(profile_id: &str) -> String {
    format!(
        "{}{profile_id}",
        crate::x_activity::activity::PROFILE_TAG_PREFIX
    )
}

/// The id in X's answer to `POST /2/activity/subscriptions`, in any of the three shapes its
/// documents show (x-activity.md §2.2): `data.subscription.subscription_id` (OpenAPI),
/// `data.subscription_id` and `data[0].subscription_id` (quickstart).
pub fn created_subscription_id(body: &serde_json::Value) -> Option<String> {
    let data = &body["data"];
    let item = if data.is_array() {
        &data[0]
    } else if data["subscription"].is_object() {
        &data["subscription"]
    } else {
        data
    };
    match &item["subscription_id"] {
        serde_json::Value::String(id) if !id.is_empty() => Some(id.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// What X's v2 error body says, in one short line: the `errors[].message`s, else `detail`,
/// else `title` (at most 300 characters). X's bodies never carry our secrets.
pub fn error_summary(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let messages: Vec<&str> = value["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["message"].as_str().or(e["detail"].as_str()))
                .collect()
        })
        .unwrap_or_default();
    let text = if !messages.is_empty() {
        messages.join("; ")
    } else if let Some(detail) = value["detail"].as_str() {
        match value["title"].as_str() {
            Some(title) if title != detail => format!("{title}: {detail}"),
            _ => detail.to_owned(),
        }
    } else if let Some(title) = value["title"].as_str() {
        title.to_owned()
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(300).collect()
}

/// Whether X refused a subscription because it exists already (the name of the error is not
/// documented for XAA; AAA's is `DuplicateSubscriptionFailed`): then the account is subscribed.
pub fn is_duplicate_subscription(status: u16, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    status == 409
        || (status >= 400 && (text.contains("duplicate") || text.contains("already exists")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_follow_the_documented_table() {
        for (event_type, scope) in [
            ("dm.received", "dm.read"),
            ("chat.conversation.join", "dm.read"),
            ("like.create", "like.read"),
            ("mute.mute", "mute.read"),
            ("block.unblock", "block.read"),
            ("broadcast.chat", "broadcast.read"),
            ("broadcast.start", "tweet.read"),
            ("post.mention.create", "tweet.read"),
            ("follow.follow", "tweet.read"),
            ("profile.update.bio", "tweet.read"),
        ] {
            assert_eq!(scope_for(event_type), scope, "{event_type}");
        }
        assert!(is_public("profile.update.geo") && is_public("post.create"));
        assert!(!is_public("post.mention.create") && !is_public("dm.received"));
    }

    #[test]
    fn event_types_are_read_from_commas_or_spaces_once_each() {
        assert_eq!(parse_event_types("").unwrap(), Vec::<String>::new());
        assert_eq!(parse_event_types(" , ").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_event_types("post.mention.create, like.create dm.received,like.create").unwrap(),
            ["post.mention.create", "like.create", "dm.received"]
        );
    }

    #[test]
    fn unknown_and_legacy_names_are_named_with_the_known_ones() {
        let error = parse_event_types("post.mention.create mentions ProfileBioUpdate").unwrap_err();
        assert!(error.contains("'mentions'"), "{error}");
        assert!(
            error.contains("'ProfileBioUpdate' (now 'profile.update.bio')"),
            "{error}"
        );
        assert!(
            error.contains("dm.received"),
            "lists the known ones: {error}"
        );
        assert!(!error.contains('\n'));
        let error = parse_event_types("news.new").unwrap_err();
        assert!(error.contains("Enterprise-only"), "{error}");
    }

    #[test]
    fn missing_scopes_name_the_types_that_need_them() {
        let types: Vec<String> = [
            "post.mention.create",
            "dm.received",
            "dm.sent",
            "like.create",
        ]
        .map(String::from)
        .to_vec();
        let missing = missing_scopes(&types, "tweet.read users.read");
        assert_eq!(
            describe_missing(&missing),
            "dm.read (for dm.received, dm.sent), like.read (for like.create)"
        );
        assert!(missing_scopes(&types, "tweet.read users.read dm.read like.read").is_empty());
        let missing = missing_scopes(&types[..1], "tweet.read");
        assert_eq!(
            describe_missing(&missing),
            "users.read (for GET /2/users/me)"
        );
        assert!(missing_scopes(&[], "").is_empty(), "no events, no check");
    }

    #[test]
    fn the_three_documented_create_answers_give_the_id() {
        for body in [
            json!({"data": {"subscription": {"subscription_id": "111", "event_type": "like.create"}}}),
            json!({"data": {"subscription_id": "111", "event_type": "like.create"}}),
            json!({"data": [{"subscription_id": "111"}], "meta": {"total_subscriptions": 1}}),
        ] {
            assert_eq!(
                created_subscription_id(&body).as_deref(),
                Some("111"),
                "{body}"
            );
        }
        assert_eq!(
            created_subscription_id(&json!({"data": {"subscription_id": 7}})).as_deref(),
            Some("7")
        );
        for body in [
            json!({}),
            json!({"data": []}),
            json!({"errors": [{"message": "x"}]}),
        ] {
            assert_eq!(created_subscription_id(&body), None, "{body}");
        }
    }

    #[test]
    fn error_summaries_are_one_short_line() {
        let body = br#"{"errors":[{"message":"CrcValidationFailed: URL returned bad response during CRC with error: Invalid `response_token`"}],"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","type":"https://api.twitter.com/2/problems/invalid-request"}"#;
        assert!(error_summary(body).starts_with("CrcValidationFailed: URL returned"));
        let body = br#"{"title":"Forbidden","detail":"Missing scope\ndm.read","status":403}"#;
        assert_eq!(error_summary(body), "Forbidden: Missing scope dm.read");
        assert_eq!(error_summary(b"<html>oops</html>"), "<html>oops</html>");
        assert_eq!(error_summary(&[b'x'; 1000]).len(), 300);
    }

    #[test]
    fn duplicates_are_recognised() {
        assert!(is_duplicate_subscription(409, b"{}"));
        assert!(is_duplicate_subscription(
            400,
            br#"{"errors":[{"message":"DuplicateSubscriptionFailed"}]}"#
        ));
        assert!(!is_duplicate_subscription(403, br#"{"title":"Forbidden"}"#));
        assert!(!is_duplicate_subscription(200, b"duplicate"));
    }
}
