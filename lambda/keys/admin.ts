import { credentialFrom, secretsEqual } from '../auth/principal.js';
import { KeyApiError, StoreUnavailableError } from './errors.js';
import { KeyManagement, type KeyManagementDeps } from './management.js';
import { hashSecret, tokenFromIdentifier } from './secrets.js';
import { isExpired, systemClock, type JsonValue, type KeyRecord } from './types.js';

/** What the app hands over for a /key/* request (lower-cased header names). */
export interface AdminRequest {
  readonly method: string;
  /** The path as received, e.g. `/key/generate` or `/key/<token>/regenerate`. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export interface AdminResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface AdminDeps extends KeyManagementDeps {
  /** The master key (constant-time compared); only it may call the admin API (a virtual key may read its own info). */
  readonly masterKey: () => Promise<string>;
  /** Extra admin routes (issue 4 adds GET /key/usage here). Tried before the built-in ones. */
  readonly extraRoutes?: readonly AdminRoute[];
  /** Told about store failures and defects (never given a secret). */
  readonly onError?: (error: unknown) => void;
}

export interface AdminRoute {
  readonly method: 'GET' | 'POST';
  /** Matched against the whole path; capture group 1, if any, is passed as `pathParam` (decoded). */
  readonly path: RegExp;
  readonly handle: (context: AdminRouteContext) => Promise<JsonValue>;
}

export interface AdminRouteContext {
  readonly management: KeyManagement;
  readonly request: AdminRequest;
  /** The parsed JSON body (undefined when empty). */
  readonly body: unknown;
  readonly pathParam?: string;
}

const MAX_BODY_BYTES = 1024 * 1024;

const BUILT_IN_ROUTES: readonly AdminRoute[] = [
  { method: 'POST', path: /^\/key\/generate$/, handle: ({ management, body }) => management.generate(body ?? {}) },
  { method: 'GET', path: /^\/key\/info$/, handle: ({ management, request }) => management.info(request.query.get('key')) },
  { method: 'POST', path: /^\/key\/update$/, handle: ({ management, body }) => management.update(body ?? {}) },
  { method: 'POST', path: /^\/key\/delete$/, handle: ({ management, body }) => management.delete(body ?? {}) },
  { method: 'GET', path: /^\/key\/list$/, handle: ({ management, request }) => management.list(request.query) },
  { method: 'POST', path: /^\/key\/regenerate$/, handle: ({ management, body }) => management.regenerate(body) },
  { method: 'POST', path: /^\/key\/(.+)\/regenerate$/, handle: ({ management, body, pathParam }) => management.regenerate(body, pathParam) },
  { method: 'POST', path: /^\/key\/block$/, handle: ({ management, body }) => management.setBlocked(body ?? {}, true) },
  { method: 'POST', path: /^\/key\/unblock$/, handle: ({ management, body }) => management.setBlocked(body ?? {}, false) },
];

/**
 * The LiteLLM-compatible key management API. Authenticates the caller itself (from
 * `Authorization: Bearer` or `x-api-key`), so the app only forwards the request: the master key
 * may do everything; a valid virtual key may read its own /key/info and gets 403 for the rest
 * (as in LiteLLM); anything else is 401. Errors use LiteLLM's shape:
 * {"error": {"message", "type", "param", "code": "<status>"}}.
 */
export async function handleAdminRequest(request: AdminRequest, deps: AdminDeps): Promise<AdminResponse> {
  try {
    const caller = await authenticateCaller(request, deps);
    const method = request.method.toUpperCase();
    // A virtual key may read its own info (LiteLLM's GET /key/info with no key, or its own) and
    // nothing else; it is told no more than that, not even which other paths exist.
    if (caller.kind === 'virtual-key') return json(200, await selfInfo(request, method, caller.token, deps));

    const routes = [...(deps.extraRoutes ?? []), ...BUILT_IN_ROUTES];
    let matched: { route: AdminRoute; pathParam?: string } | undefined;
    let otherMethod = false;
    for (const route of routes) {
      const match = route.path.exec(request.path);
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
    const result = await matched.route.handle({ management, request, body, pathParam: matched.pathParam });
    return json(200, result);
  } catch (error) {
    return renderAdminError(error, deps.onError);
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
  if (!credential) throw new KeyApiError(401, 'auth_error', 'Authentication Error: the key management API needs the master key ("Authorization: Bearer <master key>").');
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
  if (isExpired(record, (deps.clock ?? systemClock)())) throw new KeyApiError(401, 'auth_error', `Authentication Error: the API key expired at ${record.expires}.`);
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

export function renderAdminError(error: unknown, onError?: (error: unknown) => void): AdminResponse {
  if (error instanceof KeyApiError) {
    return json(error.status, { error: { message: error.message, type: error.type, param: error.param, code: String(error.status) } });
  }
  onError?.(error);
  if (error instanceof StoreUnavailableError) {
    return json(503, {
      error: { message: 'The key store is unavailable; nothing was changed. Retry shortly.', type: 'service_unavailable', param: null, code: '503' },
    });
  }
  return json(500, { error: { message: 'The key management API failed.', type: 'internal_server_error', param: null, code: '500' } });
}

function json(status: number, body: JsonValue): AdminResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
