/**
 * The local server's coalesced usage writes (lambda/accounting/coalescing-ledger.ts): exact
 * accounting with many concurrent calls (plain keys coalesced, budgeted keys settled per call),
 * per-call replay records when a batch write fails, the flush on close and through the local
 * server's graceful stop, and the bound on calls waiting to be written.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CoalescingLedger } from '../../lambda/accounting/coalescing-ledger.js';
import { KEY_COUNTERS } from '../../lambda/accounting/items.js';
import { Ledger, parseReplayRecord, type LedgerEntry } from '../../lambda/accounting/ledger.js';
import { startLocalServer } from '../../lambda/local/server.js';
import type { LogFn } from '../../lambda/observability/log.js';
import { priceCall } from '../../lambda/pricing/index.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { converseTokenUsage } from '../support/expected-usage.js';
import { FAKE_CREDENTIALS, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { admin, call, createKey, keyItem, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';
import { manualClock } from './keys-harness.js';
import { localServerEnv } from './local-server-harness.js';

const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const PATH = `/bedrock/model/${encodeURIComponent(MODEL)}/converse`;
const DAY = '2031-03-04';

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;
let coalescer: CoalescingLedger | undefined;
const clock = manualClock(Date.parse(`${DAY}T10:00:05.000Z`));

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({
    fake,
    store,
    clock,
    accounting: { usageRecorder: (ledger, deps) => (coalescer = new CoalescingLedger(ledger, deps, { windowMs: 20 })) },
  });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

function body(i: number): string {
  return JSON.stringify({
    messages: [{ role: 'user', content: [{ text: `call ${i} ${'y'.repeat(i % 23)}` }] }],
    inferenceConfig: { maxTokens: 10 + (i % 17) },
  });
}

function expected(bodies: readonly string[]) {
  const total = { input: 0, output: 0, cost: 0 };
  for (const b of bodies) {
    const usage = converseTokenUsage(b);
    total.input += usage.inputTokens;
    total.output += usage.outputTokens;
    const price = priceCall([MODEL], usage);
    assert.ok(price.priced);
    total.cost += price.costNanos;
  }
  return total;
}

const keyUpdates = (token: string) =>
  relay.dynamo.calls.filter((c) => c.command === 'UpdateItem' && c.key?.pk === `KEY#${token}` && c.key?.sk === 'KEY').length;

describe('coalesced usage writes', () => {
  it('N concurrent calls of a plain key and of a budgeted key: exact totals; the plain key in few writes, the budgeted key settled per call', async () => {
    const plain = await createKey(relay.url, { key_alias: 'coalesce-plain' });
    const budgeted = await createKey(relay.url, { key_alias: 'coalesce-budget', max_budget: 1000 });
    const N = 150;
    const plainBodies = Array.from({ length: N }, (_, i) => body(i));
    const budgetBodies = Array.from({ length: 40 }, (_, i) => body(1000 + i));
    relay.dynamo.calls.length = 0;
    const answers = await Promise.all([
      ...plainBodies.map((b) => call(relay.url, plain.key, PATH, b)),
      ...budgetBodies.map((b) => call(relay.url, budgeted.key, PATH, b)),
    ]);
    for (const answer of answers) assert.equal(answer.status, 200, answer.body.toString());
    await settled(relay, 'coalesce-plain', N);
    assert.deepEqual(
      relay.logs.filter((l) => l.level === 'error'),
      [],
      'no write failed',
    );

    const want = expected(plainBodies);
    const item = await keyItem(store, plain.token);
    assert.equal(item[KEY_COUNTERS.requests], N);
    assert.equal(item[KEY_COUNTERS.spend], want.cost);
    assert.equal(item[KEY_COUNTERS.lifetimeSpend], want.cost);
    assert.equal(item[KEY_COUNTERS.input], want.input);
    assert.equal(item[KEY_COUNTERS.output], want.output);
    const usage = await admin(relay.url, 'GET', `/key/usage?key=${plain.token}&start=${DAY}&end=${DAY}`);
    const totals = usage.json.totals as Record<string, number>;
    assert.equal(totals.requests, N);
    assert.equal(totals.spend_nanos, want.cost);
    assert.equal(totals.input_tokens, want.input);
    assert.equal(totals.output_tokens, want.output);
    assert.ok(keyUpdates(plain.token) < N / 2, `the plain key's ${N} calls took ${keyUpdates(plain.token)} key writes`);

    const budgetWant = expected(budgetBodies);
    const bItem = await keyItem(store, budgeted.token);
    assert.equal(bItem[KEY_COUNTERS.requests], 40);
    assert.equal(bItem[KEY_COUNTERS.spend], budgetWant.cost, 'every reservation swapped for its actual cost');
    assert.equal(bItem.reserved_nanos, 0);
    assert.deepEqual(
      Object.keys(bItem).filter((name) => name.startsWith('rsv:')),
      [],
    );
    // Each budgeted call: its reservation at admission and its own settle (the swap), never coalesced.
    assert.equal(keyUpdates(budgeted.token), 80);
    assert.ok(coalescer!.stats().callsCoalesced >= N / 2);
  });

  it('a batch write that fails past its retries is logged as one replay record per call; replaying them is exact and idempotent', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'coalesce-fail' });
    const bodies = Array.from({ length: 30 }, (_, i) => body(200 + i));
    relay.logs.length = 0;
    // Three tries (the harness's retry policy) of every key-item write of this key fail.
    const failure = relay.dynamo.failNext((c) => c.command === 'UpdateItem' && c.key?.pk === `KEY#${token}` && c.key?.sk === 'KEY', 1_000);
    const answers = await Promise.all(bodies.map((b) => call(relay.url, key, PATH, b)));
    for (const answer of answers) assert.equal(answer.status, 200);
    await settled(relay, 'coalesce-fail', 30);
    failure.remaining = 0;

    const failed = relay.logs.filter((l) => l.message === 'ledger-write-failed');
    const records = failed.map((l) => parseReplayRecord(l.fields.replay as Record<string, unknown>));
    assert.equal(records.length, 30, 'one record per call');
    assert.equal(new Set(records.map((r) => r.callId)).size, 30);
    for (const record of records) assert.deepEqual(record.parts, ['key']);
    const want = expected(bodies);
    assert.equal((await keyItem(store, token))[KEY_COUNTERS.requests] ?? 0, 0, 'the key item got nothing');
    const usage = await admin(relay.url, 'GET', `/key/usage?key=${token}&start=${DAY}&end=${DAY}`);
    assert.equal((usage.json.totals as Record<string, number>).requests, 30, 'the usage part was written');

    const replayer = new Ledger({ doc: store.clients.doc, table: store.tableName, log: () => undefined, clock });
    for (let round = 0; round < 2; round++) for (const record of records) await replayer.replay(record);
    const item = await keyItem(store, token);
    assert.equal(item[KEY_COUNTERS.requests], 30);
    assert.equal(item[KEY_COUNTERS.spend], want.cost);
    assert.equal(item[KEY_COUNTERS.input], want.input);
    assert.equal(item[KEY_COUNTERS.output], want.output);
  });
});

/** Call i of a key: i input tokens, 2i output, 1000 + i nano-dollars; every fifth failed. */
const entry = (i: number, token = 'a'.repeat(64)): LedgerEntry => ({
  callId: `call-${i}`,
  token,
  model: MODEL,
  day: DAY,
  at: `${DAY}T10:00:00.000Z`,
  tokens: { input: i, output: 2 * i, cacheRead: 0, cacheWrite: 0, guardrailUnits: 0 },
  costNanos: 1000 + i,
  unpriced: false,
  failed: i % 5 === 0,
});

describe('CoalescingLedger on its own', () => {
  /** A document client that records each UpdateItem's ADD values and can hold writes back. */
  function heldStore() {
    const adds: Array<Record<string, unknown>> = [];
    let release!: () => void;
    let gate: Promise<void> | undefined = new Promise<void>((resolve) => (release = resolve));
    let inFlight = 0;
    let maxInFlight = 0;
    const doc = {
      send: async (command: {
        input: { UpdateExpression?: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> };
      }) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          if (gate) await gate;
          const { UpdateExpression: expression = '', ExpressionAttributeNames: names = {}, ExpressionAttributeValues: values = {} } = command.input;
          // The ADD clause's `#name :value` pairs, read as DynamoDB reads them (whatever the placeholders are called).
          const addClause = /\bADD\s+(.*?)(?=\s+(?:SET|REMOVE|DELETE)\b|$)/.exec(expression)?.[1] ?? '';
          const added: Record<string, unknown> = {};
          for (const pair of addClause.split(',')) {
            const [alias, placeholder] = pair.trim().split(/\s+/);
            if (alias && placeholder) added[names[alias] ?? alias] = values[placeholder];
          }
          adds.push(added);
          return {};
        } finally {
          inFlight--;
        }
      },
    } as unknown as DynamoDBDocumentClient;
    return {
      doc,
      adds,
      open: () => {
        gate = undefined;
        release();
      },
      maxInFlight: () => maxInFlight,
    };
  }

  it('backpressure: with the store held, no more than maxOutstandingCalls are accepted; the rest wait, then every call is written once, none to the replay log', async () => {
    const held = heldStore();
    const logs: Array<{ message: string }> = [];
    const log: LogFn = (_level, message) => void logs.push({ message });
    const deps = { doc: held.doc, table: 't', log, clock: () => Date.now() };
    const ledger = new CoalescingLedger(new Ledger(deps), deps, { windowMs: 1, maxOutstandingCalls: 10 });
    const results = Array.from({ length: 50 }, (_, i) => ledger.record(entry(i + 1)));
    let maxOutstanding = 0;
    for (let turn = 0; turn < 20; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      const stats = ledger.stats();
      maxOutstanding = Math.max(maxOutstanding, stats.outstanding);
    }
    const stats = ledger.stats();
    assert.equal(stats.outstanding, 10);
    assert.equal(stats.waiting, 40);
    assert.equal(maxOutstanding, 10);
    held.open();
    for (const result of await Promise.all(results)) assert.deepEqual(result.failed, []);
    assert.deepEqual(logs, []);
    const keyAdds = held.adds.filter((a) => KEY_COUNTERS.spend in a);
    const usageAdds = held.adds.filter((a) => !(KEY_COUNTERS.spend in a));
    const total = (rows: Array<Record<string, unknown>>, name: string) => rows.reduce((s, r) => s + Number(r[name] ?? 0), 0);
    assert.equal(total(keyAdds, KEY_COUNTERS.requests), 50);
    assert.equal(total(keyAdds, KEY_COUNTERS.spend), 50 * 1000 + (50 * 51) / 2);
    assert.equal(total(keyAdds, KEY_COUNTERS.input), (50 * 51) / 2);
    assert.equal(total(usageAdds, 'requests'), 50);
    assert.equal(total(usageAdds, 'error_requests'), 10);
    assert.ok(keyAdds.length < 50, `${keyAdds.length} key writes for 50 calls`);
  });

  it('close() writes what is still waiting for its window, and later calls are written directly', async () => {
    const held = heldStore();
    held.open();
    const deps = { doc: held.doc, table: 't', log: (() => undefined) as LogFn, clock: () => Date.now() };
    const ledger = new CoalescingLedger(new Ledger(deps), deps, { windowMs: 60_000 });
    const pending = Array.from({ length: 7 }, (_, i) => ledger.record(entry(i + 1)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    assert.equal(held.adds.length, 0, 'nothing written before the window ends');
    assert.equal(ledger.stats().pending, 7);
    await ledger.close();
    await Promise.all(pending);
    assert.equal(
      held.adds.filter((a) => KEY_COUNTERS.spend in a).reduce((s, r) => s + Number(r[KEY_COUNTERS.requests]), 0),
      7,
    );
    await ledger.record(entry(8));
    assert.equal(held.adds.length, 4, 'one key and one usage write for the batch, and for the call after close');
  });

  it('a call holding a reservation is never held back: it is written at once, on its own', async () => {
    const held = heldStore();
    held.open();
    const deps = { doc: held.doc, table: 't', log: (() => undefined) as LogFn, clock: () => Date.now() };
    const direct: LedgerEntry[] = [];
    const ledger = new CoalescingLedger(
      {
        record: async (e) => {
          direct.push(e);
          return { failed: [], keyMissing: false };
        },
      },
      deps,
      { windowMs: 60_000 },
    );
    const plain = ledger.record(entry(1));
    await ledger.record({ ...entry(2), reservedNanos: 5_000, reservationDay: DAY });
    assert.deepEqual(
      direct.map((e) => e.callId),
      ['call-2'],
    );
    assert.equal(ledger.stats().pending, 1);
    await ledger.close();
    await plain;
  });
});

describe('CoalescingLedger when the ledger itself throws', () => {
  it('the calls waiting on the batch are released and each is logged for replay', async () => {
    const logs: Array<{ message: string; fields: Record<string, unknown> }> = [];
    const log: LogFn = (_level, message, fields = {}) => void logs.push({ message, fields });
    const doc = { send: async () => Promise.reject(new Error('unreachable')) } as unknown as DynamoDBDocumentClient;
    const deps = { doc, table: 't', log, clock: () => Date.now() };
    const ledger = new CoalescingLedger({ record: () => Promise.reject(new Error('boom')) }, deps, { windowMs: 1 });
    const result = await ledger.record({ ...entry(1, 'b'.repeat(64)), callId: 'only' });
    assert.deepEqual(result.failed, ['key', 'usage']);
    const failed = logs.filter((l) => l.message === 'ledger-write-failed');
    assert.equal(failed.length, 1);
    assert.equal(parseReplayRecord(failed[0]!.fields.replay as Record<string, unknown>).callId, 'only');
    await ledger.close();
  });
});

describe('the local server', () => {
  const dirs: string[] = [];
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('graceful stop writes usage still coalescing, before the store closes', { timeout: 60_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'relay-coalesce-'));
    dirs.push(dataDir);
    // A window far longer than the stop's grace: only the flush on stop can write these calls.
    const local = await startLocalServer({
      env: localServerEnv(fake, { RELAY_USAGE_COALESCE_MS: '1000', RELAY_SHUTDOWN_TIMEOUT_MS: '50' }),
      dataDir,
      overrides: { credentials: async () => ({ ...FAKE_CREDENTIALS }) },
    });
    const { key, token } = await createKey(local.url, { key_alias: 'stop-flush' });
    const bodies = Array.from({ length: 12 }, (_, i) => body(500 + i));
    for (const answer of await Promise.all(bodies.map((b) => call(local.url, key, PATH, b)))) assert.equal(answer.status, 200);
    assert.equal(local.usage()?.stats().pending, 12, 'the calls wait for their window');
    await local.stop();
    const reopened = await startEmbeddedDynamo({ dataDir });
    try {
      const item = await keyItem(reopened, token);
      assert.equal(item[KEY_COUNTERS.requests], 12);
      assert.equal(item[KEY_COUNTERS.output], expected(bodies).output);
    } finally {
      await reopened.stop();
    }
  });
});
