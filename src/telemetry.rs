//! Logging set-up: human-readable text or JSON lines, on standard error.

mod access_line;

pub use access_line::{AccessRecord, is_plain, log_access};

use crate::config::LogFormat;
use access_line::{AccessSink, Layout, LineStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// `RUST_LOG` refines the level; the default shows this service's info lines and others' warnings.
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,tracardi_twitter=info"))
}

/// Installs the global subscriber, writing to `writer`, and the access line's writer (the same
/// one, in the same format; see [`log_access`]). Returns false if a subscriber was already set.
pub fn init<W>(format: LogFormat, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    // Colour codes only for a person at a terminal, not in log files or `docker logs`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(ansi)
        .with_writer(writer.clone());
    let installed = match format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
            .is_ok(),
    };
    // The filter is fixed from here on, so asking it once is enough.
    if installed && tracing::enabled!(target: access_line::TARGET, tracing::Level::INFO) {
        let sink = AccessSink {
            layout: Layout::new(LineStyle { format, ansi }),
            write: Box::new(move |line| {
                let _ = std::io::Write::write_all(&mut writer.make_writer(), line);
            }),
        };
        let _ = access_line::SINK.set(sink);
    }
    installed
}

/// Log lines are gathered in memory and written to standard error in batches, by a background
/// thread every [`FLUSH_EVERY`] (or at once past 64 KiB): one `write` per batch instead of one
/// per line, which is most of what a log line costs. A `kill -9` can lose the last batch;
/// [`flush`] writes what is pending (main calls it before exiting).
#[derive(Clone, Copy)]
pub struct BatchedStderr;

/// How often pending log lines are written out.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
const FLUSH_AT: usize = 64 * 1024;

static PENDING: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

impl BatchedStderr {
    /// Starts the flushing thread and returns the writer for [`init`].
    pub fn start() -> Self {
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                }
            })
            .expect("starting the log flush thread");
        BatchedStderr
    }
}

/// Writes every pending log line to standard error.
pub fn flush() {
    // Standard error is locked before the batch is taken: two threads flushing at once (the
    // flush thread and a writer past `FLUSH_AT`) then write their batches in the order taken.
    let mut stderr = std::io::stderr().lock();
    let batch = {
        let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            return;
        }
        // The next batch starts with room for a full one: grown from empty, it would be copied
        // again at every doubling.
        std::mem::replace(&mut *pending, Vec::with_capacity(FLUSH_AT + FLUSH_AT / 8))
    };
    let _ = std::io::Write::write_all(&mut stderr, &batch);
}

impl std::io::Write for BatchedStderr {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut pending = PENDING.lock().unwrap_or_else(|p| p.into_inner());
            pending.extend_from_slice(line);
            pending.len() >= FLUSH_AT
        };
        if full {
            flush();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        flush();
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for BatchedStderr {
    type Writer = BatchedStderr;

    fn make_writer(&'w self) -> Self::Writer {
        BatchedStderr
    }
}
