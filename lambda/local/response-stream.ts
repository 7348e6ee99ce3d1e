/**
 * The response stream a streaming Lambda handler writes to, as the Node.js runtime gives it:
 * `awslambda.HttpResponseStream.from(stream, prelude)` sets the integration content type and
 * arranges for the JSON prelude (status, headers, cookies) and 8 NUL bytes to be written just
 * before the first write; everything after them is the body. The local emulator and the
 * benchmark's in-memory invoker both read that wire format through this one class and differ
 * only in what they do with the head and the body.
 */
import { Writable } from 'node:stream';

export const PRELUDE_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
export const PRELUDE_DELIMITER = Buffer.alloc(8);

export interface ResponseHead {
  readonly statusCode: number;
  /** Lower-cased names. */
  readonly headers: Record<string, string>;
  readonly cookies?: string[];
}

export function parsePrelude(bytes: Buffer): ResponseHead | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { statusCode?: unknown; headers?: unknown; cookies?: unknown };
    const statusCode = typeof parsed.statusCode === 'number' ? parsed.statusCode : 200;
    const headers: Record<string, string> = {};
    if (parsed.headers && typeof parsed.headers === 'object') {
      for (const [name, value] of Object.entries(parsed.headers as Record<string, unknown>)) headers[name.toLowerCase()] = String(value);
    }
    const cookies = Array.isArray(parsed.cookies) ? parsed.cookies.map(String) : undefined;
    return { statusCode, headers, ...(cookies ? { cookies } : {}) };
  } catch {
    return undefined;
  }
}

export abstract class PreludeResponseStream extends Writable {
  /** Set by awslambda.HttpResponseStream.from; called once, just before the first write. */
  _onBeforeFirstWrite?: (write: (chunk: string | Uint8Array) => void) => void;
  protected contentType = 'application/octet-stream';
  private firstWriteDone = false;
  private preludeBytes: Buffer | undefined = Buffer.alloc(0);
  private headSeen = false;

  /** The head is known: from the prelude, or (a handler that never used from()) 200 with the content type. */
  protected abstract onHead(head: ResponseHead): void;
  /** A piece of the body, in order; call back when it may take the next. */
  protected abstract onBody(chunk: Buffer, callback: (error?: Error | null) => void): void;

  setContentType(contentType: string): void {
    if (this.firstWriteDone) throw new Error('Cannot set content-type, too late.');
    this.contentType = contentType;
  }

  /** True once the head has been passed on. */
  protected get headKnown(): boolean {
    return this.headSeen;
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
      this.deliverHead({ statusCode: 200, headers: { 'content-type': this.contentType } });
      return this.onBody(chunk, callback);
    }
    if (this.preludeBytes === undefined) return this.onBody(chunk, callback);
    this.preludeBytes = Buffer.concat([this.preludeBytes, chunk]);
    const end = this.preludeBytes.indexOf(PRELUDE_DELIMITER);
    if (end === -1) return callback();
    const head = parsePrelude(this.preludeBytes.subarray(0, end));
    const rest = this.preludeBytes.subarray(end + PRELUDE_DELIMITER.length);
    this.preludeBytes = undefined;
    if (!head) return callback(new Error('invalid response prelude'));
    this.deliverHead(head);
    if (rest.byteLength === 0) return callback();
    this.onBody(rest, callback);
  }

  /** For subclasses' _final: a handler that ended without writing may still owe its head. */
  protected endWithoutBody(): 'no-prelude' | 'ok' {
    if (this.headSeen) return 'ok';
    if (this.contentType === PRELUDE_CONTENT_TYPE) return 'no-prelude';
    this.deliverHead({ statusCode: 200, headers: { 'content-type': this.contentType } });
    return 'ok';
  }

  private deliverHead(head: ResponseHead): void {
    if (this.headSeen) return;
    this.headSeen = true;
    this.onHead(head);
  }
}
