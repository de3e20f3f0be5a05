//! Command line: `serve` (the default), `validate`, `healthcheck`, `openapi`, `webhook`,
//! `subscribe`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use tracardi_twitter::config::{ServeArgs, TwitterArgs};
use tracardi_twitter::error::ApiError;
use tracardi_twitter::twitter::credentials::Credentials;
use tracardi_twitter::twitter::report::{Severity, ValidationReport};
use tracardi_twitter::validation::Validator;
use tracardi_twitter::x_admin::{KeyArgs, SubscribeArgs, WebhookCommand};

/// glibc's malloc costs a fifth of the service's CPU under load (events are built on the async
/// workers and freed on the store's writer thread); mimalloc, measured in BENCHMARKS.md
/// ("Meeting the p99").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Twitter (X) for Tracardi: the resource form, credential validation and Tracardi-compatible auth.
///
/// Every setting is an environment variable or the flag of the same name.
#[derive(Parser)]
#[command(name = "tracardi-twitter", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (what runs without a command).
    Serve,
    /// Check four keys against X and say what to fix. Exits 0 when valid, 1 when invalid,
    /// 2 when it could not decide.
    Validate(ValidateArgs),
    /// Exit 0 when the service answers /health (for Docker's HEALTHCHECK), 1 when it does not.
    Healthcheck {
        /// The service's address, e.g. 127.0.0.1:20000 or http://127.0.0.1:20000. Without it,
        /// LISTEN_ADDR's (0.0.0.0 read as 127.0.0.1), so a HEALTHCHECK follows LISTEN_ADDR.
        address: Option<String>,
        /// Where the service listens, when no address is given.
        #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:20000")]
        listen_addr: String,
    },
    /// Print the OpenAPI specification.
    Openapi,
    /// Manage the X webhook at {PUBLIC_URL}/x/webhook: register, list, validate, delete,
    /// replay. Exits 0 on success, 1 when X refused, 2 when it could not run.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Subscribe the brand's own account (its four keys, OAuth 1.0a user context) to X Activity
    /// API event types, delivered to the webhook. Exits 0 when every subscription was made, 1
    /// when X refused one, 2 when it could not run.
    Subscribe(Box<SubscribeArgs>),
}

/// X's four keys (flags with an `x-` prefix, environment `TWITTER_*`) and the output format.
#[derive(clap::Args)]
struct ValidateArgs {
    #[command(flatten)]
    keys: KeyArgs,
    /// Print what POST /validate would answer, as JSON: the report, the field errors (422) or
    /// the problem (429, 502, 504, with its `code`).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    twitter: TwitterArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Once, before any HTTP client is built: every command may call X or this service.
    tracardi_twitter::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().expect("starting the async runtime");
    match cli.command {
        None | Some(Command::Serve) => runtime.block_on(serve(cli.serve)),
        Some(Command::Validate(args)) => runtime.block_on(validate(args)),
        Some(Command::Healthcheck {
            address,
            listen_addr,
        }) => runtime.block_on(healthcheck(address.as_deref().unwrap_or(&listen_addr))),
        Some(Command::Webhook(command)) => {
            ExitCode::from(runtime.block_on(tracardi_twitter::x_admin::webhook(command)))
        }
        Some(Command::Subscribe(args)) => {
            ExitCode::from(runtime.block_on(tracardi_twitter::x_admin::subscribe(*args)))
        }
        Some(Command::Openapi) => {
            println!(
                "{}",
                tracardi_twitter::openapi()
                    .to_pretty_json()
                    .expect("serialisable")
            );
            ExitCode::SUCCESS
        }
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("tracardi-twitter: {message}");
    ExitCode::from(2)
}

async fn serve(args: ServeArgs) -> ExitCode {
    let (config, key_source) = match args.check() {
        Ok(checked) => checked,
        Err(e) => return fail(format_args!("configuration error: {e}")),
    };
    let (log_writer, log_guard) = tracardi_twitter::telemetry::stderr_writer();
    tracardi_twitter::telemetry::init(config.log_format, log_writer);
    tracardi_twitter::log_key_source(&key_source);
    tracardi_twitter::warn_if_secret_is_short(&config);
    if let Some(path) = &config.port_file {
        // A file left by an earlier run names a port that is not ours.
        let _ = std::fs::remove_file(path);
    }
    let listener = match tokio::net::TcpListener::bind(config.listen_addr).await {
        Ok(listener) => listener,
        Err(e) => {
            // Log lines written before the failure go out first.
            drop(log_guard);
            return fail(format_args!(
                "LISTEN_ADDR: cannot listen on {}: {e}",
                config.listen_addr
            ));
        }
    };
    // The address the system gave: with port 0 in LISTEN_ADDR, the port it picked.
    let listening_on = listener.local_addr().unwrap_or(config.listen_addr);
    tracing::info!(
        listen_addr = %listening_on,
        data_dir = %config.data_dir.display(),
        twitter_api_url = %config.twitter.api_url,
        validate_timeout_ms = config.twitter.timeout.as_millis() as u64,
        validate_cache_ttl_s = config.validate_cache_ttl.as_secs(),
        "tracardi-twitter listening"
    );
    let result = tracardi_twitter::run(config, listener, tracardi_twitter::shutdown_signal()).await;
    // Writes the log lines still queued.
    drop(log_guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(format_args!("server stopped: {e}")),
    }
}

async fn validate(args: ValidateArgs) -> ExitCode {
    let twitter = match args.twitter.check() {
        Ok(twitter) => twitter,
        Err(e) => return fail(format_args!("configuration error: {e}")),
    };
    let body = serde_json::json!({
        "api_key": args.keys.api_key,
        "api_secret": args.keys.api_secret,
        "access_token": args.keys.access_token,
        "access_token_secret": args.keys.access_token_secret,
    });
    let parsed = match Credentials::from_json(&body) {
        Ok(parsed) => parsed,
        Err(errors) => {
            if args.json {
                // POST /validate's 422 body.
                println!(
                    "{}",
                    serde_json::to_string_pretty(&errors).expect("serialisable")
                );
            }
            for (field, message) in errors {
                eprintln!("--x-{}: {message}", field.replace('_', "-"));
            }
            return fail(
                "give all four keys as flags (--x-api-key ...) or TWITTER_* environment variables (see --help)",
            );
        }
    };
    let client = tracardi_twitter::twitter::client::XClient::new(&twitter);
    let validator = Validator::new(client, std::time::Duration::from_secs(1));
    match validator.validate(parsed, true).await {
        Ok(report) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("serialisable")
                );
            } else {
                print!("{}", describe(&report));
            }
            if report.valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(undecided) => {
            // The problem POST /validate answers (429, 502 or 504), with its stable `code`.
            let problem = match ApiError::from(undecided) {
                ApiError::Problem(problem) => problem,
                other => unreachable!("an undecided check is a problem, not {other}"),
            };
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&problem).expect("serialisable")
                );
            } else {
                println!("Could not decide: {} ({})", problem.detail, problem.code);
            }
            ExitCode::from(2)
        }
    }
}

/// The report, for a person at a terminal.
fn describe(report: &ValidationReport) -> String {
    let mut out = String::new();
    match (&report.account, report.valid) {
        (Some(a), true) => out.push_str(&format!(
            "VALID: the keys act as @{} ({}, id {})\n",
            a.username, a.name, a.id
        )),
        (_, true) => out.push_str("VALID\n"),
        (_, false) => out.push_str("INVALID: X does not accept these keys\n"),
    }
    if let Some(level) = report.access_level {
        let level = serde_json::to_value(level).expect("serialisable");
        out.push_str(&format!(
            "Access level: {}\n",
            level.as_str().unwrap_or("?")
        ));
    }
    if let Some(rl) = report.rate_limit {
        out.push_str(&format!(
            "Rate limit: {} of {} calls left; the window resets at {} (Unix time)\n",
            rl.remaining, rl.limit, rl.reset
        ));
    }
    for p in &report.problems {
        let kind = match p.severity {
            Severity::Error => "Error",
            Severity::Warning => "Warning",
        };
        let field = p.field.map(|f| format!(" ({f})")).unwrap_or_default();
        out.push_str(&format!(
            "{kind} [{}]{field}: {}\n  Fix: {}\n",
            p.code, p.message, p.fix
        ));
    }
    out
}

async fn healthcheck(address: &str) -> ExitCode {
    let url = match tracardi_twitter::cli::health_url(address) {
        Ok(url) => url,
        Err(what_to_type) => return fail(format_args!("healthcheck: {what_to_type}")),
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("static client settings");
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("unhealthy: {url} did not answer: {e}");
            ExitCode::from(1)
        }
    }
}
