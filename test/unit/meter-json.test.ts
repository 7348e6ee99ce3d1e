import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createMeter, selectMeter } from '../../lambda/metering/index.js';
import { JsonBodyMeter } from '../../lambda/metering/json-body.js';
import { converseUsage } from '../../lambda/metering/families.js';
import type { CallContext, MeterResult } from '../../lambda/pipeline.js';
import { RouteMatcher } from '../../lambda/routes/match.js';
import { everySplit, oneBytePerChunk, route, run, utf8 } from './meter-fixtures.js';

const JSON_CT = { 'content-type': 'application/json' };
const NOTHING: MeterResult = { usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }, reported: false };
const json = (value: unknown) => utf8(JSON.stringify(value, null, 1));

const converseBody = {
  output: { message: { role: 'assistant', content: [{ text: 'Hello "usage" ü' }] } },
  stopReason: 'end_turn',
  usage: { inputTokens: 125, outputTokens: 60, totalTokens: 2185, cacheReadInputTokens: 2000, cacheWriteInputTokens: 0 },
  metrics: { latencyMs: 630 },
};

describe('Converse (JSON body) meter', () => {
  const expected: MeterResult = {
    usage: { inputTokens: 125, outputTokens: 60, cacheReadInputTokens: 2000, cacheWriteInputTokens: 0 },
    reported: true,
  };

  it('reads usage at every split', () => {
    for (const chunks of everySplit(json(converseBody))) assert.deepEqual(run(selectMeter(route('Converse'), 200, JSON_CT), chunks), expected);
  });

  it('does not depend on the caller keeping its chunks', () => {
    const meter = selectMeter(route('Converse'), 200, JSON_CT);
    for (const piece of oneBytePerChunk(json(converseBody))) {
      const chunk = new Uint8Array(piece);
      meter.observe(chunk);
      chunk[0] = 0x20;
    }
    assert.deepEqual(meter.finish(), expected);
  });

  it('gives up on a body over its cap instead of buffering it', () => {
    const big = json({ ...converseBody, padding: 'x'.repeat(5000) });
    assert.deepEqual(run(new JsonBodyMeter(converseUsage, 1024), oneBytePerChunk(big)), NOTHING);
    assert.deepEqual(run(new JsonBodyMeter(converseUsage, big.byteLength), [big]), expected);
    // A model's answer over the cap is estimated from its size instead of counted as free.
    assert.deepEqual(run(new JsonBodyMeter(converseUsage, 1024, true), oneBytePerChunk(big)), {
      usage: { ...NOTHING.usage, outputTokens: Math.ceil(big.byteLength / 2) },
      reported: false,
      estimated: true,
      inputUnknown: true,
    });
  });

  it('reports nothing for JSON without usage', () => {
    for (const body of ['{"output":{}}', 'null', '[1,2]']) {
      assert.deepEqual(run(selectMeter(route('Converse'), 200, JSON_CT), [utf8(body)]), NOTHING, body);
    }
  });

  it('estimates from the bytes received when the body is cut off, not JSON or empty', () => {
    for (const body of ['<html>bad gateway</html>', JSON.stringify(converseBody).slice(0, -5), '']) {
      const bytes = Buffer.byteLength(body);
      assert.deepEqual(
        run(selectMeter(route('Converse'), 200, JSON_CT), [utf8(body)]),
        { usage: { ...NOTHING.usage, outputTokens: Math.ceil(bytes / 2) }, reported: false, estimated: true, inputUnknown: true },
        body,
      );
    }
  });

  it('does not estimate ApplyGuardrail, whose usage is policy units, not tokens', () => {
    assert.deepEqual(run(selectMeter(route('ApplyGuardrail'), 200, JSON_CT), [utf8('{"usage":{"topicPolicyUni')]), NOTHING);
  });

  it('ignores counts that are not non-negative integers', () => {
    const body = json({ usage: { inputTokens: -1, outputTokens: 1.5, cacheReadInputTokens: '7', cacheWriteInputTokens: 1e300 } });
    assert.deepEqual(run(selectMeter(route('Converse'), 200, JSON_CT), [body]), NOTHING);
  });

  it('reports nothing for a non-2xx answer even if it has a usage-like body', () => {
    assert.deepEqual(run(selectMeter(route('Converse'), 400, JSON_CT), [json(converseBody)]), NOTHING);
  });
});

describe('InvokeModel (headers) meter', () => {
  it('reads the token count headers, whatever their case', () => {
    const meter = selectMeter(route('InvokeModel'), 200, {
      'X-Amzn-Bedrock-Input-Token-Count': '1021',
      'x-amzn-bedrock-output-token-count': '77',
      'x-amzn-bedrock-cache-read-input-token-count': '4096',
      'x-amzn-bedrock-cache-write-input-token-count': '12',
      'content-type': 'application/json',
    });
    assert.deepEqual(run(meter, [utf8('{"anything": "the model said"}')]), {
      usage: { inputTokens: 1021, outputTokens: 77, cacheReadInputTokens: 4096, cacheWriteInputTokens: 12 },
      reported: true,
    });
  });

  it('reports nothing without the headers or with malformed ones', () => {
    assert.deepEqual(run(selectMeter(route('InvokeModel'), 200, JSON_CT), []), NOTHING);
    assert.deepEqual(run(selectMeter(route('InvokeModel'), 200, { 'x-amzn-bedrock-input-token-count': '12abc' }), []), NOTHING);
    assert.deepEqual(run(selectMeter(route('InvokeModel'), 500, { 'x-amzn-bedrock-input-token-count': '12' }), []), NOTHING);
  });
});

describe('ApplyGuardrail meter', () => {
  it('sums the billed policy units', () => {
    const body = json({
      action: 'GUARDRAIL_INTERVENED',
      outputs: [{ text: 'blocked' }],
      usage: {
        topicPolicyUnits: 1,
        contentPolicyUnits: 2,
        wordPolicyUnits: 1,
        sensitiveInformationPolicyUnits: 3,
        sensitiveInformationPolicyFreeUnits: 5,
        contextualGroundingPolicyUnits: 0,
        contentPolicyImageUnits: 4,
        automatedReasoningPolicyUnits: 2,
        automatedReasoningPolicies: 1,
      },
    });
    for (const chunks of everySplit(body)) {
      assert.deepEqual(run(selectMeter(route('ApplyGuardrail'), 200, JSON_CT), chunks), {
        usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0, guardrailUnits: 13 },
        reported: true,
      });
    }
  });
});

describe('compatible APIs without streaming (JSON bodies)', () => {
  it('Anthropic Messages', () => {
    const body = json({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-opus-4-7',
      content: [{ type: 'text', text: 'hi' }],
      usage: { input_tokens: 21, cache_creation_input_tokens: 1000, cache_read_input_tokens: 0, output_tokens: 8 },
    });
    for (const operation of ['AnthropicMessages', 'MantleAnthropicMessages']) {
      assert.deepEqual(run(selectMeter(route(operation), 200, JSON_CT), oneBytePerChunk(body)), {
        usage: { inputTokens: 21, outputTokens: 8, cacheReadInputTokens: 0, cacheWriteInputTokens: 1000 },
        reported: true,
        responseModel: 'claude-opus-4-7',
      });
    }
  });

  it('Chat Completions: cached prompt tokens are split out of prompt_tokens', () => {
    const body = json({
      id: 'c',
      object: 'chat.completion',
      model: 'openai.gpt-oss-20b-1:0',
      choices: [{ index: 0, message: { role: 'assistant', content: 'x' } }],
      usage: { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60, prompt_tokens_details: { cached_tokens: 30 } },
    });
    for (const operation of ['OpenAIChatCompletions', 'ChatCompletions', 'MantleChatCompletions', 'MantleOpenAIChatCompletions']) {
      assert.deepEqual(run(selectMeter(route(operation), 200, JSON_CT), [body]), {
        usage: { inputTokens: 20, outputTokens: 10, cacheReadInputTokens: 30, cacheWriteInputTokens: 0 },
        reported: true,
        responseModel: 'openai.gpt-oss-20b-1:0',
      });
    }
  });

  it('Chat Completions without prompt_tokens_details', () => {
    const body = json({ model: 'm', usage: { prompt_tokens: 5, completion_tokens: 6, prompt_tokens_details: null } });
    assert.deepEqual(run(selectMeter(route('ChatCompletions'), 200, JSON_CT), [body]), {
      usage: { inputTokens: 5, outputTokens: 6, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
      reported: true,
      responseModel: 'm',
    });
  });

  it('Responses', () => {
    const body = json({
      id: 'resp_1',
      object: 'response',
      model: 'openai.gpt-oss-120b',
      status: 'completed',
      usage: { input_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens: 4 },
    });
    for (const operation of ['OpenAIResponses', 'MantleResponses', 'MantleOpenAIResponses']) {
      assert.deepEqual(run(selectMeter(route(operation), 200, JSON_CT), [body]), {
        usage: { inputTokens: 9, outputTokens: 4, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
        reported: true,
        responseModel: 'openai.gpt-oss-120b',
      });
    }
  });
});

describe('operations counted as requests only', () => {
  it('report nothing, whatever the body says', () => {
    const body = json({ inputTokens: 99, usage: { inputTokens: 1, outputTokens: 1 } });
    for (const operation of [
      'CountTokens',
      'Retrieve',
      'RetrieveAndGenerate',
      'Rerank',
      'GetSession',
      'ListInferenceProfiles',
      'MantleListModels',
      'StartAsyncInvoke',
    ]) {
      assert.deepEqual(run(selectMeter(route(operation), 200, JSON_CT), [body]), NOTHING, operation);
    }
  });
});

describe('createMeter', () => {
  const call = (method: string, path: string): CallContext => ({
    request: { method, rawPath: path, rawQueryString: '', headers: {}, body: Buffer.alloc(0), requestId: 'r1' },
    match: new RouteMatcher().match(method, path, ''),
    principal: { kind: 'master' },
  });

  it('chooses by the matched route and never lets an error escape', () => {
    const meter = createMeter(call('POST', '/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse'), { status: 200, headers: JSON_CT });
    meter.observe(json(converseBody));
    assert.equal(meter.finish().usage.cacheReadInputTokens, 2000);
    // finish() is idempotent and later chunks are ignored.
    meter.observe(utf8('garbage'));
    assert.equal(meter.finish().reported, true);
  });

  it('picks SSE or JSON for the compatible APIs by content-type', () => {
    const ctx = call('POST', '/bedrock-mantle/anthropic/v1/messages');
    const sse = createMeter(ctx, { status: 200, headers: { 'content-type': 'text/event-stream' } });
    sse.observe(utf8('event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'));
    assert.equal(sse.finish().usage.inputTokens, 3);
    const plain = createMeter(ctx, { status: 200, headers: JSON_CT });
    plain.observe(utf8('{"type":"message","usage":{"input_tokens":4,"output_tokens":2}}'));
    assert.equal(plain.finish().usage.inputTokens, 4);
  });
});
