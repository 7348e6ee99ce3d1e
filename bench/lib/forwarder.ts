/**
 * A plain TCP forwarder from a port of 127.0.0.1 to the fake.
 *
 * Why: Portkey's Bedrock provider signs the `host` header as the endpoint's hostname without
 * its port (build/start-server.js: `t.host = new URL(url).hostname` before SignatureV4.sign)
 * while its HTTP client sends `Host: 127.0.0.1:<port>`; the fake, like AWS, recomputes the
 * signature from the wire and rejects it (403 InvalidSignatureException). Against real Bedrock
 * (port 443) the two agree. Listening on the scheme's default port (80) makes them agree here
 * too. Binding port 80 needs privileges; without them the Portkey comparison is skipped and
 * says so.
 *
 * In the peer comparison every target (direct, relay, Portkey) goes through the same forwarder
 * so that its cost is on all sides.
 */
import net from 'node:net';

export interface Forwarder {
  readonly url: string;
  close(): Promise<void>;
}

export async function startForwarder(listenPort: number, targetPort: number): Promise<Forwarder> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: port === 80 ? 'http://127.0.0.1' : `http://127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
