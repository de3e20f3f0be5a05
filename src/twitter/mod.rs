//! X (Twitter): the keys, the HTTP client, and what X's answers mean.

pub mod activity;
pub mod client;
pub mod credentials;
pub mod diagnosis;
pub mod report;
pub mod text;
pub mod webhooks;
