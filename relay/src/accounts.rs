//! Technician accounts: `tether-relay user add NAME` makes a token, shown once; only its argon2 hash is
//! stored. A token reads `tether1.<relay-id>.<id>.<secret>` ([`tether_shared::token`]): the relay id names
//! this relay so viewers send the token nowhere else, the id finds the row, argon2's verify compares the
//! secret (in constant time). Tokens of the first format (`tether_<id>_<secret>`, no relay id) verify no
//! more: `user reissue NAME` gives the account a new token. Revoked accounts stay in the table (the audit
//! log names them) but verify no more.
//!
//! Verifying costs an argon2 hash (tens of milliseconds): callers rate-limit claims first and run it on a
//! blocking thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use serde::Serialize;

use tether_shared::token::{RelayId, TechnicianToken};

use crate::store::{now_ms, Store, StoreError};

/// One account as listed to the admin (never with its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@' | ' '))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh secret and its argon2 hash.
fn new_secret() -> Result<(String, String), StoreError> {
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    let secret = hex(&secret);
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Account(e.to_string()))?;
    let hash = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map_err(|e| StoreError::Account(e.to_string()))?
        .to_string();
    Ok((secret, hash))
}

impl Store {
    /// Create an account and return its token (the only time it exists in clear), bound to `relay`: the
    /// relay as its viewers verify it.
    pub fn add_account(&self, name: &str, relay: &RelayId) -> Result<String, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::Account(format!(
                "invalid account name {name:?}: 1–64 letters, digits, spaces, '.', '-', '_' or '@'"
            )));
        }
        let (secret, hash) = new_secret()?;
        let Some(id) = self.db().insert_account(name, &hash, now_ms())? else {
            return Err(StoreError::Account(format!("an account named {name:?} already exists")));
        };
        Ok(TechnicianToken::new(relay.clone(), id, secret).to_text())
    }

    /// A new token for an active account (bound to `relay`); its old token verifies no more.
    pub fn reissue_account(&self, name: &str, relay: &RelayId) -> Result<String, StoreError> {
        let (secret, hash) = new_secret()?;
        let Some(id) = self.db().replace_token_hash(name, &hash)? else {
            return Err(StoreError::Account(format!("no active account named {name:?}")));
        };
        Ok(TechnicianToken::new(relay.clone(), id, secret).to_text())
    }

    pub fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.db().accounts()
    }

    /// Revoke an account's token. False if there is no such active account.
    pub fn revoke_account(&self, name: &str) -> Result<bool, StoreError> {
        self.db().revoke_account(name, now_ms())
    }

    /// The account a token belongs to, if it is valid and not revoked. Tokens of the first format (no
    /// relay id) are not valid. The relay id is not compared: viewers check it, and only the secret proves
    /// anything.
    pub fn verify_token(&self, token: &str) -> Result<Option<String>, StoreError> {
        let Ok(token) = TechnicianToken::parse(token) else { return Ok(None) };
        let (id, secret) = (token.account_id, token.secret());
        let Some((name, hash)) = self.db().active_token_hash(id)? else { return Ok(None) };
        let Ok(parsed) = PasswordHash::new(&hash) else { return Ok(None) };
        Ok(Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok().then_some(name))
    }

    /// Which of `names` are revoked now.
    pub fn revoked_among(&self, names: &[String]) -> Result<Vec<String>, StoreError> {
        self.db().revoked_among(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_revoked_and_are_stored_hashed() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path()).expect("open");
        let relay = RelayId::Name("relay.example.org".into());
        let token = store.add_account("ann", &relay).expect("add");
        assert!(token.starts_with("tether1.relay.example.org."), "{token}");
        assert_eq!(store.verify_token(&token).expect("verify"), Some("ann".into()));
        assert_eq!(store.verify_token(&format!("{token}x")).expect("verify"), None);
        assert_eq!(store.verify_token("nonsense").expect("verify"), None);
        let id: i64 = token.split('.').nth(4).expect("id").parse().expect("number");
        let (_, hash) = store.db().active_token_hash(id).expect("row").expect("active");
        assert!(hash.starts_with("$argon2") && !hash.contains(token.rsplit('.').next().expect("secret")));
        assert!(store.add_account("ann", &relay).is_err(), "names are unique");
        let id = token.split('.').nth(4).expect("id");
        let secret = token.rsplit('.').next().expect("secret");
        assert_eq!(store.verify_token(&format!("tether_{id}_{secret}")).expect("verify"), None, "old format");
        let reissued = store.reissue_account("ann", &relay).expect("reissue");
        assert_eq!(store.verify_token(&token).expect("verify"), None, "the old token is replaced");
        assert_eq!(store.verify_token(&reissued).expect("verify"), Some("ann".into()));
        let token = reissued;
        assert!(store.revoke_account("ann").expect("revoke"));
        assert_eq!(store.verify_token(&token).expect("verify"), None);
        assert_eq!(store.revoked_among(&["ann".into(), "bob".into()]).expect("q"), vec!["ann".to_string()]);
    }
}
