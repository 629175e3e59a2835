//! The API's OpenAPI 3.1 document, `daemon/toriid/api/openapi.json`, checked in and
//! served as is at `GET /api/v1/openapi.json`.
//!
//! It is written by hand; `tests/openapi.rs` keeps it honest: its paths, methods and
//! `x-torii-role` extensions must equal [`super::routes::ROUTES`], every route must
//! answer as its documented role says when called as each role, and real responses of
//! the main routes must validate against its schemas.

/// The document, as checked in.
pub const DOCUMENT: &str = include_str!("../../api/openapi.json");
