/**
 * Usage writes coalesced per key, day and model over a short window: the LOCAL SERVER's ledger
 * (wired by lambda/local/server.ts through AppOverrides; Lambda keeps one ledger write per call,
 * durable before its invocation ends).
 *
 * Why: every relayed call writes its key item and its usage item (ledger.ts). On one process with
 * an embedded store those two UpdateItems per call (SDK middleware, SigV4, HTTP to the store's
 * thread) cost more than relaying the call itself, and under load they queue behind one another
 * (issue 12). ADDs commute, so the calls of one window that reserved nothing are summed into ONE
 * key write and ONE usage write per (key, day, model), applied by the same Ledger code (its
 * `calls` counts stand in for the per-call 1s). The sums are exact: integers, added once each.
 *
 * What is never coalesced: a call that holds a budget reservation. Its settle is a conditional
 * swap of `rsv:<call id>` on the key item (budget.ts), so it goes straight to the Ledger, at once,
 * in its own write, exactly as without this module.
 *
 * Durability: `record()` resolves only once the call's batch is written (or logged for replay),
 * so an invocation still ends after its usage is durable, only up to one window later; graceful
 * shutdown waits for invocations and then close() flushes whatever is left. A batch part that
 * fails past the Ledger's retries is logged as one "ledger-write-failed" record PER CALL, with the
 * call's own entry and the failed parts, the format `relay ledger replay` reads: replays stay
 * idempotent per (call id, part) exactly as before (ledger.ts's module comment).
 *
 * Backpressure: at most `maxOutstandingCalls` calls are accepted and not yet written; beyond
 * that record() waits for room before its call joins a batch. One flush is in flight at a time:
 * while the store is slow the next batch grows instead of the number of writes, and the calls
 * waiting on it hold their invocation slots (lambda/local/slots.ts), which is what slows new
 * requests down. Nothing spills to the replay log because the store is merely busy.
 */
import { randomBytes } from 'node:crypto';
import type { LogFn } from '../observability/log.js';
import { MASTER_PRINCIPAL } from './items.js';
import { describeError, Ledger, type LedgerDeps, type LedgerEntry, type LedgerPart, type LedgerWriteResult, type ReplayRecord } from './ledger.js';

export interface CoalescingOptions {
  /** How long the first call of a batch waits for others to join it (0: no window, still batched while a flush is in flight). */
  readonly windowMs?: number;
  /** A batch this large is flushed without waiting out the window. */
  readonly maxBatchCalls?: number;
  /** Calls accepted but not yet written, at most; more wait in record(). */
  readonly maxOutstandingCalls?: number;
}

export const DEFAULT_COALESCE_WINDOW_MS = 20;
export const DEFAULT_MAX_BATCH_CALLS = 1_000;
export const DEFAULT_MAX_OUTSTANDING_CALLS = 4_000;

export interface CoalescingStats {
  /** Calls waiting in the open batch. */
  readonly pending: number;
  /** Calls accepted and not yet written (the open batch and the flush in flight). */
  readonly outstanding: number;
  /** record() calls waiting for room. */
  readonly waiting: number;
  /** Batch writes (Ledger.record calls for groups) made so far. */
  readonly batchesWritten: number;
  readonly callsCoalesced: number;
}

interface Batch {
  readonly groups: Map<string, LedgerEntry[]>;
  calls: number;
  readonly done: Promise<Map<string, LedgerWriteResult>>;
  readonly resolve: (results: Map<string, LedgerWriteResult>) => void;
}

const NOTHING_FAILED: LedgerWriteResult = { failed: [], keyMissing: false };

export class CoalescingLedger {
  private readonly windowMs: number;
  private readonly maxBatchCalls: number;
  private readonly maxOutstanding: number;
  private readonly batchLedger: Ledger;
  /** Members of the batch entries being written, by batch call id, to log their replay records per call. */
  private readonly members = new Map<string, readonly LedgerEntry[]>();
  private open: Batch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private windowOver = false;
  private flushing: Promise<void> | undefined;
  private outstanding = 0;
  private readonly waiters: (() => void)[] = [];
  private closed = false;
  private batchesWritten = 0;
  private callsCoalesced = 0;

  constructor(
    /** Writes what is not coalesced (calls with a reservation; everything after close()). */
    private readonly direct: Pick<Ledger, 'record'>,
    private readonly deps: LedgerDeps,
    options: CoalescingOptions = {},
  ) {
    this.windowMs = Math.max(0, options.windowMs ?? DEFAULT_COALESCE_WINDOW_MS);
    this.maxBatchCalls = Math.max(1, options.maxBatchCalls ?? DEFAULT_MAX_BATCH_CALLS);
    this.maxOutstanding = Math.max(1, options.maxOutstandingCalls ?? DEFAULT_MAX_OUTSTANDING_CALLS);
    this.batchLedger = new Ledger({ ...deps, log: this.batchLog });
  }

  /** Resolves once the call's usage is written (or logged for replay); never throws. */
  async record(entry: LedgerEntry): Promise<LedgerWriteResult> {
    if ((entry.reservedNanos ?? 0) > 0 || entry.calls !== undefined || this.closed) return this.direct.record(entry);
    while (this.outstanding >= this.maxOutstanding && !this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
    if (this.closed) return this.direct.record(entry);
    this.outstanding++;
    const batch = (this.open ??= newBatch());
    const key = groupKey(entry);
    const group = batch.groups.get(key);
    if (group) group.push(entry);
    else batch.groups.set(key, [entry]);
    batch.calls++;
    this.schedule(batch);
    const results = await batch.done;
    return results.get(key) ?? NOTHING_FAILED;
  }

  /** Writes the open batch now and waits for every write in flight. */
  async flush(): Promise<void> {
    this.windowOver = true;
    while (this.open || this.flushing) {
      if (!this.flushing) this.startFlush();
      await this.flushing;
    }
  }

  /** Flushes and from then on writes each call directly (calls settling after shutdown's deadline). */
  async close(): Promise<void> {
    this.closed = true;
    for (const wake of this.waiters.splice(0)) wake();
    await this.flush();
  }

  stats(): CoalescingStats {
    return {
      pending: this.open?.calls ?? 0,
      outstanding: this.outstanding,
      waiting: this.waiters.length,
      batchesWritten: this.batchesWritten,
      callsCoalesced: this.callsCoalesced,
    };
  }

  // ── internals ──

  private schedule(batch: Batch): void {
    if (batch.calls >= this.maxBatchCalls || this.closed) this.windowOver = true;
    if (this.windowOver) {
      if (!this.flushing) this.startFlush();
      return;
    }
    if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.windowOver = true;
        if (!this.flushing) this.startFlush();
      }, this.windowMs);
    }
  }

  /** Takes the open batch and writes it; when done, starts the next if its window is over. */
  private startFlush(): void {
    const batch = this.open;
    if (!batch) return;
    this.open = undefined;
    this.windowOver = false;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
      this.outstanding -= batch.calls;
      // Room again: let waiting calls join the next batch.
      for (const wake of this.waiters.splice(0)) wake();
      // The next batch goes when its own window is over (its timer may have fired meanwhile);
      // flushing it at once would make a write of every call that arrived during a flush.
      if (this.open && this.windowOver) this.startFlush();
    });
  }

  private async write(batch: Batch): Promise<void> {
    const results = new Map<string, LedgerWriteResult>();
    await Promise.all(
      [...batch.groups].map(async ([key, entries]) => {
        results.set(key, await this.writeGroup(entries));
      }),
    );
    batch.resolve(results);
  }

  private async writeGroup(entries: readonly LedgerEntry[]): Promise<LedgerWriteResult> {
    const sum = entries.length === 1 ? entries[0]! : sumEntries(entries);
    if (entries.length > 1) {
      this.members.set(sum.callId, entries);
      this.batchesWritten++;
      this.callsCoalesced += entries.length;
    }
    try {
      return await (entries.length === 1 ? this.direct.record(sum) : this.batchLedger.record(sum));
    } catch (error) {
      // Ledger.record never throws; should it, every call of the group is still replayable
      // (and the calls waiting on the batch are released, never left hanging).
      const parts: LedgerPart[] = sum.token === MASTER_PRINCIPAL ? ['usage'] : ['key', 'usage'];
      this.logReplays(sum.callId, entries, parts, describeError(error));
      return { failed: parts, keyMissing: false };
    } finally {
      this.members.delete(sum.callId);
    }
  }

  /** The batch Ledger's log: its replay record (for the sum) becomes one per call. */
  private readonly batchLog: LogFn = (level, message, fields = {}) => {
    const batchId = fields.requestId as string | undefined;
    const entries = batchId ? this.members.get(batchId) : undefined;
    if (!entries) return this.deps.log(level, message, fields);
    if (message === 'ledger-write-failed') {
      const replay = fields.replay as ReplayRecord | undefined;
      // The batch Ledger already described its error.
      this.logReplays(batchId!, entries, replay?.parts ?? ['key', 'usage'], String(fields.error));
      return;
    }
    this.deps.log(level, message, { ...fields, coalescedCalls: entries.length });
  };

  private logReplays(batchId: string, entries: readonly LedgerEntry[], parts: readonly LedgerPart[], error: string): void {
    for (const entry of entries) {
      const replay: ReplayRecord = { v: 1, table: this.deps.table, ...entry, parts };
      this.deps.log('error', 'ledger-write-failed', {
        requestId: entry.callId,
        error,
        ...(entries.length > 1 ? { coalescedIn: batchId } : {}),
        replay,
      });
    }
  }
}

function newBatch(): Batch {
  let resolve!: (results: Map<string, LedgerWriteResult>) => void;
  const done = new Promise<Map<string, LedgerWriteResult>>((r) => (resolve = r));
  return { groups: new Map(), calls: 0, done, resolve };
}

function groupKey(entry: LedgerEntry): string {
  return `${entry.token}\u0000${entry.day}\u0000${entry.model}`;
}

/** One entry for calls of one key, day and model: every counter summed, the per-call flags counted. */
export function sumEntries(entries: readonly LedgerEntry[]): LedgerEntry {
  const first = entries[0]!;
  const tokens = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, guardrailUnits: 0 };
  const calls = { requests: 0, errors: 0, unpriced: 0, estimated: 0 };
  let costNanos = 0;
  let at = first.at;
  let keyAlias = first.keyAlias;
  for (const entry of entries) {
    tokens.input += entry.tokens.input;
    tokens.output += entry.tokens.output;
    tokens.cacheRead += entry.tokens.cacheRead;
    tokens.cacheWrite += entry.tokens.cacheWrite;
    tokens.guardrailUnits += entry.tokens.guardrailUnits;
    costNanos += entry.costNanos;
    calls.requests++;
    if (entry.failed) calls.errors++;
    if (entry.unpriced) calls.unpriced++;
    if (entry.estimated) calls.estimated++;
    if (entry.at > at) at = entry.at;
    if (entry.keyAlias) keyAlias = entry.keyAlias;
  }
  return {
    callId: `batch-${randomBytes(9).toString('base64url')}`,
    token: first.token,
    ...(keyAlias ? { keyAlias } : {}),
    model: first.model,
    day: first.day,
    at,
    tokens,
    costNanos,
    unpriced: calls.unpriced > 0,
    failed: calls.errors > 0,
    ...(calls.estimated > 0 ? { estimated: true } : {}),
    calls,
  };
}
