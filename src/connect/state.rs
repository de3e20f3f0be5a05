//! The OAuth 2.0 `state` (a nonce with its own MAC, so that any replica recognises it and a
//! forged one is told apart from another site's) and the PKCE challenge.

use super::*;

/// RFC 7636 S256: `base64url(sha256(verifier))`, no padding.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub(super) enum StateKind {
    Ours,
    Forged,
    Foreign,
}

impl Connect {
    /// An unguessable state that carries its own MAC: `{nonce}.{mac}`.
    pub(super) fn new_state(&self) -> String {
        let nonce = crate::random::alphanumeric(32);
        format!("{nonce}.{}", self.state_mac(&nonce))
    }

    pub(super) fn state_mac(&self, nonce: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.state_key).expect("any key length");
        mac.update(nonce.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether a state has the shape of ours, and if so whether its MAC is right.
    pub(super) fn state_kind(&self, state: &str) -> StateKind {
        let Some((nonce, mac)) = state.split_once('.') else {
            return StateKind::Foreign;
        };
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_alphanumeric()) || mac.len() != 43
        {
            return StateKind::Foreign;
        }
        let expected = self.state_mac(nonce);
        if subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into() {
            StateKind::Ours
        } else {
            StateKind::Forged
        }
    }
}
