/**
 * Where accounting lives in the relay's one table (see lambda/store/schema.ts). Everything is on
 * the key's own partition, so a key's usage, counters and replay markers never contend with
 * another key's, and a Query on one partition answers every report.
 *
 *   pk KEY#<token>  sk KEY                          the key item: the ledger ADDs spend_nanos and
 *                                                   the lifetime total_* counters to it
 *   pk KEY#<token>  sk USAGE#<yyyy-mm-dd>#<model>   per-day, per-model usage (ttl 400 days)
 *   pk KEY#<token>  sk RL#w#<minute>                the key's fixed 60-s window: requests, tokens
 *   pk KEY#<token>  sk RL#w#<minute>#m#<entry>      the same for one model_rpm/tpm_limit entry
 *   pk KEY#<token>  sk RL#par                       parallel-request leases: {lease id → expiry ms}
 *   pk KEY#<token>  sk LEDGER#<call id>#<part>      "this replayed ledger write is applied" (ttl 90 days)
 *   pk KEY#MASTER   sk USAGE#…                      master-key calls (there is no key item)
 *
 * `<minute>` is floor(epoch ms / 60 000): one window per wall-clock minute, UTC.
 */
import { RATE_LIMIT_SORT_KEY_PREFIX, keyPartition, usageSortKey } from '../store/schema.js';

export { keyPartition, usageSortKey };

/** The pseudo-key master-key calls are recorded under (not a hash: no key can collide with it). */
export const MASTER_PRINCIPAL = 'MASTER';

export const WINDOW_MS = 60_000;
export const USAGE_TTL_DAYS = 400;
export const REPLAY_MARKER_TTL_DAYS = 90;
/** Window items are only read during their minute; an hour's grace keeps them for debugging, then DynamoDB may drop them. */
const WINDOW_TTL_GRACE_SECONDS = 3_600;

/** Counters the ledger adds to the key item (spend_nanos is the budget period's; the rest are lifetime totals). */
export const KEY_COUNTERS = {
  spend: 'spend_nanos',
  lifetimeSpend: 'total_spend_nanos',
  input: 'total_input_tokens',
  output: 'total_output_tokens',
  cacheRead: 'total_cache_read_tokens',
  cacheWrite: 'total_cache_write_tokens',
  requests: 'total_requests',
  unpriced: 'total_unpriced_requests',
  /** Calls whose usage was estimated (the stream ended before its usage event). */
  estimated: 'total_estimated_requests',
  /** Calls never settled (crash, timeout), charged at their reservation. */
  unsettled: 'total_unsettled_requests',
} as const;

/** Sum of the reservations held on the key item (all of them also inside spend_nanos). */
export const RESERVED_ATTRIBUTE = 'reserved_nanos';
/** A reservation is a top-level attribute `rsv:<call id>` of the key item (top-level: no map to create first). */
export const RESERVATION_PREFIX = 'rsv:';

/** One reservation: cost (nano-USD), expiry (epoch ms), usage model label, day. */
export interface ReservationEntry {
  readonly c: number;
  readonly x: number;
  readonly m: string;
  readonly d: string;
}

export function reservationAttribute(callId: string): string {
  return `${RESERVATION_PREFIX}${callId}`;
}

/** Counters on a usage item. */
export const USAGE_COUNTERS = {
  input: 'input_tokens',
  output: 'output_tokens',
  cacheRead: 'cache_read_tokens',
  cacheWrite: 'cache_write_tokens',
  requests: 'requests',
  errors: 'error_requests',
  unpriced: 'unpriced_requests',
  cost: 'cost_nanos',
  guardrailUnits: 'guardrail_units',
  estimated: 'estimated_requests',
  unsettled: 'unsettled_requests',
} as const;

/** String set of replay ids being applied to an item (see ledger.ts: replay). */
export const REPLAYING_ATTRIBUTE = 'ledger_replaying';

export const LEASES_SORT_KEY = `${RATE_LIMIT_SORT_KEY_PREFIX}par`;

export function windowOf(now: number): number {
  return Math.floor(now / WINDOW_MS);
}

/** The window item of the key (`scope` undefined) or of one per-model limit entry. */
export function windowSortKey(window: number, scope?: string): string {
  return `${RATE_LIMIT_SORT_KEY_PREFIX}w#${window}${scope === undefined ? '' : `#m#${scope}`}`;
}

export function windowTtl(window: number): number {
  return ((window + 1) * WINDOW_MS) / 1000 + WINDOW_TTL_GRACE_SECONDS;
}

export function replayMarkerSortKey(callId: string, part: string): string {
  return `LEDGER#${callId}#${part}`;
}

/** UTC day of an instant, `yyyy-mm-dd`. */
export function dayOf(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** DynamoDB may delete a usage item this long after its day ended. */
export function usageTtl(day: string): number {
  return Math.floor(Date.parse(`${day}T00:00:00.000Z`) / 1000) + (USAGE_TTL_DAYS + 1) * 86_400;
}

/** The sort-key model label: bounded, and never empty (operations without a model are labelled by operation). */
export function usageModelLabel(model: string | undefined, operation: string): string {
  const label = model?.trim() ? model.trim() : `operation:${operation}`;
  return label.length > 400 ? label.slice(0, 400) : label;
}

export const USAGE_SORT_KEY_PREFIX = 'USAGE#';

/** Day and model back from a usage sort key (`USAGE#<day>#<model>`; the model may itself hold `#`). */
export function parseUsageSortKey(sk: string): { day: string; model: string } | undefined {
  if (!sk.startsWith(USAGE_SORT_KEY_PREFIX)) return undefined;
  const rest = sk.slice(USAGE_SORT_KEY_PREFIX.length);
  const hash = rest.indexOf('#');
  if (hash !== 10) return undefined;
  return { day: rest.slice(0, 10), model: rest.slice(11) };
}
