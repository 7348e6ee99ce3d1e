/**
 * Budgets with LiteLLM's semantics: `max_budget` (USD) caps `spend` over a period of
 * `budget_duration`; at `budget_reset_at` the spend goes back to 0 and `budget_reset_at` moves on.
 *
 * - The reset is one conditional UpdateItem, `SET spend_nanos = 0, budget_reset_at = <next>`
 *   under the condition `budget_reset_at = <the value seen>`: of any number of environments that
 *   notice the reset is due at once, exactly one succeeds; the others' conditions fail. A
 *   reset can therefore never wipe spend booked after another environment's reset.
 * - The next reset is the old one plus whole durations until it lies in the future, so resets
 *   stay on their schedule (a "1d" key created at 09:00 resets at 09:00 every day), however long
 *   the key was idle. (LiteLLM computes now + duration; the schedule form is steadier.)
 * - The check reads the key item with a strongly consistent GetItem, for keys with a max_budget
 *   only: the cached record could be up to the key-cache TTL behind, which would let a key
 *   overshoot by everything it spent in that time. Keys with only a budget_duration reset when
 *   their cached record says the reset is due (one write per period); keys with neither pay nothing.
 *
 * Overshoot: a call is admitted while spend < max_budget and its cost is added when it ends, so
 * calls already in flight when the budget is reached still complete and are charged. Spend can
 * exceed max_budget by at most the cost of the calls in flight at the moment it is crossed (with
 * max_parallel_requests = P: P × the most expensive call), never more.
 */
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RelayError } from '../http/errors.js';
import { addDuration, parseDuration, type ParsedDuration } from '../keys/duration.js';
import { isConditionalFailure } from '../keys/store.js';
import type { KeyRecord } from '../keys/types.js';
import { formatUsd, usdToNanos } from '../pricing/units.js';
import { KEY_SORT_KEY } from '../store/schema.js';
import { KEY_COUNTERS, keyPartition } from './items.js';

export interface BudgetDeps {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly clock: () => number;
  /** Called after a reset attempt so this environment's key cache stops serving the old schedule. */
  readonly onReset?: (token: string) => void;
}

export interface BudgetView {
  readonly spendNanos: number;
  readonly maxBudgetNanos?: number;
  readonly budgetResetAt?: string;
  readonly budgetDuration?: string;
}

/** The first reset time after `now`, stepping from the scheduled one. */
export function nextResetAt(scheduled: number, duration: ParsedDuration, now: number): number {
  if ('seconds' in duration) {
    const step = duration.seconds * 1000;
    return scheduled + (Math.floor((now - scheduled) / step) + 1) * step;
  }
  let next = scheduled;
  // Calendar months differ in length: step one at a time (bounded: 100 years of monthly resets).
  for (let i = 0; i < 1200 && next <= now; i++) next = addDuration(next, duration);
  return next > now ? next : addDuration(now, duration);
}

export function isResetDue(view: Pick<BudgetView, 'budgetResetAt' | 'budgetDuration'>, now: number): boolean {
  return view.budgetDuration !== undefined && view.budgetResetAt !== undefined && Date.parse(view.budgetResetAt) <= now;
}

export class Budgets {
  constructor(private readonly deps: BudgetDeps) {}

  /** Does this key need a look at its budget on each call? */
  static applies(record: KeyRecord, now: number): boolean {
    return record.max_budget !== undefined || isResetDue(viewOf(record), now);
  }

  /**
   * Refuses the call with 429 ServiceQuotaExceededException if the key is at or over its budget;
   * resets the budget first when the reset is due. Throws StoreUnavailable-style errors as is.
   */
  async admit(token: string, cached: KeyRecord): Promise<void> {
    const now = this.deps.clock();
    if (cached.max_budget === undefined) {
      // No cap to enforce: only keep the schedule (spend_nanos is the period's spend, as in LiteLLM).
      if (isResetDue(viewOf(cached), now)) await this.reset(token, viewOf(cached), now);
      return;
    }
    let view = await this.read(token);
    if (!view) throw new RelayError(401, 'UnrecognizedClientException', 'The API key is not valid.');
    if (isResetDue(view, now)) {
      await this.reset(token, view, now);
      view = (await this.read(token)) ?? view;
    }
    if (view.maxBudgetNanos !== undefined && view.spendNanos >= view.maxBudgetNanos) {
      throw budgetExceeded(view, now);
    }
  }

  /** The key's budget as stored now (strongly consistent); undefined if the key is gone or superseded. */
  async read(token: string): Promise<BudgetView | undefined> {
    const result = await this.deps.doc.send(
      new GetCommand({
        TableName: this.deps.table,
        Key: { pk: keyPartition(token), sk: KEY_SORT_KEY },
        ConsistentRead: true,
        ProjectionExpression: '#spend, max_budget, budget_duration, budget_reset_at, superseded_by',
        ExpressionAttributeNames: { '#spend': KEY_COUNTERS.spend },
      }),
    );
    const item = result.Item;
    if (!item || item.superseded_by !== undefined) return undefined;
    return {
      spendNanos: typeof item[KEY_COUNTERS.spend] === 'number' ? (item[KEY_COUNTERS.spend] as number) : 0,
      ...(typeof item.max_budget === 'number' ? { maxBudgetNanos: usdToNanos(item.max_budget) } : {}),
      ...(typeof item.budget_reset_at === 'string' ? { budgetResetAt: item.budget_reset_at } : {}),
      ...(typeof item.budget_duration === 'string' ? { budgetDuration: item.budget_duration } : {}),
    };
  }

  /** Resets spend if budget_reset_at is still what we saw; true if this call did it. */
  async reset(token: string, seen: Pick<BudgetView, 'budgetResetAt' | 'budgetDuration'>, now: number): Promise<boolean> {
    const duration = seen.budgetDuration ? parseDuration(seen.budgetDuration) : undefined;
    if (!duration || !seen.budgetResetAt) return false;
    const next = new Date(nextResetAt(Date.parse(seen.budgetResetAt), duration, now)).toISOString();
    try {
      await this.deps.doc.send(
        new UpdateCommand({
          TableName: this.deps.table,
          Key: { pk: keyPartition(token), sk: KEY_SORT_KEY },
          UpdateExpression: 'SET #spend = :zero, budget_reset_at = :next, last_budget_reset_at = :now',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(superseded_by) AND budget_reset_at = :seen',
          ExpressionAttributeNames: { '#spend': KEY_COUNTERS.spend },
          ExpressionAttributeValues: { ':zero': 0, ':next': next, ':seen': seen.budgetResetAt, ':now': new Date(now).toISOString() },
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalFailure(error)) return false; // someone else reset it first (or the key changed)
      throw error;
    } finally {
      this.deps.onReset?.(token);
    }
  }
}

export function viewOf(record: KeyRecord): BudgetView {
  return {
    spendNanos: record.spend_nanos,
    ...(record.max_budget !== undefined ? { maxBudgetNanos: usdToNanos(record.max_budget) } : {}),
    ...(record.budget_reset_at !== undefined ? { budgetResetAt: record.budget_reset_at } : {}),
    ...(record.budget_duration !== undefined ? { budgetDuration: record.budget_duration } : {}),
  };
}

/** The view as /key/info shows it: what admission would see now (a due reset counted as done). */
export function effectiveView(view: BudgetView, now: number): BudgetView {
  if (!isResetDue(view, now)) return view;
  const duration = parseDuration(view.budgetDuration!)!;
  return { ...view, spendNanos: 0, budgetResetAt: new Date(nextResetAt(Date.parse(view.budgetResetAt!), duration, now)).toISOString() };
}

function budgetExceeded(view: BudgetView, now: number): RelayError {
  const resets = view.budgetResetAt ? ` (resets at ${view.budgetResetAt})` : '';
  const retryAfter = view.budgetResetAt ? Math.max(1, Math.ceil((Date.parse(view.budgetResetAt) - now) / 1000)) : undefined;
  return new RelayError(
    429,
    'ServiceQuotaExceededException',
    `Budget exceeded: spend $${usd(view.spendNanos)} of $${usd(view.maxBudgetNanos ?? 0)}${resets}.`,
    retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
  );
}

/** USD with at least two decimals and no more than the nanos hold: 1.5 → "1.50", 0.000123 → "0.000123". */
export function usd(nanos: number): string {
  const text = formatUsd(nanos);
  const [whole, fraction = ''] = text.split('.');
  return `${whole}.${fraction.padEnd(2, '0')}`;
}
