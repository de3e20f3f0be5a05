//! The OAuth 2.0 flow with PKCE (twitter-api.md §3): X's authorize page with a state of ours
//! and an S256 challenge, and the exchange of the code with its verifier.

use super::*;

impl Connect {
    pub(super) async fn start_oauth2(&self, visitor: Visitor) -> Result<String, ConnectError> {
        let (Some(client), Some(callback)) = (&self.config.oauth2, self.callback_url()) else {
            return Err(ConnectError::NotConfigured {
                flow: "oauth2",
                missing: "TWITTER_CLIENT_ID and PUBLIC_URL".into(),
            });
        };
        let visitor = self.admit(visitor).await?;
        let verifier = crate::random::alphanumeric(64);
        let state = self.new_state();
        self.pending
            .put(
                format!("oauth2:{state}"),
                Self::context(Flow::OAuth2, &visitor),
                verifier.clone().into(),
                self.config.ttl,
            )
            .await?;
        // As the `oauth2` crate builds it: url's form encoding of each pair (a space is `+`).
        let mut url = url::Url::parse(&client.authorize_url)
            .expect("TWITTER_OAUTH2_AUTHORIZE_URL was checked at start");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client.client_id.expose_secret())
            .append_pair("redirect_uri", &callback)
            .append_pair("scope", &client.scopes)
            .append_pair("state", &state)
            .append_pair("code_challenge", &pkce_challenge(&verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Code + PKCE verifier → bearer token → the account, subscribed to `X_ACTIVITY_EVENTS`
    /// with that token when set (tagged with `profile_id`). The code is sent once.
    pub(super) async fn exchange_oauth2(
        &self,
        verifier: &SecretString,
        code: &str,
        profile_id: Option<&str>,
    ) -> Result<Account, ConnectError> {
        let (Some(client), Some(callback)) = (&self.config.oauth2, self.callback_url()) else {
            return Err(ConnectError::NotConfigured {
                flow: "oauth2",
                missing: "TWITTER_CLIENT_ID and PUBLIC_URL".into(),
            });
        };
        let step = "exchanging the OAuth 2.0 code for a token";
        let answer = self
            .x
            .oauth2_token(
                client.client_id.expose_secret(),
                client.client_secret.as_ref().map(|s| s.expose_secret()),
                code,
                verifier.expose_secret(),
                &callback,
            )
            .await
            .map_err(|e| transport(step, e))?;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let (200, Some(token)) = (answer.status, body["access_token"].as_str()) else {
            return Err(ConnectError::Upstream {
                cause: cause(step, &answer),
                gateway_timeout: false,
            });
        };
        let token = SecretString::from(token.to_owned());
        let step = "reading the connected account (GET /2/users/me)";
        let answer = self
            .x
            .users_me_bearer(token.expose_secret())
            .await
            .map_err(|e| transport(step, e))?;
        let mut account = account(step, &answer)?;
        account.subscriptions = self.subscribe(&token, &account.id, profile_id).await;
        Ok(account)
    }
}
