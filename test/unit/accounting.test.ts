import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { effectiveView, isResetDue, nextResetAt, usd } from '../../lambda/accounting/budget.js';
import { dayOf, parseUsageSortKey, usageModelLabel, usageSortKey, usageTtl, windowOf, windowSortKey } from '../../lambda/accounting/items.js';
import { replayRecordFromLine, type ReplayRecord } from '../../lambda/accounting/ledger.js';
import { rateScopes } from '../../lambda/accounting/limits.js';
import { parseDateRange } from '../../lambda/accounting/report.js';
import { withRetry } from '../../lambda/accounting/retry.js';
import { telemetryAlias } from '../../lambda/accounting/telemetry.js';
import { KeyApiError } from '../../lambda/http/errors.js';
import { keyRecord } from '../support/key-record.js';

const at = (iso: string) => Date.parse(iso);

describe('budget schedule', () => {
  it('steps from the scheduled reset in whole durations to the first one after now', () => {
    const scheduled = at('2031-01-10T09:00:00Z');
    assert.equal(nextResetAt(scheduled, { seconds: 86_400 }, at('2031-01-10T09:00:00Z')), at('2031-01-11T09:00:00Z'), 'due exactly at the reset');
    assert.equal(nextResetAt(scheduled, { seconds: 86_400 }, at('2031-01-13T08:59:59Z')), at('2031-01-13T09:00:00Z'));
    assert.equal(nextResetAt(scheduled, { seconds: 3600 }, at('2031-01-10T09:30:00Z')), at('2031-01-10T10:00:00Z'));
    // Calendar months: Jan 31 → end of February → March 31 is not where a month from Feb 28 lands.
    assert.equal(nextResetAt(at('2031-01-31T00:00:00Z'), { months: 1 }, at('2031-02-01T00:00:00Z')), at('2031-02-28T00:00:00Z'));
    assert.equal(nextResetAt(at('2031-01-15T00:00:00Z'), { months: 1 }, at('2031-04-20T00:00:00Z')), at('2031-05-15T00:00:00Z'));
  });

  it('shows a due reset as done, and formats dollars for people', () => {
    const view = { spendNanos: 5, budgetResetAt: '2031-01-10T09:00:00.000Z', budgetDuration: '1d' };
    assert.equal(isResetDue(view, at('2031-01-10T08:59:59Z')), false);
    assert.equal(isResetDue(view, at('2031-01-10T09:00:00Z')), true);
    assert.deepEqual(effectiveView(view, at('2031-01-12T10:00:00Z')), { spendNanos: 0, budgetResetAt: '2031-01-13T09:00:00.000Z', budgetDuration: '1d' });
    assert.equal(usd(1_230_000_000), '1.23');
    assert.equal(usd(1_000_000_000), '1.00');
    assert.equal(usd(3_765_000), '0.003765');
    assert.equal(usd(0), '0.00');
  });
});

describe('item layout', () => {
  it('books usage by UTC day and bounded model label, and windows by minute', () => {
    assert.equal(dayOf(at('2031-03-04T23:59:59.999Z')), '2031-03-04');
    assert.equal(usageSortKey('2031-03-04', 'us.anthropic.x'), 'USAGE#2031-03-04#us.anthropic.x');
    assert.deepEqual(parseUsageSortKey('USAGE#2031-03-04#arn:aws:bedrock:us-east-1:1:x/y#z'), {
      day: '2031-03-04',
      model: 'arn:aws:bedrock:us-east-1:1:x/y#z',
    });
    assert.equal(parseUsageSortKey('RL#w#1'), undefined);
    assert.equal(usageModelLabel(undefined, 'Retrieve'), 'operation:Retrieve');
    assert.equal(usageModelLabel('m'.repeat(1000), 'Converse').length, 400);
    assert.equal(usageTtl('2031-03-04') - at('2031-03-04T00:00:00Z') / 1000, 401 * 86_400);
    assert.equal(windowOf(at('2031-03-04T10:00:59.999Z')), windowOf(at('2031-03-04T10:00:00Z')));
    assert.equal(windowOf(at('2031-03-04T10:01:00Z')), windowOf(at('2031-03-04T10:00:00Z')) + 1);
    assert.equal(windowSortKey(7), 'RL#w#7');
    assert.equal(windowSortKey(7, 'anthropic.claude'), 'RL#w#7#m#anthropic.claude');
  });
});

describe('rate scopes', () => {
  it('applies the key limits and the first per-model entry that admits the model', () => {
    assert.deepEqual(rateScopes(keyRecord({}), 'anthropic.claude-3-haiku-20240307-v1:0'), [], 'no limits: nothing to count');
    assert.deepEqual(rateScopes(keyRecord({ rpm_limit: 5, tpm_limit: 100 }), undefined), [{ rpm: 5, tpm: 100 }]);
    const perModel = keyRecord({
      model_rpm_limit: { 'anthropic.claude-3-haiku-20240307-v1:0': 2 },
      model_tpm_limit: { 'anthropic.claude-3-haiku-20240307-v1:0': 50, 'amazon.*': 9 },
      rpm_limit: 10,
    });
    assert.deepEqual(rateScopes(perModel, 'us.anthropic.claude-3-haiku-20240307-v1:0'), [
      { scope: 'anthropic.claude-3-haiku-20240307-v1:0', rpm: 2, tpm: 50 },
      { rpm: 10 },
    ]);
    assert.deepEqual(rateScopes(perModel, 'amazon.nova-micro-v1:0'), [{ scope: 'amazon.*', tpm: 9 }, { rpm: 10 }]);
    assert.deepEqual(rateScopes(perModel, 'meta.llama3-70b-instruct-v1:0'), [{ rpm: 10 }]);
  });
});

describe('reports', () => {
  const now = at('2031-03-04T10:00:00Z');
  it('reads inclusive UTC date ranges, defaulting to the last 30 days', () => {
    assert.deepEqual(parseDateRange(undefined, undefined, now), { start: '2031-02-03', end: '2031-03-04' });
    assert.deepEqual(parseDateRange('2031-01-01', '2031-01-31', now), { start: '2031-01-01', end: '2031-01-31' });
    for (const [start, end] of [
      ['2031-02-30', '2031-03-01'],
      ['2031-3-1', null],
      ['2031-03-05', '2031-03-04'],
      ['2029-01-01', '2031-01-01'],
    ] as const) {
      assert.throws(
        () => parseDateRange(start, end, now),
        (error: unknown) => error instanceof KeyApiError && error.status === 400,
        `${start}..${end}`,
      );
    }
  });
});

describe('replay records', () => {
  const record: ReplayRecord = {
    v: 1,
    table: 't',
    callId: 'r-1',
    token: 'a'.repeat(64),
    model: 'm',
    day: '2031-03-04',
    at: '2031-03-04T10:00:00.000Z',
    tokens: { input: 1, output: 2, cacheRead: 3, cacheWrite: 4, guardrailUnits: 0 },
    costNanos: 99,
    unpriced: false,
    failed: false,
    parts: ['key'],
  };
  it('are found in Powertools lines, bare, or behind a CloudWatch prefix; other lines are skipped', () => {
    assert.deepEqual(replayRecordFromLine(JSON.stringify({ level: 'ERROR', message: 'ledger-write-failed', replay: record })), record);
    assert.deepEqual(replayRecordFromLine(`2031-03-04T10:00:00Z\tid\tERROR\t${JSON.stringify({ replay: record })}`), record);
    assert.deepEqual(replayRecordFromLine(JSON.stringify(record)), record);
    assert.equal(replayRecordFromLine('{"message":"relay-call"}'), undefined);
    assert.equal(replayRecordFromLine('START RequestId: x'), undefined);
  });
  it('are refused when damaged, naming the field', () => {
    const damaged = (change: Record<string, unknown>) => () => replayRecordFromLine(JSON.stringify({ replay: { ...record, ...change } }));
    assert.throws(damaged({ token: 'sk-secret' }), /token/);
    assert.throws(damaged({ costNanos: 1.5 }), /costNanos/);
    assert.throws(damaged({ parts: ['everything'] }), /parts/);
    assert.throws(damaged({ day: 'yesterday' }), /day/);
    assert.throws(() => replayRecordFromLine('{"message":"ledger-write-failed"}'), /without a replay/);
  });
});

describe('retry and telemetry helpers', () => {
  it('retries up to the policy, with capped delays, and rethrows the last error', async () => {
    const delays: number[] = [];
    let tries = 0;
    await assert.rejects(
      withRetry(
        async () => {
          tries++;
          throw new Error(`try ${tries}`);
        },
        { attempts: 4, baseDelayMs: 10, maxDelayMs: 15 },
        async (ms) => void delays.push(ms),
      ),
      /try 4/,
    );
    assert.equal(tries, 4);
    assert.equal(delays.length, 3);
    assert.ok(delays.every((ms, i) => ms >= 0 && ms <= Math.min(15, 10 * 2 ** i)));
    assert.equal(await withRetry(async (n) => (n < 2 ? Promise.reject(new Error('once')) : 'ok'), { attempts: 3, baseDelayMs: 0, maxDelayMs: 0 }), 'ok');
  });

  it('names keys by alias, or by a token prefix, never by the key', () => {
    assert.equal(telemetryAlias({ kind: 'master' }), 'master');
    assert.equal(telemetryAlias({ kind: 'virtual-key', token: 'ab'.repeat(32), alias: 'team-a' }), 'team-a');
    assert.equal(telemetryAlias({ kind: 'virtual-key', token: 'ab'.repeat(32) }), 'key-abababababab');
  });
});
