/**
 * Issue 11, item 2: a crash never makes a call free. `npm start` (a real child process) is killed
 * with SIGKILL while ten budgeted streams are in flight: nothing settles them. Their reservations
 * stay on the key (its spend holds them), and once RELAY_RESERVATION_TTL_SECONDS (2 s here; 20
 * min by default) has passed, the restarted relay charges each at its reserved amount and counts
 * it unsettled, and the budget is free of them again.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { admin, createKey } from './accounting-harness.js';
import { startRelayProcess } from './local-server-process.js';

const MODEL = 'anthropic.claude-3-haiku-20240307-v1:0';
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'crash during me' }] }], inferenceConfig: { maxTokens: 200 } });
const TEST = { timeout: 90_000 };

let fake: FakeBedrock;
let dir: string;
before(async () => {
  // A second between frames: the streams are surely in flight when the process dies.
  fake = await startFakeBedrock({ frameDelayMs: 1_000 });
  dir = mkdtempSync(join(tmpdir(), 'relay-crash-'));
});
after(async () => {
  await fake.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a ConverseStream call; resolves with its status once the first bytes arrived. */
function startStream(url: string, key: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/bedrock/model/${MODEL}/converse-stream`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, agent: false }, (res) => {
      res.once('data', () => resolve(res.statusCode ?? 0));
      res.on('error', () => undefined);
      res.on('aborted', () => undefined);
    });
    req.on('error', (error) => reject(error));
    req.end(BODY);
  });
}

type Info = { spend_nanos: number; reserved_spend_nanos: number; usage_totals: { requests: number; unsettled_requests: number; spend_nanos: number } };

describe('a crash with budgeted calls in flight', () => {
  it('SIGKILL mid-stream: the reservations stay charged, then settle as unsettled calls at their reserved cost', TEST, async () => {
    const env = { RELAY_RESERVATION_TTL_SECONDS: '2' };
    const first = await startRelayProcess(fake, dir, env);
    const { key, token } = await createKey(first.url, { key_alias: 'crash', max_budget: 10 });
    const statuses = await Promise.all(Array.from({ length: 10 }, () => startStream(first.url, key)));
    assert.deepEqual(statuses, Array(10).fill(200));

    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');

    const second = await startRelayProcess(fake, dir, env);
    try {
      const held = (await admin(second.url, 'GET', `/key/info?key=${token}`)).json.info as Info;
      assert.equal(held.spend_nanos, 0, 'nothing settled');
      assert.ok(held.reserved_spend_nanos > 0, 'but the ten worst cases are still held against the budget');
      const each = held.reserved_spend_nanos / 10;
      assert.ok(Number.isInteger(each), 'ten equal reservations');

      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const charged = (await admin(second.url, 'GET', `/key/info?key=${token}`)).json.info as Info;
      assert.equal(charged.reserved_spend_nanos, 0, 'expired reservations are no longer held');
      assert.equal(charged.spend_nanos, 10 * each, 'each crashed call is charged its reservation: never free');
      assert.equal(charged.usage_totals.unsettled_requests, 10);
      assert.equal(charged.usage_totals.requests, 10);
      const usage = (await admin(second.url, 'GET', `/key/usage?key=${token}`)).json as { totals: { unsettled_requests: number; spend_nanos: number } };
      assert.deepEqual([usage.totals.unsettled_requests, usage.totals.spend_nanos], [10, 10 * each], 'and in the per-day usage report');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
