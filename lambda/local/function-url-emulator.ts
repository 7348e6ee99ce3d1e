/**
 * A faithful local stand-in for a Lambda Function URL in RESPONSE_STREAM mode, so that
 * `npm start` runs the very handler Lambda runs (lambda/handler.ts), not a second
 * implementation:
 *
 *   HTTP/1.1 or cleartext HTTP/2 request ─▶ payload v2.0 event ─▶ handler(event, responseStream, context)
 *   responseStream bytes: JSON prelude + 8 NUL bytes + body ─▶ status, headers, streamed body
 *
 * It installs the `awslambda` global the managed runtime provides, with the same semantics
 * (the prelude is written by the first write(), not by end()), enforces the Function URL's
 * 6 MB request limit, and tells the handler when the client goes away by destroying the
 * response stream, which AWS cannot do but a local server can.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Writable } from 'node:stream';
import type { Context, LambdaFunctionURLEvent } from 'aws-lambda';
import type { LambdaResponseStream } from '../runtime/function-url.js';

export const FUNCTION_URL_MAX_REQUEST_BYTES = 6 * 1024 * 1024;
const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const DELIMITER = Buffer.alloc(8);

type StreamingHandler = (event: LambdaFunctionURLEvent, stream: LambdaResponseStream, context: Context) => unknown;

interface EmulatedStream extends LambdaResponseStream {
  _onBeforeFirstWrite?: (write: (chunk: string | Uint8Array) => void) => void;
}

/** Install the runtime's `awslambda` global (idempotent; a real runtime's global is kept). */
export function installAwslambdaGlobal(): void {
  // Other libraries (e.g. @aws/lambda-invoke-store, used by Powertools) may already have
  // created an `awslambda` object: add what is missing rather than replace it.
  const global = globalThis as { awslambda?: Record<string, unknown> };
  const target = (global.awslambda ??= {});
  if (typeof target.streamifyResponse === 'function') return;
  target.streamifyResponse = <T>(handler: T): T => handler;
  target.HttpResponseStream = {
    from(stream: LambdaResponseStream, prelude: Record<string, unknown>): LambdaResponseStream {
      stream.setContentType(PRELUDE_CONTENT_TYPE);
      const json = JSON.stringify(prelude);
      (stream as EmulatedStream)._onBeforeFirstWrite = (write: (chunk: string | Uint8Array) => void) => {
        write(json);
        write(DELIMITER);
      };
      return stream;
    },
  };
}

type CompatRequest = http.IncomingMessage | http2.Http2ServerRequest;
type CompatResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface EmulatorOptions {
  readonly handler: StreamingHandler;
  readonly port?: number;
  readonly host?: string;
  readonly functionName?: string;
}

export interface RunningEmulator {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serve the handler on one port that speaks HTTP/1.1 and prior-knowledge h2c. */
export async function startFunctionUrlEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  installAwslambdaGlobal();
  // Invocations still running (e.g. writing usage after the last byte) are awaited by close(),
  // as Lambda lets an invocation finish after its response has been sent.
  const inFlight = new Set<Promise<void>>();
  const onRequest = (req: CompatRequest, res: CompatResponse) => {
    const invocation = serve(options, req, res);
    inFlight.add(invocation);
    void invocation.finally(() => inFlight.delete(invocation));
  };
  const h1 = http.createServer({ keepAliveTimeout: 65_000 }, onRequest);
  const h2 = http2.createServer({}, onRequest);
  const sockets = new Set<net.Socket>();
  // The HTTP/2 connection preface starts with "PRI * HTTP/2.0"; anything else is HTTP/1.x.
  // noDelay: the response head and the first body bytes are small writes; without it the
  // second waits for the client's delayed ACK (about 40 ms a request on keep-alive).
  const front = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('readable', () => {
      const head: Buffer | null = socket.read(Math.min(socket.readableLength, 24)) ?? socket.read();
      if (!head) return socket.destroy();
      socket.unshift(head);
      (head.subarray(0, 3).toString('latin1') === 'PRI' ? h2 : h1).emit('connection', socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = front.address() as net.AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: async () => {
      // Bounded: an invocation stuck on a silent upstream must not hold the shutdown forever.
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
      for (const socket of sockets) socket.destroy();
      h1.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}

async function serve(options: EmulatorOptions, req: CompatRequest, res: CompatResponse): Promise<void> {
  let body: Buffer;
  try {
    body = await readBody(req);
  } catch {
    return plain(res, 413, { Message: 'Request must be smaller than 6291456 bytes for the InvokeFunction operation' });
  }
  const event = toEvent(req, body);
  const stream = new EmulatedResponseStream(res);
  // A stream error (prelude never written, client gone) is judged below, not thrown.
  stream.on('error', () => undefined);
  const clientGone = () => {
    if (!stream.writableFinished) stream.destroy();
  };
  res.on('close', clientGone);
  try {
    await options.handler(event, stream, fakeContext(options.functionName ?? 'bedrock-relay', event.requestContext.requestId));
    if (!stream.writableEnded) stream.end();
    await stream.finished;
    if (!stream.headersSent()) plain(res, 502, { Message: 'Internal Server Error' });
  } catch {
    // A handler that fails before its prelude gets the Function URL's 502; one that fails
    // mid-stream has its connection cut, so the client sees an error, never a clean end.
    if (!stream.headersSent()) plain(res, 502, { Message: 'Internal Server Error' });
    else abortResponse(res);
  } finally {
    res.off('close', clientGone);
  }
}

/**
 * The response stream a streaming handler writes to. Bytes before the 8-NUL delimiter are the
 * JSON prelude (status, headers, cookies); the rest is the body, forwarded as it comes with
 * the HTTP response's backpressure.
 */
class EmulatedResponseStream extends Writable implements EmulatedStream {
  _onBeforeFirstWrite?: (write: (chunk: string | Uint8Array) => void) => void;
  private contentType = 'application/octet-stream';
  private firstWriteDone = false;
  private preludeBuffer: Buffer | undefined = Buffer.alloc(0);
  private sentHead = false;
  readonly finished: Promise<void>;

  constructor(private readonly res: CompatResponse) {
    super({ highWaterMark: 16 * 1024 });
    this.finished = new Promise((resolve) => {
      this.on('finish', () => resolve());
      this.on('close', () => resolve());
    });
  }

  setContentType(contentType: string): void {
    if (this.firstWriteDone) throw new Error('Cannot set content-type, too late.');
    this.contentType = contentType;
  }

  headersSent(): boolean {
    return this.sentHead;
  }

  override write(chunk: unknown, encoding?: unknown, callback?: unknown): boolean {
    if (!this.firstWriteDone) {
      this.firstWriteDone = true;
      this._onBeforeFirstWrite?.((early) => super.write(early));
    }
    return super.write(chunk as Buffer, encoding as BufferEncoding, callback as (error?: Error | null) => void);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.contentType !== PRELUDE_CONTENT_TYPE) {
      this.sendHead(200, { 'content-type': this.contentType });
      return this.forward(chunk, callback);
    }
    if (this.preludeBuffer === undefined) return this.forward(chunk, callback);
    this.preludeBuffer = Buffer.concat([this.preludeBuffer, chunk]);
    const end = this.preludeBuffer.indexOf(DELIMITER);
    if (end === -1) return callback();
    const prelude = parsePrelude(this.preludeBuffer.subarray(0, end));
    const rest = this.preludeBuffer.subarray(end + DELIMITER.length);
    this.preludeBuffer = undefined;
    if (!prelude) return callback(new Error('invalid response prelude'));
    this.sendHead(prelude.statusCode, prelude.headers, prelude.cookies);
    if (rest.byteLength === 0) return callback();
    this.forward(rest, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.sentHead) {
      // Ended without a complete prelude: what a Function URL answers 502 for.
      if (this.contentType === PRELUDE_CONTENT_TYPE) return callback(new Error('stream ended before the response prelude'));
      this.sendHead(200, { 'content-type': this.contentType });
    }
    this.res.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    callback(error);
  }

  private sendHead(status: number, headers: Record<string, string>, cookies: string[] = []): void {
    if (this.sentHead) return;
    this.sentHead = true;
    const outgoing: Record<string, string | string[]> = { ...headers };
    if (cookies.length > 0) outgoing['set-cookie'] = cookies;
    (this.res as http.ServerResponse).writeHead(status, outgoing);
    // Push the status line and headers now: a streaming client must see them before the body.
    (this.res as http.ServerResponse).flushHeaders?.();
  }

  private forward(chunk: Buffer, callback: (error?: Error | null) => void): void {
    if (this.res.destroyed) return callback(new Error('client gone'));
    if ((this.res as http.ServerResponse).write(chunk)) return callback();
    const done = () => {
      this.res.off('drain', done);
      this.res.off('close', done);
      callback(this.res.destroyed ? new Error('client gone') : undefined);
    };
    this.res.on('drain', done);
    this.res.on('close', done);
  }
}

function parsePrelude(bytes: Buffer): { statusCode: number; headers: Record<string, string>; cookies?: string[] } | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { statusCode?: unknown; headers?: unknown; cookies?: unknown };
    const statusCode = typeof parsed.statusCode === 'number' ? parsed.statusCode : 200;
    const headers: Record<string, string> = {};
    if (parsed.headers && typeof parsed.headers === 'object') {
      for (const [name, value] of Object.entries(parsed.headers as Record<string, unknown>)) headers[name.toLowerCase()] = String(value);
    }
    const cookies = Array.isArray(parsed.cookies) ? parsed.cookies.map(String) : undefined;
    return { statusCode, headers, cookies };
  } catch {
    return undefined;
  }
}

async function readBody(req: CompatRequest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength;
    if (size > FUNCTION_URL_MAX_REQUEST_BYTES) throw new Error('too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const TEXT_CONTENT = /^(text\/|application\/(json|[\w.+-]+\+json|xml|[\w.+-]+\+xml|x-www-form-urlencoded|javascript))/i;

/** Build the payload v2.0 event exactly as a Function URL does. */
export function toEvent(req: CompatRequest, body: Buffer): LambdaFunctionURLEvent {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const rawPath = q === -1 ? url : url.slice(0, q);
  const rawQueryString = q === -1 ? '' : url.slice(q + 1);
  const headers = flattenHeaders(req.headers);
  const cookies = headers.cookie ? headers.cookie.split(/;\s*/) : undefined;
  delete headers.cookie;
  const now = new Date();
  const isText = TEXT_CONTENT.test(headers['content-type'] ?? '');
  const queryStringParameters = rawQueryString ? Object.fromEntries(new URLSearchParams(rawQueryString)) : undefined;
  const requestId = randomUUID();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString,
    cookies,
    headers,
    queryStringParameters,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: (headers.host ?? 'localhost').split('.')[0]!,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket?.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: body.byteLength === 0 ? undefined : isText ? body.toString('utf8') : body.toString('base64'),
    isBase64Encoded: body.byteLength > 0 && !isText,
  };
}

function flattenHeaders(headers: IncomingHttpHeaders | http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    if (name.startsWith(':')) {
      if (name === ':authority' && !headers.host) out.host = String(value);
      continue;
    }
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}

function plain(res: CompatResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  (res as http.ServerResponse).writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function abortResponse(res: CompatResponse): void {
  if ('stream' in res && res.stream) {
    res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  (res as http.ServerResponse).socket?.destroy();
}

function fakeContext(functionName: string, requestId: string): Context {
  const deadline = Date.now() + 15 * 60 * 1000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
