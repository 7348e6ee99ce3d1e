/**
 * The least a Node.js relay can do, in a process of its own: parse the HTTP request, buffer its
 * body, sign it with SigV4 (the same signer the relay uses), send it to the fake over a
 * keep-alive agent and pass the answer back. No key check, no policy, no accounting, no logs,
 * no Lambda event. It is the floor for any relay built on node:http, as the TCP pipe is the
 * floor for any extra process: what the relay adds beyond it is the relay's own work.
 * Prints `PROXY {"url":…}` when ready; stops on SIGTERM.
 */
import http from 'node:http';
import type net from 'node:net';
import { FAKE_CREDENTIALS } from '../../test/support/fake-bedrock.js';
import { createSigner } from '../../lambda/upstream/signer.js';

const target = new URL(`http://127.0.0.1:${Number(process.env.PROXY_TARGET_PORT)}`);
const sign = createSigner('us-east-1', async () => ({ ...FAKE_CREDENTIALS }));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const PREFIX = '/bedrock';

const server = http.createServer({ noDelay: true }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const path = (req.url ?? '/').startsWith(PREFIX) ? (req.url ?? '/').slice(PREFIX.length) : (req.url ?? '/');
    const contentType = req.headers['content-type'];
    const headers: Record<string, string> = { ...(contentType ? { 'content-type': contentType } : {}), 'content-length': String(body.byteLength) };
    sign({ method: req.method ?? 'POST', url: target, path, query: [], headers, body }, 'bedrock').then(
      (signed) => {
        const upstream = http.request({ host: target.hostname, port: target.port, method: req.method, path, headers: signed, agent }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        upstream.end(body);
      },
      () => res.destroy(),
    );
  });
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
const { port } = server.address() as net.AddressInfo;
process.stdout.write(`PROXY ${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
