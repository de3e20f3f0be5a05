//! A bare axum server answering `GET /callback` with the same page bytes (and the same
//! protective headers) as tracardi-twitter answers an OAuth 1.0a approval, and nothing else: no
//! parsing, no storing, no middleware, the page rendered once. It is the yardstick for
//! `scripts/bench-callback.sh`.
//!
//! `cargo run --release --example bare_callback -- 20912` listens on 127.0.0.1:20912.

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracardi_twitter::callback::Redirect;
use tracardi_twitter::http::pages;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse().expect("the port is a number"))
        .unwrap_or(20912);
    let redirect = Redirect::parse(Some("oauth_token=t&oauth_verifier=v"))
        .expect("an OAuth 1.0a approval is recognised");
    let (parts, body) = pages::recorded(&redirect).into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .expect("the page is in memory");
    let headers = parts.headers;
    let app = Router::new().route(
        "/callback",
        get(move || {
            let (headers, body) = (headers.clone(), body.clone());
            async move {
                let mut response: Response = body.into_response();
                *response.headers_mut() = headers;
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("binding the port");
    axum::serve(listener, app).await.expect("serving");
}
