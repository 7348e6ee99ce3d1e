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
 *     budgets and tpm limits. Every decision — is it a streamed call, does it already ask for
 *     usage, where does the member go — is taken from the parsed document
 *     (lambda/http/json-document.ts), never from a byte search: `"str\u0065am": true` streams
 *     as surely as `"stream": true`, and a body with a duplicate name never gets this far. The
 *     change is a splice at a position the parse found, and every other byte stays as the
 *     client sent it (so formatting and big numbers survive):
 *       - no `stream_options`: `"stream_options":{"include_usage":true},` right after the `{`
 *         that opens the body;
 *       - `"stream_options": null`: that `null` becomes `{"include_usage":true}`;
 *       - `stream_options` without `include_usage`: `"include_usage":true` (and a comma when it
 *         has other members) right after its `{`;
 *       - `include_usage` that is not `true`: its value becomes `true`.
 *     A `stream` or `stream_options` of the wrong type is refused before this runs
 *     (chatCompletionsFieldProblem), so no spelling of "stream" a lenient parser would accept
 *     slips by unmetered.
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
import { objectMembers, parseJsonDocument, type JsonDocument } from '../http/json-document.js';
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
  /** How the body was changed, for the log line (always a splice: the body is never re-serialised). */
  readonly rewrite?: 'spliced';
}

const INCLUDE_USAGE_MEMBER = Buffer.from('"stream_options":{"include_usage":true},');
const INCLUDE_USAGE_OBJECT = Buffer.from('{"include_usage":true}');
const INCLUDE_USAGE_INNER_MEMBER = Buffer.from('"include_usage":true');
const INCLUDE_USAGE_INNER_MEMBER_COMMA = Buffer.from('"include_usage":true,');
const TRUE = Buffer.from('true');
export const MAX_HELD_EVENT_BYTES = 64 * 1024;

/** A route, or a matched route (so the function can serve as the core's `prepareBody` as is). */
export type RouteLike = Pick<RouteSpec, 'family' | 'template'> | { readonly route: Pick<RouteSpec, 'family' | 'template'> };

/**
 * `document` is the body as the relay core parsed it (CallContext.document); without it the body
 * is parsed here, with the same parser (a refused body throws JsonBodyRefused).
 */
export function prepareRequestBody(target: RouteLike, body: Buffer, document?: JsonDocument): PreparedBody {
  const route = 'route' in target ? target.route : target;
  if (!isChatCompletions(route)) return { body };
  const doc = document ?? parseJsonDocument(body);
  const json = doc.json;
  if (!isRecord(json) || json.stream !== true) return { body };
  const members = doc.members;
  if (!members || !doc.root) throw new Error('a parsed JSON object without member positions');

  const optionsAt = members.get('stream_options');
  if (optionsAt === undefined) {
    // The object has at least the `stream` member, so a trailing comma is always followed by one.
    return spliced(body, doc.root.start + 1, doc.root.start + 1, INCLUDE_USAGE_MEMBER);
  }
  const options = json.stream_options;
  if (options === null) return spliced(body, optionsAt.start, optionsAt.end, INCLUDE_USAGE_OBJECT);
  if (!isRecord(options)) return { body }; // refused before the call gets here (chatCompletionsFieldProblem)
  if (options.include_usage === true) return { body };
  const inner = objectMembers(body, optionsAt);
  if (!inner) throw new Error('stream_options parsed as an object but scanned as none');
  const includeUsageAt = inner.get('include_usage');
  if (includeUsageAt !== undefined) return spliced(body, includeUsageAt.start, includeUsageAt.end, TRUE);
  const member = inner.size > 0 ? INCLUDE_USAGE_INNER_MEMBER_COMMA : INCLUDE_USAGE_INNER_MEMBER;
  return spliced(body, optionsAt.start + 1, optionsAt.start + 1, member);
}

/**
 * Why a Chat Completions request must be refused before it goes upstream, or undefined. `stream`
 * and `stream_options` of another type than the API defines are answered by Bedrock with an
 * error at best; at worst a lenient parser coerces `"stream": "true"` and streams, and the relay,
 * which reads only a boolean `true` as streaming, would not ask for usage. Refusing them keeps
 * "streams" and "the relay asked for usage" the same set.
 */
export function chatCompletionsFieldProblem(route: Pick<RouteSpec, 'family' | 'template'>, json: unknown): string | undefined {
  if (!isChatCompletions(route) || !isRecord(json)) return undefined;
  const { stream } = json;
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') return '`stream` must be a boolean.';
  const options = json.stream_options;
  if (options !== undefined && options !== null && !isRecord(options)) return '`stream_options` must be an object.';
  return undefined;
}

function spliced(body: Buffer, start: number, end: number, insert: Buffer): PreparedBody {
  const out = Buffer.concat([body.subarray(0, start), insert, body.subarray(end)]);
  return { body: out, responseFilter: new UsageChunkFilter(), rewrite: 'spliced' };
}

/** Exposed for the document checks (lambda/routes/request-document.ts). */
export function isChatCompletions(route: Pick<RouteSpec, 'family' | 'template'>): boolean {
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
        if (isRecord(parsed) && !Object.hasOwn(parsed, 'usage') && JSON.stringify(parsed) === expected) return candidate;
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
    if (this.eventOpen)
      this.add(lf); // part of the open event: goes out (or not) with it
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
