/**
 * The one DynamoDB table the relay uses (keys, aliases, and — issue 4 — usage and limit counters).
 * The CDK stack, the embedded local store and the tests all build it from these names so they
 * cannot drift apart.
 *
 * Item layout (pk / sk):
 *   KEY#<sha256 hex>    KEY                          the key record (lambda/keys/store.ts)
 *   KEY#<sha256 hex>    USAGE#<yyyy-mm-dd>#<model>   per-day, per-model usage (issue 4)
 *   KEY#<sha256 hex>    RL#…                         rate-limit / concurrency counters (issue 4)
 *   ALIAS#<alias>       ALIAS                        alias claim: makes key_alias unique
 *   HEALTH              HEALTH                       never written; read by readiness checks
 *
 *   KEY#<sha256 hex>    LIST                         the key's entry in the key listing (below)
 * gsi1 (projection ALL) holds only items that set gsi1pk:
 *   gsi1pk = KEYS, gsi1sk = <created_at ISO>#<hash>  one LIST entry per key, for /key/list
 * The listing entries are separate, tiny, write-once items, not the key items themselves: the
 * key item takes the ledger's writes on every call, and with gsi1pk on it every one of those
 * would also be a write to the index's single "KEYS" partition, capping the whole deployment
 * near DynamoDB's per-partition limit of 1,000 writes/s (issue 11). Key items written by
 * earlier versions still carry gsi1pk; listing moves them over (lambda/keys/store.ts).
 *   (issue 4 may add e.g. gsi1pk = USAGE#<yyyy-mm-dd> for cross-key daily reports)
 *
 * `ttl` (epoch seconds) lets DynamoDB delete expired keys (a grace period after expiry, so
 * /key/info can still say "expired"), their alias claims, and short-lived counters.
 */
export const TABLE_SCHEMA = {
  partitionKey: 'pk',
  sortKey: 'sk',
  gsi1: { name: 'gsi1', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
  ttlAttribute: 'ttl',
} as const;

/** The table name the embedded local store uses (a deployed stack names its own). */
export const LOCAL_TABLE_NAME = 'bedrock-relay';

export const KEY_SORT_KEY = 'KEY';
export const ALIAS_SORT_KEY = 'ALIAS';
export const KEY_LIST_PARTITION = 'KEYS';
/** Sort key of a key's listing entry (the only item type under gsi1pk = KEYS). */
export const KEY_LIST_SORT_KEY = 'LIST';

export function keyPartition(hash: string): string {
  return `KEY#${hash}`;
}

export function aliasPartition(alias: string): string {
  return `ALIAS#${alias}`;
}

/** Sort key of a usage item on the key's partition (issue 4). */
export function usageSortKey(day: string, model: string): string {
  return `USAGE#${day}#${model}`;
}

/** Sort-key prefix of limit counters on the key's partition (issue 4). */
export const RATE_LIMIT_SORT_KEY_PREFIX = 'RL#';
