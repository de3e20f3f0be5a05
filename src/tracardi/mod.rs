//! Tracardi's wire types.

pub mod form;
pub mod track;
