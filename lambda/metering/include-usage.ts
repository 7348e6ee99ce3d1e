/**
 * No streamed Chat Completion escapes metering.
 *
 * Bedrock's OpenAI-compatible Chat Completions stream reports usage only when the request sets
 * `stream_options.include_usage`; many clients don't. For exactly that case — a Chat Completions
 * route, `"stream": true`, and no `include_usage: true` — the relay asks for usage itself and
 * hides the answer from the client:
 *
 *  1. prepareRequestBody() adds `stream_options.include_usage = true` to the request body. This
 *     is the one place the relay changes a request body (the rule is "bodies go upstream byte
 *     for byte"), because the alternative is calls that cannot be counted, which would defeat
 *     budgets and tpm limits. The change is minimal: when the body has no `stream_options`, the
 *     member `"stream_options":{"include_usage":true},` is spliced in right after the opening
 *     `{` and every other byte stays as the client sent it. Only when the client sent
 *     `stream_options` without `include_usage: true` is the body parsed and re-serialised
 *     (formatting is lost then, and integers beyond 2^53 would lose precision; no real Chat
 *     Completions field holds one).
 *
 *  2. The returned responseFilter removes from the client's stream the one extra event that
 *     request produces: the final chunk whose `choices` is empty and which carries `usage`.
 *     The meter reads the upstream bytes before the filter, so it still sees the usage. The
 *     filter holds back at most the event being received (it must see the whole event to know
 *     whether to drop it), and never more than MAX_HELD_EVENT_BYTES: a longer event cannot be
 *     the small usage chunk and is passed straight through.
 *
 *  3. Servers that follow OpenAI add `"usage": null` to every other chunk once usage is asked
 *     for. The filter removes that member too, so those chunks read as they would have: only a
 *     top-level `"usage": null` member is cut out, textually (the rest of the chunk keeps its
 *     bytes), and only when parsing the result proves it is the same object without it. Every
 *     other byte reaches the client unchanged, in order.
 *
 * The core applies the filter only to a 2xx `text/event-stream` response, feeds the meter the
 * unfiltered bytes, and must not forward an upstream content-length with a filtered body.
 */
import type { RouteSpec } from '../routes/table.js';
import { LineScanner, type LineSink } from './lines.js';
import { isRecord } from './usage.js';

/** Transforms a response byte stream; what transform() returns goes to the client in order. */
export interface ChunkFilter {
  transform(chunk: Uint8Array): Uint8Array;
  /** At the end of the stream: whatever is still held back. */
  flush(): Uint8Array;
}

export interface PreparedBody {
  /** The bytes to send upstream (the very same Buffer when nothing was changed). */
  readonly body: Buffer;
  /** Present only when the body was changed to ask for usage. */
  readonly responseFilter?: ChunkFilter;
  /** How the body was changed, for the log line. */
  readonly rewrite?: 'spliced' | 'reserialised';
}

const INCLUDE_USAGE_MEMBER = Buffer.from('"stream_options":{"include_usage":true},');
export const MAX_HELD_EVENT_BYTES = 64 * 1024;

/** A route, or a matched route (so the function can serve as the core's `prepareBody` as is). */
export type RouteLike = Pick<RouteSpec, 'family' | 'template'> | { readonly route: Pick<RouteSpec, 'family' | 'template'> };

export function prepareRequestBody(target: RouteLike, body: Buffer): PreparedBody {
  const route = 'route' in target ? target.route : target;
  if (!isChatCompletions(route) || !body.includes('"stream"')) return { body };
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return { body }; // Bedrock will refuse it; nothing to meter.
  }
  if (!isRecord(doc) || doc.stream !== true) return { body };

  if (!Object.prototype.hasOwnProperty.call(doc, 'stream_options')) {
    const open = body.findIndex((byte) => byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d);
    if (open === -1 || body[open] !== 0x7b /* { */) return { body };
    // The object has at least the `stream` member, so a trailing comma is always followed by one.
    const spliced = Buffer.concat([body.subarray(0, open + 1), INCLUDE_USAGE_MEMBER, body.subarray(open + 1)]);
    return { body: spliced, responseFilter: new UsageChunkFilter(), rewrite: 'spliced' };
  }

  const options = doc.stream_options;
  if (isRecord(options) && options.include_usage === true) return { body };
  if (options !== null && !isRecord(options)) return { body }; // Invalid; Bedrock answers it.
  const rewritten = { ...doc, stream_options: { ...(options ?? {}), include_usage: true } };
  return { body: Buffer.from(JSON.stringify(rewritten)), responseFilter: new UsageChunkFilter(), rewrite: 'reserialised' };
}

function isChatCompletions(route: Pick<RouteSpec, 'family' | 'template'>): boolean {
  return route.family === 'openai' && route.template.endsWith('/chat/completions');
}

/** Is this event's data the usage-only chunk the relay asked for? */
export function isUsageOnlyChunk(data: string): boolean {
  if (!data.includes('"usage"') || !data.includes('"choices"')) return false;
  try {
    const doc: unknown = JSON.parse(data);
    return isRecord(doc) && Array.isArray(doc.choices) && doc.choices.length === 0 && isRecord(doc.usage);
  } catch {
    return false;
  }
}

const NULL_USAGE_LAST = ',"usage":null}';
/** The top-level `"usage": null` member and the comma that joins it, in each place it can sit. */
const NULL_USAGE_MEMBER = [/,\s*"usage"\s*:\s*null(?=\s*[,}])/g, /"usage"\s*:\s*null\s*,\s*/g, /"usage"\s*:\s*null/g];

/**
 * The chunk's JSON text without its top-level `"usage": null` member, or undefined when it has
 * none (or when no textual cut gives exactly the same object without it).
 */
export function withoutNullUsage(json: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isRecord(doc) || doc.usage !== null) return undefined;
  // The usual shape, appended last: in a valid JSON object whose only `"usage"` is in its final
  // `,"usage":null}`, that text can only be the top-level member, so no second parse is needed.
  if (json.endsWith(NULL_USAGE_LAST) && json.indexOf('"usage"') === json.length - NULL_USAGE_LAST.length + 1) {
    return `${json.slice(0, -NULL_USAGE_LAST.length)}}`;
  }
  const { usage: _dropped, ...rest } = doc;
  const expected = JSON.stringify(rest);
  for (const pattern of NULL_USAGE_MEMBER) {
    for (const match of json.matchAll(pattern)) {
      const candidate = json.slice(0, match.index) + json.slice(match.index + match[0].length);
      try {
        const parsed: unknown = JSON.parse(candidate);
        if (isRecord(parsed) && !Object.prototype.hasOwnProperty.call(parsed, 'usage') && JSON.stringify(parsed) === expected) return candidate;
      } catch {
        // That occurrence was not the member; try the next.
      }
    }
  }
  return undefined;
}

const DATA_PREFIX = Buffer.from('data:');

/**
 * Drops usage-only Chat Completions chunks from an SSE byte stream, keeping every other byte.
 * An event is the run of lines up to and including the blank line that ends it.
 */
export class UsageChunkFilter implements ChunkFilter, LineSink {
  private readonly lines = new LineScanner(MAX_HELD_EVENT_BYTES);
  /** Bytes of the event being received. Views of the current chunk until the end of transform(). */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private firstHeldView = 0;
  private data: string[] = [];
  /** Where the event's (single) data value sits in the held bytes, for removing `"usage": null`. */
  private dataValueStart = -1;
  private dataValueEnd = -1;
  /** Offset in the held bytes where the line being received began, if it spans chunks. */
  private partialLineStart = -1;
  /** Lines seen since the last blank line. */
  private eventOpen = false;
  /** The current event was too long to be the usage chunk: its bytes go straight out. */
  private passing = false;
  private lastEventDropped = false;
  // The call in progress: the sink methods below work on these.
  private chunk: Uint8Array = new Uint8Array(0);
  private start = 0;
  private out: Uint8Array[] = [];

  transform(chunk: Uint8Array): Uint8Array {
    this.chunk = chunk;
    this.start = 0;
    this.out = [];
    this.lines.push(chunk, this);
    if (this.start < chunk.byteLength) {
      this.eventOpen = true;
      if (this.partialLineStart === -1) this.partialLineStart = this.heldBytes;
      this.add(chunk.subarray(this.start));
    }
    // What is still held must not view the caller's chunk after this call.
    for (let i = this.firstHeldView; i < this.held.length; i++) this.held[i] = new Uint8Array(this.held[i]!);
    this.firstHeldView = this.held.length;
    const result = concat(this.out);
    this.out = [];
    this.chunk = EMPTY;
    return result;
  }

  flush(): Uint8Array {
    // An event the stream never ended is not dispatched by clients anyway: give it back as is.
    const rest = concat(this.held);
    this.resetEvent();
    return rest;
  }

  /** LineSink: the LF completing a CRLF split across chunks belongs to the line before it. */
  lineFeedOfPreviousLine(): void {
    const lf = this.chunk.subarray(0, 1);
    this.start = 1;
    if (this.eventOpen) this.add(lf); // part of the open event: goes out (or not) with it
    else if (!this.lastEventDropped) this.out.push(lf);
  }

  /** LineSink: one complete line, ending at `end` in the current chunk. */
  line(line: Uint8Array | undefined, end: number): void {
    const bytes = this.chunk.subarray(this.start, end);
    this.start = end;
    if (line !== undefined && line.byteLength === 0) {
      this.endEvent(bytes);
      return;
    }
    this.eventOpen = true;
    const lineStart = this.partialLineStart === -1 ? this.heldBytes : this.partialLineStart;
    this.partialLineStart = -1;
    this.add(bytes);
    if (!this.passing && line !== undefined && startsWith(line, DATA_PREFIX)) {
      const valueStart = line[DATA_PREFIX.length] === 0x20 ? DATA_PREFIX.length + 1 : DATA_PREFIX.length;
      this.data.push(Buffer.from(line.buffer, line.byteOffset + valueStart, line.byteLength - valueStart).toString('utf8'));
      this.dataValueStart = lineStart + valueStart;
      this.dataValueEnd = lineStart + line.byteLength;
    }
  }

  private add(bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    if (this.passing) {
      this.out.push(bytes);
      return;
    }
    this.held.push(bytes);
    this.heldBytes += bytes.byteLength;
    if (this.heldBytes > MAX_HELD_EVENT_BYTES) {
      this.out.push(...this.held);
      this.resetEvent();
      this.passing = true;
      this.eventOpen = true;
    }
  }

  private endEvent(blankLine: Uint8Array): void {
    if (this.passing) {
      this.out.push(blankLine);
      this.lastEventDropped = false;
    } else {
      const drop = this.data.length > 0 && isUsageOnlyChunk(this.data.join('\n'));
      if (!drop) this.out.push(...this.withoutNullUsage(), blankLine);
      this.lastEventDropped = drop;
    }
    this.resetEvent();
  }

  /** The held event, with a single-line data value's `"usage": null` member cut out. */
  private withoutNullUsage(): Uint8Array[] {
    if (this.data.length !== 1 || !this.data[0]!.includes('"usage"')) return this.held;
    const value = this.data[0]!;
    const stripped = withoutNullUsage(value);
    if (stripped === undefined) return this.held;
    const event = Buffer.concat(this.held);
    const raw = event.subarray(this.dataValueStart, this.dataValueEnd);
    // Cut bytes only where the text maps back to them exactly (valid UTF-8).
    if (!raw.equals(Buffer.from(value))) return this.held;
    return [event.subarray(0, this.dataValueStart), Buffer.from(stripped), event.subarray(this.dataValueEnd)];
  }

  private resetEvent(): void {
    this.held = [];
    this.heldBytes = 0;
    this.firstHeldView = 0;
    this.dataValueStart = this.dataValueEnd = this.partialLineStart = -1;
    this.data = [];
    this.passing = false;
    this.eventOpen = false;
  }
}

const EMPTY = new Uint8Array(0);

function startsWith(line: Uint8Array, prefix: Uint8Array): boolean {
  if (line.byteLength < prefix.byteLength) return false;
  for (let i = 0; i < prefix.byteLength; i++) if (line[i] !== prefix[i]) return false;
  return true;
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 0) return new Uint8Array(0);
  if (parts.length === 1) return new Uint8Array(parts[0]!);
  return Buffer.concat(parts);
}
