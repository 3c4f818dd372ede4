import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ConnectionClosedReason } from "./connection-guard.js";

/**
 * The server's Prometheus metrics, in a registry of its own (never prom-client's global
 * one) so that several servers in one process — as in tests — do not collide.
 *
 * Services record domain facts through the small methods below; the RPC-level series are
 * fed by {@link createMetricsMiddleware} in `metrics-middleware.ts`.
 */
export interface ServerMetrics {
  readonly registry: Registry;
  /** A committed (not replayed) append of `deltas` deltas that took `seconds` end to end. */
  recordAppend(deltas: number, seconds: number): void;
  /** A retried append answered from its stored outcome. */
  recordAppendReplay(): void;
  /** A subscription started streaming; call the returned function exactly once when it ends. */
  subscriberOpened(): () => void;
  /** One finished RPC. `reason` is the ErrorInfo reason, or undefined on success. */
  recordRpc(method: string, code: string, reason: string | undefined, seconds: number): void;
  /** The latest progress of a migration this server is the target of. */
  recordMigration(migration: MigrationProgress): void;
  /** The connection guard refused, closed or moved a connection. */
  recordConnectionClosed(reason: ConnectionClosedReason): void;
}

/** What the migration metrics read of a migration. */
export interface MigrationProgress {
  readonly id: string;
  readonly state: string;
  readonly recordsCopied: number;
  readonly bytesCopied: number;
  readonly lagDeltas: number;
  readonly switchPauseMs: number | undefined;
}

/** Options of {@link createServerMetrics}. */
export interface ServerMetricsOptions {
  /** Also collect Node process metrics (CPU, heap, event-loop lag). Off in tests to keep them cheap. */
  readonly processMetrics?: boolean;
}

// Buckets from 0.5 ms to 5 s: appends on loopback SQLite sit at the low end, fsync-bound
// `full` durability and slow disks at the high end.
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Creates the metrics of one server. */
export function createServerMetrics(options: ServerMetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: "continuity_" });

  const appendedDeltas = new Counter({
    name: "continuity_appended_deltas_total",
    help: "Deltas committed by appends.",
    registers: [registry],
  });
  const appends = new Counter({
    name: "continuity_appends_total",
    help: "Append batches, by outcome (committed or replayed).",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const appendLatency = new Histogram({
    name: "continuity_append_duration_seconds",
    help: "Time from receiving a committed append to acknowledging it.",
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const activeSubscribers = new Gauge({
    name: "continuity_active_subscribers",
    help: "Subscriptions currently streaming.",
    registers: [registry],
  });
  const rpcDuration = new Histogram({
    name: "continuity_rpc_duration_seconds",
    help: "RPC duration by method and gRPC status code (streams: until the call ends).",
    labelNames: ["method", "code"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: "continuity_errors_total",
    help: "Failed RPCs by method, gRPC status code and ErrorInfo reason.",
    labelNames: ["method", "code", "reason"] as const,
    registers: [registry],
  });

  // Migrations: an operator alerts on a job stuck in one state, on failures, and on the pause.
  const migrationRecords = new Gauge({ name: "continuity_migration_records_copied", help: "Records copied by a running or finished migration.", labelNames: ["migration"] as const, registers: [registry] });
  const migrationBytes = new Gauge({ name: "continuity_migration_bytes_copied", help: "Bytes of records copied by a migration.", labelNames: ["migration"] as const, registers: [registry] });
  const migrationLag = new Gauge({ name: "continuity_migration_lag_deltas", help: "Deltas a migration was behind its source when it last looked.", labelNames: ["migration"] as const, registers: [registry] });
  const migrationState = new Gauge({ name: "continuity_migration_state", help: "1 for the state a migration is in (copying, switching, completed, failed, cancelled).", labelNames: ["migration", "state"] as const, registers: [registry] });
  const migrationsEnded = new Counter({ name: "continuity_migrations_ended_total", help: "Migrations that ended, by final state.", labelNames: ["state"] as const, registers: [registry] });
  const switchPause = new Histogram({ name: "continuity_migration_switch_pause_seconds", help: "How long the source held writes at a migration's switch.", buckets: LATENCY_BUCKETS, registers: [registry] });
  const migrationStates = new Map<string, string>();

  const connectionsClosed = new Counter({
    name: "continuity_connections_closed_total",
    help: "Connections refused at the cap, closed for not sending the HTTP/2 preface, or asked to reconnect after many cancelled calls.",
    labelNames: ["reason"] as const,
    registers: [registry],
  });

  return {
    registry,
    recordMigration(m) {
      migrationRecords.set({ migration: m.id }, m.recordsCopied);
      migrationBytes.set({ migration: m.id }, m.bytesCopied);
      migrationLag.set({ migration: m.id }, m.lagDeltas);
      const previous = migrationStates.get(m.id);
      if (previous !== m.state) {
        if (previous !== undefined) migrationState.set({ migration: m.id, state: previous }, 0);
        migrationState.set({ migration: m.id, state: m.state }, 1);
        migrationStates.set(m.id, m.state);
        if (m.state === "completed" || m.state === "failed" || m.state === "cancelled") {
          migrationsEnded.inc({ state: m.state });
          if (m.switchPauseMs !== undefined) switchPause.observe(m.switchPauseMs / 1000);
        }
      }
    },
    recordAppend(deltas, seconds) {
      appends.inc({ outcome: "committed" });
      appendedDeltas.inc(deltas);
      appendLatency.observe(seconds);
    },
    recordAppendReplay() {
      appends.inc({ outcome: "replayed" });
    },
    subscriberOpened() {
      activeSubscribers.inc();
      let closed = false;
      return () => {
        if (closed) return;
        closed = true;
        activeSubscribers.dec();
      };
    },
    recordRpc(method, code, reason, seconds) {
      rpcDuration.observe({ method, code }, seconds);
      if (code !== "OK") errors.inc({ method, code, reason: reason ?? "" });
    },
    recordConnectionClosed(reason) {
      connectionsClosed.inc({ reason });
    },
  };
}
