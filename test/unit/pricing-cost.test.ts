import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  BUILTIN_PRICES,
  formatUsd,
  loadPriceBook,
  nanosToUsd,
  PriceBook,
  PRICES_TAKEN_ON,
  PRICE_SOURCES,
  usdPer1kToPicosPerToken,
  usdToNanos,
} from '../../lambda/pricing/index.js';
import type { TokenUsage } from '../../lambda/pipeline.js';

const book = loadPriceBook({});
const usage = (inputTokens: number, outputTokens: number, cacheReadInputTokens = 0, cacheWriteInputTokens = 0): TokenUsage => ({
  inputTokens,
  outputTokens,
  cacheReadInputTokens,
  cacheWriteInputTokens,
});

describe('exact integer costs', () => {
  it('Claude 3 Haiku: $0.00025 / $0.00125 per 1K are 250 / 1250 nano-USD per token', () => {
    assert.deepEqual(book.priceCall('anthropic.claude-3-haiku-20240307-v1:0', usage(1, 1)), {
      costNanos: 1500,
      priced: true,
      priceKey: 'anthropic.claude-3-haiku-20240307',
    });
    assert.equal(book.priceCall('anthropic.claude-3-haiku-20240307-v1:0', usage(1234, 567)).costNanos, 1234 * 250 + 567 * 1250);
  });

  it('every token kind at its own price (regional Opus 4.7)', () => {
    // input 5500, output 27500, cache read 550, cache write 6875 nano-USD per token.
    assert.equal(
      book.priceCall('us.anthropic.claude-opus-4-7', usage(1000, 200, 30000, 1500)).costNanos,
      1000 * 5500 + 200 * 27500 + 30000 * 550 + 1500 * 6875,
    );
  });

  it('cache reads and writes fall back to the input price when the model lists none', () => {
    assert.equal(book.priceCall('anthropic.claude-3-haiku-20240307-v1:0', usage(0, 0, 10, 10)).costNanos, 20 * 250);
  });

  it('sub-nano per-token prices are exact in pico-USD and rounded once per call, half up', () => {
    // Nova Micro cache read: $0.00000875 per 1K = 8.75 nano-USD per token.
    assert.equal(usdPer1kToPicosPerToken(0.00000875), 8750n);
    assert.equal(book.priceCall('amazon.nova-micro-v1:0', usage(0, 0, 4)).costNanos, 35);
    assert.equal(book.priceCall('amazon.nova-micro-v1:0', usage(0, 0, 1)).costNanos, 9); // 8.75 → 9
    assert.equal(book.priceCall('amazon.nova-micro-v1:0', usage(0, 0, 2)).costNanos, 18); // 17.5 → 18
    assert.equal(book.priceCall('amazon.nova-micro-v1:0', usage(0, 0, 3)).costNanos, 26); // 26.25 → 26
  });

  it('long-context pricing applies to the whole call above the threshold', () => {
    const below = book.priceCall('openai.gpt-5.6-sol', usage(272_000, 1000));
    const above = book.priceCall('openai.gpt-5.6-sol', usage(271_000, 1000, 1001));
    assert.equal(below.costNanos, 272_000 * 5500 + 1000 * 33000);
    assert.equal(above.costNanos, 271_000 * 11000 + 1000 * 49500 + 1001 * 1100);
  });

  it('costs add up exactly: the sum of call costs equals the cost of the summed usage for whole-nano prices', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(200_000), fc.nat(50_000), fc.nat(200_000), fc.nat(20_000)), { maxLength: 50 }), (calls) => {
        let sum = 0;
        const total = usage(0, 0);
        for (const [i, o, r, w] of calls) {
          sum += book.priceCall('global.anthropic.claude-sonnet-4-6', usage(i, o, r, w)).costNanos;
          total.inputTokens += i;
          total.outputTokens += o;
          total.cacheReadInputTokens += r;
          total.cacheWriteInputTokens += w;
        }
        assert.ok(Number.isSafeInteger(sum));
        assert.equal(sum, book.priceCall('global.anthropic.claude-sonnet-4-6', total).costNanos);
      }),
    );
  });

  it('a million-token Opus call is priced without floating point error', () => {
    const cost = book.priceCall('anthropic.claude-opus-4-20250514-v1:0', usage(1_000_000, 1_000_000, 1_000_000, 1_000_000)).costNanos;
    assert.equal(cost, 15_000_000_000 + 75_000_000_000 + 1_500_000_000 + 18_750_000_000);
    assert.equal(formatUsd(cost), '110.25');
  });
});

describe('money units', () => {
  it('converts decimal prices exactly, from numbers and strings', () => {
    assert.equal(usdPer1kToPicosPerToken(0.00025), 250_000n);
    assert.equal(usdPer1kToPicosPerToken('0.00025'), 250_000n);
    assert.equal(usdPer1kToPicosPerToken(0.0165), 16_500_000n);
    assert.equal(usdPer1kToPicosPerToken('2.5e-3'), 2_500_000n);
    assert.equal(usdPer1kToPicosPerToken(8.75e-7), 875n);
    assert.equal(usdPer1kToPicosPerToken(0), 0n);
  });

  it('refuses prices finer than a pico-USD per token, negative or not numbers', () => {
    for (const bad of [0.0000000001, '0.0000000000001', -0.003, Number.NaN, Number.POSITIVE_INFINITY, 'abc', '1,5', '']) {
      assert.throws(() => usdPer1kToPicosPerToken(bad), String(bad));
    }
  });

  it('formats and converts nano-USD', () => {
    assert.equal(formatUsd(0), '0');
    assert.equal(formatUsd(1), '0.000000001');
    assert.equal(formatUsd(1_500_000_000), '1.5');
    assert.equal(formatUsd(-250), '-0.00000025');
    assert.equal(nanosToUsd(1_500_000_000), 1.5);
    assert.equal(usdToNanos(10), 10_000_000_000);
    assert.equal(usdToNanos('0.1'), 100_000_000);
    assert.equal(usdToNanos(0.1), 100_000_000);
    assert.equal(usdToNanos('0.0000000015'), 2); // half up beyond nano precision
    assert.throws(() => usdToNanos('ten'));
  });
});

describe('the built-in table', () => {
  it('records its sources and the date the prices were taken', () => {
    assert.match(PRICES_TAKEN_ON, /^\d{4}-\d{2}-\d{2}$/);
    assert.ok(PRICE_SOURCES.some((source) => source.includes('aws.amazon.com/bedrock/pricing')));
    for (const [key, spec] of Object.entries(BUILTIN_PRICES)) assert.ok(spec.source, `${key} names its source`);
  });

  it('compiles: every price is a whole number of pico-USD per token', () => {
    const compiled = PriceBook.compile(BUILTIN_PRICES);
    assert.equal(compiled.size, Object.keys(BUILTIN_PRICES).length);
  });

  it('has whole nano-USD per-token prices except where the source is finer', () => {
    const finer: string[] = [];
    for (const [key, spec] of Object.entries(BUILTIN_PRICES)) {
      for (const value of [spec.input, spec.output, spec.cacheRead, spec.cacheWrite]) {
        if (value !== undefined && usdPer1kToPicosPerToken(value) % 1000n !== 0n) finer.push(key);
      }
    }
    // Nova Micro's cache read (8.75 nano-USD) and regional Nova 2 Lite's (82.5 nano-USD) are real examples.
    assert.deepEqual([...new Set(finer)].sort(), ['amazon.nova-2-lite', 'amazon.nova-micro']);
  });
});
