/**
 * Issue 12, item 4: graceful shutdown of `npm start` (a real child process, against a fake
 * Bedrock, with its embedded store on disk). SIGTERM: the port stops accepting, calls in flight
 * finish whole, their usage is in the table, the process exits 0. A call that would outlast
 * RELAY_SHUTDOWN_TIMEOUT_MS is cut at it. A second signal exits at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KEY_COUNTERS } from '../../lambda/accounting/items.js';
import { startEmbeddedDynamo } from '../../lambda/store/embedded.js';
import { decodeEventStream, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { createKey, keyItem, waitFor } from './accounting-harness.js';
import { startRelayProcess, waitForOutput } from './local-server-process.js';

const STREAM = (model: string) => `/bedrock/model/${encodeURIComponent(model)}/converse-stream`;
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'finish me' }] }] });
const TEST = { timeout: 60_000 };

let fake: FakeBedrock;
const dirs: string[] = [];
before(async () => {
  // 150 ms between frames: a streamed answer takes about a second, long enough to be in flight.
  fake = await startFakeBedrock({ frameDelayMs: 150 });
});
after(async () => {
  await fake.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'relay-shutdown-'));
  dirs.push(dir);
  return dir;
}

interface Streamed {
  /** Resolves once the status and the first body bytes have arrived. */
  readonly started: Promise<number>;
  /** Resolves with the whole body, or rejects if the answer is cut. */
  readonly done: Promise<Buffer>;
}

function streamCall(url: string, key: string, model: string): Streamed {
  let onStarted!: (status: number) => void;
  const started = new Promise<number>((resolve) => (onStarted = resolve));
  const done = new Promise<Buffer>((resolve, reject) => {
    const req = http.request(
      `${url}${STREAM(model)}`,
      { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          if (chunks.length === 0) onStarted(res.statusCode ?? 0);
          chunks.push(chunk);
        });
        res.on('end', () => (res.complete ? resolve(Buffer.concat(chunks)) : reject(new Error('cut short'))));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('aborted')));
      },
    );
    req.on('error', reject);
    req.end(BODY);
  });
  done.catch(() => undefined);
  return { started, done };
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

describe('graceful shutdown of npm start', () => {
  it('SIGTERM: stops accepting, lets calls in flight finish, their usage is stored, exits 0', TEST, async () => {
    const dir = dataDir();
    const relay = await startRelayProcess(fake, dir);
    const key = await createKey(relay.url, { key_alias: 'shutdown' });
    const calls = Array.from({ length: 3 }, () => streamCall(relay.url, key.key, 'us.amazon.nova-micro-v1:0'));
    assert.deepEqual(await Promise.all(calls.map((c) => c.started)), [200, 200, 200]);

    relay.child.kill('SIGTERM');
    await waitForOutput(relay, /SIGTERM: stopping; 3 call\(s\) in flight/);
    await waitFor(async () => ((await refused(relay.url)) ? true : undefined), 10_000);

    for (const call of calls) {
      const frames = decodeEventStream(await call.done);
      assert.equal(frames.at(-1)?.eventType, 'metadata', 'the stream ran to its end');
    }
    assert.equal(await relay.exited, 0, relay.output());
    assert.match(relay.output(), /\nstopped\n/);

    // The store on disk (the process has released it): three calls recorded on the key.
    const store = await startEmbeddedDynamo({ dataDir: dir });
    try {
      const item = await keyItem(store, key.token);
      assert.equal(item[KEY_COUNTERS.requests], 3, JSON.stringify(item));
      assert.ok(Number(item[KEY_COUNTERS.output]) > 0);
    } finally {
      await store.stop();
    }
  });

  it('a call that outlasts RELAY_SHUTDOWN_TIMEOUT_MS is cut at it, its usage still stored; the process exits 0', TEST, async () => {
    const dir = dataDir();
    const relay = await startRelayProcess(fake, dir, { RELAY_SHUTDOWN_TIMEOUT_MS: '300' });
    const key = await createKey(relay.url, { key_alias: 'stalled' });
    // fake.stall: status and headers, then nothing.
    const stalled = streamCall(relay.url, key.key, 'fake.stall');
    await waitFor(() => (fake.requests.some((r) => r.path.includes('fake.stall')) ? true : undefined), 10_000);
    relay.child.kill('SIGTERM');
    assert.equal(await relay.exited, 0, relay.output());
    assert.match(relay.output(), /1 call\(s\) were cut/);
    await assert.rejects(stalled.done);
    // Cut, but counted: its upstream was aborted and its usage written before the store closed.
    const store = await startEmbeddedDynamo({ dataDir: dir });
    try {
      assert.equal((await keyItem(store, key.token))[KEY_COUNTERS.requests], 1);
    } finally {
      await store.stop();
    }
  });

  it('a second signal exits at once', TEST, async () => {
    // A grace far beyond the test's own timeout: only the second signal can end it in time.
    const relay = await startRelayProcess(fake, dataDir(), { RELAY_SHUTDOWN_TIMEOUT_MS: '600000' });
    const key = await createKey(relay.url, { key_alias: 'impatient' });
    const stalled = streamCall(relay.url, key.key, 'fake.stall');
    await waitFor(() => (fake.requests.filter((r) => r.path.includes('fake.stall')).length >= 2 ? true : undefined), 10_000);
    relay.child.kill('SIGINT');
    await waitForOutput(relay, /SIGINT: stopping/);
    relay.child.kill('SIGINT');
    assert.equal(await relay.exited, 130, relay.output());
    assert.match(relay.output(), /SIGINT again: exiting now/);
    await assert.rejects(stalled.done);
  });
});
