//! Field ownership: `metadata.managedFields` as the real server's field manager keeps it
//! (structured-merge-diff), for the kinds served. One concept per file:
//! - `fields`: field sets — the paths of an object's fields, each element's text, and what
//!   is a member;
//! - `fields_v1`: the `fieldsV1` notation of a set;
//! - `entries`: the `managedFields` entries of an object;
//! - `update`: a non-apply write (`operation: Update`) and its manager;
//! - `apply`: server-side apply (`operation: Apply`), its conflicts and forcing.
//!
//! A field set is a set of paths; each path element is written as in `fieldsV1`:
//! `f:<field>`, `k:{"<key>":<value>}` for an item of a list with a merge key, `v:<json>` for an
//! item of a set list (`finalizers`). A path is a member when it is a leaf (scalar, atomic list,
//! empty object), a string map (`labels`, `requests`, …) or a list item; structs with fields
//! are not members, so they appear in `fieldsV1` only as parents (no `"."`).
//!
//! Writers: an apply (`operation: Apply`) owns exactly the fields of its configuration; every
//! other write (`operation: Update`) takes the fields it changed from everybody else.

pub mod apply;
pub mod entries;
pub mod fields;
pub mod fields_v1;
pub mod update;

/// The implementation before the rewrite for speed, which the live one is checked against.
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use apply::apply;
pub use update::{Writer, record_update, update_manager};
