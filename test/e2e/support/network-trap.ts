/**
 * A proxy that lets nothing through. Claude Code (and the AWS SDK inside it) honour
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY, so pointing them here with NO_PROXY covering only the
 * loopback relay makes every other connection attempt (telemetry, updates, error reports,
 * api.anthropic.com…) visible and refused: the end-to-end test needs no network and proves it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface NetworkTrap {
  readonly url: string;
  /** `CONNECT host:port` or `METHOD absolute-url`, in arrival order. */
  readonly attempts: string[];
  /** The proxy variables that route everything but the loopback relay into the trap. */
  proxyEnv(): Record<string, string>;
  close(): Promise<void>;
}

export async function startNetworkTrap(): Promise<NetworkTrap> {
  const attempts: string[] = [];
  const server: Server = createServer((req, res) => {
    attempts.push(`${req.method ?? '?'} ${req.url ?? ''}`);
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end('blocked by the end-to-end test: no network beyond the local relay\n');
  });
  server.on('connect', (req, socket) => {
    attempts.push(`CONNECT ${req.url ?? ''}`);
    socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    attempts,
    proxyEnv: () => ({
      HTTPS_PROXY: url,
      HTTP_PROXY: url,
      https_proxy: url,
      http_proxy: url,
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
    }),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
