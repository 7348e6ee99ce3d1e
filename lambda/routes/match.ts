import { RelayError } from '../http/errors.js';
import { ARN_CAPABLE_LABELS, ROUTES, type RelayPrefix, type RouteSpec } from './table.js';

/** A request path resolved against the route table. */
export interface MatchedRoute {
  readonly route: RouteSpec;
  /** Path labels, percent-decoded (`cohere.command-r-v1:0`, full ARNs with `/`). */
  readonly params: Readonly<Record<string, string>>;
  /** The upstream path, each label encoded once the way AWS SDKs encode it. */
  readonly upstreamPath: string;
  /** Decoded query pairs, in order, for signing and forwarding. */
  readonly query: ReadonlyArray<readonly [string, string]>;
}

type CompiledSegment = { literal: string } | { label: string; multi: boolean };
interface CompiledRoute {
  readonly route: RouteSpec;
  readonly segments: readonly CompiledSegment[];
}

const RELAY_PREFIXES: readonly RelayPrefix[] = ['/bedrock-mantle', '/bedrock'];

function compile(route: RouteSpec): CompiledRoute {
  // '/sessions/{id}/' → ['sessions', {id}, ''] : the trailing empty segment is part of the path.
  const segments = route.template
    .slice(1)
    .split('/')
    .map((segment): CompiledSegment => {
      const label = /^\{(\w+)\}$/.exec(segment)?.[1];
      return label ? { label, multi: ARN_CAPABLE_LABELS.has(label) } : { literal: segment };
    });
  return { route, segments };
}

export class RouteMatcher {
  private readonly compiled: readonly CompiledRoute[];

  constructor(routes: readonly RouteSpec[] = ROUTES) {
    this.compiled = routes.map(compile);
  }

  /** Does this path belong to the pass-through surface at all (so errors take Bedrock's shape)? */
  static relayPrefixOf(rawPath: string): RelayPrefix | undefined {
    return RELAY_PREFIXES.find((prefix) => rawPath === prefix || rawPath.startsWith(`${prefix}/`));
  }

  /**
   * Resolve `method rawPath?rawQuery` to a route, or throw a RelayError (400 for paths that are
   * malformed or try to escape, 404 for paths that are no Bedrock operation, 405 for a known
   * path with the wrong method). Nothing that fails here is ever sent upstream.
   */
  match(method: string, rawPath: string, rawQueryString: string): MatchedRoute {
    const prefix = RouteMatcher.relayPrefixOf(rawPath);
    if (!prefix) throw new RelayError(404, 'UnknownOperationException', 'Not a relay path.');
    const rest = rawPath.slice(prefix.length);
    const rawSegments = validatePath(rest);
    const query = parseQuery(rawQueryString);

    let pathMatchedOtherMethod = false;
    // First every label takes one segment; only if nothing matches may an ARN-capable label
    // swallow raw `/`. So `/sessions/{id}/invocationSteps/` never reads as `/sessions/{id}/`.
    for (const allowMultiSegment of [false, true]) {
      for (const candidate of this.compiled) {
        if (candidate.route.prefix !== prefix) continue;
        const params = matchSegments(candidate.segments, rawSegments, allowMultiSegment);
        if (!params) continue;
        if (candidate.route.method !== method.toUpperCase()) {
          pathMatchedOtherMethod = true;
          continue;
        }
        return { route: candidate.route, params, upstreamPath: buildPath(candidate.segments, params), query };
      }
      if (pathMatchedOtherMethod) break;
    }
    if (pathMatchedOtherMethod) {
      throw new RelayError(405, 'ValidationException', `Method ${method} is not allowed on this Bedrock path.`);
    }
    throw new RelayError(404, 'UnknownOperationException', `No Bedrock operation matches ${method} ${prefix}${rest || '/'}.`);
  }
}

/**
 * Split a raw path into raw segments, refusing anything that could be read as a different path
 * by some hop on the way: dot segments (plain or encoded), empty segments in the middle,
 * NUL and control characters, invalid percent-encoding, backslashes.
 */
function validatePath(rest: string): string[] {
  if (rest === '' || rest === '/') throw new RelayError(404, 'UnknownOperationException', 'No Bedrock operation at this path.');
  if (!rest.startsWith('/')) throw new RelayError(404, 'UnknownOperationException', 'Not a relay path.');
  const segments = rest.slice(1).split('/');
  segments.forEach((segment, index) => {
    const isLast = index === segments.length - 1;
    if (segment === '' && !isLast) throw new RelayError(400, 'ValidationException', 'Empty path segments are not allowed.');
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new RelayError(400, 'ValidationException', 'The path has an invalid percent-encoding.');
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f\\]/.test(decoded) || /[\u0000-\u001f\u007f\\]/.test(segment)) {
      throw new RelayError(400, 'ValidationException', 'The path contains control characters or backslashes.');
    }
    if (decoded === '.' || decoded === '..' || decoded.split('/').some((part) => part === '.' || part === '..')) {
      throw new RelayError(400, 'ValidationException', 'Dot segments are not allowed in the path.');
    }
  });
  return segments;
}

/**
 * Match raw segments against a template. A label matches one raw segment; a label that can
 * carry an ARN may also swallow several raw segments when a client (curl) sent an ARN with
 * unencoded `/`. Literal segments after it anchor the split, so `/model/arn:…/us.x/converse`
 * still resolves to modelId = `arn:…/us.x`.
 */
function matchSegments(template: readonly CompiledSegment[], raw: readonly string[], allowMultiSegment: boolean): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  const walk = (t: number, r: number): boolean => {
    if (t === template.length) return r === raw.length;
    const segment = template[t]!;
    if ('literal' in segment) {
      return r < raw.length && raw[r] === segment.literal && walk(t + 1, r + 1);
    }
    // Leave at least one raw segment for each remaining template segment.
    const maxSpan = allowMultiSegment && segment.multi ? raw.length - r - (template.length - t - 1) : 1;
    for (let span = 1; span <= maxSpan; span++) {
      const parts = raw.slice(r, r + span);
      if (parts.some((part) => part === '')) break;
      params[segment.label] = parts.map((part) => decodeURIComponent(part)).join('/');
      if (walk(t + 1, r + span)) return true;
    }
    delete params[segment.label];
    return false;
  };
  return walk(0, 0) ? params : undefined;
}

/**
 * Encode like the AWS SDKs encode URI labels (RFC 3986 unreserved characters kept, everything
 * else percent-encoded, `/` included). The signer then encodes the path once more for the
 * canonical request, which is exactly what Bedrock does with the path it receives.
 */
export function awsUriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function buildPath(template: readonly CompiledSegment[], params: Record<string, string>): string {
  return `/${template.map((segment) => ('literal' in segment ? segment.literal : awsUriEncode(params[segment.label]!))).join('/')}`;
}

function parseQuery(rawQueryString: string): Array<[string, string]> {
  if (!rawQueryString) return [];
  return rawQueryString
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const [name, value] = eq === -1 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
      try {
        // `+` stays a literal plus: AWS reads query strings with RFC 3986 rules, not form rules.
        return [decodeURIComponent(name), decodeURIComponent(value)] as [string, string];
      } catch {
        throw new RelayError(400, 'ValidationException', 'The query string has an invalid percent-encoding.');
      }
    });
}

/** The query as it goes on the wire: canonical encoding, so what is signed is what is sent. */
export function encodeQuery(query: ReadonlyArray<readonly [string, string]>): string {
  return query.map(([name, value]) => `${awsUriEncode(name)}=${awsUriEncode(value)}`).join('&');
}
