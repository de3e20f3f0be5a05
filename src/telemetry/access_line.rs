//! The access line, one per request, formatted by hand.
//!
//! Every request logs one line (method, matched route, status, latency, request id). Through
//! `tracing` and `tracing_subscriber::fmt` that line cost about 2 µs per request (the filter
//! check, building the event, visiting its fields, formatting the timestamp and each value
//! through `fmt::Write`), as much as the rest of the stack together: `GET /resource` ran at 0.76
//! of a bare handler's throughput (BENCHMARKS.md). Here the line is written straight into a
//! per-thread buffer with the date part of the timestamp cached for the second, then handed to
//! the same writer as every other log line, in the same format byte for byte (a test compares it
//! with what `tracing_subscriber` writes for the same event). Whether it is written is decided
//! once, at start, by the same `RUST_LOG` filter (target [`TARGET`], level INFO).

use crate::config::LogFormat;
use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The target the line is logged under, as if by `tracing` from the access-log module: the
/// `RUST_LOG` directive `tracardi_twitter::http::access_log=warn` silences it.
pub const TARGET: &str = "tracardi_twitter::http::access_log";

/// What one request's line says. The text values are written as they are, so they must be
/// [plain](is_plain): they are by where they come from (HTTP methods are tokens, route templates
/// are ours and checked when the router is built, request ids are checked or generated); debug
/// builds assert it.
pub struct AccessRecord<'a> {
    pub method: &'a str,
    /// The matched route template, never the raw path.
    pub route: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub request_id: &'a str,
}

/// Printable ASCII without `"` or `\`: what needs no escaping in a JSON string, in Rust's
/// `Debug` of a string, or unquoted in the text format.
pub fn is_plain(value: &str) -> bool {
    value
        .bytes()
        .all(|b| matches!(b, b' '..=b'~') && b != b'"' && b != b'\\')
}

/// How lines look: the same settings as the subscriber's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LineStyle {
    pub format: LogFormat,
    /// Terminal colours, as `tracing_subscriber` writes them (text format only).
    pub ansi: bool,
}

/// Writes one whole line to the log's destination.
pub(super) type WriteLine = Box<dyn Fn(&[u8]) + Send + Sync>;

/// Where access lines go, set once by `telemetry::init` when the filter lets them through.
pub(super) struct AccessSink {
    pub layout: Layout,
    pub write: WriteLine,
}

pub(super) static SINK: OnceLock<AccessSink> = OnceLock::new();

/// Logs one request's line, if access lines are enabled.
pub fn log_access(record: &AccessRecord<'_>) {
    let Some(sink) = SINK.get() else { return };
    let since_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    LINE.with(|line| {
        // Never re-entered (the writer does not log), but a log line is not worth a panic.
        let Ok(mut line) = line.try_borrow_mut() else {
            return;
        };
        let LineBuffer { bytes, clock } = &mut *line;
        bytes.clear();
        write_line(bytes, &sink.layout, clock.timestamp(since_epoch), record);
        (sink.write)(bytes);
    });
}

thread_local! {
    static LINE: RefCell<LineBuffer> = RefCell::new(LineBuffer {
        bytes: Vec::with_capacity(256),
        clock: Clock::default(),
    });
}

struct LineBuffer {
    bytes: Vec<u8>,
    clock: Clock,
}

/// RFC 3339 timestamps in UTC with microseconds, as `tracing_subscriber`'s default timer
/// writes them (`2026-11-28T20:45:59.123456Z`); the part up to the second is formatted once per
/// second.
#[derive(Default)]
pub(super) struct Clock {
    second: Option<u64>,
    /// `YYYY-MM-DDTHH:MM:SS.` of `second`.
    prefix: [u8; 20],
}

/// The last second of year 9999: the four-digit year format holds up to there.
const LAST_SECOND: u64 = 253_402_300_799;

impl Clock {
    /// The timestamp of a moment, given as the time since the Unix epoch.
    pub(super) fn timestamp(&mut self, since_epoch: Duration) -> Timestamp<'_> {
        let second = since_epoch.as_secs().min(LAST_SECOND);
        if self.second != Some(second) {
            self.prefix = date_time_prefix(second);
            self.second = Some(second);
        }
        Timestamp {
            prefix: &self.prefix,
            micros: since_epoch.subsec_micros(),
        }
    }
}

/// A timestamp ready to be written.
pub(super) struct Timestamp<'a> {
    prefix: &'a [u8; 20],
    micros: u32,
}

impl Timestamp<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.prefix);
        push_padded(out, u64::from(self.micros), 6);
        out.push(b'Z');
    }
}

/// `YYYY-MM-DDTHH:MM:SS.` for seconds since the Unix epoch (UTC, up to year 9999).
fn date_time_prefix(second: u64) -> [u8; 20] {
    let (year, month, day) = civil_from_days(second / 86_400);
    let of_day = second % 86_400;
    let mut text = Vec::with_capacity(20);
    push_padded(&mut text, year, 4);
    text.push(b'-');
    push_padded(&mut text, month, 2);
    text.push(b'-');
    push_padded(&mut text, day, 2);
    text.push(b'T');
    push_padded(&mut text, of_day / 3600, 2);
    text.push(b':');
    push_padded(&mut text, of_day / 60 % 60, 2);
    text.push(b':');
    push_padded(&mut text, of_day % 60, 2);
    text.push(b'.');
    text.try_into().expect("20 bytes for years up to 9999")
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468; // days since 0000-03-01
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// The constant text between a line's values, for one [`LineStyle`]: the layout of
/// `tracing_subscriber::fmt`'s default (`Full`) and JSON (`flatten_event(true)`) formats for the
/// event `info!(method = %m, route, status, latency_ms = %ms, request_id, "request")`. Built once,
/// so that a line is a handful of copies.
pub(super) struct Layout {
    before_timestamp: String,
    before_method: String,
    before_route: String,
    before_status: String,
    before_latency: String,
    before_request_id: String,
    end: String,
}

impl Layout {
    pub(super) fn new(style: LineStyle) -> Layout {
        match style.format {
            LogFormat::Json => Layout {
                before_timestamp: r#"{"timestamp":""#.into(),
                before_method: r#"","level":"INFO","message":"request","method":""#.into(),
                before_route: r#"","route":""#.into(),
                before_status: r#"","status":"#.into(),
                before_latency: r#","latency_ms":""#.into(),
                before_request_id: r#"","request_id":""#.into(),
                end: format!("\",\"target\":\"{TARGET}\"}}\n"),
            },
            LogFormat::Text => {
                // `nu_ansi_term`'s codes as `tracing_subscriber` uses them: dimmed timestamp,
                // target and separators, green level, italic field names.
                let (dim, green, italic, reset) = if style.ansi {
                    ("\x1b[2m", "\x1b[32m", "\x1b[3m", "\x1b[0m")
                } else {
                    ("", "", "", "")
                };
                let field = |name: &str| format!(" {italic}{name}{reset}{dim}={reset}");
                Layout {
                    before_timestamp: dim.into(),
                    before_method: format!(
                        "{reset} {green} INFO{reset} {dim}{TARGET}{reset}{dim}:{reset} request{}",
                        field("method")
                    ),
                    before_route: format!("{}\"", field("route")),
                    before_status: format!("\"{}", field("status")),
                    before_latency: field("latency_ms"),
                    before_request_id: format!("{}\"", field("request_id")),
                    end: "\"\n".into(),
                }
            }
        }
    }
}

/// The whole line, newline included.
pub(super) fn write_line(
    out: &mut Vec<u8>,
    layout: &Layout,
    timestamp: Timestamp<'_>,
    record: &AccessRecord<'_>,
) {
    debug_assert!(
        [record.method, record.route, record.request_id]
            .iter()
            .all(|value| is_plain(value)),
        "a value of the access line needs escaping"
    );
    out.extend_from_slice(layout.before_timestamp.as_bytes());
    timestamp.write(out);
    out.extend_from_slice(layout.before_method.as_bytes());
    out.extend_from_slice(record.method.as_bytes());
    out.extend_from_slice(layout.before_route.as_bytes());
    out.extend_from_slice(record.route.as_bytes());
    out.extend_from_slice(layout.before_status.as_bytes());
    push_padded(out, u64::from(record.status), 1);
    out.extend_from_slice(layout.before_latency.as_bytes());
    push_millis(out, record.latency);
    out.extend_from_slice(layout.before_request_id.as_bytes());
    out.extend_from_slice(record.request_id.as_bytes());
    out.extend_from_slice(layout.end.as_bytes());
}

/// Milliseconds with two decimals (`{:.2}` of the float), from whole microseconds: `1.23`.
fn push_millis(out: &mut Vec<u8>, latency: Duration) {
    // Rounded to the nearest hundredth, as `{:.2}` does (up to its ties-to-even on exact .005).
    let hundredths = (latency.as_micros() as u64 + 5) / 10;
    push_padded(out, hundredths / 100, 1);
    out.push(b'.');
    push_padded(out, hundredths % 100, 2);
}

/// `value` in decimal, left-padded with zeros to at least `width` digits (at most 20).
fn push_padded(out: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start.min(digits.len() - width)..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    fn text(bytes: &[u8]) -> &str {
        std::str::from_utf8(bytes).expect("UTF-8")
    }

    #[test]
    fn numbers_are_padded() {
        let cases = [
            (0, 1, "0"),
            (7, 2, "07"),
            (200, 1, "200"),
            (2026, 4, "2026"),
        ];
        for (value, width, expected) in cases {
            let mut out = Vec::new();
            push_padded(&mut out, value, width);
            assert_eq!(text(&out), expected);
        }
        let mut out = Vec::new();
        push_padded(&mut out, u64::MAX, 1);
        assert_eq!(text(&out), u64::MAX.to_string());
    }

    #[test]
    fn milliseconds_match_two_decimal_formatting() {
        for micros in [0u64, 4, 5, 6, 994, 995, 1_000, 12_345, 99_999, 1_234_567] {
            let latency = Duration::from_micros(micros);
            let mut out = Vec::new();
            push_millis(&mut out, latency);
            let expected = format!("{:.2}", micros as f64 / 1000.0);
            // `{:.2}` rounds ties to even on the binary value; only exact ties may differ.
            if micros % 10 != 5 {
                assert_eq!(text(&out), expected, "{micros} µs");
            }
        }
    }

    #[test]
    fn dates_agree_with_an_independent_calendar() {
        // httpdate formats IMF-fixdate (`Sat, 28 Nov 2026 20:45:59 GMT`) with its own code.
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut second = 0u64;
        while second < LAST_SECOND {
            let time = SystemTime::UNIX_EPOCH + Duration::from_secs(second);
            let http = httpdate::fmt_http_date(time);
            let [_, day, month, year, clock, _]: [&str; 6] = http
                .split(' ')
                .collect::<Vec<_>>()
                .try_into()
                .expect("IMF-fixdate has six parts");
            let month = months.iter().position(|m| *m == month).unwrap() + 1;
            let expected = format!("{year}-{month:02}-{day}T{clock}.");
            assert_eq!(text(&date_time_prefix(second)), expected, "second {second}");
            // Steps that land on every kind of day (month ends, leap days, century years).
            second += 86_400 * 7 + 3_601 * 5 + 17;
        }
        assert_eq!(text(&date_time_prefix(0)), "1970-01-01T00:00:00.");
        assert_eq!(text(&date_time_prefix(951_782_400)), "2000-02-29T00:00:00.");
        assert_eq!(text(&date_time_prefix(LAST_SECOND)), "9999-12-31T23:59:59.");
    }

    #[test]
    fn the_clock_reformats_only_when_the_second_changes() {
        let mut clock = Clock::default();
        let mut stamp = |since_epoch| {
            let mut out = Vec::new();
            clock.timestamp(since_epoch).write(&mut out);
            String::from_utf8(out).unwrap()
        };
        let second = 1_795_898_759;
        assert_eq!(
            stamp(Duration::new(second, 123_456_789)),
            "2026-11-28T20:45:59.123456Z"
        );
        assert_eq!(
            stamp(Duration::new(second, 999_999_999)),
            "2026-11-28T20:45:59.999999Z"
        );
        assert_eq!(
            stamp(Duration::new(second + 1, 7_000)),
            "2026-11-28T20:46:00.000007Z"
        );
        // The cached prefix follows a clock set back, too.
        assert_eq!(stamp(Duration::new(0, 0)), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn plain_values_are_printable_ascii_without_quotes_or_backslashes() {
        assert!(is_plain("/api-key/{api_key}"));
        assert!(is_plain("req-1_x.y:z"));
        assert!(is_plain("(no route)"));
        for needs_escaping in ["a\"b", "a\\b", "a\nb", "a\u{1}b", "é", "\u{7f}"] {
            assert!(!is_plain(needs_escaping), "{needs_escaping:?}");
        }
    }

    /// A writer for a `tracing_subscriber` that keeps what it was given.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `tracing_subscriber`, set up as `telemetry::init` sets it up, writes for the event
    /// the access line stands for.
    fn logged_by_tracing(style: LineStyle, record: &AccessRecord<'_>) -> String {
        let kept = Kept::default();
        let writer = {
            let kept = kept.clone();
            move || kept.clone()
        };
        let builder = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(style.ansi)
            .with_writer(writer);
        let event = || {
            let latency_ms = record.latency.as_micros() as f64 / 1000.0;
            tracing::info!(
                target: TARGET,
                method = %record.method,
                route = record.route,
                status = record.status,
                latency_ms = %format_args!("{latency_ms:.2}"),
                request_id = record.request_id,
                "request"
            );
        };
        match style.format {
            LogFormat::Text => tracing::subscriber::with_default(builder.finish(), event),
            LogFormat::Json => tracing::subscriber::with_default(
                builder
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .finish(),
                event,
            ),
        }
        String::from_utf8(kept.0.lock().unwrap().clone()).unwrap()
    }

    /// The timestamp's place in a line: after `{"timestamp":"` in JSON, after the colour code
    /// (if any) in text.
    fn without_timestamp(line: &str) -> String {
        let start = line.find("20").expect("a timestamp");
        assert_eq!(&line[start + 26..start + 27], "Z", "{line}");
        format!("{}{}", &line[..start], &line[start + 27..])
    }

    #[test]
    fn lines_are_what_tracing_subscriber_writes() {
        let records = [
            AccessRecord {
                method: "GET",
                route: "/resource",
                status: 200,
                latency: Duration::from_micros(123),
                request_id: "0b8f3c5e-1d2a-4c7e-9f00-5a6b7c8d9e0f",
            },
            AccessRecord {
                method: "POST",
                route: "/api-key/{api_key}",
                status: 403,
                latency: Duration::from_micros(10_019_994),
                request_id: "req-1_x.y:z",
            },
            AccessRecord {
                method: "PATCH",
                route: "(no route)",
                status: 404,
                latency: Duration::ZERO,
                request_id: "x",
            },
        ];
        for format in [LogFormat::Text, LogFormat::Json] {
            for ansi in [false, true] {
                let style = LineStyle { format, ansi };
                for record in &records {
                    let mut ours = Vec::new();
                    let mut clock = Clock::default();
                    let timestamp = clock.timestamp(Duration::new(1_795_898_759, 0));
                    write_line(&mut ours, &Layout::new(style), timestamp, record);
                    assert_eq!(
                        without_timestamp(text(&ours)),
                        without_timestamp(&logged_by_tracing(style, record)),
                        "{style:?}"
                    );
                }
            }
        }
    }
}
