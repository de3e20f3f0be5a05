//! X's browser redirects to the Callback URI: recognising them, the events they become, and
//! recording them ([`record`]) before the browser is answered.

use crate::connect::{Connect, ConnectError, Finished};
use crate::delivery::DeliveryMonitor;
use crate::metrics::EventSource;
use crate::store::{
    AccountLink, AccountLinks, Appended, Millis, NewEvent, Outbox, StoreError, now_millis,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Limits on what is accepted: X's redirects are far smaller.
pub const MAX_PARAMETERS: usize = 32;
pub const MAX_QUERY_BYTES: usize = 8 * 1024;

pub const GRANTED: &str = "twitter-authorization-granted";
pub const DENIED: &str = "twitter-authorization-denied";

/// Fixes the event ids of redirects: UUIDv5 names under this namespace.
const ID_NAMESPACE: uuid::Uuid = uuid::uuid!("0f3b6c52-8c1e-4d7a-9a43-6d2b1e6a7c10");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    OAuth1,
    OAuth2,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::OAuth1 => "oauth1",
            Flow::OAuth2 => "oauth2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Granted,
    Denied,
}

/// A recognised redirect from X.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub flow: Flow,
    pub outcome: Outcome,
    /// Every query parameter, decoded.
    pub params: BTreeMap<String, String>,
}

/// Why a request is not a Twitter redirect (shown on the 400 page).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotARedirect {
    #[error("the address is longer than a Twitter redirect can be")]
    TooLong,
    #[error("the address has more parameters than a Twitter redirect has")]
    TooManyParameters,
    #[error("the address is not valid UTF-8 text")]
    NotUtf8,
    #[error("a parameter appears more than once")]
    Repeated,
    #[error("the address has none of the parameters Twitter sends back")]
    Unrecognised,
    #[error("the address mixes parameters of different Twitter answers")]
    Ambiguous,
}

impl Redirect {
    /// Recognises the four redirects of twitter-api.md §3: OAuth 1.0a approval
    /// (`oauth_token` + `oauth_verifier`) and refusal (`denied`), OAuth 2.0 approval (`code` +
    /// `state`) and refusal (`error`).
    pub fn parse(query: Option<&str>) -> Result<Self, NotARedirect> {
        let query = query.unwrap_or("");
        if query.len() > MAX_QUERY_BYTES {
            return Err(NotARedirect::TooLong);
        }
        let mut params = BTreeMap::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            if params.len() == MAX_PARAMETERS {
                return Err(NotARedirect::TooManyParameters);
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let (name, value) = (decode(name)?, decode(value)?);
            if params.insert(name, value).is_some() {
                return Err(NotARedirect::Repeated);
            }
        }
        let has = |name: &str| params.get(name).is_some_and(|v| !v.is_empty());
        let candidates = [
            (has("oauth_token") && has("oauth_verifier"))
                .then_some((Flow::OAuth1, Outcome::Granted)),
            has("denied").then_some((Flow::OAuth1, Outcome::Denied)),
            (has("code") && has("state")).then_some((Flow::OAuth2, Outcome::Granted)),
            has("error").then_some((Flow::OAuth2, Outcome::Denied)),
        ];
        let mut matches = candidates.into_iter().flatten();
        let (flow, outcome) = matches.next().ok_or(NotARedirect::Unrecognised)?;
        if matches.next().is_some() {
            return Err(NotARedirect::Ambiguous);
        }
        Ok(Redirect {
            flow,
            outcome,
            params,
        })
    }

    pub fn event_type(&self) -> &'static str {
        match self.outcome {
            Outcome::Granted => GRANTED,
            Outcome::Denied => DENIED,
        }
    }

    /// Stable for the same redirect, so that a reload stores nothing new: the flow, the outcome
    /// and the one-time values that identify this authorization.
    ///
    /// The values are joined with `|` (and a refusal's parameters with `=` and `&`), each value
    /// escaped by [`id_part`] so that no two redirects share a name: without it
    /// `oauth_token=a|x&oauth_verifier=b` and `oauth_token=a&oauth_verifier=x|b` were one event.
    /// Values without a separator or `%` (every token and code X issues) are unchanged by the
    /// escape, so events stored before it keep their ids and their repeats are still recognised.
    pub fn event_id(&self) -> String {
        let get = |name: &str| id_part(self.params.get(name).map(String::as_str).unwrap_or(""));
        let name = match (self.flow, self.outcome) {
            (Flow::OAuth1, Outcome::Granted) => format!(
                "oauth1|granted|{}|{}",
                get("oauth_token"),
                get("oauth_verifier")
            ),
            (Flow::OAuth1, Outcome::Denied) => format!("oauth1|denied|{}", get("denied")),
            (Flow::OAuth2, Outcome::Granted) => {
                format!("oauth2|granted|{}|{}", get("state"), get("code"))
            }
            // A refusal may lack `state`: then every parameter identifies it.
            (Flow::OAuth2, Outcome::Denied) => {
                let all: Vec<String> = self
                    .params
                    .iter()
                    .map(|(k, v)| format!("{}={}", id_part(k), id_part(v)))
                    .collect();
                format!("oauth2|denied|{}", all.join("&"))
            }
        };
        uuid::Uuid::new_v5(&ID_NAMESPACE, name.as_bytes()).to_string()
    }

    /// The event: type by outcome, properties `flow` plus every query parameter as a string.
    pub fn to_event(&self, now: Millis) -> NewEvent {
        let mut properties: Map<String, Value> = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        properties.insert("flow".into(), Value::String(self.flow.as_str().into()));
        new_event(
            self.event_id(),
            self.event_type(),
            properties,
            None,
            None,
            now,
        )
    }
}

/// What became of a callback.
#[derive(Debug)]
pub enum Recorded {
    /// A redirect stored for Tracardi (or stored before: a reload).
    Stored(Redirect),
    /// The end of a flow this service started: the account's event stored.
    Finished(Box<Finished>),
}

/// Why a callback was not recorded; the browser is told nothing was.
#[derive(Debug)]
pub enum NotRecorded {
    NotARedirect(NotARedirect),
    /// A flow this service started could not be finished (its event is not stored either).
    Connect(ConnectError),
    /// A redirect for Tracardi could not be stored.
    Store(StoreError),
}

/// Records the callback whose query is `query`, durably, before its browser is answered: the
/// end of a flow this service started (exchanged with X, the account's event stored), or any
/// other redirect of X's, stored as it is. The delivery worker is woken for the new event.
/// An account connected by a visitor with a Tracardi profile is linked to that profile first,
/// so that X's activity for it (webhooks) reaches the profile.
pub async fn record(
    query: Option<&str>,
    connect: &Connect,
    outbox: &dyn Outbox,
    links: &dyn AccountLinks,
    delivery: &DeliveryMonitor,
) -> Result<Recorded, NotRecorded> {
    let redirect = Redirect::parse(query).map_err(NotRecorded::NotARedirect)?;
    if let Some(finished) = connect.finish(&redirect).await {
        let finished = finished.map_err(NotRecorded::Connect)?;
        if let (Some(x_user_id), Some(profile_id)) =
            (&finished.x_user_id, &finished.event.profile_id)
        {
            let link = AccountLink {
                x_user_id: x_user_id.clone(),
                profile_id: profile_id.clone(),
                username: finished.username.clone(),
                subscription_ids: finished.subscription_ids.clone(),
                linked: 0,
                revoked: None,
            };
            if let Err(e) = links.put_link(link).await {
                tracing::error!(error = %e, "the connected account could not be linked to its profile");
                return Err(NotRecorded::Connect(e.into()));
            }
        }
        let (event_id, event_type) = (finished.event.id.clone(), finished.event.event_type.clone());
        match outbox.append(finished.event.clone()).await {
            Ok(Appended::New) => crate::metrics::event_stored(EventSource::Connect),
            Ok(Appended::AlreadyStored) => {}
            Err(e) => {
                tracing::error!(%event_id, error = %e, "connect event could not be stored");
                return Err(NotRecorded::Connect(e.into()));
            }
        }
        delivery.wake();
        tracing::info!(%event_id, %event_type, "connect flow finished");
        return Ok(Recorded::Finished(Box::new(finished)));
    }
    let event = redirect.to_event(now_millis());
    let event_id = event.id.clone();
    match outbox.append(event).await {
        Ok(appended) => {
            if appended == Appended::New {
                crate::metrics::event_stored(EventSource::Callback);
            }
            delivery.wake();
            tracing::info!(
                %event_id,
                event_type = redirect.event_type(),
                repeat = appended == Appended::AlreadyStored,
                "callback recorded"
            );
            Ok(Recorded::Stored(redirect))
        }
        Err(e) => {
            tracing::error!(%event_id, error = %e, "callback could not be stored");
            Err(NotRecorded::Store(e))
        }
    }
}

/// A Tracardi `EventPayload` to store: `{"id", "type", "properties", "time": {"create"}}`.
pub fn new_event(
    id: String,
    event_type: &str,
    properties: Map<String, Value>,
    profile_id: Option<String>,
    session_id: Option<String>,
    now: Millis,
) -> NewEvent {
    let created = rfc3339(now);
    NewEvent {
        event: json!({"id": id, "type": event_type, "properties": properties, "time": {"create": created}}),
        id,
        event_type: event_type.to_owned(),
        profile_id,
        session_id,
        created: now,
    }
}

/// One value of an event id's name, with the separators (`|`, `&`, `=`) and `%` itself
/// percent-encoded, and nothing else: the name then splits back into exactly the values it was
/// made of, while a value without those four characters is its own encoding.
fn id_part(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['%', '|', '&', '=']) {
        return value.into();
    }
    let mut escaped = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '|' => escaped.push_str("%7C"),
            '&' => escaped.push_str("%26"),
            '=' => escaped.push_str("%3D"),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

fn decode(text: &str) -> Result<String, NotARedirect> {
    let spaced = text.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| NotARedirect::NotUtf8)
}

/// Unix milliseconds as RFC 3339 UTC (`2026-11-25T03:41:26.123Z`), which pydantic parses.
pub fn rfc3339(millis: Millis) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_four_redirects() {
        let cases = [
            (
                "oauth_token=t&oauth_verifier=v",
                Flow::OAuth1,
                Outcome::Granted,
            ),
            ("denied=t", Flow::OAuth1, Outcome::Denied),
            ("code=c&state=s", Flow::OAuth2, Outcome::Granted),
            ("error=access_denied&state=s", Flow::OAuth2, Outcome::Denied),
            ("error=access_denied", Flow::OAuth2, Outcome::Denied),
        ];
        for (query, flow, outcome) in cases {
            let r = Redirect::parse(Some(query)).unwrap();
            assert_eq!((r.flow, r.outcome), (flow, outcome), "{query}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_redirect() {
        use NotARedirect::*;
        let long = format!("denied={}", "x".repeat(MAX_QUERY_BYTES));
        let many = (0..=MAX_PARAMETERS)
            .map(|i| format!("p{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        let cases: [(Option<&str>, NotARedirect); 9] = [
            (None, Unrecognised),
            (Some("hello=1"), Unrecognised),
            (Some("oauth_token=t"), Unrecognised),
            (Some("oauth_token=t&oauth_verifier="), Unrecognised),
            (Some("code=c&state=s&denied=t"), Ambiguous),
            (
                Some("oauth_token=t&oauth_verifier=v&code=c&state=s"),
                Ambiguous,
            ),
            (Some(&long), TooLong),
            (Some(&many), TooManyParameters),
            (Some("denied=%FF"), NotUtf8),
        ];
        for (query, expected) in cases {
            assert_eq!(Redirect::parse(query).unwrap_err(), expected, "{query:?}");
        }
        assert_eq!(
            Redirect::parse(Some("denied=a&denied=b")).unwrap_err(),
            Repeated
        );
    }

    #[test]
    fn events_carry_every_parameter_and_a_stable_id() {
        let r = Redirect::parse(Some(
            "oauth_token=t&oauth_verifier=v&tracardi_session=s%201+2",
        ))
        .unwrap();
        let e = r.to_event(1_700_000_000_000);
        assert_eq!(e.event_type, GRANTED);
        assert_eq!(e.event["properties"]["flow"], "oauth1");
        assert_eq!(e.event["properties"]["tracardi_session"], "s 1 2");
        assert_eq!(e.event["time"]["create"], "2023-11-14T22:13:20.000Z");
        assert_eq!(e.event["id"], e.id.as_str());
        let again = Redirect::parse(Some(
            "oauth_verifier=v&oauth_token=t&tracardi_session=other",
        ))
        .unwrap();
        assert_eq!(again.event_id(), r.event_id(), "a reload is the same event");
        let other = Redirect::parse(Some("oauth_token=t2&oauth_verifier=v")).unwrap();
        assert_ne!(other.event_id(), r.event_id());
    }

    /// Ids of events stored before values were escaped stay as they were (pinned from that
    /// code), so a repeat of an old callback is still recognised.
    #[test]
    fn ids_of_stored_events_are_unchanged() {
        for (query, id) in [
            (
                "oauth_token=tokA&oauth_verifier=verB",
                "82a6360e-9365-5cc0-a3b0-43d5d90da001",
            ),
            ("denied=tokA", "9cd2f40e-6734-56e0-b960-a02c5cbeb37b"),
            ("code=c1&state=s1", "6e2e935d-f504-5748-95da-64cef5b3ed80"),
            (
                "error=access_denied&state=s1&error_description=No+thanks",
                "4233dc75-4f47-5fe5-a256-978e453577c1",
            ),
            (
                "error=access_denied",
                "aecc7925-8153-5dea-a142-b51100e34df6",
            ),
        ] {
            assert_eq!(
                Redirect::parse(Some(query)).unwrap().event_id(),
                id,
                "{query}"
            );
        }
    }

    /// Values that hold a separator no longer make two callbacks one event.
    #[test]
    fn ids_do_not_collide_across_separators() {
        let id = |query| Redirect::parse(Some(query)).unwrap().event_id();
        for (a, b) in [
            (
                "oauth_token=tokA%7Cx&oauth_verifier=verB",
                "oauth_token=tokA&oauth_verifier=x%7CverB",
            ),
            ("code=c%7Cs&state=1", "code=c&state=1%7Cs"),
            ("error=a%26b%3Dc", "error=a&b=c"),
            ("error=x%7C1", "error=x%257C1"),
        ] {
            assert_ne!(id(a), id(b), "{a} ~ {b}");
        }
    }

    #[test]
    fn iso8601() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}
