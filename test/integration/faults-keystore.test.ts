/**
 * Key-store faults, end to end through the local server: a proxy between the relay and dynalite
 * that can refuse connections, go silent, or answer every request with DynamoDB's throttling
 * errors, and then recover. The relay is built the way a deployment builds it (createDynamoClients
 * with its default timeouts and retries) and reads every key from the store
 * (RELAY_KEY_CACHE_TTL_SECONDS=0), so each call meets the fault.
 *
 * Expected of every fault: fail closed (a typed 503 ServiceUnavailableException, promptly: the
 * client's timeouts bound it, no hang), nothing sent to Bedrock, readiness 503; and when the
 * store returns, the same key works again without restarting the relay.
 *
 * Ledger writes meeting an outage that starts after the upstream call began: retried, and when
 * the outage outlasts the retries, logged once as a complete replayable record (the client is
 * served regardless). How `relay ledger replay` applies such records exactly once, however often
 * it runs and wherever it was interrupted, is proved in accounting-replay.test.ts with injected
 * failures; here the failures are real DynamoDB error answers over the wire, through the SDK's
 * own retries.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { Ledger, type ReplayRecord } from '../../lambda/accounting/ledger.js';
import type { LogFn } from '../../lambda/observability/log.js';
import { priceCall } from '../../lambda/pricing/index.js';
import { createDynamoClients, LOCAL_CREDENTIALS, type DynamoClients } from '../../lambda/store/dynamo.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { expectedConverseUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';
import type { LogLine } from './accounting-harness.js';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
/** "Promptly": far above what the client's retries and timeouts add up to, far below a hang. Not a benchmark. */
const PROMPT_MS = 20_000;

// ── the proxy ──

type Fault = 'refuse' | 'silent' | 'throttling' | 'throughput-exceeded';

const THROTTLE_BODIES: Record<'throttling' | 'throughput-exceeded', object> = {
  throttling: { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate of requests exceeds the allowed throughput.' },
  'throughput-exceeded': {
    __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message: 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  },
};

interface StoreProxy {
  readonly url: string;
  /** DynamoDB operations (X-Amz-Target) received, and what each got. */
  readonly seen: Array<{ readonly operation: string; readonly answer: 'forwarded' | Fault }>;
  /** Every request fails this way from now on (`undefined`: forward everything). */
  fail(fault: Fault | undefined): Promise<void>;
  /** Answers the next `count` requests for `operation` with this throttling error, then forwards again. */
  throttleNext(operation: string, count: number, fault?: 'throttling' | 'throughput-exceeded'): void;
  close(): Promise<void>;
}

async function startStoreProxy(target: string): Promise<StoreProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const seen: StoreProxy['seen'] = [];
  const held = new Set<http.ServerResponse>();
  let fault: Fault | undefined;
  let next: { operation: string; count: number; fault: 'throttling' | 'throughput-exceeded' } | undefined;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '?';
      const throttleThis = next && next.count > 0 && next.operation === operation ? next.fault : undefined;
      if (throttleThis) next!.count--;
      const answer = throttleThis ?? fault;
      seen.push({ operation, answer: answer ?? 'forwarded' });
      if (answer === 'silent') {
        held.add(res);
        res.on('close', () => held.delete(res));
        return;
      }
      if (answer === 'throttling' || answer === 'throughput-exceeded') {
        const body = JSON.stringify(THROTTLE_BODIES[answer]);
        res.writeHead(400, {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': Buffer.byteLength(body),
          'x-amzn-requestid': `proxy-${seen.length}`,
        });
        res.end(body);
        return;
      }
      const forwarded = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent },
        (answerFromStore) => {
          res.writeHead(answerFromStore.statusCode ?? 502, answerFromStore.headers);
          answerFromStore.pipe(res);
        },
      );
      forwarded.on('error', () => res.destroy());
      forwarded.end(Buffer.concat(chunks));
    });
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    async fail(next) {
      const previous = fault;
      fault = next;
      if (previous === 'silent') for (const res of held) res.socket?.destroy();
      if (next === 'refuse' && server.listening) {
        // Nothing listens on the port any more and open connections are cut: connect() is refused.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      }
      if (next !== 'refuse' && !server.listening) await listen(port);
    },
    throttleNext(operation, count, kind = 'throttling') {
      next = { operation, count, fault: kind };
    },
    async close() {
      for (const res of held) res.socket?.destroy();
      if (server.listening) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await closed;
      }
      agent.destroy();
    },
  };
}

// ── the client's view ──

interface Observed {
  readonly status?: number;
  readonly headers?: http.IncomingHttpHeaders;
  readonly body: string;
  readonly error?: string;
  readonly elapsedMs: number;
}

/** One HTTP/1.1 request on a fresh connection; gives up (and says so) a little after PROMPT_MS. */
function observe(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Observed> {
  const started = performance.now();
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const req = http.request({ hostname, port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), elapsedMs: performance.now() - started }),
      );
      res.on('error', (error) => resolve({ status: res.statusCode, body: '', error: error.message, elapsedMs: performance.now() - started }));
    });
    req.on('error', (error) => resolve({ body: '', error: error.message, elapsedMs: performance.now() - started }));
    // A hung request must fail the test, not the test runner.
    req.setTimeout(PROMPT_MS + 5_000, () => req.destroy(new Error(`no answer within ${(PROMPT_MS + 5_000) / 1000} s: the relay hung`)));
    req.end(body);
  });
}

const converseBody = (text: string) => JSON.stringify({ messages: [{ role: 'user', content: [{ text }] }], inferenceConfig: { maxTokens: 21 } });
const converse = (url: string, key: string, model = HAIKU, body = converseBody('hello')) =>
  observe(url, 'POST', `/bedrock/model/${encodeURIComponent(model)}/converse`, { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body);

function assertFailedClosed(observed: Observed, what: string): void {
  assert.equal(observed.error, undefined, `${what}: ${observed.error}`);
  assert.equal(observed.status, 503, `${what}: status ${observed.status} ${observed.body}`);
  assert.equal(observed.headers?.['x-amzn-errortype'], 'ServiceUnavailableException', what);
  assert.match((JSON.parse(observed.body) as { message: string }).message, /key store is unavailable/i, what);
  assert.ok(observed.elapsedMs < PROMPT_MS, `${what}: answered in ${Math.round(observed.elapsedMs)} ms`);
}

// ── set-up ──

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let proxy: StoreProxy;
let dynamo: DynamoClients;
let relay: RelayUnderTest;
let key: string;
let token: string;
const logs: LogLine[] = [];

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const observed = await observe(
    relay.url,
    method,
    path,
    { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' },
    body === undefined ? undefined : JSON.stringify(body),
  );
  return { status: observed.status ?? 0, json: JSON.parse(observed.body || 'null') as Record<string, unknown> };
}

/** The key item as dynalite holds it, read around the proxy. */
async function keyItem(): Promise<Record<string, unknown>> {
  const result = await store.clients.doc.send(new GetCommand({ TableName: store.tableName, Key: { pk: `KEY#${token}`, sk: 'KEY' }, ConsistentRead: true }));
  return result.Item!;
}

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  proxy = await startStoreProxy(store.endpoint);
  // As a deployment builds its client (lambda/deps.ts → createDynamoClients()): default timeouts and retries.
  dynamo = createDynamoClients({ endpoint: proxy.url, region: 'us-east-1', credentials: LOCAL_CREDENTIALS });
  const log: LogFn = (level, message, fields = {}) => void logs.push({ level, message, fields });
  relay = await startRelay({
    fake,
    env: { RELAY_KEYS_TABLE: store.tableName, RELAY_KEY_CACHE_TTL_SECONDS: '0' },
    overrides: { dynamo, telemetry: { log, writeMetrics: () => undefined } },
  });
  const created = await admin('POST', '/key/generate', { key_alias: 'keystore-faults' });
  assert.equal(created.status, 200, JSON.stringify(created.json));
  key = created.json.key as string;
  token = created.json.token_id as string;
});
after(async () => {
  await proxy?.fail(undefined);
  await relay?.close();
  await proxy?.close();
  dynamo?.client.destroy();
  await store?.stop();
  await fake?.close();
});
beforeEach(async () => {
  await proxy.fail(undefined);
  // Every call of the test before is settled, so what this one reads as "before" stays put.
  await relay.idle();
  fake.reset();
});

// ── the tests ──

describe('key store unreachable or throttling: fail closed, then recover', () => {
  it('works through the proxy while the store is healthy (the baseline the faults are measured against)', async () => {
    const ok = await converse(relay.url, key);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(fake.requests.length, 1);
    assert.ok(
      proxy.seen.some((s) => s.operation === 'GetItem' && s.answer === 'forwarded'),
      'the key was read through the proxy',
    );
    assert.equal((await observe(relay.url, 'GET', '/health/readiness')).status, 200);
  });

  for (const fault of ['refuse', 'silent', 'throttling', 'throughput-exceeded'] as const) {
    it(`${fault}: 503 ServiceUnavailableException promptly, nothing upstream, readiness 503; the same key works once the store is back`, async () => {
      await proxy.fail(fault);
      const seenBefore = proxy.seen.length;
      // In parallel: a silent store must not make these wait on each other.
      const [native, anthropic, masterCall, readiness] = await Promise.all([
        converse(relay.url, key),
        observe(
          relay.url,
          'POST',
          '/bedrock/anthropic/v1/messages',
          { 'x-api-key': key, 'content-type': 'application/json' },
          JSON.stringify({ model: 'us.anthropic.claude-opus-4-7', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }),
        ),
        observe(relay.url, 'GET', `/key/info?key=${token}`, { authorization: `Bearer ${TEST_MASTER_KEY}` }),
        observe(relay.url, 'GET', '/health/readiness'),
      ]);

      assertFailedClosed(native, `${fault}: Converse`);
      assert.equal(native.headers?.['retry-after'], '1');
      assert.equal(anthropic.error, undefined, anthropic.error);
      assert.equal(anthropic.status, 503, anthropic.body);
      assert.deepEqual(Object.keys(JSON.parse(anthropic.body) as object).sort(), ['error', 'type'], 'in the Anthropic dialect');
      assert.ok(anthropic.elapsedMs < PROMPT_MS, `Anthropic call answered in ${Math.round(anthropic.elapsedMs)} ms`);
      assert.equal(fake.requests.length, 0, 'nothing was sent to Bedrock');
      assert.equal(masterCall.error, undefined, masterCall.error);
      assert.ok((masterCall.status ?? 0) >= 500, `the admin API cannot read the key either: ${masterCall.status} ${masterCall.body}`);
      assert.ok(masterCall.elapsedMs < PROMPT_MS, `admin answered in ${Math.round(masterCall.elapsedMs)} ms`);
      assert.equal(readiness.error, undefined, readiness.error);
      assert.equal(readiness.status, 503, readiness.body);
      assert.deepEqual(JSON.parse(readiness.body), { status: 'unavailable', key_store: 'unreachable' });
      assert.ok(readiness.elapsedMs < PROMPT_MS, `readiness answered in ${Math.round(readiness.elapsedMs)} ms`);
      if (fault !== 'refuse') assert.ok(proxy.seen.length > seenBefore, 'the relay did reach the (faulty) store');
      if (fault === 'throttling' || fault === 'throughput-exceeded') {
        const throttledReads = proxy.seen.slice(seenBefore).filter((s) => s.operation === 'GetItem').length;
        assert.ok(throttledReads >= 2, `the SDK retried the throttled read (${throttledReads} tries seen)`);
      }

      // The store is back: the same relay, the same key, no restart.
      await proxy.fail(undefined);
      const again = await converse(relay.url, key);
      assert.equal(again.status, 200, again.body);
      assert.equal(fake.requests.length, 1);
      assert.equal((await observe(relay.url, 'GET', '/health/readiness')).status, 200);
    });
  }
});

describe('ledger writes meeting an outage that starts after the upstream call began', () => {
  const GATED = 'anthropic.claude-3-haiku-20240307-v1:0';
  const costOf = (body: string) => {
    const u = expectedConverseUsage(body);
    return priceCall(GATED, { inputTokens: u.inputTokens, outputTokens: u.outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }).costNanos;
  };

  /** Holds Bedrock's answer to the next call until `release()`; `began` resolves when the call reached Bedrock. */
  function holdNextAnswer(): { began: Promise<void>; release: () => void } {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let began!: () => void;
    const reached = new Promise<void>((resolve) => (began = resolve));
    fake.override(
      async () => {
        began();
        await gate;
        return undefined; // then the fake's own answer, with its deterministic usage
      },
      { times: 1 },
    );
    return { began: reached, release };
  }

  it('a short outage: the write is retried through it and counted exactly once, with nothing to replay', async () => {
    const spendBefore = (await keyItem()).spend_nanos as number;
    const failuresBefore = logs.filter((l) => l.message === 'ledger-write-failed').length;
    const held = holdNextAnswer();
    const body = converseBody('short outage');
    const answer = converse(relay.url, key, GATED, body);
    await held.began;
    // Four throttled UpdateItems, shared between the two parts of the write: fewer than the SDK's and the ledger's tries.
    proxy.throttleNext('UpdateItem', 4, 'throughput-exceeded');
    const seenBefore = proxy.seen.length;
    held.release();
    assert.equal((await answer).status, 200);
    // The invocation ends once the write is done (or given up and logged): the client's last byte comes earlier.
    await relay.idle(PROMPT_MS);

    const writes = proxy.seen.slice(seenBefore).filter((s) => s.operation === 'UpdateItem');
    assert.equal(writes.filter((s) => s.answer === 'throughput-exceeded').length, 4, 'the outage happened');
    assert.ok(writes.filter((s) => s.answer === 'forwarded').length >= 2, 'and both parts were written after it');
    assert.equal(logs.filter((l) => l.message === 'ledger-write-failed').length, failuresBefore, 'nothing left to replay');
    assert.equal((await keyItem()).spend_nanos, spendBefore + costOf(body), 'counted once');
  });

  it('an outage longer than the retries: the client is served, and one complete replayable record is logged', async () => {
    const before = await keyItem();
    const held = holdNextAnswer();
    const body = converseBody('long outage, the write is lost');
    const answer = converse(relay.url, key, GATED, body);
    await held.began;
    await proxy.fail('throttling');
    const seenBefore = proxy.seen.length;
    held.release();
    const served = await answer;
    assert.equal(served.status, 200, 'the client is served regardless');
    await relay.idle(60_000);
    const retried = proxy.seen.slice(seenBefore).filter((s) => s.operation === 'UpdateItem').length;
    await proxy.fail(undefined);

    assert.ok(retried >= 4, `the writes were retried (${retried} UpdateItem tries seen)`);
    const failures = logs.filter((l) => l.message === 'ledger-write-failed' && (l.fields.replay as ReplayRecord).token === token);
    assert.equal(failures.length, 1, 'one record for the call');
    const record = failures[0]!.fields.replay as ReplayRecord;
    const u = expectedConverseUsage(body);
    assert.deepEqual([...record.parts].sort(), ['key', 'usage']);
    assert.equal(record.model, GATED);
    assert.equal(record.costNanos, costOf(body));
    assert.deepEqual(record.tokens, { input: u.inputTokens, output: u.outputTokens, cacheRead: 0, cacheWrite: 0, guardrailUnits: 0 });
    assert.equal(record.failed, false);
    assert.equal(record.table, store.tableName);
    assert.match(String(failures[0]!.fields.error), /Throttling/);
    assert.equal((await keyItem()).spend_nanos, before.spend_nanos, 'nothing was applied during the outage');

    // The record is all it takes: replayed once the store is back, the call is counted exactly.
    const ledger = new Ledger({ doc: store.clients.doc, table: store.tableName, clock: Date.now, log: () => undefined });
    assert.deepEqual(await ledger.replay(record), { key: 'applied', usage: 'applied' });
    const after = await keyItem();
    assert.equal(after.spend_nanos, (before.spend_nanos as number) + costOf(body));
    assert.equal(after.total_requests, (before.total_requests as number) + 1);
  });
});
