import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { createApp, type App, type AppDeps } from './app.js';
import { masterKeySource } from './auth/master-key.js';
import { signingSecretSource } from './auth/signing-secret.js';
import { loadConfig, type RelayConfig } from './config.js';
import { filterDiscoveryAnswer } from './discovery/filter.js';
import { AwsCredentialDeriver } from './keys/aws-credentials.js';
import { NO_KEYS, createKeyAuthenticator } from './keys/authenticator.js';
import { KeyCache } from './keys/cache.js';
import { KeyStore } from './keys/store.js';
import { isKeyRecord } from './keys/types.js';
import { createAccountingAdmission } from './accounting/admission.js';
import { Budgets } from './accounting/budget.js';
import { worstCase } from './accounting/reservation.js';
import { pricedTierOf } from './policy/service-tier.js';
import { Ledger, type LedgerDeps } from './accounting/ledger.js';
import { Leases, RateWindows } from './accounting/limits.js';
import { UsageReports } from './accounting/report.js';
import type { RetryPolicy } from './accounting/retry.js';
import { CallTelemetry } from './accounting/telemetry.js';
import { ENV, LOG_MESSAGES, METRICS_NAMESPACE, SERVICE_NAME, envFlag } from './contract.js';
import { createMeter, prepareRequestBody } from './metering/index.js';
import { createLog, type LogFn } from './observability/log.js';
import type { CallContext } from './pipeline.js';
import { guardAsyncOutput } from './policy/async-output.js';
import { loadPriceBook } from './pricing/config.js';
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
  /** Where accounting logs (the per-call line, ledger-write-failed records) and EMF metrics go (tests capture them); default: Powertools' stdout. */
  readonly telemetry?: { readonly log?: LogFn; readonly writeMetrics?: (line: string) => void };
  /** Accounting tuning for tests: the ledger's retry policy and parallel-request lease timing. */
  readonly accounting?: {
    readonly ledgerRetry?: RetryPolicy;
    readonly leaseTtlMs?: number;
    readonly leaseRenewEveryMs?: number;
    /**
     * What records each call's usage, given the Ledger: the local server coalesces plain ADDs
     * (lambda/accounting/coalescing-ledger.ts); default (Lambda): the Ledger, one write per call.
     */
    readonly usageRecorder?: (ledger: Ledger, deps: LedgerDeps) => Pick<Ledger, 'record'>;
  };
}

/**
 * Builds the app from the environment: the same wiring for Lambda (lambda/handler.ts) and the
 * local server (lambda/local/main.ts). Everything expensive (credentials, connection pools,
 * the key store client, the key cache) is created once and reused across invocations of a
 * warm environment.
 *
 * Without RELAY_KEYS_TABLE only the master key is accepted (no store to read virtual keys
 * from); with it, virtual keys, the admin API and readiness come from the table, and so do
 * usage, budgets and limits (lambda/accounting). Every relayed call is metered (lambda/metering),
 * priced (lambda/pricing) and reported in metrics and one log line (accounting/telemetry.ts).
 */
export async function appFromEnv(env: Env = process.env, overrides: AppOverrides = {}): Promise<{ app: App; deps: AppDeps; config: RelayConfig }> {
  const config = loadConfig(env);
  const serviceName = env[ENV.serviceName] || SERVICE_NAME;
  const { log } = createLog(serviceName, env.POWERTOOLS_LOG_LEVEL);
  const masterKey = masterKeySource(env);
  // SigV4 in: every key's AWS pair is derived from this server-held secret (unset: bearer only).
  const signingSecret = signingSecretSource(env);
  const awsCredentials = signingSecret ? new AwsCredentialDeriver(signingSecret) : undefined;
  const sigV4 = { awsCredentials, regions: [config.region] };
  const clock = overrides.clock ?? Date.now;
  // The standard chain: env, SSO, profile, container and instance roles; in Lambda the
  // execution role's session credentials, refreshed before they expire.
  const credentials = overrides.credentials ?? defaultProvider();
  // Built now, from this env, so that a bad RELAY_PRICES_FILE / RELAY_PRICES_JSON stops the relay at start.
  const prices = loadPriceBook(env);
  const accountingLog = overrides.telemetry?.log ?? log;
  const telemetry = new CallTelemetry({
    namespace: env[ENV.metricsNamespace] || METRICS_NAMESPACE,
    serviceName,
    log: accountingLog,
    writeMetrics: overrides.telemetry?.writeMetrics,
    metricsDisabled: envFlag(env[ENV.metricsDisabled]),
    perKeyMetrics: config.perKeyMetrics,
  });
  const core = {
    config,
    matcher: new RouteMatcher(),
    sign: createSigner(config.region, credentials),
    send: createUpstreamSender({ timeoutMs: config.upstreamTimeoutMs }),
    meter: createMeter,
    // Asks Bedrock for usage on streamed chat completions that did not (lambda/metering/include-usage.ts).
    prepareBody: prepareRequestBody,
    log,
  };
  const price = prices.priceCall.bind(prices);
  const finish = (deps: AppDeps) => {
    const guarded = { ...deps, admission: guardAsyncOutput(deps.admission, config.asyncOutputBuckets), telemetry };
    return { app: createApp(guarded), deps: guarded, config };
  };

  if (!config.keysTable) {
    // Master key only: calls are metered and priced for metrics and the log line; nothing is stored.
    const admission = createAccountingAdmission({ price, clock, log: accountingLog });
    return finish({
      ...core,
      authenticate: createKeyAuthenticator({ store: NO_KEYS, masterKey, clock, ...sigV4 }),
      admission,
      surface: { ready: async () => true },
    });
  }

  const dynamo = overrides.dynamo ?? createDynamoClients();
  const table = config.keysTable;
  const store = new KeyStore(dynamo.doc, table, clock);
  const cache = new KeyCache({ ttlSeconds: config.keyCacheTtlSeconds, clock });
  const onStoreError = (error: unknown) => log('error', LOG_MESSAGES.keyStoreUnavailable, { error: (error as Error)?.name });
  const limitDeps = { doc: dynamo.doc, table, clock, log: accountingLog };
  const windows = new RateWindows(limitDeps);
  const leases = new Leases(limitDeps, {
    ttlMs: overrides.accounting?.leaseTtlMs ?? seconds(env.RELAY_LEASE_TTL_SECONDS, 'RELAY_LEASE_TTL_SECONDS'),
    renewEveryMs: overrides.accounting?.leaseRenewEveryMs,
  });
  const ledgerDeps: LedgerDeps = { doc: dynamo.doc, table, log: accountingLog, clock, retry: overrides.accounting?.ledgerRetry };
  const ledger = new Ledger(ledgerDeps);
  const usageRecorder = overrides.accounting?.usageRecorder?.(ledger, ledgerDeps) ?? ledger;
  const budgets = new Budgets({
    doc: dynamo.doc,
    table,
    clock,
    // A reset changes budget_reset_at: drop the cached record so this environment sees the new schedule.
    onReset: (token) => cache.invalidate(token),
    onUnsettled: (token, id, entry) => ledger.recordUnsettled(token, id, entry),
  });
  const admission = createAccountingAdmission({
    ledger: usageRecorder,
    budgets,
    reservationTtlMs: seconds(env.RELAY_RESERVATION_TTL_SECONDS, 'RELAY_RESERVATION_TTL_SECONDS'),
    worstCase: (call) =>
      worstCase(call, {
        lookup: (model) => prices.lookup(model)?.price,
        // Budgeted keys are refused tiers without a price (lambda/policy/service-tier.ts), so 1 only stands in for standard.
        tierMultiplier: (c) => prices.tierMultiplier(c.model, pricedTierOf(c)) ?? 1,
      }),
    windows,
    leases,
    price,
    clock,
    log: accountingLog,
  });
  const reports = new UsageReports({ doc: dynamo.doc, table, store, clock, windows, leases, budgets });
  return finish({
    ...core,
    authenticate: createKeyAuthenticator({ store, cache, masterKey, clock, onStoreError, ...sigV4 }),
    admission,
    filterDiscovery: (call: CallContext, status: number, body: Buffer) =>
      call.match.route.discovery && call.principal.kind === 'virtual-key' && isKeyRecord(call.principal.record)
        ? filterDiscoveryAnswer(call.match.route.discovery, call.principal.record.models, status, body)
        : body,
    surface: {
      admin: { store, cache, masterKey, clock, onError: onStoreError, reports, awsCredentials },
      ready: async () => {
        await store.ping();
        return true;
      },
    },
  });
}

function seconds(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive whole number of seconds, got "${value}"`);
  return parsed * 1000;
}
