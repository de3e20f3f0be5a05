//! Slow clients do not hold the service: headers must arrive in time, and a whole request
//! (its body included) must finish within REQUEST_TIMEOUT.

use crate::support::TestApp;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn connect(app: &TestApp) -> tokio::net::TcpStream {
    let addr = app.base_url.trim_start_matches("http://");
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// Reads until the server closes the connection, failing the test after `limit`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes a slow connection")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_that_trickles_in_gets_408() {
    let app = TestApp::spawn(&["--request-timeout", "1s", "--validate-timeout", "500ms"]).await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"api_key\"",
        app.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    app.shutdown().await;
}

#[tokio::test]
async fn headers_that_never_end_are_cut_off() {
    let app = TestApp::spawn(&["--header-read-timeout", "1s"]).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // HEADER_READ_TIMEOUT is 1 s; the connection must not stay open much longer.
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_cut_off() {
    let app = TestApp::spawn(&["--header-read-timeout", "1s"]).await;
    let mut stream = connect(&app).await;
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(answer, "");
    app.shutdown().await;
}

#[tokio::test]
async fn idle_kept_alive_connections_are_cut_off() {
    let app = TestApp::spawn(&["--header-read-timeout", "1s"]).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.shutdown().await;
}

#[tokio::test]
async fn idle_connections_are_closed_when_the_server_stops() {
    let app = TestApp::spawn(&[]).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // The connection is now idle (kept alive). Stopping must close it well before the idle
    // timer would (HEADER_READ_TIMEOUT, 10 s by default): shutdown() allows 10 s in all.
    app.shutdown().await;
    let rest = read_until_closed(&mut stream, Duration::from_secs(1)).await;
    assert!(rest.contains("\r\n\r\n"), "the rest of the answer: {rest}");
}

#[test]
fn request_timeout_must_exceed_validate_timeout() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: tracardi_twitter::config::ServeArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::try_parse_from([
        "x",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--request-timeout",
        "5s",
        "--validate-timeout",
        "10s",
    ])
    .unwrap();
    assert_eq!(cli.serve.check().unwrap_err().setting, "REQUEST_TIMEOUT");
}
