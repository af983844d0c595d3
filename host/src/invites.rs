//! Invites: a technician in a live session asks for a code for a colleague ([`Request::Invite`]); the host
//! registers with the relay again, exactly as for a first code (a fresh nameplate, a fresh secret made
//! here, the same PAKE), and the colleague who pairs with it becomes another participant of the same
//! [`Hub`](crate::Hub), asked about like the first and with an end-to-end connection of its own. The
//! relay sees one more host registration and one more session; it never holds a key.
//!
//! At most one invite is open at a time. It ends when a colleague claims it, when it expires, when a wrong
//! guess burns it (three burned in a row and the session takes no more), or when it is withdrawn: by the
//! technician who asked, or because they left. [`Invites`] is that bookkeeping, pure; `run_host` drives it.
//!
//! [`Request::Invite`]: tether_shared::session_proto::Request::Invite

use std::time::Duration;

use tether_shared::net::pairing::{HostOutcome, HostRendezvous, Restart, Session};
use tether_shared::net::{RelaySpec, Timeouts};
use tether_shared::session_proto::{HostControl, InviteNews};
use tokio::sync::mpsc;

/// Wrong (or abandoned) invite codes in a row after which the session takes no more invites, as for
/// first codes.
pub const MAX_BURNED_IN_A_ROW: u32 = 3;

/// What a participant's request handler tells `run_host` about invites. `news` is the asking
/// participant's control writer: the answer goes there, and it names who asked.
#[derive(Debug)]
pub enum InviteCommand {
    /// `session`: the asker's session's resume commitment, which the relay's audit row of the invite names.
    Open {
        news: mpsc::Sender<HostControl>,
        session: [u8; 32],
        /// The asker as the user knows them (verified account or typed name): "invited by …".
        by: String,
    },
    Withdraw {
        news: mpsc::Sender<HostControl>,
    },
}

/// The channel into `run_host`'s invite handling (`None` in a session: this host takes no invites).
pub type InviteSender = mpsc::UnboundedSender<InviteCommand>;

/// What to do about a command or an ended invite, decided by [`Invites`].
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start an invite for this asker.
    Start,
    /// Tell the asker why not; nothing changes.
    Refuse(String),
    /// Drop the open invite (its code dies with its relay connection) and tell the asker.
    Withdraw,
    /// Nothing to do (a withdrawal from someone with no open invite).
    Ignore,
}

/// Technicians in one session at most, unless configured otherwise ([`crate::HostConfig::max_viewers`]).
pub const DEFAULT_MAX_VIEWERS: usize = 4;

/// Who has the open invite and how many were burned in a row. No I/O.
#[derive(Debug)]
pub struct Invites {
    open: Option<mpsc::Sender<HostControl>>,
    burned_in_a_row: u32,
    max_viewers: usize,
}

impl Invites {
    /// At most `max_viewers` technicians in the session, the one an open invite may bring included.
    pub fn new(max_viewers: usize) -> Self {
        Self { open: None, burned_in_a_row: 0, max_viewers }
    }

    /// A technician asks for an invite (`news` is their control writer) while `connected` technicians
    /// are in the session.
    pub fn handle_open(&mut self, news: &mpsc::Sender<HostControl>, connected: usize) -> Decision {
        if connected >= self.max_viewers {
            return Decision::Refuse(format!(
                "this session already has {connected} technicians, the most this host allows"
            ));
        }
        if self.open.is_some() {
            return Decision::Refuse("an invite is already open in this session; withdraw it first".into());
        }
        if self.burned_in_a_row >= MAX_BURNED_IN_A_ROW {
            return Decision::Refuse(format!(
                "{} invite codes in a row were tried wrong or abandoned; this session takes no more invites",
                self.burned_in_a_row
            ));
        }
        self.open = Some(news.clone());
        Decision::Start
    }

    /// A technician withdraws their invite.
    pub fn handle_withdraw(&mut self, news: &mpsc::Sender<HostControl>) -> Decision {
        match &self.open {
            Some(open) if open.same_channel(news) => {
                self.open = None;
                Decision::Withdraw
            }
            _ => Decision::Ignore,
        }
    }

    /// A participant's session ended: the invite it asked for goes with it.
    pub fn handle_left(&mut self) -> Decision {
        match &self.open {
            Some(open) if open.is_closed() => {
                self.open = None;
                Decision::Withdraw
            }
            _ => Decision::Ignore,
        }
    }

    /// The open invite ended: `claimed` by a colleague, or not (expired, burned, failed).
    pub fn handle_ended(&mut self, outcome: &InviteOutcome) {
        self.open = None;
        match outcome {
            InviteOutcome::Claimed(_) => self.burned_in_a_row = 0,
            InviteOutcome::Burned => self.burned_in_a_row += 1,
            InviteOutcome::Expired | InviteOutcome::Failed => {}
        }
    }

    /// Where the open invite's news goes.
    pub fn asker(&self) -> Option<&mpsc::Sender<HostControl>> {
        self.open.as_ref()
    }
}

/// How one invite ended.
#[derive(Debug)]
pub enum InviteOutcome {
    Claimed(Box<Session>),
    Expired,
    Burned,
    Failed,
}

/// Register an invite with the relay, `tell` the code, and wait for a colleague to pair with it.
pub async fn run(
    relay: &RelaySpec,
    timeouts: Timeouts,
    session: [u8; 32],
    tell: impl Fn(InviteNews),
) -> InviteOutcome {
    let registered = async {
        let mut rendezvous = HostRendezvous::connect(relay, timeouts).await?;
        let (code, expires) = rendezvous.register_invite(session).await?;
        Ok::<_, tether_shared::net::ClientError>((rendezvous, code, expires))
    };
    let (rendezvous, code, expires) = match registered.await {
        Ok(registered) => registered,
        Err(e) => {
            tell(InviteNews::Unavailable { why: format!("the relay gave no invite code: {e}") });
            return InviteOutcome::Failed;
        }
    };
    tell(InviteNews::Code { code: code.to_string(), expires_secs: secs(expires) });
    match rendezvous.wait_for_viewer(&code).await {
        Ok(HostOutcome::Paired(session)) => {
            tell(InviteNews::Claimed);
            InviteOutcome::Claimed(Box::new(session))
        }
        Ok(HostOutcome::Restart(_, Restart::Expired)) => {
            tell(InviteNews::Expired);
            InviteOutcome::Expired
        }
        // A wrong guess, a pairing left half-way: the code is burned, as a first code would be.
        Ok(HostOutcome::Restart(_, _)) => {
            tell(InviteNews::Burned);
            InviteOutcome::Burned
        }
        Ok(HostOutcome::RelayLost(e)) => {
            tell(InviteNews::Unavailable { why: format!("the connection to the relay was lost: {e}") });
            InviteOutcome::Failed
        }
        Err(e) => {
            tell(InviteNews::Unavailable { why: format!("the invite failed: {e}") });
            InviteOutcome::Failed
        }
    }
}

/// The host user's line for news of the invite `by` asked for (`None`: the consent card says it).
pub fn describe(by: &str, news: &InviteNews) -> Option<String> {
    match news {
        InviteNews::Code { expires_secs, .. } => Some(format!(
            "{by} made an invite code for a colleague (valid {} min). You will be asked before anyone joins.",
            expires_secs.div_ceil(60)
        )),
        InviteNews::Expired => Some(format!("The invite {by} made expired unused.")),
        InviteNews::Burned => {
            Some(format!("Someone entered a wrong invite code, so the invite {by} made no longer works."))
        }
        InviteNews::Withdrawn => Some(format!("The invite {by} made was withdrawn.")),
        InviteNews::Claimed | InviteNews::Unavailable { .. } => None,
    }
}

fn secs(d: Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invite_at_a_time_withdrawn_only_by_its_asker_and_gone_with_them() {
        let mut invites = Invites::new(DEFAULT_MAX_VIEWERS);
        let (alice, alice_rx) = mpsc::channel(1);
        let (bob, _bob_rx) = mpsc::channel(1);
        assert_eq!(invites.handle_open(&alice, 1), Decision::Start);
        assert!(matches!(invites.handle_open(&bob, 1), Decision::Refuse(_)));
        assert_eq!(invites.handle_withdraw(&bob), Decision::Ignore, "not Bob's to withdraw");
        assert_eq!(invites.handle_left(), Decision::Ignore, "Alice is still here");
        drop(alice_rx);
        assert_eq!(invites.handle_left(), Decision::Withdraw, "Alice left: her invite goes");
        assert_eq!(invites.handle_open(&bob, 1), Decision::Start);
        assert_eq!(invites.handle_withdraw(&bob), Decision::Withdraw);
        assert!(invites.asker().is_none());
    }

    #[test]
    fn three_burned_in_a_row_close_the_session_to_invites_and_a_claim_resets_the_count() {
        let mut invites = Invites::new(DEFAULT_MAX_VIEWERS);
        let (alice, _rx) = mpsc::channel(1);
        for _ in 0..MAX_BURNED_IN_A_ROW - 1 {
            assert_eq!(invites.handle_open(&alice, 1), Decision::Start);
            invites.handle_ended(&InviteOutcome::Burned);
        }
        assert_eq!(invites.handle_open(&alice, 1), Decision::Start);
        invites.handle_ended(&InviteOutcome::Expired);
        assert_eq!(invites.handle_open(&alice, 1), Decision::Start, "an expiry is not a guess");
        invites.handle_ended(&InviteOutcome::Burned);
        assert!(matches!(invites.handle_open(&alice, 1), Decision::Refuse(_)));
    }

    #[test]
    fn no_invite_once_the_session_has_its_most_technicians() {
        let mut invites = Invites::new(2);
        let (alice, _rx) = mpsc::channel(1);
        assert_eq!(invites.handle_open(&alice, 1), Decision::Start);
        invites.handle_ended(&InviteOutcome::Expired);
        assert!(
            matches!(invites.handle_open(&alice, 2), Decision::Refuse(why) if why.contains("already has 2"))
        );
    }
}
