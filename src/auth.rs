//! Tracardi-compatible authentication (tracardi-protocol.md §1.2).
//!
//! Tracardi exchanges the API key for a token at `GET /api-key/{key}` and stores the token as an
//! opaque string. The token is the HS256 JWT that Tracardi's Python microservice server issues:
//! its only claim is `payload = md5hex(API_KEY + SECRET + salt)`, with no expiry. Keeping the same
//! rule keeps tokens that Tracardi already stores valid when this service replaces the Python one.

use crate::error::ApiError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use md5::{Digest, Md5};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

const SALT: &str = "-lsd93ufifmdk934mI79wsu";

/// The token's claims: only `payload`, and no `exp` (Tracardi's tokens never expire).
#[derive(Serialize, Deserialize)]
struct Claims {
    payload: String,
}

/// What a caller must present: derived once from API_KEY and SECRET.
#[derive(Clone)]
pub struct Authenticator {
    api_key: SecretString,
    token: SecretString,
    /// `md5hex(API_KEY + SECRET + salt)`, the claim every good token carries.
    claim: SecretString,
    decoding_key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator { .. }")
    }
}

impl Authenticator {
    pub fn new(api_key: SecretString, secret: SecretString) -> Self {
        let token = issue_token(api_key.expose_secret(), secret.expose_secret()).into();
        let claim = claim_for(api_key.expose_secret(), secret.expose_secret()).into();
        // HS256 only (an `alg: none` or RS256 token is refused), and no claim required but
        // `payload`: Tracardi's tokens have no `exp`.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        Self {
            api_key,
            token,
            claim,
            decoding_key: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
            validation,
        }
    }

    /// The token for `/api-key/{key}`, when the key is right.
    pub fn exchange(&self, api_key: &str) -> Result<&SecretString, ApiError> {
        if bool::from(
            api_key
                .as_bytes()
                .ct_eq(self.api_key.expose_secret().as_bytes()),
        ) {
            Ok(&self.token)
        } else {
            Err(ApiError::Forbidden("Wrong Api Key"))
        }
    }

    /// Checks an `Authorization` header value the way Tracardi's `JWTBearer` does, answering with
    /// the same 403 messages.
    pub fn check_header(&self, header: Option<&str>) -> Result<(), ApiError> {
        let header = header.ok_or(ApiError::Forbidden("Not authenticated"))?;
        let (scheme, token) = header
            .split_once(' ')
            .ok_or(ApiError::Forbidden("Invalid authentication credentials"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Forbidden("Invalid authentication credentials"));
        }
        if scheme != "Bearer" {
            return Err(ApiError::Forbidden("Invalid authentication scheme."));
        }
        if self.verify_token(token.trim()) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("Invalid token."))
        }
    }

    /// A token is good when its HS256 signature verifies with SECRET and its claim matches the
    /// configured API key: the tokens this service issues and the ones Tracardi's Python server
    /// issued (PyJWT writes the header's keys in another order) alike.
    fn verify_token(&self, token: &str) -> bool {
        jsonwebtoken::decode::<Claims>(token, &self.decoding_key, &self.validation).is_ok_and(
            |data| {
                bool::from(
                    data.claims
                        .payload
                        .as_bytes()
                        .ct_eq(self.claim.expose_secret().as_bytes()),
                )
            },
        )
    }
}

/// `md5hex(API_KEY + SECRET + salt)`: the token's only claim.
pub fn claim_for(api_key: &str, secret: &str) -> String {
    let digest = Md5::new()
        .chain_update(api_key)
        .chain_update(secret)
        .chain_update(SALT)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The HS256 JWT `{"payload": claim}` signed with SECRET.
pub fn issue_token(api_key: &str, secret: &str) -> String {
    let claims = Claims {
        payload: claim_for(api_key, secret),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("HS256 signs any claims with any key")
}

/// Extractor for protected endpoints: rejects the request with Tracardi's 403 unless it carries
/// a valid bearer token.
pub struct Authenticated;

impl<S> axum::extract::FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Authenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let authenticator = <Authenticator as axum::extract::FromRef<S>>::from_ref(state);
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or(""));
        authenticator.check_header(header)?;
        Ok(Authenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // tracardi-protocol.md §1.2, values from the Python server's README.
    const API_KEY: &str =
        "983d32f6-4cd1-4ec1-b20c-f99f3eb8277b-db3e32536f658b6960aaad407c1a169cd02d7fd3";
    const SECRET: &str = "c1d44724c7543f19dc834d8bd8c86a92";
    const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJwYXlsb2FkIjoiMzI3NDhiMjk5Y2VhNmM4NmVkODczYjY1NzA1MDQwZWUifQ.sRbL0uk512ZRksw3uksLXBO3SB1HNqIGvWcdwqm_N9Y";

    fn authenticator() -> Authenticator {
        Authenticator::new(API_KEY.into(), SECRET.into())
    }

    /// The token of tracardi-protocol.md §1.2 (as Tracardi's Python server issued it, and as
    /// this service did before it used jsonwebtoken) still verifies, and so does the one this
    /// service issues now for the same keys: the same claim, signed with the same secret.
    #[test]
    fn accepts_the_tracardi_vector_and_its_own_token() {
        assert_eq!(
            claim_for(API_KEY, SECRET),
            "32748b299cea6c86ed873b65705040ee"
        );
        let auth = authenticator();
        assert!(auth.check_header(Some(&format!("Bearer {TOKEN}"))).is_ok());
        let issued = auth.exchange(API_KEY).unwrap().expose_secret().to_owned();
        assert_eq!(issued, issue_token(API_KEY, SECRET));
        assert!(auth.check_header(Some(&format!("Bearer {issued}"))).is_ok());
        let claims = |token: &str| {
            let payload = token.split('.').nth(1).unwrap();
            let json = URL_SAFE_NO_PAD.decode(payload).unwrap();
            serde_json::from_slice::<serde_json::Value>(&json).unwrap()
        };
        assert_eq!(claims(&issued), claims(TOKEN));
        assert_eq!(
            claims(&issued),
            serde_json::json!({"payload": "32748b299cea6c86ed873b65705040ee"})
        );
    }

    #[test]
    fn accepts_its_token_and_refuses_everything_else() {
        let auth = authenticator();
        assert!(auth.check_header(Some(&format!("Bearer {TOKEN}"))).is_ok());
        let detail = |h: Option<&str>| match auth.check_header(h) {
            Err(ApiError::Forbidden(d)) => d,
            other => panic!("expected 403, got {other:?}"),
        };
        assert_eq!(detail(None), "Not authenticated");
        assert_eq!(
            detail(Some("Basic abc")),
            "Invalid authentication credentials"
        );
        assert_eq!(detail(Some(TOKEN)), "Invalid authentication credentials");
        assert_eq!(
            detail(Some(&format!("bearer {TOKEN}"))),
            "Invalid authentication scheme."
        );
        assert_eq!(detail(Some("Bearer nonsense")), "Invalid token.");
        // Right signature shape, other secret.
        let foreign = issue_token(API_KEY, "another-secret");
        assert_eq!(detail(Some(&format!("Bearer {foreign}"))), "Invalid token.");
        // Signed with SECRET but for another API key: the claim does not match.
        let other_key = issue_token(&"x".repeat(40), SECRET);
        assert_eq!(
            detail(Some(&format!("Bearer {other_key}"))),
            "Invalid token."
        );
        // alg=none with the same claim.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            TOKEN.split('.').nth(1).unwrap()
        );
        assert_eq!(detail(Some(&format!("Bearer {none}"))), "Invalid token.");
    }

    #[test]
    fn wrong_api_key_is_refused() {
        assert!(matches!(
            authenticator().exchange("wrong"),
            Err(ApiError::Forbidden("Wrong Api Key"))
        ));
    }
}
