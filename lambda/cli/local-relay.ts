/**
 * Key changes the CLI makes while `npm start` runs on the same data dir go through that relay's
 * admin API (the requests a LiteLLM client sends), authenticated with the master key. The relay
 * then applies them and drops its cached copy of the key at once, exactly as for any HTTP admin
 * call; written to the store behind its back, they would reach it only when its key cache
 * expires (RELAY_KEY_CACHE_TTL_SECONDS, 30 s by default).
 *
 * The relay publishes its URL in the data dir's endpoint file (lambda/local/main.ts). The master
 * key comes from RELAY_MASTER_KEY / LITELLM_MASTER_KEY or the data dir's master-key file, as the
 * local server resolves it. It is only ever sent to a loopback address. When the relay cannot
 * be used (no master key, not accepted, not reachable), nothing has been changed yet: the CLI
 * writes the store directly, as before, and says when the relay will see the change.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyApiError, type KeyErrorType } from '../http/errors.js';
import type { KeyManagement } from '../keys/management.js';
import type { JsonObject } from '../keys/types.js';
import { CliError, EXIT, type CliIo } from './io.js';

/** The key operations the CLI needs, with KeyManagement's signatures. */
export type KeyAdmin = Pick<KeyManagement, 'generate' | 'info' | 'update' | 'delete' | 'list' | 'regenerate' | 'setBlocked'>;

export interface LocalRelay {
  /** The relay's base URL, on a loopback address. */
  readonly url: string;
  readonly masterKey: string | undefined;
}

/** Why a call was not made at all (so falling back to the store cannot apply a change twice). */
class NotSent extends Error {}

const REQUEST_TIMEOUT_MS = 30_000;

/** The running relay's URL if it is one the master key may be sent to. */
export function loopbackUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:') return undefined;
  // A server bound to every interface is reached on the loopback one.
  const host = { '0.0.0.0': '127.0.0.1', '[::]': '[::1]' }[url.hostname] ?? url.hostname;
  if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) return undefined;
  return `http://${host}:${url.port || '80'}`;
}

/** The master key the local server uses for this data dir, if the CLI can know it. */
export async function localMasterKey(env: CliIo['env'], dataDir: string): Promise<string | undefined> {
  const fromEnv = env.RELAY_MASTER_KEY || env.LITELLM_MASTER_KEY;
  if (fromEnv) return fromEnv;
  try {
    return (await readFile(join(dataDir, 'master-key'), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Key operations through the running relay, each falling back to `direct` (the store) when the
 * relay could not be asked. The fallback is noted once on stderr for changes.
 */
export function throughRelay(relay: LocalRelay, direct: KeyAdmin, io: CliIo): KeyAdmin {
  let noted = false;
  const attempt = async (change: boolean, viaRelay: () => Promise<JsonObject>, viaStore: () => Promise<JsonObject>): Promise<JsonObject> => {
    try {
      return await viaRelay();
    } catch (error) {
      if (!(error instanceof NotSent)) throw error;
      if (change && !noted) {
        noted = true;
        io.stderr(
          `note: ${error.message}, so the change is written to its store directly; that relay sees it when its key cache expires ` +
            `(RELAY_KEY_CACHE_TTL_SECONDS, 30 s by default). Set RELAY_MASTER_KEY to its master key for changes to apply at once.\n`,
        );
      }
      return viaStore();
    }
  };
  const send = (method: 'GET' | 'POST', path: string, body?: unknown) => adminCall(relay, method, path, body);
  return {
    generate: (body) =>
      attempt(
        true,
        () => send('POST', '/key/generate', body ?? {}),
        () => direct.generate(body),
      ),
    info: (key) =>
      attempt(
        false,
        () => send('GET', `/key/info?${new URLSearchParams({ key: key ?? '' })}`),
        () => direct.info(key),
      ),
    update: (body) =>
      attempt(
        true,
        () => send('POST', '/key/update', body),
        () => direct.update(body),
      ),
    delete: (body) =>
      attempt(
        true,
        () => send('POST', '/key/delete', body),
        () => direct.delete(body),
      ),
    list: (query) =>
      attempt(
        false,
        () => send('GET', `/key/list?${query}`),
        () => direct.list(query),
      ),
    regenerate: (body, pathKey) =>
      attempt(
        true,
        () => send('POST', pathKey === undefined ? '/key/regenerate' : `/key/${encodeURIComponent(pathKey)}/regenerate`, body ?? {}),
        () => direct.regenerate(body, pathKey),
      ),
    setBlocked: (body, blocked) =>
      attempt(
        true,
        () => send('POST', blocked ? '/key/block' : '/key/unblock', body),
        () => direct.setBlocked(body, blocked),
      ),
  };
}

async function adminCall(relay: LocalRelay, method: 'GET' | 'POST', path: string, body?: unknown): Promise<JsonObject> {
  if (!relay.masterKey) throw new NotSent(`the CLI has no master key for the running relay at ${relay.url}`);
  let response: Response;
  try {
    response = await fetch(`${relay.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${relay.masterKey}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    // Refused before anything was sent: the relay is gone (its endpoint file outlived it).
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'ECONNREFUSED') throw new NotSent(`the relay at ${relay.url} is not running`);
    // Sent, maybe applied, no answer: not safe to do it again behind the relay's back.
    throw new CliError(
      `The running relay at ${relay.url} did not answer (${(error as Error).name}); check with "relay keys info" before retrying.`,
      EXIT.unavailable,
    );
  }
  const text = await response.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new CliError(`The running relay at ${relay.url} answered ${response.status} with something other than JSON.`, EXIT.unavailable);
  }
  if (response.ok) return answer as JsonObject;
  const error = (answer as { error?: { message?: unknown; type?: unknown; param?: unknown } }).error ?? {};
  const message = typeof error.message === 'string' ? error.message : `HTTP ${response.status}`;
  // 401/403: the master key the CLI found is not this relay's; nothing was done.
  if (response.status === 401 || response.status === 403) throw new NotSent(`the running relay at ${relay.url} did not accept the master key the CLI found`);
  if (response.status >= 500) throw new CliError(`The running relay at ${relay.url} could not do it: ${message}`, EXIT.unavailable);
  throw new KeyApiError(
    response.status,
    String(error.type ?? 'bad_request_error') as KeyErrorType,
    message,
    typeof error.param === 'string' ? error.param : null,
  );
}
