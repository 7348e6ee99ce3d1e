/**
 * What the fake answers, as data, and the one writer that puts it on the socket.
 *
 * Handlers and test overrides return a Reply; keeping the wire behaviour (pacing, resets,
 * stalls) in one writer means every surface streams the same way.
 */
import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENTSTREAM_CONTENT_TYPE } from './eventstream.js';
import { SSE_CONTENT_TYPE } from './sse.js';

export type HeaderMap = Readonly<Record<string, string | number>>;

/** A complete body, sent with content-length. */
export interface BodyReply {
  readonly kind: 'body';
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: string | Uint8Array;
}

/**
 * A streamed body: status and headers go out at once, then each chunk in its own socket write,
 * `delayMs` (default: the fake's frameDelayMs) apart.
 */
export interface StreamReply {
  readonly kind: 'stream';
  readonly status: number;
  readonly headers: HeaderMap;
  readonly chunks: readonly (string | Uint8Array)[];
  /**
   * `end` finishes the response; `reset` destroys the socket after the last chunk (a connection
   * dropped mid-stream); `stall` leaves the response open and silent until the client gives up
   * or the fake closes.
   */
  readonly ending: 'end' | 'reset' | 'stall';
  readonly delayMs?: number;
}

/** Full control for a test: write whatever you like. The fake records the outcome as `custom`. */
export interface CustomReply {
  readonly kind: 'custom';
  readonly write: (res: ServerResponse) => void | Promise<void>;
}

export type Reply = BodyReply | StreamReply | CustomReply;

export type ReplyOutcome =
  | 'complete' // the whole reply was written
  | 'reset' // the fake dropped the connection on purpose
  | 'stalled' // the fake left the response hanging on purpose
  | 'client-aborted' // the client (the relay) went away before the reply was complete
  | 'custom'; // a CustomReply ran

// ── builders ──

export function jsonReply(status: number, body: unknown, headers: HeaderMap = {}): BodyReply {
  return { kind: 'body', status, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) };
}

/** An error as Bedrock's REST-JSON services send it: `x-amzn-errortype` and `{"message"}`. */
export function awsErrorReply(status: number, errorType: string, message: string, headers: HeaderMap = {}): BodyReply {
  return jsonReply(status, { message }, { 'x-amzn-errortype': errorType, ...headers });
}

export function eventStreamReply(frames: readonly Uint8Array[], headers: HeaderMap = {}, ending: StreamReply['ending'] = 'end'): StreamReply {
  return { kind: 'stream', status: 200, headers: { 'content-type': EVENTSTREAM_CONTENT_TYPE, ...headers }, chunks: frames, ending };
}

export function sseReply(events: readonly string[], headers: HeaderMap = {}, ending: StreamReply['ending'] = 'end'): StreamReply {
  return {
    kind: 'stream',
    status: 200,
    headers: { 'content-type': SSE_CONTENT_TYPE, 'cache-control': 'no-cache', ...headers },
    chunks: events,
    ending,
  };
}

// ── writer ──

export interface WriteOptions {
  readonly frameDelayMs: number;
  /** Aborted when the fake closes, so paced writers stop promptly. */
  readonly signal: AbortSignal;
}

export async function writeReply(res: ServerResponse, reply: Reply, options: WriteOptions): Promise<ReplyOutcome> {
  if (reply.kind === 'custom') {
    await reply.write(res);
    return 'custom';
  }
  if (reply.kind === 'body') {
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
    res.writeHead(reply.status, { ...reply.headers, 'content-length': body.byteLength });
    const closed = new Promise<'closed'>((resolve) => res.once('close', () => resolve('closed')));
    const ended = await Promise.race([new Promise<'ended'>((resolve) => res.end(body, () => resolve('ended'))), closed]);
    return ended === 'ended' || res.writableFinished ? 'complete' : 'client-aborted';
  }
  return writeStream(res, reply, options);
}

async function writeStream(res: ServerResponse, reply: StreamReply, options: WriteOptions): Promise<ReplyOutcome> {
  const closed = new Promise<'closed'>((resolve) => res.once('close', () => resolve('closed')));
  res.writeHead(reply.status, reply.headers);
  // Headers leave now, before any frame: a stalled or slow stream must still look started.
  res.flushHeaders();
  const delay = reply.delayMs ?? options.frameDelayMs;
  for (const [index, chunk] of reply.chunks.entries()) {
    if (index > 0 && delay > 0) {
      const paced = await Promise.race([sleep(delay, 'slept' as const, { signal: options.signal }).catch(() => 'closed' as const), closed]);
      if (paced === 'closed') return 'client-aborted';
    }
    if (res.destroyed) return 'client-aborted';
    // Waiting for each write's callback keeps one frame per socket write and honours backpressure.
    const written = await Promise.race([
      new Promise<'written' | 'closed'>((resolve) => res.write(chunk, (err) => resolve(err ? 'closed' : 'written'))),
      closed,
    ]);
    if (written === 'closed') return 'client-aborted';
  }
  switch (reply.ending) {
    case 'reset':
      res.socket?.destroy();
      return 'reset';
    case 'stall':
      return 'stalled';
    case 'end': {
      const ended = await Promise.race([new Promise<'ended'>((resolve) => res.end(() => resolve('ended'))), closed]);
      return ended === 'ended' || res.writableFinished ? 'complete' : 'client-aborted';
    }
  }
}

// ── errors in each API family's shape ──

/** The API family a surface speaks, which decides the shape of its error bodies. */
export type ApiFamily = 'bedrock' | 'anthropic' | 'openai';

const ANTHROPIC_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  503: 'overloaded_error',
  529: 'overloaded_error',
};

const OPENAI_ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  500: 'server_error',
  503: 'service_unavailable_error',
};

/**
 * An error in the shape the surface's clients parse. Bedrock's front end tags every error with
 * `x-amzn-errortype`, the compatible APIs included; the body follows the family.
 */
export function familyErrorReply(family: ApiFamily, status: number, errorType: string, message: string): BodyReply {
  switch (family) {
    case 'bedrock':
      return awsErrorReply(status, errorType, message);
    case 'anthropic':
      return jsonReply(status, { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? 'api_error', message } }, { 'x-amzn-errortype': errorType });
    case 'openai':
      return jsonReply(
        status,
        { error: { message, type: OPENAI_ERROR_TYPES[status] ?? 'server_error', param: null, code: errorType } },
        { 'x-amzn-errortype': errorType },
      );
  }
}
