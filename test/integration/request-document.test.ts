/**
 * The relay decides on the parsed request document, never on bytes (issue 11, item 3), through
 * real HTTP: the relay behind the Function URL emulator, the fake Bedrock, dynalite and keys.
 *
 *  - A streamed Chat Completion that spells `stream` with a JSON escape still gets
 *    include_usage and is metered, on every Chat Completions route.
 *  - A body naming `model` (or any member) twice is refused with 400 in the client's dialect
 *    before anything reaches Bedrock — the attack `{"model":"OTHER","model":"ALLOWED"}` against
 *    a model-scoped key — and the SDKs raise their typed bad-request errors.
 *  - A JSON body behind a UTF-8 BOM is refused with 400; a binary body that happens to start
 *    with those bytes still passes byte for byte.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConverseCommand, StartAsyncInvokeCommand } from '@aws-sdk/client-bedrock-runtime';
import type { HttpRequest } from '@smithy/protocol-http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { priceCall } from '../../lambda/pricing/index.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { rawRequest, runtimeClient } from '../support/clients.js';
import { expectedOpenAIChatUsage, parseSse, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { call, createKey, keyItem, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';

const GPT = 'openai.gpt-oss-120b-1:0';
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'anthropic.claude-3-sonnet-20240229-v1:0';
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const CHAT_ROUTES = [
  '/bedrock/openai/v1/chat/completions',
  '/bedrock/v1/chat/completions',
  '/bedrock-mantle/v1/chat/completions',
  '/bedrock-mantle/openai/v1/chat/completions',
];

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;

before(async () => {
  // One fake answers bedrock-runtime and bedrock-mantle alike.
  fake = await startFakeBedrock({ signingService: ['bedrock', 'bedrock-mantle'] });
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

/** A raw call with a byte body (the harness's call() takes text). */
function callBytes(key: string, path: string, body: Buffer, contentType = 'application/json') {
  return rawRequest(relay.url, 'POST', path, { authorization: `Bearer ${key}`, 'content-type': contentType }, body);
}

/** Replaces the JSON body an SDK would send with raw bytes (no SDK writes a name twice). */
function rawBodyFetch(body: string | Buffer): typeof fetch {
  return (input, init) => fetch(input, { ...init, body });
}

describe('an escaped "stream" is read as the member it is', () => {
  for (const [i, path] of CHAT_ROUTES.entries()) {
    it(`a streamed chat completion spelled "str\\u0065am" is asked for usage and metered: ${path}`, async () => {
      const alias = `escaped-stream-${i}`;
      const { key, token } = await createKey(relay.url, { key_alias: alias });
      const sent = `{"model":"${GPT}","str\\u0065am":true,"messages":[{"role":"user","content":"escaped ${i}"}]}`;
      const before = fake.requests.length;
      const res = await call(relay.url, key, path, sent);
      assert.equal(res.status, 200, res.body.toString());
      assert.match(String(res.headers['content-type']), /text\/event-stream/);

      // Bedrock got the spliced body: the client's bytes, plus the one member that asks for usage.
      const upstream = fake.requests.slice(before);
      assert.equal(upstream.length, 1);
      const upstreamBody = upstream[0]!.body.toString();
      assert.equal(upstreamBody, `{"stream_options":{"include_usage":true},${sent.slice(1)}`);

      // The client sees the stream it asked for: no usage-only chunk, no `"usage": null`.
      const events = parseSse(res.body.toString()).map((e) => e.data);
      assert.equal(events.at(-1), '[DONE]');
      assert.ok(events.length > 2);
      for (const data of events.slice(0, -1)) {
        const chunk = JSON.parse(data) as Record<string, unknown>;
        assert.ok(!('usage' in chunk), data);
        assert.ok(Array.isArray(chunk.choices) && chunk.choices.length === 1, data);
      }

      // Metered: the key's spend and tokens are what Bedrock reported for that call.
      await settled(relay, alias, 1);
      const usage = expectedOpenAIChatUsage(upstreamBody);
      const cached = usage.prompt_tokens_details.cached_tokens;
      const expected = priceCall(GPT, {
        inputTokens: usage.prompt_tokens - cached,
        outputTokens: usage.completion_tokens,
        cacheReadInputTokens: cached,
        cacheWriteInputTokens: 0,
      });
      const item = await keyItem(store, token);
      assert.ok((item.spend_nanos as number) > 0, `spend ${String(item.spend_nanos)}`);
      assert.equal(item.spend_nanos, expected.costNanos);
      assert.equal(item.total_output_tokens, usage.completion_tokens);
    });
  }

  it('an escaped stream_options / include_usage: false is set to true in place (OpenAI SDK streaming through it)', async () => {
    const alias = 'escaped-options';
    const { key, token } = await createKey(relay.url, { key_alias: alias });
    const sent = `{"model":"${GPT}","stream":true,"stream_opti\\u006fns":{"include_us\\u0061ge":false},"messages":[{"role":"user","content":"hi"}]}`;
    const before = fake.requests.length;
    const openai = new OpenAI({ baseURL: `${relay.url}/bedrock/openai/v1`, apiKey: key, maxRetries: 0, fetch: rawBodyFetch(sent) });
    const stream = await openai.chat.completions.create({ model: GPT, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    for await (const chunk of stream) {
      assert.equal(chunk.usage, undefined, 'the usage the relay asked for is not shown to the client');
      text += chunk.choices[0]?.delta.content ?? '';
    }
    assert.ok(text.length > 0);
    assert.equal(fake.requests.slice(before)[0]!.body.toString(), sent.replace('"include_us\\u0061ge":false', '"include_us\\u0061ge":true'));
    await settled(relay, alias, 1);
    assert.ok(((await keyItem(store, token)).spend_nanos as number) > 0);
  });
});

describe('a body that names a member twice is refused before policy and before Bedrock', () => {
  let key: string;
  before(async () => {
    ({ key } = await createKey(relay.url, { key_alias: 'haiku-only', models: [HAIKU] }));
  });

  it('bedrock dialect: StartAsyncInvoke {"modelId":SONNET,"modelId":HAIKU} → 400 ValidationException, typed in the AWS SDK', async () => {
    const duplicated = JSON.stringify({ modelId: SONNET, modelInput: {}, outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://b/' } } }).replace(
      /}$/,
      `,"modelId":"${HAIKU}"}`,
    );
    // The control: one modelId each way, so this test fails if the relay stops reading the body.
    const single = (model: string) => JSON.stringify({ modelId: model, modelInput: {}, outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://b/' } } });
    assert.equal((await call(relay.url, key, '/bedrock/async-invoke', single(SONNET))).status, 403);

    const before = fake.requests.length;
    const res = await call(relay.url, key, '/bedrock/async-invoke', duplicated);
    assert.equal(res.status, 400, res.body.toString());
    assert.equal(res.headers['x-amzn-errortype'], 'ValidationException');
    assert.match((JSON.parse(res.body.toString()) as { message: string }).message, /"modelId" more than once/);

    const client = runtimeClient(relay.url, key, undefined, 1);
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as HttpRequest;
        request.body = duplicated;
        request.headers['content-length'] = String(Buffer.byteLength(duplicated));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'duplicateModelId', priority: 'low' },
    );
    try {
      await assert.rejects(
        client.send(new StartAsyncInvokeCommand({ modelId: HAIKU, modelInput: {}, outputDataConfig: { s3OutputDataConfig: { s3Uri: 's3://b/' } } })),
        (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(error.name, 'ValidationException');
          assert.equal(error.$metadata?.httpStatusCode, 400);
          return true;
        },
      );
    } finally {
      client.destroy();
    }
    assert.equal(fake.requests.length, before, 'nothing reached Bedrock');
  });

  it('bedrock dialect: a nested duplicate (guardrailConfig.guardrailIdentifier) is refused too', async () => {
    const body = `{"messages":[{"role":"user","content":[{"text":"x"}]}],"guardrailConfig":{"guardrailIdentifier":"allowed","guardrailVersion":"1","guardrailIdentifier":"other"}}`;
    const before = fake.requests.length;
    const client = runtimeClient(relay.url, key, undefined, 1);
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as HttpRequest;
        request.body = body;
        request.headers['content-length'] = String(Buffer.byteLength(body));
        return next(args);
      },
      { step: 'finalizeRequest', name: 'duplicateGuardrail', priority: 'low' },
    );
    try {
      await assert.rejects(client.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: 'user', content: [{ text: 'x' }] }] })), (error: Error) => {
        assert.equal(error.name, 'ValidationException');
        assert.match(error.message, /"guardrailIdentifier" more than once/);
        return true;
      });
    } finally {
      client.destroy();
    }
    assert.equal(fake.requests.length, before, 'nothing reached Bedrock');
  });

  it('anthropic dialect: {"model":SONNET,"model":HAIKU} → 400 invalid_request_error, Anthropic.BadRequestError', async () => {
    const duplicated = `{"model":"${SONNET}","max_tokens":5,"messages":[{"role":"user","content":"x"}],"model":"${HAIKU}"}`;
    const escaped = `{"model":"${SONNET}","max_tokens":5,"messages":[{"role":"user","content":"x"}],"mod\\u0065l":"${HAIKU}"}`;
    const before = fake.requests.length;
    for (const path of ['/bedrock/anthropic/v1/messages', '/bedrock-mantle/anthropic/v1/messages']) {
      for (const body of [duplicated, escaped]) {
        const res = await call(relay.url, key, path, body);
        assert.equal(res.status, 400, `${path} ${res.body.toString()}`);
        const error = JSON.parse(res.body.toString()) as { type: string; error: { type: string; message: string } };
        assert.equal(error.type, 'error');
        assert.equal(error.error.type, 'invalid_request_error');
        assert.match(error.error.message, /"model" more than once/);
      }
    }
    const anthropic = new Anthropic({ baseURL: `${relay.url}/bedrock/anthropic`, authToken: key, maxRetries: 0, fetch: rawBodyFetch(duplicated) });
    await assert.rejects(anthropic.messages.create({ model: HAIKU, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }), Anthropic.BadRequestError);
    assert.equal(fake.requests.length, before, 'nothing reached Bedrock');
    // The control: the same SDK call without the duplicate goes through.
    const ok = new Anthropic({ baseURL: `${relay.url}/bedrock/anthropic`, authToken: key, maxRetries: 0 });
    await ok.messages.create({ model: HAIKU, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    assert.equal(fake.requests.length, before + 1);
  });

  it('openai dialect: {"model":GPT,"model":HAIKU} → 400 invalid_request_error, OpenAI.BadRequestError, on every Chat Completions route', async () => {
    const duplicated = `{"model":"${GPT}","stream":true,"messages":[{"role":"user","content":"x"}],"model":"${HAIKU}"}`;
    const before = fake.requests.length;
    for (const path of [...CHAT_ROUTES, '/bedrock/openai/v1/responses', '/bedrock-mantle/v1/responses']) {
      const res = await call(relay.url, key, path, duplicated);
      assert.equal(res.status, 400, `${path} ${res.body.toString()}`);
      const error = (JSON.parse(res.body.toString()) as { error: { type: string; code: string; message: string } }).error;
      assert.equal(error.type, 'invalid_request_error');
      assert.equal(error.code, 'invalid_request');
      assert.match(error.message, /"model" more than once/);
    }
    const openai = new OpenAI({ baseURL: `${relay.url}/bedrock/openai/v1`, apiKey: key, maxRetries: 0, fetch: rawBodyFetch(duplicated) });
    await assert.rejects(openai.chat.completions.create({ model: HAIKU, messages: [{ role: 'user', content: 'x' }] }), OpenAI.BadRequestError);
    // Duplicated `stream` (the other reading would stream unmetered) is refused the same way.
    const res = await call(relay.url, key, '/bedrock/openai/v1/chat/completions', `{"model":"${HAIKU}","stream":false,"messages":[],"stream":true}`);
    assert.equal(res.status, 400);
    assert.equal(fake.requests.length, before, 'nothing reached Bedrock');
  });

  it('the master key gets the same answer: the refusal is about the body, not the key', async () => {
    const { TEST_MASTER_KEY } = await import('../support/relay-harness.js');
    const before = fake.requests.length;
    const res = await call(relay.url, TEST_MASTER_KEY, '/bedrock/model/m/invoke', '{"max_tokens":1,"messages":[],"max_tokens":100000}');
    assert.equal(res.status, 400);
    assert.equal(res.headers['x-amzn-errortype'], 'ValidationException');
    assert.equal(fake.requests.length, before);
  });
});

describe('a UTF-8 byte order mark', () => {
  it("before a JSON body is refused with 400 in the client's dialect, never relayed unmetered", async () => {
    const { key } = await createKey(relay.url, { key_alias: 'bom' });
    const before = fake.requests.length;
    const stream = Buffer.concat([BOM, Buffer.from(`{"model":"${GPT}","stream":true,"messages":[{"role":"user","content":"x"}]}`)]);
    for (const path of CHAT_ROUTES) {
      const res = await callBytes(key, path, stream);
      assert.equal(res.status, 400, path);
      assert.match((JSON.parse(res.body.toString()) as { error: { message: string } }).error.message, /byte order mark/);
    }
    const anthropic = await callBytes(
      key,
      '/bedrock/anthropic/v1/messages',
      Buffer.concat([BOM, Buffer.from(`{"model":"${HAIKU}","max_tokens":5,"stream":true,"messages":[]}`)]),
    );
    assert.equal(anthropic.status, 400);
    assert.equal((JSON.parse(anthropic.body.toString()) as { error: { type: string } }).error.type, 'invalid_request_error');
    const converse = await callBytes(
      key,
      `/bedrock/model/${HAIKU}/converse-stream`,
      Buffer.concat([BOM, Buffer.from('{"messages":[{"role":"user","content":[{"text":"x"}]}]}')]),
    );
    assert.equal(converse.status, 400);
    assert.equal(converse.headers['x-amzn-errortype'], 'ValidationException');
    assert.equal(fake.requests.length, before, 'nothing reached Bedrock');
  });

  it("at the start of a body that is not JSON (InvokeModel's binary payload) is not the relay's business: relayed byte for byte", async () => {
    const { key } = await createKey(relay.url, { key_alias: 'bom-binary' });
    const binary = Buffer.concat([BOM, Buffer.from([0x00, 0xff, 0x10, 0x7b, 0x22])]);
    const before = fake.requests.length;
    await callBytes(key, `/bedrock/model/${HAIKU}/invoke`, binary, 'application/octet-stream');
    const upstream = fake.requests.slice(before);
    assert.equal(upstream.length, 1);
    assert.ok(upstream[0]!.body.equals(binary));
  });
});
