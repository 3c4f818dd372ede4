import { createServer } from "node:http";
import { setupWSConnection } from "@y/websocket-server/utils";
import { WebSocketServer } from "ws";

// The y-websocket peer of `pnpm bench`: the server the y-websocket project ships
// (`@y/websocket-server`), in its own process like the reference server, in memory.
// Prints YJS_LISTENING=<host:port> when ready.

const http = createServer((_request, response) => {
  response.writeHead(404).end();
});
const wss = new WebSocketServer({ noServer: true });
wss.on("connection", (socket, request) => setupWSConnection(socket, request));
http.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
});
http.listen(0, "127.0.0.1", () => {
  const address = http.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  process.stdout.write(`YJS_LISTENING=127.0.0.1:${address.port}\n`);
});
// Nothing to keep: the documents live in memory only.
process.on("SIGTERM", () => process.exit(0));
