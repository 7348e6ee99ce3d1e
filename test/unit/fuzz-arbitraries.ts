/**
 * fast-check arbitraries shared by the fuzz tests (test/unit/fuzz-*.test.ts and
 * test/integration/fuzz-*.test.ts): request paths built from the route table's own literals,
 * real-looking labels, and the spellings that path-confusion attacks use (dot segments plain,
 * encoded and double-encoded, encoded slashes and backslashes, NUL, bad escapes, unicode),
 * each segment percent-encoded at random on top.
 */
import fc from 'fast-check';
import { ROUTES } from '../../lambda/routes/table.js';

/** Every literal segment of every route template ("model", "converse", "knowledgebases"…). */
export const ROUTE_LITERALS: readonly string[] = [
  ...new Set(ROUTES.flatMap((route) => route.template.split('/').filter((segment) => segment !== '' && !segment.startsWith('{')))),
];

export const LABELS: readonly string[] = [
  'amazon.nova-micro-v1:0',
  'cohere.command-r-v1:0',
  'us.anthropic.claude-3-haiku-20240307-v1:0',
  'arn:aws:bedrock:us-east-1:123456789012:inference-profile',
  encodeURIComponent('arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0'),
  'KB12345678',
  'AGENT12345',
  'TSTALIASID',
  'gr-abc123',
  'DRAFT',
  '1',
  'fake.internal',
  'fake.throttle',
  'fake.not-found',
];

/** What path-confusion and smuggling attempts look like, one segment at a time. */
export const ABUSIVE_SEGMENTS: readonly string[] = [
  '',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2e%2e',
  '%2E%2e',
  '.%2e',
  '%252e%252e',
  '%2F',
  '%2f',
  '..%2F',
  '%2F..%2F',
  '%5C',
  '%5c..',
  '%00',
  'a%00b',
  '%0d%0a',
  '%',
  '%zz',
  '%C3%A9',
  'é',
  '%E6%97%A5%E6%9C%AC',
  '%ED%A0%80',
  '%F0%9F%92%A9',
  ';',
  '~',
  '*',
  '@',
  ':',
  '%3A',
  '%23',
  '%3F',
  'model%2Fx',
  '%u002e',
];

export const PREFIXES: readonly string[] = ['/bedrock', '/bedrock', '/bedrock', '/bedrock-mantle', '', '/key', '/health', '/BEDROCK', '//bedrock', '/bedrock/'];

export const QUERIES: readonly string[] = [
  '',
  '',
  '',
  '?maxResults=5',
  '?statusEquals=Completed&maxResults=1',
  '?a=b&c',
  '?x=%ZZ',
  '?nextToken=a%2Fb%3D%3D',
  '?=',
  '?a=%00',
];

/** Percent-encode the characters picked by `flags` (hex case at random too). */
export function encodeSome(segment: string, flags: readonly boolean[]): string {
  let out = '';
  [...segment].forEach((char, index) => {
    const flag = flags[index % Math.max(1, flags.length)] ?? false;
    if (!flag || char === '%') {
      out += char;
      return;
    }
    const hex = [...Buffer.from(char, 'utf8')].map((byte) => `%${byte.toString(16).padStart(2, '0')}`).join('');
    out += index % 2 === 0 ? hex.toUpperCase() : hex;
  });
  return out;
}

export const segmentArb: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...ROUTE_LITERALS) },
      { weight: 3, arbitrary: fc.constantFrom(...LABELS) },
      { weight: 3, arbitrary: fc.constantFrom(...ABUSIVE_SEGMENTS) },
      { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 0, maxLength: 12 }).map((s) => s.replace(/[^\x21-\x7e]|[?#%/]/g, '')) },
    ),
    fc.array(fc.boolean(), { maxLength: 8 }),
    fc.boolean(),
  )
  // Most segments go as they are; some get random characters percent-encoded.
  .map(([segment, flags, encode]) => (encode ? encodeSome(segment, flags) : segment));

export interface FuzzPath {
  readonly path: string;
  readonly query: string;
  /** The method of the route the path was shaped after, if it was. */
  readonly routeMethod?: string;
}

/** Random segments: mostly not a route at all. */
const randomPathArb: fc.Arbitrary<FuzzPath> = fc
  .record({
    prefix: fc.constantFrom(...PREFIXES),
    segments: fc.array(segmentArb, { minLength: 0, maxLength: 8 }),
    trailingSlash: fc.boolean(),
    query: fc.constantFrom(...QUERIES),
  })
  .map(({ prefix, segments, trailingSlash, query }) => {
    const path = `${prefix}${segments.length > 0 ? `/${segments.join('/')}` : ''}${trailingSlash ? '/' : ''}` || '/';
    return { path: path.startsWith('/') ? path : `/${path}`, query };
  });

/**
 * A real route's template with its labels filled (from LABELS, abusive segments or random
 * text), and now and then one segment swapped for an abusive one: close enough to the route
 * table that many match, so the properties also exercise what happens after a match.
 */
const routeShapedArb: fc.Arbitrary<FuzzPath> = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    fills: fc.array(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...LABELS) }, { weight: 1, arbitrary: segmentArb }), { minLength: 6, maxLength: 6 }),
    swap: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.constantFrom(...ABUSIVE_SEGMENTS)) }),
    query: fc.constantFrom(...QUERIES),
  })
  .map(({ route, fills, swap, query }) => {
    let label = 0;
    const segments = route.template
      .slice(1)
      .split('/')
      .map((segment) => (segment.startsWith('{') ? fills[label++ % fills.length]! : segment));
    if (swap) segments[swap[0] % segments.length] = swap[1];
    return { path: `${route.prefix}/${segments.join('/')}`, query, routeMethod: route.method };
  });

export const pathArb: fc.Arbitrary<FuzzPath> = fc.oneof(randomPathArb, routeShapedArb);

export const METHODS: readonly string[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

/** A method and a path: usually the route's own method when the path was shaped after one. */
export const requestArb: fc.Arbitrary<FuzzPath & { readonly method: string }> = fc
  .tuple(pathArb, fc.constantFrom(...METHODS), fc.boolean(), fc.boolean())
  .map(([path, random, keepRoute1, keepRoute2]) => ({ ...path, method: path.routeMethod && (keepRoute1 || keepRoute2) ? path.routeMethod : random }));
