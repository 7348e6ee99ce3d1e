/**
 * The run-time contract between the function and the stack that deploys it: environment variable
 * names, the service name, the metric namespace, metric and dimension names, and the log messages
 * that alarms match. lambda/ reads these names and lib/ writes and alarms on them; both import
 * them from here, so a rename in one place cannot silently break the other.
 *
 * This module must stay free of imports (it is bundled into the function and loaded by the CDK
 * app): values only.
 */

/** Powertools' `service` (log field and metric dimension) and the default function name locally. */
export const SERVICE_NAME = 'bedrock-relay';

/** CloudWatch namespace of the relay's EMF metrics and of its log-derived metrics. */
export const METRICS_NAMESPACE = 'BedrockRelay';

/** Environment variables the stack sets and the function reads. */
export const ENV = {
  /** Secrets Manager secret whose SecretString is the master key. */
  masterKeySecretArn: 'RELAY_MASTER_KEY_SECRET_ARN',
  /** Secret each key's aws_secret_access_key is derived from (HMAC of the key token; SigV4 in). */
  sigv4SecretArn: 'RELAY_SIGV4_SECRET_ARN',
  /** DynamoDB table of keys, usage and limit counters. */
  keysTable: 'RELAY_KEYS_TABLE',
  /**
   * Bedrock region when it must differ from where the relay runs. The stack sets it only when a
   * deployer names regions: otherwise the function uses its own AWS_REGION at run time.
   */
  bedrockRegion: 'RELAY_BEDROCK_REGION',
  keyCacheTtlSeconds: 'RELAY_KEY_CACHE_TTL_SECONDS',
  /** `true` adds the per-key dimension set to the metrics (each key × model pair is billed as custom metrics). */
  perKeyMetrics: 'RELAY_METRICS_PER_KEY',
  /**
   * Comma-separated S3 buckets StartAsyncInvoke may write to. Set (possibly empty) by the stack, which
   * grants s3:PutObject on exactly these; unset (local server, caller's own credentials) means no check.
   */
  asyncOutputBuckets: 'RELAY_ASYNC_OUTPUT_BUCKETS',
  serviceName: 'POWERTOOLS_SERVICE_NAME',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  metricsDisabled: 'POWERTOOLS_METRICS_DISABLED',
  logLevel: 'POWERTOOLS_LOG_LEVEL',
} as const;

/** Metric dimension names. */
export const DIMENSIONS = {
  service: 'service',
  model: 'model',
  keyAlias: 'keyAlias',
} as const;

/**
 * Dimension sets the relay emits. `[service]` totals feed the alarms (alarms cannot use SEARCH);
 * `[service, model]` is the default breakdown; `[service, keyAlias, model]` only with per-key metrics on.
 */
export const DIMENSION_SETS = {
  total: [DIMENSIONS.service],
  byModel: [DIMENSIONS.service, DIMENSIONS.model],
  byKeyAndModel: [DIMENSIONS.service, DIMENSIONS.keyAlias, DIMENSIONS.model],
} as const;

/**
 * EMF metric names, one record per relayed call (lambda/accounting/telemetry.ts).
 * New metrics go here first; the stack's dashboard and alarms import them from here.
 */
export const METRICS = {
  requests: 'Requests',
  /** Any failed call: status ≥ 400 other than 429, or an upstream that failed. Kept for the error rate. */
  errors: 'Errors',
  /** 4xx other than 429, whoever made them (bad keys, scanners, invalid bodies): dashboard only, never paged. */
  clientErrors: 'ClientErrors',
  /** 5xx the relay made itself (store unavailable, a bug): its own fault. */
  relayErrors: 'RelayErrors',
  /** 5xx Bedrock answered, or Bedrock unreachable / timed out / broken mid-stream. */
  upstreamErrors: 'UpstreamErrors',
  /** Every 429 (the key's limits or Bedrock's throttling). */
  throttles: 'Throttles',
  /** 429s Bedrock answered (account quotas), apart from the relay's own key limits. */
  upstreamThrottles: 'UpstreamThrottles',
  latency: 'Latency',
  timeToFirstByte: 'TimeToFirstByte',
  inputTokens: 'InputTokens',
  outputTokens: 'OutputTokens',
  costUsd: 'CostUSD',
  /** Log-derived (metric filter on {@link LOG_MESSAGES.ledgerWriteFailed}). */
  ledgerWriteFailures: 'LedgerWriteFailures',
  /** Log-derived (metric filter on the store-unavailable messages). */
  keyStoreUnavailable: 'KeyStoreUnavailable',
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** Log `message` values that the stack turns into metrics and that tools parse. */
export const LOG_MESSAGES = {
  /** One per relayed call. */
  relayCall: 'relay-call',
  /** Usage could not be written after retries; carries a `replay` object (`npx relay ledger`). */
  ledgerWriteFailed: 'ledger-write-failed',
  /** Reading a key failed: the call was refused with 503 (fail closed). */
  keyStoreUnavailable: 'key store unavailable',
  /** Budgets and limits could not be checked: the call was refused with 503. */
  usageStoreUnavailable: 'usage store unavailable at admission',
} as const;

/** Truthy spellings accepted for boolean environment variables. */
export function envFlag(value: string | undefined): boolean {
  return /^(1|true|yes|on)$/i.test(value ?? '');
}
