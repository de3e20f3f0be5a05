//! Signing `GET https://api.x.com/2/users/me` with OAuth 1.0a HMAC-SHA1.
//!
//! Target: at most 3 µs per signature on a 2-core machine. Run with
//! `cargo bench --bench signing` (see BENCHMARKS.md for the figures).

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use std::hint::black_box;
use tracardi_twitter::oauth1::{self, Keys, Protocol, Request};

/// The `users-me` vector from `tests/vectors/oauth1.json`: sample keys, fixed nonce and timestamp.
struct UsersMe {
    url: String,
    consumer_key: String,
    consumer_secret: String,
    token: String,
    token_secret: String,
    nonce: String,
    timestamp: String,
    signature: String,
}

fn users_me_vector() -> UsersMe {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/oauth1.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file: Value = serde_json::from_str(&text).expect("the vector file is JSON");
    let vector = file["vectors"]
        .as_array()
        .expect("a list of vectors")
        .iter()
        .find(|v| v["name"] == "users-me")
        .expect("the users-me vector");
    let text = |value: &Value| value.as_str().expect("a string").to_owned();
    UsersMe {
        url: text(&vector["url"]),
        consumer_key: text(&vector["consumer_key"]),
        consumer_secret: text(&vector["consumer_secret"]),
        token: text(&vector["token"]),
        token_secret: text(&vector["token_secret"]),
        nonce: text(&vector["nonce"]),
        timestamp: text(&vector["timestamp"]),
        signature: text(&vector["expected"]["signature"]),
    }
}

fn signing(c: &mut Criterion) {
    let v = users_me_vector();
    let request = Request {
        method: "GET",
        url: &v.url,
        form_body: None,
    };
    let keys = Keys {
        consumer_key: &v.consumer_key,
        consumer_secret: &v.consumer_secret,
        token: Some(&v.token),
        token_secret: Some(&v.token_secret),
    };
    let protocol = Protocol {
        nonce: &v.nonce,
        timestamp: &v.timestamp,
        version: Some("1.0"),
        extra: &[],
    };
    // Measure the signer only if it is right.
    let signed = oauth1::sign(&request, keys, &protocol).expect("signs");
    assert_eq!(signed.signature, v.signature, "users-me vector");

    c.bench_function("sign users_me (fixed nonce and timestamp)", |b| {
        b.iter(|| oauth1::sign(black_box(&request), black_box(keys), black_box(&protocol)))
    });
    c.bench_function(
        "authorization_header users_me (fresh nonce and timestamp)",
        |b| b.iter(|| oauth1::authorization_header(black_box(&request), black_box(keys), &[])),
    );
}

criterion_group!(benches, signing);
criterion_main!(benches);
