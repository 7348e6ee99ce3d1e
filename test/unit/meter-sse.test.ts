import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectMeter } from '../../lambda/metering/index.js';
import { SseParser } from '../../lambda/metering/sse.js';
import type { MeterResult } from '../../lambda/pipeline.js';
import { ANTHROPIC_SSE_USAGE, anthropicSse, chatSse, cutAt, everySplit, oneBytePerChunk, responsesSse, route, run, utf8 } from './meter-fixtures.js';

const SSE = { 'content-type': 'text/event-stream; charset=utf-8' };
const NOTHING: MeterResult = { usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }, reported: false };
const UNKNOWN: MeterResult = { ...NOTHING, estimated: true, inputUnknown: true };

function everyWay(operation: string, text: string, expected: MeterResult): void {
  const bytes = utf8(text);
  for (const chunks of everySplit(bytes)) {
    assert.deepEqual(run(selectMeter(route(operation), 200, SSE), chunks), expected, `${operation} split at ${chunks[0]!.byteLength}`);
  }
  assert.deepEqual(run(selectMeter(route(operation), 200, SSE), oneBytePerChunk(bytes)), expected, `${operation} one byte per chunk`);
}

describe('Anthropic Messages SSE meter', () => {
  const expected: MeterResult = { usage: ANTHROPIC_SSE_USAGE, reported: true, responseModel: 'claude-opus-4-7' };

  for (const [name, eol] of [
    ['LF', '\n'],
    ['CRLF', '\r\n'],
    ['CR', '\r'],
  ] as const) {
    it(`message_start + message_delta usage, ${name} line endings, split at every byte`, () => {
      everyWay('AnthropicMessages', anthropicSse(eol), expected);
    });
  }

  it('reads the same on bedrock-mantle', () => {
    everyWay('MantleAnthropicMessages', anthropicSse(), expected);
  });

  it('takes the latest value per field when message_delta restates input and cache counts', () => {
    const text = [
      'event: message_start',
      'data: {"type":"message_start","message":{"model":"claude","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}',
      '',
      'event: message_delta',
      'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":7,"input_tokens":12,"cache_creation_input_tokens":3}}',
      '',
      'event: message_delta',
      'data: {"type":"message_delta","delta":{},"usage":{"output_tokens":9}}',
      '',
      '',
    ].join('\n');
    everyWay('AnthropicMessages', text, {
      usage: { inputTokens: 12, outputTokens: 9, cacheReadInputTokens: 5, cacheWriteInputTokens: 3 },
      reported: true,
      responseModel: 'claude',
    });
  });

  it('joins multi-line data fields before parsing', () => {
    const text =
      'event: message_start\ndata: {"type":"message_start",\ndata: "message":{"usage":{"input_tokens":4,"output_tokens":1}}}\n\n' +
      ': a comment line\nevent: message_delta\nid: 7\nretry: 10\ndata:{"type":"message_delta","usage":{"output_tokens":2}}\n\n';
    everyWay('AnthropicMessages', text, {
      usage: { inputTokens: 4, outputTokens: 2, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
      reported: true,
    });
  });

  it('keeps the usage seen before an error event, flagged as an estimate', () => {
    const text =
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":4,"output_tokens":1}}}\n\n' +
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, wor"}}\n\n' +
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n';
    everyWay('AnthropicMessages', text, {
      usage: { inputTokens: 4, outputTokens: 5, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }, // ceil(10 / 2)
      reported: true,
      estimated: true,
    });
  });

  it('reads a last event that the stream ends without a blank line', () => {
    const full = anthropicSse();
    const text = full.slice(0, full.indexOf('event: message_stop')).trimEnd(); // ends with message_delta's data line
    assert.ok(text.endsWith('"output_tokens":503}}'));
    everyWay('AnthropicMessages', text, expected);
  });
});

describe('OpenAI Chat Completions SSE meter', () => {
  const expected: MeterResult = {
    usage: { inputTokens: 100, outputTokens: 37, cacheReadInputTokens: 20, cacheWriteInputTokens: 0 },
    reported: true,
    responseModel: 'openai.gpt-oss-120b-1:0',
  };

  it('reads usage from the last chunk, at every split, LF and CRLF', () => {
    everyWay('OpenAIChatCompletions', chatSse(true), expected);
    everyWay('OpenAIChatCompletions', chatSse(true, '\r\n'), expected);
  });

  it('reads the same on every Chat Completions route', () => {
    for (const operation of ['ChatCompletions', 'MantleChatCompletions', 'MantleOpenAIChatCompletions']) {
      assert.deepEqual(run(selectMeter(route(operation), 200, SSE), [utf8(chatSse(true))]), expected, operation);
    }
  });

  it('estimates a stream without usage (what include-usage prevents), input unknown', () => {
    // Deltas `w1 `…`w5 `: 5 pieces, 15 bytes, ceil(15 / 2) = 8.
    everyWay('OpenAIChatCompletions', chatSse(false), { ...NOTHING, usage: { ...NOTHING.usage, outputTokens: 8 }, estimated: true, inputUnknown: true });
  });

  it('ignores "usage": null on ordinary chunks', () => {
    const text = `data: {"choices":[{"delta":{"content":"x"}}],"usage":null}\n\n${chatSse(true)}`;
    everyWay('OpenAIChatCompletions', text, expected);
  });
});

describe('OpenAI Responses SSE meter', () => {
  const expected: MeterResult = {
    usage: { inputTokens: 300, outputTokens: 60, cacheReadInputTokens: 100, cacheWriteInputTokens: 0 },
    reported: true,
    responseModel: 'openai.gpt-oss-120b',
  };

  it('reads response.completed usage, at every split', () => {
    everyWay('OpenAIResponses', responsesSse(), expected);
    everyWay('MantleResponses', responsesSse('\r\n'), expected);
  });

  it('reads usage from response.incomplete too', () => {
    const text = responsesSse()
      .replace('"type":"response.completed"', '"type":"response.incomplete"')
      .replace('event: response.completed', 'event: response.incomplete');
    everyWay('MantleOpenAIResponses', text, expected);
  });
});

describe('SSE meters on bad input', () => {
  it('never throw on garbage, and report nothing but the flag that usage is unknown', () => {
    const inputs = ['data: {not json "usage"}\n\n', '\u0000\u0001\u0002', 'data: [DONE]\n\n', '\r\n\r\n\r', '{"usage":{"input_tokens":1}}'];
    for (const text of inputs) {
      for (const operation of ['AnthropicMessages', 'OpenAIChatCompletions', 'OpenAIResponses']) {
        assert.deepEqual(run(selectMeter(route(operation), 200, SSE), oneBytePerChunk(utf8(text))), UNKNOWN, `${operation} ${JSON.stringify(text)}`);
      }
    }
  });

  it('reports nothing for non-2xx answers', () => {
    assert.deepEqual(run(selectMeter(route('AnthropicMessages'), 529, SSE), [utf8(anthropicSse())]), NOTHING);
    assert.deepEqual(run(selectMeter(route('OpenAIChatCompletions'), 429, SSE), [utf8(chatSse(true))]), NOTHING);
  });
});

describe('SseParser', () => {
  it('skips an event larger than its limit and keeps parsing after it', () => {
    const events: string[] = [];
    const parser = new SseParser((data) => events.push(data.toString()), 64);
    parser.push(utf8(`data: ${'x'.repeat(100)}\n\ndata: small\n\n`));
    parser.push(utf8(`data: ${'y'.repeat(40)}\ndata: ${'z'.repeat(40)}\n\ndata: after\n\n`));
    parser.end();
    assert.deepEqual(events, ['small', 'after']);
  });

  it('does not hold an overlong line in memory while it streams in', () => {
    const events: string[] = [];
    const parser = new SseParser((data) => events.push(data.toString()), 64);
    for (let i = 0; i < 100; i++) parser.push(utf8(`data: ${'a'.repeat(1000)}`));
    parser.push(utf8('\n\ndata: ok\n\n'));
    parser.end();
    assert.deepEqual(events, ['ok']);
  });

  it('does not depend on the caller keeping its chunk buffers intact', () => {
    const meter = selectMeter(route('AnthropicMessages'), 200, SSE);
    const text = anthropicSse('\r\n');
    // Cut between each data line and the blank line after it, so whole data lines wait in the parser.
    const offsets = [...text.matchAll(/\r\n\r\n/g)].map((m) => Buffer.byteLength(text.slice(0, m.index + 2)));
    for (const piece of cutAt(utf8(text), offsets)) {
      const chunk = new Uint8Array(piece);
      meter.observe(chunk);
      chunk.fill(0x41);
    }
    assert.deepEqual(meter.finish(), { usage: ANTHROPIC_SSE_USAGE, reported: true, responseModel: 'claude-opus-4-7' });
  });

  it('decodes UTF-8 split inside a character', () => {
    const events: string[] = [];
    const parser = new SseParser((data, name) => events.push(`${name()}=${data.toString()}`));
    const bytes = utf8('event: é\ndata: 🙂€\n\n');
    for (const chunk of oneBytePerChunk(bytes)) parser.push(chunk);
    parser.end();
    assert.deepEqual(events, ['é=🙂€']);
  });
});
