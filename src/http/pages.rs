//! The HTML pages people see: a browser sent back by X (`/callback`) and a visitor starting
//! "Connect Twitter" (`/authorize`). One template (`templates/page.html`), rendered by minijinja
//! with HTML auto-escaping: every text shown, a reason X gave included, is escaped.
//!
//! Every page and redirect from these doors carries headers that keep a verifier or code in the
//! address from leaking through a cache, a `Referer` header or a frame.

use crate::callback::{NotARedirect, Outcome, Redirect};
use crate::connect::{ConnectError, Finished};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::OnceLock;

/// No script, no outside resource, no framing: the page shows text and nothing else.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What a page says.
#[derive(Debug, Serialize)]
pub struct Page<'a> {
    pub title: &'a str,
    pub message: Cow<'a, str>,
    pub detail: Option<String>,
    pub link: Option<Link<'a>>,
}

/// One link on a page, to an address of this service (e.g. "Start again").
#[derive(Debug, Serialize)]
pub struct Link<'a> {
    pub text: &'a str,
    pub href: &'a str,
}

impl<'a> Page<'a> {
    pub fn new(title: &'a str, message: impl Into<Cow<'a, str>>) -> Self {
        Self {
            title,
            message: message.into(),
            detail: None,
            link: None,
        }
    }

    /// The page as HTML text.
    pub fn html(&self) -> String {
        templates()
            .get_template("page.html")
            .and_then(|template| template.render(minijinja::value::Serde(self)))
            .expect("the page template renders any page: it is checked by the tests")
    }

    /// The page as an answer with `status`.
    pub fn answer(&self, status: StatusCode) -> Response {
        let mut response = (status, self.html()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        protect(response)
    }
}

fn templates() -> &'static minijinja::Environment<'static> {
    static TEMPLATES: OnceLock<minijinja::Environment<'static>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let mut templates = minijinja::Environment::new();
        // Auto-escaping follows the name: `.html` templates escape every value they show.
        templates
            .add_template("page.html", include_str!("../../templates/page.html"))
            .expect("templates/page.html is valid");
        templates
    })
}

/// A redirect (`302 Found` or `303 See Other`) to `location`, with the same protections.
pub fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    protect(response)
}

/// A verifier or code in this URL must not leak through a cache, a Referer header or a frame.
pub fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

const REFUSED: &str = "You refused the app access to your Twitter account; nothing was connected. You can close this window.";

/// The page for a redirect recorded for Tracardi.
pub fn recorded(redirect: &Redirect) -> Response {
    let page = match redirect.outcome {
        Outcome::Granted => Page::new(
            "Twitter account connected",
            "Your approval was received. You can close this window.",
        ),
        Outcome::Denied => Page {
            detail: redirect
                .params
                .get("error_description")
                .or_else(|| redirect.params.get("error"))
                .map(|reason| format!("Twitter said: {reason}")),
            ..Page::new("Authorization refused", REFUSED)
        },
    };
    page.answer(StatusCode::OK)
}

/// A connect flow of this service finished: back to the site that started it, with the
/// outcome (`twitter=connected` or `denied`, never a secret), or a page saying how it ended.
pub fn finished(finished: &Finished) -> Response {
    let word = match finished.outcome {
        Outcome::Granted => "connected",
        Outcome::Denied => "denied",
    };
    if let Some(mut target) = finished
        .return_to
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
    {
        target.query_pairs_mut().append_pair("twitter", word);
        return redirect(StatusCode::SEE_OTHER, target.as_str());
    }
    match finished.outcome {
        Outcome::Granted => {
            let message = format!(
                "Your Twitter account @{} is connected. You can close this window.",
                finished.username.as_deref().unwrap_or("?")
            );
            Page::new("Twitter account connected", &message).answer(StatusCode::OK)
        }
        Outcome::Denied => Page::new("Authorization refused", REFUSED).answer(StatusCode::OK),
    }
}

pub fn not_a_redirect(reason: &NotARedirect) -> Response {
    Page {
        detail: Some(format!("Reason: {reason}.")),
        ..Page::new(
            "This is not a Twitter redirect",
            "This address receives people sent back by Twitter after they approve or refuse an app; this \
             request is not one of those, so nothing was recorded.",
        )
    }
    .answer(StatusCode::BAD_REQUEST)
}

/// A redirect that could not be stored: the browser was told nothing, and a reload sends it again.
pub fn not_stored() -> Response {
    Page::new(
        "Please try again",
        "Your answer could not be recorded just now. Reload this page in a moment to send it again.",
    )
    .answer(StatusCode::SERVICE_UNAVAILABLE)
}

/// An `/authorize` address that names no flow, or cannot be read.
pub fn cannot_connect(message: &str) -> Response {
    Page::new("Cannot connect", message).answer(StatusCode::BAD_REQUEST)
}

/// What a visitor reads when a connect flow cannot go on (the status is `ConnectError`'s
/// `IntoResponse`, in `error.rs`; the operator's log says why).
pub fn connect_error(error: &ConnectError) -> Page<'_> {
    match error {
        ConnectError::NotConfigured { flow, missing } => Page::new(
            "Connecting Twitter is not set up",
            format!(
                "This service does not run the {flow} flow yet: its operator must set {missing}."
            ),
        ),
        ConnectError::BadRequest(message) => Page::new("Cannot connect", message.as_str()),
        ConnectError::Stale { restart } => Page {
            link: Some(Link {
                text: "Start again",
                href: restart,
            }),
            ..Page::new(
                "This link has expired",
                "This Twitter sign-in has expired or was already used, so nothing was connected.",
            )
        },
        ConnectError::Forged => Page::new(
            "Cannot connect",
            "This answer from Twitter does not belong to a sign-in started here, so nothing was connected.",
        ),
        ConnectError::Upstream { .. } => Page::new(
            "Twitter did not confirm the connection",
            "Nothing was connected. Please try again later; if it keeps failing, tell the site's team.",
        ),
        ConnectError::Store(_) => Page::new(
            "Please try again",
            "The connection could not be recorded just now. Please start again in a moment.",
        ),
        ConnectError::Busy => Page::new(
            "Please try again in a few minutes",
            "Too many people are connecting Twitter right now. Please start again in a few minutes.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        let redirect = Redirect::parse(Some(
            "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        ))
        .unwrap();
        let page = Page {
            detail: Some(format!(
                "Twitter said: {}",
                redirect.params["error_description"]
            )),
            link: Some(Link {
                text: "<b>again</b>",
                href: "/authorize?flow=oauth2&profile_id=\"><script>",
            }),
            ..Page::new("A <title>", "A & message")
        };
        let html = page.html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{html}"
        );
        assert!(html.contains("<title>A &lt;title&gt;</title>"), "{html}");
        assert!(html.contains("A &amp; message"), "{html}");
        assert!(
            html.contains(
                "href=\"&#x2f;authorize?flow=oauth2&amp;profile_id=&quot;&gt;&lt;script&gt;\""
            ),
            "{html}"
        );
    }

    #[test]
    fn a_plain_page_has_no_detail_or_link() {
        let html = Page::new("Done", "All good.").html();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<h1>Done</h1><p>All good.</p>"), "{html}");
        assert!(!html.contains("detail") || !html.contains("class=\"detail\">"));
        assert!(!html.contains("<a "));
    }
}
