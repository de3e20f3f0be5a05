//! The resource form, operations endpoints, request ids, CORS, body limits and the OpenAPI spec.

use crate::support::{TestApp, content_type, json};
use serde_json::{Value, json};

const SPEC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[tokio::test]
async fn resource_is_the_form_for_the_four_keys() {
    let app = TestApp::spawn(&[]).await;
    let response = app.client.get(app.url("/resource")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(
        body["init"],
        json!({"api_key": "", "api_secret": "", "access_token": "", "access_token_secret": ""})
    );
    let fields: Vec<&Value> = body["form"]["groups"]
        .as_array()
        .expect("form.groups")
        .iter()
        .flat_map(|g| g["fields"].as_array().expect("group.fields"))
        .collect();
    let ids: Vec<&str> = fields.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "api_key",
            "api_secret",
            "access_token",
            "access_token_secret"
        ]
    );
    for field in &fields {
        assert_eq!(field["component"]["type"], "password", "{field}");
        assert!(field["name"].is_string());
    }
    let text = body["form"].to_string();
    for hint in [
        "Keys and tokens",
        "Consumer Keys",
        "Authentication Tokens",
        "Read and write",
    ] {
        assert!(text.contains(hint), "the form does not mention {hint:?}");
    }
    for field in &fields {
        let description = field["description"].as_str().expect("a description");
        assert!(description.contains("Keys and tokens"), "{description}");
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::spawn(&[]).await;
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health = json(health).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let ready = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready = json(ready).await;
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["problems"], json!([]));
    assert_eq!(ready["store"]["state"], "ok");
    assert_eq!(ready["delivery"]["worker"], "not_configured");
}

#[tokio::test]
async fn ready_says_when_the_store_cannot_write_and_shows_no_path() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let app = TestApp::spawn(&["--data-dir", dir]).await;
    let ready = || async {
        let response = app.client.get(app.url("/ready")).send().await.unwrap();
        (response.status().as_u16(), json(response).await)
    };
    let (status, body) = ready().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["store"]["state"], "ok");

    // Another process holds the write lock: nothing can be stored (as with a full disk).
    let mut other = rusqlite::Connection::open(data_dir.path().join("outbox.sqlite3")).unwrap();
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let refused = app
        .client
        .get(app.url("/callback?denied=while-locked"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert_eq!(body["store"]["state"], "not_writable");
    let text = body.to_string();
    assert!(text.contains("database is locked"), "{text}");
    assert!(!text.contains(dir), "a file path in /ready: {text}");

    // Released: the store finds out by itself, without a callback having to try.
    lock.rollback().unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, body) = ready().await;
        if status == 200 {
            assert_eq!(body["store"]["state"], "ok");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready again: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_store_written_by_a_newer_version_stops_the_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let file = rusqlite::Connection::open(data_dir.path().join("outbox.sqlite3")).unwrap();
    file.pragma_update(None, "user_version", 99).unwrap();
    let config = crate::support::config(&[], data_dir.path());
    let error = match tracardi_twitter::app_state(&config).await {
        Ok(_) => panic!("the service started on a store of a newer version"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.starts_with("DATA_DIR: ") && error.contains("newer version of tracardi-twitter"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_routes_are_problem_404s() {
    let app = TestApp::spawn(&[]).await;
    let response = app
        .client
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(content_type(&response), "application/problem+json");
    assert_eq!(json(response).await["code"], "no_such_route");
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn(&[]).await;
    let given = format!("req-{}", uuid::Uuid::new_v4());
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", &given)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], given.as_str());

    let generated = |response: &reqwest::Response| {
        response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let first = app.client.get(app.url("/health")).send().await.unwrap();
    let second = app.client.get(app.url("/health")).send().await.unwrap();
    let (first, second) = (generated(&first), generated(&second));
    assert!(!first.is_empty());
    assert_ne!(first, second, "each request gets its own id");

    // An id that is not short and plain is replaced, not echoed (it would go into the logs).
    let response = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "a b \"quoted\"")
        .send()
        .await
        .unwrap();
    let replaced = generated(&response);
    assert_ne!(replaced, "a b \"quoted\"");
    assert!(!replaced.is_empty());

    // The access log line carries the id and the matched route.
    let line = crate::support::logs()
        .lines()
        .find(|l| l.contains(&given))
        .map(str::to_owned)
        .expect("a log line with the request id");
    let line: Value = serde_json::from_str(&line).expect("JSON log lines");
    assert_eq!(line["route"], "/health", "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["method"], "GET", "{line}");
}

#[tokio::test]
async fn the_access_log_names_the_route_not_the_path() {
    let app = TestApp::spawn(&[]).await;
    let request_id = format!("route-{}", uuid::Uuid::new_v4());
    let response = app
        .client
        .get(app.url(&format!("/api-key/{}", app.api_key)))
        .header("x-request-id", &request_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let logs = crate::support::logs();
    let line = logs
        .lines()
        .find(|l| l.contains(&request_id) && l.contains("\"route\""))
        .expect("an access log line");
    assert!(line.contains("/api-key/{api_key}"), "{line}");
    assert!(
        !line.contains(&app.api_key),
        "the API key in the URL was logged: {line}"
    );
}

#[tokio::test]
async fn cors_preflight_from_the_tracardi_gui_passes() {
    let app = TestApp::spawn(&[]).await;
    let origin = "http://localhost:8787";
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/validate"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,x-client,x-context,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
    };
    let allowed_origin = header("access-control-allow-origin");
    assert!(
        allowed_origin == "*" || allowed_origin == origin,
        "{allowed_origin}"
    );
    let methods = header("access-control-allow-methods");
    assert!(methods == "*" || methods.contains("post"), "{methods}");
    let headers = header("access-control-allow-headers");
    for wanted in ["authorization", "x-client", "x-context", "content-type"] {
        // A bare `*` does not cover Authorization in browsers: the name must be listed.
        assert!(
            headers.split(',').any(|h| h.trim() == wanted),
            "{wanted} not allowed: {headers}"
        );
    }

    // The actual request carries the CORS header too.
    let response = app
        .client
        .get(app.url("/resource"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

#[tokio::test]
async fn bodies_over_64_kib_get_413() {
    let app = TestApp::spawn(&[]).await;
    let big = format!("{{\"api_key\": \"{}\"}}", "a".repeat(64 * 1024));
    let response = app
        .client
        .post(app.url("/validate"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(content_type(&response), "application/problem+json");
    let body = json(response).await;
    assert_eq!(body["status"], 413);
    assert!(
        body["detail"].as_str().unwrap().contains("64 KiB"),
        "{body}"
    );

    // Just under the limit is read (and refused for its fields, not its size).
    let fits = format!("{{\"api_key\": \"{}\"}}", "a".repeat(60 * 1024));
    let response = app
        .client
        .post(app.url("/validate"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(fits)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
}

#[tokio::test]
async fn the_served_spec_is_the_generated_one() {
    let app = TestApp::spawn(&[]).await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("application/json"));
    let served = json(response).await;
    let generated: Value =
        serde_json::from_str(&tracardi_twitter::openapi().to_pretty_json().unwrap()).unwrap();
    assert_eq!(served, generated);
}

#[test]
fn the_committed_openapi_spec_is_up_to_date() {
    let generated = tracardi_twitter::openapi()
        .to_pretty_json()
        .expect("the spec serialises");
    let committed = std::fs::read_to_string(SPEC_PATH).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json differs from the specification the code generates.\n\
         Regenerate it with:\n\n    cargo run -q -- openapi > openapi/openapi.json\n\n\
         and commit the result."
    );
}

#[test]
fn the_spec_documents_every_endpoint_with_its_errors() {
    let spec: Value =
        serde_json::from_str(&tracardi_twitter::openapi().to_pretty_json().unwrap()).unwrap();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/validate", "post"),
        ("/resource", "get"),
        ("/api-key/{api_key}", "get"),
        ("/health", "get"),
        ("/ready", "get"),
    ] {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"))[method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(operation["responses"]["200"].is_object(), "{path}: no 200");
    }
    let validate = &spec["paths"]["/validate"]["post"];
    for status in ["403", "413", "422", "429", "502", "504"] {
        assert!(
            validate["responses"][status].is_object(),
            "POST /validate does not document {status}"
        );
    }
    assert!(validate["requestBody"].is_object());
    assert!(
        validate["security"].is_array(),
        "POST /validate needs the bearer token"
    );
    assert_eq!(
        spec["paths"]["/api-key/{api_key}"]["get"]["responses"]["403"]["description"]
            .as_str()
            .map(|d| d.contains("Wrong Api Key")),
        Some(true)
    );
    for schema in ["Problem", "Detail", "FieldErrors", "ValidationReport"] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "no {schema} schema"
        );
    }
}

fn generated_spec() -> Value {
    serde_json::from_str(&tracardi_twitter::openapi().to_pretty_json().unwrap()).unwrap()
}

/// Every operation of the specification, as (method, path, operation).
fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            operations.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    operations
}

/// A parameter is documented where the service reads it: in the path only when the path
/// template names it, in the query otherwise (schemathesis found /authorize's and /validate's
/// query parameters documented as path parameters).
#[test]
fn the_spec_puts_each_parameter_where_the_service_reads_it() {
    let spec = generated_spec();
    for (method, path, operation) in operations(&spec) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            let expected = if path.contains(&format!("{{{name}}}")) {
                "path"
            } else if name.starts_with("x-twitter-webhooks-signature") {
                // X's signatures come as headers (x-activity.md §1.5).
                "header"
            } else {
                "query"
            };
            assert_eq!(parameter["in"], expected, "{method} {path}: {name}");
        }
    }
    let authorize = &spec["paths"]["/authorize"]["get"]["parameters"];
    let names: Vec<_> = authorize
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap(),
                p["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("flow", true),
            ("profile_id", false),
            ("session_id", false),
            ("return_to", false)
        ]
    );
    let refresh = &spec["paths"]["/validate"]["post"]["parameters"][0];
    assert_eq!(
        (&refresh["name"], &refresh["required"]),
        (&json!("refresh"), &json!(false))
    );
    assert!(
        spec["paths"]["/callback"]["get"]["parameters"][0]["schema"]["oneOf"].is_array(),
        "/callback documents X's four answers"
    );
}

/// What every route answers besides its success is documented: 403 where the token is needed,
/// FastAPI's 422 where Tracardi's routes require a query parameter, 408 and 413 where a body is
/// read.
#[test]
fn the_spec_documents_the_errors_every_route_can_answer() {
    let spec = generated_spec();
    for (method, path, operation) in operations(&spec) {
        let responses = &operation["responses"];
        let documents = |status: &str| responses[status].is_object();
        if operation["security"].is_array() {
            assert!(documents("403"), "{method} {path}: 403");
            assert!(
                !documents("401"),
                "{method} {path}: 401 logs Tracardi's GUI user out"
            );
        }
        let requires_query = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "query" && p["required"] == true);
        // Tracardi's routes answer as FastAPI does; the browser's routes answer with a page.
        if requires_query && operation["tags"][0] == "tracardi" {
            let schema = &responses["422"]["content"]["application/json"]["schema"]["$ref"];
            assert!(
                schema == "#/components/schemas/RequestErrors"
                    || schema == "#/components/schemas/Unprocessable",
                "{method} {path}: FastAPI's 422 for a missing parameter, got {schema}"
            );
        }
        if operation["requestBody"].is_object() {
            assert!(documents("408") && documents("413"), "{method} {path}");
        }
    }
}

/// Tracardi's `/plugin/run` and `/plugin/validate` bodies are described, not bare objects.
#[test]
fn the_spec_describes_the_plugin_bodies() {
    let spec = generated_spec();
    let schemas = &spec["components"]["schemas"];
    let body = |path: &str| {
        let reference = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: the body has no named schema"))
            .trim_start_matches("#/components/schemas/")
            .to_owned();
        schemas[reference].clone()
    };
    assert_eq!(
        body("/plugin/run")["required"],
        json!(["init", "context", "params"])
    );
    assert_eq!(body("/plugin/validate")["required"], json!(["config"]));
    for key in [
        "api_key",
        "api_secret",
        "access_token",
        "access_token_secret",
    ] {
        let field = &schemas["CredentialsBody"]["properties"][key];
        assert_eq!(field["minLength"], 1, "{key} may not be empty");
        assert!(field["pattern"].is_string(), "{key} may not be blank");
    }
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    use crate::fake_x::{FakeX, Keys, Scenario};
    let keys = Keys::unique("inflight");
    let fake = FakeX::with_keys(Scenario::Slow(std::time::Duration::from_millis(500)), &keys).await;
    let app = TestApp::spawn(&["--twitter-api-url", &fake.url]).await;
    let request = app
        .client
        .post(app.url("/validate"))
        .bearer_auth(&app.token)
        .json(&keys.json())
        .send();
    let in_flight = tokio::spawn(request);
    // Wait until the validation is waiting on X, then ask the server to stop.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while fake.count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never reached X"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let base_url = app.base_url.clone();
    app.shutdown().await;
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight was answered");
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["valid"], true);
    // And the server no longer takes connections.
    let refused = crate::support::client()
        .get(format!("{base_url}/health"))
        .send()
        .await;
    assert!(refused.is_err(), "the server still answers after shutdown");
}
