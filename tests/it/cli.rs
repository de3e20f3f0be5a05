//! The real binary: `validate`, `healthcheck`, `openapi`, `--help` and refused settings.

use crate::fake_x::{FakeX, Keys, Scenario};
use crate::support::TestApp;
use std::process::Output;
use std::time::Duration;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_tracardi-twitter");

/// Every setting the binary reads from the environment: cleared so the tests' own
/// environment cannot change what the binary does.
const SETTINGS: [&str; 16] = [
    "LISTEN_ADDR",
    "METRICS_ADDR",
    "METRICS_PUBLIC",
    "API_KEY",
    "SECRET",
    "DATA_DIR",
    "TWITTER_API_URL",
    "VALIDATE_TIMEOUT",
    "VALIDATE_CACHE_TTL",
    "LOG_FORMAT",
    "RUST_LOG",
    "TWITTER_API_KEY",
    "TWITTER_API_SECRET",
    "TWITTER_ACCESS_TOKEN",
    "TWITTER_ACCESS_TOKEN_SECRET",
    "HTTP_PROXY",
];

fn command(args: &[&str]) -> Command {
    crate::support::init();
    let mut command = Command::new(BIN);
    command.args(args).kill_on_drop(true);
    for name in SETTINGS {
        command.env_remove(name);
    }
    command
        .env_remove("http_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy");
    command
}

async fn output(mut command: Command) -> Output {
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the binary finishes within 60 s")
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `tracardi-twitter validate` with the keys in the environment, against `url`.
fn validate(url: &str, keys: &Keys) -> Command {
    let mut command = command(&["validate", "--validate-timeout", "5s"]);
    command
        .env("TWITTER_API_URL", url)
        .env("TWITTER_API_KEY", &keys.api_key)
        .env("TWITTER_API_SECRET", &keys.api_secret)
        .env("TWITTER_ACCESS_TOKEN", &keys.access_token)
        .env("TWITTER_ACCESS_TOKEN_SECRET", &keys.access_token_secret);
    command
}

#[tokio::test]
async fn validate_exits_0_for_valid_keys() {
    let keys = Keys::unique("cliok");
    let fake = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read"),
        },
        &keys,
    )
    .await;
    let out = output(validate(&fake.url, &keys)).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("VALID"), "{stdout}");
    assert!(stdout.contains("@XDevelopers"), "{stdout}");
    assert!(stdout.contains("read_only_token"), "{stdout}");
    assert_eq!(fake.count(), 1);
    assert!(fake.received()[0].signature_ok);
    for secret in [&keys.api_secret, &keys.access_token_secret] {
        assert!(!stdout.contains(secret.as_str()) && !text(&out.stderr).contains(secret.as_str()));
    }
}

#[tokio::test]
async fn validate_takes_the_keys_from_flags_and_prints_json() {
    let keys = Keys::unique("cliflags");
    let fake = FakeX::with_keys(
        Scenario::Ok {
            access_level: Some("read-write"),
        },
        &keys,
    )
    .await;
    let out = output(command(&[
        "validate",
        "--json",
        "--twitter-api-url",
        &fake.url,
        "--x-api-key",
        &keys.api_key,
        "--x-api-secret",
        &keys.api_secret,
        "--x-access-token",
        &keys.access_token,
        "--x-access-token-secret",
        &keys.access_token_secret,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints the report");
    assert_eq!(report["valid"], true);
    assert_eq!(report["access_level"], "read-write");
}

#[tokio::test]
async fn validate_exits_1_for_refused_keys() {
    let keys = Keys::unique("clibad");
    let fake = FakeX::with_keys(Scenario::Unauthorized, &keys).await;
    let out = output(validate(&fake.url, &keys)).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("INVALID"), "{stdout}");
    assert!(stdout.contains("invalid_credentials"), "{stdout}");
}

#[tokio::test]
async fn validate_exits_2_when_x_cannot_be_reached() {
    let keys = Keys::unique("cliunreach");
    let out = output(validate(&FakeX::refusing_url(), &keys)).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("Could not decide"));
}

#[tokio::test]
async fn validate_exits_2_without_all_four_keys() {
    let keys = Keys::unique("climissing");
    let mut command = validate("http://127.0.0.1:9", &keys);
    command.env_remove("TWITTER_ACCESS_TOKEN_SECRET");
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--x-access-token-secret"),
        "{}",
        text(&out.stderr)
    );
}

/// X's keys have flags of their own: the service's `--api-key` is not one of them, and the
/// refusal points at the right one.
#[tokio::test]
async fn validate_names_x_s_keys_apart_from_the_service_s_api_key() {
    let out = output(command(&["validate", "--api-key", "k"])).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--x-api-key"), "{stderr}");
    let help = text(&output(command(&["validate", "--help"])).await.stdout);
    for flag in [
        "--x-api-key",
        "--x-api-secret",
        "--x-access-token",
        "--x-access-token-secret",
    ] {
        assert!(help.contains(flag), "validate --help lacks {flag}:\n{help}");
    }
}

/// `validate --json` prints what `POST /validate` answers, byte for byte as JSON, also when X
/// cannot be reached (the problem with its `code`) and when a key is missing (the 422 body).
#[tokio::test]
async fn validate_json_is_what_post_validate_answers_in_every_case() {
    let app = TestApp::spawn(&["--twitter-api-url", "http://127.0.0.1:9"]).await;
    let keys = Keys::unique("clijson");
    let four = serde_json::json!({
        "api_key": keys.api_key,
        "api_secret": keys.api_secret,
        "access_token": keys.access_token,
        "access_token_secret": keys.access_token_secret,
    });

    // X unreachable: 502 and its problem.
    let answered = app.validate(&four).await;
    assert_eq!(answered.status(), 502);
    let answered: serde_json::Value = answered.json().await.unwrap();
    let mut cli = validate("http://127.0.0.1:9", &keys);
    cli.arg("--json");
    let out = output(cli).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(printed, answered);
    assert_eq!(printed["code"], "x_unreachable");

    // A key missing: 422 and the form errors.
    let mut three = four.clone();
    three.as_object_mut().unwrap().remove("access_token_secret");
    let answered = app.validate(&three).await;
    assert_eq!(answered.status(), 422);
    let answered: serde_json::Value = answered.json().await.unwrap();
    let mut cli = validate("http://127.0.0.1:9", &keys);
    cli.arg("--json").env_remove("TWITTER_ACCESS_TOKEN_SECRET");
    let out = output(cli).await;
    assert_eq!(out.status.code(), Some(2));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    assert_eq!(printed, answered);
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_running_service_and_1_otherwise() {
    let app = TestApp::spawn(&[]).await;
    let out = output(command(&["healthcheck", &app.base_url])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = output(command(&["healthcheck", &FakeX::refusing_url()])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unhealthy"));
}

/// `healthcheck 127.0.0.1:20000` (no scheme) works; without an address it follows LISTEN_ADDR,
/// as the image's HEALTHCHECK does; an address it cannot use gets what to type.
#[tokio::test]
async fn healthcheck_takes_an_address_or_follows_listen_addr() {
    let app = TestApp::spawn(&[]).await;
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let out = output(command(&["healthcheck", &address])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let port = address.rsplit(':').next().unwrap();
    let mut follows = command(&["healthcheck"]);
    follows.env("LISTEN_ADDR", format!("0.0.0.0:{port}"));
    let out = output(follows).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = output(command(&["healthcheck", "ftp://127.0.0.1:21"])).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("like 127.0.0.1:20000"), "{stderr}");
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let data_dir = tempfile::tempdir().unwrap();
    let data_dir = data_dir.path().to_str().unwrap();
    for (args, setting) in [
        (vec!["--listen-addr", "nowhere"], "LISTEN_ADDR"),
        (vec!["--log-format", "xml"], "LOG_FORMAT"),
        (vec!["--validate-timeout", "soon"], "VALIDATE_TIMEOUT"),
        (vec!["--validate-cache-ttl", "0"], "VALIDATE_CACHE_TTL"),
        (vec!["--twitter-api-url", "api.x.com"], "TWITTER_API_URL"),
        (vec!["--api-key", "too-short"], "API_KEY"),
        (
            vec!["--trusted-proxies", "10.0.0.0/8, proxy.local"],
            "TRUSTED_PROXIES",
        ),
        (vec!["--plugin-body-limit", "16GB"], "PLUGIN_BODY_LIMIT"),
        (vec!["--plugin-body-limit", "1KiB"], "PLUGIN_BODY_LIMIT"),
        (vec!["--public-rate-burst", "0"], "PUBLIC_RATE_BURST"),
        (vec!["--metrics-addr", "nowhere"], "METRICS_ADDR"),
        (vec!["--metrics-public", "maybe"], "METRICS_PUBLIC"),
    ] {
        let mut argv = vec!["--data-dir", data_dir, "--listen-addr", "127.0.0.1:0"];
        if args[0] == "--listen-addr" {
            argv.truncate(2);
        }
        argv.extend(args.iter().copied());
        let out = output(command(&argv)).await;
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(setting), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // The same through the environment.
    let mut command = command(&["--data-dir", data_dir]);
    command.env("LISTEN_ADDR", "nowhere");
    let out = output(command).await;
    assert!(!out.status.success());
    assert_eq!(text(&out.stderr).lines().count(), 1);
    assert!(text(&out.stderr).contains("LISTEN_ADDR"));
}

#[tokio::test]
async fn help_lists_every_setting() {
    let out = output(command(&["--help"])).await;
    assert!(out.status.success());
    let help = text(&out.stdout);
    for setting in [
        "LISTEN_ADDR",
        "API_KEY",
        "DATA_DIR",
        "TWITTER_API_URL",
        "VALIDATE_TIMEOUT",
        "VALIDATE_CACHE_TTL",
        "LOG_FORMAT",
        "SECRET",
        "PORT_FILE",
        "METRICS_ADDR",
        "METRICS_PUBLIC",
    ] {
        assert!(
            help.contains(setting),
            "--help does not list {setting}:\n{help}"
        );
    }
    for command in ["validate", "healthcheck", "openapi"] {
        assert!(help.contains(command), "--help does not list {command}");
    }
    let out = output(command(&["validate", "--help"])).await;
    let help = text(&out.stdout);
    for setting in [
        "TWITTER_API_KEY",
        "TWITTER_API_SECRET",
        "TWITTER_ACCESS_TOKEN",
        "TWITTER_ACCESS_TOKEN_SECRET",
    ] {
        assert!(
            help.contains(setting),
            "validate --help does not list {setting}"
        );
    }
}

#[tokio::test]
async fn openapi_prints_the_generated_spec() {
    let out = output(command(&["openapi"])).await;
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let generated: serde_json::Value =
        serde_json::from_str(&tracardi_twitter::openapi().to_pretty_json().unwrap()).unwrap();
    assert_eq!(printed, generated);
}

/// Polls `/health` until the service answers, failing if it exits or the deadline passes.
async fn wait_until_healthy(child: &mut tokio::process::Child, base_url: &str) {
    let client = crate::support::client();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the service exited before it was healthy: {status}");
        }
        let healthy = client
            .get(format!("{base_url}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if healthy {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service was not healthy within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `tracardi-twitter` started on 127.0.0.1:0, with the port it picked (`--port-file`).
struct Running {
    child: tokio::process::Child,
    base_url: String,
    port_file: std::path::PathBuf,
    _port_dir: tempfile::TempDir,
}

/// Starts `tracardi-twitter` with only DATA_DIR, LISTEN_ADDR=127.0.0.1:0 and PORT_FILE (plus
/// `env`), and waits until it is healthy at the port it wrote.
async fn start(data_dir: &str, env: &[(&str, &str)]) -> Running {
    let port_dir = tempfile::tempdir().unwrap();
    let port_file = port_dir.path().join("port");
    let mut command = command(&["--port-file", port_file.to_str().unwrap()]);
    command
        .env("DATA_DIR", data_dir)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .env("TWITTER_API_URL", "http://127.0.0.1:9")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("the binary starts");
    let port = crate::support::port_from_file(&port_file, || {
        child.try_wait().unwrap().map(|status| status.to_string())
    })
    .await;
    let base_url = format!("http://127.0.0.1:{port}");
    wait_until_healthy(&mut child, &base_url).await;
    Running {
        child,
        base_url,
        port_file,
        _port_dir: port_dir,
    }
}

/// Stops it with SIGTERM and returns its exit status and standard error.
async fn stop(running: Running) -> (std::process::ExitStatus, String) {
    let pid = running.child.id().expect("a running child").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("the kill command (procps) is needed to send SIGTERM");
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(20), running.child.wait_with_output())
        .await
        .expect("the service stops within 20 s of SIGTERM")
        .unwrap();
    (out.status, text(&out.stderr))
}

/// Starts the service, waits until it is healthy, stops it with SIGTERM: its exit status and
/// standard error.
async fn serve_once(data_dir: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    stop(start(data_dir, env).await).await
}

#[cfg(unix)]
#[tokio::test]
async fn serve_runs_without_configuration_keeps_its_keys_and_stops_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();

    let (status, stderr) = serve_once(dir, &[]).await;
    assert!(
        status.success(),
        "SIGTERM is a clean stop: {status}\n{stderr}"
    );
    assert!(stderr.contains("generated a new API key"), "{stderr}");
    assert!(!stderr.contains("SECRET is shorter"), "{stderr}");
    let keys_file = std::fs::read_dir(data_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("api_key")))
        .expect("a file with the generated keys in DATA_DIR");
    let mode = std::fs::metadata(&keys_file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "{} is readable by others: {mode:o}",
        keys_file.display()
    );
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keys_file).unwrap()).unwrap();
    let api_key = stored["api_key"].as_str().unwrap().to_owned();
    let secret = stored["secret"].as_str().unwrap().to_owned();
    assert!(api_key.len() >= 32);
    assert!(
        !stderr.contains(&api_key) && !stderr.contains(&secret),
        "a key was logged"
    );

    // The second start reuses the stored keys.
    let (status, stderr) = serve_once(dir, &[]).await;
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("generated a new API key"), "{stderr}");
    assert!(stderr.contains("API key and secret read from"), "{stderr}");
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&keys_file).unwrap()).unwrap();
    assert_eq!(again, stored);
}

/// A short SECRET (it signs the tokens and the connect state) is warned about at start, without
/// being shown.
#[cfg(unix)]
#[tokio::test]
async fn a_short_secret_is_warned_about() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let short = "short-secret-7f3a";
    let (status, stderr) = serve_once(
        dir,
        &[
            ("API_KEY", "an-api-key-that-is-long-enough-0123456789"),
            ("SECRET", short),
        ],
    )
    .await;
    assert!(status.success(), "{stderr}");
    let warning = stderr
        .lines()
        .find(|line| line.contains("SECRET is shorter than 32 characters"))
        .unwrap_or_else(|| panic!("no warning about the short SECRET:\n{stderr}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(!stderr.contains(short), "the secret was logged");
}

/// `API_KEY` alone (what a Docker user puts in `.env`): the key the service accepts is the one
/// in `service-keys.json` and the one the log points at; the secret generated beside it is kept
/// across restarts; a different `API_KEY` later wins, and the log says so once.
#[cfg(unix)]
#[tokio::test]
async fn api_key_alone_is_the_key_in_the_file_and_the_one_accepted() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let keys_file = data_dir.path().join("service-keys.json");
    let stored = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&keys_file).unwrap()).unwrap()
    };
    let client = crate::support::client();
    let token = |base_url: String, key: &str| {
        let request = client.get(format!("{base_url}/api-key/{key}"));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "the key in the file is accepted");
            response.json::<serde_json::Value>().await.unwrap()["access_token"].clone()
        }
    };
    let key = "a-docker-env-api-key-0123456789abcdef-xyz";

    let running = start(dir, &[("API_KEY", key)]).await;
    assert_eq!(stored()["api_key"], key, "the file holds the key in force");
    let first_token = token(running.base_url.clone(), key).await;
    let (status, stderr) = stop(running).await;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("API key from API_KEY, secret newly generated"),
        "{stderr}"
    );
    let secret = stored()["secret"].as_str().unwrap().to_owned();
    assert!(
        !stderr.contains(key) && !stderr.contains(&secret),
        "a key was logged"
    );

    // Restarted the same way: same secret, so the token Tracardi holds still works.
    let running = start(dir, &[("API_KEY", key)]).await;
    assert_eq!(token(running.base_url.clone(), key).await, first_token);
    let (_, stderr) = stop(running).await;
    assert!(!stderr.contains("wins"), "{stderr}");

    // A different API_KEY: it wins, the file follows, and the log says so on one line.
    let other = "another-docker-env-api-key-0123456789abcdef";
    let running = start(dir, &[("API_KEY", other)]).await;
    token(running.base_url.clone(), other).await;
    assert_eq!(stored()["api_key"], other);
    assert_eq!(stored()["secret"], secret.as_str());
    let (_, stderr) = stop(running).await;
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("API_KEY wins"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(said[0].contains("WARN"), "{}", said[0]);
}

/// The port race of tests that picked a "free" port for the binary: it now binds port 0 itself,
/// writes the port it got to `--port-file` once it answers, logs that address (not `:0`), and
/// removes the file when it stops.
#[cfg(unix)]
#[tokio::test]
async fn the_port_file_names_the_port_the_service_answers_on() {
    let data_dir = tempfile::tempdir().unwrap();
    let running = start(data_dir.path().to_str().unwrap(), &[]).await;
    let port_file = running.port_file.clone();
    let written = std::fs::read_to_string(&port_file).unwrap();
    let address = running.base_url.trim_start_matches("http://").to_owned();
    assert!(address.ends_with(&format!(":{}", written.trim())));
    assert_ne!(written.trim(), "0");
    let (status, stderr) = stop(running).await;
    assert!(status.success(), "{stderr}");
    let listening = stderr
        .lines()
        .find(|l| l.contains("tracardi-twitter listening"))
        .unwrap_or_else(|| panic!("no listening line:\n{stderr}"));
    assert!(listening.contains(&address), "{listening}");
    assert!(!port_file.exists(), "the port file outlived the service");
}
