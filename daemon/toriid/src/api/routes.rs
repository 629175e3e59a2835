//! The API's route table: method, path, handler and the role the route needs. The
//! router is built from it ([`super::http::router`]) and the checked-in OpenAPI
//! document (`daemon/toriid/api/openapi.json`, `x-torii-role` on each operation) is
//! tested against it, so the three cannot drift apart.
//!
//! The role column documents the core's decision, it does not make it: command
//! routes are authorized by [`crate::command::Command::required_role`] inside
//! [`crate::command::Core::execute`] (a test sends every route as every role and
//! checks the answer against this column). Routes outside the command path (the
//! event stream, reason codes, whoami) are open to every caller, i.e. viewers.

use axum::routing::{MethodFilter, MethodRouter, on};

use super::http::{self, Api};
use crate::command::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    /// The lower-case name, as OpenAPI's operation keys spell it.
    pub fn name(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Delete => "delete",
        }
    }
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credential is looked at (health, readiness, the document, logging in).
    Public,
    /// Callers whose role allows this one ([`Role::allows`]).
    Role(Role),
}

impl Access {
    /// The `x-torii-role` value.
    pub fn name(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Role(role) => role.name(),
        }
    }
}

pub struct Route {
    pub verb: Verb,
    /// axum's (and OpenAPI's) syntax: `/api/v1/devices/{id}`.
    pub path: &'static str,
    pub access: Access,
    pub handler: fn(MethodFilter) -> MethodRouter<Api>,
}

const PUBLIC: Access = Access::Public;
const VIEWER: Access = Access::Role(Role::Viewer);
const KIOSK: Access = Access::Role(Role::Kiosk);
const OPERATOR: Access = Access::Role(Role::Operator);

macro_rules! routes {
    ($( $verb:ident $path:literal $access:ident => $handler:path; )+) => {
        /// Every API route.
        pub static ROUTES: &[Route] = &[
            $(Route {
                verb: Verb::$verb,
                path: $path,
                access: $access,
                handler: |filter| on(filter, $handler),
            },)+
        ];
    };
}

routes! {
    Get "/healthz" PUBLIC => http::healthz;
    Get "/readyz" PUBLIC => http::readyz;
    Get "/api/v1/openapi.json" PUBLIC => http::openapi;
    Post "/api/v1/session" PUBLIC => http::open_session;
    Delete "/api/v1/session" PUBLIC => http::close_session;
    Get "/api/v1/whoami" VIEWER => http::whoami;
    Get "/api/v1/status" VIEWER => http::status;
    Get "/api/v1/devices" VIEWER => http::list_devices;
    Get "/api/v1/devices/{id}" VIEWER => http::get_device;
    Post "/api/v1/devices/{id}/call" OPERATOR => http::device_call;
    Get "/api/v1/gate" VIEWER => http::gate_public;
    Get "/api/v1/gate/personal" KIOSK => http::gate_personal;
    Post "/api/v1/gate/ed-card" KIOSK => http::confirm_ed_card;
    Post "/api/v1/gate/mode" OPERATOR => http::set_mode;
    Post "/api/v1/gate/doors" OPERATOR => http::set_door;
    Post "/api/v1/gate/alarm/acknowledge" OPERATOR => http::acknowledge_alarm;
    Post "/api/v1/gate/stamp-request" OPERATOR => http::request_stamp;
    Get "/api/v1/transactions" VIEWER => http::list_transactions;
    Get "/api/v1/transactions/{id}" OPERATOR => http::get_transaction;
    Post "/api/v1/documents/inspect" OPERATOR => http::inspect_document;
    Get "/api/v1/reason-codes" VIEWER => http::reason_codes;
    Get "/api/v1/events" VIEWER => http::events;
}
