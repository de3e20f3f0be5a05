//! Logging set-up: human-readable text or JSON lines, formatted by `tracing_subscriber`.
//!
//! `main` writes through `tracing_appender`'s non-blocking writer ([`stderr_writer`]): a worker
//! thread that logs hands its line to a background thread and moves on, so a slow log pipe never
//! blocks a request (lines past the writer's bounded queue are dropped and counted, not waited
//! for).

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;

/// `RUST_LOG` refines the level; the default shows this service's info lines and others' warnings.
fn filter() -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,tracardi_twitter=info"))
}

/// Installs the global subscriber, writing to `writer`. Returns false if a subscriber was
/// already set.
pub fn init<W>(format: LogFormat, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // Colour codes only for a person at a terminal, not in log files or `docker logs`.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_ansi(ansi)
        .with_writer(writer);
    match format {
        // `name=value` fields as the default formatter writes them, without its ANSI styling of
        // each field name: that styling costs about 3 400 instructions per line even when
        // colours are off (BENCHMARKS.md), a third of the access line.
        LogFormat::Text if !ansi => builder
            .fmt_fields(
                tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
                    if field.name() == "message" {
                        write!(writer, "{value:?}")
                    } else {
                        write!(writer, "{field}={value:?}")
                    }
                })
                .delimited(" "),
            )
            .try_init()
            .is_ok(),
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
            .is_ok(),
    }
}

/// Standard error behind `tracing_appender`'s non-blocking writer. Lines still queued are written
/// when the returned guard is dropped: `main` keeps it until it exits.
///
/// The writer's thread flushes each time it has emptied its queue, so a `BufWriter` in between
/// turns the lines queued meanwhile into one `write` instead of one per line (under load, most of
/// what a log line costs).
pub fn stderr_writer() -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking(std::io::BufWriter::with_capacity(
        64 * 1024,
        std::io::stderr(),
    ))
}
