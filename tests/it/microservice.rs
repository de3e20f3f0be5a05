//! Tracardi's microservice protocol: the exact JSON Tracardi sends, every field of what it reads.

use crate::fake_x::{FakeX, Keys, Scenario, TweetScenario};
use crate::support::{TestApp, json};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracardi_twitter::microservice::{SEND_TWEET_ID, SERVICE_ID};

async fn app_for(x: &FakeX, extra: &[&str]) -> TestApp {
    let mut args = vec!["--twitter-api-url", x.url.as_str()];
    args.extend_from_slice(extra);
    TestApp::spawn(&args).await
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&app.token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Fresh keys, a fake X that accepts them with write access, and the service pointed at it.
async fn with_writable_x(tag: &str, extra: &[&str]) -> (Keys, FakeX, TestApp) {
    let keys = Keys::unique(tag);
    let x = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read-write"),
        },
        &keys,
    )
    .await;
    let app = app_for(&x, extra).await;
    (keys, x, app)
}

fn run_path() -> String {
    format!("/plugin/run?service_id={SERVICE_ID}&action_id={SEND_TWEET_ID}")
}

/// The body Tracardi's workflow engine sends (tracardi-protocol.md §1.8): `init` with
/// `__debug__`, a node without `className`/`module`, `flow: null`, credentials in
/// `context.node.microservice.plugin.resource`.
fn tracardi_run_body(tweet: &str, resource: Value, payload: Value) -> Value {
    json!({
        "init": {"tweet": tweet, "__debug__": false},
        "context": {
            "id": "5b9c-node", "debug": false,
            "event": {"id": "ev-1", "type": "purchase", "properties": {"items": [{"name": "Blue mug", "price": 12.5}], "paid": true},
                      "metadata": {"time": {"insert": "2026-11-25T03:00:00.000000"}}, "source": {"id": "src-1"}},
            "session": {"id": "sess-1", "metadata": {"time": {"insert": "2026-11-25T03:00:00"}}},
            "profile": {"id": "prof-1", "data": {"pii": {"firstname": "Ann", "lastname": null}, "contact": {"email": {"main": "ann@example.com"}}}, "traits": {}},
            "metrics": {}, "memory": {},
            "node": {
                "id": "5b9c-node", "name": "Send tweet", "start": false, "debug": false,
                "inputs": ["payload"], "outputs": ["response", "error"], "skip": false,
                "run_once": {"value": "", "ttl": 0, "type": "value", "enabled": false}, "node": null,
                "block_flow": false, "on_error_continue": false, "run_in_background": false,
                "on_connection_error_repeat": 1, "append_input_payload": false, "join_input_payload": false,
                "microservice": {
                    "server": {"credentials": {"production": {"url": "http://ms:20000", "token": "jwt"},
                                               "test": {"url": "http://ms:20000", "token": "jwt"}},
                               "resource": {"id": "res-1", "name": "My Twitter MS"}},
                    "service": {"id": SERVICE_ID, "name": "Twitter"},
                    "plugin": {"id": SEND_TWEET_ID, "name": "Send tweet", "resource": resource}
                },
                "remote": true,
                "graph": {"in_edges": {"edges": {}}, "out_edges": {"edges": {}}}
            },
            "flow": null, "flow_history": null, "execution_graph": null, "tracker_payload": null,
            "ux": [], "join": null
        },
        "params": {
            "payload": payload,
            "in_edge": {"id": "edge-1", "source": {"node_id": "start", "param": "payload"},
                        "target": {"node_id": "5b9c-node", "param": "payload"}, "enabled": true, "data": {"name": ""}}
        }
    })
}

/// Checks a `/plugin/run` answer against what Tracardi's `MicroserviceResponse` requires.
async fn run_answer(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_eq!(crate::support::content_type(&response), "application/json");
    let body = json(response).await;
    let port = body["result"]["port"]
        .as_str()
        .expect("result.port is a string");
    assert!(port == "response" || port == "error", "{body}");
    assert!(body["result"]["value"].is_object() || body["result"]["value"].is_null());
    let context = body["context"].as_object().expect("context is an object");
    for key in [
        "event", "session", "profile", "metrics", "memory", "ux", "node",
    ] {
        assert!(context.contains_key(key), "context lacks {key}");
    }
    for list in ["infos", "errors", "warnings"] {
        assert!(
            body["console"][list]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string)
        );
    }
    body
}

fn error_code(body: &Value) -> &str {
    assert_eq!(body["result"]["port"], "error", "{body}");
    assert!(body["result"]["value"]["message"].is_string());
    body["result"]["value"]["code"].as_str().unwrap()
}

#[tokio::test]
async fn lists_one_service_with_one_action() {
    let app = TestApp::spawn(&[]).await;
    let services = json(get(&app, "/services").await).await;
    assert_eq!(
        services,
        json!({"total": 1, "result": {SERVICE_ID: "Twitter"}})
    );
    assert_eq!(SERVICE_ID, SERVICE_ID.to_lowercase());

    let actions = json(get(&app, &format!("/actions?service_id={SERVICE_ID}")).await).await;
    assert_eq!(
        actions,
        json!({"total": 1, "result": {SEND_TWEET_ID: "Send tweet"}})
    );
    let none = json(get(&app, "/actions?service_id=unknown").await).await;
    assert_eq!(none, json!({"total": 0, "result": {}}));

    // A missing required query parameter: FastAPI's 422 list, which the GUI reads.
    let missing = get(&app, "/actions").await;
    assert_eq!(missing.status(), 422);
    let body = json(missing).await;
    assert_eq!(body["detail"][0]["loc"], json!(["query", "service_id"]));
    assert_eq!(body["detail"][0]["msg"], "Field required");

    // Every endpoint but /api-key wants the bearer token, and says so with 403.
    let anonymous = app.client.get(app.url("/services")).send().await.unwrap();
    assert_eq!(anonymous.status(), 403);
    assert_eq!(
        json(anonymous).await,
        json!({"detail": "Not authenticated"})
    );
    app.shutdown().await;
}

#[tokio::test]
async fn serves_the_resource_form_and_the_action_form() {
    let app = TestApp::spawn(&[]).await;
    let resource =
        json(get(&app, &format!("/service/resource?service_id={SERVICE_ID}")).await).await;
    let plain = json(app.client.get(app.url("/resource")).send().await.unwrap()).await;
    assert_eq!(resource, plain, "the same form as GET /resource");
    assert_eq!(
        json(get(&app, "/service/resource?service_id=nope").await).await,
        Value::Null
    );

    let form = json(
        get(
            &app,
            &format!("/plugin/form?service_id={SERVICE_ID}&action_id={SEND_TWEET_ID}"),
        )
        .await,
    )
    .await;
    assert_eq!(form["init"], json!({"tweet": ""}));
    let field = &form["form"]["groups"][0]["fields"][0];
    assert_eq!(field["id"], "tweet");
    assert_eq!(field["component"]["type"], "textarea");
    let help = field["description"].as_str().unwrap();
    assert!(help.contains("{{profile@data.pii.firstname}}"), "{help}");
    for key in ["submit", "default", "title", "groups"] {
        assert!(form["form"].get(key).is_some(), "Form.{key}");
    }
    let unknown = json(
        get(
            &app,
            &format!("/plugin/form?service_id={SERVICE_ID}&action_id=x"),
        )
        .await,
    )
    .await;
    assert_eq!(unknown, json!({"init": {}, "form": null}));
    app.shutdown().await;
}

#[tokio::test]
async fn the_registry_entry_is_a_tracardi_plugin() {
    let app = TestApp::spawn(&[]).await;
    let plugin = json(get(&app, &format!("/plugin/registry?service_id={SERVICE_ID}")).await).await;
    assert_eq!(plugin["start"], false);
    assert_eq!(plugin["debug"], false);
    let spec = &plugin["spec"];
    assert_eq!(
        spec["module"],
        "tracardi.process_engine.action.v1.microservice.plugin"
    );
    assert_eq!(spec["className"], "MicroserviceAction");
    assert_eq!(spec["inputs"], json!(["payload"]));
    assert_eq!(spec["outputs"], json!(["response", "error"]));
    assert_eq!(spec["version"], "0.8.2");
    assert!(spec["on_connection_error_repeat"].is_u64());
    for flag in [
        "skip",
        "block_flow",
        "run_in_background",
        "on_error_continue",
        "append_input_payload",
        "join_input_payload",
    ] {
        assert!(spec[flag].is_boolean(), "spec.{flag}");
    }
    assert_eq!(
        spec["run_once"],
        json!({"value": "", "ttl": 0, "type": "value", "enabled": false})
    );
    let microservice = &spec["microservice"];
    assert!(microservice["server"]["credentials"]["production"].is_object());
    assert!(microservice["server"]["resource"]["id"].is_string());
    assert!(microservice["plugin"]["resource"].is_object());
    let meta = &plugin["metadata"];
    assert!(meta["name"].is_string());
    assert_eq!(meta["remote"], true);
    assert_eq!(meta["icon"], "twitter");
    assert_eq!(meta["group"], json!(["Connectors"]));
    assert_eq!(meta["type"], "flowNode");
    assert!(meta["width"].is_u64() && meta["height"].is_u64());
    assert!(meta["documentation"]["inputs"]["payload"]["desc"].is_string());
    for port in ["response", "error"] {
        assert!(
            meta["documentation"]["outputs"][port]["desc"].is_string(),
            "{port}"
        );
    }
    for flag in ["pro", "commercial", "frontend"] {
        assert_eq!(meta[flag], false, "{flag}");
    }
    // Better than the Python server's 500: a readable 404.
    let unknown = get(&app, "/plugin/registry?service_id=other").await;
    assert_eq!(unknown.status(), 404);
    assert!(
        json(unknown).await["detail"]
            .as_str()
            .unwrap()
            .contains(SERVICE_ID)
    );
    app.shutdown().await;
}

#[tokio::test]
async fn resource_validation_speaks_the_gui_s_language() {
    let (keys, x, app) = with_writable_x("msv", &[]).await;
    let path = format!("/service/resource/validate?service_id={SERVICE_ID}");
    let ok = post(&app, &path, &keys.json()).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(json(ok).await, json!(true));
    assert!(x.received().iter().all(|r| r.signature_ok));

    // The same cache as /validate: no second call to X.
    let calls = x.count();
    let report = json(app.validate(&keys.json()).await).await;
    assert_eq!(report["cached"], true);
    assert_eq!(x.count(), calls);

    // A read-only token cannot tweet: shown under the access_token field.
    let read_only = Keys::unique("msr");
    x.accept(&read_only);
    x.set(Scenario::Ok {
        access_level: Some("read"),
    });
    let response = post(&app, &path, &read_only.json()).await;
    assert_eq!(response.status(), 422);
    let fields = json(response).await;
    assert!(
        fields["access_token"]
            .as_str()
            .unwrap()
            .contains("read-only"),
        "{fields}"
    );

    // Wrong keys: a message the GUI shows under the first field.
    x.set(Scenario::Unauthorized);
    let wrong = Keys::unique("msw");
    let response = post(&app, &path, &wrong.json()).await;
    assert_eq!(response.status(), 422);
    assert!(
        json(response).await["api_key"]
            .as_str()
            .unwrap()
            .contains("rejected")
    );

    // A missing field (the GUI posts {} when a form is empty).
    let response = post(&app, &path, &json!({})).await;
    assert_eq!(response.status(), 422);
    assert_eq!(json(response).await["api_secret"], "Field required");

    // Unknown service.
    let response = post(
        &app,
        "/service/resource/validate?service_id=zzz",
        &keys.json(),
    )
    .await;
    assert_eq!(response.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_x_is_an_error_the_gui_can_show() {
    let app = TestApp::spawn(&["--twitter-api-url", &FakeX::refusing_url()]).await;
    let response = post(
        &app,
        &format!("/service/resource/validate?service_id={SERVICE_ID}"),
        &Keys::unique("msu").json(),
    )
    .await;
    assert_eq!(response.status(), 502);
    assert!(
        json(response).await["detail"]
            .as_str()
            .unwrap()
            .contains("could not be reached")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn plugin_validate_returns_the_cleaned_config() {
    let app = TestApp::spawn(&[]).await;
    let path = format!("/plugin/validate?service_id={SERVICE_ID}&action_id={SEND_TWEET_ID}");
    let body = json!({"config": {"tweet": "Hi {{profile@data.pii.firstname}}", "source": {"id": "", "name": ""}}, "credentials": null});
    let cleaned = json(post(&app, &path, &body).await).await;
    assert_eq!(
        cleaned,
        json!({"tweet": "Hi {{profile@data.pii.firstname}}"})
    );

    for tweet in ["", "   ", "Hi {{profile@data.pii.firstname.}}"] {
        let response = post(
            &app,
            &path,
            &json!({"config": {"tweet": tweet}, "credentials": {}}),
        )
        .await;
        assert_eq!(response.status(), 422, "{tweet:?}");
        assert!(json(response).await["tweet"].is_string());
    }
    let unknown = post(
        &app,
        &format!("/plugin/validate?service_id={SERVICE_ID}&action_id=nope"),
        &body,
    )
    .await;
    assert_eq!(unknown.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn send_tweet_renders_the_template_and_posts_it_signed() {
    let (keys, x, app) = with_writable_x("tw", &[]).await;
    let tweet = "Thanks {{profile@data.pii.firstname}} for the {{event@properties.items.0.name}} ({{payload@order.total}})! https://example.com/a/very/long/link/that/counts/as/twenty/three/characters/only";
    let body = tracardi_run_body(tweet, keys.json(), json!({"order": {"total": 12.0}}));
    let answer = run_answer(post(&app, &run_path(), &body).await).await;
    assert_eq!(answer["result"]["port"], "response", "{answer}");
    let expected = "Thanks Ann for the Blue mug (12.0)! https://example.com/a/very/long/link/that/counts/as/twenty/three/characters/only";
    assert_eq!(answer["result"]["value"]["text"], expected);
    assert!(answer["result"]["value"]["tweet_id"].is_string());
    assert!(
        answer["console"]["infos"][0]
            .as_str()
            .unwrap()
            .contains("posted")
    );
    let posts = x.tweets();
    assert_eq!(posts.len(), 1);
    assert!(posts[0].signature_ok, "the fake X verified the signature");
    assert_eq!(
        serde_json::from_str::<Value>(&posts[0].body).unwrap(),
        json!({"text": expected})
    );
    app.shutdown().await;
}

#[tokio::test]
async fn send_tweet_reports_each_failure_on_the_error_port() {
    let (keys, x, app) = with_writable_x("te", &["--validate-timeout", "300ms"]).await;
    let run = |tweet: &str| tracardi_run_body(tweet, keys.json(), json!({}));

    // Failures found before posting: nothing reaches X.
    let missing =
        run_answer(post(&app, &run_path(), &run("Hi {{profile@data.pii.nickname}}")).await).await;
    assert_eq!(error_code(&missing), "missing_path");
    assert!(
        missing["result"]["value"]["message"]
            .as_str()
            .unwrap()
            .contains("profile@data.pii.nickname")
    );
    let too_long = run_answer(post(&app, &run_path(), &run(&"a".repeat(281))).await).await;
    assert_eq!(error_code(&too_long), "too_long");
    let no_keys = run_answer(
        post(
            &app,
            &run_path(),
            &tracardi_run_body("hello", json!({}), json!({})),
        )
        .await,
    )
    .await;
    assert_eq!(error_code(&no_keys), "missing_credentials");
    assert!(x.tweets().is_empty());
    // 280 exactly is fine.
    let at_limit = run_answer(post(&app, &run_path(), &run(&"b".repeat(280))).await).await;
    assert_eq!(at_limit["result"]["port"], "response");

    // X's refusals.
    for (scenario, code) in [
        (TweetScenario::Duplicate, "duplicate"),
        (TweetScenario::ReadOnly, "read_only_token"),
        (TweetScenario::PlanLacksEndpoint, "plan_lacks_endpoint"),
        (TweetScenario::RateLimited { reset_in: 90 }, "rate_limited"),
    ] {
        x.set_tweets(scenario);
        let answer = run_answer(post(&app, &run_path(), &run("refused")).await).await;
        assert_eq!(error_code(&answer), code);
        assert!(!answer["console"]["errors"].as_array().unwrap().is_empty());
    }

    // A slow X: reported once, never posted twice.
    x.set_tweets(TweetScenario::Slow(Duration::from_secs(2)));
    let before = x.tweets().len();
    let slow = run_answer(post(&app, &run_path(), &run("slow one")).await).await;
    assert_eq!(error_code(&slow), "x_timeout");
    assert_eq!(
        x.tweets().len(),
        before + 1,
        "a timed-out post is not retried"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn send_tweet_with_x_unreachable() {
    let app = TestApp::spawn(&["--twitter-api-url", &FakeX::refusing_url()]).await;
    let body = tracardi_run_body("hello", Keys::unique("tu").json(), json!({}));
    let answer = run_answer(post(&app, &run_path(), &body).await).await;
    assert_eq!(error_code(&answer), "x_unreachable");
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_runs_and_unknown_ids_get_clear_json_errors() {
    let app = TestApp::spawn(&[]).await;
    let unknown = post(
        &app,
        &format!("/plugin/run?service_id={SERVICE_ID}&action_id=nope"),
        &json!({}),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(crate::support::content_type(&unknown), "application/json");
    assert!(
        json(unknown).await["detail"]
            .as_str()
            .unwrap()
            .contains(SEND_TWEET_ID)
    );

    let no_context = post(
        &app,
        &run_path(),
        &json!({"init": {"tweet": "x"}, "params": {}}),
    )
    .await;
    assert_eq!(no_context.status(), 422);
    let body = json(no_context).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "context"]));

    let not_json = app
        .client
        .post(app.url(&run_path()))
        .bearer_auth(&app.token)
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 422);
    assert!(json(not_json).await["detail"].is_array());

    let missing_action = post(
        &app,
        &format!("/plugin/run?service_id={SERVICE_ID}"),
        &json!({}),
    )
    .await;
    assert_eq!(missing_action.status(), 422);
    app.shutdown().await;
}

/// Tracardi sends the whole profile on every run: a customer with many traits makes a body of
/// hundreds of KB, which must be taken (PLUGIN_BODY_LIMIT, 16 MiB by default), not refused
/// with 413 while the other routes keep their 64 KiB.
#[tokio::test]
async fn a_run_with_a_rich_profile_is_taken() {
    let (keys, x, app) = with_writable_x("rich", &[]).await;
    let mut body = tracardi_run_body("Hi {{profile@data.pii.firstname}}", keys.json(), json!({}));
    let traits: serde_json::Map<String, Value> = (0..4000)
        .map(|i| {
            (
                format!("trait_{i}"),
                json!(format!("value {i} {}", "x".repeat(40))),
            )
        })
        .collect();
    body["context"]["profile"]["traits"] = Value::Object(traits);
    assert!(body.to_string().len() > 200_000);
    let answer = run_answer(post(&app, &run_path(), &body).await).await;
    assert_eq!(answer["result"]["port"], "response", "{answer}");
    assert_eq!(answer["result"]["value"]["text"], "Hi Ann");
    assert_eq!(x.tweets().len(), 1);
    // The same size elsewhere is refused.
    let response = post(&app, "/validate", &body).await;
    assert_eq!(response.status(), 413);
    app.shutdown().await;
}

/// FastAPI names every missing query parameter, whatever the others say; so does this service
/// (schemathesis found `/plugin/form?service_id=unknown` answered 200 without `action_id`).
#[tokio::test]
async fn every_missing_parameter_is_named() {
    let app = TestApp::spawn(&[]).await;
    let locations = |body: Value| -> Vec<Value> {
        body["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["loc"].clone())
            .collect()
    };
    let unknown_service = get(&app, "/plugin/form?service_id=unknown").await;
    assert_eq!(unknown_service.status(), 422);
    assert_eq!(
        locations(json(unknown_service).await),
        [json!(["query", "action_id"])]
    );
    let neither = get(&app, "/plugin/form").await;
    assert_eq!(neither.status(), 422);
    assert_eq!(
        locations(json(neither).await),
        [
            json!(["query", "service_id"]),
            json!(["query", "action_id"])
        ]
    );
    let run = post(&app, "/plugin/run?action_id=x", &json!({})).await;
    assert_eq!(locations(json(run).await), [json!(["query", "service_id"])]);
    app.shutdown().await;
}

/// `credentials` is an object or null, as Tracardi's microservice types it.
#[tokio::test]
async fn plugin_validate_refuses_credentials_that_are_not_an_object() {
    let app = TestApp::spawn(&[]).await;
    let path = format!("/plugin/validate?service_id={SERVICE_ID}&action_id={SEND_TWEET_ID}");
    for credentials in [json!(null), json!({}), json!({"api_key": "k"})] {
        let body = json!({"config": {"tweet": "Hi"}, "credentials": credentials});
        assert_eq!(
            post(&app, &path, &body).await.status(),
            200,
            "{credentials}"
        );
    }
    assert_eq!(
        post(&app, &path, &json!({"config": {"tweet": "Hi"}}))
            .await
            .status(),
        200
    );
    for credentials in [json!("keys"), json!(5), json!([])] {
        let body = json!({"config": {"tweet": "Hi"}, "credentials": credentials});
        let response = post(&app, &path, &body).await;
        assert_eq!(response.status(), 422, "{credentials}");
        let body = json(response).await;
        assert_eq!(body["detail"][0]["loc"], json!(["body", "credentials"]));
        assert_eq!(body["detail"][0]["type"], "dict_type");
    }
    app.shutdown().await;
}

/// A small body whose template inserts a 40 KB property a thousand times (40 MB if rendered
/// whole) is refused with `too_long` on the error port, without rendering it all, and nothing
/// reaches X.
#[tokio::test]
async fn a_template_that_expands_hugely_is_too_long() {
    let (keys, x, app) = with_writable_x("tx", &[]).await;
    let tweet = "{{payload@big}} ".repeat(1000);
    let body = tracardi_run_body(&tweet, keys.json(), json!({"big": "x".repeat(40_000)}));
    let answer = run_answer(post(&app, &run_path(), &body).await).await;
    assert_eq!(error_code(&answer), "too_long");
    let message = answer["result"]["value"]["message"].as_str().unwrap();
    assert!(message.contains("Nothing was posted"), "{message}");
    // Rendering stopped at the bound, so the length was never known (40 MB would have been).
    assert!(
        answer["result"]["value"].get("length").is_none(),
        "{answer}"
    );
    assert!(x.tweets().is_empty());
    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    app.shutdown().await;
}

/// While a worst-case run is rendered and weighed (760 KB of `a.`, just under the most text
/// that could fit a tweet; the old, quadratic count took hours), `/health` answers and the run
/// has not: the work runs on the blocking pool, not on the runtime's one thread, which this
/// test shares with the service.
///
/// The run is sent by hand with `Expect: 100-continue`, so that the test knows when the handler
/// has started: hyper says `100 Continue` when the handler reads the body, and the rendering
/// follows as soon as the body is there. Had it run on the runtime's thread, the run's answer
/// would be written before `/health` could be.
#[tokio::test]
async fn health_answers_while_a_worst_case_run_is_processed() {
    let (keys, x, app) = with_writable_x("tw", &[]).await;
    let tweet = "{{payload@t}}".repeat(19);
    let body = tracardi_run_body(&tweet, keys.json(), json!({"t": "a.".repeat(20_000)}));
    let body = serde_json::to_vec(&body).unwrap();
    let mut run = tokio::net::TcpStream::connect(app.base_url.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        run_path(),
        app.token,
        body.len()
    );
    run.write_all(head.as_bytes()).await.unwrap();
    let continue_line = b"HTTP/1.1 100 Continue\r\n\r\n";
    let mut answer = vec![0; continue_line.len()];
    tokio::time::timeout(Duration::from_secs(30), run.read_exact(&mut answer))
        .await
        .expect("the handler reads the body")
        .unwrap();
    assert_eq!(answer, continue_line);
    run.write_all(&body).await.unwrap();

    let health = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut probe = [0; 1];
    let pending = run.try_read(&mut probe);
    assert!(
        matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the run answered before /health ({pending:?}): its work held the runtime's thread"
    );

    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), run.read_to_end(&mut answer))
        .await
        .expect("the run answers")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error_code(&body), "too_long");
    assert_eq!(body["result"]["value"]["length"], 760_000);
    assert!(x.tweets().is_empty());
    app.shutdown().await;
}
