import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BUILTIN_PRICES, loadPriceBook, priceCall, PriceBook } from '../../lambda/pricing/index.js';
import type { TokenUsage } from '../../lambda/pipeline.js';

const book = loadPriceBook({});
const MILLION_IN: TokenUsage = { inputTokens: 1_000_000, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 };
/** USD per 1M input tokens, as nanos: $3 → 3e9. */
const perMillionIn = (model: string) => book.priceCall(model, MILLION_IN);

describe('price lookup by every spelling of a model ID', () => {
  it('plain IDs, profile IDs, ARNs and mantle IDs of Claude 3.5 Haiku all find one price', () => {
    const spellings = [
      'anthropic.claude-3-5-haiku-20241022-v1:0',
      'us.anthropic.claude-3-5-haiku-20241022-v1:0',
      'eu.anthropic.claude-3-5-haiku-20241022-v1:0',
      'ANTHROPIC.Claude-3-5-Haiku-20241022-V1:0',
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
      'arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
      'anthropic.claude-3-5-haiku-20241022',
    ];
    for (const model of spellings) {
      assert.deepEqual(perMillionIn(model), { costNanos: 800_000_000, priced: true, priceKey: 'anthropic.claude-3-5-haiku-20241022' }, model);
    }
  });

  it('Claude 4.5 and later: global profile at the global price, geo profiles, in-Region and mantle at the regional one', () => {
    const regional = { costNanos: 5_500_000_000, priced: true, priceKey: 'anthropic.claude-opus-4-7' };
    for (const model of [
      'anthropic.claude-opus-4-7',
      'us.anthropic.claude-opus-4-7',
      'eu.anthropic.claude-opus-4-7',
      'jp.anthropic.claude-opus-4-7',
      'arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-opus-4-7',
    ]) {
      assert.deepEqual(perMillionIn(model), regional, model);
    }
    for (const model of ['global.anthropic.claude-opus-4-7', 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-opus-4-7']) {
      assert.deepEqual(perMillionIn(model), { costNanos: 5_000_000_000, priced: true, priceKey: 'global.anthropic.claude-opus-4-7' }, model);
    }
    assert.equal(perMillionIn('global.anthropic.claude-sonnet-4-5-20250929-v1:0').costNanos, 3_000_000_000);
    assert.equal(perMillionIn('us.anthropic.claude-sonnet-4-5-20250929-v1:0').costNanos, 3_300_000_000);
    assert.equal(perMillionIn('global.anthropic.claude-haiku-4-5-20251001-v1:0').costNanos, 1_000_000_000);
    assert.equal(perMillionIn('au.anthropic.claude-haiku-4-5-20251001-v1:0').costNanos, 1_100_000_000);
  });

  it('undated (mantle) IDs find their dated price (issue 13)', () => {
    assert.deepEqual(perMillionIn('anthropic.claude-haiku-4-5'), { costNanos: 1_100_000_000, priced: true, priceKey: 'anthropic.claude-haiku-4-5-20251001' });
    assert.deepEqual(perMillionIn('global.anthropic.claude-haiku-4-5'), {
      costNanos: 1_000_000_000,
      priced: true,
      priceKey: 'global.anthropic.claude-haiku-4-5-20251001',
    });
    assert.equal(perMillionIn('us.anthropic.claude-haiku-4-5').costNanos, 1_100_000_000);
    assert.equal(perMillionIn('anthropic.claude-sonnet-4-5').costNanos, 3_300_000_000);
    // Several dated releases under one undated name: the newest one's price.
    const book2 = PriceBook.compile({ 'x.model-20240101': { input: 0.001, output: 0 }, 'x.model-20250101': { input: 0.002, output: 0 } });
    assert.equal(book2.priceCall('x.model', MILLION_IN).costNanos, 2_000_000_000);
    // A dated ID never borrows another release's price.
    assert.equal(book2.priceCall('x.model-20260101', MILLION_IN).priced, false);
  });

  it('models with one price everywhere use it for the global profile too', () => {
    assert.equal(perMillionIn('global.anthropic.claude-sonnet-4-20250514-v1:0').costNanos, 3_000_000_000);
    assert.equal(perMillionIn('us.anthropic.claude-sonnet-4-20250514-v1:0').costNanos, 3_000_000_000);
  });

  it('covers the families people use', () => {
    const expectations: Record<string, number> = {
      'anthropic.claude-3-haiku-20240307-v1:0': 250_000_000,
      'us.anthropic.claude-3-7-sonnet-20250219-v1:0': 3_000_000_000,
      'anthropic.claude-opus-4-1-20250805-v1:0': 15_000_000_000,
      'us.anthropic.claude-opus-4-5-20251101-v1:0': 5_500_000_000,
      'anthropic.claude-opus-4-6-v1': 5_500_000_000,
      'global.anthropic.claude-sonnet-4-6': 3_000_000_000,
      'us.amazon.nova-micro-v1:0': 35_000_000,
      'amazon.nova-lite-v1:0': 60_000_000,
      'us.amazon.nova-pro-v1:0': 800_000_000,
      'us.amazon.nova-premier-v1:0': 2_500_000_000,
      'global.amazon.nova-2-lite-v1:0': 300_000_000,
      'amazon.titan-text-express-v1': 200_000_000,
      'amazon.titan-embed-text-v1': 100_000_000,
      'amazon.titan-embed-text-v2:0': 20_000_000,
      'us.meta.llama3-3-70b-instruct-v1:0': 720_000_000,
      'us.meta.llama4-maverick-17b-instruct-v1:0': 240_000_000,
      'mistral.mistral-7b-instruct-v0:2': 150_000_000,
      'mistral.mistral-large-2402-v1:0': 4_000_000_000,
      'cohere.command-r-v1:0': 500_000_000,
      'cohere.command-r-plus-v1:0': 3_000_000_000,
      'us.deepseek.r1-v1:0': 1_350_000_000,
      'deepseek.v3-v1:0': 580_000_000,
      'openai.gpt-oss-120b-1:0': 150_000_000,
      'openai.gpt-oss-120b': 150_000_000,
      'openai.gpt-oss-20b-1:0': 70_000_000,
      'openai.gpt-oss-20b': 70_000_000,
      'qwen.qwen3-32b-v1:0': 150_000_000,
      'qwen.qwen3-coder-480b-a35b-v1:0': 450_000_000,
      'nvidia.nemotron-nano-9b-v2': 60_000_000,
      'moonshotai.kimi-k2.5': 600_000_000,
    };
    for (const [model, nanos] of Object.entries(expectations)) assert.equal(perMillionIn(model).costNanos, nanos, model);
  });

  it('leaves unknown and opaque models unpriced, never an error', () => {
    for (const model of [
      undefined,
      '',
      'acme.unknown-model-v1:0',
      'us.acme.unknown',
      'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3',
      'arn:aws:bedrock:us-east-1:123456789012:provisioned-model/xyz',
    ]) {
      assert.deepEqual(book.priceCall(model, MILLION_IN), { costNanos: 0, priced: false }, String(model));
    }
  });

  it('falls back to the model that answered when the one asked for has no price', () => {
    const router = 'arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/anthropic.claude:1';
    const invoked = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0';
    assert.deepEqual(book.priceCall([router, invoked], MILLION_IN), { costNanos: 800_000_000, priced: true, priceKey: 'anthropic.claude-3-5-haiku-20241022' });
    // The requested model wins when it has a price.
    assert.equal(book.priceCall(['global.anthropic.claude-opus-4-7', 'claude-opus-4-7'], MILLION_IN).priceKey, 'global.anthropic.claude-opus-4-7');
    assert.deepEqual(book.priceCall([undefined, undefined], MILLION_IN), { costNanos: 0, priced: false });
  });

  it('a version-specific key does not price other versions', () => {
    const versioned = PriceBook.compile({ 'acme.model-v2:0': { input: 1, output: 1 } });
    assert.equal(versioned.priceCall('acme.model-v2:0', MILLION_IN).priced, true);
    assert.equal(versioned.priceCall('us.acme.model-v2:0', MILLION_IN).priced, true);
    assert.equal(versioned.priceCall('acme.model-v1:0', MILLION_IN).priced, false);
    assert.equal(versioned.priceCall('acme.model', MILLION_IN).priced, false);
  });

  it('priceCall uses the default book', () => {
    assert.equal(priceCall('us.anthropic.claude-3-5-haiku-20241022-v1:0', MILLION_IN).costNanos, 800_000_000);
  });

  it('every built-in key is reachable by its own spelling', () => {
    for (const key of Object.keys(BUILTIN_PRICES)) assert.equal(book.priceCall(key, MILLION_IN).priced, true, key);
  });
});
