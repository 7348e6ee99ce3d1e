/**
 * The stack's configuration: one typed object, filled from stack props first, then CDK context
 * (`cdk.json` or `npx cdk deploy -c key=value`), then defaults, and validated at synth so that a
 * typo fails `cdk synth` with a message naming the key instead of deploying something surprising.
 *
 * Context values given on the command line always arrive as strings, so every reader below accepts
 * both the JSON type (from cdk.json) and its string spelling (`-c memorySize=2048`,
 * `-c bedrockRegions=us-east-1,us-west-2`, `-c tracing=true`).
 */

/** How callers authenticate to the Function URL. */
export type RelayAuthType = 'NONE' | 'AWS_IAM';

/** Lambda's application log levels (LoggingConfig.ApplicationLogLevel). */
export type RelayLogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';
const LOG_LEVELS: readonly RelayLogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];

/** What a deployer may set. Every field is optional; see {@link RELAY_DEFAULTS}. */
export interface RelayConfigInput {
  /** Stage name, part of the stack name (`BedrockRelay-<stage>`); lets dev and prod coexist. */
  readonly stage?: string;
  /**
   * Regions the role may call Bedrock in. The first is the one the relay calls
   * (`RELAY_BEDROCK_REGION`). Default: the region the stack is deployed in, resolved at deploy time
   * (IAM) and at run time (the function's own AWS_REGION), never at synth.
   */
  readonly bedrockRegions?: readonly string[];
  /**
   * Model ID patterns the role may invoke, e.g. `['anthropic.*', 'amazon.nova-*']`.
   * Default: every foundation model and inference profile.
   */
  readonly modelFamilies?: readonly string[];
  /** Lambda memory in MB (CPU scales with it). */
  readonly memorySize?: number;
  /** Lambda timeout in seconds; at most 900 (Lambda's 15-minute limit). */
  readonly timeoutSeconds?: number;
  /**
   * Reserved concurrency: a ceiling that keeps a flood on the public URL from taking the account's
   * whole Lambda concurrency (and from billing without bound). `'none'` uses the unreserved pool.
   */
  readonly reservedConcurrency?: number | 'none';
  /** CloudWatch Logs retention for the function's log group, in days. */
  readonly logRetentionDays?: number;
  /** How long a Lambda environment caches a key record (bounded staleness for block/delete). */
  readonly keyCacheTtlSeconds?: number;
  /** Origins allowed by the Function URL's CORS configuration; unset means no CORS. */
  readonly corsAllowedOrigins?: readonly string[];
  /** `NONE` (the relay checks keys itself) or `AWS_IAM` (callers sign with SigV4). */
  readonly authType?: RelayAuthType;
  /** E-mail address subscribed to a new SNS topic that receives the alarms. */
  readonly alarmEmail?: string;
  /** An existing SNS topic that receives the alarms. */
  readonly alarmTopicArn?: string;
  /** X-Ray active tracing for the function. */
  readonly tracing?: boolean;
  /** Lambda application log level (JSON log format); Powertools Logger follows it. */
  readonly logLevel?: RelayLogLevel;
  /** Add per-key metric dimensions (billed per key × model as CloudWatch custom metrics). */
  readonly perKeyMetrics?: boolean;
  /** S3 buckets StartAsyncInvoke may write to; the role gets s3:PutObject on exactly these. */
  readonly asyncOutputBuckets?: readonly string[];
  /**
   * Let the role accept AWS Marketplace subscriptions, which the first call to a third-party model in
   * an account triggers. `true` for any product, or a list of Marketplace product IDs.
   */
  readonly marketplaceSubscribe?: boolean | readonly string[];
}

/** The validated configuration the stack is built from (the function's own is lambda/config.ts). */
export interface RelayStackConfig {
  readonly stage: string;
  /** Undefined means "the stack's region", resolved by the stack (it may be a token). */
  readonly bedrockRegions?: readonly string[];
  readonly modelFamilies?: readonly string[];
  readonly memorySize: number;
  readonly timeoutSeconds: number;
  readonly reservedConcurrency?: number;
  readonly logRetentionDays: number;
  readonly keyCacheTtlSeconds: number;
  readonly corsAllowedOrigins?: readonly string[];
  readonly authType: RelayAuthType;
  readonly alarmEmail?: string;
  readonly alarmTopicArn?: string;
  readonly tracing: boolean;
  readonly logLevel: RelayLogLevel;
  readonly perKeyMetrics: boolean;
  readonly asyncOutputBuckets?: readonly string[];
  /** Undefined: no Marketplace grant; `'*'`: any product; otherwise these product IDs. */
  readonly marketplaceProductIds?: '*' | readonly string[];
}

export const RELAY_DEFAULTS = {
  stage: 'dev',
  // Chosen by measurement: bench/lambda-memory.ts, figures in the README ("Costs").
  memorySize: 512,
  reservedConcurrency: 100,
  logLevel: 'INFO',
  perKeyMetrics: false,
  // Long generations (large outputs, extended thinking, agents) can stream for many minutes; the
  // function is billed per millisecond used, so a generous ceiling costs nothing when unused.
  timeoutSeconds: 900,
  logRetentionDays: 30,
  keyCacheTtlSeconds: 30,
  authType: 'NONE',
  tracing: false,
} as const satisfies Partial<RelayStackConfig>;

/** The context keys read by {@link readRelayContext}; each is also a {@link RelayConfigInput} field. */
export const RELAY_CONTEXT_KEYS = [
  'stage',
  'bedrockRegions',
  'modelFamilies',
  'memorySize',
  'timeoutSeconds',
  'reservedConcurrency',
  'logRetentionDays',
  'keyCacheTtlSeconds',
  'corsAllowedOrigins',
  'authType',
  'alarmEmail',
  'alarmTopicArn',
  'tracing',
  'logLevel',
  'perKeyMetrics',
  'asyncOutputBuckets',
  'marketplaceSubscribe',
] as const satisfies readonly (keyof RelayConfigInput)[];

/** Values CloudWatch Logs accepts for a retention period (RetentionInDays). */
export const LOG_RETENTION_DAYS: readonly number[] = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

/** Thrown at synth when the configuration is invalid; lists every problem at once. */
export class RelayConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid bedrock-relay configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'RelayConfigError';
    this.problems = problems;
  }
}

/** Reads the relay's keys from CDK context; absent keys are left out. */
export function readRelayContext(tryGetContext: (key: string) => unknown): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of RELAY_CONTEXT_KEYS) {
    const value = tryGetContext(key);
    if (value !== undefined && value !== null && value !== '') raw[key] = value;
  }
  return raw;
}

/**
 * Merges props over context over defaults and validates the result.
 * `props` are typed by the compiler; `context` is whatever cdk.json or `-c` supplied.
 */
export function resolveRelayConfig(props: RelayConfigInput = {}, context: Record<string, unknown> = {}): RelayStackConfig {
  const problems: string[] = [];
  const pick = (key: keyof RelayConfigInput): unknown => (props[key] !== undefined ? props[key] : context[key]);

  const stage = readString(pick('stage'), 'stage', problems) ?? RELAY_DEFAULTS.stage;
  if (!/^[a-z][a-z0-9-]{0,15}$/.test(stage)) {
    problems.push(`stage: "${stage}" must be 1-16 characters of a-z, 0-9 and "-", starting with a letter (it becomes part of the stack name)`);
  }

  const bedrockRegions = readStringList(pick('bedrockRegions'), 'bedrockRegions', problems);
  if (bedrockRegions !== undefined) {
    if (bedrockRegions.length === 0) problems.push("bedrockRegions: give at least one region, or leave it unset to use the stack's region");
    for (const region of bedrockRegions) {
      if (!/^[a-z]{2}(-[a-z]+)+-\d{1,2}$/.test(region)) problems.push(`bedrockRegions: "${region}" is not an AWS region name (like us-east-1)`);
    }
    if (new Set(bedrockRegions).size !== bedrockRegions.length) problems.push('bedrockRegions: a region is listed twice');
  }

  const modelFamilies = readStringList(pick('modelFamilies'), 'modelFamilies', problems);
  if (modelFamilies !== undefined) {
    if (modelFamilies.length === 0) problems.push('modelFamilies: give at least one pattern, or leave it unset to allow every model');
    for (const family of modelFamilies) {
      if (family === '*' || family.startsWith('*')) {
        problems.push(`modelFamilies: "${family}" would match every model; leave modelFamilies unset to allow every model`);
      } else if (!/^[a-z0-9][a-z0-9.\-:*]*$/.test(family)) {
        problems.push(`modelFamilies: "${family}" must be a model ID or prefix pattern like "anthropic.*" or "amazon.nova-*" (lower case, no "/")`);
      }
    }
  }

  const memorySize = readInteger(pick('memorySize'), 'memorySize', problems) ?? RELAY_DEFAULTS.memorySize;
  if (memorySize < 128 || memorySize > 10240) problems.push(`memorySize: ${memorySize} must be between 128 and 10240 MB`);

  const timeoutSeconds = readInteger(pick('timeoutSeconds'), 'timeoutSeconds', problems) ?? RELAY_DEFAULTS.timeoutSeconds;
  if (timeoutSeconds < 1 || timeoutSeconds > 900) {
    problems.push(`timeoutSeconds: ${timeoutSeconds} must be between 1 and 900 (Lambda's 15-minute maximum)`);
  }

  const reservedRaw = pick('reservedConcurrency');
  const reservedConcurrency =
    reservedRaw === 'none' ? undefined : (readInteger(reservedRaw, 'reservedConcurrency', problems) ?? RELAY_DEFAULTS.reservedConcurrency);
  if (reservedConcurrency !== undefined && reservedConcurrency < 1) {
    problems.push(`reservedConcurrency: ${reservedConcurrency} must be at least 1 (0 would stop every invocation); use "none" for no reservation`);
  }

  const logRetentionDays = readInteger(pick('logRetentionDays'), 'logRetentionDays', problems) ?? RELAY_DEFAULTS.logRetentionDays;
  if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
    problems.push(`logRetentionDays: ${logRetentionDays} is not a CloudWatch Logs retention; use one of ${LOG_RETENTION_DAYS.join(', ')}`);
  }

  const keyCacheTtlSeconds = readInteger(pick('keyCacheTtlSeconds'), 'keyCacheTtlSeconds', problems) ?? RELAY_DEFAULTS.keyCacheTtlSeconds;
  if (keyCacheTtlSeconds < 0 || keyCacheTtlSeconds > 3600) problems.push(`keyCacheTtlSeconds: ${keyCacheTtlSeconds} must be between 0 and 3600`);

  const corsAllowedOrigins = readStringList(pick('corsAllowedOrigins'), 'corsAllowedOrigins', problems);
  if (corsAllowedOrigins !== undefined) {
    if (corsAllowedOrigins.length === 0 || corsAllowedOrigins.length > 100) {
      problems.push('corsAllowedOrigins: give between 1 and 100 origins (a Function URL limit), or leave it unset for no CORS');
    }
    for (const origin of corsAllowedOrigins) {
      if (origin !== '*' && !/^https?:\/\/[A-Za-z0-9.\-*]+(:\d{1,5})?$/.test(origin)) {
        problems.push(`corsAllowedOrigins: "${origin}" must be "*" or an origin like https://app.example.com (scheme and host, no path)`);
      }
    }
  }

  const authTypeRaw = readString(pick('authType'), 'authType', problems) ?? RELAY_DEFAULTS.authType;
  const authType = authTypeRaw.toUpperCase();
  if (authType !== 'NONE' && authType !== 'AWS_IAM') problems.push(`authType: "${authTypeRaw}" must be NONE or AWS_IAM`);

  const alarmEmail = readString(pick('alarmEmail'), 'alarmEmail', problems);
  if (alarmEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(alarmEmail)) problems.push(`alarmEmail: "${alarmEmail}" is not an e-mail address`);
  const alarmTopicArn = readString(pick('alarmTopicArn'), 'alarmTopicArn', problems);
  if (alarmTopicArn !== undefined && !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/.test(alarmTopicArn)) {
    problems.push(`alarmTopicArn: "${alarmTopicArn}" is not an SNS topic ARN`);
  }
  if (alarmEmail !== undefined && alarmTopicArn !== undefined) {
    problems.push('alarmEmail and alarmTopicArn: set one of them (subscribe the address to your topic yourself), not both');
  }

  const tracing = readBoolean(pick('tracing'), 'tracing', problems) ?? RELAY_DEFAULTS.tracing;

  const logLevelRaw = readString(pick('logLevel'), 'logLevel', problems) ?? RELAY_DEFAULTS.logLevel;
  const logLevel = logLevelRaw.toUpperCase() as RelayLogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`logLevel: "${logLevelRaw}" must be one of ${LOG_LEVELS.join(', ')}`);

  const perKeyMetrics = readBoolean(pick('perKeyMetrics'), 'perKeyMetrics', problems) ?? RELAY_DEFAULTS.perKeyMetrics;

  const asyncOutputBuckets = readStringList(pick('asyncOutputBuckets'), 'asyncOutputBuckets', problems);
  for (const bucket of asyncOutputBuckets ?? []) {
    // S3 bucket naming rules; a name with "*" or "/" would widen the s3:PutObject grant.
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      problems.push(`asyncOutputBuckets: "${bucket}" is not an S3 bucket name (no s3://, no path, no wildcard)`);
  }
  if (asyncOutputBuckets !== undefined && asyncOutputBuckets.length === 0) problems.push('asyncOutputBuckets: give at least one bucket, or leave it unset');

  const marketplaceRaw = pick('marketplaceSubscribe');
  let marketplaceProductIds: '*' | string[] | undefined;
  if (marketplaceRaw === true || marketplaceRaw === 'true') marketplaceProductIds = '*';
  else if (marketplaceRaw !== undefined && marketplaceRaw !== false && marketplaceRaw !== 'false') {
    marketplaceProductIds = readStringList(marketplaceRaw, 'marketplaceSubscribe', problems);
    for (const id of marketplaceProductIds ?? []) {
      if (!/^[a-z0-9-]{6,64}$/.test(id)) problems.push(`marketplaceSubscribe: "${id}" is not a Marketplace product ID (or use true for any product)`);
    }
  }

  if (problems.length > 0) throw new RelayConfigError(problems);
  return {
    stage,
    bedrockRegions,
    modelFamilies,
    memorySize,
    timeoutSeconds,
    reservedConcurrency,
    logRetentionDays,
    keyCacheTtlSeconds,
    corsAllowedOrigins,
    authType: authType as RelayAuthType,
    alarmEmail,
    alarmTopicArn,
    tracing,
    logLevel,
    perKeyMetrics,
    asyncOutputBuckets,
    marketplaceProductIds,
  };
}

function readString(value: unknown, key: string, problems: string[]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') {
    problems.push(`${key}: expected a string, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value.trim();
}

/** Accepts a JSON array of strings, or a comma-separated string (how `-c key=a,b` arrives). */
function readStringList(value: unknown, key: string, problems: string[]): string[] | undefined {
  if (value === undefined) return undefined;
  let list: unknown = value;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('[')) {
      try {
        list = JSON.parse(text);
      } catch {
        problems.push(`${key}: ${JSON.stringify(value)} is neither a JSON array nor a comma-separated list`);
        return undefined;
      }
    } else {
      list = text === '' ? [] : text.split(',').map((item) => item.trim());
    }
  }
  if (!Array.isArray(list) || list.some((item) => typeof item !== 'string')) {
    problems.push(`${key}: expected a list of strings, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return (list as string[]).map((item) => item.trim());
}

function readInteger(value: unknown, key: string, problems: string[]): number | undefined {
  if (value === undefined) return undefined;
  const parsed = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof parsed !== 'number' || !Number.isInteger(parsed)) {
    problems.push(`${key}: expected a whole number, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return parsed;
}

function readBoolean(value: unknown, key: string, problems: string[]): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  problems.push(`${key}: expected true or false, got ${JSON.stringify(value)}`);
  return undefined;
}
