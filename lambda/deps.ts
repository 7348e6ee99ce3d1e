import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { createApp, type App, type AppDeps } from './app.js';
import { masterKeyAuthenticator } from './auth/principal.js';
import { masterKeySource } from './auth/master-key.js';
import { loadConfig, type RelayConfig } from './config.js';
import { filterDiscoveryAnswer } from './discovery/filter.js';
import { handleAdminRequest } from './keys/admin.js';
import { createKeyAuthenticator } from './keys/authenticator.js';
import { KeyCache } from './keys/cache.js';
import { KeyStore } from './keys/store.js';
import { isKeyRecord } from './keys/types.js';
import { createLog } from './observability/log.js';
import { OPEN_ADMISSION, type CallContext } from './pipeline.js';
import { POLICY_ADMISSION } from './policy/authorize.js';
import { RouteMatcher } from './routes/match.js';
import { createDynamoClients, type DynamoClients } from './store/dynamo.js';
import { createUpstreamSender } from './upstream/client.js';
import { createSigner } from './upstream/signer.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface AppOverrides {
  /** Credentials for signing Bedrock calls (tests use the fake's); default: the provider chain. */
  readonly credentials?: AwsCredentialIdentityProvider;
  /** DynamoDB clients for the key table (the local server's embedded store); default: the SDK's own resolution. */
  readonly dynamo?: DynamoClients;
  /** The clock policy, budgets and limits read (tests move it). */
  readonly clock?: () => number;
}

/**
 * Builds the app from the environment: the same wiring for Lambda (lambda/handler.ts) and the
 * local server (lambda/local/main.ts). Everything expensive (credentials, connection pools,
 * the key store client, the key cache) is created once and reused across invocations of a
 * warm environment.
 *
 * Without RELAY_KEYS_TABLE only the master key is accepted (no store to read virtual keys
 * from); with it, virtual keys, the admin API and readiness come from the table.
 */
export async function appFromEnv(
  env: Env = process.env,
  overrides: AppOverrides = {},
): Promise<{ app: App; deps: AppDeps; config: RelayConfig }> {
  const config = loadConfig(env);
  const { log } = createLog();
  const masterKey = masterKeySource(env);
  const clock = overrides.clock ?? Date.now;
  // The standard chain: env, SSO, profile, container and instance roles; in Lambda the
  // execution role's session credentials, refreshed before they expire.
  const credentials = overrides.credentials ?? defaultProvider();
  const core = {
    config,
    matcher: new RouteMatcher(),
    sign: createSigner(config.region, credentials),
    send: createUpstreamSender({ timeoutMs: config.upstreamTimeoutMs }),
    clock: () => new Date(clock()),
    log,
  };

  if (!config.keysTable) {
    const deps: AppDeps = { ...core, authenticate: masterKeyAuthenticator(masterKey), admission: OPEN_ADMISSION, ready: async () => true };
    return { app: createApp(deps), deps, config };
  }

  const dynamo = overrides.dynamo ?? createDynamoClients();
  const store = new KeyStore(dynamo.doc, config.keysTable, clock);
  const cache = new KeyCache({ ttlSeconds: config.keyCacheTtlSeconds, clock });
  const onStoreError = (error: unknown) => log('error', 'key store unavailable', { error: (error as Error)?.name });
  const deps: AppDeps = {
    ...core,
    authenticate: createKeyAuthenticator({ store, cache, masterKey, clock, onStoreError }),
    admission: POLICY_ADMISSION,
    filterDiscovery: (call: CallContext, status: number, body: Buffer) =>
      call.match.route.discovery && call.principal.kind === 'virtual-key' && isKeyRecord(call.principal.record)
        ? filterDiscoveryAnswer(call.match.route.discovery, call.principal.record.models, status, body)
        : body,
    admin: async (request) =>
      handleAdminRequest(
        {
          method: request.method,
          path: request.rawPath,
          query: new URLSearchParams(request.rawQueryString),
          headers: request.headers,
          body: request.body,
        },
        { store, cache, masterKey, clock, onError: onStoreError },
      ),
    ready: async () => {
      await store.ping();
      return true;
    },
  };
  return { app: createApp(deps), deps, config };
}
