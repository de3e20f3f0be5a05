//! The service's own API key and secret: given (`API_KEY`, `SECRET`), kept in
//! `DATA_DIR/service-keys.json`, or generated there.
//!
//! One rule: whatever pair is in force is exactly what the file holds and what the log says. A
//! given value always wins over a stored one; a value neither given nor stored is generated; the
//! file is rewritten whenever it does not hold the pair in force, so that `cat
//! service-keys.json` shows the API key Tracardi must be given. The file is only left out when
//! both values are given and there is no file yet (nothing to remember, nothing stale to show).

use crate::config::ConfigError;
use secrecy::{ExposeSecret, SecretString};
use std::path::{Path, PathBuf};

pub const KEYS_FILE: &str = "service-keys.json";

/// Where one of the two values in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `API_KEY` or `SECRET`.
    Given,
    /// The file, as an earlier start left it.
    Stored,
    /// Made now, and written to the file.
    Generated,
}

/// Where the API key and secret in force come from: what the start-up log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySource {
    pub api_key: Origin,
    pub secret: Origin,
    /// The file holding both values in force; `None` when both were given and no file existed.
    pub file: Option<PathBuf>,
    /// The settings (`API_KEY`, `SECRET`) whose value replaced a different one in the file.
    pub replaced: Vec<&'static str>,
}

/// The API key and secret in force, and where they come from.
pub struct ServiceKeys {
    pub api_key: SecretString,
    pub secret: SecretString,
    pub source: KeySource,
}

impl KeySource {
    /// The start-up line saying where the keys in force come from (never their values).
    pub fn describe(&self) -> String {
        use Origin::*;
        let Some(path) = &self.file else {
            return "API key and secret taken from API_KEY and SECRET (no key file is kept)".into();
        };
        let path = path.display();
        match (self.api_key, self.secret) {
            (Generated, Generated) => format!(
                "generated a new API key and secret and stored them in {path} (owner-only): give \
                 Tracardi the api_key from that file"
            ),
            (Stored, Stored) => format!(
                "API key and secret read from {path}: give Tracardi the api_key from that file"
            ),
            (Given, Given) => {
                format!("API key and secret taken from API_KEY and SECRET; {path} holds the same")
            }
            (api_key, secret) => {
                let origin = |origin: Origin, setting: &str| match origin {
                    Given => format!("from {setting}"),
                    Stored => format!("read from {path}"),
                    Generated => "newly generated".to_owned(),
                };
                format!(
                    "API key {}, secret {}; {path} holds both (owner-only): give Tracardi the \
                     api_key from that file{}",
                    origin(api_key, "API_KEY"),
                    origin(secret, "SECRET"),
                    if api_key == Given {
                        ", the same as API_KEY"
                    } else {
                        ""
                    },
                )
            }
        }
    }

    /// One line when a given value replaced a different stored one: which one wins.
    pub fn conflict(&self) -> Option<String> {
        let path = self.file.as_ref()?.display();
        match self.replaced.as_slice() {
            [] => None,
            [setting] => Some(format!(
                "{setting} differs from the {} stored in {path}: {setting} wins, and the file now holds \
                 it (tokens Tracardi got before no longer work: press \"Get Secret\" again)",
                setting.to_ascii_lowercase()
            )),
            _ => Some(format!(
                "API_KEY and SECRET differ from those stored in {path}: the given values win, and the \
                 file now holds them (tokens Tracardi got before no longer work: press \"Get Secret\" again)"
            )),
        }
    }
}

/// Resolves the API key and secret in force from the given values and `data_dir`, writing the
/// file when it does not hold them. `given_*` are already checked (non-empty, a valid key).
pub fn resolve(
    given_key: Option<&str>,
    given_secret: Option<&str>,
    data_dir: &Path,
) -> Result<ServiceKeys, ConfigError> {
    let path = data_dir.join(KEYS_FILE);
    let stored = read(&path)?;
    if stored.is_none()
        && let (Some(key), Some(secret)) = (given_key, given_secret)
    {
        return Ok(ServiceKeys {
            api_key: key.into(),
            secret: secret.into(),
            source: KeySource {
                api_key: Origin::Given,
                secret: Origin::Given,
                file: None,
                replaced: Vec::new(),
            },
        });
    }
    let mut replaced = Vec::new();
    let mut pick =
        |setting: &'static str, given: Option<&str>, stored: Option<&str>| match (given, stored) {
            (Some(given), stored) => {
                if stored.is_some_and(|stored| stored != given) {
                    replaced.push(setting);
                }
                (given.to_owned(), Origin::Given)
            }
            (None, Some(stored)) => (stored.to_owned(), Origin::Stored),
            (None, None) => (crate::random::hex::<32>(), Origin::Generated),
        };
    let (api_key, key_origin) = pick(
        "API_KEY",
        given_key,
        stored.as_ref().map(|s| s.api_key.expose_secret()),
    );
    let (secret, secret_origin) = pick(
        "SECRET",
        given_secret,
        stored.as_ref().map(|s| s.secret.expose_secret()),
    );
    let holds_them = stored.as_ref().is_some_and(|s| {
        s.api_key.expose_secret() == api_key && s.secret.expose_secret() == secret
    });
    if !holds_them {
        write(data_dir, &path, &api_key, &secret)?;
    }
    Ok(ServiceKeys {
        api_key: api_key.into(),
        secret: secret.into(),
        source: KeySource {
            api_key: key_origin,
            secret: secret_origin,
            file: Some(path),
            replaced,
        },
    })
}

struct Stored {
    api_key: SecretString,
    secret: SecretString,
}

fn io_error(path: &Path, e: std::io::Error) -> ConfigError {
    ConfigError::new(
        "DATA_DIR",
        format!(
            "cannot keep the API key and secret in {}: {e}",
            path.display()
        ),
    )
}

/// The stored pair, `None` when there is no file.
fn read(path: &Path) -> Result<Option<Stored>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
        ConfigError::new(
            "DATA_DIR",
            format!(
                "{} is not the JSON this service wrote; delete it to generate new keys",
                path.display()
            ),
        )
    })?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    match (field("api_key"), field("secret")) {
        (Some(api_key), Some(secret)) => Ok(Some(Stored {
            api_key: api_key.into(),
            secret: secret.into(),
        })),
        _ => Err(ConfigError::new(
            "DATA_DIR",
            format!(
                "{} lacks api_key or secret; delete it to generate new keys",
                path.display()
            ),
        )),
    }
}

/// Replaces the file atomically (a temporary file renamed over it), readable by its owner only.
fn write(data_dir: &Path, path: &Path, api_key: &str, secret: &str) -> Result<(), ConfigError> {
    let text = serde_json::json!({"api_key": api_key, "secret": secret}).to_string();
    std::fs::create_dir_all(data_dir).map_err(|e| io_error(path, e))?;
    crate::files::replace_owner_only(path, text.as_bytes()).map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "a-given-api-key-that-is-long-enough-0123";
    const OTHER_KEY: &str = "another-api-key-that-is-long-enough-4567";

    fn file(dir: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(KEYS_FILE)).unwrap()).unwrap()
    }

    fn in_force(keys: &ServiceKeys) -> serde_json::Value {
        serde_json::json!({"api_key": keys.api_key.expose_secret(), "secret": keys.secret.expose_secret()})
    }

    #[test]
    fn none_given_generates_both_once_then_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(None, None, dir.path()).unwrap();
        assert_eq!(
            (first.source.api_key, first.source.secret),
            (Origin::Generated, Origin::Generated)
        );
        assert_eq!(file(dir.path()), in_force(&first));
        assert!(
            first
                .source
                .describe()
                .starts_with("generated a new API key and secret")
        );
        assert_eq!(first.source.conflict(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEYS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let second = resolve(None, None, dir.path()).unwrap();
        assert_eq!(
            (second.source.api_key, second.source.secret),
            (Origin::Stored, Origin::Stored)
        );
        assert_eq!(in_force(&second), in_force(&first));
        assert!(
            second
                .source
                .describe()
                .starts_with("API key and secret read from")
        );
    }

    #[test]
    fn both_given_without_a_file_keeps_none() {
        let dir = tempfile::tempdir().unwrap();
        let keys = resolve(Some(KEY), Some("s3"), dir.path()).unwrap();
        assert_eq!(keys.api_key.expose_secret(), KEY);
        assert_eq!(keys.source.file, None);
        assert!(!dir.path().join(KEYS_FILE).exists());
        assert_eq!(
            keys.source.describe(),
            "API key and secret taken from API_KEY and SECRET (no key file is kept)"
        );
    }

    /// The bug this module was written for: API_KEY alone used to run with that key while the
    /// file held a different, generated one, and the log sent Tracardi to the file.
    #[test]
    fn api_key_alone_is_what_the_file_holds_with_a_generated_secret() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(Some(KEY), None, dir.path()).unwrap();
        assert_eq!(first.api_key.expose_secret(), KEY);
        assert_eq!(
            (first.source.api_key, first.source.secret),
            (Origin::Given, Origin::Generated)
        );
        assert_eq!(file(dir.path()), in_force(&first));
        let line = first.source.describe();
        assert!(
            line.starts_with("API key from API_KEY, secret newly generated;"),
            "{line}"
        );
        assert!(line.ends_with("the same as API_KEY"), "{line}");

        // The next start keeps the generated secret: the tokens Tracardi holds stay valid.
        let second = resolve(Some(KEY), None, dir.path()).unwrap();
        assert_eq!(in_force(&second), in_force(&first));
        assert_eq!(second.source.secret, Origin::Stored);
        assert_eq!(second.source.conflict(), None);
        // And without API_KEY the file's pair is the one in force.
        let third = resolve(None, None, dir.path()).unwrap();
        assert_eq!(in_force(&third), in_force(&first));
    }

    #[test]
    fn secret_alone_is_what_the_file_holds_with_a_generated_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = resolve(None, Some("given-secret"), dir.path()).unwrap();
        assert_eq!(keys.secret.expose_secret(), "given-secret");
        assert_eq!(
            (keys.source.api_key, keys.source.secret),
            (Origin::Generated, Origin::Given)
        );
        assert_eq!(file(dir.path()), in_force(&keys));
        assert!(
            keys.source
                .describe()
                .starts_with("API key newly generated, secret from SECRET;")
        );
    }

    #[test]
    fn a_given_value_that_differs_from_the_file_wins_once_said() {
        let dir = tempfile::tempdir().unwrap();
        let generated = resolve(None, None, dir.path()).unwrap();

        let keys = resolve(Some(OTHER_KEY), None, dir.path()).unwrap();
        assert_eq!(keys.api_key.expose_secret(), OTHER_KEY);
        // The stored secret is kept; the file now holds the pair in force.
        assert_eq!(
            keys.secret.expose_secret(),
            generated.secret.expose_secret()
        );
        assert_eq!(file(dir.path()), in_force(&keys));
        assert_eq!(keys.source.replaced, ["API_KEY"]);
        let conflict = keys.source.conflict().expect("the conflict is said");
        assert!(
            conflict.starts_with("API_KEY differs from the api_key stored in"),
            "{conflict}"
        );
        assert!(conflict.contains("API_KEY wins"), "{conflict}");
        assert!(!conflict.contains(OTHER_KEY), "{conflict}");

        // Said once: the next start with the same value finds the file in agreement.
        let again = resolve(Some(OTHER_KEY), None, dir.path()).unwrap();
        assert_eq!(again.source.conflict(), None);
    }

    #[test]
    fn both_given_and_a_different_file_the_given_pair_wins_and_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        resolve(None, None, dir.path()).unwrap();
        let keys = resolve(Some(KEY), Some("given-secret"), dir.path()).unwrap();
        assert_eq!(keys.api_key.expose_secret(), KEY);
        assert_eq!(keys.secret.expose_secret(), "given-secret");
        assert_eq!(file(dir.path()), in_force(&keys));
        assert_eq!(keys.source.replaced, ["API_KEY", "SECRET"]);
        assert!(
            keys.source
                .conflict()
                .unwrap()
                .starts_with("API_KEY and SECRET differ from those stored in")
        );
        assert!(
            keys.source
                .describe()
                .starts_with("API key and secret taken from API_KEY and SECRET;")
        );
        // Given the same pair again, nothing differs and nothing is said about it.
        let again = resolve(Some(KEY), Some("given-secret"), dir.path()).unwrap();
        assert_eq!(again.source.conflict(), None);
    }

    #[test]
    fn a_broken_file_names_itself_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEYS_FILE), "{\"api_key\": 1}").unwrap();
        let err = resolve(Some(KEY), None, dir.path()).err().unwrap();
        assert_eq!(err.setting, "DATA_DIR");
        assert!(err.problem.contains("delete it"), "{err}");
    }
}
