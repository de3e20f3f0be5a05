//! Headless Chromium for tests that click through pages as a visitor would: Debian's
//! `chromium` driven over WebDriver by Debian's `chromium-driver`, through `fantoccini`.
//!
//! ```ignore
//! let Some(browser) = Browser::start().await else { return }; // skipped: not installed
//! browser.goto(&app.url("/authorize?flow=oauth1")).await;
//! browser.click("#approve").await;
//! browser.wait_for_text("connected").await;
//! assert!(browser.url().await.starts_with(&app.base_url));
//! browser.close().await;
//! ```
//!
//! Outside CI a machine without the packages skips the test with a message saying what to
//! install; with `CI` set it fails instead, because `.ci/run` installs them. Every wait has a
//! deadline ([`WAIT`]) and says what it waited for when it runs out.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a wait for a page, an element, a text or a URL lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// How long chromedriver gets to answer `/status` as ready.
const DRIVER_START: Duration = Duration::from_secs(30);

/// Chromium's flags (the machine notes): headless as root, and nothing that reaches out to the
/// network on its own; no proxy, so that only the addresses a test opens are ever contacted.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--window-size=1280,900",
];

/// A headless Chromium session with its own chromedriver and its own empty profile.
pub struct Browser {
    client: Option<Client>,
    driver: tokio::process::Child,
    /// The profile (`--user-data-dir`) and chromedriver's log, removed with the browser.
    _dir: TempDir,
}

/// Whether this run is CI's (`CI` set to anything but "", "0" or "false").
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

impl Browser {
    /// Starts chromedriver on a 127.0.0.1 port of its own and a headless Chromium session.
    ///
    /// `None`, after printing `skipped: install chromium chromium-driver`, when either program
    /// is missing and `CI` is not set; with `CI` set a missing program fails the test. Fails
    /// the test when the programs are there but do not start.
    pub async fn start() -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let missing = missing.join(" and ");
            assert!(
                !in_ci(),
                "{missing} not found under CI: .ci/run installs Debian's chromium and chromium-driver"
            );
            println!(
                "skipped: install chromium chromium-driver (apt-get install -y chromium chromium-driver); {missing} not found"
            );
            return None;
        }
        crate::support::init();
        // A driver or a session that does not come up (a loaded machine) is tried again.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::launch().await {
                Ok(browser) => return Some(browser),
                Err(e) => last_error = e,
            }
        }
        panic!("headless Chromium did not start: {last_error}");
    }

    async fn launch() -> Result<Browser, String> {
        let dir = tempfile::Builder::new()
            .prefix("browser-test-")
            .tempdir()
            .map_err(|e| format!("a temporary directory: {e}"))?;
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).map_err(|e| format!("the profile directory: {e}"))?;
        let log = dir.path().join("chromedriver.log");
        // Port 0: chromedriver binds a port the system picks and says which; no port is
        // picked here, released, and possibly taken by someone else before it binds.
        let mut driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {CHROMEDRIVER}: {e}"))?;
        let stdout = driver.stdout.take().expect("a piped stdout");
        let port = match tokio::time::timeout(DRIVER_START, driver_port(stdout)).await {
            Ok(Ok(port)) => port,
            Ok(Err(e)) => {
                let _ = driver.kill().await;
                return Err(format!("{e}; chromedriver's log: {}", read_log(&log)));
            }
            Err(_) => {
                let _ = driver.kill().await;
                return Err(format!(
                    "chromedriver named no port within {DRIVER_START:?}"
                ));
            }
        };
        let driver_url = format!("http://127.0.0.1:{port}");
        if let Err(e) = wait_until_ready(&mut driver, &driver_url).await {
            let _ = driver.kill().await;
            return Err(format!("{e}; chromedriver's log: {}", read_log(&log)));
        }

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "timeouts": {"pageLoad": WAIT.as_millis() as u64, "script": WAIT.as_millis() as u64, "implicit": 0},
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match tokio::time::timeout(
            DRIVER_START,
            ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&driver_url),
        )
        .await
        {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                let _ = driver.kill().await;
                return Err(format!(
                    "a Chromium session: {e}; chromedriver's log: {}",
                    read_log(&log)
                ));
            }
            Err(_) => {
                let _ = driver.kill().await;
                return Err(format!(
                    "no Chromium session within {DRIVER_START:?}; chromedriver's log: {}",
                    read_log(&log)
                ));
            }
        };
        Ok(Browser {
            client: Some(client),
            driver,
            _dir: dir,
        })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) {
        self.client()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// Clicks the element that the CSS selector finds (e.g. `#approve`), waiting up to [`WAIT`]
    /// for it to appear. A navigation the click starts is followed: wait for its result with
    /// [`Browser::wait_for_text`] or [`Browser::wait_for_url`].
    pub async fn click(&self, css: &str) {
        let found = self
            .client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await;
        let element = match found {
            Ok(element) => element,
            Err(e) => panic!(
                "no element {css} within {WAIT:?} ({e}) on {}",
                self.describe().await
            ),
        };
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }

    /// The text of the page as it shows (`document.body.innerText`).
    pub async fn text(&self) -> String {
        let body = self
            .client()
            .find(Locator::Css("body"))
            .await
            .unwrap_or_else(|e| panic!("the page has no body: {e}"));
        body.text()
            .await
            .unwrap_or_else(|e| panic!("reading the page's text: {e}"))
    }

    /// The page's HTML, as the browser now has it.
    pub async fn source(&self) -> String {
        self.client()
            .source()
            .await
            .unwrap_or_else(|e| panic!("reading the page's source: {e}"))
    }

    /// The URL of the page the browser shows.
    pub async fn url(&self) -> String {
        self.client()
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("reading the current URL: {e}"))
            .to_string()
    }

    /// Waits up to [`WAIT`] until the page's text contains `needle`, and returns the text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            // A page being replaced has no body for a moment: try again.
            if let Ok(body) = self.client().find(Locator::Css("body")).await
                && let Ok(text) = body.text().await
                && text.contains(needle)
            {
                return text;
            }
            if Instant::now() >= deadline {
                panic!(
                    "no text {needle:?} within {WAIT:?} on {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits up to [`WAIT`] until the browser's URL satisfies `ready`, and returns it.
    pub async fn wait_for_url(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(url) = self.client().current_url().await
                && ready(url.as_str())
            {
                return url.to_string();
            }
            if Instant::now() >= deadline {
                panic!(
                    "the URL is not {what} within {WAIT:?}: {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the page, written to `path` (to look at when a test fails).
    pub async fn screenshot(&self, path: &Path) {
        let png = self
            .client()
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("taking a screenshot: {e}"));
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The URL and text of the current page, for a failure message.
    async fn describe(&self) -> String {
        let url = match self.client().current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(no URL: {e})"),
        };
        let text = match self.client().find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(e) => format!("(no body: {e})"),
        };
        format!("{url} showing {text:?}")
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(WAIT, client.close()).await;
        }
        let _ = self.driver.kill().await;
    }
}

impl Drop for Browser {
    /// A test that failed before `close`: Chromium (chromedriver's child, which would outlive
    /// its driver) is asked to quit, and chromedriver is killed.
    fn drop(&mut self) {
        if self.client.is_some()
            && let Some(driver) = self.driver.id()
        {
            for chromium in children_of(driver) {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &chromium.to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let _ = self.driver.start_kill();
    }
}

/// The processes whose parent is `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: the name may hold spaces and parentheses.
            let after_name = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after_name.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

/// Reads chromedriver's standard output until it names the port it bound ("ChromeDriver was
/// started successfully on port 35529."), then drains the rest in the background so that the
/// driver never blocks on a full pipe.
async fn driver_port(stdout: tokio::process::ChildStdout) -> Result<u16, String> {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        if let Some((_, port)) = line.split_once("started successfully on port ") {
            let port = port
                .trim()
                .trim_end_matches('.')
                .parse()
                .map_err(|_| format!("chromedriver named no port we can read: {line}"))?;
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(port);
        }
    }
    Err("chromedriver ended its output without naming its port".to_owned())
}

/// Polls chromedriver's `/status` until it says ready, it exits, or [`DRIVER_START`] passes.
async fn wait_until_ready(driver: &mut tokio::process::Child, url: &str) -> Result<(), String> {
    let client = crate::support::client();
    let deadline = Instant::now() + DRIVER_START;
    loop {
        if let Some(status) = driver.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("chromedriver exited with {status}"));
        }
        if let Ok(response) = client
            .get(format!("{url}/status"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && let Ok(body) = response.json::<serde_json::Value>().await
            && body["value"]["ready"] == true
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("chromedriver not ready within {DRIVER_START:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read_log(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    // The end is what explains a failure.
    let start = log.len().saturating_sub(4000);
    let start = (start..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(log.len());
    log[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::response::Html;
    use axum::routing::get;

    /// A page with a link, served on 127.0.0.1: the browser opens it, clicks the link, and
    /// reads the page it leads to.
    #[tokio::test]
    async fn clicks_a_link_and_reads_the_next_page() {
        let Some(browser) = Browser::start().await else {
            return;
        };
        let app = Router::new()
            .route(
                "/",
                get(|| async {
                    Html("<!DOCTYPE html><title>Start</title><p>Start page</p><a id=\"next\" href=\"/next?x=1&amp;y=2\">Next</a>")
                }),
            )
            .route(
                "/next",
                get(|| async { Html("<!DOCTYPE html><title>Next</title><h1>You arrived</h1>") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        browser.goto(&format!("{base}/")).await;
        assert_eq!(browser.url().await, format!("{base}/"));
        assert!(browser.text().await.contains("Start page"));
        assert!(browser.source().await.contains("id=\"next\""));

        browser.click("#next").await;
        let url = browser
            .wait_for_url("the next page", |u| u.contains("/next"))
            .await;
        assert_eq!(url, format!("{base}/next?x=1&y=2"));
        assert_eq!(browser.wait_for_text("You arrived").await, "You arrived");

        let shot = tempfile::tempdir().unwrap();
        let png = shot.path().join("next.png");
        browser.screenshot(&png).await;
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");

        browser.close().await;
        server.abort();
    }
}
