import type { Database } from "better-sqlite3";

/**
 * Ordered schema migrations. A migration is never edited once released; a change is a new
 * entry, so that every data directory can be brought forward step by step.
 *
 * Every table is keyed by `subject_id` first and cascades from `subjects`, so erasing a
 * subject is one DELETE and cannot leave rows behind; since migration 10 the two tables with a
 * row per delta are keyed by integers instead (`deltas` by `stream_keys.stream_key`,
 * `subject_events` by `subjects.subject_key`) and cascade through them. Times are epoch
 * milliseconds.
 */
export const MIGRATIONS: readonly { readonly version: number; readonly name: string; readonly sql: string }[] = [
  {
    version: 1,
    name: "initial schema",
    sql: `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value BLOB NOT NULL
);

CREATE TABLE subjects (
  subject_id    TEXT PRIMARY KEY,
  created_at    INTEGER NOT NULL,
  event_seq     INTEGER NOT NULL DEFAULT 0,
  event_horizon INTEGER NOT NULL DEFAULT 0,
  next_ord      INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE account_links (
  subject_id  TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  link_id     TEXT NOT NULL,
  platform_id TEXT NOT NULL,
  account_id  TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  ord         INTEGER NOT NULL,
  PRIMARY KEY (subject_id, link_id),
  UNIQUE (platform_id, account_id)
);
CREATE INDEX account_links_by_platform ON account_links(subject_id, platform_id);

CREATE TABLE link_codes (
  code_hash   BLOB PRIMARY KEY,
  subject_id  TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  platform_id TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  used_at     INTEGER
);
CREATE INDEX link_codes_by_subject ON link_codes(subject_id);

CREATE TABLE devices (
  subject_id   TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  device_id    TEXT NOT NULL,
  platform_id  TEXT NOT NULL,
  display_name TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  revoked_at   INTEGER,
  ord          INTEGER NOT NULL,
  PRIMARY KEY (subject_id, device_id)
);

CREATE TABLE grants (
  subject_id      TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  grant_id        TEXT NOT NULL,
  grantor_platform TEXT NOT NULL,
  grantee_platform TEXT NOT NULL,
  stream_type     TEXT NOT NULL,
  access          TEXT NOT NULL CHECK (access IN ('read', 'read-write')),
  created_at      INTEGER NOT NULL,
  revoked_at      INTEGER,
  ord             INTEGER NOT NULL,
  PRIMARY KEY (subject_id, grant_id)
);

CREATE TABLE streams (
  subject_id      TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  stream_id       TEXT NOT NULL,
  uid             TEXT NOT NULL,
  type            TEXT NOT NULL,
  encoding        INTEGER NOT NULL CHECK (encoding IN (1, 2, 3)),
  conflict_policy INTEGER NOT NULL CHECK (conflict_policy IN (1, 2)),
  owner_platform  TEXT NOT NULL,
  genesis_hash    BLOB NOT NULL,
  head_version    INTEGER NOT NULL,
  head_hash       BLOB NOT NULL,
  horizon_version INTEGER NOT NULL,
  horizon_hash    BLOB NOT NULL,
  head_state      BLOB,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL,
  PRIMARY KEY (subject_id, stream_id)
);

CREATE TABLE deltas (
  subject_id      TEXT NOT NULL,
  stream_id       TEXT NOT NULL,
  version         INTEGER NOT NULL,
  payload         BLOB NOT NULL,
  prev_hash       BLOB NOT NULL,
  hash            BLOB NOT NULL,
  device_id       TEXT,
  client_sequence INTEGER NOT NULL,
  batch_first     INTEGER NOT NULL,
  batch_size      INTEGER NOT NULL,
  committed_at    INTEGER NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE client_sequences (
  subject_id      TEXT NOT NULL,
  device_id       TEXT NOT NULL,
  stream_id       TEXT NOT NULL,
  client_sequence INTEGER NOT NULL,
  fingerprint     BLOB NOT NULL,
  outcome         TEXT NOT NULL,
  PRIMARY KEY (subject_id, device_id, stream_id, client_sequence),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX client_sequences_by_stream ON client_sequences(subject_id, stream_id);

CREATE TABLE json_states (
  subject_id TEXT NOT NULL,
  stream_id  TEXT NOT NULL,
  version    INTEGER NOT NULL,
  state      BLOB NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE snapshots (
  subject_id    TEXT NOT NULL,
  stream_id     TEXT NOT NULL,
  version       INTEGER NOT NULL,
  head_hash     BLOB NOT NULL,
  size_bytes    INTEGER NOT NULL,
  snapshot_hash BLOB NOT NULL,
  created_at    INTEGER NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);

CREATE TABLE snapshot_chunks (
  subject_id TEXT NOT NULL,
  stream_id  TEXT NOT NULL,
  version    INTEGER NOT NULL,
  idx        INTEGER NOT NULL,
  data       BLOB NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version, idx),
  FOREIGN KEY (subject_id, stream_id, version) REFERENCES snapshots(subject_id, stream_id, version) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  subject_id    TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  checkpoint_id TEXT NOT NULL,
  resume        TEXT NOT NULL,
  digest        BLOB NOT NULL,
  device_id     TEXT,
  platform_id   TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  ord           INTEGER NOT NULL,
  PRIMARY KEY (subject_id, checkpoint_id)
);
CREATE INDEX checkpoints_by_ord ON checkpoints(subject_id, ord);

CREATE TABLE checkpoint_entries (
  subject_id     TEXT NOT NULL,
  checkpoint_id  TEXT NOT NULL,
  idx            INTEGER NOT NULL,
  stream_id      TEXT NOT NULL,
  stream_uid     TEXT NOT NULL,
  stream_type    TEXT NOT NULL,
  owner_platform TEXT NOT NULL,
  version        INTEGER NOT NULL,
  head_hash      BLOB NOT NULL,
  PRIMARY KEY (subject_id, checkpoint_id, idx),
  FOREIGN KEY (subject_id, checkpoint_id) REFERENCES checkpoints(subject_id, checkpoint_id) ON DELETE CASCADE
) WITHOUT ROWID;

CREATE TABLE handoffs (
  subject_id    TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  handoff_id    TEXT NOT NULL,
  checkpoint_id TEXT NOT NULL,
  source_device TEXT NOT NULL,
  target_device TEXT,
  state         TEXT NOT NULL CHECK (state IN ('offered', 'accepted', 'declined', 'expired')),
  resolved_by   TEXT,
  created_at    INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,
  resolved_at   INTEGER,
  PRIMARY KEY (subject_id, handoff_id)
);
CREATE INDEX handoffs_offered ON handoffs(state, expires_at);

CREATE TABLE subject_events (
  subject_id   TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  committed_at INTEGER NOT NULL,
  body         TEXT NOT NULL,
  PRIMARY KEY (subject_id, seq)
) WITHOUT ROWID;
`,
  },
  {
    version: 2,
    name: "handoffs keep the access keys of their checkpoint",
    // A handoff outlives its checkpoint (deleting the checkpoint expires it), yet stays
    // visible only to platforms that may read every stream of that checkpoint. Handoffs
    // whose checkpoint is already gone keep '[]', which the server reads as "visible to no
    // platform": nothing is left to prove a reader may see them.
    sql: `
ALTER TABLE handoffs ADD COLUMN checkpoint_streams TEXT NOT NULL DEFAULT '[]';
UPDATE handoffs SET checkpoint_streams = (
  SELECT json_group_array(json_array(e.owner_platform, e.stream_type))
  FROM (
    SELECT owner_platform, stream_type FROM checkpoint_entries
    WHERE checkpoint_entries.subject_id = handoffs.subject_id AND checkpoint_entries.checkpoint_id = handoffs.checkpoint_id
    ORDER BY idx
  ) AS e
)
WHERE EXISTS (
  SELECT 1 FROM checkpoint_entries
  WHERE checkpoint_entries.subject_id = handoffs.subject_id AND checkpoint_entries.checkpoint_id = handoffs.checkpoint_id
);
`,
  },
  {
    version: 3,
    name: "portability: moved subjects and migrations",
    // A moved subject keeps its rows (its accounts must still be answered SUBJECT_MOVED)
    // until the redirect period is over and it is erased. Migrations are kept by their
    // target, as JSON: they are read one at a time and never queried by their fields.
    sql: `
CREATE INDEX streams_by_uid ON streams(subject_id, uid);

CREATE TABLE subject_moves (
  subject_id     TEXT PRIMARY KEY REFERENCES subjects(subject_id) ON DELETE CASCADE,
  target         TEXT NOT NULL,
  target_subject TEXT NOT NULL,
  moved_at       INTEGER NOT NULL
);
CREATE INDEX subject_moves_by_time ON subject_moves(moved_at);

CREATE TABLE migrations (
  subject_id   TEXT NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  migration_id TEXT NOT NULL,
  active       INTEGER NOT NULL,
  body         TEXT NOT NULL,
  PRIMARY KEY (subject_id, migration_id)
);
CREATE INDEX migrations_active ON migrations(subject_id, active);
`,
  },
  {
    version: 4,
    name: "client sequences keep the latest outcome only",
    // APPEND-060: a device retries only its latest append to a stream, so only that outcome
    // is kept, one row per device and stream, rewritten by each append. Numbers before it are
    // answered CLIENT_SEQUENCE_EXPIRED (APPEND-061). Keyed by stream first, so that deleting a
    // stream needs no second index.
    sql: `
CREATE TABLE client_outcomes (
  subject_id      TEXT NOT NULL,
  stream_id       TEXT NOT NULL,
  device_id       TEXT NOT NULL,
  client_sequence INTEGER NOT NULL,
  fingerprint     BLOB NOT NULL,
  outcome         TEXT NOT NULL,
  PRIMARY KEY (subject_id, stream_id, device_id),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
) WITHOUT ROWID;
INSERT INTO client_outcomes (subject_id, stream_id, device_id, client_sequence, fingerprint, outcome)
SELECT c.subject_id, c.stream_id, c.device_id, c.client_sequence, c.fingerprint, c.outcome
FROM client_sequences c
WHERE c.client_sequence = (
  SELECT MAX(l.client_sequence) FROM client_sequences l
  WHERE l.subject_id = c.subject_id AND l.device_id = c.device_id AND l.stream_id = c.stream_id
);
DROP TABLE client_sequences;
`,
  },
  {
    version: 5,
    name: "JSON states stored by a bounded rule, not rewritten per append",
    // The head state is no longer kept in the stream row (rewritten by every append): the
    // server holds it in memory and stores a full state only now and then (see the server
    // README). What was in the row becomes a stored state at its head, so nothing is lost.
    sql: `
ALTER TABLE streams ADD COLUMN state_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN state_lag_bytes INTEGER NOT NULL DEFAULT 0;
INSERT OR IGNORE INTO json_states (subject_id, stream_id, version, state)
  SELECT subject_id, stream_id, head_version, head_state FROM streams WHERE head_state IS NOT NULL;
UPDATE streams SET state_version = head_version, head_state = NULL WHERE head_state IS NOT NULL;
`,
  },
  {
    version: 6,
    name: "batch events name their batch instead of copying it",
    // A deltas-appended event was a JSON copy of its stream (id, uid, type, owner) and range,
    // ~270 bytes per small delta. It is now the stream id and the range in columns, with an
    // empty body; the rest is read from the stream and its deltas. Which incarnation of a
    // stream id an event belongs to is told by created_seq, the subject's event sequence when
    // the stream was created: an event of the current one has a greater sequence. Old events
    // of a stream that is still there are rewritten; those of deleted (or replaced) streams
    // keep their JSON body, which names the uid, and are read as before.
    sql: `
ALTER TABLE streams ADD COLUMN created_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subject_events ADD COLUMN batch_stream TEXT;
ALTER TABLE subject_events ADD COLUMN batch_first INTEGER;
ALTER TABLE subject_events ADD COLUMN batch_count INTEGER;
UPDATE subject_events SET
  batch_stream = json_extract(body, '$.stream.id'),
  batch_first = json_extract(body, '$.firstVersion'),
  batch_count = json_extract(body, '$.count'),
  body = ''
WHERE json_extract(body, '$.kind') = 'deltas-appended'
  AND EXISTS (
    SELECT 1 FROM streams s
    WHERE s.subject_id = subject_events.subject_id
      AND s.stream_id = json_extract(subject_events.body, '$.stream.id')
      AND s.uid = json_extract(subject_events.body, '$.stream.uid')
  );
`,
  },
  {
    version: 7,
    name: "state a server shares with its replicas: failed link-code redemptions, holds, migration leases, provider key sets",
    // The same tables as the PostgreSQL store's, so that both answer ReplicaStateStore alike;
    // failure_windows and jwks_copies are keyed by the caller and the platform, not a subject.
    sql: `
CREATE TABLE failure_windows (
  key      TEXT PRIMARY KEY,
  opens_at INTEGER NOT NULL,
  failures INTEGER NOT NULL
);
CREATE INDEX failure_windows_by_time ON failure_windows(opens_at);

ALTER TABLE subjects ADD COLUMN hold_owner TEXT;
ALTER TABLE subjects ADD COLUMN hold_until INTEGER NOT NULL DEFAULT 0;

ALTER TABLE migrations ADD COLUMN lease_owner TEXT;
ALTER TABLE migrations ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

CREATE TABLE jwks_copies (
  platform_id TEXT PRIMARY KEY,
  jwks        TEXT,
  fetched_at  INTEGER NOT NULL DEFAULT 0,
  claimed_at  INTEGER NOT NULL DEFAULT 0
);
`,
  },
  {
    version: 8,
    name: "stored JSON states in chunks of 1 MiB",
    // One statement writing or reading a state of tens of megabytes held the event loop for
    // a second (better-sqlite3 is synchronous). A state is now rows of at most 1 MiB under a
    // state_id, named with its chunk count and size by its json_states row once all are
    // written (see store/state-chunks.ts). States stored whole so far are cut into chunks
    // here, once, under the state id 'v<version>'; their state column is emptied.
    // A rowid table, since its rows are large (WITHOUT ROWID suits small rows only); data
    // last, so that reading the other columns never walks a chunk's overflow pages.
    sql: `
CREATE TABLE json_state_chunks (
  subject_id TEXT NOT NULL,
  stream_id  TEXT NOT NULL,
  state_id   TEXT NOT NULL,
  idx        INTEGER NOT NULL,
  written_at INTEGER NOT NULL,
  data       BLOB NOT NULL,
  PRIMARY KEY (subject_id, stream_id, state_id, idx),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);
ALTER TABLE json_states ADD COLUMN state_id TEXT;
ALTER TABLE json_states ADD COLUMN chunks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE json_states ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;
INSERT INTO json_state_chunks (subject_id, stream_id, state_id, idx, data, written_at)
WITH RECURSIVE pieces(subject_id, stream_id, version, idx) AS (
  SELECT subject_id, stream_id, version, 0 FROM json_states
  UNION ALL
  SELECT p.subject_id, p.stream_id, p.version, p.idx + 1 FROM pieces p
  JOIN json_states s ON s.subject_id = p.subject_id AND s.stream_id = p.stream_id AND s.version = p.version
  WHERE (p.idx + 1) * 1048576 < length(s.state)
)
SELECT p.subject_id, p.stream_id, 'v' || p.version, p.idx, substr(s.state, p.idx * 1048576 + 1, 1048576), 0
FROM pieces p JOIN json_states s ON s.subject_id = p.subject_id AND s.stream_id = p.stream_id AND s.version = p.version;
UPDATE json_states SET state_id = 'v' || version, chunks = MAX(1, (length(state) + 1048575) / 1048576), size_bytes = length(state), state = X'';
`,
  },
  {
    version: 9,
    name: "large delta payloads in chunks of 1 MiB",
    // Restore's compensating delta can be as large as a state: one ~60 MiB row took 0.27 s to
    // insert and as long again to commit, holding the event loop. Such a payload is now written
    // ahead of the append as rows of json_state_chunks under a payload_id, which its deltas row
    // names with chunk count and size (payload then empty); see store/state-chunks.ts. Rows
    // stored so far keep their payload. The index serves "does a delta name this chunk".
    sql: `
ALTER TABLE deltas ADD COLUMN payload_id TEXT;
ALTER TABLE deltas ADD COLUMN payload_chunks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deltas ADD COLUMN payload_bytes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deltas_by_payload_id ON deltas(subject_id, stream_id, payload_id) WHERE payload_id IS NOT NULL;
`,
  },
  {
    version: 10,
    name: "deltas and events keyed by integers",
    // The two tables with a row per delta repeated the subject id (26 bytes) and, for deltas,
    // the stream id in every row's key: about a quarter of what a small delta stored. They are
    // now keyed by integers. `stream_keys` gives each stream row a key and outlives it: erasure
    // deletes a stream's row first and its deltas afterwards, a few per statement, and finds
    // them through it (erasure.ts); a stream id is created again only once its purge is done, so
    // one (subject_id, stream_id) names one key. `subjects.subject_key` keys the event log.
    //
    // Both tables are copied whole, in this one transaction, while the store opens: 3.5 s for
    // a million small deltas on the bench's 2-vCPU VM (4 December 2026); the WAL holds a copy
    // of both tables until the next checkpoint. Deltas of a stream whose purge was pending (its
    // row already gone, erasure.ts) are not copied: they were to be deleted, and the dropped
    // table's pages are overwritten (secure_delete), so the purge is done here.
    sql: `
ALTER TABLE subjects ADD COLUMN subject_key INTEGER;
UPDATE subjects SET subject_key = rowid;
CREATE UNIQUE INDEX subjects_by_key ON subjects(subject_key);

CREATE TABLE stream_keys (
  stream_key INTEGER PRIMARY KEY,
  subject_id TEXT NOT NULL,
  stream_id  TEXT NOT NULL,
  UNIQUE (subject_id, stream_id),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);
INSERT INTO stream_keys (subject_id, stream_id) SELECT subject_id, stream_id FROM streams ORDER BY subject_id, stream_id;

CREATE TABLE deltas_by_key (
  stream_key      INTEGER NOT NULL REFERENCES stream_keys(stream_key) ON DELETE CASCADE,
  version         INTEGER NOT NULL,
  payload         BLOB NOT NULL,
  prev_hash       BLOB NOT NULL,
  hash            BLOB NOT NULL,
  device_id       TEXT,
  client_sequence INTEGER NOT NULL,
  batch_first     INTEGER NOT NULL,
  batch_size      INTEGER NOT NULL,
  committed_at    INTEGER NOT NULL,
  payload_id      TEXT,
  payload_chunks  INTEGER NOT NULL DEFAULT 0,
  payload_bytes   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (stream_key, version)
) WITHOUT ROWID;
INSERT INTO deltas_by_key
  SELECT k.stream_key, d.version, d.payload, d.prev_hash, d.hash, d.device_id, d.client_sequence, d.batch_first, d.batch_size,
         d.committed_at, d.payload_id, d.payload_chunks, d.payload_bytes
  FROM deltas d JOIN stream_keys k ON k.subject_id = d.subject_id AND k.stream_id = d.stream_id
  ORDER BY k.stream_key, d.version;
DROP TABLE deltas;
ALTER TABLE deltas_by_key RENAME TO deltas;
CREATE INDEX deltas_by_payload_id ON deltas(stream_key, payload_id) WHERE payload_id IS NOT NULL;

CREATE TABLE subject_events_by_key (
  subject_key  INTEGER NOT NULL REFERENCES subjects(subject_key) ON DELETE CASCADE,
  seq          INTEGER NOT NULL,
  committed_at INTEGER NOT NULL,
  body         TEXT NOT NULL,
  batch_stream TEXT,
  batch_first  INTEGER,
  batch_count  INTEGER,
  PRIMARY KEY (subject_key, seq)
) WITHOUT ROWID;
INSERT INTO subject_events_by_key
  SELECT j.subject_key, e.seq, e.committed_at, e.body, e.batch_stream, e.batch_first, e.batch_count
  FROM subjects j CROSS JOIN subject_events e ON e.subject_id = j.subject_id
  ORDER BY j.rowid, e.seq; -- the order of subject_key, as set above, without a sort
DROP TABLE subject_events;
ALTER TABLE subject_events_by_key RENAME TO subject_events;
`,
  },
];

/**
 * Brings the database to the newest schema. Each migration runs in its own transaction
 * together with its `schema_migrations` row, so a crash mid-way leaves a consistent version.
 * A database newer than this code is refused rather than silently misread.
 */
export function migrate(db: Database, now: () => number = Date.now): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number | null };
  const current = row.v ?? 0;
  const newest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  if (current > newest) {
    throw new Error(`database schema version ${current} is newer than this server supports (${newest})`);
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        migration.version,
        migration.name,
        now(),
      );
    })();
  }
}

/**
 * SQL for the integer keys of migration 10, each taking the text ids as parameters, so that
 * statements keep the ids the Store interface speaks in. A scalar subquery without outer
 * references is evaluated once per execution of its statement: one index lookup. A statement
 * run once per delta (an insert) takes the key instead, looked up once per batch.
 */
/** Looks up a stream's key, from `subject_id = ?` and `stream_id = ?`. */
export const STREAM_KEY_OF = "SELECT stream_key FROM stream_keys WHERE subject_id = ? AND stream_id = ?";
/** The same as a scalar subquery. */
export const STREAM_KEY = `(${STREAM_KEY_OF})`;
/** A subject's key, from `subject_id = ?`. */
export const SUBJECT_KEY = "(SELECT subject_key FROM subjects WHERE subject_id = ?)";
/** A stream's deltas rows with `subject_id` and `stream_id` (a `DeltaRow`), from the same two parameters; more conditions follow with `AND`. */
export const SELECT_DELTAS =
  "SELECT k.subject_id, k.stream_id, d.* FROM stream_keys k JOIN deltas d ON d.stream_key = k.stream_key WHERE k.subject_id = ? AND k.stream_id = ?";
