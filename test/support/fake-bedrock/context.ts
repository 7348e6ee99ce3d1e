/** What an operation handler is given: the request, already parsed, and the fake's settings. */
import type { Reply } from './reply.js';

export interface OperationContext {
  /** Path labels, percent-decoded (`cohere.command-r-v1:0`, a whole ARN…). */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** The body exactly as received: usage figures derive from these bytes. */
  readonly body: Buffer;
  /** The body as a JSON object; `{}` when it is empty or not a JSON object. */
  readonly json: Readonly<Record<string, unknown>>;
  readonly region: string;
  readonly accountId: string;
  /** The canned answer, split into the deltas a stream sends. */
  readonly replyChunks: readonly string[];
  readonly now: Date;
}

export type OperationHandler = (ctx: OperationContext) => Reply;

export function replyText(ctx: OperationContext): string {
  return ctx.replyChunks.join('');
}

export function stringField(json: Readonly<Record<string, unknown>>, name: string): string | undefined {
  const value = json[name];
  return typeof value === 'string' ? value : undefined;
}

/** Short random IDs in the style each API uses (`msg_bdrk_…`, `chatcmpl-…`). */
export function randomId(prefix: string, length = 24): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let id = prefix;
  for (let i = 0; i < length; i++) id += alphabet[Math.floor(Math.random() * alphabet.length)];
  return id;
}

export function isoSeconds(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
