-- Characters and inventories (SQLite). Minimal version written by the accounts work for its
-- tests; the persistence work owns the real one.
CREATE TABLE players (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    race        TEXT    NOT NULL,
    class       TEXT    NOT NULL,
    level       INTEGER NOT NULL,
    experience  INTEGER NOT NULL,
    position_x  REAL    NOT NULL,
    position_y  REAL    NOT NULL,
    position_z  REAL    NOT NULL,
    yaw_rad     REAL    NOT NULL,
    zone_id     INTEGER NOT NULL,
    pools       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    last_save   INTEGER NOT NULL
);
CREATE INDEX players_account ON players (account_id);

CREATE TABLE inventory (
    player_id  INTEGER NOT NULL REFERENCES players (id) ON DELETE CASCADE,
    slot       INTEGER NOT NULL,
    item_id    TEXT    NOT NULL,
    quantity   INTEGER NOT NULL,
    properties TEXT    NOT NULL,
    PRIMARY KEY (player_id, slot)
);

-- Character names are unique server-wide, case-insensitively (stored lowercase).
CREATE TABLE character_names (
    name      TEXT    PRIMARY KEY,
    player_id INTEGER NOT NULL
);
