import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadPriceBook, PriceConfigError } from '../../lambda/pricing/index.js';
import type { TokenUsage } from '../../lambda/pipeline.js';

const ONE_EACH: TokenUsage = { inputTokens: 1, outputTokens: 1, cacheReadInputTokens: 1, cacheWriteInputTokens: 1 };
const noFile = (path: string): string => {
  throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
};

describe('price overrides from configuration', () => {
  it('RELAY_PRICES_JSON replaces a built-in price, adds new models and removes with null', () => {
    const book = loadPriceBook({
      RELAY_PRICES_JSON: JSON.stringify({
        'us.anthropic.claude-opus-4-7': { input: 0.006, output: '0.03' },
        'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123': { input: 0.001, output: 0.002, cacheRead: 0.0001, cacheWrite: 0.00125 },
        'meta.llama3-70b-instruct': null,
      }),
    });
    // A profile-specific override wins for that profile only; the entry's missing cache prices default to its input price.
    assert.deepEqual(book.priceCall('us.anthropic.claude-opus-4-7', ONE_EACH), {
      costNanos: 6000 + 30000 + 6000 + 6000,
      priced: true,
      priceKey: 'us.anthropic.claude-opus-4-7',
    });
    assert.equal(book.priceCall('eu.anthropic.claude-opus-4-7', ONE_EACH).priceKey, 'anthropic.claude-opus-4-7');
    assert.deepEqual(book.priceCall('arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123', ONE_EACH), {
      costNanos: 1000 + 2000 + 100 + 1250,
      priced: true,
      priceKey: 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123',
    });
    assert.equal(book.priceCall('meta.llama3-70b-instruct-v1:0', ONE_EACH).priced, false);
    assert.equal(book.priceCall('meta.llama3-8b-instruct-v1:0', ONE_EACH).priced, true);
  });

  it('RELAY_PRICES_FILE is read, and RELAY_PRICES_JSON applies over it', () => {
    const files: Record<string, string> = {
      '/etc/relay/prices.json': JSON.stringify({ 'acme.model': { input: 0.001, output: 0.001 }, 'acme.other': { input: 0.002, output: 0.002 } }),
    };
    const book = loadPriceBook(
      { RELAY_PRICES_FILE: '/etc/relay/prices.json', RELAY_PRICES_JSON: '{"acme.other": {"input": 0.003, "output": 0.003}}' },
      (path) => files[path] ?? noFile(path),
    );
    assert.equal(book.priceCall('acme.model-v1:0', ONE_EACH).costNanos, 4000);
    assert.equal(book.priceCall('acme.other', ONE_EACH).costNanos, 12000);
  });

  it('no configuration: the built-in table', () => {
    assert.equal(loadPriceBook({}).keys().length, loadPriceBook({ RELAY_PRICES_JSON: '  ' }).keys().length);
  });

  const failures: Array<[string, Record<string, string>, RegExp]> = [
    ['not JSON', { RELAY_PRICES_JSON: '{"a": ' }, /^RELAY_PRICES_JSON: not valid JSON/],
    ['not an object', { RELAY_PRICES_JSON: '[1,2]' }, /^RELAY_PRICES_JSON: must be a JSON object mapping model IDs to prices/],
    ['entry not an object', { RELAY_PRICES_JSON: '{"acme.m": 0.003}' }, /^RELAY_PRICES_JSON "acme.m": must be an object/],
    ['missing output', { RELAY_PRICES_JSON: '{"acme.m": {"input": 0.003}}' }, /^RELAY_PRICES_JSON "acme.m".output: is required/],
    ['negative', { RELAY_PRICES_JSON: '{"acme.m": {"input": -1, "output": 1}}' }, /^RELAY_PRICES_JSON "acme.m".input: must be a finite, non-negative number/],
    [
      'not a number',
      { RELAY_PRICES_JSON: '{"acme.m": {"input": "cheap", "output": 1}}' },
      /^RELAY_PRICES_JSON "acme.m".input: must be a non-negative decimal number, got "cheap"/,
    ],
    ['boolean', { RELAY_PRICES_JSON: '{"acme.m": {"input": true, "output": 1}}' }, /^RELAY_PRICES_JSON "acme.m".input: must be a number or decimal string/],
    [
      'too precise',
      { RELAY_PRICES_JSON: '{"acme.m": {"input": 0.0000000001, "output": 1}}' },
      /^RELAY_PRICES_JSON "acme.m".input: 1e-10 USD per 1K tokens is finer than 1e-12 USD per token/,
    ],
    [
      'unknown field (typo)',
      { RELAY_PRICES_JSON: '{"acme.m": {"input": 1, "output": 1, "cache_read": 0.1}}' },
      /^RELAY_PRICES_JSON "acme.m".cache_read: unknown field/,
    ],
    [
      'bad long context',
      { RELAY_PRICES_JSON: '{"acme.m": {"input": 1, "output": 1, "longContext": {"input": 2, "output": 2}}}' },
      /^RELAY_PRICES_JSON "acme.m".longContext.aboveInputTokens: must be a positive integer/,
    ],
    ['unreadable file', { RELAY_PRICES_FILE: '/nope.json' }, /^RELAY_PRICES_FILE: cannot read \/nope.json: ENOENT/],
  ];
  for (const [name, env, message] of failures) {
    it(`refuses ${name} with a clear error`, () => {
      assert.throws(
        () => loadPriceBook(env, noFile),
        (error: unknown) => {
          assert.ok(error instanceof PriceConfigError, String(error));
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  it('names the file in errors about its content', () => {
    assert.throws(
      () => loadPriceBook({ RELAY_PRICES_FILE: '/p.json' }, () => '{"x.y": {"output": 1}}'),
      /^PriceConfigError: RELAY_PRICES_FILE \(\/p.json\) "x.y".input: is required/,
    );
  });
});
