-- Characters and their inventories (SQLite): the PostgreSQL schema without partitioning.
-- Times are seconds since the Unix epoch; positions metres; yaw radians.

-- One row per character. `version` is the save version: a save replaces the row only when
-- the stored version is lower (a late write never overwrites newer state).
CREATE TABLE players (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    name       TEXT    NOT NULL UNIQUE,
    race       TEXT    NOT NULL,
    class      TEXT    NOT NULL,
    level      INTEGER NOT NULL CHECK (level >= 1),
    experience INTEGER NOT NULL CHECK (experience >= 0),
    -- The position.
    pos_x      REAL    NOT NULL,
    pos_y      REAL    NOT NULL,
    pos_z      REAL    NOT NULL,
    yaw        REAL    NOT NULL,
    zone_id    INTEGER NOT NULL CHECK (zone_id BETWEEN 0 AND 65535),
    -- JSON text [["health", 148.0], ...]: current pool values by content id.
    pools      TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 0),
    last_save  INTEGER NOT NULL
);
CREATE INDEX players_account ON players (account_id);

-- Occupied inventory slots. Slots >= 1000 are equipment.
CREATE TABLE inventory (
    player_id  INTEGER NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    slot       INTEGER NOT NULL CHECK (slot >= 0),
    item_id    TEXT    NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    -- JSON text: an object of strings.
    properties TEXT    NOT NULL,
    PRIMARY KEY (player_id, slot)
) WITHOUT ROWID;
