//! The exporter's file: TOML with one `[module.NAME]` table per module, each holding the keys of a `[[check]]`
//! ([`CheckSpec`], docs/check.md) except `name` (the module's name is the table's) and `target` (the scrape gives it).
//!
//! [`parse`] reads the whole file and [`Config::validate`] checks every module as the exporter will use it: its probe
//! settings (with a placeholder target) and its password source. Any error stops the exporter at startup with the
//! module's name and line, as blackbox_exporter refuses a bad config; a scrape never meets a half-valid module.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::check::spec::{line_of, short_message, CheckSpec, KEYS};
use crate::check::CheckSetup;

/// The target a module is validated with at startup (any well-formed target would do).
const PLACEHOLDER_TARGET: &str = "localhost:143";

/// One `[module.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Module {
    /// The table's name, as `?module=` gives it.
    pub name: String,
    /// 1-based line of its `[module.NAME]` header.
    pub line: usize,
    /// Its keys (no `name`, no `target`).
    pub spec: CheckSpec,
}

/// The parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The modules by name.
    pub modules: BTreeMap<String, Module>,
    /// The file's directory, against which `ca_file` and `password_file` are taken.
    pub base: PathBuf,
}

/// Why the file cannot be used.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// TOML syntax or an unknown top-level key.
    #[error("line {line}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The TOML error has no position.
    #[error("{0}")]
    Unplaced(String),
    /// No `[module.NAME]` table.
    #[error("no [module.NAME] table: the exporter would have nothing to probe with")]
    NoModules,
    /// One module is wrong.
    #[error("line {line}: module `{name}`: {message}")]
    Module {
        /// The module.
        name: String,
        /// 1-based line of its header.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    module: BTreeMap<String, toml::Spanned<toml::Table>>,
}

/// Parses the file; `base` is its directory. Every module's keys are read, not yet validated ([`Config::validate`]).
pub fn parse(text: &str, base: &Path) -> Result<Config, ConfigError> {
    let raw: RawFile = toml::from_str(text).map_err(|err| match err.span() {
        Some(span) => ConfigError::Toml {
            line: line_of(text, span.start),
            message: short_message(&err),
        },
        None => ConfigError::Unplaced(short_message(&err)),
    })?;
    if raw.module.is_empty() {
        return Err(ConfigError::NoModules);
    }
    let mut modules = BTreeMap::new();
    for (name, table) in raw.module {
        // The table's span starts at its `[module.NAME]` header.
        let line = line_of(text, table.span().start);
        let bad = |message: String| ConfigError::Module {
            name: name.clone(),
            line,
            message,
        };
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(bad("a module name must be non-empty and printable".into()));
        }
        let table = table.into_inner();
        for key in table.keys() {
            match key.as_str() {
                "name" => {
                    return Err(bad(
                        "`name` is not a module key: the module is named by its table".into(),
                    ))
                }
                "target" => return Err(bad(
                    "`target` is not a module key: each scrape gives it (/probe?target=HOST:PORT)"
                        .into(),
                )),
                k if !KEYS.contains(&k) => {
                    let keys: Vec<&str> = KEYS
                        .iter()
                        .copied()
                        .filter(|k| *k != "name" && *k != "target")
                        .collect();
                    return Err(bad(format!(
                        "unknown key `{k}`; the keys are: {}",
                        keys.join(", ")
                    )));
                }
                k => {
                    // Key by key, so that a wrong type names its key.
                    let mut one = toml::Table::new();
                    one.insert(k.to_string(), table[k].clone());
                    CheckSpec::deserialize(toml::Value::Table(one))
                        .map_err(|err| bad(format!("`{k}`: {}", short_message(&err))))?;
                }
            }
        }
        let spec = CheckSpec::deserialize(toml::Value::Table(table))
            .map_err(|err| bad(short_message(&err)))?;
        modules.insert(name.clone(), Module { name, line, spec });
    }
    Ok(Config {
        modules,
        base: base.to_path_buf(),
    })
}

impl Module {
    /// The module's keys with `target` set: what one probe of `target` runs.
    pub fn spec_for(&self, target: &str) -> CheckSpec {
        CheckSpec {
            target: Some(target.to_string()),
            ..self.spec.clone()
        }
    }
}

impl Config {
    /// Checks every module as a scrape will use it: the check keys' own rules, a login name, probe settings that
    /// validate, and a password that can be read now (it is read again at every probe, so a rotated file is seen).
    pub fn validate(&self, setup: &CheckSetup) -> Result<(), ConfigError> {
        for module in self.modules.values() {
            let bad = |message: String| ConfigError::Module {
                name: module.name.clone(),
                line: module.line,
                message,
            };
            let spec = module.spec_for(PLACEHOLDER_TARGET);
            spec.validate().map_err(bad)?;
            if spec.login.as_deref().is_none_or(str::is_empty) {
                return Err(bad(
                    "no `login`: a module needs the login name to probe with".into(),
                ));
            }
            (setup.probe_settings)(&spec, &self.base, crate::check::DEFAULT_MAX_TIME)
                .map_err(bad)?;
            (setup.password)(&spec, &self.base).map_err(bad)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_are_read_with_their_lines() {
        let text = "[module.kb]\nlogin = \"DOMname/UserN/AliasN\"\npassword_env = \"PW\"\nexpect_hops = 1\n\n[module.tls]\nlogin = \"u\"\npassword_file = \"pw\"\ntls = \"tls\"\n";
        let config = parse(text, Path::new("/etc/imapref")).expect("parses");
        assert_eq!(config.modules.len(), 2);
        let kb = &config.modules["kb"];
        assert_eq!(kb.spec.expect_hops, Some(1));
        assert_eq!(kb.line, 1, "the line of the header");
        assert_eq!(kb.spec_for("a:1").target.as_deref(), Some("a:1"));
        assert_eq!(config.modules["tls"].line, 6);
    }

    #[test]
    fn target_name_and_unknown_keys_are_refused_with_the_module() {
        for (text, needle) in [
            (
                "[module.m]\ntarget = \"a\"\n",
                "`target` is not a module key",
            ),
            ("[module.m]\nname = \"a\"\n", "`name` is not a module key"),
            ("[module.m]\nlogn = \"a\"\n", "unknown key `logn`"),
            ("[module.m]\nmax_hops = \"x\"\n", "max_hops"),
        ] {
            let err = parse(text, Path::new(".")).expect_err(text);
            assert!(
                matches!(&err, ConfigError::Module { name, message, .. } if name == "m" && message.contains(needle)),
                "{text}: {err}"
            );
        }
        assert_eq!(
            parse("", Path::new(".")).expect_err("empty"),
            ConfigError::NoModules
        );
        assert!(matches!(
            parse("[modules.m]\n", Path::new(".")).expect_err("top key"),
            ConfigError::Toml { line: 1, .. }
        ));
    }

    #[test]
    fn validation_needs_a_login_and_a_password_source() {
        let no_login =
            parse("[module.m]\npassword_env = \"PW\"\n", Path::new(".")).expect("parses");
        let err = no_login
            .validate(&crate::cli::check_settings::SETUP)
            .expect_err("no login");
        assert!(err.to_string().contains("no `login`"), "{err}");
        let no_pw = parse("[module.m]\nlogin = \"u\"\n", Path::new(".")).expect("parses");
        let err = no_pw
            .validate(&crate::cli::check_settings::SETUP)
            .expect_err("no password");
        assert!(err.to_string().contains("no password source"), "{err}");
        let unset = parse(
            "[module.m]\nlogin = \"u\"\npassword_env = \"IMAPREF_TEST_UNSET_VARIABLE\"\n",
            Path::new("."),
        )
        .expect("parses");
        let err = unset
            .validate(&crate::cli::check_settings::SETUP)
            .expect_err("unset variable");
        assert!(
            err.to_string().contains("IMAPREF_TEST_UNSET_VARIABLE"),
            "{err}"
        );
        let ask = parse(
            "[module.m]\nlogin = \"u\"\npassword_env = \"P\"\nfollow = \"ask\"\n",
            Path::new("."),
        )
        .expect("parses");
        assert!(ask.validate(&crate::cli::check_settings::SETUP).is_err());
    }
}
