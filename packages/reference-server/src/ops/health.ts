import type { Server } from "nice-grpc";
import type { CallContext } from "nice-grpc-common";
import { HealthDefinition } from "nice-grpc-server-health";
import { ServerError, Status } from "nice-grpc-common";

// grpc.health.v1.HealthCheckResponse.ServingStatus; the package does not re-export the enum.
const SERVING = 1;
const NOT_SERVING = 2;
const SERVICE_UNKNOWN = 3;
type ServingStatus = typeof SERVING | typeof NOT_SERVING | typeof SERVICE_UNKNOWN;

/** Health of the server as a whole, as grpc.health.v1 reports it for every service name it knows. */
export interface HealthControl {
  /** The store is open and calls are served: report SERVING. */
  setServing(): void;
  /**
   * Draining: report NOT_SERVING so load balancers and probes move traffic away, and end
   * every Watch stream after telling it — an endless Watch would otherwise hold shutdown.
   */
  setShuttingDown(): void;
  /** What Check answers right now. */
  isServing(): boolean;
}

/**
 * Adds grpc.health.v1.Health to `server`, answering for the overall server (`""`) and each
 * name in `serviceNames`; starts NOT_SERVING until {@link HealthControl.setServing}. Its own
 * small implementation rather than nice-grpc-server-health's, so that shutdown can end
 * Watch streams.
 */
export function addHealthService<Ext extends object>(server: Server<Ext>, serviceNames: readonly string[]): HealthControl {
  const known = new Set(["", ...serviceNames]);
  let serving = false;
  let shuttingDown = false;
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const wake of [...waiters]) wake();
  };
  const statusOf = (service: string): ServingStatus =>
    !known.has(service)
      ? SERVICE_UNKNOWN
      : serving
        ? SERVING
        : NOT_SERVING;

  const nextChange = (signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        waiters.delete(wake);
        signal.removeEventListener("abort", wake);
        resolve();
      };
      waiters.add(wake);
      signal.addEventListener("abort", wake);
    });

  server.add(HealthDefinition, {
    async check(request, _context: CallContext) {
      if (!known.has(request.service)) throw new ServerError(Status.NOT_FOUND, `unknown service ${request.service}`);
      return { status: statusOf(request.service) };
    },
    async *watch(request, context: CallContext) {
      let last: ServingStatus | undefined;
      while (!context.signal.aborted) {
        const status = statusOf(request.service);
        if (status !== last) {
          yield { status };
          last = status;
        }
        if (shuttingDown) return;
        await nextChange(context.signal);
      }
    },
  });

  return {
    setServing() {
      if (shuttingDown) return;
      serving = true;
      changed();
    },
    setShuttingDown() {
      serving = false;
      shuttingDown = true;
      changed();
    },
    isServing: () => serving,
  };
}
