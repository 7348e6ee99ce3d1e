import { ENV, envFlag } from './contract.js';
import type { UpstreamService } from './routes/table.js';

/** Everything the relay reads from its environment, resolved once per cold start. */
export interface RelayConfig {
  /** The region Bedrock is called in. */
  readonly region: string;
  /** Base URL per upstream service (scheme, host and optional port; never from the client). */
  readonly endpoints: Readonly<Record<UpstreamService, URL>>;
  /** Milliseconds to wait for Bedrock's response headers, and between body chunks. */
  readonly upstreamTimeoutMs: number;
  /** How long a key record may be served from the in-memory cache. */
  readonly keyCacheTtlSeconds: number;
  /** DynamoDB table holding keys, usage and limit counters (unset: no key store). */
  readonly keysTable?: string;
  /** Add the per-key dimension set to the metrics (opt-in: it multiplies the custom metrics billed). */
  readonly perKeyMetrics: boolean;
  /**
   * S3 buckets StartAsyncInvoke may write its output to. Undefined: no check (the local server runs
   * with the caller's own credentials); empty: the deployment granted none, so the route refuses.
   */
  readonly asyncOutputBuckets?: readonly string[];
}

/** SigV4 signing name of each upstream service. */
export const SIGNING_NAMES: Readonly<Record<UpstreamService, string>> = {
  'bedrock-runtime': 'bedrock',
  'bedrock-agent-runtime': 'bedrock',
  bedrock: 'bedrock',
  'bedrock-mantle': 'bedrock-mantle',
};

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The Bedrock region: RELAY_BEDROCK_REGION when a deployer chose one, otherwise the region the relay
 * runs in (Lambda always sets AWS_REGION), so one template works in whichever region it is deployed.
 * us-east-1 only for a local server with no region configured at all.
 */
export function bedrockRegion(env: Env = process.env): string {
  return env[ENV.bedrockRegion] || env.AWS_REGION || env.AWS_REGION_NAME || env.AWS_DEFAULT_REGION || 'us-east-1';
}

export function loadConfig(env: Env = process.env): RelayConfig {
  const region = bedrockRegion(env);
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) throw new Error(`Invalid AWS region: ${region}`);
  return {
    region,
    endpoints: {
      'bedrock-runtime': endpoint(env.AWS_ENDPOINT_URL_BEDROCK_RUNTIME, `https://bedrock-runtime.${region}.amazonaws.com`),
      'bedrock-agent-runtime': endpoint(env.AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME, `https://bedrock-agent-runtime.${region}.amazonaws.com`),
      bedrock: endpoint(env.AWS_ENDPOINT_URL_BEDROCK, `https://bedrock.${region}.amazonaws.com`),
      'bedrock-mantle': endpoint(env.AWS_ENDPOINT_URL_BEDROCK_MANTLE, `https://bedrock-mantle.${region}.api.aws`),
    },
    upstreamTimeoutMs: positiveInt(env.RELAY_UPSTREAM_TIMEOUT_MS, 'RELAY_UPSTREAM_TIMEOUT_MS') ?? 300_000,
    keyCacheTtlSeconds: nonNegativeInt(env[ENV.keyCacheTtlSeconds], ENV.keyCacheTtlSeconds) ?? 30,
    keysTable: env[ENV.keysTable] || undefined,
    perKeyMetrics: envFlag(env[ENV.perKeyMetrics]),
    asyncOutputBuckets: list(env[ENV.asyncOutputBuckets]),
  };
}

function endpoint(override: string | undefined, fallback: string): URL {
  const url = new URL(override || fallback);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`Unsupported endpoint scheme: ${url.href}`);
  return url;
}

function positiveInt(value: string | undefined, name: string): number | undefined {
  const parsed = nonNegativeInt(value, name);
  if (parsed === 0) throw new Error(`${name} must be positive`);
  return parsed;
}

function nonNegativeInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new Error(`${name} must be a whole number, got "${value}"`);
  return parsed;
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
