/**
 * Virtual keys end to end: keys are issued through the relay's admin API (LiteLLM's shapes),
 * stored in a real dynalite, and enforced on /bedrock calls made by the official SDKs, which
 * must see typed errors. Nothing refused may reach the fake Bedrock.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ConverseCommand, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { rawRequest, runtimeClient } from '../support/clients.js';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';
import { admin as adminRequest } from './accounting-harness.js';
import { manualClock, type ManualClock } from './keys-harness.js';

let fake: FakeBedrock;
let dynamo: EmbeddedDynamo;
let relay: RelayUnderTest;
let clock: ManualClock;

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const messages = [{ role: 'user' as const, content: [{ text: 'Hello' }] }];

before(async () => {
  fake = await startFakeBedrock();
  dynamo = await startEmbeddedDynamo();
  clock = manualClock(Date.now());
  relay = await startRelay({
    fake,
    env: { RELAY_KEYS_TABLE: dynamo.tableName, RELAY_KEY_CACHE_TTL_SECONDS: '0' },
    overrides: { dynamo: dynamo.clients, clock },
  });
});
after(async () => {
  await relay.close();
  await dynamo.stop().catch(() => undefined);
  await fake.close();
});
beforeEach(() => fake.reset());

/** The admin API with the master key (accounting-harness's `admin`, on this file's relay). */
const admin = (path: string, body?: unknown, method = 'POST') => adminRequest(relay.url, method, path, body);

async function newKey(fields: Record<string, unknown>): Promise<string> {
  const created = await admin('/key/generate', fields);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  return created.json.key as string;
}

function rejectsWith(promise: Promise<unknown>, name: string, status: number) {
  return assert.rejects(promise, (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(error.name, name);
    assert.equal(error.$metadata?.httpStatusCode, status);
    return true;
  });
}

describe('model allow-lists, as the AWS SDK sees them', () => {
  let key: string;
  before(async () => {
    key = await newKey({ key_alias: 'haiku-only', models: [HAIKU] });
  });

  it('allows the model, its cross-region profiles and their ARNs', async () => {
    const client = runtimeClient(relay.url, key, undefined, 1);
    for (const modelId of [
      HAIKU,
      `us.${HAIKU}`,
      `eu.${HAIKU}`,
      `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}`,
      `arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.${HAIKU}`,
    ]) {
      const answer = await client.send(new ConverseCommand({ modelId, messages }));
      assert.ok(answer.output, modelId);
    }
    client.destroy();
    assert.equal(fake.requests.length, 5);
  });

  it('refuses any other model, whatever the spelling, with AccessDeniedException', async () => {
    const client = runtimeClient(relay.url, key, undefined, 1);
    for (const modelId of [SONNET, `us.${SONNET}`, `arn:aws:bedrock:us-east-1::foundation-model/${SONNET}`, 'ANTHROPIC.CLAUDE-3-5-SONNET-20240620-V1:0']) {
      await rejectsWith(client.send(new ConverseCommand({ modelId, messages })), 'AccessDeniedException', 403);
    }
    client.destroy();
    // Raw paths with encodings cannot smuggle another model either.
    for (const path of [
      `/bedrock/model/${encodeURIComponent(SONNET)}/converse`,
      `/bedrock/model/anthropic.claude-3-5-sonnet-20240620-v1%3a0/converse`,
      `/bedrock/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse`,
    ]) {
      const res = await rawRequest(relay.url, 'POST', path, { authorization: `Bearer ${key}` }, '{}');
      assert.equal(res.status, 403, path);
      assert.equal(res.headers['x-amzn-errortype'], 'AccessDeniedException');
    }
    assert.equal(fake.requests.length, 0);
  });

  it('applies the same list to the compatible APIs, typed for their SDKs', async () => {
    const anthropic = new Anthropic({ baseURL: `${relay.url}/bedrock/anthropic`, authToken: key, maxRetries: 0 });
    await anthropic.messages.create({ model: `us.${HAIKU}`, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(
      anthropic.messages.create({ model: `us.${SONNET}`, max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      Anthropic.PermissionDeniedError,
    );
    const openai = new OpenAI({ baseURL: `${relay.url}/bedrock/openai/v1`, apiKey: key, maxRetries: 0 });
    await assert.rejects(
      openai.chat.completions.create({ model: 'openai.gpt-oss-120b-1:0', messages: [{ role: 'user', content: 'x' }] }),
      OpenAI.PermissionDeniedError,
    );
    // A model-scoped key whose body names no model is refused; a body that is not JSON is refused
    // on these JSON-only APIs before policy (lambda/routes/request-document.ts).
    for (const [body, status, type] of [
      ['not json', 400, 'invalid_request_error'],
      ['{"messages":[]}', 403, 'permission_error'],
    ] as const) {
      const res = await rawRequest(
        relay.url,
        'POST',
        '/bedrock/anthropic/v1/messages',
        { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body,
      );
      assert.equal(res.status, status, body);
      assert.equal(JSON.parse(res.body.toString()).error.type, type);
    }
    assert.equal(fake.requests.length, 1, 'only the allowed call went upstream');
  });

  it("filters discovery answers to the key's models and refuses a Get of another model", async () => {
    const list = await rawRequest(relay.url, 'GET', '/bedrock/inference-profiles?type=SYSTEM_DEFINED', { authorization: `Bearer ${key}` });
    assert.equal(list.status, 200);
    const ids = (JSON.parse(list.body.toString()).inferenceProfileSummaries as Array<{ inferenceProfileId: string }>).map((p) => p.inferenceProfileId);
    assert.ok(ids.length > 0);
    assert.ok(
      ids.every((id) => id.endsWith(HAIKU)),
      ids.join(','),
    );
    const unfiltered = await rawRequest(relay.url, 'GET', '/bedrock/inference-profiles?type=SYSTEM_DEFINED', { authorization: `Bearer ${TEST_MASTER_KEY}` });
    assert.ok((JSON.parse(unfiltered.body.toString()).inferenceProfileSummaries as unknown[]).length > ids.length, 'the master key sees everything');
    const other = await rawRequest(relay.url, 'GET', `/bedrock/foundation-models/${SONNET}`, { authorization: `Bearer ${key}` });
    assert.equal(other.status, 403);
  });
});

describe('operations, routes and resources', () => {
  it('a key limited to Converse and ConverseStream cannot InvokeModel', async () => {
    const key = await newKey({ allowed_operations: ['Converse', 'ConverseStream'] });
    const client = runtimeClient(relay.url, key, undefined, 1);
    await client.send(new ConverseCommand({ modelId: SONNET, messages }));
    await rejectsWith(client.send(new InvokeModelCommand({ modelId: SONNET, body: '{}' })), 'AccessDeniedException', 403);
    client.destroy();
  });

  it('a key barred from agents and knowledge bases', async () => {
    const key = await newKey({ allowed_routes: ['!agents', '!knowledge-bases'] });
    const kb = await rawRequest(
      relay.url,
      'POST',
      '/bedrock/knowledgebases/KB12345678/retrieve',
      { authorization: `Bearer ${key}` },
      '{"retrievalQuery":{"text":"x"}}',
    );
    assert.equal(kb.status, 403);
    const converse = await rawRequest(relay.url, 'POST', `/bedrock/model/${HAIKU}/converse`, { authorization: `Bearer ${key}` }, JSON.stringify({ messages }));
    assert.equal(converse.status, 200);
  });

  it('a key limited to one knowledge base and one guardrail', async () => {
    const key = await newKey({ object_permission: { knowledge_bases: ['KBALLOWED1'], guardrails: ['gr-allowed'] } });
    const auth = { authorization: `Bearer ${key}` };
    assert.equal((await rawRequest(relay.url, 'POST', '/bedrock/knowledgebases/KBALLOWED1/retrieve', auth, '{}')).status, 200);
    assert.equal((await rawRequest(relay.url, 'POST', '/bedrock/knowledgebases/KBOTHER999/retrieve', auth, '{}')).status, 403);
    assert.equal((await rawRequest(relay.url, 'POST', '/bedrock/guardrail/gr-allowed/version/1/apply', auth, '{}')).status, 200);
    assert.equal((await rawRequest(relay.url, 'POST', '/bedrock/guardrail/gr-other/version/1/apply', auth, '{}')).status, 403);
  });
});

describe('key lifecycle through the admin API', () => {
  it('block, unblock, regenerate and delete take effect at once', async () => {
    const created = await admin('/key/generate', { key_alias: 'lifecycle' });
    const key = created.json.key as string;
    const call = (k: string) =>
      rawRequest(relay.url, 'POST', `/bedrock/model/${HAIKU}/converse`, { authorization: `Bearer ${k}` }, JSON.stringify({ messages }));
    assert.equal((await call(key)).status, 200);

    assert.equal((await admin('/key/block', { key })).status, 200);
    const blocked = await call(key);
    assert.equal(blocked.status, 403);
    assert.equal(blocked.headers['x-amzn-errortype'], 'AccessDeniedException');
    assert.equal((await admin('/key/unblock', { key })).status, 200);
    assert.equal((await call(key)).status, 200);

    const regenerated = await admin('/key/regenerate', { key });
    const newSecret = regenerated.json.key as string;
    assert.notEqual(newSecret, key);
    assert.equal((await call(key)).status, 401);
    assert.equal((await call(newSecret)).status, 200);

    const info = await admin(`/key/info?key=${encodeURIComponent(newSecret)}`, undefined, 'GET');
    assert.equal((info.json.info as Record<string, unknown>).key_alias, 'lifecycle');
    assert.ok(!JSON.stringify(info.json).includes(newSecret), '/key/info never shows the secret');

    assert.equal((await admin('/key/delete', { key_aliases: ['lifecycle'] })).status, 200);
    const deleted = await call(newSecret);
    assert.equal(deleted.status, 401);
    assert.equal(deleted.headers['x-amzn-errortype'], 'UnrecognizedClientException');
  });

  it('an expired key gets 401 ExpiredTokenException', async () => {
    const key = await newKey({ duration: '30s' });
    const client = runtimeClient(relay.url, key, undefined, 1);
    await client.send(new ConverseCommand({ modelId: HAIKU, messages }));
    clock.advance(31_000);
    await rejectsWith(client.send(new ConverseCommand({ modelId: HAIKU, messages })), 'ExpiredTokenException', 401);
    client.destroy();
  });

  it("bad admin input gets LiteLLM's error shape naming the field, and writes nothing", async () => {
    const bad = await admin('/key/generate', { key_alias: 'bad', max_budget: -1 });
    assert.equal(bad.status, 400);
    const error = bad.json.error as Record<string, unknown>;
    assert.match(String(error.message), /max_budget/);
    assert.equal(error.code, '400');
    const listed = await admin('/key/list?key_alias=bad', undefined, 'GET');
    assert.equal((listed.json.keys as unknown[]).length, 0);
    const unauthorised = await rawRequest(relay.url, 'POST', '/key/generate', { authorization: 'Bearer sk-not-master' }, '{}');
    assert.equal(unauthorised.status, 401);
  });
});

describe('key store outage', () => {
  it('fails closed with 503 and readiness says so', async () => {
    const key = await newKey({ key_alias: 'outage' });
    assert.equal((await rawRequest(relay.url, 'GET', '/health/readiness')).status, 200);
    await dynamo.stop();
    const res = await rawRequest(relay.url, 'POST', `/bedrock/model/${HAIKU}/converse`, { authorization: `Bearer ${key}` }, JSON.stringify({ messages }));
    assert.equal(res.status, 503);
    assert.equal(res.headers['x-amzn-errortype'], 'ServiceUnavailableException');
    assert.equal(fake.requests.length, 0, 'nothing went upstream');
    const readiness = await rawRequest(relay.url, 'GET', '/health/readiness');
    assert.equal(readiness.status, 503);
    assert.equal((await rawRequest(relay.url, 'GET', '/health/liveliness')).status, 200);
  });
});
