/**
 * Issue 12, item 6 (the part a test can check without timing anything): when usage writes fall
 * behind, the local server slows its clients down instead of piling writes up. Invocations are
 * capped (RELAY_MAX_IN_FLIGHT_CALLS): beyond the cap a request waits, body read, until a
 * running call has written its usage; requests to the embedded store are capped and queued in
 * order before the SDK starts its timers. Every call's usage is recorded.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { startEmbeddedDynamo } from '../../lambda/store/embedded.js';
import { admin, createKey, waitFor } from './accounting-harness.js';
import { startLocal, type LocalUnderTest } from './local-server-harness.js';

const STREAM = `/bedrock/model/${encodeURIComponent('us.amazon.nova-micro-v1:0')}/converse-stream`;
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'wait your turn' }] }] });
const TEST = { timeout: 30_000 };

describe('invocation cap', () => {
  let relay: LocalUnderTest;
  before(async () => {
    // Frames 100 ms apart: the first call holds the only slot for about half a second.
    relay = await startLocal({ env: { RELAY_MAX_IN_FLIGHT_CALLS: '1' }, fake: { frameDelayMs: 100 } });
  });
  after(async () => relay.close());

  it('a request beyond the cap waits for a slot, then runs; both calls are recorded', TEST, async () => {
    const key = await createKey(relay.url, { key_alias: 'queued' });
    const send = () =>
      fetch(`${relay.url}${STREAM}`, { method: 'POST', headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' }, body: BODY }).then(
        async (r) => ({
          status: r.status,
          bytes: (await r.arrayBuffer()).byteLength,
        }),
      );
    const first = send();
    await waitFor(() => (relay.fake.requests.length === 1 ? true : undefined));
    const second = send();
    // The second is read and parked: it has not reached Bedrock while the first runs.
    await waitFor(() => (relay.local.emulator.stats().waitingForSlot === 1 ? true : undefined));
    assert.equal(relay.fake.requests.length, 1);
    const answers = await Promise.all([first, second]);
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200],
    );
    assert.ok(answers.every((a) => a.bytes > 0));
    assert.equal(relay.fake.requests.length, 2);
    // Usage is written after the last byte: read it until the second call has settled too.
    await waitFor(async () => {
      const info = await admin(relay.url, 'GET', `/key/info?key=${key.token}`);
      return (info.json.info as { usage_totals: { requests: number } }).usage_totals.requests === 2 ? true : undefined;
    });
  });
});

describe('embedded store: requests in flight capped, the rest queued in order', () => {
  it('40 writes at once with a cap of 4: never more than 4 in flight, all applied', TEST, async () => {
    const store = await startEmbeddedDynamo({ maxInFlight: 4 });
    try {
      let inFlight = 0;
      let peak = 0;
      // Below the limit (which sits at 'initialize'): counts requests actually being sent.
      store.clients.client.middlewareStack.add(
        (next) => async (args) => {
          peak = Math.max(peak, ++inFlight);
          try {
            return await next(args);
          } finally {
            inFlight--;
          }
        },
        { step: 'build', name: 'countInFlight' },
      );
      await Promise.all(
        Array.from({ length: 40 }, () =>
          store.clients.doc.send(
            new UpdateCommand({
              TableName: store.tableName,
              Key: { pk: 'TEST#limit', sk: 'COUNT' },
              UpdateExpression: 'ADD n :one',
              ExpressionAttributeValues: { ':one': 1 },
            }),
          ),
        ),
      );
      assert.equal(peak, 4);
      const item = await store.clients.doc.send(new GetCommand({ TableName: store.tableName, Key: { pk: 'TEST#limit', sk: 'COUNT' }, ConsistentRead: true }));
      assert.equal(item.Item?.n, 40);
    } finally {
      await store.stop();
    }
  });
});
