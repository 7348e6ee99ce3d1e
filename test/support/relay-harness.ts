/**
 * Starts the relay exactly as `npm start` does (the Lambda handler behind the Function URL
 * emulator), pointed at a fake Bedrock, for integration tests and benchmarks.
 */
import { appFromEnv, type AppOverrides } from '../../lambda/deps.js';
import { installAwslambdaGlobal, startFunctionUrlEmulator, type EmulatorOptions } from '../../lambda/local/function-url-emulator.js';
import { functionUrlHandler } from '../../lambda/runtime/function-url.js';
import type { AppDeps } from '../../lambda/app.js';
import { FAKE_CREDENTIALS, startFakeBedrock, type FakeBedrock } from './fake-bedrock.js';

export const TEST_MASTER_KEY = 'sk-test-master-key-0123456789abcdef';

export interface RelayUnderTest {
  readonly url: string;
  readonly fake: FakeBedrock;
  readonly deps: AppDeps;
  /**
   * Resolves once no invocation of this relay is running. Lambda ends an invocation only after
   * the call is settled (lambda/relay.ts awaits the ledger, tpm tokens and lease release before
   * the handler returns, and the per-call log line is written before that too), so this is the
   * moment the store holds everything a finished call writes. The client can see its last byte
   * earlier: tests wait on this, not on a log line, before reading what a call recorded.
   */
  idle(timeoutMs?: number): Promise<void>;
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
  const invocations = trackInvocations(functionUrlHandler(async () => built.app));
  const server = await startFunctionUrlEmulator({ handler: invocations.handler });
  return {
    url: server.url,
    fake,
    deps: built.deps,
    idle: invocations.idle,
    close: async () => {
      await server.close();
      if (ownFake) await fake.close();
    },
  };
}

type Handler = EmulatorOptions['handler'];

/** The handler, with the invocations still running counted (see RelayUnderTest.idle). */
export function trackInvocations(inner: Handler): { handler: Handler; idle(timeoutMs?: number): Promise<void> } {
  const running = new Set<Promise<unknown>>();
  const handler: Handler = (event, stream, context) => {
    const invocation = Promise.resolve(inner(event, stream, context));
    running.add(invocation);
    const done = () => void running.delete(invocation);
    invocation.then(done, done);
    return invocation;
  };
  const idle = async (timeoutMs = 60_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    // Loop: an invocation may start while we wait for the others (a test's next request).
    while (running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${running.size} invocation(s) still running after ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...running]), new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
    }
  };
  return { handler, idle };
}
