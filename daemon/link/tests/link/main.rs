//! torii-link against a local mutual-TLS test central (rcgen certificates, hyper +
//! tokio-rustls server in the test process).

mod client;
mod common;
mod forwarder;
mod start;
mod sync;
