//! Tracardi's wire types.

pub mod form;
pub mod track;
pub mod plugin;
pub mod template;
