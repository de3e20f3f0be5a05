//! Tracardi's plugin registry entry and `/plugin/run` answer (tracardi-protocol.md §1.8, §2).

use md5::{Digest, Md5};
use serde::Serialize;
use serde_json::{Value, json};

/// The module and class Tracardi's workflow engine imports for every remote node (§1.8).
pub const MODULE: &str = "tracardi.process_engine.action.v1.microservice.plugin";
pub const CLASS_NAME: &str = "MicroserviceAction";
pub const VERSION: &str = "0.8.2";

/// `Spec.id` as Tracardi computes it: md5 of module + className + version (it recomputes it).
pub fn spec_id() -> String {
    let digest = Md5::new()
        .chain_update(MODULE)
        .chain_update(CLASS_NAME)
        .chain_update(VERSION)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `Plugin` JSON for the service's single node type, every field as pydantic dumps it.
pub fn registry_entry(
    name: &str,
    description: &str,
    keywords: &[&str],
    inputs: Value,
    outputs: Value,
) -> Value {
    json!({
        "start": false,
        "debug": false,
        "spec": {
            "id": spec_id(),
            "className": CLASS_NAME,
            "module": MODULE,
            "inputs": ["payload"],
            "outputs": ["response", "error"],
            "init": null,
            "microservice": {
                "server": {"credentials": {"production": {}, "test": {}}, "resource": {"id": "", "name": ""}},
                "service": {"id": "", "name": ""},
                "plugin": {"id": "", "name": "", "resource": {}}
            },
            "skip": false,
            "block_flow": false,
            "run_in_background": false,
            "on_error_continue": false,
            "on_connection_error_repeat": 1,
            "append_input_payload": false,
            "join_input_payload": false,
            "form": null,
            "manual": null,
            "author": "tracardi-twitter",
            "license": "MIT",
            "version": VERSION,
            "run_once": {"value": "", "ttl": 0, "type": "value", "enabled": false},
            "node": null
        },
        "metadata": {
            "name": name,
            "brand": "Twitter",
            "desc": description,
            "keywords": keywords,
            "type": "flowNode",
            "width": 300,
            "height": 100,
            "icon": "twitter",
            "documentation": {"tutorial": null, "inputs": inputs, "outputs": outputs},
            "group": ["Connectors"],
            "tags": ["microservice", "remote", "twitter"],
            "pro": false,
            "commercial": false,
            "remote": true,
            "frontend": false,
            "emits_event": {},
            "purpose": ["collection"]
        }
    })
}

/// Tracardi's `Result`: the port and an object (or null) it carries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct PortResult {
    /// `response` or `error`.
    pub port: &'static str,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// The node's console lines; Tracardi replaces its own with these.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema, PartialEq)]
pub struct Console {
    pub infos: Vec<String>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// The answer of `POST /plugin/run`: always all three parts, and a context with all seven keys,
/// null where this action changed nothing (Tracardi raises on a missing key).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct RunResponse {
    pub result: PortResult,
    #[schema(value_type = Object)]
    pub context: Value,
    pub console: Console,
}

impl RunResponse {
    fn new(port: &'static str, value: Value, console: Console) -> Self {
        Self {
            result: PortResult { port, value },
            context: json!({
                "event": null, "session": null, "profile": null, "metrics": null,
                "memory": null, "ux": null, "node": null
            }),
            console,
        }
    }

    pub fn response(value: Value, info: String) -> Self {
        Self::new(
            "response",
            value,
            Console {
                infos: vec![info],
                ..Console::default()
            },
        )
    }

    /// The error port with `{"message", "code"}` (and any extra fields given).
    pub fn error(code: &str, message: String, mut extra: serde_json::Map<String, Value>) -> Self {
        extra.insert("message".into(), Value::String(message.clone()));
        extra.insert("code".into(), Value::String(code.to_owned()));
        Self::new(
            "error",
            Value::Object(extra),
            Console {
                errors: vec![message],
                ..Console::default()
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_id_is_tracardis() {
        // tracardi-protocol.md §2.1 shows this id for the microservice plugin at 0.8.2.
        assert_eq!(spec_id(), "69be318f3b8609365d3b37f5f75fc451");
    }

    #[test]
    fn run_responses_carry_all_seven_context_keys() {
        let r = serde_json::to_value(RunResponse::response(json!({"tweet_id": "1"}), "ok".into()))
            .unwrap();
        assert_eq!(r["result"]["port"], "response");
        let context = r["context"].as_object().unwrap();
        for key in [
            "event", "session", "profile", "metrics", "memory", "ux", "node",
        ] {
            assert!(context[key].is_null(), "{key}");
        }
        let e = serde_json::to_value(RunResponse::error(
            "too_long",
            "m".into(),
            Default::default(),
        ))
        .unwrap();
        assert_eq!(
            e["result"]["value"],
            json!({"message": "m", "code": "too_long"})
        );
        assert_eq!(e["console"]["errors"], json!(["m"]));
    }
}
