/**
 * rpm, tpm and parallel limits hold across Lambda environments: two relays (two apps, two
 * DynamoDB clients, two key caches) share one dynalite table, as two Lambda environments share
 * the stack's table.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Leases } from '../../lambda/accounting/limits.js';
import { windowOf } from '../../lambda/accounting/items.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { runtimeClient } from '../support/clients.js';
import { expectedConverseUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { admin, call, createKey, settled, startAccountingRelay, waitFor, type AccountingRelay } from './accounting-harness.js';
import { manualClock } from './keys-harness.js';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const NOVA = 'amazon.nova-micro-v1:0';
const LEASE_TTL_MS = 30_000;

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let a: AccountingRelay;
let b: AccountingRelay;
const clock = manualClock(Date.parse('2031-07-01T12:00:05.000Z'));

before(async () => {
  // Streams take ~1 s (8 frames, 120 ms apart): long enough to hold parallel slots.
  fake = await startFakeBedrock({ frameDelayMs: 120 });
  store = await startEmbeddedDynamo();
  const accounting = { leaseTtlMs: LEASE_TTL_MS, leaseRenewEveryMs: 40 };
  a = await startAccountingRelay({ fake, store, clock, accounting });
  b = await startAccountingRelay({ fake, store, clock, accounting });
});
after(async () => {
  await a.close();
  await b.close();
  await store.stop();
  await fake.close();
});

const body = (maxTokens = 10) => JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'limit me' }] }], inferenceConfig: { maxTokens } });
const converse = (relay: AccountingRelay, key: string, model = HAIKU, maxTokens = 10) =>
  call(relay.url, key, `/bedrock/model/${encodeURIComponent(model)}/converse`, body(maxTokens));

/** Opens a ConverseStream call and resolves once its response has started (the call is in flight). */
function openStream(relay: AccountingRelay, key: string): Promise<{ status: number; done: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${relay.url}/bedrock/model/${HAIKU}/converse-stream`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      const done = new Promise<void>((finish) => {
        res.resume();
        res.on('end', finish);
        res.on('close', finish);
      });
      resolve({ status: res.statusCode ?? 0, done });
    });
    req.on('error', reject);
    req.end(body());
  });
}

describe('rate and concurrency limits across two relay instances', () => {
  it('rpm_limit: concurrent calls on both instances pass exactly rpm_limit per minute; the rest get 429 ThrottlingException with retry-after', async () => {
    const { key, token } = await createKey(a.url, { key_alias: 'rpm-4', rpm_limit: 4 });
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => converse(i % 2 ? b : a, key)));
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((s) => s === 200).length, 4, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 6);
    const refused = answers.find((answer) => answer.status === 429)!;
    assert.equal(refused.headers['x-amzn-errortype'], 'ThrottlingException');
    assert.equal(refused.headers['retry-after'], '55', 'until the minute ends');
    assert.match(JSON.parse(refused.body.toString()).message, /4 requests per minute \(rpm_limit\)/);
    assert.equal(fake.requests.filter((r) => r.body.toString() === body()).length >= 4, true);

    // The AWS SDK raises its typed exception.
    const sdk = runtimeClient(b.url, key, undefined, 1);
    try {
      await assert.rejects(
        sdk.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: 'user', content: [{ text: 'x' }] }] })),
        (error: Error) => error.name === 'ThrottlingException',
      );
    } finally {
      sdk.destroy();
    }
    // Refused calls count nowhere.
    const info = (await admin(a.url, 'GET', `/key/info?key=${token}`)).json.info as { current_window: Record<string, unknown> };
    assert.equal(info.current_window.requests, 4);
    assert.equal(info.current_window.window_start, '2031-07-01T12:00:00.000Z');

    clock.advance(60_000);
    assert.equal((await converse(b, key)).status, 200, 'a new minute, a new window');
  });

  it('tpm_limit: each call reserves its worst case (body bytes + max tokens) and settles to its actual tokens, on either instance', async () => {
    const u = expectedConverseUsage(body(40));
    const perCall = u.inputTokens + u.outputTokens;
    const reserve = Buffer.byteLength(body(40)) + 40;
    assert.ok(perCall < reserve, `${perCall} < ${reserve}`);
    // Room for one reservation on top of two calls' actual tokens, not three.
    const limit = 2 * perCall + reserve - 1;
    const { key } = await createKey(a.url, { key_alias: 'tpm-window', tpm_limit: limit });
    assert.equal((await converse(a, key, HAIKU, 40)).status, 200);
    await settled(a, 'tpm-window', 1);
    assert.equal((await converse(b, key, HAIKU, 40)).status, 200, `${perCall} + ${reserve} ≤ ${limit}`);
    await settled(b, 'tpm-window', 1);
    const refused = await converse(a, key, HAIKU, 40);
    assert.equal(refused.status, 429);
    assert.match(JSON.parse(refused.body.toString()).message, new RegExp(`${limit} tokens per minute \\(tpm_limit\\); ${2 * perCall} used this minute`));
    // A call that could never fit is told why.
    const huge = await converse(b, key, HAIKU, limit + 1);
    assert.equal(huge.status, 429);
    assert.match(JSON.parse(huge.body.toString()).message, /could use up to \d+ tokens .* State a lower max tokens/);
    clock.advance(60_000);
    assert.equal((await converse(b, key, HAIKU, 40)).status, 200);
  });

  it('tpm_limit holds under 20 parallel calls across both instances: reservations, not settled tokens, are what admission counts', async () => {
    const reserve = Buffer.byteLength(body(40)) + 40;
    const limit = 3 * reserve + 5;
    const { key, token } = await createKey(a.url, { key_alias: 'tpm-burst', tpm_limit: limit });
    const upstreamBefore = fake.requests.length;
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => converse(i % 2 ? a : b, key, HAIKU, 40)));
    const admitted = answers.filter((answer) => answer.status === 200).length;
    assert.ok(admitted >= 3, `the three that fit at once ran (${admitted})`);
    assert.ok(answers.every((answer) => answer.status === 200 || answer.status === 429));
    assert.equal(fake.requests.length - upstreamBefore, admitted);
    await settled(a, 'tpm-burst', 1);
    await settled(b, 'tpm-burst', 1);
    const u = expectedConverseUsage(body(40));
    const info = (await admin(a.url, 'GET', `/key/info?key=${token}`)).json.info as { current_window: { tokens: number } };
    assert.equal(info.current_window.tokens, admitted * (u.inputTokens + u.outputTokens), "the window holds exactly the admitted calls' tokens");
    assert.ok(info.current_window.tokens <= limit);
    clock.advance(60_000);
  });

  it('model_rpm_limit limits one model of a key and leaves the others alone', async () => {
    const { key } = await createKey(a.url, { key_alias: 'model-rpm', model_rpm_limit: { 'anthropic.claude-3-haiku-20240307-v1:0': 2 } });
    assert.equal((await converse(a, key)).status, 200);
    assert.equal((await converse(b, key, `us.${HAIKU}`)).status, 200, 'the inference profile is the same model');
    const refused = await converse(a, key);
    assert.equal(refused.status, 429);
    assert.match(JSON.parse(refused.body.toString()).message, /model anthropic\.claude-3-haiku-20240307-v1:0 .* \(model_rpm_limit\)/);
    assert.equal((await converse(b, key, NOVA)).status, 200);
    const bad = await admin(a.url, 'POST', '/key/generate', { model_tpm_limit: { [HAIKU]: -1 } });
    assert.equal(bad.status, 400);
  });

  it('max_parallel_requests: slots are shared by both instances and given back when calls end', async () => {
    const { key, token } = await createKey(a.url, { key_alias: 'parallel-2', max_parallel_requests: 2 });
    const first = await openStream(a, key);
    const second = await openStream(b, key);
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    const refused = await converse(b, key);
    assert.equal(refused.status, 429);
    assert.equal(refused.headers['x-amzn-errortype'], 'ThrottlingException');
    assert.equal(refused.headers['retry-after'], '1');
    assert.match(JSON.parse(refused.body.toString()).message, /2 in flight \(max_parallel_requests\)/);
    const during = (await admin(a.url, 'GET', `/key/info?key=${token}`)).json.info as { current_window: Record<string, unknown> };
    assert.equal(during.current_window.parallel_requests, 2);
    await Promise.all([first.done, second.done]);
    await settled(a, 'parallel-2', 1);
    await settled(b, 'parallel-2', 2);
    assert.equal((await converse(a, key)).status, 200);
    const afterwards = (await admin(b.url, 'GET', `/key/info?key=${token}`)).json.info as { current_window: Record<string, unknown> };
    assert.equal(afterwards.current_window.parallel_requests, 0);
  });

  it('a lease that is never released (a crashed invocation) expires, and a running call keeps its lease alive', async () => {
    const { key, token } = await createKey(a.url, { key_alias: 'parallel-crash', max_parallel_requests: 1 });
    // An invocation that took the slot and died: nothing will ever release it.
    const crashed = new Leases({ doc: store.clients.doc, table: store.tableName, clock }, { ttlMs: LEASE_TTL_MS });
    await crashed.acquire(token, 1, 'crashed-invocation');
    assert.equal((await converse(a, key)).status, 429);
    clock.advance(LEASE_TTL_MS - 1);
    assert.equal((await converse(b, key)).status, 429, 'not yet expired');
    clock.advance(1);
    assert.equal((await converse(b, key)).status, 200, 'expired: swept and the slot taken');
    await settled(b, 'parallel-crash', 2);
    assert.deepEqual(await crashed.readLeases(token), {}, 'the dead lease is gone');

    // A long call renews its lease: time passes beyond the TTL, and the slot is still held.
    const running = await openStream(a, key);
    for (let i = 0; i < 3; i++) {
      clock.advance(LEASE_TTL_MS / 2);
      // Renewal runs on a real-time timer: wait until it has stored an expiry from the moved clock.
      await waitFor(async () => {
        const leases = Object.values((await crashed.readLeases(token)) ?? {});
        return leases.length === 1 && leases[0] === clock() + LEASE_TTL_MS ? true : undefined;
      }, 30_000);
    }
    assert.equal((await converse(b, key)).status, 429, 'the running call still holds the slot');
    await running.done;
    await settled(a, 'parallel-crash', 2);
    assert.equal((await converse(b, key)).status, 200);
  });

  it('window items are per minute and carry a ttl', async () => {
    const { key, token } = await createKey(a.url, { key_alias: 'ttl-check', rpm_limit: 10 });
    assert.equal((await converse(a, key)).status, 200);
    const window = windowOf(clock());
    const item = await store.clients.doc.send(new GetCommand({ TableName: store.tableName, Key: { pk: `KEY#${token}`, sk: `RL#w#${window}` } }));
    assert.equal(item.Item?.requests, 1);
    assert.ok((item.Item?.ttl as number) > ((window + 1) * 60_000) / 1000);
  });
});
