import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { selectMeter } from '../../lambda/metering/index.js';
import {
  agentFrames,
  anthropicSse,
  chatSse,
  concatBytes,
  converseStreamFrames,
  cutAt,
  exceptionFrame,
  invokeStreamFrames,
  responsesSse,
  route,
  run,
  utf8,
} from './meter-fixtures.js';

const ES = { 'content-type': 'application/vnd.amazon.eventstream' };
const SSE = { 'content-type': 'text/event-stream' };
const JSON_CT = { 'content-type': 'application/json' };

const streams: ReadonlyArray<{ name: string; operation: string; headers: Record<string, string>; bytes: Uint8Array }> = [
  {
    name: 'ConverseStream',
    operation: 'ConverseStream',
    headers: ES,
    bytes: concatBytes(converseStreamFrames({ inputTokens: 5, outputTokens: 6, cacheReadInputTokens: 7 }, 30)),
  },
  {
    name: 'ConverseStream + exception',
    operation: 'ConverseStream',
    headers: ES,
    bytes: concatBytes([...converseStreamFrames({ inputTokens: 5, outputTokens: 6 }, 5).slice(0, 3), exceptionFrame('validationException', 'no')]),
  },
  {
    name: 'InvokeModelWithResponseStream',
    operation: 'InvokeModelWithResponseStream',
    headers: ES,
    bytes: concatBytes(invokeStreamFrames({ inputTokenCount: 11, outputTokenCount: 12 }, 30)),
  },
  { name: 'InvokeAgent', operation: 'InvokeAgent', headers: ES, bytes: concatBytes(agentFrames()) },
  { name: 'Anthropic SSE (LF)', operation: 'AnthropicMessages', headers: SSE, bytes: utf8(anthropicSse()) },
  { name: 'Anthropic SSE (CRLF)', operation: 'MantleAnthropicMessages', headers: SSE, bytes: utf8(anthropicSse('\r\n')) },
  { name: 'Chat Completions SSE', operation: 'OpenAIChatCompletions', headers: SSE, bytes: utf8(chatSse(true, '\r\n', 20)) },
  { name: 'Responses SSE', operation: 'MantleResponses', headers: SSE, bytes: utf8(responsesSse()) },
];

const cuts = (length: number) => fc.array(fc.integer({ min: 0, max: length }), { maxLength: 40 });

describe('meters are independent of how the bytes are chunked', () => {
  for (const stream of streams) {
    it(stream.name, () => {
      const whole = run(selectMeter(route(stream.operation), 200, stream.headers), [stream.bytes]);
      fc.assert(
        fc.property(cuts(stream.bytes.byteLength), (offsets) => {
          assert.deepEqual(run(selectMeter(route(stream.operation), 200, stream.headers), cutAt(stream.bytes, offsets)), whole);
        }),
        { numRuns: 300 },
      );
    });

    it(`${stream.name}, cut off anywhere`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: stream.bytes.byteLength }), cuts(stream.bytes.byteLength), (end, offsets) => {
          const prefix = stream.bytes.subarray(0, end);
          const whole = run(selectMeter(route(stream.operation), 200, stream.headers), [prefix]);
          assert.deepEqual(
            run(
              selectMeter(route(stream.operation), 200, stream.headers),
              cutAt(
                prefix,
                offsets.map((o) => Math.min(o, end)),
              ),
            ),
            whole,
          );
        }),
        { numRuns: 200 },
      );
    });
  }
});

describe('meters never throw', () => {
  const operations: ReadonlyArray<[string, Record<string, string>]> = [
    ['Converse', JSON_CT],
    ['ConverseStream', ES],
    ['InvokeModelWithResponseStream', ES],
    ['InvokeAgent', ES],
    ['ApplyGuardrail', JSON_CT],
    ['AnthropicMessages', SSE],
    ['AnthropicMessages', JSON_CT],
    ['OpenAIChatCompletions', SSE],
    ['OpenAIResponses', SSE],
    ['OpenAIResponses', JSON_CT],
  ];

  it('on random bytes in random chunks', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.array(fc.integer({ min: 0, max: 600 }), { maxLength: 10 }), (bytes, offsets) => {
        for (const [operation, headers] of operations) {
          const result = run(selectMeter(route(operation), 200, headers), cutAt(bytes, offsets));
          assert.equal(typeof result.reported, 'boolean');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('on valid streams with bytes flipped', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...streams),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        cuts(2000),
        (stream, flips, offsets) => {
          const bytes = new Uint8Array(stream.bytes);
          for (const [at, mask] of flips) bytes[at % bytes.byteLength] ^= mask;
          const result = run(selectMeter(route(stream.operation), 200, stream.headers), cutAt(bytes, offsets));
          for (const value of Object.values(result.usage)) assert.ok(Number.isSafeInteger(value) && value >= 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
