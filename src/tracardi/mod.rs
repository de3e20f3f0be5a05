//! Tracardi's wire types.

pub mod form;
