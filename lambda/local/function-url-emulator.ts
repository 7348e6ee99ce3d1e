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
 *
 * It also stands in for what AWS's front end does before a Function URL is invoked, so that a
 * hostile network cannot take it down: every socket, session and stream error is handled;
 * a head must arrive within a timeout, a body must keep progressing, idle keep-alive
 * connections and h2 sessions are closed, connections are capped (limits.ts); request bodies
 * buffered across all requests share one byte budget (503 + retry-after beyond it); an
 * optional `screen` refuses a request from its head alone, before any body byte is buffered.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Context, LambdaFunctionURLEvent } from 'aws-lambda';
import type { LambdaResponseStream } from '../runtime/function-url.js';
import { ByteBudget } from './byte-budget.js';
import { DEFAULT_LIMITS, type ServerLimits } from './limits.js';
import { readBody } from './request-body.js';
import { PRELUDE_CONTENT_TYPE, PRELUDE_DELIMITER, PreludeResponseStream, type ResponseHead } from './response-stream.js';
import { Slots } from './slots.js';

export const FUNCTION_URL_MAX_REQUEST_BYTES = 6 * 1024 * 1024;

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
        write(PRELUDE_DELIMITER);
      };
      return stream;
    },
  };
}

type CompatRequest = http.IncomingMessage | http2.Http2ServerRequest;
type CompatResponse = http.ServerResponse | http2.Http2ServerResponse;

/** What the emulator knows of a request before reading its body. */
export interface RequestHead {
  readonly method: string;
  readonly rawPath: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** An answer the emulator gives itself, without invoking the handler. */
export interface LocalAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Why the emulator refused a request on its own: body stalled (408), or too many bytes buffered (503). */
export interface Refusal {
  readonly status: 408 | 503;
  readonly message: string;
  readonly retryAfterSeconds?: number;
}

export type EmulatorLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface EmulatorOptions {
  readonly handler: StreamingHandler;
  readonly port?: number;
  readonly host?: string;
  readonly functionName?: string;
  /** Timeouts, connection cap, buffered-bytes cap; see limits.ts for the defaults. */
  readonly limits?: Partial<ServerLimits>;
  /** Looks at a request's head before its body is read; an answer refuses it (e.g. no key at all). */
  readonly screen?: (head: RequestHead) => LocalAnswer | undefined;
  /** Renders the emulator's own refusals in the client's dialect; default: `{"message"}`. */
  readonly renderRefusal?: (refusal: Refusal, head: RequestHead) => LocalAnswer;
  readonly log?: EmulatorLog;
}

export interface EmulatorStats {
  readonly connections: number;
  readonly inFlight: number;
  readonly bufferedRequestBytes: number;
  /** Requests read and waiting for an invocation slot (maxInFlightCalls). */
  readonly waitingForSlot: number;
}

export interface RunningEmulator {
  readonly url: string;
  readonly port: number;
  readonly limits: ServerLimits;
  stats(): EmulatorStats;
  /**
   * Stops accepting connections, closes idle ones, lets invocations in flight finish (each
   * awaits its usage write) for up to `graceMs`, then cuts whatever is left.
   * Resolves with how many invocations were cut.
   */
  shutdown(graceMs?: number): Promise<{ readonly unfinished: number }>;
  /** shutdown() with the configured grace (tests and embedders). */
  close(): Promise<void>;
}

interface ServeContext {
  readonly options: EmulatorOptions;
  readonly limits: ServerLimits;
  readonly budget: ByteBudget;
  readonly slots: Slots;
  readonly draining: () => boolean;
}

const noLog: EmulatorLog = () => undefined;
/** How long calls cut at the shutdown deadline get to write their usage. */
const CUT_SETTLE_MS = 5_000;

/** Serve the handler on one port that speaks HTTP/1.1 and prior-knowledge h2c. */
export async function startFunctionUrlEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  installAwslambdaGlobal();
  const limits: ServerLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const log = options.log ?? noLog;
  const budget = new ByteBudget(limits.maxBufferedRequestBytes);
  let draining = false;
  const slots = new Slots(limits.maxInFlightCalls);
  const context: ServeContext = { options, limits, budget, slots, draining: () => draining };
  // Invocations still running (e.g. writing usage after the last byte) are awaited by
  // shutdown(), as Lambda lets an invocation finish after its response has been sent.
  const inFlight = new Set<Promise<void>>();
  const onRequest = (req: CompatRequest, res: CompatResponse) => {
    // Draining: answer what already arrived, but tell HTTP/1.1 clients not to reuse the connection.
    if (draining && !('stream' in res)) res.setHeader('connection', 'close');
    const invocation = serve(context, req, res).catch((error: unknown) =>
      log('error', 'local server: request failed outside the handler', { error: (error as Error)?.message }),
    );
    inFlight.add(invocation);
    void invocation.finally(() => inFlight.delete(invocation));
  };

  const h1 = http.createServer(
    {
      // Node checks headersTimeout on this interval; a tenth keeps the bound within 10 %.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 10))),
      headersTimeout: limits.headersTimeoutMs,
      // The whole-request bound is off: the body's own idle timeout (readBody) replaces it, so a
      // large upload on a slow link is not cut while it progresses.
      requestTimeout: 0,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
    },
    onRequest,
  );
  h1.keepAliveTimeout = limits.keepAliveTimeoutMs;
  // Node starts its connection tracking (headersTimeout, closeIdleConnections) on 'listening',
  // which a server fed sockets by hand never emits: start it the documented way it starts.
  h1.emit('listening');

  const h2 = http2.createServer({}, onRequest);
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => undefined);
    // No frame either way for this long: GOAWAY; streams still open may finish.
    session.setTimeout(limits.h2IdleTimeoutMs, () => session.close());
    if (draining) session.close();
  });
  // A stream reset by the client surfaces here and on the compat request; the invocation sees it as 'close'.
  h2.on('stream', (stream) => stream.on('error', () => undefined));
  h2.on('sessionError', () => undefined);

  const sockets = new Set<net.Socket>();
  // The HTTP/2 connection preface starts with "PRI * HTTP/2.0"; anything else is HTTP/1.x.
  // noDelay: the response head and the first body bytes are small writes; without it the
  // second waits for the client's delayed ACK (about 40 ms a request on keep-alive).
  const front = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    // From the first moment: a reset before h1/h2 take the socket (they add their own
    // handlers) would otherwise be an unhandled 'error' that ends the process.
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    // Nothing at all within the head timeout: a connection that only holds a descriptor.
    socket.setTimeout(limits.headersTimeoutMs, () => socket.destroy());
    socket.once('readable', () => {
      socket.setTimeout(0);
      if (socket.destroyed) return;
      const head: Buffer | null = socket.read(Math.min(socket.readableLength, 24)) ?? socket.read();
      if (!head) return socket.destroy();
      socket.unshift(head);
      (head.subarray(0, 3).toString('latin1') === 'PRI' ? h2 : h1).emit('connection', socket);
    });
  });
  // Beyond the cap, net.Server closes a new connection as soon as it is accepted.
  front.maxConnections = limits.maxConnections;
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      front.off('error', reject);
      resolve();
    });
  });
  // After listen, 'error' means accept() failed (EMFILE when descriptors run out): the server
  // keeps listening and Node retries; unhandled, it would end the process.
  front.on('error', (error: NodeJS.ErrnoException) => log('warn', 'local server: accept failed', { code: error.code }));
  front.on('drop', () => log('warn', 'local server: connection refused, at the connection cap', { maxConnections: limits.maxConnections }));

  const address = front.address() as net.AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let shutdownDone: Promise<{ unfinished: number }> | undefined;
  const shutdown = (graceMs = limits.shutdownGraceMs): Promise<{ unfinished: number }> =>
    (shutdownDone ??= (async () => {
      draining = true;
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      h1.closeIdleConnections();
      for (const session of sessions) session.close();
      const deadline = Date.now() + graceMs;
      // New requests may still arrive on connections already open; wait for those too.
      while (inFlight.size > 0 && Date.now() < deadline) {
        await Promise.race([Promise.allSettled([...inFlight]), delay(deadline - Date.now())]);
        h1.closeIdleConnections();
      }
      const unfinished = inFlight.size;
      for (const socket of sockets) socket.destroy();
      // A cut call still records what it used: its upstream is aborted at once, then its usage
      // is written; give that a moment before the caller closes the store.
      if (unfinished > 0) await Promise.race([Promise.allSettled([...inFlight]), delay(CUT_SETTLE_MS)]);
      h1.close();
      await closed;
      return { unfinished };
    })());
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    limits,
    stats: () => ({ connections: sockets.size, inFlight: inFlight.size, bufferedRequestBytes: budget.inUse, waitingForSlot: slots.waiting }),
    shutdown,
    close: async () => void (await shutdown()),
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
}

function headOf(req: CompatRequest): RequestHead {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return { method: req.method ?? 'GET', rawPath: q === -1 ? url : url.slice(0, q), headers: req.headers };
}

function clientGone(res: CompatResponse): boolean {
  if (res.destroyed) return true;
  if ('stream' in res) return res.stream.destroyed || res.stream.closed;
  return !res.socket || res.socket.destroyed;
}

function defaultRefusal(refusal: Refusal): LocalAnswer {
  return {
    status: refusal.status,
    headers: {
      'content-type': 'application/json',
      ...(refusal.retryAfterSeconds !== undefined ? { 'retry-after': String(refusal.retryAfterSeconds) } : {}),
    },
    body: JSON.stringify({ message: refusal.message }),
  };
}

async function serve(context: ServeContext, req: CompatRequest, res: CompatResponse): Promise<void> {
  const { options, limits, budget } = context;
  const head = headOf(req);
  const refused = options.screen?.(head);
  if (refused) return answerUnread(req, res, refused, limits.bodyIdleTimeoutMs);
  const read = await readBody(req, { maxBytes: FUNCTION_URL_MAX_REQUEST_BYTES, idleMs: limits.bodyIdleTimeoutMs, budget });
  const render = (refusal: Refusal) => (options.renderRefusal ?? defaultRefusal)(refusal, head);
  switch (read.kind) {
    case 'gone':
      return;
    case 'too-large':
      return answerUnread(req, res, LAMBDA_TOO_LARGE, limits.bodyIdleTimeoutMs);
    case 'over-budget':
      return answerUnread(
        req,
        res,
        render({ status: 503, message: 'The relay is buffering too many request bytes; retry shortly.', retryAfterSeconds: 1 }),
        limits.bodyIdleTimeoutMs,
      );
    case 'stalled':
      return answerUnread(req, res, render({ status: 408, message: `The request body stopped arriving for ${limits.bodyIdleTimeoutMs} ms.` }), 0);
  }
  try {
    await context.slots.acquire();
    try {
      // The client may have gone while it waited: nothing to invoke for.
      if (!clientGone(res)) await invoke(options, req, res, read.body);
    } finally {
      context.slots.release();
    }
  } finally {
    budget.give(read.reserved);
  }
}

const LAMBDA_TOO_LARGE: LocalAnswer = {
  status: 413,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ Message: `Request must be smaller than ${FUNCTION_URL_MAX_REQUEST_BYTES} bytes for the InvokeFunction operation` }),
};

/**
 * Answers a request whose body was not (wholly) read. What is still coming is discarded, never
 * buffered; a client that keeps the request open longer than `lingerMs` loses its connection
 * (HTTP/1.1) or stream (h2), so a refused request cannot hold a descriptor either.
 */
function answerUnread(req: CompatRequest, res: CompatResponse, answer: LocalAnswer, lingerMs: number): void {
  if (res.headersSent || res.destroyed) return;
  const h2stream = 'stream' in res ? res.stream : undefined;
  const headers: Record<string, string> = { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) };
  // A stalled body: the connection is of no further use (HTTP/1.1 cannot skip what never came).
  if (lingerMs === 0 && !h2stream) headers.connection = 'close';
  (res as http.ServerResponse).writeHead(answer.status, headers);
  res.end(answer.body);
  req.resume();
  if (req.complete) return;
  const cut = () => {
    if (req.complete) return;
    if (h2stream) h2stream.close(http2.constants.NGHTTP2_NO_ERROR);
    else req.socket?.destroy();
  };
  if (lingerMs === 0) return void res.once('finish', cut);
  const timer = setTimeout(cut, lingerMs).unref();
  (h2stream ?? req.socket)?.once('close', () => clearTimeout(timer));
}

async function invoke(options: EmulatorOptions, req: CompatRequest, res: CompatResponse, body: Buffer): Promise<void> {
  const event = toEvent(req, body);
  const stream = new EmulatedResponseStream(res);
  // A stream error (prelude never written, client gone) is judged below, not thrown.
  stream.on('error', () => undefined);
  // HTTP/1.1: the response's 'finish' means every byte went to the socket, delivered as far as a
  // Function URL could tell. Its 'close' follows a tick later, before this stream's own 'finish'
  // (also a tick after res.end's callback), so judging by the stream alone would take every
  // normal end for a client that left. (HTTP/2's compat response emits 'finish' on any close,
  // so there the stream's state alone decides.)
  let delivered = false;
  const onDelivered = () => {
    delivered = true;
  };
  const clientGone = () => {
    if (!delivered && !stream.writableFinished) stream.destroy();
  };
  if (res instanceof http.ServerResponse) res.once('finish', onDelivered);
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
    res.off('finish', onDelivered);
    res.off('close', clientGone);
  }
}

/**
 * The response stream a streaming handler writes to (lambda/local/response-stream.ts reads the
 * prelude): the head becomes the HTTP response's, the body is forwarded as it comes with the
 * HTTP response's backpressure.
 */
class EmulatedResponseStream extends PreludeResponseStream implements EmulatedStream {
  readonly finished: Promise<void>;

  constructor(private readonly res: CompatResponse) {
    super({ highWaterMark: 16 * 1024 });
    this.finished = new Promise((resolve) => {
      this.on('finish', () => resolve());
      this.on('close', () => resolve());
    });
  }

  headersSent(): boolean {
    return this.headKnown;
  }

  override _final(callback: (error?: Error | null) => void): void {
    // Ended without a complete prelude: what a Function URL answers 502 for.
    if (this.endWithoutBody() === 'no-prelude') return callback(new Error('stream ended before the response prelude'));
    this.res.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    callback(error);
  }

  protected onHead(head: ResponseHead): void {
    const outgoing: Record<string, string | string[]> = { ...head.headers };
    if (head.cookies && head.cookies.length > 0) outgoing['set-cookie'] = head.cookies;
    const res = this.res;
    (res as http.ServerResponse).writeHead(head.statusCode, outgoing);
    // HTTP/2: that sent the HEADERS frame; nghttp2 already sends a turn's frames together.
    if (!(res instanceof http.ServerResponse)) return;
    // HTTP/1.1: whatever the handler writes in this turn of the event loop (for a JSON answer:
    // the head, the whole body and the final chunk) leaves in ONE write; three writes cost three
    // syscalls here and three wake-ups for the client. The head still leaves in this turn, before
    // a stream's first event, which is what a streaming client needs.
    // The socket is corked, not the response: since Node 22 a corked ServerResponse holds later
    // chunks in a buffer of its own that end() flushes only after the final "0\r\n\r\n", so a
    // body written in two pieces in one turn reached the client after the end of the response
    // (corrupt framing on a keep-alive connection). The socket keeps every byte in order; end()
    // uncorks it itself.
    const socket = res.socket;
    socket?.cork();
    setImmediate(() => {
      if (!res.headersSent && !res.destroyed) res.flushHeaders();
      if (socket && socket.writableCorked > 0) socket.uncork();
    });
  }

  protected onBody(chunk: Buffer, callback: (error?: Error | null) => void): void {
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
