/**
 * Load through the local server: the Lambda handler behind the Function URL emulator, the way
 * `npm start` runs it, with the embedded dynalite as its key store (the very DynamoDB clients
 * lambda/local/main.ts hands it). Thousands of mixed calls over a few virtual keys, hundreds in
 * flight, every API family, streamed and not, plus a share that Bedrock throttles.
 *
 * Asserted: every non-2xx answer is one the test asked the fake for (429 ThrottlingException),
 * every 2xx answer is complete, Bedrock saw each call exactly once, and each key's spend and
 * token totals equal, exactly, what the fake's deterministic usage and the price table say.
 * Not asserted: how fast. Throughput belongs to `npm run bench`.
 */
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { after, before, describe, it } from 'node:test';
import { prepareRequestBody } from '../../lambda/metering/index.js';
import type { TokenUsage } from '../../lambda/pipeline.js';
import { priceCall } from '../../lambda/pricing/index.js';
import { ROUTES } from '../../lambda/routes/table.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import type { LogFn } from '../../lambda/observability/log.js';
import { decodeEventStream, expectedOpenAIChatUsage, parseSse, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { anthropicTokenUsage, converseTokenUsage, invocationTokenUsage } from '../support/expected-usage.js';
import { startRelay, type RelayUnderTest } from '../support/relay-harness.js';
import { admin, createKey, type LogLine } from './accounting-harness.js';

const CALLS = 2_000;
const IN_FLIGHT = 200;
const KEYS = 4;

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: RelayUnderTest;
const logs: LogLine[] = [];

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  const log: LogFn = (level, message, fields = {}) => void logs.push({ level, message, fields });
  relay = await startRelay({
    fake,
    env: { RELAY_KEYS_TABLE: store.tableName },
    // What lambda/local/main.ts does: the embedded store's own clients, default timeouts and retries.
    overrides: { dynamo: store.clients, telemetry: { log, writeMetrics: () => undefined } },
  });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

type Check = (body: Buffer) => void;

interface Planned {
  readonly kind: string;
  readonly key: number;
  readonly model: string | undefined;
  readonly path: string;
  readonly body: string;
  readonly status: 200 | 429;
  /** What Bedrock reports, in the meter's convention (from the fake's rules). */
  readonly usage: TokenUsage;
  /** Proves a 2xx answer arrived whole (a cut stream is an error too). */
  readonly complete: Check;
}

const ZERO: TokenUsage = { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 };
const modelPath = (model: string, op: string) => `/bedrock/model/${encodeURIComponent(model)}/${op}`;
const openAIRoute = ROUTES.find((r) => r.operation === 'OpenAIChatCompletions')!;

const json: Check = (body) => void JSON.parse(body.toString());
const lastEvent =
  (eventType: string): Check =>
  (body) =>
    assert.equal(decodeEventStream(body).at(-1)?.eventType, eventType);
const lastChunkHasMetrics: Check = (body) => {
  const last = decodeEventStream(body).at(-1)?.json as { bytes?: string } | undefined;
  assert.match(Buffer.from(last?.bytes ?? '', 'base64').toString(), /amazon-bedrock-invocationMetrics/);
};
const lastSse =
  (predicate: (event: { event?: string; data: string }) => boolean): Check =>
  (body) => {
    const events = parseSse(body.toString());
    assert.ok(events.length > 0 && predicate(events.at(-1)!), `stream ends early: ${body.toString().slice(-200)}`);
  };

/** Call i: the family follows i % 20, the key follows blocks of 20, sizes and limits vary with i. */
function plan(i: number): Planned {
  const key = Math.floor(i / 20) % KEYS;
  const text = `load ${i} ${'y'.repeat((i * 13) % 97)}`;
  const maxTokens = 5 + ((i * 7) % 60);
  const slot = i % 20;
  const converseBody = (cached: boolean) =>
    JSON.stringify({
      messages: [{ role: 'user', content: [{ text }, ...(cached ? [{ cachePoint: { type: 'default' } }] : [])] }],
      inferenceConfig: { maxTokens },
    });
  switch (slot) {
    case 0:
    case 1: {
      const model = 'anthropic.claude-3-5-haiku-20241022-v1:0';
      const body = converseBody(slot === 1);
      return { kind: 'Converse', key, model, path: modelPath(model, 'converse'), body, status: 200, usage: converseTokenUsage(body), complete: json };
    }
    case 2:
    case 3: {
      const model = 'us.amazon.nova-micro-v1:0';
      const body = converseBody(slot === 3);
      return {
        kind: 'ConverseStream',
        key,
        model,
        path: modelPath(model, 'converse-stream'),
        body,
        status: 200,
        usage: converseTokenUsage(body),
        complete: lastEvent('metadata'),
      };
    }
    case 4:
    case 5:
    case 6:
    case 7: {
      const model = 'anthropic.claude-3-haiku-20240307-v1:0';
      const streamed = slot >= 6;
      const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });
      return {
        kind: streamed ? 'InvokeModelWithResponseStream' : 'InvokeModel',
        key,
        model,
        path: modelPath(model, streamed ? 'invoke-with-response-stream' : 'invoke'),
        body,
        status: 200,
        usage: invocationTokenUsage(body),
        complete: streamed ? lastChunkHasMetrics : json,
      };
    }
    case 8:
    case 9:
    case 10:
    case 11: {
      const model = 'us.anthropic.claude-opus-4-7';
      const stream = slot <= 9;
      const content = slot % 2 === 1 ? [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] : text;
      const body = JSON.stringify({ model, max_tokens: maxTokens, ...(stream ? { stream: true } : {}), messages: [{ role: 'user', content }] });
      return {
        kind: stream ? 'AnthropicMessages (stream)' : 'AnthropicMessages',
        key,
        model,
        path: '/bedrock/anthropic/v1/messages',
        body,
        status: 200,
        usage: anthropicTokenUsage(body),
        complete: stream ? lastSse((e) => e.event === 'message_stop') : json,
      };
    }
    case 12:
    case 13:
    case 14: {
      const model = 'openai.gpt-oss-120b-1:0';
      const stream = slot <= 13;
      // Streamed without include_usage: the relay asks Bedrock for usage itself, so Bedrock counts that body.
      const body = JSON.stringify({ model, ...(stream ? { stream: true } : {}), max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });
      const o = expectedOpenAIChatUsage(prepareRequestBody(openAIRoute, Buffer.from(body)).body);
      const cached = o.prompt_tokens_details.cached_tokens;
      return {
        kind: stream ? 'OpenAI chat (stream, no include_usage)' : 'OpenAI chat',
        key,
        model,
        path: '/bedrock/openai/v1/chat/completions',
        body,
        status: 200,
        usage: { inputTokens: o.prompt_tokens - cached, outputTokens: o.completion_tokens, cacheReadInputTokens: cached, cacheWriteInputTokens: 0 },
        complete: stream ? lastSse((e) => e.data === '[DONE]') : json,
      };
    }
    case 15:
    case 16: {
      const body = JSON.stringify({ retrievalQuery: { text } });
      return { kind: 'Retrieve', key, model: undefined, path: '/bedrock/knowledgebases/KBLOAD0001/retrieve', body, status: 200, usage: ZERO, complete: json };
    }
    case 17: {
      const model = 'acme.unlisted-model-v1:0';
      const body = converseBody(false);
      return {
        kind: 'Converse (unpriced model)',
        key,
        model,
        path: modelPath(model, 'converse'),
        body,
        status: 200,
        usage: converseTokenUsage(body),
        complete: json,
      };
    }
    default: {
      // 10 % of the calls: Bedrock throttles, on the streamed and the unstreamed operation.
      const model = 'fake.throttle';
      const op = slot === 18 ? 'converse' : 'converse-stream';
      return {
        kind: `${op} (Bedrock throttles)`,
        key,
        model,
        path: modelPath(model, op),
        body: converseBody(false),
        status: 429,
        usage: ZERO,
        complete: () => undefined,
      };
    }
  }
}

interface Expected {
  requests: number;
  unpriced: number;
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
  spendNanos: number;
}

function expectedFor(calls: readonly Planned[]): Expected {
  const total: Expected = { requests: 0, unpriced: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, spendNanos: 0 };
  for (const c of calls) {
    total.requests++;
    total.input += c.usage.inputTokens;
    total.output += c.usage.outputTokens;
    total.cacheRead += c.usage.cacheReadInputTokens;
    total.cacheWrite += c.usage.cacheWriteInputTokens;
    const anyTokens = c.usage.inputTokens + c.usage.outputTokens + c.usage.cacheReadInputTokens + c.usage.cacheWriteInputTokens > 0;
    if (!anyTokens) continue;
    const price = priceCall(c.model, c.usage);
    if (price.priced) total.spendNanos += price.costNanos;
    else total.unpriced++;
  }
  return total;
}

interface Answer {
  readonly status?: number;
  readonly errorType?: string;
  readonly body?: Uint8Array;
  readonly error?: string;
}

/**
 * The clients run on a thread of their own: sharing the relay's event loop, they would compete
 * with it for every iteration (and Node accepts one new connection per iteration of a busy
 * loop), which measures the test, not the relay. Kept-alive HTTP/1.1 sockets, one per call in
 * flight, as many clients would hold.
 */
const CLIENT_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { url, calls, inFlight, timeoutMs } = workerData;
const { hostname, port } = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
const results = new Array(calls.length);
let next = 0, running = 0, peak = 0;
const send = (c) => new Promise((resolve) => {
  const req = http.request({ hostname, port, method: 'POST', path: c.path, agent, headers: { authorization: 'Bearer ' + c.key, 'content-type': 'application/json' } }, (res) => {
    const chunks = [];
    res.on('data', (chunk) => chunks.push(chunk));
    res.on('end', () => resolve(res.complete
      ? { status: res.statusCode, errorType: res.headers['x-amzn-errortype'], body: new Uint8Array(Buffer.concat(chunks)) }
      : { error: 'answer cut short (status ' + res.statusCode + ')' }));
    res.on('error', (error) => resolve({ error: String(error) }));
  });
  req.on('error', (error) => resolve({ error: String(error) }));
  // A hung call fails the test instead of the runner.
  req.setTimeout(timeoutMs, () => req.destroy(new Error('no answer within ' + timeoutMs + ' ms')));
  req.end(c.body);
});
const worker = async () => {
  while (next < calls.length) {
    const index = next++;
    running++;
    peak = Math.max(peak, running);
    results[index] = await send(calls[index]);
    running--;
  }
};
Promise.all(Array.from({ length: inFlight }, worker)).then(() => {
  agent.destroy();
  parentPort.postMessage({ results, peak });
});
`;

/** Sends every call with at most `inFlight` at once; resolves with one answer per call, in order. */
function runClients(
  url: string,
  calls: ReadonlyArray<{ path: string; key: string; body: string }>,
  inFlight: number,
): Promise<{ results: Answer[]; peak: number }> {
  return new Promise((resolve, reject) => {
    const thread = new Worker(CLIENT_THREAD, { eval: true, workerData: { url, calls, inFlight, timeoutMs: 30_000 } });
    thread.once('message', (message: { results: Answer[]; peak: number }) => {
      resolve(message);
      void thread.terminate();
    });
    thread.once('error', reject);
  });
}

describe('load through the local server against dynalite', () => {
  it(`${CALLS} mixed calls, ${IN_FLIGHT} in flight over ${KEYS} keys: no errors but the fake's, spend and tokens exact per key`, async () => {
    const keys = await Promise.all(Array.from({ length: KEYS }, (_, k) => createKey(relay.url, { key_alias: `load-${k}` })));
    const calls = Array.from({ length: CALLS }, (_, i) => plan(i));
    fake.reset();

    const { results, peak } = await runClients(
      relay.url,
      calls.map((c) => ({ path: c.path, key: keys[c.key]!.key, body: c.body })),
      IN_FLIGHT,
    );
    assert.equal(peak, IN_FLIGHT, 'the load really had that many calls in flight');

    // Every answer is the one asked for: 2xx and whole, or the fake's throttle passed through.
    const unexpected = new Map<string, number[]>();
    const note = (reason: string, i: number) => unexpected.set(reason, [...(unexpected.get(reason) ?? []), i]);
    results.forEach((answer, i) => {
      const c = calls[i]!;
      if (answer.error !== undefined) return note(`${c.kind}: ${answer.error}`, i);
      const body = Buffer.from(answer.body!);
      if (answer.status !== c.status)
        return note(
          `${c.kind}: ${answer.status} ${body
            .toString()
            .replace(/"requestId":"[^"]*"/g, '')
            .slice(0, 160)}`,
          i,
        );
      try {
        if (c.status === 429) {
          assert.equal(answer.errorType, 'ThrottlingException');
          assert.equal(typeof (JSON.parse(body.toString()) as { message?: unknown }).message, 'string');
        } else {
          c.complete(body);
        }
      } catch (error) {
        note(`${c.kind}: ${(error as Error).message}`, i);
      }
    });
    const summary = Object.fromEntries(
      [...unexpected].map(([reason, at]) => [reason, `${at.length}× (#${at.slice(0, 5).join(', #')}${at.length > 5 ? ', …' : ''})`]),
    );
    assert.deepEqual(summary, {}, `${[...unexpected.values()].flat().length} of ${CALLS} answers were not the ones asked for`);
    assert.equal(calls.filter((c) => c.status === 429).length, CALLS / 10);

    // Bedrock saw each call once, validly signed: no retries, no duplicates, nothing dropped.
    assert.equal(fake.requests.length, CALLS);
    assert.ok(fake.requests.every((r) => r.signature.valid));

    // Settle: the ledger writes after the last byte; the invocations end once it is done.
    await relay.idle(60_000);
    assert.equal(logs.filter((l) => l.message === 'relay-call').length, CALLS, 'one line per call');
    assert.deepEqual(
      logs.filter((l) => l.level === 'error' || l.level === 'warn'),
      [],
      'no ledger write failed',
    );

    for (let k = 0; k < KEYS; k++) {
      const mine = calls.filter((c) => c.key === k);
      const expected = expectedFor(mine);
      assert.ok(expected.spendNanos > 0 && expected.unpriced > 0 && expected.cacheRead > 0 && expected.cacheWrite > 0, JSON.stringify(expected));
      const info = await admin(relay.url, 'GET', `/key/info?key=${keys[k]!.token}`);
      assert.equal(info.status, 200, JSON.stringify(info.json));
      const shown = info.json.info as { spend_nanos: number; usage_totals: Record<string, number> };
      assert.deepEqual(
        {
          spendNanos: shown.spend_nanos,
          requests: shown.usage_totals.requests,
          unpriced: shown.usage_totals.unpriced_requests,
          input: shown.usage_totals.input_tokens,
          output: shown.usage_totals.output_tokens,
          cacheRead: shown.usage_totals.cache_read_input_tokens,
          cacheWrite: shown.usage_totals.cache_write_input_tokens,
          lifetimeSpendNanos: shown.usage_totals.spend_nanos,
        },
        { ...expected, lifetimeSpendNanos: expected.spendNanos },
        `key load-${k}: recorded totals equal the sum of its calls`,
      );

      // The per-day, per-model items add up to the same, and count the throttled calls as failed requests.
      const usage = await admin(relay.url, 'GET', `/key/usage?key=${keys[k]!.token}`);
      assert.equal(usage.status, 200, JSON.stringify(usage.json));
      const totals = usage.json.totals as Record<string, number>;
      assert.equal(totals.requests, expected.requests);
      assert.equal(totals.error_requests, mine.filter((c) => c.status === 429).length);
      assert.equal(totals.spend_nanos, expected.spendNanos);
      assert.equal(totals.input_tokens, expected.input);
      assert.equal(totals.output_tokens, expected.output);
    }
  });
});
