/**
 * Issue 11, item 2: a crash never makes a call free. `npm start` (a real child process) is killed
 * with SIGKILL while ten budgeted streams are in flight: nothing settles them. Their reservations
 * stay on the key (its spend holds them), and once RELAY_RESERVATION_TTL_SECONDS (6 s here; 20
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
    const req = http.request(
      `${url}/bedrock/model/${MODEL}/converse-stream`,
      { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, agent: false },
      (res) => {
        res.once('data', () => resolve(res.statusCode ?? 0));
        res.on('error', () => undefined);
        res.on('aborted', () => undefined);
      },
    );
    req.on('error', (error) => reject(error));
    req.end(BODY);
  });
}

type Info = { spend_nanos: number; reserved_spend_nanos: number; usage_totals: { requests: number; unsettled_requests: number; spend_nanos: number } };

describe('a crash with budgeted calls in flight', () => {
  it('SIGKILL mid-stream: the reservations stay charged, then settle as unsettled calls at their reserved cost', TEST, async () => {
    const ttlMs = 6_000;
    const env = { RELAY_RESERVATION_TTL_SECONDS: String(ttlMs / 1000) };
    const first = await startRelayProcess(fake, dir, env);
    const { key, token } = await createKey(first.url, { key_alias: 'crash', max_budget: 10 });
    const admittedBy = Date.now();
    const statuses = await Promise.all(Array.from({ length: 10 }, () => startStream(first.url, key)));
    assert.deepEqual(statuses, Array(10).fill(200));

    first.child.kill('SIGKILL');
    assert.equal(await first.exited, 'SIGKILL');

    const second = await startRelayProcess(fake, dir, env);
    try {
      const body = Buffer.from(BODY);
      // The worst case each call reserved: body bytes in, 200 tokens out, at Haiku's $0.00025 / $0.00125 per 1K.
      const each = Math.ceil((body.byteLength * 250_000 + 200 * 1_250_000) / 1000);
      // Before the reservations expire (a restart on a busy machine may take longer: then only the end state is checked).
      if (Date.now() - admittedBy < ttlMs - 1_000) {
        const held = (await admin(second.url, 'GET', `/key/info?key=${token}`)).json.info as Info;
        if (Date.now() - admittedBy < ttlMs) {
          assert.equal(held.spend_nanos, 0, 'nothing settled');
          assert.equal(held.reserved_spend_nanos, 10 * each, 'but the ten worst cases are still held against the budget');
        }
      }
      const wait = admittedBy + ttlMs + 500 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
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
