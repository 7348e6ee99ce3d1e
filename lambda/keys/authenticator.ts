import { invalidCredential, missingCredential, type Principal } from '../auth/principal.js';
import {
  checkScope,
  hasPresignedQuery,
  isSigV4Request,
  parseAuthorization,
  presignedNotAccepted,
  unrecognizedAccessKey,
  verifySignature,
  type WireRequest,
} from '../auth/sigv4.js';
import { RelayError } from '../http/errors.js';
import { isAccessKeyId, type AwsCredentialDeriver, type AwsCredentialPair } from './aws-credentials.js';
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
  /** SigV4 in: derives the pairs' secrets. Absent: SigV4-signed requests are refused. */
  readonly awsCredentials?: AwsCredentialDeriver;
  /** The regions a SigV4 credential scope may name (the relay's Bedrock region). */
  readonly regions?: readonly string[];
}

export type KeyAuthenticator = (credential: string | undefined, request?: WireRequest) => Promise<Principal<KeyRecord>>;

/** Longer than any key or master key we issue; bounds the hashing work a request can ask for. */
const MAX_CREDENTIAL_LENGTH = 512;
/** An access key id is bound to one token for life, so a found one may be remembered; unknown ones briefly (like KeyCache's negatives). */
const ACCESS_KEY_NEGATIVE_TTL_MS = 5_000;
const ACCESS_KEY_CACHE_ENTRIES = 10_000;

/**
 * Master key → {kind: 'master'}; virtual key → its record, looked up by SHA-256 (cached).
 *   unknown, deleted or regenerated-away → 401 UnrecognizedClientException
 *   expired                              → 401 ExpiredTokenException
 *   blocked                              → 403 AccessDeniedException
 *   store unreachable                    → 503 ServiceUnavailableException (fail closed)
 * Expiry is checked against the clock on every call, cached record or not.
 *
 * A request signed with SigV4 (Authorization: AWS4-HMAC-SHA256 …) is verified instead with the
 * key's AWS pair (lambda/keys/aws-credentials.ts) and resolves to the same record, so the same
 * checks follow; its failures are AWS's: 400 IncompleteSignatureException (malformed), 403
 * UnrecognizedClientException (unknown access key id), 403 InvalidSignatureException (wrong
 * secret, altered request, stale date, wrong scope).
 */
export function createKeyAuthenticator(deps: KeyAuthenticatorDeps): KeyAuthenticator {
  const clock = deps.clock ?? systemClock;
  const accessKeys = new Map<string, { readonly token?: string; readonly until: number }>();

  const loadRecord = async (token: string): Promise<KeyRecord | undefined> => {
    try {
      const lookup = () => deps.store.getByHash(token);
      return deps.cache ? await deps.cache.getOrLoad(token, lookup) : await lookup();
    } catch (error) {
      deps.onStoreError?.(error);
      throw storeUnavailable();
    }
  };

  const admit = (token: string, record: KeyRecord): Principal<KeyRecord> => {
    if (isExpired(record, clock())) {
      throw new RelayError(401, 'ExpiredTokenException', `The API key expired at ${record.expires}.`);
    }
    if (record.blocked) throw new RelayError(403, 'AccessDeniedException', 'The API key is blocked.');
    return { kind: 'virtual-key', token, record };
  };

  const tokenOfAccessKey = async (accessKeyId: string): Promise<string | undefined> => {
    const now = clock();
    const cached = accessKeys.get(accessKeyId);
    if (cached && (cached.token !== undefined || cached.until > now)) return cached.token;
    let token: string | undefined;
    try {
      token = await deps.store.getTokenByAccessKeyId(accessKeyId);
    } catch (error) {
      deps.onStoreError?.(error);
      throw storeUnavailable();
    }
    accessKeys.delete(accessKeyId);
    accessKeys.set(accessKeyId, { token, until: now + ACCESS_KEY_NEGATIVE_TTL_MS });
    if (accessKeys.size > ACCESS_KEY_CACHE_ENTRIES) accessKeys.delete(accessKeys.keys().next().value as string);
    return token;
  };

  const sigV4 = async (request: WireRequest): Promise<Principal<KeyRecord>> => {
    const auth = parseAuthorization(request.headers);
    if (request.headers['x-amz-security-token'] !== undefined) {
      // A lingering AWS_SESSION_TOKEN in the client's environment is the usual cause.
      throw new RelayError(
        403,
        'UnrecognizedClientException',
        'The security token included in the request is invalid: relay credentials have no session token (unset AWS_SESSION_TOKEN).',
      );
    }
    checkScope(auth, { services: signingNamesFor(request.rawPath), regions: deps.regions ?? ['us-east-1'], now: clock() });
    const deriver = deps.awsCredentials;
    if (!deriver)
      throw new RelayError(
        403,
        'UnrecognizedClientException',
        'This relay accepts no AWS credentials (it has no SigV4 signing secret configured); use "Authorization: Bearer <key>".',
      );

    let masterKey: string | undefined;
    try {
      masterKey = await deps.masterKey();
    } catch {
      // Virtual keys can still be verified; only "unknown access key id" becomes undecidable.
    }
    const masterUnavailable = masterKey === undefined;
    // A signing secret that cannot be read rejects here with its source's 503: nothing can be verified.
    const master: AwsCredentialPair | undefined = masterKey === undefined ? undefined : await deriver.masterPair(masterKey);
    if (master && secretsEqual(auth.accessKeyId, master.aws_access_key_id)) {
      verifySignature(request, auth, master.aws_secret_access_key);
      return { kind: 'master' };
    }

    const token = isAccessKeyId(auth.accessKeyId) ? await tokenOfAccessKey(auth.accessKeyId) : undefined;
    const record = token ? await loadRecord(token) : undefined;
    if (!token || !record) {
      if (masterUnavailable) throw storeUnavailable();
      throw unrecognizedAccessKey();
    }
    verifySignature(request, auth, await deriver.secretFor(token));
    // Checked only after the signature, so nobody without the secret learns a key's state.
    return admit(token, record);
  };

  return async (credential, request) => {
    // Presigned parameters would otherwise ride along in the query relayed to Bedrock.
    if (request && hasPresignedQuery(request.rawQueryString)) throw presignedNotAccepted();
    if (request && isSigV4Request(request.headers)) return sigV4(request);

    if (!credential) throw missingCredential();
    if (credential.length > MAX_CREDENTIAL_LENGTH) throw invalidCredential();

    let masterUnavailable = false;
    try {
      if (secretsEqual(credential, await deps.masterKey())) return { kind: 'master' };
    } catch {
      masterUnavailable = true;
    }

    const token = hashSecret(credential);
    const record = await loadRecord(token);
    if (!record) {
      // Without the master key we cannot tell "wrong key" from "the master key": do not say 401.
      if (masterUnavailable) throw storeUnavailable();
      throw invalidCredential();
    }
    return admit(token, record);
  };
}

/** A lookup with no keys in it: the master-key-only relay (no key table) authenticates through the same code. */
export const NO_KEYS: KeyLookup = {
  getByHash: async () => undefined,
  getTokenByAccessKeyId: async () => undefined,
};

/** bedrock-mantle is signed as `bedrock-mantle` by its clients; everything else the relay serves as `bedrock`. */
function signingNamesFor(rawPath: string): readonly string[] {
  return rawPath === '/bedrock-mantle' || rawPath.startsWith('/bedrock-mantle/') ? ['bedrock-mantle'] : ['bedrock'];
}

function storeUnavailable(): RelayError {
  return new RelayError(
    503,
    'ServiceUnavailableException',
    'The key store is unavailable, so the API key cannot be checked. Nothing was sent to Bedrock; retry shortly.',
    {
      'retry-after': '1',
    },
  );
}
