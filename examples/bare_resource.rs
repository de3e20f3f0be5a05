//! A bare axum server answering `GET /resource` with the same bytes as tracardi-twitter, and
//! nothing else: no middleware, no state, the body serialised once. It is the yardstick for
//! `scripts/bench-resource.sh`.
//!
//! `cargo run --release --example bare_resource -- 20902` listens on 127.0.0.1:20902.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::get;
use tracardi_twitter::http::resource::ResourceForm;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse().expect("the port is a number"))
        .unwrap_or(20902);
    let body =
        Bytes::from(serde_json::to_vec(&ResourceForm::twitter()).expect("the form serialises"));
    let app = Router::new().route(
        "/resource",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding the port");
    axum::serve(listener, app).await.expect("serving");
}
