/**
 * A JSON request body, parsed once, strictly enough that the relay and Bedrock cannot read it
 * differently.
 *
 * The relay decides from the body (which model, whether the call streams, which guardrail or
 * knowledge base it names) and then sends the very bytes it was given. That is only sound when
 * every parser reads those bytes as the same document. JSON.parse alone does not guarantee it:
 *
 *  - Duplicate member names. `{"model":"OTHER","model":"ALLOWED"}` is ALLOWED to JSON.parse
 *    (last wins) and may be OTHER to a parser that keeps the first; Bedrock's Java/Smithy
 *    parsers reject duplicates or differ. RFC 8259 says names SHOULD be unique and leaves the
 *    behaviour of a duplicate to the implementation, so no well-formed client sends one. The
 *    relay refuses ANY duplicate name in ANY object of the document — not just the names policy
 *    reads today — because which names matter changes as policy, metering and pricing grow
 *    (max-token fields, service tiers, nested guardrail and knowledge-base references), and a
 *    list that forgets one is an exploit. Names are compared after unescaping, as every parser
 *    does, so `"model"` and `"mod\u0065l"` are the same name.
 *  - A UTF-8 byte order mark. JSON.parse rejects it (the relay would see "not JSON"), while
 *    Jackson-style parsers skip it and read the document: the relay would decide nothing and the
 *    call would pass unchecked and unmetered. RFC 8259 forbids adding one; the relay refuses it.
 *  - Invalid UTF-8. Decoders disagree about what invalid bytes become (replacement characters,
 *    errors, Latin-1 fallbacks), so two names the relay reads as equal, or a value it reads as
 *    one string, could be another to Bedrock. RFC 8259 requires UTF-8; a JSON body that is not
 *    valid UTF-8 is refused.
 *
 * A body that JSON.parse does not accept is "not JSON" (`json` undefined) and is not refused
 * here: many routes carry other bodies (InvokeModel's payload is the model's own format). The
 * routes that only take JSON refuse it in lambda/routes/request-document.ts.
 *
 * Values are JSON.parse's (the reference for what JSON means in this code base; numbers beyond
 * 2^53 lose precision there, which no policy-relevant field can hold). The duplicate scan runs
 * after JSON.parse accepted the text, so it only has to follow structure, not validate it. It is
 * iterative (an explicit stack), so no nesting depth can overflow the call stack.
 */
import { isUtf8 } from 'node:buffer';

/** Byte offsets into the body; `end` is exclusive. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

export interface JsonDocument {
  /** JSON.parse's value; undefined when the body is empty or not JSON. */
  readonly json: unknown;
  /** Where the root value sits in the body (absent when not JSON). */
  readonly root?: Span;
  /** When the root is an object: where each member's value sits, by name. */
  readonly members?: ReadonlyMap<string, Span>;
}

export type JsonBodyProblem = 'duplicate-name' | 'byte-order-mark' | 'invalid-utf8';

/** The body is JSON, but one that parsers may read differently: the caller answers 400. */
export class JsonBodyRefused extends Error {
  constructor(
    readonly problem: JsonBodyProblem,
    message: string,
  ) {
    super(message);
    this.name = 'JsonBodyRefused';
  }
}

const NOT_JSON: JsonDocument = { json: undefined };
const BOM = [0xef, 0xbb, 0xbf] as const;

/** Parses a request body; throws JsonBodyRefused for a JSON body with a duplicate name, a BOM or invalid UTF-8. */
export function parseJsonDocument(body: Buffer): JsonDocument {
  if (body.byteLength === 0) return NOT_JSON;
  if (body[0] === BOM[0] && body[1] === BOM[1] && body[2] === BOM[2]) {
    // Refused only when what follows is JSON: a binary body may start with these bytes.
    if (parses(body.toString('utf8', BOM.length))) {
      throw new JsonBodyRefused('byte-order-mark', 'The request body starts with a UTF-8 byte order mark; send the JSON without it.');
    }
    return NOT_JSON;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return NOT_JSON;
  }
  if (!isUtf8(body)) throw new JsonBodyRefused('invalid-utf8', 'The request body is JSON but not valid UTF-8.');
  const { root, members } = scanJson(body, 0, body.byteLength, true);
  return { json, root, ...(members ? { members } : {}) };
}

/**
 * The members of the object whose value sits at `span` in a body parseJsonDocument accepted
 * (for splicing into a nested object without re-serialising it).
 */
export function objectMembers(body: Buffer, span: Span): ReadonlyMap<string, Span> | undefined {
  return scanJson(body, span.start, span.end, true).members;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Walks valid JSON between `from` and `to`: throws on a duplicate name in any object, and
 * records where the root value and (when `record`) the root object's member values sit.
 */
function scanJson(body: Buffer, from: number, to: number, record: boolean): { root: Span; members?: Map<string, Span> } {
  // One entry per open container: the names seen so far for an object, null for an array.
  const stack: Array<Set<string> | null> = [];
  let expectName = false;
  let rootStart = -1;
  let rootEnd = -1;
  let members: Map<string, Span> | undefined;
  let memberName: string | undefined;
  let memberStart = -1;

  const begin = (at: number) => {
    if (stack.length === 0) rootStart = at;
    else if (stack.length === 1 && memberName !== undefined) memberStart = at;
  };
  const end = (at: number) => {
    if (stack.length === 0) rootEnd = at;
    else if (stack.length === 1 && memberName !== undefined && members) {
      members.set(memberName, { start: memberStart, end: at });
      memberName = undefined;
    }
  };

  let i = from;
  while (i < to) {
    const byte = body[i]!;
    switch (byte) {
      case 0x20:
      case 0x09:
      case 0x0a:
      case 0x0d:
        i++;
        break;
      case 0x7b: // {
        begin(i);
        if (stack.length === 0 && record) members = new Map();
        stack.push(new Set());
        expectName = true;
        i++;
        break;
      case 0x5b: // [
        begin(i);
        stack.push(null);
        expectName = false;
        i++;
        break;
      case 0x7d: // }
      case 0x5d: // ]
        stack.pop();
        expectName = false;
        i++;
        end(i);
        break;
      case 0x2c: // ,
        expectName = stack[stack.length - 1] instanceof Set;
        i++;
        break;
      case 0x3a: // :
        expectName = false;
        i++;
        break;
      case QUOTE: {
        const close = closingQuote(body, i);
        const names = stack[stack.length - 1];
        if (expectName && names) {
          const name = decodeName(body, i, close);
          if (names.has(name)) {
            throw new JsonBodyRefused(
              'duplicate-name',
              `The request body names the member ${printable(name)} more than once in the same object; send each name once.`,
            );
          }
          names.add(name);
          if (stack.length === 1) memberName = name;
          expectName = false;
        } else {
          begin(i);
          end(close + 1);
        }
        i = close + 1;
        break;
      }
      default: {
        // A number, true, false or null: runs to the next delimiter.
        let j = i + 1;
        while (j < to && !isDelimiter(body[j]!)) j++;
        begin(i);
        end(j);
        i = j;
      }
    }
  }
  return { root: { start: rootStart, end: rootEnd }, ...(members ? { members } : {}) };
}

function isDelimiter(byte: number): boolean {
  return byte === 0x2c || byte === 0x7d || byte === 0x5d || byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d || byte === 0x3a;
}

/** The index of the quote closing the string that opens at `open`. */
function closingQuote(body: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = nextQuote(body, at + 1);
    if (at === -1) throw new Error('unterminated string in JSON that parsed'); // cannot happen after JSON.parse
    let backslashes = 0;
    for (let k = at - 1; k > open && body[k] === BACKSLASH; k--) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/** Most strings are short: a plain loop first, the native search for long ones (base64 images). */
function nextQuote(body: Buffer, from: number): number {
  const stop = Math.min(from + 32, body.byteLength);
  for (let i = from; i < stop; i++) if (body[i] === QUOTE) return i;
  return stop === body.byteLength ? -1 : body.indexOf(QUOTE, stop);
}

function decodeName(body: Buffer, open: number, close: number): string {
  for (let i = open + 1; i < close; i++) {
    if (body[i] === BACKSLASH) return JSON.parse(body.toString('utf8', open, close + 1)) as string;
  }
  return body.toString('utf8', open + 1, close);
}

function printable(name: string): string {
  const shown = name.length > 64 ? `${name.slice(0, 64)}…` : name;
  return JSON.stringify(shown);
}
