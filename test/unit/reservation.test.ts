/**
 * The worst case a call reserves (lambda/accounting/reservation.ts): input bound, the max-tokens
 * spellings of every API, the model's ceiling, S3 references, service tiers, and which calls
 * reserve at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_OUTPUT_CEILING, S3_REFERENCE_TOKENS, countS3References, reserves, statedMaxTokens, worstCase } from '../../lambda/accounting/reservation.js';
import type { CallContext } from '../../lambda/pipeline.js';
import { PriceBook } from '../../lambda/pricing/index.js';
import { RouteMatcher } from '../../lambda/routes/match.js';

const book = PriceBook.compile({
  'test.model-v1:0': { input: 0.001, output: 0.01, cacheWrite: 0.00125, maxOutputTokens: 8_000 },
  'test.uncapped-v1:0': { input: 0.001, output: 0.01 },
});
const matcher = new RouteMatcher();
const lookup = (model: string) => book.lookup(model)?.price;

function callOf(path: string, body: unknown, model?: string): CallContext {
  const bytes = Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return {
    request: { method: 'POST', rawPath: path, rawQueryString: '', headers: {}, body: bytes, requestId: 'r' },
    match: matcher.match('POST', path, ''),
    principal: { kind: 'master' },
    ...(model ? { model } : {}),
  };
}

describe('stated max tokens', () => {
  it('reads every API spelling, top level and in the config objects, and takes the largest', () => {
    assert.equal(statedMaxTokens({ inferenceConfig: { maxTokens: 300 } }), 300);
    assert.equal(statedMaxTokens({ max_tokens: 10 }), 10);
    assert.equal(statedMaxTokens({ max_completion_tokens: 11 }), 11);
    assert.equal(statedMaxTokens({ max_output_tokens: 12 }), 12);
    assert.equal(statedMaxTokens({ textGenerationConfig: { maxTokenCount: 13 } }), 13);
    assert.equal(statedMaxTokens({ inferenceConfig: { max_new_tokens: 14 } }), 14);
    assert.equal(statedMaxTokens({ max_gen_len: 15 }), 15);
    assert.equal(
      statedMaxTokens({ inferenceConfig: { maxTokens: 10 }, additionalModelRequestFields: { max_tokens: 9000 } }),
      9000,
      'Converse passes additionalModelRequestFields to the model',
    );
    assert.equal(statedMaxTokens({ max_tokens: 10, max_completion_tokens: 500 }), 500, 'two spellings: the larger bounds');
    assert.equal(statedMaxTokens({ max_tokens: 10.2 }), 11, 'a fraction rounds up');
    assert.equal(statedMaxTokens({ max_tokens: '100' }), undefined, 'not a number: not stated');
    assert.equal(statedMaxTokens({ max_tokens: -1 }), undefined);
    assert.equal(statedMaxTokens([1, 2]), undefined);
  });
});

describe('worst case', () => {
  const path = '/bedrock/model/test.model-v1:0/converse';

  it('input = body bytes at the dearest prompt rate, output = stated max tokens at the output rate, rounded up', () => {
    const body = { messages: [{ role: 'user', content: [{ text: 'hello' }] }], inferenceConfig: { maxTokens: 100 } };
    const call = callOf(path, body, 'test.model-v1:0');
    const bytes = Buffer.byteLength(JSON.stringify(body));
    const worst = worstCase(call, { lookup });
    assert.equal(worst.inputTokens, bytes);
    assert.equal(worst.outputTokens, 100);
    assert.equal(worst.statedMaxTokens, true);
    // cacheWrite $0.00125/1K = 1,250,000 pico-USD a token; output $0.01/1K = 10,000,000.
    assert.equal(worst.costNanos, Math.ceil((bytes * 1_250_000 + 100 * 10_000_000) / 1000));
  });

  it('no max tokens stated: the model ceiling from the price table, else the default', () => {
    assert.equal(worstCase(callOf(path, { messages: [] }, 'test.model-v1:0'), { lookup }).outputTokens, 8_000);
    const uncapped = worstCase(callOf('/bedrock/model/test.uncapped-v1:0/converse', { messages: [] }, 'test.uncapped-v1:0'), { lookup });
    assert.equal(uncapped.outputTokens, DEFAULT_OUTPUT_CEILING);
    assert.equal(uncapped.statedMaxTokens, false);
  });

  it('content named by S3 location adds an allowance per object', () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { image: { format: 'png', source: { s3Location: { uri: 's3://b/i.png' } } } },
            { video: { source: { s3Location: { uri: 's3://b/v.mp4' } } } },
          ],
        },
      ],
    };
    assert.equal(countS3References(body), 2);
    assert.equal(countS3References({ document: { source: { uri: 's3://b/d.pdf' } } }), 1, 'a bare s3:// uri counts too');
    const worst = worstCase(callOf(path, body, 'test.model-v1:0'), { lookup });
    assert.equal(worst.inputTokens, Buffer.byteLength(JSON.stringify(body)) + 2 * S3_REFERENCE_TOKENS);
  });

  it('a service tier multiplies the worst case; an unknown model reserves no money', () => {
    const call = callOf(path, { inferenceConfig: { maxTokens: 1000 } }, 'test.model-v1:0');
    const standard = worstCase(call, { lookup }).costNanos;
    assert.equal(worstCase(call, { lookup, tierMultiplier: () => 1.75 }).costNanos, Math.ceil(standard * 1.75));
    const unknown = worstCase(callOf('/bedrock/model/other.model-v1:0/converse', {}, 'other.model-v1:0'), { lookup });
    assert.deepEqual([unknown.costNanos, unknown.priced], [0, false]);
  });

  it('an absurd max tokens gives a worst case that no budget admits, not an error', () => {
    const worst = worstCase(callOf(path, { inferenceConfig: { maxTokens: 1e300 } }, 'test.model-v1:0'), { lookup, tierMultiplier: () => 1.75 });
    assert.equal(worst.costNanos, Number.MAX_SAFE_INTEGER);
  });

  it('only generating operations with a model reserve', () => {
    assert.equal(reserves(callOf(path, {}, 'test.model-v1:0')), true);
    assert.equal(reserves(callOf('/bedrock/model/test.model-v1:0/count-tokens', {}, 'test.model-v1:0')), false);
    assert.equal(reserves(callOf('/bedrock/anthropic/v1/messages', {}, 'test.model-v1:0')), true);
    assert.equal(reserves(callOf(path, {})), false, 'no model: nothing to price');
  });
});
