//! Tracardi's `POST /track` body, the `TrackerPayload` (tracardi-protocol.md §4.1).

use crate::store::NewEvent;
use serde_json::{Value, json};

/// One payload for events that share a profile and session (or are all profile-less).
///
/// Profile-less events are sent the way Tracardi's own webhook bridge sends them; events of a
/// connect flow carry the visitor's profile and session so Tracardi attaches them.
pub fn tracker_payload(source_id: &str, events: &[&NewEvent]) -> Value {
    let first = events.first().expect("a payload has at least one event");
    let mut payload = json!({
        "source": {"id": source_id},
        "events": events.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        "options": {},
    });
    match (&first.profile_id, &first.session_id) {
        (None, None) => payload["profile_less"] = Value::Bool(true),
        (profile, session) => {
            payload["profile_less"] = Value::Bool(false);
            if let Some(id) = profile {
                payload["profile"] = json!({"id": id});
            }
            if let Some(id) = session {
                payload["session"] = json!({"id": id});
            }
        }
    }
    payload
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
    fn profile_less_and_profiled_payloads() {
        let e = event(None);
        let p = tracker_payload("src", &[&e]);
        assert_eq!(
            p,
            json!({"source": {"id": "src"}, "events": [e.event], "profile_less": true, "options": {}})
        );
        let e = event(Some("p1"));
        let p = tracker_payload("src", &[&e]);
        assert_eq!(p["profile"], json!({"id": "p1"}));
        assert_eq!(p["session"], json!({"id": "s1"}));
        assert_eq!(p["profile_less"], false);
    }
}
