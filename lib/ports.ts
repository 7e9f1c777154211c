import { createServer } from "node:net";

/**
 * A TCP port on `host` that was free a moment ago. For handing to programs that must be told a port
 * up front (etcd, kube-apiserver); there is a small window in which something else can take it, so
 * callers that can, retry on "address in use".
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== "object" || !address) throw new Error(`could not get a free port on ${host}`);
  return address.port;
}
