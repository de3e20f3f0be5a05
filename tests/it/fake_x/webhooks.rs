//! X's V2 Webhooks API as the fake plays it (x-activity.md §1.2-§1.4): register, list,
//! re-validate, delete, replay. Register and re-validate run a real CRC against the registered
//! URL (`GET url?crc_token=…`, answer `sha256=` + base64 HMAC-SHA256 keyed with the app's
//! consumer secret); a wrong answer, a non-200, a redirect or no answer fails it. Auth as X's
//! OpenAPI file says: the app-only Bearer token everywhere, OAuth 1.0a user context also for
//! register, re-validate and delete.
//!
//! Unlike X, the fake accepts `http://127.0.0.1:<port>` URLs (the service under test); any other
//! URL must be https without a port.

use super::*;

/// X's 400 for a refused webhook call: `<Reason>: <Details>` in `errors[].message`.
pub fn webhook_error(reason: &str, details: &str) -> String {
    serde_json::json!({
        "errors": [{"message": format!("{reason}: {details}")}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    })
    .to_string()
}

/// X's 403 for a token type an endpoint does not take.
pub fn unsupported_authentication(supported: &str) -> String {
    serde_json::json!({
        "title": "Unsupported Authentication",
        "detail": format!("Authenticating with this token type is forbidden for this endpoint. Supported authentication types are [{supported}]."),
        "type": "https://api.twitter.com/2/problems/unsupported-authentication",
        "status": 403,
    })
    .to_string()
}

/// An X app as the webhooks see it: its app-only Bearer token and consumer keys.
#[derive(Clone, Debug)]
pub struct WebhookApp {
    pub bearer: String,
    pub consumer_key: String,
    pub consumer_secret: String,
}

/// A registered webhook.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub valid: bool,
    pub created_at: String,
    /// The app it belongs to.
    pub consumer_key: String,
}

/// One CRC the fake ran.
#[derive(Clone, Debug)]
pub struct CrcCheck {
    pub url: String,
    pub crc_token: String,
    /// `None`: it passed; else why not.
    pub failure: Option<String>,
}

/// A `POST /2/webhooks/replay` job.
#[derive(Clone, Debug)]
pub struct ReplayJob {
    pub job_id: String,
    pub webhook_id: String,
    pub from_date: String,
    pub to_date: String,
}

/// Who made a webhook or subscription call.
#[derive(Clone, Debug)]
pub(super) enum Caller {
    /// The app-only Bearer token of an app.
    App(WebhookApp),
    /// OAuth 1.0a user context: the app's consumer key and secret, and the user (the number
    /// before the `-` of the access token).
    OAuth1User {
        consumer_key: String,
        consumer_secret: String,
        user_id: String,
        access_token: String,
    },
    /// A user's OAuth 2.0 token from the fake's connect flow, with its scopes.
    OAuth2User { token: String, scope: String },
}

/// The webhook and subscription state of the fake.
#[derive(Default)]
pub(super) struct Admin {
    pub(super) apps: Vec<WebhookApp>,
    pub(super) webhooks: Vec<Webhook>,
    pub(super) crc_checks: Vec<CrcCheck>,
    pub(super) replays: Vec<ReplayJob>,
    pub(super) subscriptions: Vec<super::Subscription>,
    pub(super) subscription_failures: BTreeMap<String, super::SubscriptionFailure>,
    pub(super) next_id: u64,
}

impl Admin {
    pub(super) fn next_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:06}", self.next_id)
    }
}

impl FakeX {
    /// An app whose app-only Bearer token manages webhooks, and whose consumer secret keys the
    /// CRC (the same keys may also be given as [`Keys`] for OAuth 1.0a user context).
    pub fn webhook_app(&self, bearer: &str, consumer_key: &str, consumer_secret: &str) {
        self.shared.admin.lock().unwrap().apps.push(WebhookApp {
            bearer: bearer.to_owned(),
            consumer_key: consumer_key.to_owned(),
            consumer_secret: consumer_secret.to_owned(),
        });
    }

    /// The app's consumer secret was regenerated at X: the CRC is keyed with this one now.
    pub fn set_app_secret(&self, consumer_key: &str, consumer_secret: &str) {
        let mut admin = self.shared.admin.lock().unwrap();
        for app in admin
            .apps
            .iter_mut()
            .filter(|a| a.consumer_key == consumer_key)
        {
            app.consumer_secret = consumer_secret.to_owned();
        }
        drop(admin);
        for keys in self
            .shared
            .known
            .lock()
            .unwrap()
            .iter_mut()
            .filter(|k| k.api_key == consumer_key)
        {
            keys.api_secret = consumer_secret.to_owned();
        }
    }

    /// A webhook registered for the app with this consumer key, as if its CRC had passed (for
    /// tests of what comes after registering); its id.
    pub fn registered_webhook(&self, consumer_key: &str, url: &str) -> String {
        let mut admin = self.shared.admin.lock().unwrap();
        let id = admin.next_id("1976325569252");
        admin.webhooks.push(Webhook {
            id: id.clone(),
            url: url.to_owned(),
            valid: true,
            created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            consumer_key: consumer_key.to_owned(),
        });
        id
    }

    pub fn webhooks(&self) -> Vec<Webhook> {
        self.shared.admin.lock().unwrap().webhooks.clone()
    }

    pub fn crc_checks(&self) -> Vec<CrcCheck> {
        self.shared.admin.lock().unwrap().crc_checks.clone()
    }

    pub fn replays(&self) -> Vec<ReplayJob> {
        self.shared.admin.lock().unwrap().replays.clone()
    }
}

/// Who is calling: the app's Bearer token, a user's OAuth 2.0 token, or OAuth 1.0a user
/// context whose signature verified. `None`: X's 401.
pub(super) fn caller(
    shared: &Shared,
    authorization: &str,
    signature_ok: bool,
    oauth: &BTreeMap<String, String>,
) -> Option<Caller> {
    if let Some(token) = bearer(authorization) {
        if let Some(app) = shared
            .admin
            .lock()
            .unwrap()
            .apps
            .iter()
            .find(|a| credential_matches(token, &a.bearer))
        {
            return Some(Caller::App(app.clone()));
        }
        let flows = shared.flows.lock().unwrap();
        let user = flows.bearers.iter().find(|b| b.token == token)?;
        return Some(Caller::OAuth2User {
            token: user.token.clone(),
            scope: user.scope.clone(),
        });
    }
    if !signature_ok {
        return None;
    }
    let consumer_key = oauth.get("oauth_consumer_key")?.clone();
    let access_token = oauth.get("oauth_token")?.clone();
    let known = shared.known.lock().unwrap();
    let keys = known
        .iter()
        .find(|k| k.api_key == consumer_key && k.access_token == access_token)?;
    Some(Caller::OAuth1User {
        consumer_key,
        consumer_secret: keys.api_secret.clone(),
        user_id: access_token
            .split_once('-')
            .map(|(id, _)| id.to_owned())
            .unwrap_or_default(),
        access_token,
    })
}

/// The app a webhook call acts for (its consumer key and secret), or X's 403 for a token the
/// endpoint does not take.
fn app_of(caller: &Caller, oauth1_allowed: bool) -> Result<(String, String), Box<Response>> {
    match caller {
        Caller::App(app) => Ok((app.consumer_key.clone(), app.consumer_secret.clone())),
        Caller::OAuth1User {
            consumer_key,
            consumer_secret,
            ..
        } if oauth1_allowed => Ok((consumer_key.clone(), consumer_secret.clone())),
        _ => Err(Box::new(problem(
            StatusCode::FORBIDDEN,
            &unsupported_authentication(if oauth1_allowed {
                "OAuth 2.0 Application-Only, OAuth 1.0a User Context"
            } else {
                "OAuth 2.0 Application-Only"
            }),
        ))),
    }
}

/// A request to the webhook or subscription routes, as the fake received it.
pub(super) struct Call<'a> {
    pub(super) method: &'a axum::http::Method,
    pub(super) path: &'a str,
    pub(super) query: Option<&'a str>,
    pub(super) body: &'a str,
    pub(super) authorization: &'a str,
    /// Whether an OAuth 1.0a signature verified with keys the fake knows.
    pub(super) signature_ok: bool,
    pub(super) oauth: &'a BTreeMap<String, String>,
}

/// Answers the `/2/webhooks` routes; `None` for any other path.
pub(super) async fn answer(shared: &Shared, call: &Call<'_>) -> Option<Response> {
    use axum::http::Method;
    let (method, body) = (call.method, call.body);
    let rest = call.path.strip_prefix("/2/webhooks")?;
    let Some(caller) = caller(shared, call.authorization, call.signature_ok, call.oauth) else {
        return Some(problem(StatusCode::UNAUTHORIZED, UNAUTHORIZED));
    };
    let invalid = |reason: &str, details: &str| {
        with_type(
            StatusCode::BAD_REQUEST,
            JSON,
            &webhook_error(reason, details),
        )
    };
    Some(match (method, rest) {
        (&Method::POST, "") => {
            let (consumer_key, consumer_secret) = match app_of(&caller, true) {
                Ok(app) => app,
                Err(refused) => return Some(*refused),
            };
            let url = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|b| b["url"].as_str().map(str::to_owned))
                .unwrap_or_default();
            if let Err(why) = acceptable_url(&url) {
                return Some(invalid("UrlValidationFailed", &why));
            }
            let duplicate = shared
                .admin
                .lock()
                .unwrap()
                .webhooks
                .iter()
                .any(|w| w.url == url && w.consumer_key == consumer_key);
            if duplicate {
                return Some(invalid(
                    "DuplicateUrlFailed",
                    "A webhook is already registered for this URL",
                ));
            }
            if let Err(why) = run_crc(shared, &url, &consumer_secret).await {
                return Some(invalid(
                    "CrcValidationFailed",
                    &format!("URL returned bad response during CRC with error: {why}"),
                ));
            }
            let mut admin = shared.admin.lock().unwrap();
            let webhook = Webhook {
                id: admin.next_id("1976325569252"),
                url,
                valid: true,
                created_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                consumer_key,
            };
            admin.webhooks.push(webhook.clone());
            with_type(
                StatusCode::OK,
                JSON,
                &serde_json::json!({"data": {"id": webhook.id, "url": webhook.url,
                    "valid": true, "created_at": webhook.created_at}})
                .to_string(),
            )
        }
        (&Method::GET, "") => {
            let (consumer_key, _) = match app_of(&caller, false) {
                Ok(app) => app,
                Err(refused) => return Some(*refused),
            };
            let admin = shared.admin.lock().unwrap();
            let data: Vec<serde_json::Value> = admin
                .webhooks
                .iter()
                .filter(|w| w.consumer_key == consumer_key)
                .map(|w| {
                    serde_json::json!({"created_at": w.created_at, "id": w.id, "url": w.url,
                        "valid": w.valid})
                })
                .collect();
            let count = data.len();
            with_type(
                StatusCode::OK,
                JSON,
                &serde_json::json!({"data": data, "meta": {"result_count": count}}).to_string(),
            )
        }
        (&Method::POST, "/replay") => {
            let (consumer_key, _) = match app_of(&caller, false) {
                Ok(app) => app,
                Err(refused) => return Some(*refused),
            };
            let request: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let field = |name: &str| request[name].as_str().unwrap_or_default().to_owned();
            let (webhook_id, from_date, to_date) =
                (field("webhook_id"), field("from_date"), field("to_date"));
            let date_ok = |d: &str| d.len() == 12 && d.bytes().all(|b| b.is_ascii_digit());
            if !date_ok(&from_date) || !date_ok(&to_date) {
                return Some(invalid(
                    "InvalidRequest",
                    "from_date and to_date must be yyyymmddhhmm",
                ));
            }
            let mut admin = shared.admin.lock().unwrap();
            if !admin
                .webhooks
                .iter()
                .any(|w| w.id == webhook_id && w.consumer_key == consumer_key)
            {
                return Some(invalid("WebhookIdInvalid", "The webhook id is not valid"));
            }
            let job = ReplayJob {
                job_id: admin.next_id("1915510368169"),
                webhook_id,
                from_date,
                to_date,
            };
            admin.replays.push(job.clone());
            with_type(
                StatusCode::OK,
                JSON,
                &serde_json::json!({"data": {"job_id": job.job_id,
                    "created_at": humantime::format_rfc3339_millis(SystemTime::now()).to_string()}})
                .to_string(),
            )
        }
        (&Method::PUT | &Method::DELETE, id) if id.starts_with('/') => {
            let id = &id[1..];
            let (consumer_key, consumer_secret) = match app_of(&caller, true) {
                Ok(app) => app,
                Err(refused) => return Some(*refused),
            };
            let url = shared
                .admin
                .lock()
                .unwrap()
                .webhooks
                .iter()
                .find(|w| w.id == id && w.consumer_key == consumer_key)
                .map(|w| w.url.clone());
            let Some(url) = url else {
                return Some(invalid("WebhookIdInvalid", "The webhook id is not valid"));
            };
            if method == Method::DELETE {
                shared.admin.lock().unwrap().webhooks.retain(|w| w.id != id);
                return Some(with_type(
                    StatusCode::OK,
                    JSON,
                    r#"{"data":{"deleted":true}}"#,
                ));
            }
            let crc = run_crc(shared, &url, &consumer_secret).await;
            let mut admin = shared.admin.lock().unwrap();
            if let Some(webhook) = admin.webhooks.iter_mut().find(|w| w.id == id) {
                webhook.valid = crc.is_ok();
            }
            match crc {
                Ok(()) => with_type(StatusCode::OK, JSON, r#"{"data":{"valid":true}}"#),
                Err(why) => invalid(
                    "CrcValidationFailed",
                    &format!("URL returned bad response during CRC with error: {why}"),
                ),
            }
        }
        _ => return None,
    })
}

/// https without a port (X's rule), or, in the fake only, http://127.0.0.1:<port>.
fn acceptable_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| "The URL is not valid".to_owned())?;
    let local = parsed.scheme() == "http" && parsed.host_str() == Some("127.0.0.1");
    let public = parsed.scheme() == "https" && parsed.port().is_none();
    if url.len() > 200 || !(local || public) {
        return Err("The URL must be https, without a port".into());
    }
    Ok(())
}

/// The CRC answer the app's consumer secret gives for `crc_token`.
pub fn crc_response(consumer_secret: &str, crc_token: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(consumer_secret.as_bytes()).expect("any key");
    mac.update(crc_token.as_bytes());
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// `GET url?crc_token=…` as X sends it; records the check.
async fn run_crc(shared: &Shared, url: &str, consumer_secret: &str) -> Result<(), String> {
    let crc_token = format!("crc{}", uuid::Uuid::new_v4().simple());
    let outcome = async {
        let mut target = url::Url::parse(url).map_err(|_| "bad URL".to_owned())?;
        target
            .query_pairs_mut()
            .append_pair("crc_token", &crc_token);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let response = client
            .get(target)
            .send()
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!("redirect ({status})"));
        }
        if status != StatusCode::OK {
            return Err(format!("HTTP {status}"));
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if body["response_token"].as_str() != Some(&crc_response(consumer_secret, &crc_token)) {
            return Err("Invalid `response_token`".into());
        }
        Ok(())
    }
    .await;
    shared.admin.lock().unwrap().crc_checks.push(CrcCheck {
        url: url.to_owned(),
        crc_token,
        failure: outcome.clone().err(),
    });
    outcome
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_crc_answer_matches_the_documented_vector() {
        assert_eq!(
            super::crc_response("consumer-secret", "challenge_string"),
            "sha256=S/mG8E9n5SjoGuCqHguvP8K8uuu5ogCPF0dOpIdyZlk="
        );
    }

    #[test]
    fn urls_follow_x_s_rules_but_for_the_local_service() {
        assert!(super::acceptable_url("https://tt.example/x/webhook").is_ok());
        assert!(super::acceptable_url("http://127.0.0.1:8080/x/webhook").is_ok());
        for bad in [
            "https://tt.example:5000/x/webhook",
            "http://tt.example/x/webhook",
            "nonsense",
        ] {
            assert!(super::acceptable_url(bad).is_err(), "{bad}");
        }
    }
}
