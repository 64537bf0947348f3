//! The one mapping from check keys ([`CheckSpec`]) to a probe ([`SETUP`], handed to the library as a
//! [`CheckSetup`]): the `imapref probe` arguments a check stands for
//! ([`probe_args`]), validated into [`ProbeSettings`] by the same code as `imapref probe` ([`probe_settings`]), and the
//! password from `password_env` or `password_file` ([`password`]). `imapref check` (each `[[check]]`) and
//! `imapref exporter` (each `[module.NAME]`, with the scrape's target) both go through here.
//!
//! Paths in the keys (`ca_file`, `password_file`) are taken relative to the directory of the file that names them.
//! Errors are one sentence each; the password itself never appears in one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::check::spec::{AuthKey, CheckSpec, FollowKey, TlsKey};
use crate::check::CheckSetup;
use crate::cli::password::PasswordArgs;
use crate::cli::probe::{AuthArg, FollowArg, ProbeArgs, StartTlsArg, TlsArgs};
use crate::probe::ProbeSettings;
use crate::secret::Secret;

/// A path from a check or config file, taken relative to the file's directory.
pub fn relative_to(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// The `imapref probe` arguments a check stands for (the password is read separately, by [`password`]).
pub fn probe_args(spec: &CheckSpec, base: &Path) -> Result<ProbeArgs, String> {
    let Some(target) = spec.target.clone() else {
        return Err("no `target`".into());
    };
    let tls = spec.tls.unwrap_or(TlsKey::None);
    Ok(ProbeArgs {
        target,
        user: spec.login.clone(),
        password: PasswordArgs::default(),
        tls: TlsArgs {
            tls: tls == TlsKey::Tls,
            starttls: match tls {
                TlsKey::Starttls => Some(StartTlsArg::Required),
                TlsKey::StarttlsOpportunistic => Some(StartTlsArg::Opportunistic),
                TlsKey::None | TlsKey::Tls => None,
            },
            ca_file: spec.ca_file.as_deref().map(|p| relative_to(base, p)),
            insecure: spec.insecure.unwrap_or(false),
        },
        auth: match spec.auth.unwrap_or(AuthKey::Login) {
            AuthKey::Login => AuthArg::Login,
            AuthKey::Plain => AuthArg::Plain,
        },
        mailbox: spec.mailbox.clone(),
        read_only: spec.read_only.unwrap_or(false),
        follow: match spec.follow.unwrap_or(FollowKey::Auto) {
            FollowKey::Auto => FollowArg::Auto,
            FollowKey::Never => FollowArg::Never,
            FollowKey::Ask => {
                return Err("`follow = \"ask\"` is refused: checks run unattended".into())
            }
        },
        allow_host: spec.allow_host.clone().unwrap_or_default(),
        max_hops: spec.max_hops.unwrap_or(10),
        max_alternatives: 10,
        no_pipelining: false,
        timeout: spec.timeout.unwrap_or(10.0),
        max_time: spec.max_time.unwrap_or(30.0),
        cert_warn_days: spec.cert_min_days.unwrap_or(14),
        json: false,
        verbose: false,
        format: None,
    })
}

/// The probe settings of a check, validated as `imapref probe` validates its arguments, bounded by the check's
/// `max_time` or else `default_max_time` seconds. No one is asked about a referral: one that needs consent is refused.
pub fn probe_settings(
    spec: &CheckSpec,
    base: &Path,
    default_max_time: f64,
) -> Result<ProbeSettings, String> {
    let args = probe_args(spec, base)?;
    let mut settings = crate::cli::probe::settings(&args, false).map_err(|e| format!("{e:#}"))?;
    settings.max_time = Some(Duration::from_secs_f64(
        spec.max_time.unwrap_or(default_max_time),
    ));
    Ok(settings)
}

/// Reads the check's password from `password_env` or `password_file` (never a prompt, never stdin).
pub fn password(spec: &CheckSpec, base: &Path) -> Result<Secret, String> {
    PasswordArgs {
        password_env: spec.password_env.clone(),
        password_file: spec.password_file.as_deref().map(|p| relative_to(base, p)),
        password_stdin: false,
        ..PasswordArgs::default()
    }
    .read("")
    .map_err(|e| format!("{e:#}"))
}

/// [`probe_settings`] and [`password`] together: what a check needs to run.
pub fn setup(
    spec: &CheckSpec,
    base: &Path,
    default_max_time: f64,
) -> Result<(ProbeSettings, Secret), String> {
    let settings = probe_settings(spec, base, default_max_time)?;
    Ok((settings, password(spec, base)?))
}

/// This mapping, for `imapref check` and `imapref exporter`.
pub const SETUP: CheckSetup = CheckSetup {
    probe_settings,
    password,
};
