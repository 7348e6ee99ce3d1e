/**
 * Starts the relay exactly as `npm start` does (the Lambda handler behind the Function URL
 * emulator), pointed at a fake Bedrock, for integration tests and benchmarks.
 */
import { appFromEnv, type AppOverrides } from '../../lambda/deps.js';
import { installAwslambdaGlobal, startFunctionUrlEmulator } from '../../lambda/local/function-url-emulator.js';
import { functionUrlHandler } from '../../lambda/runtime/function-url.js';
import type { AppDeps } from '../../lambda/app.js';
import { FAKE_CREDENTIALS, startFakeBedrock, type FakeBedrock } from './fake-bedrock.js';

export const TEST_MASTER_KEY = 'sk-test-master-key-0123456789abcdef';

export interface RelayUnderTest {
  readonly url: string;
  readonly fake: FakeBedrock;
  readonly deps: AppDeps;
  close(): Promise<void>;
}

export interface RelayOptions {
  readonly env?: Record<string, string>;
  readonly fake?: FakeBedrock;
  readonly overrides?: AppOverrides;
}

export async function startRelay(options: RelayOptions = {}): Promise<RelayUnderTest> {
  installAwslambdaGlobal();
  const ownFake = !options.fake;
  const fake = options.fake ?? (await startFakeBedrock());
  const env: Record<string, string> = {
    RELAY_MASTER_KEY: TEST_MASTER_KEY,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: fake.url,
    AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: fake.url,
    AWS_ENDPOINT_URL_BEDROCK: fake.url,
    AWS_ENDPOINT_URL_BEDROCK_MANTLE: fake.url,
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    // EMF lines would flood the test output; tests that check metrics turn them back on.
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...options.env,
  };
  const built = await appFromEnv(env, { credentials: async () => ({ ...FAKE_CREDENTIALS }), ...options.overrides });
  const server = await startFunctionUrlEmulator({ handler: functionUrlHandler(async () => built.app) });
  return {
    url: server.url,
    fake,
    deps: built.deps,
    close: async () => {
      await server.close();
      if (ownFake) await fake.close();
    },
  };
}
