/** What every section is given: the fake, the relay's two doors, the key, and the run's size. */
import type { FakeBedrock } from '../../test/support/fake-bedrock.js';
import { FAKE_CREDENTIALS } from '../../test/support/fake-bedrock.js';
import type { BenchKey } from './bench-key.js';
import { MASTER_KEY } from './bench-key.js';
import type { BedrockCall } from './doors.js';
import type { FunctionUrlHandler } from './lambda-invoke.js';
import type { RelayProcess } from './processes.js';

export interface BenchContext {
  readonly quick: boolean;
  readonly key: BenchKey;
  /** The fake Bedrock, in this process (so frame stamps and receive times share one clock). */
  readonly fake: FakeBedrock;
  /** `npm start` in a child process, pointed at `fake`. */
  readonly relay: RelayProcess;
  /** The Lambda entry (functionUrlHandler around appFromEnv), in this process, pointed at `fake`. */
  readonly handler: FunctionUrlHandler;
  /** The DynamoDB the in-process handler keeps keys in (embedded, as the stack's table would be). */
  readonly keyStore: { readonly endpoint: string; readonly tableName: string };
  progress(message: string): void;
}

/** The environment a relay needs to reach a fake at `endpoint` (same for child and in-process). */
export function relayEnv(endpoint: string): Record<string, string> {
  return {
    RELAY_MASTER_KEY: MASTER_KEY,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: FAKE_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: FAKE_CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: FAKE_CREDENTIALS.sessionToken,
    AWS_ENDPOINT_URL_BEDROCK_RUNTIME: endpoint,
    AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: endpoint,
    AWS_ENDPOINT_URL_BEDROCK: endpoint,
    AWS_ENDPOINT_URL_BEDROCK_MANTLE: endpoint,
    // Logs and metrics as the relay writes them by default (a log line and an EMF record per
    // call), unless the run says otherwise: they are part of what a call costs.
    ...(process.env.POWERTOOLS_LOG_LEVEL ? { POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL } : {}),
    ...(process.env.POWERTOOLS_METRICS_DISABLED ? { POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED } : {}),
    // The local server's usage coalescing window (0: a write per call, as before issue 12 and as in Lambda).
    ...(process.env.RELAY_USAGE_COALESCE_MS ? { RELAY_USAGE_COALESCE_MS: process.env.RELAY_USAGE_COALESCE_MS } : {}),
  };
}

export const BENCH_MODEL = 'amazon.nova-micro-v1:0';

const PROMPT = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }], inferenceConfig: { maxTokens: 16 } }));

/** Non-streaming Converse, as the SDK sends it (model ID percent-encoded in the path). */
export function converseCall(modelId = BENCH_MODEL): BedrockCall {
  return { method: 'POST', path: `/model/${encodeURIComponent(modelId)}/converse`, headers: { 'content-type': 'application/json' }, body: PROMPT };
}

export function converseStreamCall(modelId: string): BedrockCall {
  return { method: 'POST', path: `/model/${encodeURIComponent(modelId)}/converse-stream`, headers: { 'content-type': 'application/json' }, body: PROMPT };
}
