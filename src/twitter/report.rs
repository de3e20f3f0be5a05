//! What a credential check tells the operator.

use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One thing wrong (or worth knowing) about the keys, with how to fix it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct CredentialProblem {
    /// Stable name, e.g. `read_only_token`.
    pub code: &'static str,
    pub severity: Severity,
    /// The form field the problem is about, when it is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    pub message: String,
    pub fix: String,
}

/// The account the keys act as.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub name: String,
}

/// The permission baked into the access token (X's `x-access-level` header).
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub enum AccessLevel {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "read-write")]
    ReadWrite,
    #[serde(rename = "read-write-directmessages")]
    ReadWriteDirectMessages,
}

impl AccessLevel {
    pub fn from_header(value: &str) -> Option<Self> {
        match value.trim() {
            "read" => Some(Self::Read),
            "read-write" => Some(Self::ReadWrite),
            "read-write-directmessages" => Some(Self::ReadWriteDirectMessages),
            _ => None,
        }
    }
}

/// X's rate-limit window for the endpoint that was called.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets, in seconds since the Unix epoch (UTC).
    pub reset: u64,
}

/// The answer of `POST /validate`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, Eq)]
pub struct ValidationReport {
    /// True when X accepted the keys. Warnings do not make keys invalid.
    pub valid: bool,
    pub account: Option<Account>,
    pub access_level: Option<AccessLevel>,
    /// Empty when all is well.
    pub problems: Vec<CredentialProblem>,
    pub rate_limit: Option<RateLimit>,
    /// True when the answer came from memory instead of a new call to X.
    pub cached: bool,
}

impl ValidationReport {
    /// A report decided before calling X (e.g. an OAuth 2.0 Client ID pasted as the API Key).
    pub fn invalid(problem: CredentialProblem) -> Self {
        Self {
            valid: false,
            account: None,
            access_level: None,
            problems: vec![problem],
            rate_limit: None,
            cached: false,
        }
    }

    /// The first error, if any: what a one-line answer should name.
    pub fn first_error(&self) -> Option<&CredentialProblem> {
        self.problems.iter().find(|p| p.severity == Severity::Error)
    }
}
