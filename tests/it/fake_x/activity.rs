//! X's side of the activity webhook: signed deliveries of X Activity API and Account Activity
//! API bodies to the service's `/x/webhook`, and a replay of everything delivered followed by
//! the replay job's notice (x-activity.md §1.5, §1.6).
//!
//! The signature is made here with the HMAC and SHA-256 crates directly, not the service's
//! code; the documented CRC vector pins both to X's recipe.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Mutex;

/// `sha256=` + base64(HMAC-SHA256(secret, message)), as X signs bodies and answers CRCs.
pub fn x_signature(secret: &str, message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message);
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// X delivering to one webhook URL with one app's consumer secret.
pub struct WebhookSender {
    pub url: String,
    consumer_secret: String,
    client: reqwest::Client,
    /// Every body delivered with a good signature, in order: what a replay sends again.
    delivered: Mutex<Vec<String>>,
}

/// The service's answer to one delivery.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl WebhookSender {
    pub fn new(webhook_url: &str, consumer_secret: &str) -> Self {
        Self {
            url: webhook_url.to_owned(),
            consumer_secret: consumer_secret.to_owned(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            delivered: Mutex::new(Vec::new()),
        }
    }

    /// POSTs `body` signed as X signs it.
    pub async fn deliver(&self, body: &str) -> Answer {
        let signature = x_signature(&self.consumer_secret, body.as_bytes());
        let answer = self
            .post(body, &[("x-twitter-webhooks-signature", &signature)])
            .await;
        self.delivered.lock().unwrap().push(body.to_owned());
        answer
    }

    /// POSTs `body` with exactly these headers (a wrong, a missing or another signature).
    pub async fn post(&self, body: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json; charset=utf-8")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the webhook answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        }
    }

    /// `POST /2/webhooks/replay` as X carries it out: every body delivered so far, again, in
    /// order, then the job's completion notice. Returns the answers to all of them.
    pub async fn replay(&self, job_id: &str) -> Vec<Answer> {
        let bodies = self.delivered.lock().unwrap().clone();
        let mut answers = Vec::new();
        for body in bodies {
            let signature = x_signature(&self.consumer_secret, body.as_bytes());
            answers.push(
                self.post(&body, &[("x-twitter-webhooks-signature", &signature)])
                    .await,
            );
        }
        let notice = serde_json::json!({"replay_job_status": {
            "webhook_id": "1976325569252868099",
            "job_state": "Complete",
            "job_state_description": "Job completed successfully",
            "job_id": job_id,
        }})
        .to_string();
        let signature = x_signature(&self.consumer_secret, notice.as_bytes());
        answers.push(
            self.post(&notice, &[("x-twitter-webhooks-signature", &signature)])
                .await,
        );
        answers
    }
}
