import { createServer, connect, type Server, type Socket } from "node:net";

/**
 * A loopback TCP proxy whose cable can be pulled: `unplug()` drops every connection and
 * refuses new ones, `plug()` lets traffic through again. The demo puts one between the
 * laptop and the server to show a real network outage, not a simulated one.
 */
export interface UnpluggableProxy {
  /** `127.0.0.1:port` to give the client instead of the server's address. */
  readonly address: string;
  unplug(): void;
  plug(): void;
  close(): Promise<void>;
}

/** Starts a proxy to `target` (`host:port`). */
export async function startUnpluggableProxy(target: string): Promise<UnpluggableProxy> {
  const [host, port] = splitAddress(target);
  const sockets = new Set<Socket>();
  let plugged = true;
  const server: Server = createServer((client) => {
    if (!plugged) {
      client.destroy();
      return;
    }
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy did not bind a TCP port");
  return {
    address: `127.0.0.1:${address.port}`,
    unplug() {
      plugged = false;
      for (const socket of sockets) socket.destroy();
    },
    plug() {
      plugged = true;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function splitAddress(address: string): [string, number] {
  const index = address.lastIndexOf(":");
  return [address.slice(0, index), Number(address.slice(index + 1))];
}
