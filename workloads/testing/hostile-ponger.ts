/**
 * A ponger an attacker controls, for tests and the abuse benchmark, on 127.0.0.1 over plain TCP:
 * every connection's first request gets `hostile` (bytes, or a head then the same bytes forever),
 * except that, with `thenGood`, connections after the first get a well-formed pong from pod "good".
 */
import { createServer, type Server, type Socket } from "node:net";
import { freePort } from "../../lib/ports.ts";

export type HostileAnswer = string | { readonly head: string; readonly forever: string };

export const goodPong = "HTTP/1.1 200 OK\r\nx-ponger-pod: good\r\ncontent-length: 4\r\n\r\npong";

export async function startHostilePonger(
  hostile: HostileAnswer,
  options: { thenGood?: boolean } = {},
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  let connections = 0;
  const open = new Set<Socket>();
  const server = createServer((socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    socket.on("error", () => undefined);
    const good = options.thenGood === true && connections++ > 0;
    socket.once("data", () => {
      if (good) socket.write(goodPong);
      else if (typeof hostile === "string") socket.write(hostile, "latin1");
      else {
        socket.write(hostile.head, "latin1");
        const more = () => {
          while (!socket.destroyed && socket.write(hostile.forever, "latin1"));
        };
        socket.on("drain", more);
        more();
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${port}/ping`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}
