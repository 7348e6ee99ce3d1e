/** Milliseconds since the epoch; injected so tests can move time. */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * Resource allow-lists, LiteLLM's `object_permission` (which has `vector_stores`, `agents`…)
 * carried over to Bedrock's resources. Each list holds IDs or ARNs; a missing or empty list
 * means "no restriction" (LiteLLM's convention for `models` too). Agents and flows may also be
 * listed per alias as `AGENT_ID/ALIAS_ID`. See lambda/policy/authorize.ts.
 */
export interface ObjectPermission {
  readonly guardrails?: readonly string[];
  /** Bedrock knowledge bases (LiteLLM calls them vector stores; `vector_stores` is accepted as input). */
  readonly knowledge_bases?: readonly string[];
  readonly agents?: readonly string[];
  readonly flows?: readonly string[];
}

export const OBJECT_PERMISSION_FIELDS = ['guardrails', 'knowledge_bases', 'agents', 'flows'] as const;
export type ObjectPermissionField = (typeof OBJECT_PERMISSION_FIELDS)[number];

/**
 * A virtual key as stored (the key item minus pk/sk/gsi attributes). Field names follow
 * LiteLLM's LiteLLM_VerificationToken so admin responses map one to one.
 */
export interface KeyRecord {
  /** SHA-256 hex of the secret: the key's id. The secret itself is never stored. */
  readonly token: string;
  /** Display form, `sk-...abcd`. */
  readonly key_name: string;
  readonly key_alias?: string;
  /**
   * The key's AWS access key id (lambda/keys/aws-credentials.ts): public, also reachable through
   * the AKID#<id> lookup item. Absent on keys made before SigV4 support (regenerate gives one).
   */
  readonly aws_access_key_id?: string;
  /** Model allow-list; empty: every model. */
  readonly models: readonly string[];
  /** Operation names from the route table; empty: every operation. */
  readonly allowed_operations: readonly string[];
  /** Route groups / relay path patterns, `!`-prefixed to exclude; empty: every route. */
  readonly allowed_routes: readonly string[];
  readonly object_permission?: ObjectPermission;
  /** USD. */
  readonly max_budget?: number;
  readonly budget_duration?: string;
  readonly budget_reset_at?: string;
  /** Exact spend in nano-USD (integer): the ledger ADDs to it, so sums stay exact. */
  readonly spend_nanos: number;
  /**
   * Worst-case cost reserved by this key's calls in flight (lambda/accounting/budget.ts). On the
   * item, spend_nanos holds these too; records show settled spend in spend_nanos.
   */
  readonly reserved_nanos?: number;
  readonly tpm_limit?: number;
  readonly rpm_limit?: number;
  readonly max_parallel_requests?: number;
  /** Per-model limits (LiteLLM's): model allow-list entry → requests / tokens per minute (lambda/accounting/limits.ts). */
  readonly model_rpm_limit?: Readonly<Record<string, number>>;
  readonly model_tpm_limit?: Readonly<Record<string, number>>;
  readonly metadata: JsonObject;
  readonly user_id?: string;
  readonly team_id?: string;
  readonly blocked: boolean;
  /** ISO time after which the key is refused with "expired". */
  readonly expires?: string;
  readonly created_at: string;
  readonly updated_at: string;
  /** Epoch seconds at which DynamoDB may delete the item (a grace period after `expires`). */
  readonly ttl?: number;
  /** Set when the key was regenerated: the hash of its successor. The record is dead from then on. */
  readonly superseded_by?: string;
  readonly superseded_at?: string;
  /** Hashes this key was regenerated from, newest first (usage history lives under those partitions). */
  readonly regenerated_from?: readonly string[];
}

export const NANOS_PER_USD = 1_000_000_000;

export function spendInUsd(record: Pick<KeyRecord, 'spend_nanos'>): number {
  return record.spend_nanos / NANOS_PER_USD;
}

export function usdToNanos(usd: number): number {
  return Math.round(usd * NANOS_PER_USD);
}

/** Is the key past its `expires` at `now`? */
export function isExpired(record: Pick<KeyRecord, 'expires'>, now: number): boolean {
  return record.expires !== undefined && Date.parse(record.expires) <= now;
}

/** Narrow a principal's record (typed `unknown` in lambda/auth) to a key record. */
export function isKeyRecord(value: unknown): value is KeyRecord {
  if (value === null || typeof value !== 'object') return false;
  const record = value as Partial<KeyRecord>;
  return typeof record.token === 'string' && Array.isArray(record.models) && Array.isArray(record.allowed_operations) && Array.isArray(record.allowed_routes);
}
