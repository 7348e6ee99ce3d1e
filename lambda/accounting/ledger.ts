/**
 * The ledger: after a call's last byte, its tokens and cost are added to the key with single-item
 * atomic UpdateItems (ADD), never read-modify-write, so concurrent calls in any number of Lambda
 * environments sum exactly. Two writes per call, run concurrently:
 *
 *   key   item  KEY#<token> / KEY                        ADD spend_nanos, total_* counters
 *   usage item  KEY#<token> / USAGE#<day>#<model>        ADD tokens, requests, cost_nanos…
 *
 * (Master-key calls have no key item: only the usage part, under KEY#MASTER.)
 *
 * The key write is conditional on the key existing and not being superseded: a key regenerated
 * while the call was in flight is followed to its successor (regenerate copies spend first, then
 * marks the old item superseded in one conditional write, so every ADD lands exactly once, on one
 * side or the other). A deleted key gets no key write (its usage item is still written).
 *
 * Each part is retried with backoff. A part that still fails is logged ONCE as a structured
 * record, message "ledger-write-failed" with a `replay` object holding everything needed to
 * apply it later (`relay ledger replay`). Replays are idempotent per (call id, part):
 *
 *   1. a marker item LEDGER#<call id>#<part> says "applied": if it exists, nothing is done;
 *   2. otherwise the ADD is applied together with `ADD ledger_replaying {id}` under the condition
 *      `NOT contains(ledger_replaying, id)` — one atomic write that both applies and remembers;
 *   3. the marker is written; 4. the id is removed from ledger_replaying again.
 *   A replay interrupted after 2 finds the id in the set (the condition fails) and resumes at 3;
 *   one interrupted after 3 finds the marker. The set holds only replays in progress, so it stays
 *   tiny. Markers expire after REPLAY_MARKER_TTL_DAYS: replaying the same record after that would
 *   apply it again. Two replays of the same record must not run at the same moment (the CLI
 *   applies records one after another).
 *
 * What no scheme without transactions can settle: a write that DynamoDB applied but whose answer
 * was lost (a timeout) is retried, or logged for replay, and then counted twice. DynamoDB's own
 * SDK retries carry the same risk; errors that say the write was not applied (throttling,
 * validation, failed conditions) never double-count.
 */
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ItemTable, Update, and, contains, exists, keyItemKey, liveKey, not, notExists, type Condition, type ItemKey } from '../store/items.js';
import type { LogFn } from '../observability/log.js';
import {
  KEY_COUNTERS,
  MASTER_PRINCIPAL,
  RESERVED_ATTRIBUTE,
  reservationAttribute,
  type ReservationEntry,
  REPLAYING_ATTRIBUTE,
  REPLAY_MARKER_TTL_DAYS,
  USAGE_COUNTERS,
  keyPartition,
  replayMarkerSortKey,
  usageSortKey,
  usageTtl,
} from './items.js';
import { DEFAULT_RETRY, realSleep, withRetry, type RetryPolicy, type Sleep } from './retry.js';

export type LedgerPart = 'key' | 'usage';
export const LEDGER_PARTS: readonly LedgerPart[] = ['key', 'usage'];

export interface LedgerTokens {
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly guardrailUnits: number;
}

/** One call's contribution, in plain JSON (it is also the body of a replay record). */
export interface LedgerEntry {
  /** The request id: unique per call, the idempotency id of replays. */
  readonly callId: string;
  /** The key's token (SHA-256 of the secret, not a secret), or MASTER. */
  readonly token: string;
  readonly keyAlias?: string;
  /** The usage item's model label. */
  readonly model: string;
  /** UTC day the call is booked on. */
  readonly day: string;
  /** When the call ended (ISO). */
  readonly at: string;
  readonly tokens: LedgerTokens;
  readonly costNanos: number;
  /** Tokens were reported but no price is known for the model. */
  readonly unpriced: boolean;
  /** The call failed (status ≥ 400, or the upstream broke mid-stream). */
  readonly failed: boolean;
  /**
   * The worst-case cost reserved at admission under `rsv:<callId>` (budget.ts); the key write
   * swaps it for costNanos. Absent or 0: nothing was reserved.
   */
  readonly reservedNanos?: number;
  /** Usage estimated from what was delivered (the stream ended before its usage event). */
  readonly estimated?: boolean;
  /** The day the reservation was booked under (for correcting a sweep's charge). */
  readonly reservationDay?: string;
  /**
   * Set only on a coalesced batch of calls that reserved nothing (coalescing-ledger.ts): how many
   * calls it sums, and how many of them failed, were unpriced, were estimated. Absent: one call,
   * counted from the flags above. Never part of a replay record (batches are replayed per call).
   */
  readonly calls?: LedgerCallCounts;
}

export interface LedgerCallCounts {
  readonly requests: number;
  readonly errors: number;
  readonly unpriced: number;
  readonly estimated: number;
}

/** What "ledger-write-failed" log records carry under `replay`. */
export interface ReplayRecord extends LedgerEntry {
  readonly v: 1;
  /** The table the write was meant for (informational: the replay writes to the table it is pointed at). */
  readonly table: string;
  /** The parts that were not written. */
  readonly parts: readonly LedgerPart[];
}

export type PartOutcome = 'applied' | 'already-applied' | 'key-missing';

export interface LedgerWriteResult {
  readonly failed: readonly LedgerPart[];
  readonly keyMissing: boolean;
}

export interface LedgerDeps {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly log: LogFn;
  readonly clock: () => number;
  readonly retry?: RetryPolicy;
  readonly sleep?: Sleep;
}

const MAX_SUCCESSOR_HOPS = 3;

/** The successor of a regenerated key is written just after the old one is marked: worth retrying. */
class SuccessorPending extends Error {
  constructor(token: string) {
    super(`the successor key ${token.slice(0, 12)}… is not written yet`);
    this.name = 'SuccessorPending';
  }
}

export class Ledger {
  private readonly retry: RetryPolicy;
  private readonly sleep: Sleep;
  private readonly items: ItemTable;

  constructor(private readonly deps: LedgerDeps) {
    this.retry = deps.retry ?? DEFAULT_RETRY;
    this.sleep = deps.sleep ?? realSleep;
    this.items = new ItemTable(deps.doc, deps.table);
  }

  get table(): string {
    return this.deps.table;
  }

  /** Writes a call's usage; never throws. Parts that fail past the retries are logged for replay. */
  async record(entry: LedgerEntry): Promise<LedgerWriteResult> {
    const parts: LedgerPart[] = entry.token === MASTER_PRINCIPAL ? ['usage'] : ['key', 'usage'];
    const results = await Promise.allSettled(parts.map((part) => withRetry(() => this.applyPart(part, entry), this.retry, this.sleep)));
    const failed: LedgerPart[] = [];
    let lastError: unknown;
    let keyMissing = false;
    results.forEach((result, index) => {
      if (result.status === 'rejected') {
        failed.push(parts[index]!);
        lastError = result.reason;
      } else if (result.value.outcome === 'key-missing') {
        keyMissing = true;
      }
    });
    if (keyMissing) {
      // Deleted while the call ran: there is no balance left to charge; the usage item has it.
      this.deps.log('warn', 'ledger-key-missing', { requestId: entry.callId, keyAlias: entry.keyAlias });
    }
    if (failed.length > 0) {
      const replay: ReplayRecord = { v: 1, table: this.deps.table, ...entry, parts: failed };
      this.deps.log('error', 'ledger-write-failed', { requestId: entry.callId, error: describeError(lastError), replay });
    }
    return { failed, keyMissing };
  }

  /** Applies a replay record's parts exactly once (see the module comment). */
  async replay(record: ReplayRecord): Promise<Partial<Record<LedgerPart, PartOutcome>>> {
    const outcomes: Partial<Record<LedgerPart, PartOutcome>> = {};
    for (const part of record.parts) {
      if (part === 'key' && record.token === MASTER_PRINCIPAL) continue;
      outcomes[part] = await withRetry(() => this.replayPart(part, record), this.retry, this.sleep);
    }
    return outcomes;
  }

  // ── internals ──

  private async replayPart(part: LedgerPart, entry: LedgerEntry): Promise<PartOutcome> {
    const replayId = `${entry.callId}#${part}`;
    const marker: ItemKey = { pk: keyPartition(entry.token), sk: replayMarkerSortKey(entry.callId, part) };
    const found = await this.items.get(marker);
    if (found) {
      const target = found.applied_to as ItemKey | undefined;
      if (target) await this.clearReplaying(target, replayId);
      return 'already-applied';
    }
    const { outcome, target } = await this.applyPart(part, entry, replayId);
    if (outcome === 'key-missing') return outcome;
    await this.items.put({
      ...marker,
      applied_to: target,
      applied_at: new Date(this.deps.clock()).toISOString(),
      ttl: Math.floor(this.deps.clock() / 1000) + REPLAY_MARKER_TTL_DAYS * 86_400,
    });
    await this.clearReplaying(target, replayId);
    return outcome;
  }

  private async applyPart(part: LedgerPart, entry: LedgerEntry, replayId?: string): Promise<{ outcome: PartOutcome; target: ItemKey }> {
    return part === 'key' ? this.applyKey(entry, replayId) : this.applyUsage(entry, replayId);
  }

  private async applyKey(entry: LedgerEntry, replayId?: string): Promise<{ outcome: PartOutcome; target: ItemKey }> {
    let token = entry.token;
    const reserved = entry.reservedNanos ?? 0;
    // With a reservation: first as a swap (its entry still there); if a sweep charged it already
    // (the call outlived RESERVATION_TTL_MS), as a correction of that charge.
    let variant: KeyVariant = reserved > 0 ? 'swap' : 'plain';
    for (let hop = 0; hop <= MAX_SUCCESSOR_HOPS + 1; hop++) {
      const target = keyItemKey(token);
      const { update, condition } = keyUpdate(entry, variant, replayId);
      if ((await this.items.update(target, update, { condition })).status === 'applied') {
        if (variant === 'correction') await this.correctUnsettledUsage(entry);
        return { outcome: 'applied', target };
      }
      const item = await this.items.get(target, { projection: ['pk', 'superseded_by', REPLAYING_ATTRIBUTE, reservationAttribute(entry.callId)] });
      if (!item) {
        if (token === entry.token) return { outcome: 'key-missing', target };
        throw new SuccessorPending(token);
      }
      if (replayId && hasMember(item[REPLAYING_ATTRIBUTE], replayId)) return { outcome: 'already-applied', target };
      if (typeof item.superseded_by === 'string') {
        token = item.superseded_by;
        continue;
      }
      if (variant === 'swap' && item[reservationAttribute(entry.callId)] === undefined) {
        variant = 'correction';
        continue;
      }
      if (variant === 'correction' && item[reservationAttribute(entry.callId)] !== undefined) {
        variant = 'swap';
        continue;
      }
      throw new Error('ledger condition failed on a live key');
    }
    throw new Error('too many key regenerations to follow');
  }

  /**
   * A call that settles after the sweep charged its reservation: the sweep booked the reserved
   * cost and one unsettled request in the usage item of the reservation's day and model; take
   * them back out (the settle's own usage write books the actual figures).
   */
  private async correctUnsettledUsage(entry: LedgerEntry): Promise<void> {
    const reserved = entry.reservedNanos ?? 0;
    const charged = adds(
      [
        [USAGE_COUNTERS.cost, -reserved],
        [USAGE_COUNTERS.requests, -1],
        [USAGE_COUNTERS.unsettled, -1],
      ],
      undefined,
    );
    await this.items
      .update(usageKey(entry.token, entry.reservationDay ?? entry.day, entry.model), charged)
      .catch((error: unknown) => this.deps.log('warn', 'unsettled-usage-correction-failed', { requestId: entry.callId, error: describeError(error) }));
  }

  /** Books a swept (never settled) reservation in its usage item: charged at the reserved cost. */
  async recordUnsettled(token: string, callId: string, reservation: ReservationEntry): Promise<void> {
    const day = reservation.d || new Date(this.deps.clock()).toISOString().slice(0, 10);
    const update = labelled(
      adds(
        [
          [USAGE_COUNTERS.requests, 1],
          [USAGE_COUNTERS.unsettled, 1],
          [USAGE_COUNTERS.cost, reservation.c],
        ],
        undefined,
      ),
      day,
      reservation.m,
    );
    try {
      await withRetry(() => this.items.update(usageKey(token, day, reservation.m), update), this.retry, this.sleep);
    } catch (error) {
      // The key item has the charge; only the per-day report misses it.
      this.deps.log('error', 'unsettled-usage-write-failed', { requestId: callId, error: describeError(error) });
    }
  }

  private async applyUsage(entry: LedgerEntry, replayId?: string): Promise<{ outcome: PartOutcome; target: ItemKey }> {
    const target = usageKey(entry.token, entry.day, entry.model);
    const written = await this.items.update(target, usageUpdate(entry, replayId), { condition: notReplayed(replayId) });
    return { outcome: written.status === 'applied' ? 'applied' : 'already-applied', target };
  }

  /** Step 4 of a replay; never creates an item (the key may have been deleted since). */
  private async clearReplaying(target: ItemKey, replayId: string): Promise<void> {
    await this.items.update(target, new Update().delete(REPLAYING_ATTRIBUTE, new Set([replayId])), { condition: exists('pk') });
  }
}

function usageKey(token: string, day: string, model: string): ItemKey {
  return { pk: keyPartition(token), sk: usageSortKey(day, model) };
}

/** ADDs the counters; a replay also adds its id to ledger_replaying (see the module comment). */
function adds(counters: ReadonlyArray<readonly [string, number]>, replayId: string | undefined): Update {
  const update = new Update();
  for (const [attribute, value] of counters) update.add(attribute, value);
  if (replayId) update.add(REPLAYING_ATTRIBUTE, new Set([replayId]));
  return update;
}

/** A replay applies only while its id is not in ledger_replaying: one write both applies and remembers. */
function notReplayed(replayId: string | undefined): Condition | undefined {
  return replayId ? not(contains(REPLAYING_ATTRIBUTE, replayId)) : undefined;
}

/** A usage item carries its day and model as attributes too, and expires after USAGE_TTL_DAYS. */
function labelled(update: Update, day: string, model: string): Update {
  return update.set('day', day).set('model', model).set('ttl', usageTtl(day));
}

type KeyVariant = 'plain' | 'swap' | 'correction';

/**
 * plain:      no reservation: ADD the cost to spend.
 * swap:       the reservation is still held: REMOVE it, ADD cost − reserved to spend (which held
 *             the reservation), −reserved to reserved_nanos.
 * correction: a sweep charged the reservation (spend kept it, lifetime spend and requests got
 *             it, one unsettled request): ADD cost − reserved to both spends, no request, −1
 *             unsettled.
 */
function keyUpdate(entry: LedgerEntry, variant: KeyVariant, replayId?: string): { update: Update; condition: Condition } {
  const t = entry.tokens;
  const calls = callCounts(entry);
  const reserved = variant === 'plain' ? 0 : (entry.reservedNanos ?? 0);
  const counters: Array<readonly [string, number]> = [
    [KEY_COUNTERS.spend, entry.costNanos - reserved],
    [KEY_COUNTERS.lifetimeSpend, variant === 'correction' ? entry.costNanos - reserved : entry.costNanos],
    [KEY_COUNTERS.input, t.input],
    [KEY_COUNTERS.output, t.output],
    [KEY_COUNTERS.cacheRead, t.cacheRead],
    [KEY_COUNTERS.cacheWrite, t.cacheWrite],
    [KEY_COUNTERS.requests, variant === 'correction' ? 0 : calls.requests],
    [KEY_COUNTERS.unpriced, calls.unpriced],
  ];
  if (calls.estimated > 0) counters.push([KEY_COUNTERS.estimated, calls.estimated]);
  if (variant === 'swap') counters.push([RESERVED_ATTRIBUTE, -reserved]);
  if (variant === 'correction') counters.push([KEY_COUNTERS.unsettled, -1]);
  const update = adds(counters, replayId);
  const reservation = reservationAttribute(entry.callId);
  if (variant === 'swap') update.remove(reservation);
  const held = variant === 'swap' ? exists(reservation) : variant === 'correction' ? notExists(reservation) : undefined;
  return { update, condition: and(liveKey, held, notReplayed(replayId)) };
}

function usageUpdate(entry: LedgerEntry, replayId?: string): Update {
  const t = entry.tokens;
  const calls = callCounts(entry);
  const counters = adds(
    [
      [USAGE_COUNTERS.input, t.input],
      [USAGE_COUNTERS.output, t.output],
      [USAGE_COUNTERS.cacheRead, t.cacheRead],
      [USAGE_COUNTERS.cacheWrite, t.cacheWrite],
      [USAGE_COUNTERS.guardrailUnits, t.guardrailUnits],
      [USAGE_COUNTERS.requests, calls.requests],
      [USAGE_COUNTERS.errors, calls.errors],
      [USAGE_COUNTERS.unpriced, calls.unpriced],
      [USAGE_COUNTERS.cost, entry.costNanos],
      ...(calls.estimated > 0 ? ([[USAGE_COUNTERS.estimated, calls.estimated]] as const) : []),
    ],
    replayId,
  );
  return labelled(counters, entry.day, entry.model);
}

/** The calls an entry counts: a coalesced batch carries its counts, a single call is one, counted from its flags. */
function callCounts(entry: LedgerEntry): LedgerCallCounts {
  return (
    entry.calls ?? {
      requests: 1,
      errors: entry.failed ? 1 : 0,
      unpriced: entry.unpriced ? 1 : 0,
      estimated: entry.estimated ? 1 : 0,
    }
  );
}

function hasMember(set: unknown, value: string): boolean {
  if (set instanceof Set) return set.has(value);
  return Array.isArray(set) && set.includes(value);
}

/** An error as a log field: its name and message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

// ── replay records from logs ──

const TOKEN_PATTERN = /^([0-9a-f]{64}|MASTER)$/;
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A replay record from one log line: the Powertools JSON record (with `replay`), the bare
 * `replay` object, or either after a prefix (CloudWatch's `timestamp\trequest id\tLEVEL\t`).
 * Returns undefined for lines that are not ledger failures; throws for ones that are but are damaged.
 */
export function replayRecordFromLine(line: string): ReplayRecord | undefined {
  const start = line.indexOf('{');
  if (start < 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(line.slice(start));
  } catch {
    if (line.includes('ledger-write-failed')) throw new Error('a ledger-write-failed line that is not valid JSON');
    return undefined;
  }
  if (!isObject(parsed)) return undefined;
  const candidate = isObject(parsed.replay) ? parsed.replay : parsed.v === 1 && 'parts' in parsed ? parsed : undefined;
  if (candidate === undefined) {
    if (parsed.message === 'ledger-write-failed') throw new Error('a ledger-write-failed record without a replay object');
    return undefined;
  }
  return parseReplayRecord(candidate);
}

export function parseReplayRecord(value: Record<string, unknown>): ReplayRecord {
  const fail = (field: string): never => {
    throw new Error(`invalid replay record: ${field}`);
  };
  const count = (v: unknown, field: string): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : fail(field));
  const text = (v: unknown, field: string, max = 2048): string => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : fail(field));
  if (value.v !== 1) fail('v');
  const token = text(value.token, 'token');
  if (!TOKEN_PATTERN.test(token)) fail('token');
  const day = text(value.day, 'day');
  if (!DAY_PATTERN.test(day)) fail('day');
  const at = text(value.at, 'at');
  if (Number.isNaN(Date.parse(at))) fail('at');
  const tokens = isObject(value.tokens) ? value.tokens : fail('tokens');
  const parts = Array.isArray(value.parts) ? value.parts : fail('parts');
  if (parts.length === 0 || parts.some((part) => !LEDGER_PARTS.includes(part as LedgerPart))) fail('parts');
  if (typeof value.unpriced !== 'boolean') fail('unpriced');
  if (typeof value.failed !== 'boolean') fail('failed');
  return {
    v: 1,
    table: typeof value.table === 'string' ? value.table : '',
    callId: text(value.callId, 'callId', 256),
    token,
    ...(typeof value.keyAlias === 'string' ? { keyAlias: value.keyAlias } : {}),
    model: text(value.model, 'model', 400),
    day,
    at,
    tokens: {
      input: count(tokens.input, 'tokens.input'),
      output: count(tokens.output, 'tokens.output'),
      cacheRead: count(tokens.cacheRead, 'tokens.cacheRead'),
      cacheWrite: count(tokens.cacheWrite, 'tokens.cacheWrite'),
      guardrailUnits: count(tokens.guardrailUnits ?? 0, 'tokens.guardrailUnits'),
    },
    costNanos: count(value.costNanos, 'costNanos'),
    unpriced: value.unpriced as boolean,
    failed: value.failed as boolean,
    ...(value.reservedNanos !== undefined ? { reservedNanos: count(value.reservedNanos, 'reservedNanos') } : {}),
    ...(value.reservationDay !== undefined
      ? { reservationDay: DAY_PATTERN.test(text(value.reservationDay, 'reservationDay')) ? (value.reservationDay as string) : fail('reservationDay') }
      : {}),
    ...(value.estimated === true ? { estimated: true } : {}),
    parts: [...new Set(parts as LedgerPart[])],
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
