import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

/** A running `/metrics` endpoint. */
export interface MetricsHttpServer {
  /** The bound `host:port` (useful with port 0). */
  readonly address: string;
  close(): Promise<void>;
}

function splitHostPort(listen: string): { host: string; port: number } {
  const index = listen.lastIndexOf(":");
  const host = listen.slice(0, index).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(listen.slice(index + 1)) };
}

/**
 * Serves the registry in Prometheus text format on `GET /metrics`, over plain node:http on
 * its own port: metrics are scraped by infrastructure that speaks HTTP, and keeping them off
 * the gRPC port keeps them off the public surface. Everything else answers 404.
 */
export async function startMetricsHttpServer(registry: Registry, listen: string): Promise<MetricsHttpServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (request.method !== "GET" || path !== "/metrics") {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { "content-type": registry.contentType }).end(text),
      () => response.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n"),
    );
  });
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const address = bound.family === "IPv6" ? `[${bound.address}]:${bound.port}` : `${bound.address}:${bound.port}`;
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
