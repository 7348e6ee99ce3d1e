import type { Readable } from 'node:stream';
import type { ByteBudget } from './byte-budget.js';

export type BodyResult =
  | { readonly kind: 'ok'; readonly body: Buffer /** Bytes held in the budget until the invocation ends. */; readonly reserved: number }
  | { readonly kind: 'too-large' }
  | { readonly kind: 'over-budget' }
  | { readonly kind: 'stalled' }
  | { readonly kind: 'gone' };

export interface BodyLimits {
  readonly maxBytes: number;
  readonly idleMs: number;
  readonly budget: ByteBudget;
}

type IncomingBody = Readable & { readonly headers: Readonly<Record<string, string | string[] | undefined>> };

/**
 * Buffers a request body (the Function URL event carries it whole) without letting a client
 * pin memory: a declared length is checked against the 6 MB limit and the shared budget before
 * a byte is read, an undeclared (chunked) one chunk by chunk, and a body that stops arriving
 * is given up on after `idleMs`. Whatever the outcome, nothing is left taken from the budget
 * except on 'ok', where the caller gives `reserved` back when the invocation ends.
 */
export function readBody(req: IncomingBody, limits: BodyLimits): Promise<BodyResult> {
  const declared = contentLength(req.headers['content-length']);
  if (declared !== undefined && declared > limits.maxBytes) return Promise.resolve({ kind: 'too-large' });
  if (declared !== undefined && !limits.budget.tryTake(declared)) return Promise.resolve({ kind: 'over-budget' });
  let taken = declared ?? 0;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (result: BodyResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onGone);
      req.off('error', onGone);
      if (result.kind !== 'ok') {
        limits.budget.give(taken);
        chunks.length = 0;
      }
      resolve(result);
    };
    const timer = setTimeout(() => finish({ kind: 'stalled' }), limits.idleMs);
    const onData = (chunk: Buffer) => {
      timer.refresh();
      size += chunk.byteLength;
      if (size > limits.maxBytes) return finish({ kind: 'too-large' });
      if (size > taken) {
        if (!limits.budget.tryTake(size - taken)) return finish({ kind: 'over-budget' });
        taken = size;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ kind: 'ok', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), reserved: taken });
    // 'close' before 'end', or an error: the client went away mid-body.
    const onGone = () => finish({ kind: 'gone' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onGone);
    req.on('error', onGone);
  });
}

function contentLength(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}
