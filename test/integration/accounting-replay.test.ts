/**
 * The ledger when DynamoDB fails: retried writes are counted once; writes that fail past the
 * retries are logged as replayable records and `relay ledger replay` applies them exactly once,
 * however often it is run, and resumes correctly after being interrupted mid-record.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Logger } from '@aws-lambda-powertools/logger';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Ledger, replayRecordFromLine, type LedgerEntry, type ReplayRecord } from '../../lambda/accounting/ledger.js';
import { main } from '../../lambda/cli/main.js';
import { KeyStore } from '../../lambda/keys/store.js';
import { priceCall } from '../../lambda/pricing/index.js';
import { startEmbeddedDynamo, writeEndpointFile, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { expectedConverseUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { call, createKey, keyItem, probedDynamo, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';
import { manualClock } from './keys-harness.js';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const DAY = '2031-08-02';
let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;
let dataDir: string;
const clock = manualClock(Date.parse(`${DAY}T08:00:00.000Z`));

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store, clock });
  dataDir = await mkdtemp(join(tmpdir(), 'relay-replay-'));
  // The CLI finds the store as it finds a running local relay's.
  await writeEndpointFile(dataDir, store);
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
  await rm(dataDir, { recursive: true, force: true });
});

const body = (text: string) => JSON.stringify({ messages: [{ role: 'user', content: [{ text }] }], inferenceConfig: { maxTokens: 25 } });
const costOf = (b: string) => {
  const u = expectedConverseUsage(b);
  return priceCall(HAIKU, { inputTokens: u.inputTokens, outputTokens: u.outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }).costNanos;
};
const onKeyItem = (c: { command: string; key?: { sk?: unknown } }) => c.command === 'UpdateItem' && c.key?.sk === 'KEY';
const onUsageItem = (c: { command: string; key?: { sk?: unknown } }) => c.command === 'UpdateItem' && String(c.key?.sk).startsWith('USAGE#');

async function usageItem(token: string, model = HAIKU): Promise<Record<string, unknown> | undefined> {
  const result = await store.clients.doc.send(
    new GetCommand({ TableName: store.tableName, Key: { pk: `KEY#${token}`, sk: `USAGE#${DAY}#${model}` }, ConsistentRead: true }),
  );
  return result.Item;
}

/** The line Powertools Logger writes for a record, as it appears in CloudWatch Logs. */
function powertoolsLine(message: string, fields: Record<string, unknown>): string {
  const logger = new Logger({ serviceName: 'bedrock-relay' });
  const chunks: string[] = [];
  // Powertools writes ERROR records to stderr.
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    chunks.push(chunk.toString());
    return true;
  }) as typeof process.stderr.write;
  try {
    logger.error(message, fields);
  } finally {
    process.stderr.write = write;
  }
  return chunks.join('').trim();
}

async function replay(lines: string[]): Promise<{ code: number; out: string; err: string }> {
  const file = join(dataDir, `records-${Math.random().toString(36).slice(2)}.jsonl`);
  await writeFile(file, `${lines.join('\n')}\n`);
  let out = '';
  let err = '';
  const code = await main(['ledger', 'replay', file, '--data-dir', dataDir], {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: {},
    cwd: dataDir,
  });
  return { code, out, err };
}

describe('ledger write failures', () => {
  it('a write that fails and then succeeds is retried and counted once', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'retry-ok' });
    const keyFailure = relay.dynamo.failNext(onKeyItem, 2);
    const usageFailure = relay.dynamo.failNext(onUsageItem, 1);
    const b = body('retry me');
    assert.equal((await call(relay.url, key, `/bedrock/model/${HAIKU}/converse`, b)).status, 200);
    await settled(relay, 'retry-ok', 1);
    assert.equal(keyFailure.remaining, 0);
    assert.equal(usageFailure.remaining, 0);
    const item = await keyItem(store, token);
    assert.equal(item.spend_nanos, costOf(b));
    assert.equal(item.total_requests, 1);
    assert.equal((await usageItem(token))?.requests, 1);
    assert.equal(relay.logs.filter((l) => l.message === 'ledger-write-failed').length, 0);
  });

  it('a write that fails past the retries is logged once, replayably, and `relay ledger replay` applies it exactly once', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'replay-me' });
    const keyFailure = relay.dynamo.failNext(onKeyItem, 1000);
    const b = body('this write will be lost');
    assert.equal((await call(relay.url, key, `/bedrock/model/${HAIKU}/converse`, b)).status, 200, 'the client is served regardless');
    await settled(relay, 'replay-me', 1);
    keyFailure.remaining = 0;

    const failures = relay.logs.filter((l) => l.message === 'ledger-write-failed' && (l.fields.replay as ReplayRecord).token === token);
    assert.equal(failures.length, 1, 'one record per failed call');
    const record = failures[0]!.fields.replay as ReplayRecord;
    assert.deepEqual(record.parts, ['key'], 'only the part that failed');
    assert.equal(record.costNanos, costOf(b));
    assert.equal((await keyItem(store, token)).spend_nanos, 0, 'not applied yet');
    assert.equal((await usageItem(token))?.cost_nanos, costOf(b), 'the usage part was written');

    // The records as CloudWatch holds them: Powertools JSON, maybe with the runtime's prefix, among other lines.
    const line = powertoolsLine('ledger-write-failed', failures[0]!.fields);
    assert.equal(replayRecordFromLine(line)?.callId, record.callId);
    const lines = ['{"level":"INFO","message":"relay-call","status":200}', `2031-08-02T08:00:01.000Z\tabc\tERROR\t${line}`, 'not json'];
    const first = await replay(lines);
    assert.equal(first.code, 0, first.err);
    assert.deepEqual(JSON.parse(first.out.trim()), { callId: record.callId, parts: { key: 'applied' } });
    const applied = await keyItem(store, token);
    assert.equal(applied.spend_nanos, costOf(b));
    assert.equal(applied.total_requests, 1);
    assert.equal(applied.ledger_replaying, undefined, 'nothing left in progress');
    assert.equal((await usageItem(token))?.requests, 1, 'the usage part was not applied twice');

    const second = await replay(lines);
    assert.equal(second.code, 0);
    assert.deepEqual(JSON.parse(second.out.trim()), { callId: record.callId, parts: { key: 'already-applied' } });
    assert.equal((await keyItem(store, token)).spend_nanos, costOf(b), 'replaying twice changes nothing');
  });

  it('a budgeted call whose settle is lost keeps its reservation until the replay swaps it for the cost', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'replay-reserved', max_budget: 1 });
    const b = body('reserve, then lose the settle');
    // The reservation is the call's first write to the key item: let it through, fail the settle's.
    let seen = 0;
    const settleFailure = relay.dynamo.failNext((c) => onKeyItem(c) && ++seen > 1, 1000);
    assert.equal((await call(relay.url, key, `/bedrock/model/${HAIKU}/converse`, b)).status, 200);
    await settled(relay, 'replay-reserved', 1);
    settleFailure.remaining = 0;
    const record = relay.logs.find((l) => l.message === 'ledger-write-failed' && (l.fields.replay as ReplayRecord).token === token)?.fields
      .replay as ReplayRecord;
    assert.ok(record, 'the lost settle was logged');
    assert.ok((record.reservedNanos ?? 0) > costOf(b), 'the record names the reservation to swap');
    const held = await keyItem(store, token);
    assert.equal(held.reserved_nanos, record.reservedNanos, 'until replayed, the worst case stays charged: never free');
    assert.equal(held.spend_nanos, record.reservedNanos);

    const replayed = await replay([JSON.stringify({ message: 'ledger-write-failed', replay: record })]);
    assert.equal(replayed.code, 0, replayed.err);
    const after = await keyItem(store, token);
    assert.equal(after.spend_nanos, costOf(b), 'the replay swapped the reservation for the cost');
    assert.equal(after.reserved_nanos, 0);
    assert.deepEqual(
      Object.keys(after).filter((name) => name.startsWith('rsv:')),
      [],
    );
  });

  it('both parts lost, then replayed; a damaged record is reported and skipped', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'replay-both' });
    const failure = relay.dynamo.failNext((c) => onKeyItem(c) || onUsageItem(c), 1000);
    const b = body('both parts lost');
    await call(relay.url, key, `/bedrock/model/${HAIKU}/converse`, b);
    await settled(relay, 'replay-both', 1);
    failure.remaining = 0;
    const record = relay.logs.find((l) => l.message === 'ledger-write-failed' && (l.fields.replay as ReplayRecord).token === token)!.fields
      .replay as ReplayRecord;
    assert.deepEqual([...record.parts].sort(), ['key', 'usage']);
    assert.equal(await usageItem(token), undefined);
    const damaged = JSON.stringify({ message: 'ledger-write-failed', replay: { ...record, token: 'not-a-token' } });
    const result = await replay([JSON.stringify({ replay: record }), damaged]);
    assert.equal(result.code, 1, 'damaged lines make the exit code say so');
    assert.match(result.err, /line 2: invalid replay record: token/);
    assert.equal((await keyItem(store, token)).spend_nanos, costOf(b));
    assert.equal((await usageItem(token))?.cost_nanos, costOf(b));
    assert.equal((await usageItem(token))?.requests, 1);
  });

  it('a replay interrupted after applying, before its marker, resumes without counting twice', async () => {
    const { token } = await createKey(relay.url, { key_alias: 'interrupted' });
    const entry: ReplayRecord = {
      v: 1,
      table: store.tableName,
      callId: 'req-interrupted-1',
      token,
      model: HAIKU,
      day: DAY,
      at: `${DAY}T08:00:00.000Z`,
      tokens: { input: 10, output: 5, cacheRead: 0, cacheWrite: 0, guardrailUnits: 0 },
      costNanos: 12_345,
      unpriced: false,
      failed: false,
      parts: ['key', 'usage'],
    };
    const flaky = probedDynamo(store);
    try {
      flaky.failNext((c) => c.command === 'PutItem', 1000); // the marker write: the "crash" point
      const crashing = new Ledger({
        doc: flaky.clients.doc,
        table: store.tableName,
        clock,
        log: () => undefined,
        retry: { attempts: 1, baseDelayMs: 0, maxDelayMs: 0 },
      });
      await assert.rejects(crashing.replay(entry));
    } finally {
      flaky.close();
    }
    const midway = await keyItem(store, token);
    assert.equal(midway.spend_nanos, 12_345, 'the ADD happened');
    assert.ok(midway.ledger_replaying instanceof Set && midway.ledger_replaying.has('req-interrupted-1#key'), 'and remembered it is in progress');

    const healthy = new Ledger({ doc: store.clients.doc, table: store.tableName, clock, log: () => undefined });
    // The key part was applied before the interruption: the replay sees its id in progress and only finishes it.
    assert.deepEqual(await healthy.replay(entry), { key: 'already-applied', usage: 'applied' });
    assert.deepEqual(await healthy.replay(entry), { key: 'already-applied', usage: 'already-applied' });
    const done = await keyItem(store, token);
    assert.equal(done.spend_nanos, 12_345, 'counted once');
    assert.equal(done.ledger_replaying, undefined);
    assert.equal((await usageItem(token))?.cost_nanos, 12_345);
  });

  it('a key regenerated while its call was in flight: the spend follows it to its successor', async () => {
    const keys = new KeyStore(store.clients.doc, store.tableName, clock);
    const { record } = await keys.create({ key_alias: 'regenerated-in-flight' });
    const fresh = await keys.regenerate(record.token);
    const logs: string[] = [];
    const ledger = new Ledger({ doc: store.clients.doc, table: store.tableName, clock, log: (_level, message) => logs.push(message) });
    const entry: LedgerEntry = {
      callId: 'req-regen-1',
      token: record.token,
      model: HAIKU,
      day: DAY,
      at: `${DAY}T08:00:00.000Z`,
      tokens: { input: 100, output: 50, cacheRead: 0, cacheWrite: 0, guardrailUnits: 0 },
      costNanos: 777,
      unpriced: false,
      failed: false,
    };
    assert.deepEqual(await ledger.record(entry), { failed: [], keyMissing: false });
    assert.equal((await keyItem(store, fresh.record.token)).spend_nanos, 777);
    assert.equal((await keyItem(store, record.token)).spend_nanos, 0, 'the tombstone is not charged');
    assert.deepEqual(logs, []);

    // A deleted key: no balance to charge, the usage item still records the call, nothing to replay.
    await keys.delete([fresh.record.token]);
    assert.deepEqual(await ledger.record({ ...entry, callId: 'req-deleted-1', token: fresh.record.token }), { failed: [], keyMissing: true });
    assert.deepEqual(logs, ['ledger-key-missing']);
    assert.equal((await usageItem(fresh.record.token))?.requests, 1);
  });
});
