//! Rules for the strings a user hands to a server type or a registry
//! plugin: package names, version specs, arguments, environment names and
//! image references.
//!
//! Every check refuses anything that could be read as a flag, a path, a URL
//! or git/file spec, or a shell word, and names the rule it broke. The
//! crate is pure (no I/O, no dependencies) so that server types, registry
//! plugins and their native tests share exactly the same rules.

mod image;
mod launch;
mod npm;
mod pep440;
mod pypi;
mod registry;
mod shape;

pub use image::check_image;
pub use launch::{
    MAX_ARGS, MAX_ENV, MAX_ENV_VALUE_BYTES, check_arg, check_common, check_env_name, check_env_value, check_options,
    check_path,
};
pub use npm::{check_npm_name, check_npm_version};
pub use pep440::check_pep440;
pub use pypi::{check_pypi_name, normalize_pypi_name};
pub use registry::{RegistryStatus, percent_encode, registry_status};

/// Why an input was refused: the rule it broke, as a sentence naming the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    /// A short id of the rule (`no-flag`, `npm-name`, `pep440`, ...).
    pub rule: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl NameError {
    /// A refusal under `rule`, explained by `message`.
    pub(crate) fn new(rule: &'static str, message: impl Into<String>) -> Self {
        NameError { rule, message: message.into() }
    }
}

impl std::fmt::Display for NameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NameError {}

#[cfg(test)]
mod tests;
