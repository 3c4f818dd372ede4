import type { ClientBase } from "pg";

/**
 * Ordered schema migrations of the PostgreSQL store. A migration is never edited once
 * released; a change is a new entry, so every database can be brought forward step by step.
 *
 * Layout by subject: every table but three is keyed by `subject_id` first and cascades from
 * `subjects`, so the schema can be distributed by subject (Citus) and erasing a subject is
 * one transaction on one subject. The exceptions are lookups by something other than the
 * subject, and are named so:
 * - `account_directory` answers "which subject is this platform account?" (sign-in) and
 *   keeps an account linked to one subject at most; it is keyed by the account.
 * - `link_code_directory` answers "which subject made this code?" (redemption); keyed by
 *   the code's hash.
 * - `meta` holds the epoch and the instance secret, shared by every replica.
 * - `failure_windows` counts failed link-code redemptions per caller (platform, account);
 *   `jwks_copies` keeps each platform's OpenID key set (see replica-state-types.ts).
 * Directory rows are written in the transaction of their subject and deleted with it.
 *
 * Ids compare bytewise (`COLLATE "C"`), as the store contract orders lists by id or uid
 * bytewise. Times are epoch milliseconds, as in the SQLite schema, so both map rows alike.
 */
export const PG_MIGRATIONS: readonly { readonly version: number; readonly name: string; readonly sql: string }[] = [
  {
    version: 1,
    name: "initial schema",
    sql: `
CREATE TABLE meta (
  key   text COLLATE "C" PRIMARY KEY,
  value bytea NOT NULL
);

CREATE TABLE subjects (
  subject_id    text COLLATE "C" PRIMARY KEY,
  created_at    bigint NOT NULL,
  event_seq     bigint NOT NULL DEFAULT 0,
  event_horizon bigint NOT NULL DEFAULT 0,
  next_ord      bigint NOT NULL DEFAULT 0
);

CREATE TABLE account_links (
  subject_id  text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  link_id     text COLLATE "C" NOT NULL,
  platform_id text COLLATE "C" NOT NULL,
  account_id  text COLLATE "C" NOT NULL,
  created_at  bigint NOT NULL,
  ord         bigint NOT NULL,
  PRIMARY KEY (subject_id, link_id)
);
CREATE INDEX account_links_by_platform ON account_links(subject_id, platform_id);

CREATE TABLE account_directory (
  platform_id text COLLATE "C" NOT NULL,
  account_id  text COLLATE "C" NOT NULL,
  subject_id  text COLLATE "C" NOT NULL,
  link_id     text COLLATE "C" NOT NULL,
  PRIMARY KEY (platform_id, account_id)
);

CREATE TABLE link_codes (
  subject_id  text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  code_hash   bytea NOT NULL,
  platform_id text COLLATE "C" NOT NULL,
  created_at  bigint NOT NULL,
  expires_at  bigint NOT NULL,
  used_at     bigint,
  PRIMARY KEY (subject_id, code_hash)
);

CREATE TABLE link_code_directory (
  code_hash  bytea PRIMARY KEY,
  subject_id text COLLATE "C" NOT NULL
);

CREATE TABLE devices (
  subject_id   text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  device_id    text COLLATE "C" NOT NULL,
  platform_id  text COLLATE "C" NOT NULL,
  display_name text NOT NULL,
  created_at   bigint NOT NULL,
  revoked_at   bigint,
  ord          bigint NOT NULL,
  PRIMARY KEY (subject_id, device_id)
);

CREATE TABLE grants (
  subject_id       text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  grant_id         text COLLATE "C" NOT NULL,
  grantor_platform text COLLATE "C" NOT NULL,
  grantee_platform text COLLATE "C" NOT NULL,
  stream_type      text COLLATE "C" NOT NULL,
  access           text NOT NULL CHECK (access IN ('read', 'read-write')),
  created_at       bigint NOT NULL,
  revoked_at       bigint,
  ord              bigint NOT NULL,
  PRIMARY KEY (subject_id, grant_id)
);

CREATE TABLE streams (
  subject_id      text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  stream_id       text COLLATE "C" NOT NULL,
  uid             text COLLATE "C" NOT NULL,
  type            text COLLATE "C" NOT NULL,
  encoding        smallint NOT NULL CHECK (encoding IN (1, 2, 3)),
  conflict_policy smallint NOT NULL CHECK (conflict_policy IN (1, 2)),
  owner_platform  text COLLATE "C" NOT NULL,
  genesis_hash    bytea NOT NULL,
  head_version    bigint NOT NULL,
  head_hash       bytea NOT NULL,
  horizon_version bigint NOT NULL,
  horizon_hash    bytea NOT NULL,
  head_state      bytea,
  created_at      bigint NOT NULL,
  updated_at      bigint NOT NULL,
  PRIMARY KEY (subject_id, stream_id)
);
CREATE INDEX streams_by_uid ON streams(subject_id, uid);
CREATE INDEX streams_by_backlog ON streams((head_version - horizon_version));

CREATE TABLE deltas (
  subject_id      text COLLATE "C" NOT NULL,
  stream_id       text COLLATE "C" NOT NULL,
  version         bigint NOT NULL,
  payload         bytea NOT NULL,
  prev_hash       bytea NOT NULL,
  hash            bytea NOT NULL,
  device_id       text COLLATE "C",
  client_sequence bigint NOT NULL,
  batch_first     bigint NOT NULL,
  batch_size      bigint NOT NULL,
  committed_at    bigint NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);

CREATE TABLE client_sequences (
  subject_id      text COLLATE "C" NOT NULL,
  device_id       text COLLATE "C" NOT NULL,
  stream_id       text COLLATE "C" NOT NULL,
  client_sequence bigint NOT NULL,
  fingerprint     bytea NOT NULL,
  outcome         text NOT NULL,
  PRIMARY KEY (subject_id, device_id, stream_id, client_sequence),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);
CREATE INDEX client_sequences_by_stream ON client_sequences(subject_id, stream_id);

CREATE TABLE json_states (
  subject_id text COLLATE "C" NOT NULL,
  stream_id  text COLLATE "C" NOT NULL,
  version    bigint NOT NULL,
  state      bytea NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);

CREATE TABLE snapshots (
  subject_id    text COLLATE "C" NOT NULL,
  stream_id     text COLLATE "C" NOT NULL,
  version       bigint NOT NULL,
  head_hash     bytea NOT NULL,
  size_bytes    bigint NOT NULL,
  snapshot_hash bytea NOT NULL,
  created_at    bigint NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);

CREATE TABLE snapshot_chunks (
  subject_id text COLLATE "C" NOT NULL,
  stream_id  text COLLATE "C" NOT NULL,
  version    bigint NOT NULL,
  idx        integer NOT NULL,
  data       bytea NOT NULL,
  PRIMARY KEY (subject_id, stream_id, version, idx),
  FOREIGN KEY (subject_id, stream_id, version) REFERENCES snapshots(subject_id, stream_id, version) ON DELETE CASCADE
);

CREATE TABLE checkpoints (
  subject_id    text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  checkpoint_id text COLLATE "C" NOT NULL,
  resume        text NOT NULL,
  digest        bytea NOT NULL,
  device_id     text COLLATE "C",
  platform_id   text COLLATE "C" NOT NULL,
  created_at    bigint NOT NULL,
  ord           bigint NOT NULL,
  PRIMARY KEY (subject_id, checkpoint_id)
);
CREATE INDEX checkpoints_by_ord ON checkpoints(subject_id, ord);

CREATE TABLE checkpoint_entries (
  subject_id     text COLLATE "C" NOT NULL,
  checkpoint_id  text COLLATE "C" NOT NULL,
  idx            integer NOT NULL,
  stream_id      text COLLATE "C" NOT NULL,
  stream_uid     text COLLATE "C" NOT NULL,
  stream_type    text COLLATE "C" NOT NULL,
  owner_platform text COLLATE "C" NOT NULL,
  version        bigint NOT NULL,
  head_hash      bytea NOT NULL,
  PRIMARY KEY (subject_id, checkpoint_id, idx),
  FOREIGN KEY (subject_id, checkpoint_id) REFERENCES checkpoints(subject_id, checkpoint_id) ON DELETE CASCADE
);

CREATE TABLE handoffs (
  subject_id         text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  handoff_id         text COLLATE "C" NOT NULL,
  checkpoint_id      text COLLATE "C" NOT NULL,
  source_device      text COLLATE "C" NOT NULL,
  target_device      text COLLATE "C",
  state              text NOT NULL CHECK (state IN ('offered', 'accepted', 'declined', 'expired')),
  resolved_by        text COLLATE "C",
  created_at         bigint NOT NULL,
  expires_at         bigint NOT NULL,
  resolved_at        bigint,
  checkpoint_streams text NOT NULL,
  PRIMARY KEY (subject_id, handoff_id)
);
CREATE INDEX handoffs_offered ON handoffs(expires_at) WHERE state = 'offered';
CREATE INDEX handoffs_by_checkpoint ON handoffs(subject_id, checkpoint_id);

-- A deltas-appended entry names its batch in columns, so that a cursor's backlog can be
-- checked against the streams' horizons without parsing bodies.
CREATE TABLE subject_events (
  subject_id   text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  seq          bigint NOT NULL,
  committed_at bigint NOT NULL,
  body         text NOT NULL,
  batch_stream text COLLATE "C",
  batch_uid    text COLLATE "C",
  batch_first  bigint,
  PRIMARY KEY (subject_id, seq)
);

CREATE TABLE subject_moves (
  subject_id     text COLLATE "C" PRIMARY KEY REFERENCES subjects(subject_id) ON DELETE CASCADE,
  target         text NOT NULL,
  target_subject text NOT NULL,
  moved_at       bigint NOT NULL
);
CREATE INDEX subject_moves_by_time ON subject_moves(moved_at);

CREATE TABLE migrations (
  subject_id   text COLLATE "C" NOT NULL REFERENCES subjects(subject_id) ON DELETE CASCADE,
  migration_id text COLLATE "C" NOT NULL,
  active       boolean NOT NULL,
  body         text NOT NULL,
  PRIMARY KEY (subject_id, migration_id)
);
CREATE INDEX migrations_active ON migrations(subject_id) WHERE active;
`,
  },
  {
    version: 2,
    name: "client sequences keep the latest outcome only",
    // APPEND-060: a device retries only its latest append to a stream, so only that outcome
    // is kept, one row per device and stream, rewritten by each append. Numbers before it are
    // answered CLIENT_SEQUENCE_EXPIRED (APPEND-061).
    sql: `
CREATE TABLE client_outcomes (
  subject_id      text COLLATE "C" NOT NULL,
  stream_id       text COLLATE "C" NOT NULL,
  device_id       text COLLATE "C" NOT NULL,
  client_sequence bigint NOT NULL,
  fingerprint     bytea NOT NULL,
  outcome         text NOT NULL,
  PRIMARY KEY (subject_id, stream_id, device_id),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);
INSERT INTO client_outcomes (subject_id, stream_id, device_id, client_sequence, fingerprint, outcome)
SELECT DISTINCT ON (subject_id, stream_id, device_id) subject_id, stream_id, device_id, client_sequence, fingerprint, outcome
FROM client_sequences
ORDER BY subject_id, stream_id, device_id, client_sequence DESC;
DROP TABLE client_sequences;
`,
  },
  {
    version: 3,
    name: "JSON states stored by a bounded rule, not rewritten per append",
    // As in the SQLite store's migration 5: the head state moves out of the stream row into
    // a stored state at its head, and the row counts what lies between them.
    sql: `
ALTER TABLE streams ADD COLUMN state_version bigint NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN state_lag_bytes bigint NOT NULL DEFAULT 0;
INSERT INTO json_states (subject_id, stream_id, version, state)
  SELECT subject_id, stream_id, head_version, head_state FROM streams WHERE head_state IS NOT NULL
  ON CONFLICT (subject_id, stream_id, version) DO NOTHING;
UPDATE streams SET state_version = head_version, head_state = NULL WHERE head_state IS NOT NULL;
`,
  },
  {
    version: 4,
    name: "state every replica shares: failed link-code redemptions, holds, migration leases, provider key sets",
    sql: `
-- Failed link-code redemptions (LINK-019), keyed by the caller (a platform, or an account of
-- it) rather than a subject: a wrong code names none.
CREATE TABLE failure_windows (
  key      text COLLATE "C" PRIMARY KEY,
  opens_at bigint NOT NULL,
  failures integer NOT NULL
);
CREATE INDEX failure_windows_by_time ON failure_windows(opens_at);

-- A switch's hold of the subject's writes (PORT-033), read by every write under the
-- subject's row lock; it ends by itself at hold_until.
ALTER TABLE subjects ADD COLUMN hold_owner text COLLATE "C", ADD COLUMN hold_until bigint NOT NULL DEFAULT 0;

-- Which server runs a migration, until when (renewed as it runs).
ALTER TABLE migrations ADD COLUMN lease_owner text COLLATE "C", ADD COLUMN lease_until bigint NOT NULL DEFAULT 0;

-- The last key set fetched from each platform's OpenID provider (TOKEN-025), and when a
-- server last claimed a fetch, so that the replicas fetch as one server would.
CREATE TABLE jwks_copies (
  platform_id text COLLATE "C" PRIMARY KEY,
  jwks        text,
  fetched_at  bigint NOT NULL DEFAULT 0,
  claimed_at  bigint NOT NULL DEFAULT 0
);
`,
  },
  {
    version: 5,
    name: "stored JSON states in chunks of 1 MiB",
    // pg parses each row on the event loop: a state of tens of megabytes in one bytea held it
    // for a second. A state is now rows of at most 1 MiB under a state_id, named with its chunk
    // count and size by its json_states row once all are written (see store/state-chunks.ts).
    // States stored whole so far are cut into chunks here, once, under the state id
    // 'v<version>'; their state column is emptied.
    sql: `
CREATE TABLE json_state_chunks (
  subject_id text COLLATE "C" NOT NULL,
  stream_id  text COLLATE "C" NOT NULL,
  state_id   text COLLATE "C" NOT NULL,
  idx        integer NOT NULL,
  written_at bigint NOT NULL,
  data       bytea NOT NULL,
  PRIMARY KEY (subject_id, stream_id, state_id, idx),
  FOREIGN KEY (subject_id, stream_id) REFERENCES streams(subject_id, stream_id) ON DELETE CASCADE
);
ALTER TABLE json_states ADD COLUMN state_id text COLLATE "C", ADD COLUMN chunks integer NOT NULL DEFAULT 0, ADD COLUMN size_bytes bigint NOT NULL DEFAULT 0;
INSERT INTO json_state_chunks (subject_id, stream_id, state_id, idx, written_at, data)
SELECT s.subject_id, s.stream_id, 'v' || s.version, g.idx, 0, substring(s.state FROM g.idx * 1048576 + 1 FOR 1048576)
FROM json_states s, generate_series(0, GREATEST(0, (octet_length(s.state) - 1) / 1048576)) AS g(idx);
UPDATE json_states SET state_id = 'v' || version, chunks = GREATEST(1, (octet_length(state) + 1048575) / 1048576), size_bytes = octet_length(state), state = ''::bytea;
`,
  },
  {
    version: 6,
    name: "large delta payloads in chunks of 1 MiB",
    // Restore's compensating delta can be as large as a state, and pg turned its one ~60 MiB
    // parameter into hex text in one go (0.7 s on the event loop). Such a payload is now written
    // ahead of the append as rows of json_state_chunks under a payload_id, which its deltas row
    // names with chunk count and size (payload then empty); see store/state-chunks.ts. Rows
    // stored so far keep their payload. The index serves "does a delta name this chunk".
    sql: `
ALTER TABLE deltas ADD COLUMN payload_id text COLLATE "C", ADD COLUMN payload_chunks integer NOT NULL DEFAULT 0, ADD COLUMN payload_bytes bigint NOT NULL DEFAULT 0;
CREATE INDEX deltas_by_payload_id ON deltas(subject_id, stream_id, payload_id) WHERE payload_id IS NOT NULL;
`,
  },
];

/** Whether a name can be used unquoted as a schema name (and so is safe in SQL text). */
export function isSchemaName(name: string): boolean {
  return /^[a-z_][a-z0-9_]{0,62}$/.test(name);
}

/**
 * Brings the schema to the newest version. Runs under a session advisory lock keyed by the
 * schema name, so replicas starting together take turns: the first applies what is missing,
 * the others then find nothing left to do. Each migration commits with its
 * `schema_migrations` row, so a crash mid-way leaves a consistent version; a schema newer
 * than this code is refused rather than silently misread.
 */
export async function migratePostgres(client: ClientBase, schema: string, now: () => number = Date.now): Promise<void> {
  if (!isSchemaName(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
  await client.query("SELECT pg_advisory_lock(hashtext($1))", [`continuity-migrate:${schema}`]);
  try {
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (
      version    integer PRIMARY KEY,
      name       text NOT NULL,
      applied_at bigint NOT NULL
    )`);
    const row = (await client.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${schema}.schema_migrations`)).rows[0];
    const current = row?.v ?? 0;
    const newest = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]?.version ?? 0;
    if (current > newest) {
      throw new Error(`database schema version ${current} is newer than this server supports (${newest})`);
    }
    for (const migration of PG_MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query("BEGIN");
      try {
        await client.query(`SET LOCAL search_path TO ${schema}`);
        await client.query(migration.sql);
        await client.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", [
          migration.version,
          migration.name,
          now(),
        ]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      }
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", [`continuity-migrate:${schema}`]).catch(() => undefined);
  }
}
