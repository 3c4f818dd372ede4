import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "pino";
import { startRoundRobinProxy, type RoundRobinProxy } from "./ops/round-robin-proxy.js";

/**
 * `--replicas N`: a local multi-replica deployment in one command, for trying out and for
 * tests. This process starts N servers of its own command line on the same PostgreSQL store
 * and data directory (one signing key, one set of platforms), each on a free loopback port,
 * and serves `--listen` with a per-call round-robin proxy in front of them. A replica that
 * dies is started again; SIGTERM stops them all. In production, run the replicas under your
 * own supervisor and balancer instead.
 */

/** Flags the replicas must not inherit: each listens on its own port, and is one replica. */
const OWN_FLAGS = new Set(["--listen", "--replicas", "--metrics-listen", "--grpc-web-listen"]);

/** The command line of one replica: this one without the flags the supervisor owns. */
export function replicaArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.includes("=") ? arg.slice(0, arg.indexOf("=")) : arg;
    if (OWN_FLAGS.has(name)) {
      if (!arg.includes("=")) i += 1;
      continue;
    }
    out.push(arg);
  }
  return out;
}

interface Replica {
  child: ChildProcess;
  address: string;
}

/** Runs the supervisor; resolves with the proxy's address once every replica is ready. */
export async function runReplicas(options: {
  readonly count: number;
  readonly listen: string;
  readonly argv: readonly string[];
  readonly logger: Logger;
  readonly onReady: (address: string) => void;
}): Promise<void> {
  const { logger } = options;
  const entry = process.argv[1]!;
  let stopping = false;
  const replicas: (Replica | undefined)[] = [];
  let proxy: RoundRobinProxy | undefined;

  const start = (index: number): Promise<Replica> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [...process.execArgv, entry, ...replicaArgs(options.argv)], {
        env: { ...process.env, CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_REPLICAS: "1", CONTINUITY_METRICS_LISTEN: "" },
        stdio: ["ignore", "pipe", "inherit"],
      });
      let ready = false;
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (ready || !line.startsWith("CONTINUITY_LISTENING=")) return;
        ready = true;
        const replica = { child, address: line.slice("CONTINUITY_LISTENING=".length).trim() };
        replicas[index] = replica;
        proxy?.setReplicas(replicas.flatMap((r) => (r === undefined ? [] : [r.address])));
        logger.info({ replica: index, address: replica.address }, "replica ready");
        resolve(replica);
      });
      child.once("exit", (code, signal) => {
        if (!ready) {
          reject(new Error(`replica ${index} exited before it was ready (${code ?? signal})`));
          return;
        }
        replicas[index] = undefined;
        proxy?.setReplicas(replicas.flatMap((r) => (r === undefined ? [] : [r.address])));
        if (stopping) return;
        logger.warn({ replica: index, code, signal }, "replica died: starting it again");
        start(index).catch((error: unknown) => logger.error({ err: error, replica: index }, "replica could not be restarted"));
      });
    });

  // One after another: the first creates the signing key, the platforms and the schema.
  for (let i = 0; i < options.count; i++) await start(i);
  proxy = await startRoundRobinProxy(replicas.map((r) => r!.address), options.listen);

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    logger.info({ signal }, "stopping the replicas");
    void (async () => {
      // The replicas drain first, behind the proxy: their subscribers get UNAVAILABLE /
      // SHUTTING_DOWN through it (GEN-020) rather than a connection cut by the proxy.
      const exits = replicas.flatMap((r) => (r === undefined ? [] : [new Promise((resolve) => r.child.once("exit", resolve))]));
      for (const r of replicas) r?.child.kill("SIGTERM");
      await Promise.all(exits);
      await proxy?.close();
      process.exit(0);
    })();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  logger.info({ address: proxy.address, replicas: replicas.map((r) => r?.address) }, "continuity replicas ready behind a round-robin proxy");
  options.onReady(proxy.address);
}
