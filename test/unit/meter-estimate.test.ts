/**
 * Early disconnects are never free (issue 11, item 4): every streaming family, cut at every
 * event boundary (and inside events), must give an estimate flagged as such that is at least
 * what the content delivered so far accounts for, never less than a partial count the stream
 * reported, and with `inputUnknown` exactly when no input count had arrived. The whole stream
 * must still give Bedrock's exact counts, unflagged.
 *
 * Each fixture event says what generated content it carries; the expected figures are worked
 * out from that, independently of the meter's readers.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectMeter } from '../../lambda/metering/index.js';
import { estimateOutputTokens } from '../../lambda/metering/usage.js';
import type { MeterResult, TokenUsage } from '../../lambda/pipeline.js';
import { concatBytes, eventFrame, oneBytePerChunk, route, run, utf8 } from './meter-fixtures.js';

interface Ev {
  readonly bytes: Uint8Array;
  /** Generated content this event delivers (counted by the estimate). */
  readonly content?: readonly string[];
  readonly input?: number;
  /** A running output count the event reports. */
  readonly output?: number;
  /** The event carrying the final usage: from it on, the counts are exact. */
  readonly final?: boolean;
}

interface Family {
  readonly name: string;
  readonly operation: string;
  readonly headers: Record<string, string>;
  readonly events: readonly Ev[];
  readonly exact: MeterResult;
  /** SSE: an event cut after its data line but before the blank line is still read at the end. */
  readonly sse?: boolean;
}

const ES = { 'content-type': 'application/vnd.amazon.eventstream' };
const SSE = { 'content-type': 'text/event-stream' };
const usage = (inputTokens: number, outputTokens: number, cacheReadInputTokens = 0, cacheWriteInputTokens = 0): TokenUsage => ({
  inputTokens,
  outputTokens,
  cacheReadInputTokens,
  cacheWriteInputTokens,
});

const pad = (i: number) => 'PADDINGpaddingPADDING'.slice(0, 3 + (i % 17));
const ev = (eventType: string, payload: unknown, i: number, extra: Omit<Ev, 'bytes'> = {}): Ev => ({
  bytes: eventFrame(eventType, { ...(payload as object), p: pad(i) }),
  ...extra,
});
const chunk = (payload: unknown, i: number, extra: Omit<Ev, 'bytes'> = {}): Ev => ({
  bytes: eventFrame('chunk', { bytes: Buffer.from(JSON.stringify(payload)).toString('base64'), p: pad(i) }),
  ...extra,
});
const sse = (data: unknown, name?: string, extra: Omit<Ev, 'bytes'> = {}): Ev => ({
  bytes: utf8(`${name ? `event: ${name}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`),
  ...extra,
});

const TEXT = ['Hello', ', wor', 'ld — ', '世界', ' 🙂 ok', '"quoted" \\ \n'];
const METRICS = (input: number, output: number) => ({
  'amazon-bedrock-invocationMetrics': { inputTokenCount: input, outputTokenCount: output, invocationLatency: 1, firstByteLatency: 1 },
});

const families: Family[] = [
  {
    name: 'ConverseStream: reasoning, text, tool use',
    operation: 'ConverseStream',
    headers: ES,
    events: [
      ev('messageStart', { role: 'assistant' }, 0),
      ev('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { text: 'Let me think.' } } }, 1, { content: ['Let me think.'] }),
      ev('contentBlockDelta', { contentBlockIndex: 0, delta: { reasoningContent: { signature: 'c2lnbmF0dXJlc2lnbmF0dXJl' } } }, 2),
      ev('contentBlockStop', { contentBlockIndex: 0 }, 3),
      ...TEXT.map((text, i) => ev('contentBlockDelta', { contentBlockIndex: 1, delta: { text } }, 4 + i, { content: [text] })),
      ev('contentBlockStop', { contentBlockIndex: 1 }, 20),
      ev('contentBlockStart', { contentBlockIndex: 2, start: { toolUse: { toolUseId: 'tooluse_1', name: 'get_weather' } } }, 21, { content: ['get_weather'] }),
      ev('contentBlockDelta', { contentBlockIndex: 2, delta: { toolUse: { input: '{"city":' } } }, 22, { content: ['{"city":'] }),
      ev('contentBlockDelta', { contentBlockIndex: 2, delta: { toolUse: { input: '"Paris"}' } } }, 23, { content: ['"Paris"}'] }),
      ev('contentBlockStop', { contentBlockIndex: 2 }, 24),
      ev('messageStop', { stopReason: 'tool_use' }, 25),
      ev('metadata', { usage: { inputTokens: 321, outputTokens: 45, totalTokens: 366 }, metrics: { latencyMs: 10 } }, 26, { final: true }),
    ],
    exact: { usage: usage(321, 45), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: Anthropic Claude',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      chunk(
        {
          type: 'message_start',
          message: { id: 'm', type: 'message', role: 'assistant', model: 'claude', content: [], usage: { input_tokens: 77, output_tokens: 1 } },
        },
        0,
        { input: 77, output: 1 },
      ),
      chunk({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }, 1),
      chunk({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Hmm, weather.' } }, 2, { content: ['Hmm, weather.'] }),
      chunk({ type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCkYIARgCIkD' } }, 3),
      chunk({ type: 'content_block_stop', index: 0 }, 4),
      chunk({ type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } }, 5),
      ...TEXT.map((text, i) => chunk({ type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text } }, 6 + i, { content: [text] })),
      chunk({ type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } }, 20, {
        content: ['get_weather'],
      }),
      chunk({ type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city": "Paris"}' } }, 21, {
        content: ['{"city": "Paris"}'],
      }),
      chunk({ type: 'content_block_stop', index: 2 }, 22),
      chunk({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }, 23, { output: 9 }),
      chunk({ type: 'message_stop', ...METRICS(77, 51) }, 24, { final: true }),
    ],
    exact: { usage: usage(77, 51), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: Amazon Nova',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      chunk({ messageStart: { role: 'assistant' } }, 0),
      ...TEXT.map((text, i) => chunk({ contentBlockDelta: { delta: { text }, contentBlockIndex: 0 } }, 1 + i, { content: [text] })),
      chunk({ contentBlockStop: { contentBlockIndex: 0 } }, 10),
      chunk({ contentBlockDelta: { delta: { reasoningContent: { text: 'why' } }, contentBlockIndex: 1 } }, 11, { content: ['why'] }),
      chunk({ contentBlockStart: { start: { toolUse: { toolUseId: 't', name: 'lookup' } }, contentBlockIndex: 2 } }, 12, { content: ['lookup'] }),
      chunk({ contentBlockDelta: { delta: { toolUse: { input: '{"q":"x"}' } }, contentBlockIndex: 2 } }, 13, { content: ['{"q":"x"}'] }),
      chunk({ messageStop: { stopReason: 'end_turn' } }, 14),
      chunk({ metadata: { usage: { inputTokens: 19, outputTokens: 30 } }, ...METRICS(19, 30) }, 15, { final: true }),
    ],
    exact: { usage: usage(19, 30), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: Meta Llama',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      ...TEXT.map((generation, i) =>
        chunk({ generation, prompt_token_count: i === 0 ? 12 : null, generation_token_count: i + 1, stop_reason: null }, i, {
          content: [generation],
          output: i + 1,
          ...(i === 0 ? { input: 12 } : {}),
        }),
      ),
      chunk({ generation: '', prompt_token_count: null, generation_token_count: 7, stop_reason: 'stop', ...METRICS(12, 7) }, 9, { final: true }),
    ],
    exact: { usage: usage(12, 7), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: Amazon Titan Text',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      ...TEXT.map((outputText, i) =>
        chunk({ outputText, index: 0, totalOutputTextTokenCount: i + 2, completionReason: null, inputTextTokenCount: 8 }, i, {
          content: [outputText],
          output: i + 2,
          input: 8,
        }),
      ),
      chunk({ outputText: '', index: 0, totalOutputTextTokenCount: 9, completionReason: 'FINISH', inputTextTokenCount: 8, ...METRICS(8, 9) }, 9, {
        final: true,
      }),
    ],
    exact: { usage: usage(8, 9), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: Mistral',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      ...TEXT.map((text, i) => chunk({ outputs: [{ text, stop_reason: null }] }, i, { content: [text] })),
      chunk({ outputs: [{ text: '', stop_reason: 'stop' }], ...METRICS(14, 6) }, 9, { final: true }),
    ],
    exact: { usage: usage(14, 6), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: OpenAI-shaped (gpt-oss, DeepSeek, Mistral Large)',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      chunk({ choices: [{ index: 0, delta: { role: 'assistant', reasoning_content: 'ponder' } }] }, 0, { content: ['ponder'] }),
      ...TEXT.map((content, i) => chunk({ choices: [{ index: 0, delta: { content } }] }, 1 + i, { content: [content] })),
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], ...METRICS(30, 12) }, 9, { final: true }),
    ],
    exact: { usage: usage(30, 12), reported: true },
  },
  {
    name: 'InvokeModelWithResponseStream: Cohere Command R',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    events: [
      chunk({ is_finished: false, event_type: 'stream-start', generation_id: 'g' }, 0),
      ...TEXT.map((text, i) => chunk({ is_finished: false, event_type: 'text-generation', text }, 1 + i, { content: [text] })),
      // stream-end restates the whole text: not counted twice.
      chunk({ is_finished: true, event_type: 'stream-end', response: { text: TEXT.join('') }, finish_reason: 'COMPLETE', ...METRICS(40, 8) }, 9, {
        final: true,
      }),
    ],
    exact: { usage: usage(40, 8), reported: true },
  },
  {
    name: 'Anthropic Messages SSE: thinking, text, tool use',
    operation: 'AnthropicMessages',
    headers: SSE,
    sse: true,
    events: [
      sse(
        {
          type: 'message_start',
          message: {
            id: 'm',
            type: 'message',
            role: 'assistant',
            model: 'claude-x',
            content: [],
            usage: { input_tokens: 200, cache_read_input_tokens: 1000, output_tokens: 1 },
          },
        },
        'message_start',
        { input: 200, output: 1 },
      ),
      sse({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '' } }, 'content_block_start'),
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Think "usage" through.' } }, 'content_block_delta', {
        content: ['Think "usage" through.'],
      }),
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQBCkYIARgCIkD' } }, 'content_block_delta'),
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'),
      sse({ type: 'ping' }, 'ping'),
      ...TEXT.map((text) => sse({ type: 'content_block_delta', index: 1, delta: { type: 'text_delta', text } }, 'content_block_delta', { content: [text] })),
      sse(
        { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } },
        'content_block_start',
        { content: ['get_weather'] },
      ),
      sse({ type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{"city":"Paris"}' } }, 'content_block_delta', {
        content: ['{"city":"Paris"}'],
      }),
      sse({ type: 'content_block_stop', index: 2 }, 'content_block_stop'),
      sse({ type: 'message_delta', delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 64 } }, 'message_delta', { final: true }),
      sse({ type: 'message_stop' }, 'message_stop'),
    ],
    exact: { usage: usage(200, 64, 1000), reported: true, responseModel: 'claude-x' },
  },
  {
    name: 'OpenAI Chat Completions SSE: text and tool calls',
    operation: 'OpenAIChatCompletions',
    headers: SSE,
    sse: true,
    events: [
      sse({ id: 'c', object: 'chat.completion.chunk', model: 'gpt', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }], usage: null }),
      ...TEXT.map((content) =>
        sse({ id: 'c', object: 'chat.completion.chunk', model: 'gpt', choices: [{ index: 0, delta: { content } }], usage: null }, undefined, {
          content: [content],
        }),
      ),
      sse(
        {
          id: 'c',
          model: 'gpt',
          choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }] } }],
          usage: null,
        },
        undefined,
        { content: ['get_weather'] },
      ),
      sse(
        { id: 'c', model: 'gpt', choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":"Paris"}' } }] } }], usage: null },
        undefined,
        { content: ['{"city":"Paris"}'] },
      ),
      sse({ id: 'c', model: 'gpt', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }], usage: null }),
      sse(
        { id: 'c', model: 'gpt', choices: [], usage: { prompt_tokens: 90, completion_tokens: 33, prompt_tokens_details: { cached_tokens: 10 } } },
        undefined,
        { final: true },
      ),
      sse('[DONE]'),
    ],
    exact: { usage: usage(80, 33, 10), reported: true, responseModel: 'gpt' },
  },
  {
    name: 'OpenAI Responses SSE: reasoning, text, function call',
    operation: 'OpenAIResponses',
    headers: SSE,
    sse: true,
    events: [
      sse({ type: 'response.created', sequence_number: 0, response: { id: 'r', status: 'in_progress', output: [], usage: null } }, 'response.created'),
      sse({ type: 'response.reasoning_text.delta', sequence_number: 1, item_id: 'rs', delta: 'consider' }, 'response.reasoning_text.delta', {
        content: ['consider'],
      }),
      ...TEXT.map((delta, i) =>
        sse({ type: 'response.output_text.delta', sequence_number: 2 + i, item_id: 'msg', delta }, 'response.output_text.delta', { content: [delta] }),
      ),
      // The *.done events restate what the deltas carried: not counted twice.
      sse({ type: 'response.output_text.done', sequence_number: 10, item_id: 'msg', text: TEXT.join('') }, 'response.output_text.done'),
      sse(
        { type: 'response.function_call_arguments.delta', sequence_number: 11, item_id: 'fc', delta: '{"city":"Paris"}' },
        'response.function_call_arguments.delta',
        { content: ['{"city":"Paris"}'] },
      ),
      sse(
        { type: 'response.function_call_arguments.done', sequence_number: 12, item_id: 'fc', arguments: '{"city":"Paris"}' },
        'response.function_call_arguments.done',
      ),
      sse(
        {
          type: 'response.completed',
          sequence_number: 13,
          response: {
            id: 'r',
            model: 'gpt-r',
            status: 'completed',
            output: [],
            usage: { input_tokens: 50, input_tokens_details: { cached_tokens: 0 }, output_tokens: 41 },
          },
        },
        'response.completed',
        { final: true },
      ),
    ],
    exact: { usage: usage(50, 41), reported: true, responseModel: 'gpt-r' },
  },
];

/** What the meter must at least give after the first `k` whole events (before the final one). */
function bound(events: readonly Ev[], k: number): { bytes: number; pieces: number; output: number; input: boolean } {
  let bytes = 0;
  let pieces = 0;
  let output = 0;
  let input = false;
  for (const e of events.slice(0, k)) {
    for (const text of e.content ?? []) {
      bytes += Buffer.byteLength(text);
      if (text.length > 0) pieces++;
    }
    if (e.output !== undefined) output = e.output;
    if (e.input !== undefined) input = true;
  }
  return { bytes, pieces, output, input };
}

function meterOf(family: Family, bytes: Uint8Array, chunks?: Uint8Array[]): MeterResult {
  return run(selectMeter(route(family.operation), 200, family.headers), chunks ?? [bytes]);
}

function assertEstimate(family: Family, result: MeterResult, k: number, where: string): void {
  const b = bound(family.events, k);
  assert.equal(result.estimated, true, `${where}: flagged`);
  assert.equal(result.inputUnknown === true, !b.input, `${where}: inputUnknown iff no input count had arrived`);
  if (!b.input) assert.equal(result.usage.inputTokens, 0, where);
  // The estimate, worked out here from the content each event carries.
  const expected = Math.max(estimateOutputTokens(b.bytes, b.pieces), b.output);
  assert.equal(result.usage.outputTokens, expected, `${where}: output estimate`);
  // Never below the partial count reported, one token per delta, nor a generous 4 bytes per token.
  assert.ok(result.usage.outputTokens >= b.output && result.usage.outputTokens >= b.pieces && result.usage.outputTokens >= Math.ceil(b.bytes / 4), where);
}

describe('early disconnects are never free: every family, cut anywhere', () => {
  for (const family of families) {
    const whole = concatBytes(family.events.map((e) => e.bytes));
    const finalAt = family.events.findIndex((e) => e.final);
    assert.ok(finalAt > 0, family.name);

    describe(family.name, () => {
      it('the whole stream gives the exact counts, unflagged, however it is chunked', () => {
        assert.deepEqual(meterOf(family, whole), family.exact);
        assert.deepEqual(meterOf(family, whole, oneBytePerChunk(whole)), family.exact);
        // Cut right after the usage event (the client left before the stream's last bytes): still exact.
        const throughFinal = concatBytes(family.events.slice(0, finalAt + 1).map((e) => e.bytes));
        assert.deepEqual(meterOf(family, throughFinal), family.exact);
      });

      it('cut at every event boundary before the usage event: flagged, and at least what was delivered', () => {
        let previous = -1;
        for (let k = 0; k <= finalAt; k++) {
          const prefix = concatBytes(family.events.slice(0, k).map((e) => e.bytes));
          const result = meterOf(family, prefix);
          assertEstimate(family, result, k, `${family.name}, first ${k} events`);
          assert.ok(result.usage.outputTokens >= previous, 'never decreases as more is delivered');
          previous = result.usage.outputTokens;
        }
      });

      it('cut inside an event: the partial event counts for nothing it cannot vouch for', () => {
        for (let k = 0; k < finalAt; k++) {
          const before = concatBytes(family.events.slice(0, k).map((e) => e.bytes));
          const event = family.events[k]!.bytes;
          for (const cut of [1, Math.floor(event.byteLength / 2), event.byteLength - 1]) {
            const prefix = concatBytes([before, event.subarray(0, cut)]);
            const result = meterOf(family, prefix, oneBytePerChunk(prefix).length < 400 ? oneBytePerChunk(prefix) : undefined);
            const where = `${family.name}, event ${k} cut at ${cut}`;
            // An SSE event whose data line is whole but whose blank line is missing is read at the end.
            const dataWhole = family.sse === true && cut >= event.byteLength - 1;
            assertEstimate(family, result, dataWhole ? k + 1 : k, where);
          }
        }
      });
    });
  }
});

describe("the issue's two cases", () => {
  it('ConverseStream aborted after messageStop is no longer free', () => {
    const family = families[0]!;
    const upToStop = family.events.slice(0, -1).map((e) => e.bytes);
    const result = meterOf(family, concatBytes(upToStop));
    assert.equal(result.estimated, true);
    assert.equal(result.inputUnknown, true);
    assert.ok(result.usage.outputTokens > 0);
  });

  it("Anthropic SSE aborted after content_block_stop counts the content, not message_start's 1", () => {
    const text = ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop']
      .map(
        (name, i) =>
          `event: ${name}\ndata: ${JSON.stringify(
            i === 0
              ? { type: name, message: { model: 'c', usage: { input_tokens: 12, output_tokens: 1 } } }
              : i === 1
                ? { type: name, index: 0, content_block: { type: 'text', text: '' } }
                : i === 2
                  ? { type: name, index: 0, delta: { type: 'text_delta', text: 'Hello! How can I help you today?' } }
                  : { type: name, index: 0 },
          )}\n\n`,
      )
      .join('');
    const result = run(selectMeter(route('AnthropicMessages'), 200, SSE), [utf8(text)]);
    // Claude counts that sentence as 9 output tokens; the estimate errs upward: ceil(32 / 2).
    assert.deepEqual(result, { usage: usage(12, 16), reported: true, responseModel: 'c', estimated: true });
  });
});
