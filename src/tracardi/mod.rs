//! Tracardi's wire types.

pub mod form;
pub mod plugin;
pub mod resource_form;
pub mod template;
pub mod track;
