/**
 * Service tiers: which tier a call asks for (every spelling), what each tier costs (exact nanos,
 * one rounding), the multiplier configuration, and the refusal of unpriced tiers to keys whose
 * spend or tokens are limited.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RelayError } from '../../lambda/http/errors.js';
import type { CallContext, TokenUsage } from '../../lambda/pipeline.js';
import { detectServiceTier, parseJsonBody, pricedTierOf, refuseUnpricedServiceTier, serviceTierOf, tierGuarded } from '../../lambda/policy/service-tier.js';
import { loadPriceBook, PriceBook, PriceConfigError, tierMultiplier } from '../../lambda/pricing/index.js';

const usage = (inputTokens: number, outputTokens: number, cacheReadInputTokens = 0, cacheWriteInputTokens = 0): TokenUsage => ({
  inputTokens,
  outputTokens,
  cacheReadInputTokens,
  cacheWriteInputTokens,
});

const GPT_OSS = 'openai.gpt-oss-120b-1:0';
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';

describe('detectServiceTier', () => {
  it('is default, from nowhere, when nothing asks for a tier', () => {
    assert.deepEqual(detectServiceTier({}, undefined), { tier: 'default' });
    assert.deepEqual(detectServiceTier({ 'content-type': 'application/json' }, { messages: [] }), { tier: 'default' });
  });

  it('reads the InvokeModel header, ignoring case and blanks', () => {
    assert.deepEqual(detectServiceTier({ 'x-amzn-bedrock-service-tier': 'priority' }, undefined), { tier: 'priority', source: 'header', raw: 'priority' });
    assert.equal(detectServiceTier({ 'x-amzn-bedrock-service-tier': ' Flex ' }, undefined).tier, 'flex');
    assert.equal(detectServiceTier({ 'x-amzn-bedrock-service-tier': 'reserved' }, undefined).tier, 'reserved');
  });

  it('reads Converse serviceTier {type}, and a bare string the same way', () => {
    assert.deepEqual(detectServiceTier({}, { serviceTier: { type: 'flex' } }), { tier: 'flex', source: 'body.serviceTier', raw: 'flex' });
    assert.equal(detectServiceTier({}, { serviceTier: 'priority' }).tier, 'priority');
  });

  it('reads service_tier (OpenAI, Anthropic, Bedrock) with their synonyms of the standard tier', () => {
    assert.deepEqual(detectServiceTier({}, { model: 'x', service_tier: 'priority' }), { tier: 'priority', source: 'body.service_tier', raw: 'priority' });
    for (const standard of ['default', 'auto', 'standard_only', 'standard']) {
      assert.equal(detectServiceTier({}, { service_tier: standard }).tier, 'default', standard);
    }
    assert.deepEqual(detectServiceTier({}, { service_tier: null, serviceTier: null }), { tier: 'default' });
  });

  it('keeps values it does not know as unrecognised, printable and short', () => {
    assert.deepEqual(detectServiceTier({}, { service_tier: 'scale' }), { tier: 'unrecognised', source: 'body.service_tier', raw: 'scale' });
    assert.deepEqual(detectServiceTier({}, { serviceTier: { type: 5 } }), { tier: 'unrecognised', source: 'body.serviceTier', raw: '5' });
    assert.deepEqual(detectServiceTier({}, { serviceTier: {} }).tier, 'unrecognised');
    const long = detectServiceTier({ 'x-amzn-bedrock-service-tier': `x\u0001${'y'.repeat(100)}` }, undefined);
    assert.equal(long.tier, 'unrecognised');
    assert.equal(long.raw?.length, 64);
    assert.ok(long.raw?.startsWith('x?y'));
  });

  it('takes the dearest tier when a call names several', () => {
    assert.equal(detectServiceTier({ 'x-amzn-bedrock-service-tier': 'flex' }, { serviceTier: { type: 'priority' } }).tier, 'priority');
    assert.equal(detectServiceTier({ 'x-amzn-bedrock-service-tier': 'priority' }, { service_tier: 'flex' }).tier, 'priority');
    assert.equal(detectServiceTier({}, { service_tier: 'flex', serviceTier: { type: 'default' } }).tier, 'default');
    assert.equal(detectServiceTier({ 'x-amzn-bedrock-service-tier': 'priority' }, { service_tier: 'turbo' }).tier, 'unrecognised');
    // A header sent twice reaches the relay joined with ',': no tier of that name.
    assert.equal(detectServiceTier({ 'x-amzn-bedrock-service-tier': 'flex,priority' }, undefined).tier, 'unrecognised');
  });

  it('ignores bodies that are not JSON objects', () => {
    assert.equal(detectServiceTier({}, ['service_tier', 'priority']).tier, 'default');
    assert.equal(detectServiceTier({}, 'priority').tier, 'default');
    assert.equal(parseJsonBody(Buffer.from('')), undefined);
    assert.equal(parseJsonBody(Buffer.from('{"service_tier": ')), undefined);
    assert.equal(parseJsonBody(Buffer.from([0x89, 0x50, 0x4e, 0x47])), undefined);
    assert.deepEqual(parseJsonBody(Buffer.from(' \n{"service_tier":"flex"}')), { service_tier: 'flex' });
  });
});

describe('tier prices', () => {
  const book = loadPriceBook({});

  it('gpt-oss-120b: priority is 1.75 × standard and flex 0.5 ×, to the nano', () => {
    // $0.00015 / $0.0006 per 1K = 150 / 600 nano-USD per token: 1000 in + 500 out = 450 000 nanos.
    assert.deepEqual(book.priceCall(GPT_OSS, usage(1000, 500)), { costNanos: 450_000, priced: true, priceKey: 'openai.gpt-oss-120b' });
    assert.deepEqual(book.priceCall(GPT_OSS, usage(1000, 500), 'priority'), {
      costNanos: 787_500,
      priced: true,
      priceKey: 'openai.gpt-oss-120b',
      serviceTier: 'priority',
    });
    assert.deepEqual(book.priceCall(GPT_OSS, usage(1000, 500), 'flex'), {
      costNanos: 225_000,
      priced: true,
      priceKey: 'openai.gpt-oss-120b',
      serviceTier: 'flex',
    });
    assert.equal(book.priceCall(GPT_OSS, usage(1000, 500), 'default').costNanos, 450_000);
    assert.equal(book.priceCall(GPT_OSS, usage(1000, 500), 'reserved').costNanos, 450_000);
    // The mantle spelling and a profile prefix find the same tiers.
    assert.equal(book.priceCall('us.openai.gpt-oss-120b-1:0', usage(1000, 500), 'priority').costNanos, 787_500);
    assert.equal(book.priceCall('amazon.nova-pro-v1:0', usage(1000, 0, 1000), 'priority').costNanos, (800_000 + 200_000) * 1.75);
  });

  it('a tier the model has no price for is unpriced (0), as is a tier nobody knows', () => {
    assert.deepEqual(book.priceCall(HAIKU, usage(1000, 500), 'priority'), { costNanos: 0, priced: false, serviceTier: 'priority' });
    assert.deepEqual(book.priceCall(GPT_OSS, usage(1000, 500), 'scale'), { costNanos: 0, priced: false, serviceTier: 'scale' });
    assert.deepEqual(book.priceCall('no.such-model', usage(1, 1), 'flex'), { costNanos: 0, priced: false, serviceTier: 'flex' });
    // Standard stays priced for the same model.
    assert.equal(book.priceCall(HAIKU, usage(1000, 500)).priced, true);
  });

  it('falls back on the model that answered when the one asked for has no price at all', () => {
    const router = 'arn:aws:bedrock:us-east-1:123456789012:default-prompt-router/openai.gpt-oss:1';
    assert.equal(book.priceCall([router, GPT_OSS], usage(1000, 500), 'priority').costNanos, 787_500);
    // …but not past a model that has a price and lacks the tier.
    assert.equal(book.priceCall([HAIKU, GPT_OSS], usage(1000, 500), 'priority').priced, false);
  });

  it('rounds once, half up, on the exact product (not per token, not before the multiplier)', () => {
    const custom = PriceBook.compile({ 'x.tiny': { input: '0.0000001', output: 0, tiers: { priority: true, flex: { multiplier: '0.333' } } } });
    // 100 pico-USD per input token: 3 tokens = 300 picos (0.3 nanos → 0 at standard);
    // × 1.75 = 525 picos → 0.525 nanos → 1 nano.
    assert.equal(custom.priceCall('x.tiny', usage(3, 0)).costNanos, 0);
    assert.equal(custom.priceCall('x.tiny', usage(3, 0), 'priority').costNanos, 1);
    assert.equal(custom.priceCall('x.tiny', usage(2, 0), 'priority').costNanos, 0); // 350 picos
    // 15 tokens = 1500 picos × 0.333 = 499.5 picos → 0.4995 nanos → 0; 16 → 532.8 → 1.
    assert.equal(custom.priceCall('x.tiny', usage(15, 0), 'flex').costNanos, 0);
    assert.equal(custom.priceCall('x.tiny', usage(16, 0), 'flex').costNanos, 1);
  });

  it('applies the multiplier to long-context rates when the call is long', () => {
    const custom = PriceBook.compile({
      'x.long': { input: 0.001, output: 0.002, longContext: { aboveInputTokens: 100, input: 0.01, output: 0.02 }, tiers: { priority: true } },
    });
    assert.equal(custom.priceCall('x.long', usage(100, 10), 'priority').costNanos, (100 * 1000 + 10 * 2000) * 1.75);
    assert.equal(custom.priceCall('x.long', usage(101, 10), 'priority').costNanos, (101 * 10_000 + 10 * 20_000) * 1.75);
  });

  it('RELAY_PRICES_TIER_MULTIPLIERS sets what `true` means; a tier left out keeps its default', () => {
    const doubled = loadPriceBook({ RELAY_PRICES_TIER_MULTIPLIERS: '{"priority": "2"}' });
    assert.equal(doubled.priceCall(GPT_OSS, usage(1000, 500), 'priority').costNanos, 900_000);
    assert.equal(doubled.priceCall(GPT_OSS, usage(1000, 500), 'flex').costNanos, 225_000);
    // Entries laid over by RELAY_PRICES_JSON get the same multipliers.
    const both = loadPriceBook({
      RELAY_PRICES_TIER_MULTIPLIERS: '{"flex": 0.25}',
      RELAY_PRICES_JSON: '{"my.model": {"input": 0.001, "output": 0.001, "tiers": {"flex": true}}}',
    });
    assert.equal(both.priceCall('my.model', usage(1000, 0), 'flex').costNanos, 250_000);
    for (const [value, pattern] of [
      ['{"priority": -1}', /RELAY_PRICES_TIER_MULTIPLIERS\.priority: must be a finite, non-negative number/],
      ['{"turbo": 2}', /RELAY_PRICES_TIER_MULTIPLIERS\.turbo: unknown tier/],
      ['[1.75]', /RELAY_PRICES_TIER_MULTIPLIERS: must be a JSON object/],
      ['{"flex": "half"}', /RELAY_PRICES_TIER_MULTIPLIERS\.flex: must be a non-negative decimal/],
      ['{', /RELAY_PRICES_TIER_MULTIPLIERS: not valid JSON/],
    ] as const) {
      assert.throws(
        () => loadPriceBook({ RELAY_PRICES_TIER_MULTIPLIERS: value }),
        (error: Error) => error instanceof PriceConfigError && pattern.test(error.message),
        value,
      );
    }
  });

  it('RELAY_PRICES_JSON prices tiers per model: explicit prices, own multiplier, or none', () => {
    const custom = loadPriceBook({
      RELAY_PRICES_JSON: JSON.stringify({
        [HAIKU]: { input: 0.00025, output: 0.00125, tiers: { priority: { input: 0.0005, output: 0.002 }, flex: { multiplier: 0.4 } } },
        'openai.gpt-oss-120b': { input: 0.00015, output: 0.0006 }, // replaces the whole entry: tiers gone
      }),
    });
    assert.equal(custom.priceCall(HAIKU, usage(1000, 100), 'priority').costNanos, 1000 * 500 + 100 * 2000);
    assert.equal(custom.priceCall(HAIKU, usage(1000, 100), 'flex').costNanos, (1000 * 250 + 100 * 1250) * 0.4);
    assert.equal(custom.priceCall(GPT_OSS, usage(1000, 500), 'priority').priced, false);
    for (const [tiers, pattern] of [
      [{ turbo: true }, /"x"\.tiers\.turbo: unknown field/],
      [{ priority: 2 }, /"x"\.tiers\.priority: must be true/],
      [{ priority: { multiplier: 'lots' } }, /"x"\.tiers\.priority\.multiplier: must be a non-negative decimal/],
      [{ priority: { multiplier: 2, input: 1 } }, /"x"\.tiers\.priority\.input: unknown field/],
      [{ flex: { input: 0.001 } }, /"x"\.tiers\.flex\.output: is required/],
      [[], /"x"\.tiers: must be an object/],
    ] as const) {
      assert.throws(
        () => loadPriceBook({ RELAY_PRICES_JSON: JSON.stringify({ x: { input: 0.001, output: 0.001, tiers } }) }),
        (error: Error) => error instanceof PriceConfigError && pattern.test(error.message),
        JSON.stringify(tiers),
      );
    }
  });

  it('tierMultiplier gives reservations a worst-case factor', () => {
    assert.equal(tierMultiplier(book, GPT_OSS, 'priority'), 1.75);
    assert.equal(tierMultiplier(book, GPT_OSS, 'flex'), 0.5);
    assert.equal(tierMultiplier(book, GPT_OSS, undefined), 1);
    assert.equal(tierMultiplier(book, GPT_OSS, 'reserved'), 1);
    assert.equal(tierMultiplier(book, HAIKU, 'priority'), undefined);
    assert.equal(tierMultiplier(book, 'no.such-model', 'default'), undefined);
    const custom = PriceBook.compile({ [HAIKU]: { input: 0.00025, output: 0.00125, tiers: { priority: { input: 0.0005, output: 0.003 } } } });
    assert.equal(tierMultiplier(custom, HAIKU, 'priority'), 2.4); // output: 3000 / 1250
  });
});

describe('refuseUnpricedServiceTier', () => {
  const book = loadPriceBook({});
  const price = book.priceCall.bind(book);
  const callWith = (model: string | undefined, body: unknown, headers: Record<string, string> = {}): CallContext =>
    ({ request: { headers, body: Buffer.from(JSON.stringify(body)) }, model }) as unknown as CallContext;
  const budgeted = { max_budget: 1 };
  const refusal = (status: number, type: string, pattern: RegExp) => (error: unknown) =>
    error instanceof RelayError && error.status === status && error.type === type && pattern.test(error.message);

  it('refuses a budgeted key a tier the model has no price for, with 403', () => {
    assert.throws(
      () => refuseUnpricedServiceTier(budgeted, callWith(HAIKU, { messages: [], serviceTier: { type: 'priority' } }), price),
      refusal(403, 'AccessDeniedException', /no price for the priority service tier of model anthropic\.claude-3-haiku-20240307-v1:0/),
    );
    assert.throws(
      () => refuseUnpricedServiceTier({ tpm_limit: 1000 }, callWith(HAIKU, {}, { 'x-amzn-bedrock-service-tier': 'flex' }), price),
      refusal(403, 'AccessDeniedException', /flex service tier/),
    );
    assert.throws(
      () => refuseUnpricedServiceTier({ model_tpm_limit: { '*': 10 } }, callWith(undefined, { service_tier: 'flex' }), price),
      refusal(403, 'AccessDeniedException', /of this call/),
    );
  });

  it('refuses an unknown tier value to a budgeted key with 400', () => {
    assert.throws(
      () => refuseUnpricedServiceTier(budgeted, callWith(GPT_OSS, { service_tier: 'scale' }), price),
      refusal(400, 'ValidationException', /Unknown service tier "scale" in the request body's service_tier/),
    );
  });

  it('lets priced tiers, standard tiers and unlimited keys through', () => {
    refuseUnpricedServiceTier(budgeted, callWith(GPT_OSS, { service_tier: 'priority' }), price);
    refuseUnpricedServiceTier(budgeted, callWith(HAIKU, { service_tier: 'default' }), price);
    refuseUnpricedServiceTier(budgeted, callWith('no.such-model', { serviceTier: { type: 'reserved' } }), price);
    refuseUnpricedServiceTier({}, callWith(HAIKU, { service_tier: 'priority' }), price);
    refuseUnpricedServiceTier({ model_tpm_limit: {} }, callWith(HAIKU, { service_tier: 'scale' }), price);
    assert.equal(tierGuarded({ rpm_limit: 5 } as never), false);
  });

  it('detects once per call, and gives the price function the tier only when not standard', () => {
    const call = callWith(GPT_OSS, { service_tier: 'flex' });
    assert.equal(serviceTierOf(call), serviceTierOf(call));
    assert.equal(pricedTierOf(call), 'flex');
    assert.equal(pricedTierOf(callWith(GPT_OSS, { service_tier: 'auto' })), undefined);
    assert.equal(pricedTierOf(callWith(GPT_OSS, {}, { 'x-amzn-bedrock-service-tier': 'bogus' })), 'unrecognised');
  });
});
