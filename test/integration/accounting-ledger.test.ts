/**
 * The ledger end to end: calls through the relay (the Lambda handler behind the Function URL
 * emulator) against the fake Bedrock, usage and spend written to a real dynalite, checked to the
 * token and the nano-dollar against the fake's deterministic usage and the price table.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { main } from '../../lambda/cli/main.js';
import { prepareRequestBody } from '../../lambda/metering/index.js';
import type { TokenUsage } from '../../lambda/pipeline.js';
import { priceCall } from '../../lambda/pricing/index.js';
import { ROUTES } from '../../lambda/routes/table.js';
import { startEmbeddedDynamo, writeEndpointFile, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { readFileSync } from 'node:fs';
import { runtimeClient } from '../support/clients.js';
import { anthropicTokenUsage, converseTokenUsage, invocationTokenUsage } from '../support/expected-usage.js';
import { recipeText, runRecipe } from '../support/recipes.js';
import { expectedAnthropicUsage, expectedConverseUsage, expectedOpenAIChatUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';
import { admin, call, createKey, keyItem, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';
import { manualClock } from './keys-harness.js';

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;
const clock = manualClock(Date.parse('2031-03-04T10:00:05.000Z'));

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store, clock });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

interface Planned {
  readonly kind: string;
  readonly model: string;
  readonly path: string;
  readonly body: string;
  /** What Bedrock reports (in the meter's convention), from the fake's rules. */
  readonly usage: TokenUsage;
  readonly status: number;
}

const zero: TokenUsage = { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 };
const route = (operation: string) => ROUTES.find((r) => r.operation === operation)!;
const modelPath = (model: string, op: string) => `/bedrock/model/${encodeURIComponent(model)}/${op}`;

/** One call of each family, its body varied by `i` (sizes, limits and cache markers differ). */
function plan(i: number): Planned {
  const text = `request ${i} ${'x'.repeat(i % 37)}`;
  const maxTokens = 10 + (i % 41);
  const cached = i % 3 === 0;
  switch (i % 8) {
    case 0: {
      const body = JSON.stringify({
        messages: [{ role: 'user', content: [{ text }, ...(cached ? [{ cachePoint: { type: 'default' } }] : [])] }],
        inferenceConfig: { maxTokens },
      });
      const model = 'anthropic.claude-3-5-haiku-20241022-v1:0';
      return {
        kind: 'Converse',
        model,
        path: modelPath(model, 'converse'),
        body,
        status: 200,
        usage: converseTokenUsage(body),
      };
    }
    case 1: {
      const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text }] }], inferenceConfig: { maxTokens } });
      const model = 'us.amazon.nova-micro-v1:0';
      return {
        kind: 'ConverseStream',
        model,
        path: modelPath(model, 'converse-stream'),
        body,
        status: 200,
        usage: converseTokenUsage(body),
      };
    }
    case 2:
    case 3: {
      const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });
      const model = 'anthropic.claude-3-haiku-20240307-v1:0';
      const streamed = i % 8 === 3;
      return {
        kind: streamed ? 'InvokeModelWithResponseStream' : 'InvokeModel',
        model,
        path: modelPath(model, streamed ? 'invoke-with-response-stream' : 'invoke'),
        body,
        status: 200,
        usage: invocationTokenUsage(body),
      };
    }
    case 4: {
      const model = 'us.anthropic.claude-opus-4-7';
      const content = cached ? [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] : text;
      const body = JSON.stringify({ model, max_tokens: maxTokens, stream: true, messages: [{ role: 'user', content }] });
      return {
        kind: 'AnthropicMessages (stream)',
        model,
        path: '/bedrock/anthropic/v1/messages',
        body,
        status: 200,
        usage: anthropicTokenUsage(body),
      };
    }
    case 5: {
      const model = 'openai.gpt-oss-120b-1:0';
      // Streamed without include_usage: the relay asks Bedrock for usage itself, so Bedrock sees (and counts) that body.
      const body = JSON.stringify({ model, stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: text }] });
      const upstream = prepareRequestBody(route('OpenAIChatCompletions'), Buffer.from(body)).body;
      const o = expectedOpenAIChatUsage(upstream);
      const cachedTokens = o.prompt_tokens_details.cached_tokens;
      return {
        kind: 'OpenAI chat (stream, no include_usage)',
        model,
        path: '/bedrock/openai/v1/chat/completions',
        body,
        status: 200,
        usage: { inputTokens: o.prompt_tokens - cachedTokens, outputTokens: o.completion_tokens, cacheReadInputTokens: cachedTokens, cacheWriteInputTokens: 0 },
      };
    }
    case 6: {
      const model = 'acme.unlisted-model-v1:0';
      const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text }] }], inferenceConfig: { maxTokens } });
      return {
        kind: 'Converse (unpriced model)',
        model,
        path: modelPath(model, 'converse'),
        body,
        status: 200,
        usage: converseTokenUsage(body),
      };
    }
    default: {
      const model = 'fake.throttle';
      const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text }] }] });
      return { kind: 'Converse (Bedrock throttles)', model, path: modelPath(model, 'converse'), body, status: 429, usage: zero };
    }
  }
}

function sum(calls: readonly Planned[]) {
  const total = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: 0, unpriced: 0, requests: calls.length, errors: 0 };
  for (const c of calls) {
    total.input += c.usage.inputTokens;
    total.output += c.usage.outputTokens;
    total.cacheRead += c.usage.cacheReadInputTokens;
    total.cacheWrite += c.usage.cacheWriteInputTokens;
    const price = priceCall(c.model, c.usage);
    total.cost += price.costNanos;
    const anyTokens = c.usage.inputTokens + c.usage.outputTokens + c.usage.cacheReadInputTokens + c.usage.cacheWriteInputTokens > 0;
    if (anyTokens && !price.priced) total.unpriced++;
    if (c.status >= 400) total.errors++;
  }
  return total;
}

describe('ledger: exact usage and spend per key', () => {
  it('200 concurrent mixed streaming and non-streaming calls add up exactly, on the key and per day and model', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'ledger-200' });
    const calls = Array.from({ length: 200 }, (_, i) => plan(i));
    const answers = await Promise.all(calls.map((c) => call(relay.url, key, c.path, c.body)));
    answers.forEach((answer, i) => assert.equal(answer.status, calls[i]!.status, `${calls[i]!.kind}: ${answer.body.toString().slice(0, 200)}`));
    await settled(relay, 'ledger-200', 200);

    // Bodies reached Bedrock unchanged, except the one documented rewrite (include_usage).
    const sentBodies = new Set(calls.filter((c) => !c.kind.startsWith('OpenAI')).map((c) => c.body));
    assert.equal(fake.requests.filter((r) => sentBodies.has(r.body.toString())).length, calls.filter((c) => !c.kind.startsWith('OpenAI')).length);

    const expected = sum(calls);
    assert.deepEqual(
      relay.logs.filter((l) => l.level === 'error'),
      [],
      'no ledger write failed',
    );
    assert.ok(expected.cost > 0 && expected.unpriced === 25 && expected.errors === 25, JSON.stringify(expected));
    const item = await keyItem(store, token);
    assert.equal(item.spend_nanos, expected.cost, 'spend equals the sum of the calls’ prices, to the nano-dollar');
    assert.equal(item.total_spend_nanos, expected.cost);
    assert.equal(item.total_input_tokens, expected.input);
    assert.equal(item.total_output_tokens, expected.output);
    assert.equal(item.total_cache_read_tokens, expected.cacheRead);
    assert.equal(item.total_cache_write_tokens, expected.cacheWrite);
    assert.equal(item.total_requests, 200);
    assert.equal(item.total_unpriced_requests, expected.unpriced);

    // Per day and model, through GET /key/usage.
    const day = '2031-03-04';
    const usage = await admin(relay.url, 'GET', `/key/usage?key=${token}&start=${day}&end=${day}`);
    assert.equal(usage.status, 200, JSON.stringify(usage.json));
    const totals = usage.json.totals as Record<string, number>;
    assert.equal(totals.spend_nanos, expected.cost);
    assert.equal(totals.requests, 200);
    assert.equal(totals.error_requests, expected.errors);
    assert.equal(totals.input_tokens, expected.input);
    assert.equal(totals.output_tokens, expected.output);
    assert.equal(totals.cache_read_input_tokens, expected.cacheRead);
    assert.equal(totals.cache_write_input_tokens, expected.cacheWrite);
    const rows = usage.json.daily as Array<Record<string, unknown>>;
    const models = [...new Set(calls.map((c) => c.model))].sort();
    assert.deepEqual(
      rows.map((row) => row.model),
      models,
    );
    for (const row of rows) {
      const mine = sum(calls.filter((c) => c.model === row.model));
      assert.equal(row.date, day);
      assert.equal(row.requests, mine.requests, String(row.model));
      assert.equal(row.spend_nanos, mine.cost, String(row.model));
      assert.equal(row.input_tokens, mine.input, String(row.model));
      assert.equal(row.output_tokens, mine.output, String(row.model));
      assert.equal(row.unpriced_requests, mine.unpriced, String(row.model));
    }
    const unpriced = rows.find((row) => row.model === 'acme.unlisted-model-v1:0')!;
    assert.equal(unpriced.spend_nanos, 0, 'an unknown model costs nothing…');
    assert.ok((unpriced.input_tokens as number) > 0, '…but its tokens are counted');

    // /key/info shows the spend and the lifetime totals.
    const info = (await admin(relay.url, 'GET', `/key/info?key=${token}`)).json.info as Record<string, unknown>;
    assert.equal(info.spend_nanos, expected.cost);
    assert.equal(info.spend, expected.cost / 1e9);
    assert.equal((info.usage_totals as Record<string, number>).requests, 200);
  });

  it('every call emits one EMF record and one log line, with the alias and never the key', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'telemetry-1' });
    relay.logs.length = 0;
    relay.metrics.length = 0;
    const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'metrics please' }] }], inferenceConfig: { maxTokens: 33 } });
    const ok = await call(relay.url, key, modelPath('anthropic.claude-3-haiku-20240307-v1:0', 'converse'), body);
    assert.equal(ok.status, 200);
    await settled(relay, 'telemetry-1', 1);
    const refused = await call(relay.url, 'sk-not-a-key', modelPath('anthropic.claude-3-haiku-20240307-v1:0', 'converse'), body);
    assert.equal(refused.status, 401);
    await settled(relay, 'anonymous', 1);

    const lines = relay.logs.filter((line) => line.message === 'relay-call');
    assert.equal(lines.length, 2);
    const [first, second] = lines as [(typeof lines)[number], (typeof lines)[number]];
    const u = expectedConverseUsage(body);
    const cost = priceCall('anthropic.claude-3-haiku-20240307-v1:0', {
      inputTokens: u.inputTokens,
      outputTokens: u.outputTokens,
      cacheReadInputTokens: 0,
      cacheWriteInputTokens: 0,
    });
    assert.equal(first.fields.keyAlias, 'telemetry-1');
    assert.equal(first.fields.operation, 'Converse');
    assert.equal(first.fields.model, 'anthropic.claude-3-haiku-20240307-v1:0');
    assert.equal(first.fields.status, 200);
    assert.equal(first.fields.inputTokens, u.inputTokens);
    assert.equal(first.fields.outputTokens, 33);
    assert.equal(first.fields.costUsd, String(cost.costNanos / 1e9));
    assert.equal(typeof first.fields.requestId, 'string');
    assert.equal(typeof first.fields.upstreamLatencyMs, 'number');
    assert.equal(typeof first.fields.timeToFirstByteMs, 'number');
    assert.equal(second.fields.status, 401);
    assert.equal(second.fields.keyAlias, 'anonymous');

    assert.equal(relay.metrics.length, 2);
    const emf = JSON.parse(relay.metrics[0]!) as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
    };
    const directive = emf._aws.CloudWatchMetrics[0]!;
    assert.equal(directive.Namespace, 'BedrockRelay');
    // Per-key dimensions are opt-in (RELAY_METRICS_PER_KEY): by default no key alias reaches CloudWatch metrics.
    assert.deepEqual(directive.Dimensions, [['service'], ['service', 'model']]);
    assert.deepEqual(directive.Metrics.map((m) => m.Name).sort(), [
      'ClientErrors',
      'CostUSD',
      'Errors',
      'InputTokens',
      'Latency',
      'OutputTokens',
      'RelayErrors',
      'Requests',
      'Throttles',
      'TimeToFirstByte',
      'UpstreamErrors',
      'UpstreamThrottles',
    ]);
    assert.equal(emf.keyAlias, undefined);
    assert.equal(emf.model, 'anthropic.claude-3-haiku-20240307', 'the price-table key');
    assert.equal(emf.Requests, 1);
    assert.equal(emf.Errors, 0);
    assert.equal(emf.InputTokens, u.inputTokens);
    assert.equal(emf.OutputTokens, 33);
    assert.equal(emf.CostUSD, cost.costNanos / 1e9);
    const refusedEmf = JSON.parse(relay.metrics[1]!) as Record<string, unknown>;
    assert.equal(refusedEmf.Errors, 1);
    assert.equal(refusedEmf.ClientErrors, 1, 'an unauthenticated 401 is a client error, not one that pages');
    assert.equal(refusedEmf.RelayErrors, 0);

    const everything = JSON.stringify(relay.logs) + relay.metrics.join('\n');
    assert.ok(!everything.includes(key), 'the key never appears in logs or metrics');
    assert.ok(!everything.includes(TEST_MASTER_KEY));
    assert.ok(!everything.includes(token), 'nor its token');
  });

  it('a client that disconnects mid-stream: the usage reported before it left is recorded, and the call counted', async () => {
    const slowFake = await startFakeBedrock({ frameDelayMs: 150 });
    const slow = await startAccountingRelay({ fake: slowFake, store, clock });
    try {
      const { key, token } = await createKey(slow.url, { key_alias: 'disconnect-1' });
      const model = 'us.anthropic.claude-opus-4-7';
      const body = JSON.stringify({ model, max_tokens: 300, stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] });
      await new Promise<void>((resolve, reject) => {
        const req = http.request(`${slow.url}/bedrock/anthropic/v1/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        });
        req.on('response', (res) => {
          let seen = '';
          res.on('data', (chunk: Buffer) => {
            seen += chunk.toString();
            // message_start carries the input (and cache) tokens; leave right after it.
            if (seen.includes('message_start')) {
              req.destroy();
              resolve();
            }
          });
        });
        req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
        req.end(body);
      });
      assert.equal(await slowFake.requests[0]!.finished, 'client-aborted');
      // The invocation goes on after the client left, and ends once the call is settled.
      await slow.relay.idle();
      const item = await keyItem(store, token);
      assert.equal(item.total_requests, 1);
      const a = expectedAnthropicUsage(body);
      assert.equal(item.total_input_tokens, a.input_tokens, 'input tokens from message_start');
      assert.equal(item.total_output_tokens, 1, 'message_start reports output_tokens 1; message_delta never came');
      const price = priceCall(model, { inputTokens: a.input_tokens, outputTokens: 1, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 });
      assert.equal(item.spend_nanos, price.costNanos);
      const lines = slow.logs.filter((l) => l.message === 'relay-call');
      assert.equal(lines.length, 1);
      assert.equal(lines[0]!.fields.clientAborted, true);
    } finally {
      await slow.close();
      await slowFake.close();
    }
  });

  it('keys without limits cost no DynamoDB call on the request path beyond the two ledger writes', async () => {
    const plain = await createKey(relay.url, { key_alias: 'no-limits' });
    const limited = await createKey(relay.url, { key_alias: 'with-limits', rpm_limit: 1000, max_parallel_requests: 10, max_budget: 100 });
    const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'count my calls' }] }] });
    const path = modelPath('anthropic.claude-3-haiku-20240307-v1:0', 'converse');
    // The first call of a key loads it into the key cache (one GetItem); count the ones after.
    await call(relay.url, plain.key, path, body);
    await call(relay.url, limited.key, path, body);

    await settled(relay, 'no-limits', 1);
    await settled(relay, 'with-limits', 1);
    const measure = async (key: string, alias: string) => {
      const before = relay.dynamo.calls.length;
      const answer = await call(relay.url, key, path, body);
      assert.equal(answer.status, 200);
      await settled(relay, alias, 2);
      return relay.dynamo.calls.slice(before);
    };
    const plainCalls = await measure(plain.key, 'no-limits');
    assert.deepEqual(
      plainCalls.map((c) => `${c.command} ${String(c.key?.sk).replace(/#.*/, '#…')}`).sort(),
      ['UpdateItem KEY', 'UpdateItem USAGE#…'],
      'exactly the ledger: one ADD on the key, one on the usage item',
    );
    const limitedCalls = await measure(limited.key, 'with-limits');
    assert.deepEqual(
      limitedCalls.map((c) => `${c.command} ${String(c.key?.sk).replace(/#.*/, '#…')}`).sort(),
      ['UpdateItem KEY', 'UpdateItem KEY', 'UpdateItem RL#…', 'UpdateItem RL#…', 'UpdateItem RL#…', 'UpdateItem USAGE#…'],
      'the budget reservation (one conditional write, no read), rpm window, lease acquire and release, and the ledger',
    );
  });

  it('master-key calls are recorded as usage of the pseudo-key MASTER', async () => {
    const runtime = runtimeClient(relay.url, TEST_MASTER_KEY, undefined, 1);
    try {
      const before = await admin(relay.url, 'GET', '/key/usage?key=master&start=2031-03-04&end=2031-03-04');
      const requestsBefore = (before.json.totals as Record<string, number>).requests;
      const masterCalls = relay.logs.filter((l) => l.message === 'relay-call' && l.fields.keyAlias === 'master').length;
      await runtime.send(new ConverseCommand({ modelId: 'amazon.nova-micro-v1:0', messages: [{ role: 'user', content: [{ text: 'hi' }] }] }));
      await settled(relay, 'master', masterCalls + 1);
      const after = await admin(relay.url, 'GET', '/key/usage?key=master&start=2031-03-04&end=2031-03-04');
      assert.equal(after.status, 200);
      assert.equal(after.json.key, 'master');
      assert.equal((after.json.totals as Record<string, number>).requests, requestsBefore + 1);
      assert.ok((after.json.daily as Array<Record<string, unknown>>).some((row) => row.model === 'amazon.nova-micro-v1:0'));
    } finally {
      runtime.destroy();
    }
  });

  it('`relay usage` prints the same report from the table', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'cli-usage' });
    const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'for the cli' }] }] });
    await call(relay.url, key, modelPath('anthropic.claude-3-haiku-20240307-v1:0', 'converse'), body);
    await settled(relay, 'cli-usage', 1);
    const dataDir = await mkdtemp(join(tmpdir(), 'relay-usage-cli-'));
    try {
      await writeEndpointFile(dataDir, store);
      let out = '';
      let err = '';
      const io = { stdout: (t: string) => void (out += t), stderr: (t: string) => void (err += t), env: {}, cwd: dataDir };
      const code = await main(['usage', '--alias', 'cli-usage', '--start', '2031-03-01', '--end', '2031-03-31', '--data-dir', dataDir], io);
      assert.equal(code, 0, err);
      const report = JSON.parse(out) as Record<string, unknown>;
      const viaApi = await admin(relay.url, 'GET', `/key/usage?key=${token}&start=2031-03-01&end=2031-03-31`);
      assert.deepEqual(report, viaApi.json);
      assert.equal((report.totals as Record<string, number>).requests, 1);

      const bad = await main(['usage', '--key', key, '--start', '2031-13-01', '--data-dir', dataDir], io);
      assert.equal(bad, 1);
      assert.match(err, /YYYY-MM-DD/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('the documented usage recipe (docs/examples/usage-report.sh) runs as written', async () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    assert.ok(doc.includes(recipeText('usage-report.sh')), 'README.md shows the recipe verbatim');
    const { key } = await createKey(relay.url, { key_alias: 'team-a', max_budget: 10, budget_duration: '30d', rpm_limit: 60 });
    const b = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'for the docs' }] }] });
    await call(relay.url, key, modelPath('anthropic.claude-3-haiku-20240307-v1:0', 'converse'), b);
    await settled(relay, 'team-a', 1);
    const { stdout } = await runRecipe('usage-report.sh', { RELAY_URL: relay.url, RELAY_MASTER_KEY: TEST_MASTER_KEY, KEY: key });
    const [usage, info] = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, any>);
    assert.equal(usage!.key_alias, 'team-a');
    assert.equal(usage!.end, '2031-03-04', "today on the relay's clock");
    assert.equal(usage!.totals.requests, 1);
    assert.equal(usage!.daily[0].model, 'anthropic.claude-3-haiku-20240307-v1:0');
    assert.equal(info!.info.max_budget, 10);
    assert.equal(info!.info.current_window.requests, 1);
    assert.ok(info!.info.spend > 0);
  });
});
