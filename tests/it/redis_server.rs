//! A Redis server of the test's own: Debian's `/usr/bin/redis-server` on a free 127.0.0.1 port,
//! writing its append-only file (fsync'd on every write) into a temporary directory. Never the
//! machine's shared Redis.
//!
//! Outside CI a machine without the program skips the test with a message saying what to
//! install; with `CI` set it fails instead, because `.ci/run` installs it.

use crate::support::free_port;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tempfile::TempDir;

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// How long a started server gets to answer PING.
const START: Duration = Duration::from_secs(20);

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// Settings given after the durable defaults (a later one wins).
    extra: Vec<String>,
}

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

impl RedisServer {
    /// `None`, after printing `skipped: ...`, when redis-server is missing and `CI` is not set.
    pub async fn start() -> Option<RedisServer> {
        Self::start_with(&[]).await
    }

    /// [`RedisServer::start`] with settings of the test's, e.g. `["--appendonly", "no"]`.
    pub async fn start_with(extra: &[&str]) -> Option<RedisServer> {
        if !std::path::Path::new(REDIS_SERVER).exists() {
            assert!(
                !under_ci(),
                "{REDIS_SERVER} not found under CI: .ci/run installs Debian's redis-server"
            );
            eprintln!(
                "skipped: install redis-server (apt-get install -y redis-server); {REDIS_SERVER} not found"
            );
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("a directory for Redis's files"),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.restart().await;
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again, after [`RedisServer::kill`]) on the same port and files.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server runs already");
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + START;
        loop {
            if self.ping().await {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not answer PING on port {} within {START:?}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
            return false;
        };
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_ok()
    }

    /// `kill -9`: whatever Redis acknowledged must be in its append-only file.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
