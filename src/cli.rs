//! Pure helpers of the command line (`src/main.rs`), kept here so they have unit tests.

/// The `/health` URL for `tracardi-twitter healthcheck TARGET`, where TARGET is the service's
/// address as a person types it: `127.0.0.1:20000`, `localhost:20000`, `http://host:20000`,
/// with or without `/health`. An unspecified host (`0.0.0.0`, `[::]`, as in `LISTEN_ADDR`) means
/// this machine, reached on its loopback address. The error says what to type instead.
pub fn health_url(target: &str) -> Result<String, String> {
    let target = target.trim();
    let what_to_type = || {
        format!(
            "'{target}' is not the service's address: give it like 127.0.0.1:20000 or \
             http://127.0.0.1:20000"
        )
    };
    if target.is_empty() {
        return Err(what_to_type());
    }
    let with_scheme = if target.contains("://") {
        target.to_owned()
    } else {
        format!("http://{target}")
    };
    let mut url = url::Url::parse(&with_scheme).map_err(|_| what_to_type())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(what_to_type());
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_unspecified() => Some("127.0.0.1"),
        Some(url::Host::Ipv6(ip)) if ip.is_unspecified() => Some("[::1]"),
        _ => None,
    };
    if let Some(loopback) = loopback {
        url.set_host(Some(loopback)).map_err(|_| what_to_type())?;
    }
    let path = url
        .path()
        .trim_end_matches('/')
        .trim_end_matches("/health")
        .to_owned();
    url.set_path(&format!("{path}/health"));
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_url_takes_an_address_as_typed() {
        for (target, url) in [
            ("127.0.0.1:20000", "http://127.0.0.1:20000/health"),
            ("localhost:20000", "http://localhost:20000/health"),
            ("http://127.0.0.1:20000", "http://127.0.0.1:20000/health"),
            ("http://127.0.0.1:20000/", "http://127.0.0.1:20000/health"),
            (
                "http://127.0.0.1:20000/health",
                "http://127.0.0.1:20000/health",
            ),
            (
                "https://tt.example.com/base/",
                "https://tt.example.com/base/health",
            ),
            ("0.0.0.0:20000", "http://127.0.0.1:20000/health"),
            ("[::]:8080", "http://[::1]:8080/health"),
            (
                " tracardi-twitter:20000 ",
                "http://tracardi-twitter:20000/health",
            ),
        ] {
            assert_eq!(health_url(target).as_deref(), Ok(url), "{target}");
        }
    }

    #[test]
    fn health_url_says_what_to_type() {
        for target in ["", ":20000", "ftp://host:21", "http://", "127.0.0.1:port"] {
            let error = health_url(target).unwrap_err();
            assert!(error.contains("like 127.0.0.1:20000"), "{target}: {error}");
        }
    }
}
