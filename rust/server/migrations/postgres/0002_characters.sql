-- Characters and their inventories (PostgreSQL): the seed's schema, hash-partitioned.
-- Times are seconds since the Unix epoch; positions metres; yaw radians.

CREATE SEQUENCE players_id_seq AS BIGINT;

-- One row per character. `version` is the save version: a save replaces the row only when
-- the stored version is lower (a late write never overwrites newer state).
CREATE TABLE players (
    id         BIGINT NOT NULL DEFAULT nextval('players_id_seq'),
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    name       TEXT   NOT NULL,
    race       TEXT   NOT NULL,
    class      TEXT   NOT NULL,
    level      INT    NOT NULL CHECK (level >= 1),
    experience BIGINT NOT NULL CHECK (experience >= 0),
    -- The position.
    pos_x      REAL   NOT NULL,
    pos_y      REAL   NOT NULL,
    pos_z      REAL   NOT NULL,
    yaw        REAL   NOT NULL,
    zone_id    INT    NOT NULL CHECK (zone_id BETWEEN 0 AND 65535),
    -- [["health", 148.0], ...]: current pool values by content id, in the record's order.
    pools      JSONB  NOT NULL,
    version    BIGINT NOT NULL CHECK (version >= 0),
    last_save  BIGINT NOT NULL,
    PRIMARY KEY (id)
) PARTITION BY HASH (id);
ALTER SEQUENCE players_id_seq OWNED BY players.id;

CREATE TABLE players_p0 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE players_p1 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE players_p2 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE players_p3 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE players_p4 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE players_p5 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE players_p6 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE players_p7 PARTITION OF players FOR VALUES WITH (MODULUS 8, REMAINDER 7);

CREATE INDEX players_account ON players (account_id);

-- Global uniqueness of character names. A unique index on a partitioned table must contain
-- the partition key, so `players.name` cannot be UNIQUE; this small unpartitioned table
-- holds the names instead (one row per character, written and deleted with it).
CREATE TABLE character_names (
    name      TEXT   PRIMARY KEY,
    player_id BIGINT NOT NULL UNIQUE REFERENCES players (id) ON DELETE CASCADE
);

-- Occupied inventory slots. Slots >= 1000 are equipment. No foreign key to `players`:
-- rows are only written for a player row the same transaction has just updated (locked),
-- and deleted with it; a foreign key would add a lookup per row to every batched save.
CREATE TABLE inventory (
    player_id  BIGINT NOT NULL,
    slot       INT    NOT NULL CHECK (slot >= 0),
    item_id    TEXT   NOT NULL,
    quantity   INT    NOT NULL CHECK (quantity >= 1),
    -- Per-instance properties: a JSON object of strings.
    properties JSONB  NOT NULL,
    PRIMARY KEY (player_id, slot)
) PARTITION BY HASH (player_id);

CREATE TABLE inventory_p0 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 0);
CREATE TABLE inventory_p1 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 1);
CREATE TABLE inventory_p2 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 2);
CREATE TABLE inventory_p3 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 3);
CREATE TABLE inventory_p4 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 4);
CREATE TABLE inventory_p5 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 5);
CREATE TABLE inventory_p6 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 6);
CREATE TABLE inventory_p7 PARTITION OF inventory FOR VALUES WITH (MODULUS 8, REMAINDER 7);
