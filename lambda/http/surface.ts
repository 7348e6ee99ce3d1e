/**
 * Every endpoint that is not a relayed call, in one table: the health checks and the
 * LiteLLM-compatible admin API. Relayed calls are everything under `/bedrock` and
 * `/bedrock-mantle` (lambda/routes/table.ts, one entry per Bedrock operation). Every error
 * shape, for both, is in lambda/http/errors.ts; here everything answers in LiteLLM's dialect.
 *
 * Who may call what:
 *   - the health checks: anyone, any method;
 *   - `/key` and `/key/…` (only when a key store is configured; otherwise they are unknown paths
 *     like any other): the caller is authenticated first, from `Authorization: Bearer` or
 *     `x-api-key`. The master key may call every route below; a valid virtual key may read its
 *     own GET /key/info and gets 403 for the rest, without learning which other paths exist
 *     (as in LiteLLM); anything else is 401 (403 for a blocked key). Then: no such path 404,
 *     another method 405;
 *   - anything else: 404.
 */
import type { UsageReports } from '../accounting/report.js';
import { credentialFrom, secretsEqual } from '../auth/principal.js';
import { KeyManagement, type KeyManagementDeps } from '../keys/management.js';
import { hashSecret, tokenFromIdentifier } from '../keys/secrets.js';
import { shortToken } from '../keys/store.js';
import { isExpired, systemClock, type JsonValue, type KeyRecord } from '../keys/types.js';
import { parseKeyIdentifier } from '../keys/validate.js';
import type { RelayRequest } from '../pipeline.js';
import { KeyApiError, StoreUnavailableError, asKeyApiError, keyNotFound, renderError } from './errors.js';

/** A complete (non-streamed) response, as the admin API and health checks produce them. */
export interface PlainResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface SurfaceDeps {
  /** True when the key store answers (readiness). */
  readonly ready: () => Promise<boolean>;
  /** The admin API; absent when no key store is configured. */
  readonly admin?: AdminDeps;
}

export interface AdminDeps extends KeyManagementDeps {
  /** The master key (constant-time compared). */
  readonly masterKey: () => Promise<string>;
  /** Usage reports: GET /key/usage, and the live figures GET /key/info adds (lambda/accounting/report.ts). */
  readonly reports?: UsageReports;
  /** Told about store failures and defects (never given a secret). */
  readonly onError?: (error: unknown) => void;
}

/** The admin API's view of a request (lower-cased header names). */
export interface AdminRequest {
  readonly method: string;
  /** The path as received, e.g. `/key/generate` or `/key/<token>/regenerate`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface AdminRouteContext {
  readonly deps: AdminDeps;
  readonly management: KeyManagement;
  readonly request: AdminRequest;
  /** The parsed JSON body (undefined when empty). */
  readonly body: unknown;
  /** Capture group 1 of the route's path, decoded. */
  readonly pathParam?: string;
}

type HealthRoute = {
  readonly access: 'anyone';
  readonly method: 'ANY';
  readonly path: string;
  readonly handle: (deps: SurfaceDeps) => Promise<PlainResponse>;
};

type AdminRoute = {
  readonly access: 'master';
  readonly method: 'GET' | 'POST';
  /** Matched against the whole path. */
  readonly path: string | RegExp;
  /** The route exists only when this holds (it needs something not every deployment has). */
  readonly when?: (deps: AdminDeps) => boolean;
  /** Answered 200 with this JSON. */
  readonly handle: (context: AdminRouteContext) => Promise<JsonValue>;
};

export type SurfaceRoute = HealthRoute | AdminRoute;

const healthy = async (): Promise<PlainResponse> => json(200, { status: 'healthy' });

export const SURFACE: readonly SurfaceRoute[] = [
  { access: 'anyone', method: 'ANY', path: '/health/liveliness', handle: healthy },
  { access: 'anyone', method: 'ANY', path: '/health/liveness', handle: healthy },
  {
    access: 'anyone',
    method: 'ANY',
    path: '/health/readiness',
    handle: async ({ ready }) =>
      (await ready().catch(() => false))
        ? json(200, { status: 'ready', key_store: 'reachable' })
        : json(503, { status: 'unavailable', key_store: 'unreachable' }),
  },

  { access: 'master', method: 'POST', path: '/key/generate', handle: ({ management, body }) => management.generate(body ?? {}) },
  { access: 'master', method: 'GET', path: '/key/info', handle: keyInfo },
  { access: 'master', method: 'POST', path: '/key/update', handle: ({ management, body }) => management.update(body ?? {}) },
  { access: 'master', method: 'POST', path: '/key/delete', handle: ({ management, body }) => management.delete(body ?? {}) },
  { access: 'master', method: 'GET', path: '/key/list', handle: ({ management, request }) => management.list(request.query) },
  { access: 'master', method: 'POST', path: '/key/regenerate', handle: ({ management, body }) => management.regenerate(body) },
  {
    access: 'master',
    method: 'POST',
    path: /^\/key\/(.+)\/regenerate$/,
    handle: ({ management, body, pathParam }) => management.regenerate(body, pathParam),
  },
  { access: 'master', method: 'POST', path: '/key/block', handle: ({ management, body }) => management.setBlocked(body ?? {}, true) },
  { access: 'master', method: 'POST', path: '/key/unblock', handle: ({ management, body }) => management.setBlocked(body ?? {}, false) },
  {
    access: 'master',
    method: 'GET',
    path: '/key/usage',
    when: (deps) => deps.reports !== undefined,
    handle: ({ deps, request: { query } }) =>
      deps.reports!.usageFor(
        { key: query.get('key'), alias: query.get('key_alias') },
        { start: query.get('start') ?? query.get('start_date'), end: query.get('end') ?? query.get('end_date') },
      ),
  },
  {
    // The master key's AWS pair: nothing about it is stored (it is derived from the master key and the signing secret).
    access: 'master',
    method: 'GET',
    path: '/key/master/aws-credentials',
    when: (deps) => deps.awsCredentials !== undefined,
    handle: async ({ deps }) => ({ ...(await deps.awsCredentials!.masterPair(await deps.masterKey())) }),
  },
];

/** GET /key/info, with the live accounting figures when usage reports are at hand. */
async function keyInfo({ deps, management, request }: AdminRouteContext): Promise<JsonValue> {
  if (!deps.reports) return management.info(request.query.get('key'));
  const token = parseKeyIdentifier(request.query.get('key') ?? undefined, 'key');
  const record = await deps.store.getByHash(token);
  if (!record) throw keyNotFound('key', shortToken(token));
  const { token: _token, ...info } = management.view(record);
  return { key: token, info: { ...info, ...(await deps.reports.keyInfoExtras(record)) } };
}

const ADMIN_AREA = /^\/key(\/|$)/;

/** Answers a request to any path the relay does not relay. */
export async function serveSurface(request: RelayRequest, deps: SurfaceDeps): Promise<PlainResponse> {
  const path = request.rawPath;
  const health = SURFACE.find((route): route is HealthRoute => route.access === 'anyone' && route.path === path);
  if (health) return health.handle(deps);
  if (deps.admin && ADMIN_AREA.test(path)) {
    const { method, headers, body } = request;
    return handleAdminRequest({ method, path, query: new URLSearchParams(request.rawQueryString), headers, body }, deps.admin);
  }
  return failure(new KeyApiError(404, 'not_found_error', `Not found: ${request.method} ${path}`));
}

const MAX_BODY_BYTES = 1024 * 1024;

/** The `/key…` area: caller first, then the route. Never throws. */
export async function handleAdminRequest(request: AdminRequest, deps: AdminDeps): Promise<PlainResponse> {
  try {
    const caller = await authenticateCaller(request, deps);
    const method = request.method.toUpperCase();
    if (caller.kind === 'virtual-key') return json(200, await selfInfo(request, method, caller.token, deps));

    let matched: { route: AdminRoute; pathParam?: string } | undefined;
    let otherMethod = false;
    for (const route of SURFACE) {
      if (route.access !== 'master' || (route.when && !route.when(deps))) continue;
      const match = typeof route.path === 'string' ? (route.path === request.path ? [route.path] : null) : route.path.exec(request.path);
      if (!match) continue;
      if (route.method !== method) {
        otherMethod = true;
        continue;
      }
      matched = { route, pathParam: match[1] !== undefined ? decodePathParam(match[1]) : undefined };
      break;
    }
    if (!matched) {
      if (otherMethod) throw new KeyApiError(405, 'bad_request_error', `Method ${method} is not allowed on ${request.path}.`);
      throw new KeyApiError(404, 'not_found_error', `No key management endpoint at ${request.path}.`);
    }
    const body = parseBody(request.body);
    const management = new KeyManagement(deps);
    return json(200, await matched.route.handle({ deps, management, request, body, pathParam: matched.pathParam }));
  } catch (error) {
    if (!(error instanceof KeyApiError)) deps.onError?.(error);
    return failure(asKeyApiError(error));
  }
}

type Caller = { readonly kind: 'master' } | { readonly kind: 'virtual-key'; readonly token: string };

/** Longer than any key or master key we issue; bounds the hashing work a request can ask for. */
const MAX_CREDENTIAL_LENGTH = 512;

/**
 * The master key, or a usable virtual key: 401 when the credential is missing, unknown or
 * expired (it is no key at all), 403 when it is a key that is blocked. A virtual key is looked
 * up by the hash of the secret presented (never accepted as a token: tokens are not secret).
 */
async function authenticateCaller(request: AdminRequest, deps: AdminDeps): Promise<Caller> {
  const credential = credentialFrom(request.headers);
  if (!credential)
    throw new KeyApiError(401, 'auth_error', 'Authentication Error: the key management API needs the master key ("Authorization: Bearer <master key>").');
  let master: string;
  try {
    master = await deps.masterKey();
  } catch (error) {
    throw new StoreUnavailableError('master key', error);
  }
  if (secretsEqual(credential, master)) return { kind: 'master' };

  const notAKey = () => new KeyApiError(401, 'auth_error', 'Authentication Error: the API key is not valid; the key management API needs the master key.');
  if (credential.length > MAX_CREDENTIAL_LENGTH) throw notAKey();
  const token = hashSecret(credential);
  let record: KeyRecord | undefined;
  try {
    const load = () => deps.store.getByHash(token);
    // The relay's own cache: a flood of made-up keys costs a read per key per few seconds, not per request.
    record = deps.cache ? await deps.cache.getOrLoad(token, load) : await load();
  } catch (error) {
    throw new StoreUnavailableError('key lookup', error);
  }
  if (!record) throw notAKey();
  if (isExpired(record, (deps.clock ?? systemClock)()))
    throw new KeyApiError(401, 'auth_error', `Authentication Error: the API key expired at ${record.expires}.`);
  if (record.blocked) throw new KeyApiError(403, 'auth_error', 'The API key is blocked.');
  return { kind: 'virtual-key', token };
}

/** GET /key/info for the calling key itself; every other admin request from a virtual key is 403. */
async function selfInfo(request: AdminRequest, method: string, token: string, deps: AdminDeps): Promise<JsonValue> {
  if (method !== 'GET' || request.path !== '/key/info') {
    throw new KeyApiError(403, 'auth_error', 'Only the master key may call the key management API; a key may read its own info with GET /key/info.');
  }
  const asked = request.query.get('key');
  if (asked !== null && tokenFromIdentifier(asked) !== token) {
    // Whether the other key exists is not said either.
    throw new KeyApiError(403, 'auth_error', "You are not allowed to access this key's info: a key may read only its own.", 'key');
  }
  return new KeyManagement(deps).info(token);
}

function decodePathParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KeyApiError(400, 'bad_request_error', 'The path has an invalid percent-encoding.', 'key');
  }
}

function parseBody(body: Buffer): unknown {
  if (body.length > MAX_BODY_BYTES) throw new KeyApiError(413, 'bad_request_error', 'The request body is too large.', 'body');
  const text = body.toString('utf8').trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new KeyApiError(400, 'bad_request_error', 'The request body is not valid JSON.', 'body');
  }
}

/** An error of this surface, in LiteLLM's dialect. */
export function failure(error: KeyApiError): PlainResponse {
  return renderError(error, 'litellm');
}

function json(status: number, body: JsonValue): PlainResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
