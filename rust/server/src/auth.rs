//! Login tokens and who may get one.
//!
//! - [`TokenIssuer`] signs short-lived JWTs (HS256; claims `sub` = account, `iat`, `exp`,
//!   `iss` = [`ISSUER`], and optionally `chr` = the character the token binds) for the HTTP
//!   endpoint. A token without `chr` (the plain login token) binds the account's default
//!   character; one with `chr` (from `POST /v1/characters/{id}/session`) that character.
//! - [`JwtAuthority`] is the [`LoginAuthority`] the QUIC server asks when a client presents
//!   its token: it checks the signature, the issuer and the expiry (with at most
//!   [`LEEWAY_S`] of clock skew), and refuses each failure with its own message and
//!   [`DisconnectReason::BadToken`].
//! - [`DevAccounts`] checks usernames and passwords of the development accounts from the
//!   settings (and, with `dev_open_login`, any username with [`DEV_OPEN_PASSWORD`]).
//!   Passwords are compared as SHA-256 digests in constant time. Accounts in the database
//!   (argon2id) are [`crate::accounts`]'.
//! - [`load_or_create_secret`] reads the HMAC secret, generating it at first start.
//!
//! [`DisconnectReason::BadToken`]: mmo_core::control::DisconnectReason::BadToken

use std::io::Write;
use std::path::Path;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use mmo_net::auth::{LoginAuthority, LoginGrant, LoginRefusal};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{DevAccount, valid_account_name};

/// The `iss` claim of every token this server issues and accepts.
pub const ISSUER: &str = "mmo-server";
/// Clock skew tolerated on `exp` and `iat`, seconds.
pub const LEEWAY_S: u64 = 2;
/// Shortest accepted HMAC secret, bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// Length of a generated secret, bytes.
pub const GENERATED_SECRET_BYTES: usize = 32;
/// The password every username accepts when `dev_open_login` is on.
pub const DEV_OPEN_PASSWORD: &str = "dev_password";

/// The claims of a login token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account.
    pub sub: String,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: u64,
    /// Issuer ([`ISSUER`]).
    pub iss: String,
    /// The character the token binds (its database id); absent: the account's default
    /// character. Absent from tokens issued before the claim existed, which still parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chr: Option<u64>,
}

/// Signs login tokens.
pub struct TokenIssuer {
    key: EncodingKey,
    /// Lifetime of issued tokens, seconds (> 0).
    ttl_s: u64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("ttl_s", &self.ttl_s)
            .finish_non_exhaustive()
    }
}

/// A token could not be signed (does not happen with an HMAC key; reported, not unwrapped).
#[derive(Debug)]
pub struct IssueError(pub String);

impl std::fmt::Display for IssueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token signing failed: {}", self.0)
    }
}

impl std::error::Error for IssueError {}

impl TokenIssuer {
    /// An issuer signing with `secret`, tokens living `ttl_s` seconds.
    #[must_use]
    pub fn new(secret: &[u8], ttl_s: u64) -> Self {
        TokenIssuer {
            key: EncodingKey::from_secret(secret),
            ttl_s,
        }
    }

    /// Lifetime of issued tokens, seconds.
    #[must_use]
    pub fn ttl_s(&self) -> u64 {
        self.ttl_s
    }

    /// A token for `account`, issued at `now_unix_s`, expiring `ttl_s` later.
    pub fn issue(&self, account: &str, now_unix_s: u64) -> Result<String, IssueError> {
        self.issue_claims(&Claims {
            sub: account.to_owned(),
            iat: now_unix_s,
            exp: now_unix_s.saturating_add(self.ttl_s),
            iss: ISSUER.to_owned(),
            chr: None,
        })
    }

    /// A token for `account` bound to its character `character_id` (claim `chr`), issued at
    /// `now_unix_s`, expiring `ttl_s` later. The caller checked that the character is the
    /// account's.
    pub fn issue_for_character(
        &self,
        account: &str,
        character_id: u64,
        now_unix_s: u64,
    ) -> Result<String, IssueError> {
        self.issue_claims(&Claims {
            sub: account.to_owned(),
            iat: now_unix_s,
            exp: now_unix_s.saturating_add(self.ttl_s),
            iss: ISSUER.to_owned(),
            chr: Some(character_id),
        })
    }

    /// A token with exactly these claims (tests use it for expired or foreign tokens).
    pub fn issue_claims(&self, claims: &Claims) -> Result<String, IssueError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.key)
            .map_err(|e| IssueError(e.to_string()))
    }
}

/// Verifies login tokens for the QUIC server. See the module docs.
pub struct JwtAuthority {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthority").finish_non_exhaustive()
    }
}

impl JwtAuthority {
    /// An authority accepting tokens signed with `secret`.
    #[must_use]
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the `now_unix_s` the server passes, below.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.set_issuer(&[ISSUER]);
        JwtAuthority {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

fn refusal_for(kind: &ErrorKind) -> LoginRefusal {
    let message = match kind {
        ErrorKind::InvalidSignature => "bad token signature".to_owned(),
        ErrorKind::InvalidIssuer => format!("token not issued by {ISSUER}"),
        ErrorKind::ExpiredSignature => "token expired".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "token not signed with HS256".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("malformed token: no `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => {
            format!("malformed token: bad `{claim}` claim")
        }
        ErrorKind::Json(_) => "malformed token: claims are not the expected JSON".to_owned(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            "malformed token: not a JWT".to_owned()
        }
        other => format!("token refused: {other:?}"),
    };
    LoginRefusal::bad_token(message)
}

impl LoginAuthority for JwtAuthority {
    fn verify(&self, token: &str, now_unix_s: u64) -> Result<LoginGrant, LoginRefusal> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| refusal_for(e.kind()))?;
        let claims = data.claims;
        if now_unix_s > claims.exp.saturating_add(LEEWAY_S) {
            return Err(LoginRefusal::bad_token(format!(
                "token expired {} s ago",
                now_unix_s - claims.exp
            )));
        }
        if claims.iat > now_unix_s.saturating_add(LEEWAY_S) {
            return Err(LoginRefusal::bad_token(
                "token issued in the future (clock skew?)",
            ));
        }
        if !valid_account_name(&claims.sub) {
            return Err(LoginRefusal::bad_token(
                "malformed token: `sub` is not an account name",
            ));
        }
        if claims.chr == Some(0) {
            return Err(LoginRefusal::bad_token(
                "malformed token: `chr` is not a character id",
            ));
        }
        Ok(LoginGrant {
            account: claims.sub,
            character_id: claims.chr,
        })
    }
}

/// The development accounts. See the module docs.
pub struct DevAccounts {
    /// Name and SHA-256 of the password, in settings order.
    accounts: Vec<(String, [u8; 32])>,
    /// Any username with [`DEV_OPEN_PASSWORD`] logs in.
    open_login: bool,
}

impl std::fmt::Debug for DevAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAccounts")
            .field("accounts", &self.accounts.len())
            .field("open_login", &self.open_login)
            .finish()
    }
}

fn digest(password: &str) -> [u8; 32] {
    Sha256::digest(password.as_bytes()).into()
}

impl DevAccounts {
    /// The accounts of the settings; `open_login` as `dev_open_login`.
    #[must_use]
    pub fn new(accounts: &[DevAccount], open_login: bool) -> Self {
        DevAccounts {
            accounts: accounts
                .iter()
                .map(|a| (a.name.clone(), digest(&a.password)))
                .collect(),
            open_login,
        }
    }

    /// Whether `username` may log in with `password`. The password digest is compared in
    /// constant time, also for unknown names (against a digest nobody has), so timing tells
    /// nothing about the password.
    #[must_use]
    pub fn check(&self, username: &str, password: &str) -> bool {
        let given = digest(password);
        let stored = self
            .accounts
            .iter()
            .find(|(name, _)| name == username)
            .map(|(_, d)| *d);
        let known_ok = match stored {
            Some(d) => bool::from(given.ct_eq(&d)),
            None => {
                let _ = given.ct_eq(&[0u8; 32]);
                false
            }
        };
        let open_ok = self.open_login && bool::from(given.ct_eq(&digest(DEV_OPEN_PASSWORD)));
        known_ok || open_ok
    }
}

/// Why the secret could not be had.
#[derive(Debug)]
pub struct SecretError(pub String);

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SecretError {}

/// Reads the HMAC secret at `path` (its bytes as they are, at least [`MIN_SECRET_BYTES`]);
/// `None` when the file does not exist.
fn read_secret(path: &Path) -> Result<Option<Vec<u8>>, SecretError> {
    match std::fs::read(path) {
        Ok(secret) if secret.len() >= MIN_SECRET_BYTES => Ok(Some(secret)),
        Ok(secret) => Err(SecretError(format!(
            "JWT secret file {} holds {} bytes; at least {MIN_SECRET_BYTES} are needed",
            path.display(),
            secret.len()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SecretError(format!(
            "cannot read JWT secret file {}: {e}",
            path.display()
        ))),
    }
}

/// Reads the operator's HMAC secret at `path`, which must exist: a configured secret file
/// is shared between server processes, so a typo must not silently give one process a
/// key of its own.
pub fn load_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    read_secret(path)?.ok_or_else(|| {
        SecretError(format!(
            "JWT secret file {} does not exist (a configured secret file is never \
             generated: create it with at least {MIN_SECRET_BYTES} random bytes, or leave \
             --jwt-secret-file unset to keep one in the data directory)",
            path.display()
        ))
    })
}

/// Reads the HMAC secret at `path` (its bytes as they are, at least [`MIN_SECRET_BYTES`]).
/// When the file does not exist, writes [`GENERATED_SECRET_BYTES`] random bytes there
/// (mode 0600 on Unix, never overwriting a file that appeared meanwhile, removing a file it
/// could not finish writing) and returns them.
pub fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, SecretError> {
    if let Some(secret) = read_secret(path)? {
        return Ok(secret);
    }
    let mut secret = vec![0u8; GENERATED_SECRET_BYTES];
    rand::fill(secret.as_mut_slice());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return load_or_create_secret(path);
        }
        Err(e) => {
            return Err(SecretError(format!(
                "cannot create JWT secret file {}: {e}",
                path.display()
            )));
        }
    };
    if let Err(e) = file.write_all(&secret).and_then(|()| file.sync_all()) {
        // A short file would make every later start fail: remove what this call created.
        let _ = std::fs::remove_file(path);
        return Err(SecretError(format!(
            "cannot write JWT secret file {}: {e}",
            path.display()
        )));
    }
    tracing::info!(path = %path.display(), "generated a new JWT secret");
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use mmo_core::control::DisconnectReason;

    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn issued_tokens_verify_until_they_expire() {
        let issuer = TokenIssuer::new(SECRET, 900);
        let authority = JwtAuthority::new(SECRET);
        let token = issuer.issue("alice", 1_000_000).unwrap();
        assert_eq!(
            authority.verify(&token, 1_000_000).unwrap().account,
            "alice"
        );
        assert_eq!(
            authority.verify(&token, 1_000_900).unwrap().account,
            "alice"
        );
        // Within the leeway, then expired.
        assert!(authority.verify(&token, 1_000_900 + LEEWAY_S).is_ok());
        let refusal = authority.verify(&token, 1_000_903).unwrap_err();
        assert_eq!(refusal.reason, DisconnectReason::BadToken);
        assert!(refusal.message.contains("expired"), "{}", refusal.message);
        let refusal = authority.verify(&token, 999_000).unwrap_err();
        assert!(refusal.message.contains("future"), "{}", refusal.message);
    }

    #[test]
    fn each_bad_token_gets_its_own_message() {
        let authority = JwtAuthority::new(SECRET);
        let forged = TokenIssuer::new(b"another secret, also 32 bytes long", 900)
            .issue("alice", 1_000)
            .unwrap();
        let foreign_issuer = TokenIssuer::new(SECRET, 900)
            .issue_claims(&Claims {
                sub: "alice".into(),
                iat: 1_000,
                exp: 2_000,
                iss: "someone-else".into(),
                chr: None,
            })
            .unwrap();
        let mut messages = Vec::new();
        for token in [forged.as_str(), foreign_issuer.as_str(), "not.a.jwt", ""] {
            let refusal = authority.verify(token, 1_000).unwrap_err();
            assert_eq!(refusal.reason, DisconnectReason::BadToken);
            assert!(!refusal.message.is_empty());
            messages.push(refusal.message);
        }
        assert!(messages[0].contains("signature"), "{messages:?}");
        assert!(messages[1].contains("issued by"), "{messages:?}");
        assert!(messages[2].contains("malformed"), "{messages:?}");
        assert!(messages[3].contains("malformed"), "{messages:?}");
        assert_ne!(messages[0], messages[1]);
    }

    #[test]
    fn the_chr_claim_binds_the_character_and_old_tokens_still_parse() {
        let issuer = TokenIssuer::new(SECRET, 900);
        let authority = JwtAuthority::new(SECRET);
        let bound = issuer.issue_for_character("alice", 42, 1_000).unwrap();
        let grant = authority.verify(&bound, 1_000).unwrap();
        assert_eq!(grant.account, "alice");
        assert_eq!(grant.character_id, Some(42));
        let plain = issuer.issue("alice", 1_000).unwrap();
        assert_eq!(authority.verify(&plain, 1_000).unwrap().character_id, None);
        // A token signed before `chr` existed: its claims JSON has no such key.
        #[derive(Serialize)]
        struct OldClaims {
            sub: String,
            iat: u64,
            exp: u64,
            iss: String,
        }
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &OldClaims {
                sub: "bob".into(),
                iat: 1_000,
                exp: 2_000,
                iss: ISSUER.into(),
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let grant = authority.verify(&old, 1_000).unwrap();
        assert_eq!((grant.account.as_str(), grant.character_id), ("bob", None));
        let zero = issuer
            .issue_claims(&Claims {
                sub: "alice".into(),
                iat: 1_000,
                exp: 2_000,
                iss: ISSUER.into(),
                chr: Some(0),
            })
            .unwrap();
        let refusal = authority.verify(&zero, 1_000).unwrap_err();
        assert!(refusal.message.contains("chr"), "{}", refusal.message);
    }

    #[test]
    fn dev_accounts_check_passwords_and_open_login() {
        let accounts = [DevAccount {
            name: "alice".into(),
            password: "pw1".into(),
        }];
        let closed = DevAccounts::new(&accounts, false);
        assert!(closed.check("alice", "pw1"));
        assert!(!closed.check("alice", "pw2"));
        assert!(!closed.check("bob", "pw1"));
        assert!(!closed.check("bob", DEV_OPEN_PASSWORD));
        let open = DevAccounts::new(&accounts, true);
        assert!(open.check("bob", DEV_OPEN_PASSWORD));
        assert!(open.check("alice", "pw1"));
        assert!(!open.check("bob", "guess"));
    }

    #[test]
    fn a_missing_secret_is_generated_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("mmo-server-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwt_secret");
        let first = load_or_create_secret(&path).unwrap();
        assert_eq!(first.len(), GENERATED_SECRET_BYTES);
        assert_eq!(load_or_create_secret(&path).unwrap(), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(load_secret(&path).unwrap(), first);
        std::fs::write(&path, b"short").unwrap();
        let err = load_or_create_secret(&path).unwrap_err();
        assert!(err.0.contains("at least 32"), "{err}");
        // A configured secret file is read, never generated.
        let missing = dir.join("typo_secret");
        let err = load_secret(&missing).unwrap_err();
        assert!(err.0.contains("does not exist"), "{err}");
        assert!(!missing.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
