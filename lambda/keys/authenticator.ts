import { invalidCredential, missingCredential, type Principal } from '../auth/principal.js';
import { RelayError } from '../http/errors.js';
import type { KeyCache } from './cache.js';
import { hashSecret, secretsEqual } from './secrets.js';
import type { KeyLookup } from './store.js';
import { isExpired, systemClock, type Clock, type KeyRecord } from './types.js';

export interface KeyAuthenticatorDeps {
  readonly store: KeyLookup;
  readonly cache?: KeyCache;
  /** The master key; may reject (Secrets Manager unreachable), then only virtual keys work. */
  readonly masterKey: () => Promise<string>;
  readonly clock?: Clock;
  /** Told about store failures (never given a key or secret). */
  readonly onStoreError?: (error: unknown) => void;
}

export type KeyAuthenticator = (credential: string | undefined) => Promise<Principal<KeyRecord>>;

/** Longer than any key or master key we issue; bounds the hashing work a request can ask for. */
const MAX_CREDENTIAL_LENGTH = 512;

/**
 * Master key → {kind: 'master'}; virtual key → its record, looked up by SHA-256 (cached).
 *   unknown, deleted or regenerated-away → 401 UnrecognizedClientException
 *   expired                              → 401 ExpiredTokenException
 *   blocked                              → 403 AccessDeniedException
 *   store unreachable                    → 503 ServiceUnavailableException (fail closed)
 * Expiry is checked against the clock on every call, cached record or not.
 */
export function createKeyAuthenticator(deps: KeyAuthenticatorDeps): KeyAuthenticator {
  const clock = deps.clock ?? systemClock;
  return async (credential) => {
    if (!credential) throw missingCredential();
    if (credential.length > MAX_CREDENTIAL_LENGTH) throw invalidCredential();

    let masterUnavailable = false;
    try {
      if (secretsEqual(credential, await deps.masterKey())) return { kind: 'master' };
    } catch {
      masterUnavailable = true;
    }

    const token = hashSecret(credential);
    let record: KeyRecord | undefined;
    try {
      const lookup = () => deps.store.getByHash(token);
      record = deps.cache ? await deps.cache.getOrLoad(token, lookup) : await lookup();
    } catch (error) {
      deps.onStoreError?.(error);
      throw storeUnavailable();
    }
    if (!record) {
      // Without the master key we cannot tell "wrong key" from "the master key": do not say 401.
      if (masterUnavailable) throw storeUnavailable();
      throw invalidCredential();
    }
    if (isExpired(record, clock())) {
      throw new RelayError(401, 'ExpiredTokenException', `The API key expired at ${record.expires}.`);
    }
    if (record.blocked) throw new RelayError(403, 'AccessDeniedException', 'The API key is blocked.');
    return { kind: 'virtual-key', token, record };
  };
}

function storeUnavailable(): RelayError {
  return new RelayError(503, 'ServiceUnavailableException', 'The key store is unavailable, so the API key cannot be checked. Nothing was sent to Bedrock; retry shortly.', {
    'retry-after': '1',
  });
}
