//! Log lines recorded in the call's report. The host bounds their number and size per call, so
//! logging is cheap to leave in.

use crate::bindings::hyperagent::agent::host::{self, LogLevel};

pub fn debug(message: impl AsRef<str>) {
    host::log(LogLevel::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    host::log(LogLevel::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    host::log(LogLevel::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    host::log(LogLevel::Error, message.as_ref());
}
