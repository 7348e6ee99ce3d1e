/**
 * Budgets with LiteLLM's semantics: `max_budget` (USD) caps `spend` over a period of
 * `budget_duration`; at `budget_reset_at` the spend goes back to 0 and `budget_reset_at` moves on.
 *
 * Reservations (issue 11). Each call of a budgeted key reserves its worst-case cost
 * (lambda/accounting/reservation.ts) at admission, in ONE conditional UpdateItem on the key item:
 *
 *   SET rsv:<call id> = {c: cost, x: expiry, m: model, d: day}
 *   ADD spend_nanos :c, reserved_nanos :c
 *   IF  spend_nanos ≤ max_budget − c   (spend_nanos already holds every reservation in flight)
 *   AND max_budget, budget_reset_at are what admission priced against, key live.
 *
 * So `spend_nanos` on the item is settled spend + outstanding reservations, and no number of
 * concurrent admissions can promise more than the budget: each one's condition sees all the
 * others' reservations. Settle (ledger.ts) swaps the reservation for the actual cost in one
 * UpdateItem (REMOVE rsv:<id>, ADD spend_nanos actual − c, reserved_nanos −c). Reads of the key
 * (/key/info, the KeyRecord) show settled spend: spend_nanos − reserved_nanos.
 *
 * A reservation that is never settled (process killed, Lambda timeout) expires after
 * RESERVATION_TTL_MS and is then charged at its reserved amount and counted as unsettled (the
 * sweep below): a crash never makes a call free, and never holds budget for ever. The sweep runs
 * when an admission finds the budget exhausted and when /key/info is read.
 *
 * Calls that reserve nothing (no price known, an operation that bills no tokens) are admitted
 * while spend_nanos < max_budget, with a consistent read and no write, as before.
 *
 * - The reset is one conditional UpdateItem, `SET spend_nanos = reserved_nanos, budget_reset_at
 *   = <next>` under the condition `budget_reset_at = <the value seen>`: exactly one environment
 *   resets; reservations still in flight stay counted (their settle lands in the new period).
 * - The next reset is the old one plus whole durations until it lies in the future, so resets
 *   stay on their schedule (a "1d" key created at 09:00 resets at 09:00 every day), however long
 *   the key was idle. (LiteLLM computes now + duration; the schedule form is steadier.)
 */
import { DEFAULT_RETRY, realSleep, withRetry } from './retry.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RelayError } from '../http/errors.js';
import { addDuration, parseDuration, type ParsedDuration } from '../keys/duration.js';
import {
  ItemTable,
  Update,
  and,
  atMost,
  equals,
  exists,
  expectApplied,
  ifNotExists,
  isConditionalFailure,
  keyItemKey,
  liveKey,
  notExists,
  or,
} from '../store/items.js';
import type { KeyRecord } from '../keys/types.js';
import { formatUsd, usdToNanos } from '../pricing/units.js';
import { KEY_COUNTERS, RESERVATION_PREFIX, RESERVED_ATTRIBUTE, reservationAttribute, type ReservationEntry } from './items.js';

export interface BudgetDeps {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly clock: () => number;
  /** Called after a reset attempt so this environment's key cache stops serving the old schedule. */
  readonly onReset?: (token: string) => void;
  /** Books an expired reservation's charge in the usage items (the key item is done here). */
  readonly onUnsettled?: (token: string, id: string, entry: ReservationEntry) => Promise<void>;
}

/** What admission reserves for one call. */
export interface BudgetReservation {
  readonly id: string;
  readonly costNanos: number;
  readonly model: string;
  readonly day: string;
  readonly expiresAt: number;
}

export interface BudgetView {
  /** Settled spend of the period (what /key/info shows). */
  readonly spendNanos: number;
  /** Reservations of calls in flight, not yet in spendNanos. */
  readonly reservedNanos?: number;
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
  private readonly items: ItemTable;

  constructor(private readonly deps: BudgetDeps) {
    this.items = new ItemTable(deps.doc, deps.table);
  }

  /** Does this key need a look at its budget on each call? */
  static applies(record: KeyRecord, now: number): boolean {
    return record.max_budget !== undefined || isResetDue(viewOf(record), now);
  }

  /**
   * Admits the call or refuses it with 429 ServiceQuotaExceededException; resets the budget
   * first when the reset is due. With a reservation (cost > 0), admission is the one
   * conditional write described above; returns true when it reserved (settle must swap it).
   * Store errors propagate as they are (admission answers 503).
   */
  async admit(token: string, cached: KeyRecord, reservation?: BudgetReservation): Promise<boolean> {
    const now = this.deps.clock();
    if (cached.max_budget === undefined) {
      // No cap to enforce: only keep the schedule (spend_nanos is the period's spend, as in LiteLLM).
      if (isResetDue(viewOf(cached), now)) await this.reset(token, viewOf(cached), now);
      return false;
    }
    let view: StoredBudget | undefined = { ...viewOf(cached), reservedNanos: cached.reserved_nanos ?? 0, maxBudgetUsd: cached.max_budget, expired: [] };
    let swept = false;
    for (let attempt = 0; attempt < 4; attempt++) {
      if (isResetDue(view, now)) {
        await this.reset(token, view, now);
        view = await this.readStored(token);
        if (!view) throw keyGone();
      }
      if (view.maxBudgetNanos === undefined) return false;
      if (!reservation || reservation.costNanos <= 0) {
        // Nothing to reserve: a consistent read decides (attempt 0 only had the cached view).
        if (attempt === 0) {
          view = await this.readStored(token);
          if (!view) throw keyGone();
          if (isResetDue(view, now)) continue;
        }
        if (view.maxBudgetNanos === undefined) return false;
        if (view.spendNanos + (view.reservedNanos ?? 0) < view.maxBudgetNanos) return false;
        if (!swept && view.expired.length > 0) {
          swept = true;
          await this.sweep(token, view.expired);
          view = await this.readStored(token);
          if (!view) throw keyGone();
          continue;
        }
        throw budgetExceeded(view, now);
      }
      if (await this.tryReserve(token, view, reservation)) return true;
      // Refused by the condition: find out why from the item as it is now.
      view = await this.readStored(token);
      if (!view) throw keyGone();
      if (isResetDue(view, now)) continue;
      if (view.maxBudgetNanos === undefined) return false;
      if (!swept && view.expired.length > 0) {
        swept = true;
        await this.sweep(token, view.expired);
        view = await this.readStored(token);
        if (!view) throw keyGone();
        continue;
      }
      const committed = view.spendNanos + (view.reservedNanos ?? 0);
      if (committed + reservation.costNanos > view.maxBudgetNanos) throw budgetExceeded(view, now, reservation.costNanos);
      // The budget or its schedule changed since it was cached: try again with the values read.
    }
    throw new Error('budget admission did not settle after 4 attempts');
  }

  /** Gives a reservation back (the call was refused by a later check). */
  async release(token: string, reservation: BudgetReservation): Promise<void> {
    const rsv = reservationAttribute(reservation.id);
    const released = new Update().remove(rsv).add(KEY_COUNTERS.spend, -reservation.costNanos).add(RESERVED_ATTRIBUTE, -reservation.costNanos);
    // If it is already gone (regenerated meanwhile), it expires and is charged like an unsettled call.
    await this.items.update(keyItemKey(token), released, { condition: exists(rsv) });
  }

  /** The key's budget as stored now (strongly consistent); undefined if the key is gone or superseded. */
  async read(token: string): Promise<StoredBudget | undefined> {
    return this.readStored(token);
  }

  /**
   * Charges expired reservations (see the module comment). Each is removed only if it is still
   * the one read, so a settle racing the sweep wins or loses as a whole, never both.
   */
  async sweep(token: string, expired: ReadonlyArray<readonly [string, ReservationEntry]>): Promise<number> {
    let charged = 0;
    for (const [id, entry] of expired) {
      const rsv = reservationAttribute(id);
      // spend_nanos already holds the reservation: it stays, as the charge.
      const charge = new Update()
        .remove(rsv)
        .add(RESERVED_ATTRIBUTE, -entry.c)
        .add(KEY_COUNTERS.lifetimeSpend, entry.c)
        .add(KEY_COUNTERS.requests, 1)
        .add(KEY_COUNTERS.unsettled, 1);
      const stillHeld = and(equals([rsv, 'x'], entry.x), equals([rsv, 'c'], entry.c));
      try {
        await withRetry(async () => expectApplied(await this.items.update(keyItemKey(token), charge, { condition: stillHeld })), DEFAULT_RETRY, realSleep);
      } catch (error) {
        if (isConditionalFailure(error)) continue; // settled or swept meanwhile
        throw error;
      }
      charged++;
      await this.deps.onUnsettled?.(token, id, entry);
    }
    return charged;
  }

  private async tryReserve(token: string, view: StoredBudget, reservation: BudgetReservation): Promise<boolean> {
    const entry: ReservationEntry = { c: reservation.costNanos, x: reservation.expiresAt, m: reservation.model, d: reservation.day };
    // spend_nanos + c ≤ max ⇔ spend_nanos ≤ max − c (DynamoDB conditions cannot add).
    const limit = view.maxBudgetNanos! - reservation.costNanos;
    if (limit < 0) throw budgetExceeded(view, this.deps.clock(), reservation.costNanos);
    const reserving = new Update()
      .set(reservationAttribute(reservation.id), entry)
      .add(KEY_COUNTERS.spend, reservation.costNanos)
      .add(RESERVED_ATTRIBUTE, reservation.costNanos);
    const condition = and(
      liveKey,
      equals('max_budget', view.maxBudgetUsd),
      or(notExists(KEY_COUNTERS.spend), atMost(KEY_COUNTERS.spend, limit)),
      view.budgetResetAt !== undefined ? equals('budget_reset_at', view.budgetResetAt) : notExists('budget_reset_at'),
    );
    return (await this.items.update(keyItemKey(token), reserving, { condition })).status === 'applied';
  }

  private async readStored(token: string): Promise<StoredBudget | undefined> {
    const item = await this.items.get(keyItemKey(token));
    if (!item || item.superseded_by !== undefined) return undefined;
    const now = this.deps.clock();
    const raw = typeof item[KEY_COUNTERS.spend] === 'number' ? (item[KEY_COUNTERS.spend] as number) : 0;
    const reserved = typeof item[RESERVED_ATTRIBUTE] === 'number' ? (item[RESERVED_ATTRIBUTE] as number) : 0;
    return {
      spendNanos: raw - reserved,
      reservedNanos: reserved,
      ...(typeof item.max_budget === 'number' ? { maxBudgetNanos: usdToNanos(item.max_budget), maxBudgetUsd: item.max_budget } : {}),
      ...(typeof item.budget_reset_at === 'string' ? { budgetResetAt: item.budget_reset_at } : {}),
      ...(typeof item.budget_duration === 'string' ? { budgetDuration: item.budget_duration } : {}),
      expired: reservationsOf(item).filter(([, entry]) => entry.x <= now),
    };
  }

  /** Resets spend if budget_reset_at is still what we saw; true if this call did it. */
  async reset(token: string, seen: Pick<BudgetView, 'budgetResetAt' | 'budgetDuration'>, now: number): Promise<boolean> {
    const duration = seen.budgetDuration ? parseDuration(seen.budgetDuration) : undefined;
    if (!duration || !seen.budgetResetAt) return false;
    const next = new Date(nextResetAt(Date.parse(seen.budgetResetAt), duration, now)).toISOString();
    const resetting = new Update()
      // Reservations in flight stay counted: spend_nanos keeps exactly them.
      .set(KEY_COUNTERS.spend, ifNotExists(RESERVED_ATTRIBUTE, 0))
      .set('budget_reset_at', next)
      .set('last_budget_reset_at', new Date(now).toISOString());
    try {
      const written = await this.items.update(keyItemKey(token), resetting, { condition: and(liveKey, equals('budget_reset_at', seen.budgetResetAt)) });
      // Not applied: someone else reset it first (or the key changed).
      return written.status === 'applied';
    } finally {
      this.deps.onReset?.(token);
    }
  }
}

export interface StoredBudget extends BudgetView {
  /** max_budget exactly as stored (USD), for the reservation's condition. */
  readonly maxBudgetUsd?: number;
  readonly expired: ReadonlyArray<readonly [string, ReservationEntry]>;
}

/** The reservations held on a key item: call id → entry. */
export function reservationsOf(item: Record<string, unknown>): Array<[string, ReservationEntry]> {
  const found: Array<[string, ReservationEntry]> = [];
  for (const [name, value] of Object.entries(item)) {
    if (!name.startsWith(RESERVATION_PREFIX) || typeof value !== 'object' || value === null) continue;
    const entry = value as Partial<ReservationEntry>;
    if (typeof entry.c === 'number' && typeof entry.x === 'number') {
      found.push([name.slice(RESERVATION_PREFIX.length), { c: entry.c, x: entry.x, m: String(entry.m ?? ''), d: String(entry.d ?? '') }]);
    }
  }
  return found;
}

function keyGone(): RelayError {
  return new RelayError(401, 'UnrecognizedClientException', 'The API key is not valid.');
}

export function viewOf(record: KeyRecord): BudgetView {
  return {
    spendNanos: record.spend_nanos,
    ...(record.reserved_nanos ? { reservedNanos: record.reserved_nanos } : {}),
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

function budgetExceeded(view: BudgetView, now: number, reservingNanos = 0): RelayError {
  const resets = view.budgetResetAt ? ` (resets at ${view.budgetResetAt})` : '';
  const retryAfter = view.budgetResetAt ? Math.max(1, Math.ceil((Date.parse(view.budgetResetAt) - now) / 1000)) : undefined;
  const inFlight = view.reservedNanos ? `, $${usd(view.reservedNanos)} reserved by calls in flight` : '';
  const worst =
    reservingNanos > 0
      ? ` This call could cost up to $${usd(reservingNanos)} (its input size and max tokens); state a lower max tokens to fit the remaining budget.`
      : '';
  return new RelayError(
    429,
    'ServiceQuotaExceededException',
    `Budget exceeded: spend $${usd(view.spendNanos)}${inFlight} of $${usd(view.maxBudgetNanos ?? 0)}${resets}.${worst}`,
    retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
  );
}

/** USD with at least two decimals and no more than the nanos hold: 1.5 → "1.50", 0.000123 → "0.000123". */
export function usd(nanos: number): string {
  const text = formatUsd(nanos);
  const [whole, fraction = ''] = text.split('.');
  return `${whole}.${fraction.padEnd(2, '0')}`;
}
