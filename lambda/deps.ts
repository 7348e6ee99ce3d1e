import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { createApp, type App, type AppDeps } from './app.js';
import { masterKeyAuthenticator } from './auth/principal.js';
import { masterKeySource } from './auth/master-key.js';
import { loadConfig, type RelayConfig } from './config.js';
import { createLog } from './observability/log.js';
import { OPEN_ADMISSION } from './pipeline.js';
import { RouteMatcher } from './routes/match.js';
import { createUpstreamSender } from './upstream/client.js';
import { createSigner } from './upstream/signer.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds the app from the environment: the same wiring for Lambda (lambda/handler.ts) and the
 * local server (lambda/local/main.ts). Everything expensive (credentials, connection pools,
 * the key store client) is created once and reused across invocations of a warm environment.
 */
export interface AppOverrides {
  /** Credentials for signing Bedrock calls (tests use the fake's); default: the provider chain. */
  readonly credentials?: AwsCredentialIdentityProvider;
}

export async function appFromEnv(
  env: Env = process.env,
  overrides: AppOverrides = {},
): Promise<{ app: App; deps: AppDeps; config: RelayConfig }> {
  const config = loadConfig(env);
  const { log } = createLog();
  const masterKey = masterKeySource(env);
  // The standard chain: env, SSO, profile, container and instance roles; in Lambda the
  // execution role's session credentials, refreshed before they expire.
  const credentials = overrides.credentials ?? defaultProvider();
  const deps: AppDeps = {
    config,
    matcher: new RouteMatcher(),
    authenticate: masterKeyAuthenticator(masterKey),
    admission: OPEN_ADMISSION,
    sign: createSigner(config.region, credentials),
    send: createUpstreamSender({ timeoutMs: config.upstreamTimeoutMs }),
    ready: async () => true,
    log,
  };
  return { app: createApp(deps), deps, config };
}
