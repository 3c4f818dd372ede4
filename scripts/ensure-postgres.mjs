// Makes sure the PostgreSQL the tests use answers before they start, so a stopped database
// fails the run with one clear line instead of a hundred connection errors. The tests take
// `DATABASE_URL` (default: the local server every machine here runs, trust auth, database
// `test`). When that server does not answer and this process may (root, Debian's
// pg_ctlcluster present, a local URL), it starts the machine's cluster; when the database
// does not exist, it creates it. Otherwise it says what to do.
//
//   node scripts/ensure-postgres.mjs
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";

const require = createRequire(new URL("../packages/reference-server/package.json", import.meta.url));
const pg = require("pg");

export const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test";
const url = process.env.DATABASE_URL ?? DEFAULT_URL;
const say = (line) => process.stdout.write(`ensure-postgres: ${line}\n`);
const complain = (line) => process.stderr.write(`ensure-postgres: ${line}\n`);

/** Connects once; resolves to undefined when it worked, else the error. */
async function tryConnect(connectionString) {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await client.end().catch(() => {});
  }
}

/** The machine's own cluster: a loopback host on the default port. */
function isLocal(parsed) {
  return ["127.0.0.1", "localhost", "::1", "[::1]", ""].includes(parsed.hostname) && ["", "5432"].includes(parsed.port);
}

function startLocalCluster() {
  if (process.getuid?.() !== 0 || !existsSync("/usr/bin/pg_ctlcluster") || !existsSync("/etc/postgresql")) return false;
  for (const version of readdirSync("/etc/postgresql")) {
    say(`starting PostgreSQL ${version}/main with pg_ctlcluster`);
    try {
      execFileSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"], { stdio: ["ignore", "ignore", "inherit"] });
    } catch {
      // Already running (exit 2) or not startable: the next connection attempt tells.
    }
  }
  return true;
}

async function main() {
  const parsed = new URL(url);
  let error = await tryConnect(url);
  if (error !== undefined && error.code === "ECONNREFUSED" && isLocal(parsed) && startLocalCluster()) {
    for (let i = 0; i < 30 && error !== undefined; i++) {
      await sleep(500);
      error = await tryConnect(url);
    }
  }
  if (error !== undefined && error.code === "3D000") {
    // The server answers but the database is missing: create it from the maintenance database.
    const database = decodeURIComponent(parsed.pathname.slice(1));
    const admin = new URL(url);
    admin.pathname = "/postgres";
    const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
    try {
      await client.connect();
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
      say(`created database ${database}`);
      error = await tryConnect(url);
    } catch (cause) {
      error = cause;
    } finally {
      await client.end().catch(() => {});
    }
  }
  const shown = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  if (error !== undefined) {
    complain(`${shown} does not answer (${error.code ?? ""} ${error.message}). The tests need PostgreSQL there: start it, or set DATABASE_URL to one that runs.`);
    return 1;
  }
  say(`${shown} answers`);
  return 0;
}

process.exitCode = await main();
