/**
 * A Lambda Function URL (InvokeMode RESPONSE_STREAM) in front of a Runtime API: each HTTP
 * request becomes a payload v2.0 event (built by the local emulator's toEvent, so both doors
 * send the same events), queued for the runtime; the function's streamed answer becomes the
 * HTTP response, as it arrives:
 *
 *   content-type application/vnd.awslambda.http-integration-response:
 *     JSON prelude {statusCode, headers, cookies} + 8 NUL bytes + body
 *   anything else: 200 with that content type, the bytes as the body
 *
 * As AWS does: an answer that ends before a complete prelude, an invocation error, an init
 * error or a runtime that died → 502; a function that fails after the body started (error
 * trailers) → the client's connection is cut, never a clean end. A client that goes away does
 * not stop the function: its remaining bytes are read and dropped.
 *
 * Every exchange is kept in `exchanges` (what the runtime sent, how it ended) for test messages.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { FUNCTION_URL_MAX_REQUEST_BYTES, toEvent } from '../../lambda/local/function-url-emulator.js';
import type { Answer, RuntimeApi, StreamEnd } from './runtime-api.js';

export const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const DELIMITER = Buffer.alloc(8);
const MAX_PRELUDE_BYTES = 64 * 1024;
/** Hop-by-hop: the Function URL frames the body itself. */
const FRAMING_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive']);

export interface Exchange {
  readonly method: string;
  readonly path: string;
  readonly requestId: string;
  answer?: Answer['kind'];
  /** Content type of the runtime's response POST. */
  contentType?: string;
  /** The prelude as sent, when one was. */
  prelude?: string;
  status?: number;
  end?: StreamEnd;
  /** What the client was given: a complete response, a cut connection, or a 502. */
  outcome?: 'complete' | 'cut' | '502' | '413' | 'client-gone';
  note?: string;
}

export interface FunctionUrlFront {
  readonly url: string;
  readonly exchanges: Exchange[];
  close(): Promise<void>;
}

export interface FrontOptions {
  readonly runtime: RuntimeApi;
  /** How long the function may take to start answering (default 60 s). */
  readonly answerTimeoutMs?: number;
}

export async function startFunctionUrlFront(options: FrontOptions): Promise<FunctionUrlFront> {
  const exchanges: Exchange[] = [];
  const sockets = new Set<Socket>();
  const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    void serve(options, exchanges, req, res).catch((error: unknown) => {
      process.stderr.write(`function-url-front: ${(error as Error).stack ?? String(error)}\n`);
      if (!res.headersSent) gateway(res, 502);
      else res.socket?.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function serve(options: FrontOptions, exchanges: Exchange[], req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  if (body === undefined) {
    exchanges.push({ method: req.method ?? 'GET', path: req.url ?? '/', requestId: '-', outcome: '413' });
    return plain(res, 413, { Message: `Request must be smaller than ${FUNCTION_URL_MAX_REQUEST_BYTES} bytes for the InvokeFunction operation` });
  }
  const invocation = options.runtime.invoke(toEvent(req, body));
  const exchange: Exchange = { method: req.method ?? 'GET', path: req.url ?? '/', requestId: invocation.requestId };
  exchanges.push(exchange);

  const answer = await withTimeout(invocation.answer, options.answerTimeoutMs ?? 60_000);
  exchange.answer = answer?.kind ?? undefined;
  if (!answer) {
    exchange.note = 'no answer from the function in time';
    exchange.outcome = '502';
    return gateway(res, 502);
  }
  if (answer.kind !== 'stream') {
    exchange.note = 'body' in answer ? `${answer.kind}: ${answer.body.toString('utf8').slice(0, 500)}` : answer.reason;
    exchange.outcome = '502';
    return gateway(res, 502);
  }

  exchange.contentType = answer.contentType;
  const clientGone = () => !res.writableEnded && (res.destroyed || !res.socket || res.socket.destroyed);
  const source = answer.body;
  const forward = async (chunk: Buffer): Promise<void> => {
    if (clientGone()) return;
    if (res.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  };

  const raw = answer.contentType.split(';')[0]!.trim().toLowerCase() !== PRELUDE_CONTENT_TYPE;
  let head: Buffer | undefined = raw ? undefined : Buffer.alloc(0);
  if (raw) sendHead(res, exchange, 200, { 'content-type': answer.contentType });
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (head === undefined) {
        await forward(chunk);
        continue;
      }
      head = Buffer.concat([head, chunk]);
      const at = head.indexOf(DELIMITER);
      if (at === -1) {
        if (head.byteLength > MAX_PRELUDE_BYTES) throw new Error('prelude too large');
        continue;
      }
      exchange.prelude = head.subarray(0, at).toString('utf8');
      const prelude = parsePrelude(head.subarray(0, at));
      const rest = head.subarray(at + DELIMITER.length);
      head = undefined;
      if (!prelude) throw new Error(`invalid prelude: ${exchange.prelude.slice(0, 200)}`);
      sendHead(res, exchange, prelude.statusCode, prelude.headers, prelude.cookies);
      if (rest.byteLength > 0) await forward(rest);
    }
  } catch (error) {
    exchange.note = (error as Error).message;
    // Keep reading whatever the function still sends: AWS never interrupts it.
    source.resume();
  }
  const end = await answer.end;
  exchange.end = end;
  if (!res.headersSent) {
    exchange.outcome = '502';
    exchange.note ??= end.kind === 'complete' ? 'the response ended before a complete prelude' : `the function failed before its prelude (${describeEnd(end)})`;
    return gateway(res, 502);
  }
  if (end.kind !== 'complete') {
    exchange.outcome = 'cut';
    exchange.note ??= describeEnd(end);
    res.socket?.destroy();
    return;
  }
  if (clientGone()) {
    exchange.outcome = 'client-gone';
    return;
  }
  exchange.outcome = 'complete';
  await new Promise<void>((resolve) => res.end(resolve));
}

function sendHead(res: ServerResponse, exchange: Exchange, status: number, headers: Record<string, string>, cookies: readonly string[] = []): void {
  exchange.status = status;
  const outgoing: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (!FRAMING_HEADERS.has(name.toLowerCase())) outgoing[name] = value;
  if (cookies.length > 0) outgoing['set-cookie'] = [...cookies];
  res.writeHead(status, outgoing);
  // A streaming client sees status and headers before the first body byte.
  res.flushHeaders();
}

function parsePrelude(bytes: Buffer): { statusCode: number; headers: Record<string, string>; cookies: string[] } | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { statusCode?: unknown; headers?: unknown; cookies?: unknown };
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const statusCode = typeof parsed.statusCode === 'number' ? parsed.statusCode : 200;
    const headers: Record<string, string> = {};
    if (parsed.headers && typeof parsed.headers === 'object') {
      for (const [name, value] of Object.entries(parsed.headers as Record<string, unknown>)) headers[name.toLowerCase()] = String(value);
    }
    const cookies = Array.isArray(parsed.cookies) ? parsed.cookies.map(String) : [];
    return { statusCode, headers, cookies };
  } catch {
    return undefined;
  }
}

function describeEnd(end: StreamEnd): string {
  if (end.kind === 'error-trailer') return `error trailer ${end.errorType}: ${JSON.stringify(end.errorBody).slice(0, 300)}`;
  if (end.kind === 'broken') return end.reason;
  return 'complete';
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > FUNCTION_URL_MAX_REQUEST_BYTES) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  return tooLarge ? undefined : Buffer.concat(chunks);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    void promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

function gateway(res: ServerResponse, status: number): void {
  plain(res, status, { Message: 'Internal Server Error' });
}

function plain(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
