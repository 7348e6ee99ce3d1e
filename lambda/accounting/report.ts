/**
 * Reporting: per-day, per-model usage of a key (GET /key/usage, `relay usage`) and the live
 * accounting figures /key/info adds to a key (effective spend and reset time, lifetime totals,
 * the current rate window and parallel requests in flight).
 *
 * Usage of a regenerated key is the sum over its own partition and those of the keys it was
 * regenerated from (their usage items stay where they were written).
 */
import type { Budgets } from './budget.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KeyApiError, invalidField, keyNotFound } from '../keys/errors.js';
import type { KeyStore } from '../keys/store.js';
import { shortToken } from '../keys/store.js';
import type { JsonObject, KeyRecord } from '../keys/types.js';
import { parseKeyIdentifier } from '../keys/validate.js';
import { ItemTable } from '../store/items.js';
import { effectiveView, viewOf } from './budget.js';
import {
  KEY_COUNTERS,
  MASTER_PRINCIPAL,
  USAGE_COUNTERS,
  USAGE_SORT_KEY_PREFIX,
  USAGE_TTL_DAYS,
  WINDOW_MS,
  dayOf,
  keyPartition,
  parseUsageSortKey,
  windowOf,
} from './items.js';
import type { Leases, RateWindows } from './limits.js';

export interface ReportDeps {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly store: KeyStore;
  readonly clock: () => number;
  readonly windows: RateWindows;
  readonly leases: Leases;
  /** Charges expired reservations when a key's figures are read (budget.ts: sweep). */
  readonly budgets?: Budgets;
}

export interface UsageQuery {
  /** A key token, or MASTER for master-key calls. */
  readonly token: string;
  readonly start: string;
  readonly end: string;
}

export interface UsageRow {
  date: string;
  model: string;
  requests: number;
  error_requests: number;
  unpriced_requests: number;
  /** Calls whose usage was estimated from what was delivered (the client left early). */
  estimated_requests: number;
  /** Calls never settled (crash, timeout), charged at their reservation. */
  unsettled_requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_input_tokens: number;
  cache_write_input_tokens: number;
  guardrail_units: number;
  /** USD (display); spend_nanos is the exact figure. */
  spend: number;
  spend_nanos: number;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const DEFAULT_DAYS = 30;

/** `start`/`end` (YYYY-MM-DD, UTC, inclusive); default: the last 30 days up to today. */
export function parseDateRange(start: string | null | undefined, end: string | null | undefined, now: number): { start: string; end: string } {
  const endDay = end ? validDay(end, 'end') : dayOf(now);
  const startDay = start ? validDay(start, 'start') : dayOf(Date.parse(`${endDay}T00:00:00Z`) - (DEFAULT_DAYS - 1) * 86_400_000);
  if (startDay > endDay) throw invalidField('start', '"start" must not be after "end".');
  const days = (Date.parse(`${endDay}T00:00:00Z`) - Date.parse(`${startDay}T00:00:00Z`)) / 86_400_000 + 1;
  if (days > USAGE_TTL_DAYS + 1) throw invalidField('start', `At most ${USAGE_TTL_DAYS + 1} days at a time (usage is kept ${USAGE_TTL_DAYS} days).`);
  return { start: startDay, end: endDay };
}

function validDay(value: string, field: string): string {
  const day = value.trim();
  if (!DAY.test(day) || Number.isNaN(Date.parse(`${day}T00:00:00Z`)) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
    throw invalidField(field, `"${field}" must be a date as YYYY-MM-DD.`);
  }
  return day;
}

export class UsageReports {
  private readonly items: ItemTable;

  constructor(private readonly deps: ReportDeps) {
    this.items = new ItemTable(deps.doc, deps.table);
  }

  /** The report for a key named by secret, token, alias or "master". 404 if no such key and no usage. */
  async usageFor(identifier: { key?: string | null; alias?: string | null }, range: { start?: string | null; end?: string | null }): Promise<JsonObject> {
    const { start, end } = parseDateRange(range.start, range.end, this.deps.clock());
    let record: KeyRecord | undefined;
    let token: string;
    if (identifier.alias) {
      record = await this.deps.store.getByAlias(identifier.alias);
      if (!record) throw new KeyApiError(404, 'not_found_error', `Key not found: no key with key_alias "${identifier.alias}".`, 'key_alias');
      token = record.token;
    } else if (identifier.key && identifier.key.trim().toLowerCase() === 'master') {
      token = MASTER_PRINCIPAL;
    } else {
      token = parseKeyIdentifier(identifier.key ?? undefined, 'key');
      record = await this.deps.store.getByHash(token);
    }
    const partitions = [token, ...(record?.regenerated_from ?? [])];
    const rows = mergeRows((await Promise.all(partitions.map((p) => this.rows(p, start, end)))).flat());
    if (!record && token !== MASTER_PRINCIPAL && rows.length === 0) throw keyNotFound('key', shortToken(token));
    const totals = rows.reduce<Omit<UsageRow, 'date' | 'model'>>((sum, row) => addRow(sum, row), emptyTotals());
    return {
      key: token === MASTER_PRINCIPAL ? 'master' : token,
      key_alias: record?.key_alias ?? null,
      start,
      end,
      totals: { ...totals } as unknown as JsonObject,
      daily: rows as unknown as JsonObject[],
    };
  }

  /** Usage rows of one partition, in sort-key order (day, then model). */
  async rows(token: string, start: string, end: string): Promise<UsageRow[]> {
    const rows: UsageRow[] = [];
    const days = this.items.query({
      partition: ['pk', keyPartition(token)],
      sortBetween: ['sk', `${USAGE_SORT_KEY_PREFIX}${start}#`, `${USAGE_SORT_KEY_PREFIX}${end}#\uffff`],
    });
    for await (const item of days) {
      const parsed = parseUsageSortKey(String(item.sk));
      if (!parsed) continue;
      const model = typeof item.model === 'string' ? item.model : parsed.model;
      const n = (name: string) => (typeof item[name] === 'number' ? (item[name] as number) : 0);
      const spendNanos = n(USAGE_COUNTERS.cost);
      rows.push({
        date: parsed.day,
        model,
        requests: n(USAGE_COUNTERS.requests),
        error_requests: n(USAGE_COUNTERS.errors),
        unpriced_requests: n(USAGE_COUNTERS.unpriced),
        estimated_requests: n(USAGE_COUNTERS.estimated),
        unsettled_requests: n(USAGE_COUNTERS.unsettled),
        input_tokens: n(USAGE_COUNTERS.input),
        output_tokens: n(USAGE_COUNTERS.output),
        cache_read_input_tokens: n(USAGE_COUNTERS.cacheRead),
        cache_write_input_tokens: n(USAGE_COUNTERS.cacheWrite),
        guardrail_units: n(USAGE_COUNTERS.guardrailUnits),
        spend: spendNanos / 1e9,
        spend_nanos: spendNanos,
      });
    }
    return rows;
  }

  /** What /key/info adds: the figures admission works with, as of now. */
  async keyInfoExtras(given: KeyRecord): Promise<JsonObject> {
    let record = given;
    const now = this.deps.clock();
    // Expired reservations (calls that never settled) are charged before the figures are shown.
    const budgets = this.deps.budgets;
    let fresh = budgets ? await budgets.read(record.token) : undefined;
    if (budgets && fresh && fresh.expired.length > 0) {
      await budgets.sweep(record.token, fresh.expired);
      fresh = (await budgets.read(record.token)) ?? fresh;
      // The sweep added to the key's totals: show them.
      record = (await this.deps.store.getByHash(record.token)) ?? record;
    }
    const budget = effectiveView(fresh ? { ...viewOf(record), spendNanos: fresh.spendNanos, reservedNanos: fresh.reservedNanos ?? 0 } : viewOf(record), now);
    const window = windowOf(now);
    const modelEntries = [...new Set([...Object.keys(record.model_rpm_limit ?? {}), ...Object.keys(record.model_tpm_limit ?? {})])];
    const [keyWindow, parallel, ...modelWindows] = await Promise.all([
      this.deps.windows.read(record.token, window),
      this.deps.leases.liveCount(record.token),
      ...modelEntries.map((entry) => this.deps.windows.read(record.token, window, entry)),
    ]);
    const counters = record as unknown as Record<string, unknown>;
    const total = (name: string) => (typeof counters[name] === 'number' ? (counters[name] as number) : 0);
    return {
      spend: budget.spendNanos / 1e9,
      spend_nanos: budget.spendNanos,
      // Worst-case cost held by calls in flight (they settle to their actual cost).
      reserved_spend: (budget.reservedNanos ?? 0) / 1e9,
      reserved_spend_nanos: budget.reservedNanos ?? 0,
      budget_reset_at: budget.budgetResetAt ?? null,
      usage_totals: {
        requests: total(KEY_COUNTERS.requests),
        unpriced_requests: total(KEY_COUNTERS.unpriced),
        estimated_requests: total(KEY_COUNTERS.estimated),
        unsettled_requests: total(KEY_COUNTERS.unsettled),
        input_tokens: total(KEY_COUNTERS.input),
        output_tokens: total(KEY_COUNTERS.output),
        cache_read_input_tokens: total(KEY_COUNTERS.cacheRead),
        cache_write_input_tokens: total(KEY_COUNTERS.cacheWrite),
        spend: total(KEY_COUNTERS.lifetimeSpend) / 1e9,
        spend_nanos: total(KEY_COUNTERS.lifetimeSpend),
      },
      current_window: {
        window_start: new Date(window * WINDOW_MS).toISOString(),
        window_end: new Date((window + 1) * WINDOW_MS).toISOString(),
        requests: keyWindow!.requests,
        tokens: keyWindow!.tokens,
        parallel_requests: parallel as number,
        models: Object.fromEntries(
          modelEntries.map((entry, index) => [entry, { requests: modelWindows[index]!.requests, tokens: modelWindows[index]!.tokens }]),
        ),
      },
    };
  }
}

function emptyTotals(): Omit<UsageRow, 'date' | 'model'> {
  return {
    requests: 0,
    error_requests: 0,
    unpriced_requests: 0,
    estimated_requests: 0,
    unsettled_requests: 0,
    input_tokens: 0,
    output_tokens: 0,
    cache_read_input_tokens: 0,
    cache_write_input_tokens: 0,
    guardrail_units: 0,
    spend: 0,
    spend_nanos: 0,
  };
}

function addRow<T extends Omit<UsageRow, 'date' | 'model'>>(sum: T, row: Omit<UsageRow, 'date' | 'model'>): T {
  const next = { ...sum };
  for (const field of Object.keys(emptyTotals()) as Array<keyof Omit<UsageRow, 'date' | 'model'>>) {
    if (field !== 'spend') (next[field] as number) += row[field];
  }
  next.spend = next.spend_nanos / 1e9;
  return next;
}

/** Rows of several partitions (a regenerated key's history) merged by day and model, sorted. */
function mergeRows(rows: UsageRow[]): UsageRow[] {
  const merged = new Map<string, UsageRow>();
  for (const row of rows) {
    const id = `${row.date}\u0000${row.model}`;
    const existing = merged.get(id);
    merged.set(id, existing ? { ...addRow(existing, row), date: row.date, model: row.model } : { ...row });
  }
  return [...merged.values()].sort((a, b) => (a.date === b.date ? (a.model < b.model ? -1 : a.model > b.model ? 1 : 0) : a.date < b.date ? -1 : 1));
}
