/**
 * Deliberate faults ("mutants") that prove the conformance suite catches broken servers.
 *
 * Each fault is a small branch at the real code point that implements the guarantee it
 * breaks, guarded by {@link fault}. Faults are off unless the server was started with
 * `--unsafe-test-fault <name>` AND the environment allows it
 * (`CONTINUITY_ALLOW_TEST_FAULTS=1`), so a production deployment cannot switch one on by
 * accident.
 */

/** Every fault, with what it breaks and the spec area that should catch it. */
export const FAULTS = {
  // --- core (stream, checkpoint and subscription services) ---
  "append-retry-duplicates": { area: "APPEND", description: "A retried client sequence appends again instead of replaying the stored outcome." },
  "append-gap-accepted": { area: "APPEND", description: "A client sequence that skips numbers is accepted." },
  "stale-version-accepted": { area: "APPEND", description: "An expected_version below the head is accepted instead of ABORTED." },
  "strict-policy-ignored": { area: "APPEND", description: "A blind append to a REQUIRE_EXPECTED_VERSION stream is accepted." },
  "batch-partial-commit": { area: "APPEND", description: "A batch whose later delta fails commits its earlier deltas." },
  "delta-hash-wrong-bytes": { area: "HASH", description: "Delta hashes cover the payload as sent instead of its canonical JSON." },
  "chain-not-linked": { area: "HASH", description: "Each delta hash uses the genesis hash as prev_hash instead of the previous delta's." },
  "snapshot-hash-wrong": { area: "SNAP", description: "Snapshot hashes omit the head hash." },
  "snapshot-stale-state": { area: "SNAP", description: "GetSnapshot at the head serves the state one delta behind." },
  "cursor-skips-event": { area: "SUB", description: "Resuming from a cursor skips the first event after it." },
  "cursor-duplicates-event": { area: "SUB", description: "Resuming from a cursor re-sends the event the cursor names." },
  "reset-missing": { area: "SUB", description: "A cursor of another epoch is resumed as if current instead of answering reset." },
  "batch-split-events": { area: "SUB", description: "A batch reaches subscribers as one event per delta." },
  "list-deltas-off-by-one": { area: "DELTA", description: "ListDeltas includes the delta at after_version." },
  "horizon-not-enforced": { area: "COMPACT", description: "ListDeltas below the horizon answers a partial list instead of HISTORY_COMPACTED." },
  "checkpoint-digest-ignores-resume": { area: "CKPT", description: "The checkpoint digest is computed without the resume payload." },
  "resume-limit-ignored": { area: "LIMIT", description: "Resume payloads above 4096 canonical bytes are accepted." },
  "restore-rewrites-history": { area: "RESTORE", description: "Restore truncates history to the checkpoint instead of appending compensating deltas." },
  "handoff-double-accept": { area: "HANDOFF", description: "A second accept of the same handoff succeeds." },
  "error-info-missing": { area: "ERR", description: "Errors are sent without google.rpc.ErrorInfo." },
  "delta-size-limit-ignored": { area: "LIMIT", description: "Deltas above max_delta_bytes are accepted." },
  "invalid-json-accepted": { area: "APPEND", description: "A JSON stream accepts a payload that is not valid JSON, stored as sent." },
  // --- identity (auth, token, subject, device and consent services) ---
  "grant-revocation-ignored": { area: "GRANT", description: "Revoked grants still give access." },
  "cross-subject-read": { area: "ISO", description: "A token may read another subject's streams." },
  "device-revocation-ignored": { area: "DEVICE", description: "Tokens of revoked devices keep working." },
  "expired-assertion-accepted": { area: "TOKEN", description: "Expired platform assertions are exchanged." },
  "link-code-reusable": { area: "LINK", description: "A link code can be redeemed more than once." },
  "erasure-leaves-data": { area: "ERASE", description: "Erasure leaves the subject's streams behind." },
  "scope-widening": { area: "TOKEN", description: "Token exchange grants scopes beyond the platform's configuration." },
  "assertion-typ-unchecked": { area: "TOKEN", description: "Assertions without typ continuity-assertion+jwt are accepted." },
} as const satisfies Record<string, { readonly area: string; readonly description: string }>;

/** The name of a deliberate fault. */
export type FaultName = keyof typeof FAULTS;

/** The environment variable that must be `1` for any fault to take effect. */
export const ALLOW_FAULTS_ENV = "CONTINUITY_ALLOW_TEST_FAULTS";

let active: ReadonlySet<FaultName> = new Set();

/** Whether `name` is a known fault name (for CLI validation). */
export function isFaultName(name: string): name is FaultName {
  return Object.hasOwn(FAULTS, name);
}

/**
 * Switches faults on for this process. Returns the names that took effect: none unless
 * `env[CONTINUITY_ALLOW_TEST_FAULTS]` is `1`, so callers can warn that the flag was ignored.
 * Unknown names throw, so that a typo cannot silently test an unbroken server.
 */
export function configureFaults(
  names: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): readonly FaultName[] {
  for (const name of names) {
    if (!isFaultName(name)) throw new Error(`unknown test fault: ${name}`);
  }
  if (env[ALLOW_FAULTS_ENV] !== "1") {
    active = new Set();
    return [];
  }
  const enabled = names as readonly FaultName[];
  active = new Set(enabled);
  return enabled;
}

/** True when the server runs with this fault switched on. Call it at the code point it breaks. */
export function fault(name: FaultName): boolean {
  return active.size > 0 && active.has(name);
}
