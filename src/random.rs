//! Unguessable values: nonces, generated API keys, cache keys, PKCE verifiers.

use rand::Rng;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Random bytes from a CSPRNG seeded by the operating system.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

/// `len` characters drawn uniformly from `A-Z a-z 0-9`.
pub fn alphanumeric(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in bytes::<64>() {
            // 248 = 4 × 62: rejecting larger bytes keeps every character equally likely.
            if byte < 248 && out.len() < len {
                out.push(ALPHANUMERIC[usize::from(byte % 62)] as char);
            }
        }
    }
    out
}

/// `N` random bytes as lowercase hex.
pub fn hex<const N: usize>() -> String {
    bytes::<N>().iter().map(|b| format!("{b:02x}")).collect()
}
