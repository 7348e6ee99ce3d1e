/**
 * Budgets through the relay: max_budget refuses a key at or over it with a typed 429 before
 * anything goes upstream, on native and compatible routes alike; budget_duration resets the
 * spend on schedule, exactly once however many environments notice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { Budgets } from '../../lambda/accounting/budget.js';
import { Ledger, type LedgerEntry } from '../../lambda/accounting/ledger.js';
import { priceCall } from '../../lambda/pricing/index.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { KeyStore } from '../../lambda/keys/store.js';
import { runtimeClient } from '../support/clients.js';
import { expectedConverseUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { admin, call, createKey, keyItem, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';
import { manualClock } from './keys-harness.js';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const DAY = 86_400_000;

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;
const clock = manualClock(Date.parse('2031-05-10T09:00:00.000Z'));

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store, clock, env: { RELAY_KEY_CACHE_TTL_SECONDS: '30' } });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

const converseBody = (maxTokens: number) => ({
  messages: [{ role: 'user' as const, content: [{ text: 'spend some money' }] }],
  inferenceConfig: { maxTokens },
});

/** What one such Converse call costs, from the fake's usage rule and the price table. */
function costOf(maxTokens: number): number {
  // The SDK serialises the same input the same way; the body below is what it sends.
  const u = expectedConverseUsage(JSON.stringify(converseBody(maxTokens)));
  return priceCall(HAIKU, { inputTokens: u.inputTokens, outputTokens: u.outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }).costNanos;
}

/** The reservation of such a call: body bytes as input tokens and maxTokens out, at Haiku's rates (rounded up). */
function worstCaseOf(maxTokens: number): number {
  const bytes = Buffer.byteLength(JSON.stringify(converseBody(maxTokens)));
  return priceCall(HAIKU, { inputTokens: bytes, outputTokens: maxTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }).costNanos + 1;
}

describe('budgets', () => {
  it('refuses a key at its budget with 429 ServiceQuotaExceededException, and lets it go again after the reset', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'budget-1', max_budget: 0.003, budget_duration: '1d' });
    const created = await keyItem(store, token);
    const firstReset = Date.parse(created.budget_reset_at as string);
    assert.equal(firstReset, clock() + DAY);
    const runtime = runtimeClient(relay.url, key, undefined, 1);
    try {
      const send = () => runtime.send(new ConverseCommand({ modelId: HAIKU, ...converseBody(1000) }));
      // Each call reserves its worst case (body bytes in, 1,000 tokens out: ~$0.00128) against
      // the $0.003: two fit; the third would not fit what is left after them.
      await send();
      await send();
      await settled(relay, 'budget-1', 2);
      const spent = (await keyItem(store, token)).spend_nanos as number;
      assert.ok(spent <= 3_000_000 && spent + worstCaseOf(1000) > 3_000_000, `spend ${spent} leaves less than one call's worst case`);
      assert.equal(
        spent,
        [...fake.requests]
          .filter((r) => r.body.includes('spend some money'))
          .reduce((sum, r) => {
            const u = expectedConverseUsage(r.body);
            return (
              sum + priceCall(HAIKU, { inputTokens: u.inputTokens, outputTokens: u.outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }).costNanos
            );
          }, 0),
      );

      const upstreamBefore = fake.requests.length;
      await assert.rejects(send(), (error: Error & { $metadata?: { httpStatusCode?: number }; $response?: { headers: Record<string, string> } }) => {
        assert.equal(error.name, 'ServiceQuotaExceededException');
        assert.equal(error.$metadata?.httpStatusCode, 429);
        assert.match(
          error.message,
          /^Budget exceeded: spend \$0\.00\d+ of \$0\.003 \(resets at 2031-05-11T09:00:00\.000Z\)\. This call could cost up to \$0\.00\d+/,
        );
        return true;
      });
      assert.equal(fake.requests.length, upstreamBefore, 'nothing went upstream');

      // The same budget holds on the compatible APIs, in their dialects.
      const anthropic = new Anthropic({ baseURL: `${relay.url}/bedrock/anthropic`, authToken: key, maxRetries: 0 });
      await assert.rejects(
        anthropic.messages.create({ model: 'us.anthropic.claude-opus-4-7', max_tokens: 4096, messages: [{ role: 'user', content: 'hi' }] }),
        (error: Error) => error instanceof Anthropic.RateLimitError && /Budget exceeded/.test(error.message),
      );
      const openai = new OpenAI({ baseURL: `${relay.url}/bedrock/openai/v1`, apiKey: key, maxRetries: 0 });
      await assert.rejects(
        openai.chat.completions.create({ model: 'openai.gpt-oss-120b-1:0', messages: [{ role: 'user', content: 'hi' }] }),
        (error: Error) => error instanceof OpenAI.RateLimitError,
      );
      assert.equal(fake.requests.length, upstreamBefore);
      const raw = await call(relay.url, key, `/bedrock/model/${HAIKU}/converse`, JSON.stringify(converseBody(1000)));
      assert.equal(raw.status, 429);
      assert.equal(raw.headers['retry-after'], String(DAY / 1000), 'retry after: until the reset');

      // A day later the spend starts again from 0, and the schedule moves on by exactly one period.
      clock.advance(DAY);
      await send();
      await settled(relay, 'budget-1', 4);
      const after = await keyItem(store, token);
      assert.equal(after.spend_nanos, costOf(1000), 'the new period holds only the call made in it');
      assert.equal(after.budget_reset_at, new Date(firstReset + DAY).toISOString());
      assert.ok((after.total_spend_nanos as number) > (after.spend_nanos as number), 'lifetime spend is kept');
      const info = (await admin(relay.url, 'GET', `/key/info?key=${token}`)).json.info as Record<string, unknown>;
      assert.equal(info.spend_nanos, costOf(1000));
      assert.equal(info.max_budget, 0.003);
      assert.equal(info.budget_reset_at, new Date(firstReset + DAY).toISOString());

      // Idle for several periods: the next reset is the next one on the schedule, not now + 1d.
      clock.advance(3 * DAY + 3_600_000);
      await send();
      await settled(relay, 'budget-1', 5);
      assert.equal((await keyItem(store, token)).budget_reset_at, new Date(firstReset + 4 * DAY).toISOString(), 'the first 09:00 after now (05-14 10:00)');
    } finally {
      runtime.destroy();
    }
  });

  it('50 parallel calls cannot spend past the budget: each reserves its worst case at admission', async () => {
    // Room for exactly five worst cases: the reservations of the first five admitted block the rest.
    const worst = worstCaseOf(500);
    const budgetNanos = 5 * worst + Math.floor(worst / 2);
    const { key, token } = await createKey(relay.url, { key_alias: 'budget-burst', max_budget: budgetNanos / 1e9 });
    const body = JSON.stringify(converseBody(500));
    const upstreamBefore = fake.requests.length;
    const answers = await Promise.all(Array.from({ length: 50 }, () => call(relay.url, key, `/bedrock/model/${HAIKU}/converse-stream`, body)));
    const admitted = answers.filter((a) => a.status === 200).length;
    assert.ok(admitted >= 5, `at least the five that fit at once ran (${admitted})`);
    assert.ok(
      answers.every((a) => a.status === 200 || a.status === 429),
      'the others were refused with 429',
    );
    assert.equal(fake.requests.length - upstreamBefore, admitted, 'refused calls never went upstream');
    await settled(relay, 'budget-burst', 50);
    const item = await keyItem(store, token);
    assert.equal(item.spend_nanos, admitted * costOf(500), 'every admitted call is charged exactly');
    assert.ok((item.spend_nanos as number) <= budgetNanos, 'and together they stay within the budget');
    assert.equal(item.reserved_nanos, 0, 'every reservation was swapped for the actual cost');
    assert.deepEqual(
      Object.keys(item).filter((name) => name.startsWith('rsv:')),
      [],
    );

    // An absurd max tokens is a budget refusal (429), never an arithmetic failure (503).
    const absurd = await call(
      relay.url,
      key,
      `/bedrock/model/${HAIKU}/converse`,
      JSON.stringify({ ...converseBody(1), inferenceConfig: { maxTokens: 1e300 } }),
    );
    assert.equal(absurd.status, 429);
    assert.match(JSON.parse(absurd.body.toString()).message, /could cost up to/);
  });

  it('a key with budget_duration and no max_budget resets on schedule without a read per call', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'schedule-only', budget_duration: '1h' });
    const body = JSON.stringify(converseBody(20));
    const path = `/bedrock/model/${HAIKU}/converse`;
    await call(relay.url, key, path, body);
    await settled(relay, 'schedule-only', 1);
    const before = relay.dynamo.calls.length;
    await call(relay.url, key, path, body);
    await settled(relay, 'schedule-only', 2);
    assert.deepEqual(
      relay.dynamo.calls.slice(before).map((c) => c.command),
      ['UpdateItem', 'UpdateItem'],
      'only the ledger',
    );
    const u = expectedConverseUsage(body);
    const each = priceCall(HAIKU, { inputTokens: u.inputTokens, outputTokens: u.outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }).costNanos;
    assert.equal((await keyItem(store, token)).spend_nanos, 2 * each);
    clock.advance(3_600_000);
    await call(relay.url, key, path, body);
    await settled(relay, 'schedule-only', 3);
    assert.equal((await keyItem(store, token)).spend_nanos, each, 'reset, then this call');
  });

  it('concurrent resets in two environments reset once; a stale reset never wipes newer spend', async () => {
    const storeClock = manualClock(Date.parse('2031-06-01T00:00:00.000Z'));
    const keys = new KeyStore(store.clients.doc, store.tableName, storeClock);
    const { record } = await keys.create({ max_budget: 1, budget_duration: '1h' });
    const log = () => undefined;
    const ledger = new Ledger({ doc: store.clients.doc, table: store.tableName, clock: storeClock, log });
    const entry = (callId: string, costNanos: number): LedgerEntry => ({
      callId,
      token: record.token,
      model: HAIKU,
      day: '2031-06-01',
      at: new Date(storeClock()).toISOString(),
      tokens: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0, guardrailUnits: 0 },
      costNanos,
      unpriced: false,
      failed: false,
    });
    await ledger.record(entry('c1', 700));
    storeClock.advance(3_600_000);
    const here = new Budgets({ doc: store.clients.doc, table: store.tableName, clock: storeClock });
    const there = new Budgets({ doc: store.clients.doc, table: store.tableName, clock: storeClock });
    const seen = (await here.read(record.token))!;
    const results = await Promise.all([here.reset(record.token, seen, storeClock()), there.reset(record.token, seen, storeClock())]);
    assert.deepEqual(results.sort(), [false, true], 'exactly one reset wins');
    await ledger.record(entry('c2', 55));
    assert.equal(await there.reset(record.token, seen, storeClock()), false, 'a reset from a stale view fails its condition');
    const after = (await here.read(record.token))!;
    assert.equal(after.spendNanos, 55);
    assert.equal(after.budgetResetAt, '2031-06-01T02:00:00.000Z');
  });
});
