//! Pairing crypto: SPAKE2 with the code's secret, then key confirmation binding certificate fingerprints.
//!
//! ```text
//! host (A)                       relay (sees only opaque bytes)                    viewer (B)
//! start(Host) ── pake msg ─────────────────────────────────────────────────────────► finish
//! finish ◄──────────────────────────────────────────────────────────── pake msg ── start(Viewer)
//! confirm(fp_host) ── fp_host ‖ MAC_h(fp_host) ────────────────────────────────────► verify → fp_host
//! verify → fp_viewer ◄──────────────────────────── fp_viewer ‖ MAC_v(fp_viewer) ── confirm(fp_viewer)
//! ```
//! The SPAKE2 identities bind the protocol version, both roles and the nameplate, and the confirmation keys
//! are derived with those in the context, so a transcript from one session is useless in another. A wrong
//! secret (or a relay that substitutes its own PAKE messages) yields different keys: the MACs fail on both
//! sides and each side sees [`PakeError::WrongCode`]. Each side then pins the confirmed peer fingerprint in
//! its TLS verifier for the end-to-end QUIC connection.

use spake2::{Ed25519Group, Identity, Password, Spake2};

use crate::code::{Nameplate, Secret};
use crate::relay_proto::Role;
use crate::tls::Fingerprint;
use crate::PROTOCOL_VERSION;

const MAC_LEN: usize = 32;
/// Length of a confirmation message: fingerprint then MAC.
pub const CONFIRM_LEN: usize = 32 + MAC_LEN;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PakeError {
    /// The secrets did not match (or someone in the middle changed a message).
    #[error("wrong code: key confirmation failed")]
    WrongCode,
    #[error("malformed pairing message")]
    Malformed,
}

/// A started exchange, waiting for the peer's PAKE message.
pub struct PakeStart {
    state: Spake2<Ed25519Group>,
    role: Role,
    nameplate: Nameplate,
}

impl std::fmt::Debug for PakeStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PakeStart({:?}, {:?})", self.role, self.nameplate)
    }
}

fn identity(role: Role, nameplate: &Nameplate) -> Identity {
    let role = match role {
        Role::Host => "host",
        Role::Viewer => "viewer",
    };
    Identity::new(format!("tether/v{PROTOCOL_VERSION}/{role}/{nameplate}").as_bytes())
}

/// Start the exchange. Returns the state and the message to send to the peer.
pub fn start(role: Role, nameplate: &Nameplate, secret: &Secret) -> (PakeStart, Vec<u8>) {
    let password = Password::new(secret.expose().as_bytes());
    let (id_a, id_b) = (identity(Role::Host, nameplate), identity(Role::Viewer, nameplate));
    let (state, msg) = match role {
        Role::Host => Spake2::<Ed25519Group>::start_a(&password, &id_a, &id_b),
        Role::Viewer => Spake2::<Ed25519Group>::start_b(&password, &id_a, &id_b),
    };
    (PakeStart { state, role, nameplate: nameplate.clone() }, msg)
}

impl PakeStart {
    /// Finish with the peer's message. A malformed message is an error; a wrong secret is only found by
    /// the confirmation step.
    pub fn finish(self, peer_msg: &[u8]) -> Result<SessionKeys, PakeError> {
        let key = self.state.finish(peer_msg).map_err(|_| PakeError::Malformed)?;
        let derive = |label: &str| {
            let mut material = key.clone();
            material.extend_from_slice(self.nameplate.as_str().as_bytes());
            blake3::derive_key(&format!("tether v{PROTOCOL_VERSION} key confirmation {label}"), &material)
        };
        let resume_id = derive("resume id");
        Ok(SessionKeys { role: self.role, host_key: derive("host"), viewer_key: derive("viewer"), resume_id })
    }
}

/// Keys from a finished exchange, one per direction of confirmation.
pub struct SessionKeys {
    role: Role,
    host_key: [u8; 32],
    viewer_key: [u8; 32],
    resume_id: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeys({:?}, <redacted>)", self.role)
    }
}

impl SessionKeys {
    fn key_for(&self, role: Role) -> &[u8; 32] {
        match role {
            Role::Host => &self.host_key,
            Role::Viewer => &self.viewer_key,
        }
    }

    /// The secret both ends use to find each other again on a relay (after a restart); never a key.
    pub fn resume_id(&self) -> [u8; 32] {
        self.resume_id
    }

    /// Our confirmation message: our certificate fingerprint and its MAC under our role's key.
    pub fn confirm(&self, ours: &Fingerprint) -> Vec<u8> {
        let mac = blake3::keyed_hash(self.key_for(self.role), &ours.0);
        let mut msg = ours.0.to_vec();
        msg.extend_from_slice(mac.as_bytes());
        msg
    }

    /// Check the peer's confirmation; on success, the peer's certificate fingerprint to pin.
    pub fn verify_peer(&self, msg: &[u8]) -> Result<Fingerprint, PakeError> {
        if msg.len() != CONFIRM_LEN {
            return Err(PakeError::Malformed);
        }
        let peer = match self.role {
            Role::Host => Role::Viewer,
            Role::Viewer => Role::Host,
        };
        let fp: [u8; 32] = msg[..32].try_into().map_err(|_| PakeError::Malformed)?;
        let mac: [u8; MAC_LEN] = msg[32..].try_into().map_err(|_| PakeError::Malformed)?;
        // blake3::Hash compares in constant time.
        if blake3::keyed_hash(self.key_for(peer), &fp) == blake3::Hash::from(mac) {
            Ok(Fingerprint(fp))
        } else {
            Err(PakeError::WrongCode)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(host_secret: &str, viewer_secret: &str) -> (SessionKeys, SessionKeys) {
        let np = Nameplate::new("482").expect("digits");
        let hs = crate::code::Code::parse(&format!("482{host_secret}")).expect("code").secret;
        let vs = crate::code::Code::parse(&format!("482{viewer_secret}")).expect("code").secret;
        let (h, hm) = start(Role::Host, &np, &hs);
        let (v, vm) = start(Role::Viewer, &np, &vs);
        (h.finish(&vm).expect("host finish"), v.finish(&hm).expect("viewer finish"))
    }

    #[test]
    fn same_secret_confirms_both_fingerprints() {
        let (h, v) = pair("1234567", "1234567");
        let (fh, fv) = (Fingerprint([1; 32]), Fingerprint([2; 32]));
        assert_eq!(v.verify_peer(&h.confirm(&fh)), Ok(fh));
        assert_eq!(h.verify_peer(&v.confirm(&fv)), Ok(fv));
    }

    #[test]
    fn wrong_secret_fails_on_both_sides() {
        let (h, v) = pair("1234567", "1234568");
        let fp = Fingerprint([1; 32]);
        assert_eq!(v.verify_peer(&h.confirm(&fp)), Err(PakeError::WrongCode));
        assert_eq!(h.verify_peer(&v.confirm(&fp)), Err(PakeError::WrongCode));
    }

    #[test]
    fn a_reflected_confirmation_is_refused() {
        let (h, _v) = pair("1234567", "1234567");
        let fp = Fingerprint([1; 32]);
        assert_eq!(h.verify_peer(&h.confirm(&fp)), Err(PakeError::WrongCode));
    }

    #[test]
    fn a_swapped_fingerprint_is_refused() {
        let (h, v) = pair("1234567", "1234567");
        let mut msg = h.confirm(&Fingerprint([1; 32]));
        msg[0] ^= 1;
        assert_eq!(v.verify_peer(&msg), Err(PakeError::WrongCode));
    }

    #[test]
    fn malformed_pake_message_is_an_error() {
        let np = Nameplate::new("482").expect("digits");
        let secret = crate::code::Secret::generate();
        let (h, _) = start(Role::Host, &np, &secret);
        assert_eq!(h.finish(&[1, 2, 3]).map(|_| ()), Err(PakeError::Malformed));
    }
}
