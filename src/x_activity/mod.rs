//! X's activity webhooks (x-activity.md): the challenge-response check, signed deliveries from
//! the X Activity API and the Account Activity API, and the Tracardi events they become, each
//! on the profile of the account it concerns. A delivery is stored durably before X gets its
//! 200; a repeat (X retries, replays, or the same post through both APIs) is the same event.

pub mod activity;
mod receive;
pub mod signature;
pub mod time;

pub use receive::*;
