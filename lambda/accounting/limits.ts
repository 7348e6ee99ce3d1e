/**
 * Rate and concurrency limits that hold across Lambda environments, on DynamoDB atomic counters.
 *
 * rpm / tpm — fixed 60-second windows (wall-clock minutes, UTC). One item per key and minute,
 * RL#w#<minute>, holds `requests` and `tokens`; per-model limits (model_rpm_limit /
 * model_tpm_limit) get their own item per entry, RL#w#<minute>#m#<entry>. Admission is ONE
 * conditional UpdateItem per window item:
 *
 *     ADD requests 1, tokens r   IF (requests < rpm_limit) AND (tokens ≤ tpm_limit − r)
 *
 * where r is the call's worst-case token count (lambda/accounting/reservation.ts: input bound +
 * max tokens), reserved at admission (issue 11). Concurrent calls in any number of environments
 * can therefore never together pass rpm_limit, nor tpm_limit, in a window: the condition and the
 * increment are one atomic step, and a refused call adds nothing. When the call ends, the
 * reservation is swapped for the actual count in the same window item (ADD tokens actual − r).
 * A call that is never settled keeps its reservation in its window, which is over within the
 * minute: a crash can never hold a tpm limit longer than that. Calls that reserve nothing
 * (operations that bill no tokens) are admitted while tokens < tpm_limit.
 * Why fixed windows: one item and one write per call; a sliding window needs either a log of
 * timestamps (read-modify-write) or two windows read and weighted (an approximation anyway).
 * Their known property: a burst of up to 2 × rpm_limit can pass within a short time around a
 * minute boundary (rpm_limit at the end of one minute, rpm_limit at the start of the next);
 * over any whole minute-aligned window the limit holds exactly.
 *
 * max_parallel_requests — leases. One item per key, RL#par, holds a map {lease id → expiry ms}.
 * Acquiring is one conditional UpdateItem, `SET leases.<id> = <expiry> IF size(leases) < max`;
 * releasing is `REMOVE leases.<id>`. A lease is renewed (heartbeat) while its call runs, so a
 * crashed or frozen invocation's lease lapses within the lease TTL. Expired leases are not
 * counted by a clock-free condition, so they are swept when they matter: when an acquire is
 * refused, the item is read, leases past their expiry are removed (each under the condition
 * that its expiry is unchanged, so a lease renewed meanwhile survives), and the acquire is retried.
 * A crashed invocation can therefore hold a slot for at most the lease TTL.
 *
 * Keys without these limits never reach this module: no read, no write.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { RelayError } from '../http/errors.js';
import {
  ItemTable,
  Update,
  and,
  atMost,
  below,
  equals,
  exists,
  expectApplied,
  notExists,
  or,
  sizeBelow,
  type Condition,
  type ItemKey,
  type WriteResult,
} from '../store/items.js';
import type { KeyRecord } from '../keys/types.js';
import { modelAllowed, normalizeModelId } from '../models/ids.js';
import type { LogFn } from '../observability/log.js';
import { LEASES_SORT_KEY, WINDOW_MS, keyPartition, windowOf, windowSortKey, windowTtl } from './items.js';

export interface LimitDeps {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly clock: () => number;
  readonly log?: LogFn;
}

/** One window counter: the key's own (`scope` undefined) or one per-model entry. */
export interface RateScope {
  readonly scope?: string;
  readonly rpm?: number;
  readonly tpm?: number;
}

/** Per-model limits, LiteLLM's `model_rpm_limit` / `model_tpm_limit`: {model entry → limit}. */
export type ModelLimits = Readonly<Record<string, number>>;

/** The key's window counters that apply to a call to `model`. */
export function rateScopes(record: KeyRecord, model: string | undefined): RateScope[] {
  const scopes: RateScope[] = [];
  if (model !== undefined) {
    const normalized = normalizeModelId(model);
    const rpmEntry = matchingEntry(record.model_rpm_limit, normalized);
    const tpmEntry = matchingEntry(record.model_tpm_limit, normalized);
    // Entries for rpm and tpm may name the model differently: each gets its own counter then.
    if (rpmEntry !== undefined && rpmEntry === tpmEntry) {
      scopes.push({ scope: rpmEntry, rpm: record.model_rpm_limit![rpmEntry], tpm: record.model_tpm_limit![tpmEntry] });
    } else {
      if (rpmEntry !== undefined) scopes.push({ scope: rpmEntry, rpm: record.model_rpm_limit![rpmEntry] });
      if (tpmEntry !== undefined) scopes.push({ scope: tpmEntry, tpm: record.model_tpm_limit![tpmEntry] });
    }
  }
  if (record.rpm_limit !== undefined || record.tpm_limit !== undefined) {
    scopes.push({
      ...(record.rpm_limit !== undefined ? { rpm: record.rpm_limit } : {}),
      ...(record.tpm_limit !== undefined ? { tpm: record.tpm_limit } : {}),
    });
  }
  return scopes;
}

function matchingEntry(limits: ModelLimits | undefined, model: ReturnType<typeof normalizeModelId>): string | undefined {
  if (!limits) return undefined;
  return Object.keys(limits).find((entry) => modelAllowed(entry, model));
}

/** What admission took, so it can be given back (a later check refused) or charged tokens. */
export interface RateTicket {
  readonly window: number;
  readonly scopes: readonly RateScope[];
  /** Tokens reserved in each scope with a tpm limit. */
  readonly reservedTokens?: number;
}

export interface WindowCounts {
  readonly requests: number;
  readonly tokens: number;
}

export class RateWindows {
  private readonly items: ItemTable;

  constructor(private readonly deps: LimitDeps) {
    this.items = new ItemTable(deps.doc, deps.table);
  }

  /** Counts the call in each scope's window, or refuses with 429 ThrottlingException (nothing stays counted then). */
  async admit(token: string, scopes: readonly RateScope[], reserveTokens = 0): Promise<RateTicket> {
    const now = this.deps.clock();
    const window = windowOf(now);
    const taken: RateScope[] = [];
    const reserve = Math.max(0, Math.ceil(reserveTokens));
    try {
      for (const scope of scopes) {
        if (scope.rpm === 0 || scope.tpm === 0) throw throttled(scope, now, scope.rpm === 0 ? 'rpm' : 'tpm', 0);
        if (scope.tpm !== undefined && reserve > scope.tpm) throw tooBigForTpm(scope, reserve);
        const reserving = scope.tpm !== undefined && reserve > 0;
        const counted = new Update().add('requests', 1);
        if (reserving) counted.add('tokens', reserve);
        counted.set('ttl', windowTtl(window));
        const written = await this.items.update(windowKey(token, window, scope.scope), counted, { condition: windowCondition(scope, reserve) });
        if (written.status === 'condition-failed') {
          const counts = await this.read(token, window, scope.scope);
          const which = scope.tpm === undefined || (scope.rpm !== undefined && counts.requests >= scope.rpm) ? 'rpm' : 'tpm';
          throw throttled(scope, now, which, which === 'rpm' ? counts.requests : counts.tokens);
        }
        taken.push(scope);
      }
    } catch (error) {
      await this.refund(token, { window, scopes: taken, reservedTokens: reserve });
      throw error;
    }
    return { window, scopes: taken, reservedTokens: reserve };
  }

  /** Gives back the requests a ticket counted (the call was refused by a later check). */
  async refund(token: string, ticket: RateTicket): Promise<void> {
    await Promise.all(
      ticket.scopes.map(async (scope) => {
        const reserved = scope.tpm !== undefined ? (ticket.reservedTokens ?? 0) : 0;
        const given = new Update().add('requests', -1);
        if (reserved > 0) given.add('tokens', -reserved);
        try {
          // Never recreates a window item that is gone.
          expectApplied(await this.items.update(windowKey(token, ticket.window, scope.scope), given, { condition: exists('pk') }));
        } catch (error) {
          this.deps.log?.('warn', 'rate-limit refund failed', { error: (error as Error).name });
        }
      }),
    );
  }

  /**
   * A finished call's tokens, in the window it was admitted in: the reservation is swapped for
   * the actual count (ADD actual − reserved; with no reservation, ADD actual).
   */
  async settleTokens(token: string, ticket: RateTicket, tokens: number): Promise<void> {
    const counted = ticket.scopes.filter((scope) => scope.tpm !== undefined);
    const delta = tokens - (ticket.reservedTokens ?? 0);
    if (counted.length === 0 || delta === 0) return;
    await Promise.all(
      counted.map((scope) =>
        this.items.update(windowKey(token, ticket.window, scope.scope), new Update().add('tokens', delta).set('ttl', windowTtl(ticket.window))),
      ),
    );
  }

  async read(token: string, window: number, scope?: string): Promise<WindowCounts> {
    const item = (await this.items.get(windowKey(token, window, scope))) ?? {};
    return { requests: numberOr0(item.requests), tokens: numberOr0(item.tokens) };
  }
}

/** With a reservation r the token test is tokens ≤ tpm_limit − r (tokens + r ≤ tpm_limit: conditions cannot add). */
function windowCondition(scope: RateScope, reserve: number): Condition {
  return and(
    scope.rpm !== undefined ? or(notExists('requests'), below('requests', scope.rpm)) : undefined,
    scope.tpm !== undefined ? or(notExists('tokens'), reserve > 0 ? atMost('tokens', scope.tpm - reserve) : below('tokens', scope.tpm)) : undefined,
  );
}

function windowKey(token: string, window: number, scope?: string): ItemKey {
  return { pk: keyPartition(token), sk: windowSortKey(window, scope) };
}

function tooBigForTpm(scope: RateScope, reserve: number): RelayError {
  const subject = scope.scope === undefined ? 'this API key' : `model ${scope.scope} on this API key`;
  const field = scope.scope === undefined ? 'tpm_limit' : 'model_tpm_limit';
  return new RelayError(
    429,
    'ThrottlingException',
    `Rate limit exceeded: this call could use up to ${reserve} tokens (its input size and max tokens), more than the ${scope.tpm} tokens per minute ${subject} may use (${field}). State a lower max tokens.`,
  );
}

function throttled(scope: RateScope, now: number, which: 'rpm' | 'tpm', used: number): RelayError {
  const retryAfter = Math.max(1, Math.ceil(((windowOf(now) + 1) * WINDOW_MS - now) / 1000));
  const subject = scope.scope === undefined ? 'this API key' : `model ${scope.scope} on this API key`;
  const field = scope.scope === undefined ? `${which}_limit` : `model_${which}_limit`;
  const message =
    which === 'rpm'
      ? `Rate limit exceeded: ${subject} may make ${scope.rpm} requests per minute (${field}). Retry after ${retryAfter} s.`
      : `Rate limit exceeded: ${subject} may use ${scope.tpm} tokens per minute (${field}); ${used} used this minute. Retry after ${retryAfter} s.`;
  return new RelayError(429, 'ThrottlingException', message, { 'retry-after': String(retryAfter) });
}

// ── parallel-request leases ──

export interface LeaseOptions {
  /** How long a lease lives without renewal (default 90 s): the most a crashed invocation can hold a slot. */
  readonly ttlMs?: number;
  /** How often a running call renews its lease (default ttl / 3). */
  readonly renewEveryMs?: number;
}

export interface Lease {
  readonly id: string;
  release(): Promise<void>;
}

const MAX_ACQUIRE_ROUNDS = 5;
const MAX_SWEEP = 50;

export class Leases {
  readonly ttlMs: number;
  private readonly renewEveryMs: number;
  private readonly items: ItemTable;

  constructor(
    private readonly deps: LimitDeps,
    options: LeaseOptions = {},
  ) {
    this.items = new ItemTable(deps.doc, deps.table);
    this.ttlMs = options.ttlMs ?? 90_000;
    this.renewEveryMs = options.renewEveryMs ?? Math.max(1_000, Math.floor(this.ttlMs / 3));
  }

  /** Takes one of the key's `max` slots, or refuses with 429 ThrottlingException. */
  async acquire(token: string, max: number, leaseId: string): Promise<Lease> {
    const key = leasesKey(token);
    for (let round = 0; round < MAX_ACQUIRE_ROUNDS && max > 0; round++) {
      let written: WriteResult | undefined;
      try {
        const taking = new Update().set(['leases', leaseId], this.deps.clock() + this.ttlMs);
        written = await this.items.update(key, taking, { condition: and(exists('leases'), sizeBelow('leases', max)) });
      } catch (error) {
        // ValidationException: the item or its map does not exist yet (a key's first lease).
        if ((error as { name?: string }).name !== 'ValidationException') throw error;
      }
      if (written?.status === 'applied') return this.held(key, leaseId);
      const leases = await this.readLeases(token);
      if (leases === undefined) {
        await this.createItem(key);
        continue;
      }
      const now = this.deps.clock();
      const expired = Object.entries(leases).filter(([, expiry]) => expiry <= now);
      if (expired.length > 0) {
        await this.sweep(key, expired.slice(0, MAX_SWEEP));
        continue;
      }
      if (Object.keys(leases).length >= max) break;
      // A lease was released between our write and our read: try again.
    }
    throw new RelayError(
      429,
      'ThrottlingException',
      `Too many parallel requests: this API key may have ${max} in flight (max_parallel_requests). Retry after 1 s.`,
      { 'retry-after': '1' },
    );
  }

  /** Leases alive now: lease id → expiry (ms). Undefined when the key never had one. */
  async readLeases(token: string): Promise<Record<string, number> | undefined> {
    const leases = (await this.items.get(leasesKey(token)))?.leases;
    if (typeof leases !== 'object' || leases === null) return undefined;
    return Object.fromEntries(Object.entries(leases as Record<string, unknown>).map(([id, expiry]) => [id, numberOr0(expiry)]));
  }

  async liveCount(token: string): Promise<number> {
    const now = this.deps.clock();
    return Object.values((await this.readLeases(token)) ?? {}).filter((expiry) => expiry > now).length;
  }

  private async createItem(key: ItemKey): Promise<void> {
    if ((await this.items.putIfAbsent({ ...key, leases: {} })).status === 'applied') return;
    // The item exists but lost its map (e.g. edited by hand): give it one back.
    await this.items.update(key, new Update().set('leases', {}), { condition: notExists('leases') });
  }

  /** Removes expired leases, each only if it was not renewed since we read it. */
  private async sweep(key: ItemKey, expired: ReadonlyArray<readonly [string, number]>): Promise<void> {
    const swept = new Update();
    for (const [id] of expired) swept.remove(['leases', id]);
    // If another environment swept or renewed one of them first, nothing is removed: the next round reads again.
    await this.items.update(key, swept, { condition: and(...expired.map(([id, expiry]) => equals(['leases', id], expiry))) });
  }

  private held(key: ItemKey, leaseId: string): Lease {
    let released: Promise<void> | undefined;
    const renew = async () => {
      try {
        const renewing = new Update().set(['leases', leaseId], this.deps.clock() + this.ttlMs);
        expectApplied(await this.items.update(key, renewing, { condition: exists(['leases', leaseId]) }));
      } catch (error) {
        // Swept after a stall longer than the TTL: the call goes on, but no longer holds a slot.
        this.deps.log?.('warn', 'lease renewal failed', { error: (error as Error).name });
      }
    };
    const timer = setInterval(() => void renew(), this.renewEveryMs);
    // A renewal must never keep a process alive on its own.
    timer.unref();
    return {
      id: leaseId,
      release: () =>
        (released ??= (async () => {
          clearInterval(timer);
          try {
            expectApplied(await this.items.update(key, new Update().remove(['leases', leaseId]), { condition: exists('pk') }));
          } catch (error) {
            // It expires by itself within the TTL; nothing else to do.
            this.deps.log?.('warn', 'lease release failed', { error: (error as Error).name });
          }
        })()),
    };
  }
}

function leasesKey(token: string): ItemKey {
  return { pk: keyPartition(token), sk: LEASES_SORT_KEY };
}

function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
