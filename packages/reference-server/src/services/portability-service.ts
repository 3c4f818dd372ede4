import { Status } from "nice-grpc-common";

import type { MethodDefinition, ServiceImplementation } from "nice-grpc";
import type { JSONWebKeySet } from "jose";
import { z } from "zod";
import { continuity } from "@continuity/sdk/gen";
import type { AuthCallContextExt } from "../auth/context.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { invalidField, protocolError } from "../errors.js";
import type { MigrationRecord, MigrationStateName } from "../store/index.js";
import { parseRequest } from "../validation/validate.js";
import { parseSubjectName, MINTED_ID } from "../validation/names.js";
import type { ServiceDeps } from "./deps.js";
import { exportSubjectParts } from "./portability/export.js";
import { createBundleImporter } from "./portability/import.js";
import type { MigrationRunner } from "./portability/migration.js";
import { sourceHostPort } from "./portability/source-client.js";
import { checkSource, parseSourceAddress, type SourcePolicy } from "./portability/source-policy.js";
import type { SubjectGate } from "./portability/subject-gate.js";
import { subjectMovedError } from "./portability/subject-gate.js";

const v1 = continuity.v1;
/** How a method's request or response crosses the wire: a generated message, or the bytes as sent. */
interface WireCodec<T> {
  encode(value: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
}
const asSent: WireCodec<Uint8Array> = { encode: (value) => ({ finish: () => value }), decode: (bytes) => bytes };

function method<Request, Response, RequestStream extends boolean, ResponseStream extends boolean>(
  name: string,
  requestStream: RequestStream,
  responseStream: ResponseStream,
  request: WireCodec<Request>,
  response: WireCodec<Response>,
  options: { idempotencyLevel?: "NO_SIDE_EFFECTS" } = {},
): MethodDefinition<Request, Request, Response, Response, RequestStream, ResponseStream> {
  return {
    path: `/continuity.v1.PortabilityService/${name}`,
    requestStream,
    responseStream,
    requestSerialize: (value) => request.encode(value).finish(),
    requestDeserialize: (bytes) => request.decode(bytes),
    responseSerialize: (value) => response.encode(value).finish(),
    responseDeserialize: (bytes) => response.decode(bytes),
    options,
  };
}

/**
 * PortabilityService with the bundle parts kept as bytes where they cross the wire: what an
 * exporter signs, an importer verifies and a file stores are the very bytes sent, never a
 * re-encoding through the generated types (which would, for one, round timestamps).
 * TransferSubject's `committed` answer is encoded by its handler.
 */
export const PortabilityServiceRawDefinition = {
  exportSubject: method("ExportSubject", false, true, v1.ExportSubjectRequest, asSent, { idempotencyLevel: "NO_SIDE_EFFECTS" }),
  importBundle: method("ImportBundle", true, false, asSent, v1.ImportBundleResponse),
  createMigration: method("CreateMigration", false, false, v1.CreateMigrationRequest, v1.CreateMigrationResponse),
  getMigration: method("GetMigration", false, false, v1.GetMigrationRequest, v1.GetMigrationResponse, { idempotencyLevel: "NO_SIDE_EFFECTS" }),
  cancelMigration: method("CancelMigration", false, false, v1.CancelMigrationRequest, v1.CancelMigrationResponse),
  transferSubject: method("TransferSubject", true, true, v1.TransferSubjectRequest, asSent),
} as const;

/** Tunables of the source's side of a switch. */
export interface TransferSettings {
  /** Longest the source holds a subject's writes for one switch before it lets them go. */
  readonly maxHoldMs: number;
  /** Longest it waits for writes already in flight when a hold begins. */
  readonly drainTimeoutMs: number;
}

/** Default tunables: a switch that takes longer than this is abandoned, and writes go ahead. */
export const DEFAULT_TRANSFER_SETTINGS: TransferSettings = Object.freeze({ maxHoldMs: 10_000, drainTimeoutMs: 5_000 });

const STATES: Record<MigrationStateName, continuity.v1.MigrationState> = {
  copying: v1.MigrationState.MIGRATION_STATE_COPYING,
  switching: v1.MigrationState.MIGRATION_STATE_SWITCHING,
  completed: v1.MigrationState.MIGRATION_STATE_COMPLETED,
  failed: v1.MigrationState.MIGRATION_STATE_FAILED,
  cancelled: v1.MigrationState.MIGRATION_STATE_CANCELLED,
};

/** The wire form of a migration. */
export function wireMigration(m: MigrationRecord): continuity.v1.Migration {
  return {
    name: `subjects/${m.subjectId}/migrations/${m.id}`,
    source: m.source,
    sourceSubject: m.sourceSubject,
    state: STATES[m.state],
    recordsCopied: BigInt(m.recordsCopied),
    recordsTotal: BigInt(m.recordsTotal),
    error: m.error,
    createTime: m.createdAt,
    endTime: m.endedAt,
    bytesCopied: BigInt(m.bytesCopied),
    lagDeltas: BigInt(m.lagDeltas),
    switchPause: m.switchPauseMs === undefined ? undefined : { seconds: BigInt(Math.floor(m.switchPauseMs / 1000)), nanos: Math.round((m.switchPauseMs % 1000) * 1e6) },
  };
}

const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]{1,253}):\d{1,5}$/;
const OWN_SUBJECT = "subjects/-";

const subjectParam = (field: string) => z.string().refine((name) => name === OWN_SUBJECT || parseSubjectName(name) !== undefined, `must be subjects/{subject} or ${OWN_SUBJECT}`).describe(field);
const positionsSchema = z
  .array(z.object({ streamUid: z.string().max(64), version: z.bigint().max(BigInt(Number.MAX_SAFE_INTEGER), "out of range") }))
  .max(10_000, "too many positions");
const exportSchema = z.object({ name: subjectParam("name"), after: positionsSchema });
const createMigrationSchema = z.object({
  parent: z.string().refine((name) => parseSubjectName(name) !== undefined, "must be subjects/{subject}"),
  source: z.string().refine((source) => HOST_PORT.test(sourceHostPort(source).hostPort), "must be host:port or https://host:port"),
  sourceAccessToken: z.string().min(1, "required").max(16_384),
  sourceSubject: z.string().refine((name) => name === "" || parseSubjectName(name) !== undefined, "must be subjects/{subject} or empty"),
});
const MIGRATION_NAME = /^subjects\/([a-z0-9][a-z0-9-]{0,63})\/migrations\/([a-z0-9][a-z0-9-]{0,63})$/;
const migrationNameSchema = z.object({ name: z.string().regex(MIGRATION_NAME, "must be subjects/{subject}/migrations/{migration}") });

function positionsMap(after: readonly { streamUid: string; version: bigint }[]): Map<string, number> {
  return new Map(after.map((p) => [p.streamUid, Number(p.version)]));
}

/** `subjects/-` or the token's own subject; any other subject is NOT_FOUND (ISO). */
function ownSubject(auth: AuthCallContextExt["auth"], name: string): string {
  if (name === OWN_SUBJECT) return auth.subjectId;
  const subjectId = parseSubjectName(name)!;
  requireOwnSubject(auth, subjectId, "manage");
  return subjectId;
}

/** What the portability service needs beyond the common deps. */
export interface PortabilityServiceOptions {
  readonly gate: SubjectGate;
  readonly migrations: MigrationRunner;
  /** The addresses a migration source may be dialed at (PORT-041). */
  readonly sourcePolicy: SourcePolicy;
  readonly transfer?: Partial<TransferSettings>;
  /** Keys whose bundles may bring account links, besides this server's own (PORT-012). */
  readonly trustedBundleKeys?: JSONWebKeySet;
}

/** This server's own key and the operator's trusted ones. */
export function trustedBundleKeys(deps: ServiceDeps, extra: JSONWebKeySet | undefined): JSONWebKeySet {
  return { keys: [deps.tokens.publicJwk, ...(extra?.keys ?? [])] };
}

/**
 * PortabilityService (docs/spec/portability.md): bundles out and in, and both sides of a
 * live migration — CreateMigration/GetMigration/CancelMigration on the target, and
 * TransferSubject on the source, where the subject's writes are held for the switch.
 */
export function createPortabilityService(deps: ServiceDeps, options: PortabilityServiceOptions): ServiceImplementation<typeof PortabilityServiceRawDefinition, AuthCallContextExt> {
  const { store } = deps;
  const transferSettings = { ...DEFAULT_TRANSFER_SETTINGS, ...options.transfer };
  const trustedKeys = trustedBundleKeys(deps, options.trustedBundleKeys);

  const migrationOf = async (auth: AuthCallContextExt["auth"], name: string): Promise<MigrationRecord> => {
    const [, subjectId, id] = MIGRATION_NAME.exec(name)!;
    requireOwnSubject(auth, subjectId!, "manage");
    const migration = await store.getMigration(subjectId!, id!);
    if (migration === undefined) throw protocolError(Status.NOT_FOUND, "MIGRATION_NOT_FOUND", "migration not found");
    return migration;
  };

  return {
    async *exportSubject(request, { auth, signal }) {
      requireScope(auth, "identity.manage");
      const req = parseRequest(exportSchema, request);
      const subjectId = ownSubject(auth, req.name);
      yield* exportSubjectParts(deps, subjectId, positionsMap(req.after), signal);
    },

    async importBundle(requests, { auth }) {
      requireScope(auth, "identity.manage");
      const importer = createBundleImporter(deps, auth.subjectId, { trustedKeys });
      for await (const part of requests) await importer.push(part);
      const counts = importer.finish();
      return { subject: `subjects/${auth.subjectId}`, recordsImported: BigInt(counts.recordsImported), recordsSkipped: BigInt(counts.recordsSkipped) };
    },

    async createMigration(request, { auth }) {
      requireScope(auth, "identity.manage");
      const req = parseRequest(createMigrationSchema, request);
      const subjectId = parseSubjectName(req.parent)!;
      requireOwnSubject(auth, subjectId, "manage");
      // PORT-041: a source this server may not dial is the caller's mistake, told before
      // anything starts; one whose name does not resolve is unreachable, the migration's
      // failure (PORT-035), and the run checks again before it dials.
      const checked = await checkSource(parseSourceAddress(sourceHostPort(req.source).hostPort), options.sourcePolicy);
      if (checked.kind === "refused") throw invalidField("source", checked.message);
      const active = await store.findActiveMigration(subjectId);
      if (active !== undefined) throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", `migration ${active.id} of this subject is running`);
      const migration: MigrationRecord = {
        subjectId,
        id: deps.newId(),
        source: req.source,
        sourceSubject: req.sourceSubject,
        state: "copying",
        recordsCopied: 0,
        recordsTotal: 0,
        bytesCopied: 0,
        lagDeltas: 0,
        switchPauseMs: undefined,
        error: "",
        createdAt: deps.clock(),
        endedAt: undefined,
      };
      if (!MINTED_ID.test(migration.id)) throw new Error("minted an invalid migration id");
      if ((await store.putMigration(migration, { lease: options.migrations.lease(deps.clock()) })) === "conflict") throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", "another migration of this subject is running");
      deps.metrics.recordMigration(migration);
      options.migrations.start(migration, req.sourceAccessToken);
      return { migration: wireMigration(migration) };
    },

    async getMigration(request, { auth }) {
      requireScope(auth, "identity.manage");
      const { name } = parseRequest(migrationNameSchema, request);
      return { migration: wireMigration(await migrationOf(auth, name)) };
    },

    async cancelMigration(request, { auth }) {
      requireScope(auth, "identity.manage");
      const { name } = parseRequest(migrationNameSchema, request);
      let migration = await migrationOf(auth, name);
      if (migration.state === "copying" || migration.state === "switching") {
        if (!options.migrations.cancel(migration.subjectId, migration.id)) {
          // Not running in this process: another server runs it (it stops when it sees the
          // record ended, at its next step or lease renewal), or none does any more. Ended
          // here, in the state it was read in, unless its runner recorded meanwhile that it
          // is sending the switch's commit: from then on the switch is the source's. A record
          // that moved on from copying to switching meanwhile is read again, once.
          for (let attempt = 0; attempt < 2 && migration.committing !== true && (migration.state === "copying" || migration.state === "switching"); attempt++) {
            const outcome = await store.putMigration({ ...migration, state: "cancelled", committing: false, endedAt: deps.clock() }, { ifState: migration.state });
            if (outcome !== "stale") break;
            migration = (await store.getMigration(migration.subjectId, migration.id)) ?? migration;
          }
        }
        // The runner records the end; wait briefly so the answer shows it.
        for (let i = 0; i < 50; i++) {
          const now = await store.getMigration(migration.subjectId, migration.id);
          if (now !== undefined && now.state !== "copying" && now.state !== "switching") return { migration: wireMigration(now) };
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      return { migration: wireMigration((await store.getMigration(migration.subjectId, migration.id)) ?? migration) };
    },

    async *transferSubject(requests, { auth, signal }) {
      requireScope(auth, "identity.manage");
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done === true || first.value.step?.$case !== "begin") throw invalidField("step", "the first request must be begin");
      const begin = first.value.step.value;
      // Field paths as the request spells them: `begin.name`, `begin.after[0].version`.
      const parsed = parseRequest(z.object({ begin: exportSchema }), { begin: { name: begin.name, after: begin.after } }).begin;
      const subjectId = ownSubject(auth, parsed.name);
      if (!HOST_PORT.test(begin.target)) throw invalidField("begin.target", "must be host:port");
      if (parseSubjectName(begin.targetSubject) === undefined) throw invalidField("begin.target_subject", "must be subjects/{subject}");
      const moved = await store.getSubjectMove(subjectId);
      if (moved !== undefined) throw subjectMovedError(moved);

      const hold = await options.gate.hold(subjectId, transferSettings);
      try {
        for await (const part of exportSubjectParts(deps, subjectId, positionsMap(parsed.after), signal)) yield part;
        // The target stores what it was sent, then commits; the hold's own time limit bounds the wait.
        let timer: NodeJS.Timeout | undefined;
        // Stryker disable next-line BlockStatement: a source may keep a switch open past its hold limit (PORT-045 bounds only one it ends); the gate's own limit lets the held writes go and refuses a late commit
        const expired = new Promise<"expired">((resolve) => {
          timer = setTimeout(() => resolve("expired"), Math.max(0, transferSettings.maxHoldMs - (Date.now() - hold.since)));
          // Stryker disable next-line all: when the target hangs up, its requests end too, so the race ends either way and nobody hears the answer
          signal.addEventListener("abort", () => resolve("expired"), { once: true });
        });
        const next = await Promise.race([iterator.next(), expired]);
        clearTimeout(timer);
        if (next === "expired") throw protocolError(Status.FAILED_PRECONDITION, "MIGRATION_CONFLICT", "the target did not commit the switch in time; the source keeps serving the subject");
        if (next.done === true || next.value.step?.$case !== "commit") throw invalidField("step", "the second request must be commit");
        await hold.commit({ subjectId, target: begin.target, targetSubject: begin.targetSubject, movedAt: deps.clock() });
        const pauseMs = Date.now() - hold.since;
        deps.logger.info({ subject: subjectId, target: begin.target, pauseMs }, "subject moved");
        yield v1.TransferSubjectResponse.encode({ part: { $case: "committed", value: { pause: { seconds: BigInt(Math.floor(pauseMs / 1000)), nanos: (pauseMs % 1000) * 1e6 } } } }).finish();
      } finally {
        hold.release();
      }
    },
  };
}

