-- Accounts and refresh tokens (PostgreSQL). Times are seconds since the Unix epoch.
CREATE TABLE accounts (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT      NOT NULL UNIQUE,
    -- argon2id PHC string; '' for development accounts, which never log in by password here.
    password_hash TEXT      NOT NULL,
    created_at    BIGINT    NOT NULL
);

-- Only the SHA-256 of a refresh token is stored.
CREATE TABLE refresh_tokens (
    token_sha256 BYTEA   PRIMARY KEY,
    account_id   BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    expires_at   BIGINT  NOT NULL,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);
