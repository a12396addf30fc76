-- Accounts and refresh tokens (SQLite). Times are seconds since the Unix epoch.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL UNIQUE,
    -- argon2id PHC string; '' for development accounts, which never log in by password here.
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Only the SHA-256 of a refresh token is stored.
CREATE TABLE refresh_tokens (
    token_sha256 BLOB    PRIMARY KEY,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at   INTEGER NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);
