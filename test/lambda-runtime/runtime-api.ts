/**
 * A minimal Lambda Runtime API (the service a runtime interface client talks to inside a Lambda
 * execution environment) on 127.0.0.1, for running a function under the real aws-lambda-ric:
 *
 *   GET  /2018-06-01/runtime/invocation/next            long poll; answers the next queued event
 *   POST /2018-06-01/runtime/invocation/{id}/response   the answer: buffered, or streamed
 *                                                       (Lambda-Runtime-Function-Response-Mode:
 *                                                       streaming, chunked, error trailers)
 *   POST /2018-06-01/runtime/invocation/{id}/error      the handler failed (buffered mode)
 *   POST /2018-06-01/runtime/init/error                 the function could not be loaded
 *
 * What the client sends was read from aws-lambda-ric 4.0.2 (index.mjs: RAPIDClient,
 * createResponseStream; src/native: the aws-lambda-cpp client behind next/done/error).
 * A streamed answer is handed over as the live request body, so a consumer sees the function's
 * bytes as they arrive, with the POST's own backpressure.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline, Transform, type Readable } from 'node:stream';

const BASE = '/2018-06-01/runtime';
export const RESPONSE_MODE_HEADER = 'lambda-runtime-function-response-mode';
export const ERROR_TYPE_TRAILER = 'lambda-runtime-function-error-type';
export const ERROR_BODY_TRAILER = 'lambda-runtime-function-error-body';

/** How a streamed answer ended. */
export type StreamEnd =
  | { readonly kind: 'complete'; readonly bytes: number }
  /** The function failed after the POST started: error trailers (the body is base64 JSON). */
  | { readonly kind: 'error-trailer'; readonly bytes: number; readonly errorType: string; readonly errorBody: unknown }
  /** The connection broke before the chunked body ended (the runtime process died, say). */
  | { readonly kind: 'broken'; readonly bytes: number; readonly reason: string };

export type Answer =
  | {
      readonly kind: 'stream';
      readonly contentType: string;
      readonly headers: IncomingHttpHeaders;
      /** The function's bytes as they arrive. Read it to the end (or resume() it). */
      readonly body: Readable;
      readonly end: Promise<StreamEnd>;
    }
  | { readonly kind: 'buffered'; readonly contentType: string; readonly body: Buffer }
  | { readonly kind: 'error'; readonly errorType: string; readonly body: Buffer }
  | { readonly kind: 'init-error'; readonly errorType: string; readonly body: Buffer }
  | { readonly kind: 'runtime-gone'; readonly reason: string };

export interface Invocation {
  readonly requestId: string;
  readonly event: unknown;
  /** Settles once the function starts to answer (or cannot). Never rejects. */
  readonly answer: Promise<Answer>;
}

export interface InitError {
  readonly errorType: string;
  readonly body: Buffer;
}

export interface RuntimeApiOptions {
  readonly functionName?: string;
  /** What Lambda-Runtime-Deadline-Ms gives the function (default 60 s). */
  readonly timeoutMs?: number;
  readonly region?: string;
}

export interface RuntimeApi {
  /** `127.0.0.1:<port>`: the AWS_LAMBDA_RUNTIME_API value. */
  readonly hostPort: string;
  readonly functionArn: string;
  /** Queue one event; the runtime takes it on its next poll. */
  invoke(event: unknown): Invocation;
  /** Fail every invocation not yet answered (the runtime process exited, say). */
  failPending(reason: string): void;
  /** The init error the runtime reported, if it did. */
  readonly initError: InitError | undefined;
  /** Resolves when the runtime first asks for an invocation (init done). */
  readonly firstPoll: Promise<void>;
  close(): Promise<void>;
}

interface Pending {
  readonly requestId: string;
  readonly event: unknown;
  readonly deliver: (answer: Answer) => void;
  answered: boolean;
}

export async function startRuntimeApi(options: RuntimeApiOptions = {}): Promise<RuntimeApi> {
  const functionName = options.functionName ?? 'bedrock-relay';
  const region = options.region ?? 'us-east-1';
  const functionArn = `arn:aws:lambda:${region}:123456789012:function:${functionName}`;
  const timeoutMs = options.timeoutMs ?? 60_000;

  const queue: Pending[] = [];
  const inFlight = new Map<string, Pending>();
  let poller: ServerResponse | undefined;
  let initError: InitError | undefined;
  let markFirstPoll: () => void = () => undefined;
  const firstPoll = new Promise<void>((resolve) => (markFirstPoll = resolve));

  const handOut = () => {
    if (!poller || queue.length === 0) return;
    const res = poller;
    poller = undefined;
    const next = queue.shift()!;
    inFlight.set(next.requestId, next);
    const body = JSON.stringify(next.event);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'lambda-runtime-aws-request-id': next.requestId,
      'lambda-runtime-deadline-ms': String(Date.now() + timeoutMs),
      'lambda-runtime-invoked-function-arn': functionArn,
      'lambda-runtime-trace-id': traceId(),
    });
    res.end(body);
  };

  const answer = (pending: Pending | undefined, value: Answer): boolean => {
    if (!pending || pending.answered) return false;
    pending.answered = true;
    pending.deliver(value);
    return true;
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET' && url === `${BASE}/invocation/next`) {
      markFirstPoll();
      // The previous invocation is over once the runtime asks for the next one.
      for (const [id, pending] of inFlight) if (pending.answered) inFlight.delete(id);
      poller = res;
      res.on('close', () => {
        if (poller === res) poller = undefined;
      });
      return handOut();
    }
    const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (req.method === 'POST' && match) {
      const pending = inFlight.get(decodeURIComponent(match[1]!));
      if (!pending || pending.answered) {
        req.resume();
        return reply(res, 400, { errorMessage: 'Invalid request ID', errorType: 'InvalidRequestID' });
      }
      if (match[2] === 'error') {
        return void readAll(req).then((body) => {
          answer(pending, { kind: 'error', errorType: errorTypeOf(req, body), body });
          reply(res, 202, { status: 'OK' });
        });
      }
      if (String(req.headers[RESPONSE_MODE_HEADER] ?? '').toLowerCase() !== 'streaming') {
        return void readAll(req).then((body) => {
          answer(pending, { kind: 'buffered', contentType: String(req.headers['content-type'] ?? ''), body });
          reply(res, 202, { status: 'OK' });
        });
      }
      return streamed(req, res, pending);
    }
    if (req.method === 'POST' && url === `${BASE}/init/error`) {
      return void readAll(req).then((body) => {
        initError = { errorType: errorTypeOf(req, body), body };
        for (const pending of [...queue, ...inFlight.values()]) answer(pending, { kind: 'init-error', ...initError });
        reply(res, 202, { status: 'OK' });
      });
    }
    req.resume();
    reply(res, 404, { errorMessage: `no such Runtime API path: ${req.method} ${url}`, errorType: 'NotFound' });
  });

  const streamed = (req: IncomingMessage, res: ServerResponse, pending: Pending) => {
    let bytes = 0;
    let settle: (end: StreamEnd) => void = () => undefined;
    const end = new Promise<StreamEnd>((resolve) => (settle = resolve));
    // The consumer reads through this pass-through (backpressure reaches the runtime's POST);
    // a connection that breaks mid-body errors it rather than ending it cleanly.
    const body = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.byteLength;
        callback(null, chunk);
      },
      flush(callback) {
        // Every byte has passed and the request has ended, so its trailers are in.
        const errorType = req.trailers[ERROR_TYPE_TRAILER];
        if (errorType) settle({ kind: 'error-trailer', bytes, errorType, errorBody: decodeErrorBody(req.trailers[ERROR_BODY_TRAILER]) });
        else settle({ kind: 'complete', bytes });
        callback();
      },
    });
    pipeline(req, body, (error) => {
      if (error) settle({ kind: 'broken', bytes, reason: `the runtime's response connection broke: ${error.message}` });
    });
    // The Runtime API answers once the whole streamed response is in.
    req.on('end', () => reply(res, 202, { status: 'OK' }));
    answer(pending, {
      kind: 'stream',
      contentType: String(req.headers['content-type'] ?? 'application/octet-stream'),
      headers: req.headers,
      body,
      end,
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    hostPort: `127.0.0.1:${port}`,
    functionArn,
    firstPoll,
    get initError() {
      return initError;
    },
    invoke(event) {
      const requestId = randomUUID();
      let deliver: (answer: Answer) => void = () => undefined;
      const answerPromise = new Promise<Answer>((resolve) => (deliver = resolve));
      const pending: Pending = { requestId, event, deliver, answered: false };
      if (initError) answer(pending, { kind: 'init-error', ...initError });
      else {
        queue.push(pending);
        handOut();
      }
      return { requestId, event, answer: answerPromise };
    },
    failPending(reason) {
      for (const pending of [...queue, ...inFlight.values()]) answer(pending, { kind: 'runtime-gone', reason });
      queue.length = 0;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * The RIC's JavaScript client names the type in a header (init errors); its native client
 * (invocation errors) sends only the JSON body, {errorType, errorMessage, trace}.
 */
function errorTypeOf(req: IncomingMessage, body: Buffer): string {
  const header = req.headers['lambda-runtime-function-error-type'];
  if (typeof header === 'string' && header) return header;
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { errorType?: unknown };
    if (typeof parsed.errorType === 'string') return parsed.errorType;
  } catch {
    // not JSON: fall through
  }
  return 'Unknown';
}

function decodeErrorBody(value: string | undefined): unknown {
  if (!value) return undefined;
  const text = Buffer.from(value, 'base64').toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function traceId(): string {
  const epoch = Math.floor(Date.now() / 1000).toString(16);
  return `Root=1-${epoch}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0;Lineage=1:${randomBytes(4).toString('hex')}:0`;
}
