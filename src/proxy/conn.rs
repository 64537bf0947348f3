//! One client, from accept to its log line: the greeting and the pre-login commands ([`super::front`]), the login
//! upstream with the client's credentials ([`super::upstream`]), the answer, and the relay ([`super::relay`]). A
//! client whose login fails may try again, up to [`MAX_FAILED_LOGINS`] times.

use std::time::Instant;

use tokio::net::TcpStream;

use super::front::{Front, Wait};
use super::record::{Outcome, SessionRecord};
use super::relay::relay;
use super::shared::Shared;
use super::upstream;
use crate::secret::Redactor;
use crate::serve::{Mechanism, PreLogin};
use crate::session::millis_since;
use crate::transport::Transport;

/// After this many failed logins on one connection the proxy says BYE.
pub const MAX_FAILED_LOGINS: u32 = 3;

/// Serves one client, filling in its record as it goes (so that a session cut short still has one).
pub async fn serve(socket: TcpStream, shared: &Shared, record: &mut SessionRecord) {
    let limits = shared.limits;
    let transport = Transport::from_tcp(socket, limits.login_idle);
    let pre = PreLogin::new(&shared.persona, false);
    let mut front = Front::new(
        transport,
        pre,
        shared.acceptor.as_ref(),
        shared.input,
        limits.login_idle,
    );
    if let Err(e) = front.greet().await {
        record.detail = Some(e.to_string());
        return;
    }
    let mut failures = 0;
    let login_by = tokio::time::Instant::now() + limits.login_total;
    loop {
        let waited = tokio::time::timeout_at(login_by, front.next_credentials()).await;
        let Ok(waited) = waited else {
            record.client_tls = front.tls_active();
            record.outcome = Outcome::IdleBeforeLogin;
            record.detail = Some("no login within the time allowed before login".into());
            front.bye("Autologout; no login in time").await;
            break;
        };
        let credentials = match waited {
            Wait::Credentials(c) => c,
            Wait::Ended(outcome, detail) => {
                record.client_tls = front.tls_active();
                if record.attempts == 0 || outcome != Outcome::NoLogin {
                    record.outcome = outcome;
                    if detail.is_some() {
                        record.detail = detail;
                    }
                }
                break;
            }
        };
        record.client_tls = front.tls_active();
        record.attempts += 1;
        let tag = credentials.tag.clone();
        let user = match String::from_utf8(credentials.user.clone()) {
            Ok(user) if !user.is_empty() && !credentials.password.is_empty() => user,
            _ => {
                record.outcome = Outcome::Refused;
                record.detail =
                    Some("no usable user name and password (empty, or not UTF-8)".into());
                failures += 1;
                let answer = format!("{tag} NO [AUTHENTICATIONFAILED] Authentication failed.");
                if front.answer(&answer).await.is_err() || failures >= MAX_FAILED_LOGINS {
                    front.bye("Too many failed logins").await;
                    break;
                }
                continue;
            }
        };
        record.login = Some(user.clone());
        let redactor = Redactor::new(&credentials.password).with_login(&user);
        let t = Instant::now();
        let result = upstream::login(
            &shared.upstream,
            &user,
            &credentials.password,
            credentials.mechanism == Mechanism::Plain,
        )
        .await;
        drop(credentials);
        record.hops = result.hops;
        match result.result {
            Ok(home) => {
                let answered = front.answer(&format!("{tag} {}", home.answer)).await;
                record.login_ms = Some(millis_since(t));
                record.home = Some(home.server.clone());
                record.home_tls = home.transport.is_tls();
                record.outcome = Outcome::Relayed;
                record.detail = None;
                if let Err(e) = answered {
                    record.detail = Some(format!("the client left before the answer: {e}"));
                    home.transport.close().await;
                    break;
                }
                let Some((client, client_unread)) = front.into_parts() else {
                    home.transport.close().await;
                    break;
                };
                let t = Instant::now();
                let relayed = relay(
                    client,
                    home.transport,
                    client_unread,
                    home.unread,
                    limits.relay_idle,
                )
                .await;
                record.relay_ms = Some(millis_since(t));
                record.bytes_up = relayed.up;
                record.bytes_down = relayed.down;
                record.mailbox_referrals = relayed
                    .mailbox_referrals
                    .iter()
                    .map(|u| redactor.redact(u).into_owned())
                    .collect();
                if relayed.idle {
                    record.detail = Some("closed after the idle timeout".into());
                }
                break;
            }
            Err(failed) => {
                record.login_ms = Some(millis_since(t));
                record.outcome = failed.outcome;
                record.detail = Some(redactor.redact(&failed.answer).into_owned());
                failures += 1;
                let answered = front.answer(&format!("{tag} {}", failed.answer)).await;
                if answered.is_err() {
                    break;
                }
                if failures >= MAX_FAILED_LOGINS {
                    front.bye("Too many failed logins").await;
                    break;
                }
            }
        }
    }
}
