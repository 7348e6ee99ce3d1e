/**
 * The local server as a value: the relay's Function URL handler behind the emulator, with the
 * embedded DynamoDB (dynalite) as its key store unless RELAY_KEYS_TABLE names a real table.
 * main.ts (`npm start`) and scripts/demo.ts (`npm run demo`) both start it through here.
 */
import { CoalescingLedger, DEFAULT_COALESCE_WINDOW_MS } from '../accounting/coalescing-ledger.js';
import { appFromEnv, type AppOverrides } from '../deps.js';
import { createLog } from '../observability/log.js';
import { functionUrlHandler } from '../runtime/function-url.js';
import { startEmbeddedDynamo, writeEndpointFile, removeEndpointFile, type EmbeddedDynamo } from '../store/embedded.js';
import { installAwslambdaGlobal, startFunctionUrlEmulator, type RunningEmulator } from './function-url-emulator.js';
import { limitsFromEnv } from './limits.js';
import { relayScreen, renderRelayRefusal } from './screen.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface LocalServerOptions {
  /** The relay's environment; RELAY_MASTER_KEY must already be resolved into it. */
  readonly env: Env;
  /** The embedded store's folder; undefined: an in-memory store (the demo). Ignored with RELAY_KEYS_TABLE. */
  readonly dataDir: string | undefined;
  readonly overrides?: AppOverrides;
}

export interface LocalServer {
  readonly emulator: RunningEmulator;
  readonly url: string;
  /** Set when the key store is the embedded dynalite. */
  readonly embedded?: EmbeddedDynamo;
  readonly keysTable: string;
  /** The coalescing usage recorder, once the app is built (absent with RELAY_USAGE_COALESCE_MS=0). */
  readonly usage: () => CoalescingLedger | undefined;
  /** Graceful: stop accepting, let calls in flight finish (usage recorded), then close the store. */
  stop(graceMs?: number): Promise<{ readonly unfinished: number }>;
}

export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const env: Record<string, string | undefined> = { ...options.env };
  // Read first: a malformed limit stops the server before it opens a store.
  const limits = limitsFromEnv(env);
  const coalesceMs = coalesceWindowFromEnv(env);
  let embedded: EmbeddedDynamo | undefined;
  const overrides: { -readonly [K in keyof AppOverrides]: AppOverrides[K] } = { ...options.overrides };
  if (!env.RELAY_KEYS_TABLE) {
    embedded = await startEmbeddedDynamo(options.dataDir !== undefined ? { dataDir: options.dataDir } : {});
    env.RELAY_KEYS_TABLE = embedded.tableName;
    overrides.dynamo = embedded.clients;
  }
  // Usage writes of calls without a reservation, summed per key, day and model over a short
  // window (lambda/accounting/coalescing-ledger.ts); 0 writes each call on its own, as Lambda does.
  let usage: CoalescingLedger | undefined;
  if (coalesceMs > 0 && !overrides.accounting?.usageRecorder) {
    overrides.accounting = {
      ...overrides.accounting,
      usageRecorder: (ledger, deps) => (usage = new CoalescingLedger(ledger, deps, { windowMs: coalesceMs })),
    };
  }
  installAwslambdaGlobal();
  const { log } = createLog(env.POWERTOOLS_SERVICE_NAME || 'bedrock-relay', env.POWERTOOLS_LOG_LEVEL);
  const handler = functionUrlHandler(async () => (await appFromEnv(env, overrides)).app);
  let emulator: RunningEmulator;
  try {
    emulator = await startFunctionUrlEmulator({
      handler,
      port: Number(env.PORT || 4000),
      host: env.HOST || '127.0.0.1',
      limits,
      screen: relayScreen({ masterKey: env.RELAY_MASTER_KEY || env.LITELLM_MASTER_KEY || undefined }),
      renderRefusal: renderRelayRefusal,
      log,
    });
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  // The CLI (`npx relay keys …`) finds the running store and this server through this file, and
  // makes key changes through the admin API so that they apply here at once (lambda/cli/local-relay.ts).
  if (embedded && options.dataDir !== undefined) await writeEndpointFile(options.dataDir, embedded, emulator.url);
  let stopped: Promise<{ unfinished: number }> | undefined;
  return {
    emulator,
    url: emulator.url,
    embedded,
    keysTable: env.RELAY_KEYS_TABLE,
    usage: () => usage,
    stop: (graceMs) =>
      (stopped ??= (async () => {
        const result = await emulator.shutdown(graceMs);
        // Whatever is still coalescing (calls cut at the deadline) is written before the store closes.
        await usage?.close();
        if (embedded) {
          if (options.dataDir !== undefined) await removeEndpointFile(options.dataDir);
          await embedded.stop();
        }
        return result;
      })()),
  };
}

/** RELAY_USAGE_COALESCE_MS: the coalescing window for usage writes; 0 switches coalescing off. */
export function coalesceWindowFromEnv(env: Env): number {
  const value = env.RELAY_USAGE_COALESCE_MS;
  if (value === undefined || value === '') return DEFAULT_COALESCE_WINDOW_MS;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > 1_000)
    throw new Error(`RELAY_USAGE_COALESCE_MS must be a whole number of milliseconds from 0 to 1000, got "${value}"`);
  return parsed;
}
