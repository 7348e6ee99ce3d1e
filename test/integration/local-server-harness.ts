/**
 * The local server as `npm start` builds it (lambda/local/server.ts: emulator, limits, key
 * screen, embedded dynalite), in this process, against a fake Bedrock, with small limits set
 * through the same RELAY_* variables a user would set.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { startLocalServer, type LocalServer } from '../../lambda/local/server.js';
import { FAKE_CREDENTIALS, fakeBedrockEnv, startFakeBedrock, type FakeBedrock, type FakeBedrockOptions } from '../support/fake-bedrock.js';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';

export interface LocalUnderTest {
  readonly fake: FakeBedrock;
  readonly local: LocalServer;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startLocal(options: { env?: Record<string, string>; fake?: FakeBedrockOptions } = {}): Promise<LocalUnderTest> {
  const fake = await startFakeBedrock(options.fake);
  const local = await startLocalServer({
    env: localServerEnv(fake, options.env),
    dataDir: undefined,
    overrides: { credentials: async () => ({ ...FAKE_CREDENTIALS }) },
  });
  return {
    fake,
    local,
    url: local.url,
    port: local.emulator.port,
    close: async () => {
      await local.stop(2_000);
      await fake.close();
    },
  };
}

/** The environment the tests start a local server with: the fake upstream, the test master key, a free port, quiet telemetry. */
export function localServerEnv(fake: FakeBedrock, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...fakeBedrockEnv(fake),
    RELAY_MASTER_KEY: TEST_MASTER_KEY,
    PORT: '0',
    HOST: '127.0.0.1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...extra,
  };
}

/** A raw TCP connection to the server (the test writes bytes and resets it at will). */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Resolves when the socket is closed, with whatever it received. */
export function closed(socket: net.Socket): Promise<string> {
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(received);
    socket.once('close', () => resolve(received));
  });
}

/** Resolves once the socket has received at least one byte. */
export function firstBytes(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')));
    socket.once('close', () => reject(new Error('closed before any byte')));
  });
}

/** An h2c session over a socket the test keeps, so it can reset the TCP connection itself. */
export async function h2Session(port: number): Promise<{ session: http2.ClientHttp2Session; socket: net.Socket }> {
  const socket = await connect(port);
  const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => socket });
  session.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    session.once('connect', () => resolve());
    session.once('error', reject);
  });
  return { session, socket };
}

export function httpHead(method: string, path: string, headers: Record<string, string>): string {
  return `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('')}\r\n`;
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Reads one HTTP/1.1 response (content-length framed) from a raw socket, leaving the socket open. */
export function readAnswer(socket: net.Socket): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      if (buffer.byteLength < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve({ status, headers, body: buffer.subarray(end + 4, end + 4 + length).toString('utf8') });
    };
    const onClose = () => reject(new Error(`closed before a whole answer: ${JSON.stringify(buffer.toString('latin1'))}`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
