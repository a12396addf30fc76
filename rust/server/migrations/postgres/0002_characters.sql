-- Characters and inventories (PostgreSQL), hash-partitioned by character. Minimal version
-- written by the accounts work for its tests; the persistence work owns the real one.
CREATE TABLE players (
    id          BIGSERIAL,
    account_id  BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    race        TEXT    NOT NULL,
    class       TEXT    NOT NULL,
    level       INTEGER NOT NULL,
    experience  BIGINT  NOT NULL,
    position_x  REAL    NOT NULL,
    position_y  REAL    NOT NULL,
    position_z  REAL    NOT NULL,
    yaw_rad     REAL    NOT NULL,
    zone_id     INTEGER NOT NULL,
    pools       JSONB   NOT NULL,
    version     BIGINT  NOT NULL,
    last_save   BIGINT  NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY HASH (id);
CREATE TABLE players_p0 PARTITION OF players FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE players_p1 PARTITION OF players FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE players_p2 PARTITION OF players FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE players_p3 PARTITION OF players FOR VALUES WITH (MODULUS 4, REMAINDER 3);
CREATE INDEX players_account ON players (account_id);

CREATE TABLE inventory (
    player_id  BIGINT  NOT NULL,
    slot       INTEGER NOT NULL,
    item_id    TEXT    NOT NULL,
    quantity   INTEGER NOT NULL,
    properties JSONB   NOT NULL,
    PRIMARY KEY (player_id, slot)
) PARTITION BY HASH (player_id);
CREATE TABLE inventory_p0 PARTITION OF inventory FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE inventory_p1 PARTITION OF inventory FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE inventory_p2 PARTITION OF inventory FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE inventory_p3 PARTITION OF inventory FOR VALUES WITH (MODULUS 4, REMAINDER 3);

-- Character names are unique server-wide, case-insensitively (stored lowercase).
CREATE TABLE character_names (
    name      TEXT   PRIMARY KEY,
    player_id BIGINT NOT NULL
);
