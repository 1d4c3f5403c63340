/**
 * The stub's HTTP server lifecycle: listening on a free loopback port, keeping track of the open sockets,
 * and closing everything on stop so that a test run ends without open handles.
 */
import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** The server's open sockets, kept up to date as they open and close. */
export function trackSockets(server: Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return sockets;
}

/** Listens on a free loopback port; resolves to `http://127.0.0.1:<port>`. */
export async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** Closes the server and destroys every socket; resolves once the listening handle is released. */
export function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  return new Promise<void>((resolve) => {
    // close() calls back before libuv has released the listening handle; two turns later it is gone.
    server.close(() => setImmediate(() => setImmediate(resolve)));
    server.closeAllConnections();
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  });
}
