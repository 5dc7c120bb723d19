//! The `latchkey` binary's parts, as a library so the integration tests start the very same
//! server: configuration, start-up and shutdown, and the admin command line.

pub mod admin_cli;
pub mod backchannel;
pub mod backup;
pub mod certificate_listener;
pub mod config;
pub mod crl;
pub mod cross_instance;
pub mod demo;
pub mod edge;
pub mod geoip_update;
pub mod server;
pub mod webhook;
