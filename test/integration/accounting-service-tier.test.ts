/**
 * Service tiers through the relay, with the official SDKs as callers: a priority (or flex) call
 * is charged at its tier's price, to the nano; a budgeted key asking for a tier the price table
 * cannot charge is refused in its client's dialect before anything reaches Bedrock; a key
 * without limits may use any tier and its call is flagged unpriced.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConverseCommand, ConverseStreamCommand, type ConverseCommandInput } from '@aws-sdk/client-bedrock-runtime';
import OpenAI from 'openai';
import { priceCall } from '../../lambda/pricing/index.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { runtimeClient } from '../support/clients.js';
import { expectedConverseUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { call, createKey, keyItem, settled, startAccountingRelay, type AccountingRelay } from './accounting-harness.js';

const GPT_OSS = 'openai.gpt-oss-120b-1:0'; // AWS lists it for Priority and Flex
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0'; // priced, but not for priority or flex

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: AccountingRelay;

before(async () => {
  fake = await startFakeBedrock();
  store = await startEmbeddedDynamo();
  relay = await startAccountingRelay({ fake, store });
});
after(async () => {
  await relay.close();
  await store.stop();
  await fake.close();
});

const input = (modelId: string, text: string, tier?: 'priority' | 'flex' | 'default'): ConverseCommandInput => ({
  modelId,
  messages: [{ role: 'user', content: [{ text }] }],
  inferenceConfig: { maxTokens: 700 },
  ...(tier ? { serviceTier: { type: tier } } : {}),
});

/** Standard-price nanos of the Converse call the fake received with this text, from the fake's usage rule. */
function standardNanos(text: string): { nanos: number; inputTokens: number; outputTokens: number } {
  const request = fake.requests.find((r) => r.body.includes(text));
  assert.ok(request, `the fake received the call "${text}"`);
  const u = expectedConverseUsage(request.body);
  const nanos = u.inputTokens * 150 + u.outputTokens * 600; // gpt-oss-120b: $0.00015 / $0.0006 per 1K tokens
  return { nanos, inputTokens: u.inputTokens, outputTokens: u.outputTokens };
}

describe('service tiers', () => {
  it('charges a priority Converse call at 1.75 × the standard price, and a flex ConverseStream call at 0.5 ×', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'tier-priced', max_budget: 5 });
    const runtime = runtimeClient(relay.url, key, undefined, 1);
    try {
      await runtime.send(new ConverseCommand(input(GPT_OSS, 'priority please', 'priority')));
      await settled(relay, 'tier-priced', 1);
      const sent = fake.requests.find((r) => r.body.includes('priority please'))!;
      assert.deepEqual(JSON.parse(sent.body.toString()).serviceTier, { type: 'priority' }, 'the tier went upstream as sent');
      const priority = standardNanos('priority please');
      // × 1.75 exactly, rounded once half up to whole nanos.
      const priorityNanos = Math.floor((priority.nanos * 7 + 2) / 4);
      assert.ok(priorityNanos > priority.nanos * 1.74);
      let item = await keyItem(store, token);
      assert.equal(item.spend_nanos, priorityNanos);
      assert.equal(
        priceCall(
          GPT_OSS,
          { inputTokens: priority.inputTokens, outputTokens: priority.outputTokens, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
          'priority',
        ).costNanos,
        priorityNanos,
      );

      const stream = await runtime.send(new ConverseStreamCommand(input(GPT_OSS, 'flex is fine', 'flex')));
      for await (const _event of stream.stream ?? []) void _event;
      await settled(relay, 'tier-priced', 2);
      const flex = standardNanos('flex is fine');
      item = await keyItem(store, token);
      assert.equal(item.spend_nanos, priorityNanos + Math.floor((flex.nanos + 1) / 2));
      assert.equal(item.total_unpriced_requests ?? 0, 0);
    } finally {
      runtime.destroy();
    }
  });

  it('refuses a budgeted key a tier its model has no price for, in each dialect, with nothing sent upstream', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'tier-refused', max_budget: 5 });
    const runtime = runtimeClient(relay.url, key, undefined, 1);
    const upstreamBefore = fake.requests.length;
    try {
      await assert.rejects(
        runtime.send(new ConverseCommand(input(HAIKU, 'priority on haiku', 'priority'))),
        (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
          assert.equal(error.name, 'AccessDeniedException');
          assert.equal(error.$metadata?.httpStatusCode, 403);
          assert.match(error.message, /no price for the priority service tier of model anthropic\.claude-3-haiku-20240307-v1:0/);
          return true;
        },
      );

      const openai = new OpenAI({ baseURL: `${relay.url}/bedrock/openai/v1`, apiKey: key, maxRetries: 0 });
      await assert.rejects(
        openai.chat.completions.create({ model: HAIKU, service_tier: 'flex', messages: [{ role: 'user', content: 'hi' }] }),
        (error: Error) => {
          assert.ok(error instanceof OpenAI.PermissionDeniedError, `${error.name}: ${error.message}`);
          assert.match(error.message, /flex service tier/);
          return true;
        },
      );

      // An InvokeModel header asking for a tier nobody prices is a 400 for a budgeted key.
      const invoke = await call(
        relay.url,
        key,
        `/bedrock/model/${encodeURIComponent(GPT_OSS)}/invoke`,
        JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
        {
          'x-amzn-bedrock-service-tier': 'turbo',
        },
      );
      assert.equal(invoke.status, 400);
      assert.equal(invoke.headers['x-amzn-errortype'], 'ValidationException');
      assert.match(JSON.parse(invoke.body.toString()).message, /Unknown service tier "turbo" in the x-amzn-bedrock-service-tier header/);

      const anthropic = await call(
        relay.url,
        key,
        '/bedrock/anthropic/v1/messages',
        JSON.stringify({ model: HAIKU, max_tokens: 10, service_tier: 'priority', messages: [{ role: 'user', content: 'hi' }] }),
        { 'anthropic-version': '2023-06-01' },
      );
      assert.equal(anthropic.status, 403);
      assert.equal(JSON.parse(anthropic.body.toString()).error.type, 'permission_error');

      assert.equal(fake.requests.length, upstreamBefore, 'nothing reached Bedrock');
      await relay.relay.idle(60_000);
      const item = await keyItem(store, token);
      assert.equal(item.spend_nanos, 0);
      assert.equal(item.total_requests ?? 0, 0);
    } finally {
      runtime.destroy();
    }
  });

  it('lets a key without limits use an unpriced tier, and flags the call unpriced', async () => {
    const { key, token } = await createKey(relay.url, { key_alias: 'tier-free' });
    const runtime = runtimeClient(relay.url, key, undefined, 1);
    try {
      await runtime.send(new ConverseCommand(input(HAIKU, 'unlimited priority', 'priority')));
      await settled(relay, 'tier-free', 1);
      assert.ok(fake.requests.some((r) => r.body.includes('unlimited priority')));
      const item = await keyItem(store, token);
      assert.equal(item.spend_nanos, 0);
      assert.equal(item.total_unpriced_requests, 1);
      assert.ok((item.total_output_tokens as number) > 0, 'its tokens are still counted');
    } finally {
      runtime.destroy();
    }
  });
});
