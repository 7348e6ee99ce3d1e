/**
 * A fake Amazon Bedrock for the relay's tests and benchmarks: one HTTP/1.1 server on 127.0.0.1
 * that answers as bedrock-runtime, bedrock-agent-runtime, the bedrock control plane (read-only
 * discovery) and bedrock-mantle, verifying every request's SigV4 signature as AWS does.
 *
 *   const fake = await startFakeBedrock();                  // signing name `bedrock`
 *   const mantle = await startFakeBedrock({ signingService: 'bedrock-mantle' });
 *   process.env = { ...process.env, ...fakeBedrockEnv(fake, mantle) };
 *   … drive the relay …
 *   assert.equal(fake.requests[0]?.signature.valid, true);
 *   await fake.close();
 *
 * Which host a request is for follows from the signing name it was verified against: signed for
 * `bedrock-mantle`, /anthropic/v1/messages is MantleAnthropicMessages and /model/… is unknown;
 * signed for `bedrock`, the reverse. One instance may accept both (`signingService: [...]`).
 *
 * ── Failures on demand ─────────────────────────────────────────────────────────────────────
 * Name a model (path `modelId`, or the body's `model` for the compatible APIs and
 * StartAsyncInvoke; any other path label works too, e.g. a knowledge-base ID) after one of:
 *
 *   fake.throttle             429 ThrottlingException
 *   fake.validation           400 ValidationException
 *   fake.access-denied        403 AccessDeniedException
 *   fake.not-found            404 ResourceNotFoundException
 *   fake.model-error          424 ModelErrorException
 *   fake.internal             500 InternalServerException
 *   fake.unavailable          503 ServiceUnavailableException
 *   fake.midstream-reset      two frames/events of the normal reply (half of an unstreamed
 *                             body), then the socket is destroyed
 *   fake.midstream-exception  two frames/events, then the surface's own mid-stream error:
 *                             event-stream `:message-type exception` frame with
 *                             `:exception-type modelStreamErrorException` (bedrock-runtime) or
 *                             `internalServerException` (agent-runtime); Anthropic `event: error`;
 *                             OpenAI `data: {"error":…}`; Responses `event: error`.
 *                             Unstreamed: 424 ModelErrorException.
 *   fake.stall                status and headers, then nothing (timeout tests)
 *
 * Errors come in the surface's shape: `{"message"}` + `x-amzn-errortype` for native operations,
 * Anthropic's or OpenAI's error body (plus `x-amzn-errortype`) for the compatible APIs.
 * Prefixed or ARN forms match too (`us.fake.throttle`, `…:inference-profile/fake.throttle`).
 *
 * ── Usage figures ──────────────────────────────────────────────────────────────────────────
 * Deterministic functions of the request body; see ./fake-bedrock/usage.ts and the
 * `expected*Usage` helpers exported here.
 *
 * ── Overrides ──────────────────────────────────────────────────────────────────────────────
 * `fake.override(req => reply | undefined, { times })` answers validly signed requests before
 * the built-in behaviour (unknown paths included); return undefined to fall through.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OperationContext } from './fake-bedrock/context.js';
import { matchOperation, type MatchedOperation } from './fake-bedrock/operations.js';
import { awsErrorReply, writeReply, type Reply, type ReplyOutcome } from './fake-bedrock/reply.js';
import { breakReply, findFailure, statusFailureReply } from './fake-bedrock/simulations.js';
import { splitRawUrl, verifySigV4, type FakeCredentials, type SigV4Result } from './fake-bedrock/sigv4-verify.js';
import { parseObject } from './fake-bedrock/usage.js';

export type { FakeCredentials, SigV4Result, SigV4Success, SigV4Failure, SigV4ErrorType } from './fake-bedrock/sigv4-verify.js';
export { verifySigV4, canonicalUri, canonicalQuery, rfc3986Encode, sha256Hex } from './fake-bedrock/sigv4-verify.js';
export {
  FAKE_DEFAULT_OUTPUT_TOKENS,
  FAKE_FIRST_BYTE_LATENCY_MS,
  FAKE_LATENCY_MS,
  expectedAnthropicUsage,
  expectedConverseUsage,
  expectedCountTokens,
  expectedGuardrailUnits,
  expectedInvocationMetrics,
  expectedOpenAIChatUsage,
  expectedOpenAIResponsesUsage,
  fakeTokenCounts,
  requestedMaxTokens,
  type FakeTokenCounts,
} from './fake-bedrock/usage.js';
export { FAKE_FAILURE_MODELS, type FakeFailureModel } from './fake-bedrock/simulations.js';
export {
  awsErrorReply,
  eventStreamReply,
  familyErrorReply,
  jsonReply,
  sseReply,
  type ApiFamily,
  type BodyReply,
  type CustomReply,
  type HeaderMap,
  type Reply,
  type ReplyOutcome,
  type StreamReply,
} from './fake-bedrock/reply.js';
export { EVENTSTREAM_CONTENT_TYPE, chunkFrame, decodeEventStream, eventFrame, exceptionFrame, type DecodedFrame } from './fake-bedrock/eventstream.js';
export { SSE_CONTENT_TYPE, parseSse, sseEvent, type ParsedSseEvent } from './fake-bedrock/sse.js';
export { FAKE_FOUNDATION_MODELS, FAKE_INFERENCE_PROFILES } from './fake-bedrock/control-plane.js';
export { FAKE_MANTLE_MODELS } from './fake-bedrock/compat.js';

/** Temporary-style credentials the fake accepts by default (the secret holds `/` and `+` on purpose). */
export const FAKE_CREDENTIALS: Required<FakeCredentials> = {
  accessKeyId: 'ASIAFAKEBEDROCKTEST1',
  secretAccessKey: 'fakeSecret/Key+ForBedrockRelayTests0000',
  sessionToken: 'FwoGZXIvYXdzEFakeSessionTokenForBedrockRelayTests//+==',
};

export const FAKE_ACCOUNT_ID = '123456789012';

/** The canned answer every text operation gives, one element per streamed delta. */
export const FAKE_REPLY_CHUNKS: readonly string[] = ['Hello', ' from', ' the fake', ' Bedrock.'];

export interface FakeBedrockOptions {
  /** The one set of credentials accepted (default FAKE_CREDENTIALS). */
  readonly credentials?: FakeCredentials;
  /** The region requests must be signed for (default us-east-1). */
  readonly region?: string;
  /** Signing name(s) accepted in the credential scope (default `bedrock`; `bedrock-mantle` for mantle). */
  readonly signingService?: string | readonly string[];
  /** Pause between streamed frames / SSE events (default 0). */
  readonly frameDelayMs?: number;
  /** Where to listen on 127.0.0.1 (default 0: a free port; `npm run demo` uses a fixed one). */
  readonly port?: number;
  /** The canned answer's deltas (default FAKE_REPLY_CHUNKS). */
  readonly replyChunks?: readonly string[];
  readonly accountId?: string;
  /** The clock the x-amz-date check uses (default Date.now). */
  readonly now?: () => number;
}

export interface RecordedRequest {
  /** 1, 2, 3… in arrival order (not reset by `reset()`). */
  readonly seq: number;
  readonly requestId: string;
  readonly receivedAt: Date;
  readonly method: string;
  /** `req.url` exactly as on the wire. */
  readonly rawUrl: string;
  /** The raw path (before `?`) and query (after it), still percent-encoded. */
  readonly path: string;
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: Buffer;
  /** The verification result: on failure `errorType` and `reason` say why. */
  readonly signature: SigV4Result;
  /** The operation answered (route-table names; `Mantle…` on the mantle host), if one matched. */
  readonly operation: string | undefined;
  /** Path labels, percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  /** The model named by the path or body, if the operation names one. */
  readonly modelId: string | undefined;
  /** Status of the reply, once it started. */
  readonly status: number | undefined;
  /** How the reply ended; `pending` while it is being written. */
  readonly outcome: ReplyOutcome | 'pending';
  /** Settles with the outcome once the reply has ended. */
  readonly finished: Promise<ReplyOutcome>;
}

export type OverrideHandler = (req: RecordedRequest) => Reply | undefined | Promise<Reply | undefined>;

export interface FakeBedrock {
  /** `http://127.0.0.1:<port>`, to use as an endpoint (no trailing slash). */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  /** Every request received, in order, including rejected ones. Cleared in place by reset(). */
  readonly requests: RecordedRequest[];
  /**
   * Answer matching requests yourself. Consulted newest first for every validly signed request;
   * returning undefined falls through. `times` limits how many replies it gives (default: no limit).
   * Returns a function that removes it.
   */
  override(handler: OverrideHandler, options?: { readonly times?: number }): () => void;
  /** Resolves with the first recorded request (past or future) that matches. */
  waitForRequest(predicate?: (req: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Forget recorded requests and overrides. */
  reset(): void;
  /** Stop listening and drop every connection, stalled ones included. */
  close(): Promise<void>;
}

/** The `AWS_*` variables that point the relay (or any AWS SDK) at fakes. */
export function fakeBedrockEnv(bedrock: FakeBedrock, mantle: FakeBedrock = bedrock, credentials: FakeCredentials = FAKE_CREDENTIALS): Record<string, string> {
  return {
    AWS_REGION: bedrock.region,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    ...(credentials.sessionToken ? { AWS_SESSION_TOKEN: credentials.sessionToken } : {}),
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: bedrock.url,
    AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: bedrock.url,
    AWS_ENDPOINT_URL_BEDROCK: bedrock.url,
    AWS_ENDPOINT_URL_BEDROCK_MANTLE: mantle.url,
  };
}

type MutableRecord = { -readonly [K in keyof RecordedRequest]: RecordedRequest[K] };

interface OverrideEntry {
  readonly handler: OverrideHandler;
  remaining: number;
}

export async function startFakeBedrock(opts: FakeBedrockOptions = {}): Promise<FakeBedrock> {
  const credentials = opts.credentials ?? FAKE_CREDENTIALS;
  const region = opts.region ?? 'us-east-1';
  const services = typeof opts.signingService === 'string' ? [opts.signingService] : [...(opts.signingService ?? ['bedrock'])];
  const frameDelayMs = opts.frameDelayMs ?? 0;
  const replyChunks = opts.replyChunks ?? FAKE_REPLY_CHUNKS;
  const accountId = opts.accountId ?? FAKE_ACCOUNT_ID;
  const now = opts.now ?? Date.now;

  const requests: RecordedRequest[] = [];
  const overrides: OverrideEntry[] = [];
  const waiters = new Set<{ predicate: (req: RecordedRequest) => boolean; resolve: (req: RecordedRequest) => void }>();
  const closing = new AbortController();
  let seq = 0;

  const record = (entry: RecordedRequest): void => {
    requests.push(entry);
    for (const waiter of waiters) {
      if (waiter.predicate(entry)) {
        waiters.delete(waiter);
        waiter.resolve(entry);
      }
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const requestId = randomUUID();
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const { path, query } = splitRawUrl(rawUrl);
    const signature = verifySigV4({ method, rawUrl, rawHeaders: req.rawHeaders, body }, { credentials, region, services, now: now() });
    const matched = signature.valid ? matchOperation(method, path, signature.service) : undefined;
    const json = parseObject(body.toString('utf8')) ?? {};

    let settle: (outcome: ReplyOutcome) => void = () => {};
    const entry: MutableRecord = {
      seq: ++seq,
      requestId,
      receivedAt: new Date(now()),
      method,
      rawUrl,
      path,
      query,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body,
      signature,
      operation: matched?.name,
      params: matched?.params ?? {},
      modelId: matched ? modelOf(matched, json) : undefined,
      status: undefined,
      outcome: 'pending',
      finished: new Promise<ReplyOutcome>((resolve) => (settle = resolve)),
    };
    record(entry);

    let reply: Reply;
    if (!signature.valid) {
      reply = awsErrorReply(403, signature.errorType, signature.message);
    } else {
      const ctx: OperationContext = {
        params: entry.params,
        query: new URLSearchParams(query),
        body,
        json,
        region,
        accountId,
        replyChunks,
        now: new Date(now()),
      };
      reply = (await consultOverrides(overrides, entry)) ?? builtInReply(matched, ctx, entry);
    }

    entry.status = reply.kind === 'custom' ? undefined : reply.status;
    const outcome = await writeReply(res, withRequestId(reply, requestId), { frameDelayMs, signal: closing.signal });
    if (reply.kind === 'custom') entry.status = res.statusCode;
    entry.outcome = outcome;
    settle(outcome);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the fake must fail the test loudly, not hang it.
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json', 'x-amzn-errortype': 'InternalFailure' });
        res.end(JSON.stringify({ message: `fake-bedrock: ${err instanceof Error ? err.stack : String(err)}` }));
      } else {
        res.destroy();
      }
    });
  });
  // Keep idle keep-alive connections open longer than clients' pools do by default.
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    region,
    requests,
    override(handler, options = {}) {
      const entry: OverrideEntry = { handler, remaining: options.times ?? Number.POSITIVE_INFINITY };
      overrides.unshift(entry);
      return () => {
        const at = overrides.indexOf(entry);
        if (at >= 0) overrides.splice(at, 1);
      };
    },
    waitForRequest(predicate = () => true, timeoutMs = 5_000) {
      const existing = requests.find(predicate);
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (req: RecordedRequest) => {
            clearTimeout(timer);
            resolve(req);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`fake-bedrock: no matching request within ${timeoutMs} ms (${requests.length} recorded)`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    reset() {
      requests.length = 0;
      overrides.length = 0;
    },
    async close() {
      closing.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}

function builtInReply(matched: MatchedOperation | undefined, ctx: OperationContext, entry: RecordedRequest): Reply {
  if (matched === undefined) {
    return awsErrorReply(404, 'UnknownOperationException', `Unknown operation: ${entry.method} ${entry.path}`);
  }
  const { operation } = matched;
  const failure = findFailure([entry.modelId, ...Object.values(matched.params)]);
  if (failure !== undefined) {
    const statusReply = statusFailureReply(failure, operation.family);
    if (statusReply) return statusReply;
  }
  const reply = operation.handler(ctx);
  return failure === undefined ? reply : breakReply(failure, reply, operation.family, operation.streamError);
}

async function consultOverrides(overrides: OverrideEntry[], req: RecordedRequest): Promise<Reply | undefined> {
  for (const entry of [...overrides]) {
    if (entry.remaining <= 0) continue;
    const reply = await entry.handler(req);
    if (reply === undefined) continue;
    entry.remaining -= 1;
    if (entry.remaining <= 0) overrides.splice(overrides.indexOf(entry), 1);
    return reply;
  }
  return undefined;
}

function modelOf(matched: MatchedOperation, json: Readonly<Record<string, unknown>>): string | undefined {
  const source = matched.operation.model;
  if (source === undefined) return undefined;
  if (source === 'body') {
    const model = json['model'] ?? json['modelId'];
    return typeof model === 'string' ? model : undefined;
  }
  return matched.params[source.label];
}

function withRequestId(reply: Reply, requestId: string): Reply {
  if (reply.kind === 'custom') {
    return {
      kind: 'custom',
      write: (res) => {
        res.setHeader('x-amzn-requestid', requestId);
        return reply.write(res);
      },
    };
  }
  const hasId = Object.keys(reply.headers).some((name) => name.toLowerCase() === 'x-amzn-requestid');
  return hasId ? reply : { ...reply, headers: { 'x-amzn-requestid': requestId, ...reply.headers } };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
