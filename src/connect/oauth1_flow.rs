//! The OAuth 1.0a flow (twitter-api.md §3): a request token signed with the app's consumer
//! keys, X's authorize page, and the exchange of the verifier for the account's access token.

use super::*;

impl Connect {
    pub(super) async fn start_oauth1(&self, visitor: Visitor) -> Result<String, ConnectError> {
        let (Some(app), Some(callback)) = (&self.config.oauth1, self.callback_url()) else {
            return Err(ConnectError::NotConfigured {
                flow: "oauth1",
                missing: "TWITTER_CONSUMER_KEY, TWITTER_CONSUMER_SECRET and PUBLIC_URL".into(),
            });
        };
        let visitor = self.admit(visitor).await?;
        let keys = oauth1::Keys {
            consumer_key: app.consumer_key.expose_secret(),
            consumer_secret: app.consumer_secret.expose_secret(),
            token: None,
            token_secret: None,
        };
        let step = "requesting an OAuth 1.0a request token";
        let answer = self
            .x
            .request_token(keys, &callback)
            .await
            .map_err(|e| transport(step, e))?;
        let fields = form_fields(&answer.body);
        let confirmed = text(&fields, "oauth_callback_confirmed").as_deref() == Some("true");
        let (Some(token), Some(secret), 200, true) = (
            text(&fields, "oauth_token"),
            text(&fields, "oauth_token_secret"),
            answer.status,
            confirmed,
        ) else {
            let mut cause = cause(step, &answer);
            if answer.status == 200 && !confirmed {
                cause = format!(
                    "{step}: X did not confirm the callback (oauth_callback_confirmed is not true)"
                );
            }
            return Err(ConnectError::Upstream {
                cause,
                gateway_timeout: false,
            });
        };
        self.pending
            .put(
                format!("oauth1:{token}"),
                Self::context(Flow::OAuth1, &visitor),
                secret.into(),
                self.config.ttl,
            )
            .await?;
        Ok(format!(
            "{}?oauth_token={}",
            app.authorize_url,
            oauth1::encode(&token)
        ))
    }

    /// Request token + verifier → user token → the account. The verifier is sent once.
    pub(super) async fn exchange_oauth1(
        &self,
        key: &str,
        request_secret: &SecretString,
        verifier: &str,
    ) -> Result<Account, ConnectError> {
        let app = self
            .config
            .oauth1
            .as_ref()
            .ok_or(ConnectError::NotConfigured {
                flow: "oauth1",
                missing: "TWITTER_CONSUMER_KEY and TWITTER_CONSUMER_SECRET".into(),
            })?;
        let request_token = key.trim_start_matches("oauth1:");
        let step = "exchanging the OAuth 1.0a verifier for an access token";
        let answer = self
            .x
            .access_token(
                oauth1::Keys {
                    consumer_key: app.consumer_key.expose_secret(),
                    consumer_secret: app.consumer_secret.expose_secret(),
                    token: Some(request_token),
                    token_secret: Some(request_secret.expose_secret()),
                },
                verifier,
            )
            .await
            .map_err(|e| transport(step, e))?;
        let fields = form_fields(&answer.body);
        let (200, Some(token), Some(token_secret)) = (
            answer.status,
            text(&fields, "oauth_token"),
            text(&fields, "oauth_token_secret"),
        ) else {
            return Err(ConnectError::Upstream {
                cause: cause(step, &answer),
                gateway_timeout: false,
            });
        };
        let token = SecretString::from(token);
        let token_secret = SecretString::from(token_secret);
        let step = "reading the connected account (GET /2/users/me)";
        let answer = self
            .x
            .users_me_signed(oauth1::Keys {
                consumer_key: app.consumer_key.expose_secret(),
                consumer_secret: app.consumer_secret.expose_secret(),
                token: Some(token.expose_secret()),
                token_secret: Some(token_secret.expose_secret()),
            })
            .await
            .map_err(|e| transport(step, e))?;
        account(step, &answer)
    }
}
