//! Nothing: this crate exists for its dependencies, which the host vendors for exercise builds.
