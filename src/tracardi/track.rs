//! Tracardi's `POST /track` request: its query and its `TrackerPayload` body
//! (tracardi-protocol.md §4.1).

use crate::store::NewEvent;
use serde_json::{Value, json};

/// One `/track` request: where it goes (relative to the API URL) and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRequest {
    /// `/track`, or `/track?profile_less=true` for events of no profile.
    pub path_and_query: &'static str,
    pub payload: Value,
}

/// The request for events that share a profile and session (or are all profile-less).
///
/// Tracardi takes `profile_less` from the query string and overwrites the body's flag with it:
/// without `?profile_less=true` it would make one new anonymous profile per request and put every
/// event of the batch on it, mixing unrelated visitors. The body's flag says the same thing, for
/// readers of the payload. Events of a connect flow carry the visitor's profile and session so
/// that Tracardi attaches them.
pub fn track_request(source_id: &str, events: &[&NewEvent]) -> TrackRequest {
    let first = events.first().expect("a request has at least one event");
    let mut payload = json!({
        "source": {"id": source_id},
        "events": events.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        "options": {},
    });
    let profile_less = first.profile_id.is_none() && first.session_id.is_none();
    payload["profile_less"] = Value::Bool(profile_less);
    if let Some(id) = &first.profile_id {
        payload["profile"] = json!({"id": id});
    }
    if let Some(id) = &first.session_id {
        payload["session"] = json!({"id": id});
    }
    TrackRequest {
        path_and_query: if profile_less {
            "/track?profile_less=true"
        } else {
            "/track"
        },
        payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(profile: Option<&str>) -> NewEvent {
        NewEvent {
            id: "e1".into(),
            event_type: "t".into(),
            event: json!({"id": "e1", "type": "t", "properties": {}}),
            profile_id: profile.map(str::to_owned),
            session_id: profile.map(|_| "s1".to_owned()),
            created: 0,
        }
    }

    #[test]
    fn profile_less_events_say_so_in_the_query() {
        let e = event(None);
        let request = track_request("src", &[&e]);
        assert_eq!(request.path_and_query, "/track?profile_less=true");
        assert_eq!(
            request.payload,
            json!({"source": {"id": "src"}, "events": [e.event], "options": {}, "profile_less": true})
        );
    }

    #[test]
    fn profiled_events_name_their_profile_and_session() {
        let e = event(Some("p1"));
        let request = track_request("src", &[&e]);
        assert_eq!(request.path_and_query, "/track");
        assert_eq!(request.payload["profile"], json!({"id": "p1"}));
        assert_eq!(request.payload["session"], json!({"id": "s1"}));
        assert_eq!(request.payload["profile_less"], false);
    }
}
