import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { selectMeter } from '../../lambda/metering/index.js';
import { FrameReader } from '../../lambda/metering/frames.js';
import type { MeterResult } from '../../lambda/pipeline.js';
import {
  agentFrames,
  concatBytes,
  converseStreamFrames,
  cutAt,
  eventFrame,
  everySplit,
  exceptionFrame,
  invokeStreamFrames,
  oneBytePerChunk,
  route,
  run,
} from './meter-fixtures.js';

const ES = { 'content-type': 'application/vnd.amazon.eventstream' };
const meterFor = (operation: string, status = 200) => selectMeter(route(operation), status, ES);

const CONVERSE_USAGE = { inputTokens: 1234, outputTokens: 567, cacheReadInputTokens: 8000, cacheWriteInputTokens: 300 };
const converseBytes = concatBytes(converseStreamFrames(CONVERSE_USAGE));
const converseExpected: MeterResult = { usage: CONVERSE_USAGE, reported: true };

const METRICS = { inputTokenCount: 42, outputTokenCount: 17, cacheReadInputTokenCount: 100, cacheWriteInputTokenCount: 5 };
const invokeBytes = concatBytes(invokeStreamFrames(METRICS));
const invokeExpected: MeterResult = {
  usage: { inputTokens: 42, outputTokens: 17, cacheReadInputTokens: 100, cacheWriteInputTokens: 5 },
  reported: true,
};

const NOTHING: MeterResult = { usage: { inputTokens: 0, outputTokens: 0, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 }, reported: false };
/** A model stream that ended before its usage report, with no content and no input count in it. */
const UNKNOWN: MeterResult = { ...NOTHING, estimated: true, inputUnknown: true };

describe('ConverseStream meter', () => {
  it('reads the metadata event usage from the whole stream in one chunk', () => {
    assert.deepEqual(run(meterFor('ConverseStream'), [converseBytes]), converseExpected);
  });

  it('gives the same result for a split at every byte boundary', () => {
    for (const chunks of everySplit(converseBytes)) {
      assert.deepEqual(run(meterFor('ConverseStream'), chunks), converseExpected, `split at ${chunks[0]!.byteLength}`);
    }
  });

  it('gives the same result one byte per chunk', () => {
    assert.deepEqual(run(meterFor('ConverseStream'), oneBytePerChunk(converseBytes)), converseExpected);
  });

  it('handles several frames per chunk and frames straddling chunks', () => {
    const frames = converseStreamFrames(CONVERSE_USAGE);
    const twoAndAHalf = frames[0]!.byteLength + frames[1]!.byteLength + Math.floor(frames[2]!.byteLength / 2);
    assert.deepEqual(run(meterFor('ConverseStream'), cutAt(converseBytes, [twoAndAHalf, twoAndAHalf + 3, converseBytes.byteLength - 7])), converseExpected);
  });

  it('does not depend on the caller keeping its chunk buffers intact', () => {
    // The relay may reuse or hand off its chunk after observe(): the meter must have copied what it keeps.
    const meter = meterFor('ConverseStream');
    for (const piece of cutAt(converseBytes, [5, 333, 334, 900])) {
      const chunk = new Uint8Array(piece);
      meter.observe(chunk);
      chunk.fill(0xff);
    }
    assert.deepEqual(meter.finish(), converseExpected);
  });

  it('takes the model a prompt router chose from the metadata trace', () => {
    const routed = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0';
    const bytes = concatBytes(converseStreamFrames(CONVERSE_USAGE, 2, { promptRouter: { invokedModelId: routed } }));
    assert.deepEqual(run(meterFor('ConverseStream'), oneBytePerChunk(bytes)), { ...converseExpected, responseModel: routed });
  });

  it('stops counting at an exception frame: an estimate of what came before when it precedes metadata', () => {
    const frames = converseStreamFrames(CONVERSE_USAGE);
    const bytes = concatBytes([...frames.slice(0, 4), exceptionFrame('throttlingException', 'Too many tokens'), ...frames.slice(4)]);
    // Three deltas of `token i ü€ ` (14 UTF-8 bytes each) were relayed: ceil(42 / 2).
    const estimate: MeterResult = { usage: { ...UNKNOWN.usage, outputTokens: 21 }, reported: false, estimated: true, inputUnknown: true };
    for (const chunks of everySplit(bytes)) assert.deepEqual(run(meterFor('ConverseStream'), chunks), estimate);
  });

  it('keeps usage reported before an exception frame', () => {
    const bytes = concatBytes([...converseStreamFrames(CONVERSE_USAGE), exceptionFrame('internalServerException', 'late')]);
    assert.deepEqual(run(meterFor('ConverseStream'), oneBytePerChunk(bytes)), converseExpected);
  });

  it('estimates a stream cut off before the metadata event (client gone)', () => {
    const cut = converseBytes.subarray(0, converseBytes.byteLength - 20);
    const result = run(meterFor('ConverseStream'), [cut]);
    assert.equal(result.estimated, true);
    assert.equal(result.inputUnknown, true);
    assert.equal(result.usage.outputTokens, (10 * 14 + 2 * 15) / 2); // `token i ü€ `: 14 UTF-8 bytes, 15 from i = 10
  });

  it('estimates when the metadata frame fails its CRC, and never throws', () => {
    const corrupt = new Uint8Array(converseBytes);
    corrupt[corrupt.byteLength - 30] ^= 0xff; // inside the metadata frame's body
    assert.deepEqual(run(meterFor('ConverseStream'), [corrupt]), run(meterFor('ConverseStream'), [converseBytes.subarray(0, converseBytes.byteLength - 20)]));
  });

  it('survives garbage without throwing', () => {
    const garbage = [
      new TextEncoder().encode('{"message":"this is JSON, not an event stream"}'),
      new Uint8Array([0, 0, 0, 1, 2, 3]),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
      new Uint8Array(0),
    ];
    // A 200 stream that carries no usage is flagged: Bedrock may have billed its input.
    for (const bytes of garbage) {
      assert.deepEqual(run(meterFor('ConverseStream'), [bytes]), UNKNOWN);
      assert.deepEqual(run(meterFor('ConverseStream'), oneBytePerChunk(bytes)), UNKNOWN);
    }
  });

  it('does not buffer a frame whose length prefix is absurd', () => {
    const reader = new FrameReader(1024);
    const held: Uint8Array[] = [];
    assert.equal(
      reader.push(new Uint8Array([0x7f, 0xff, 0xff, 0xff, 1, 2, 3]), (f) => held.push(f)),
      false,
    );
    assert.equal(reader.healthy, false);
    assert.equal(reader.midFrame, false);
    assert.equal(
      reader.push(new Uint8Array(4096), (f) => held.push(f)),
      false,
    );
    assert.equal(held.length, 0);
  });

  it('keeps only the partial frame between chunks', () => {
    const reader = new FrameReader();
    const frames: Uint8Array[] = [];
    const bytes = concatBytes(converseStreamFrames(CONVERSE_USAGE, 3));
    reader.push(bytes.subarray(0, 10), (f) => frames.push(f));
    assert.equal(reader.midFrame, true);
    reader.push(bytes.subarray(10), (f) => frames.push(new Uint8Array(f)));
    assert.equal(reader.midFrame, false);
    assert.equal(frames.length, 7);
    assert.deepEqual(concatBytes(frames), bytes);
  });

  it('reports nothing for a non-2xx answer', () => {
    assert.deepEqual(run(meterFor('ConverseStream', 400), [converseBytes]), NOTHING);
    assert.deepEqual(run(meterFor('ConverseStream', 503), [converseBytes]), NOTHING);
  });
});

describe('InvokeModelWithResponseStream meter', () => {
  it('reads amazon-bedrock-invocationMetrics from the last chunk, at every split', () => {
    for (const chunks of everySplit(invokeBytes)) {
      assert.deepEqual(run(meterFor('InvokeModelWithResponseStream'), chunks), invokeExpected, `split at ${chunks[0]!.byteLength}`);
    }
  });

  it('one byte per chunk', () => {
    assert.deepEqual(run(meterFor('InvokeModelWithResponseStream'), oneBytePerChunk(invokeBytes)), invokeExpected);
  });

  it('leaves the optional cache counts at zero when the model reports none', () => {
    const bytes = concatBytes(invokeStreamFrames({ inputTokenCount: 3, outputTokenCount: 4 }));
    assert.deepEqual(run(meterFor('InvokeModelWithResponseStream'), [bytes]), {
      usage: { inputTokens: 3, outputTokens: 4, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
      reported: true,
    });
  });

  it("estimates when a modelStreamErrorException ends the stream, keeping message_start's input count", () => {
    const frames = invokeStreamFrames(METRICS);
    const bytes = concatBytes([...frames.slice(0, 5), exceptionFrame('modelStreamErrorException', 'model failed')]);
    // message_start (input 42, output 1), then `tok0`…`tok3`: 4 deltas of 4 bytes, ceil(16 / 2) = 8.
    const estimate: MeterResult = {
      usage: { inputTokens: 42, outputTokens: 8, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
      reported: true,
      estimated: true,
    };
    for (const chunks of everySplit(bytes)) assert.deepEqual(run(meterFor('InvokeModelWithResponseStream'), chunks), estimate);
  });

  it("estimates when the stream stops before the last chunk: max(message_delta's count, the estimate)", () => {
    const frames = invokeStreamFrames(METRICS);
    assert.deepEqual(run(meterFor('InvokeModelWithResponseStream'), [concatBytes(frames.slice(0, -1))]), {
      // message_delta said 17; `tok0`…`tok11` are 50 bytes, ceil(50 / 2) = 25.
      usage: { inputTokens: 42, outputTokens: 25, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
      reported: true,
      estimated: true,
    });
  });

  it('flags a chunk whose payload is not base64 JSON', () => {
    const bytes = concatBytes([eventFrame('chunk', { bytes: 'not base64 json!' })]);
    assert.deepEqual(run(meterFor('InvokeModelWithResponseStream'), [bytes]), UNKNOWN);
  });
});

describe('InvokeAgent meter', () => {
  const agentBytes = concatBytes(agentFrames());
  const expected: MeterResult = {
    usage: { inputTokens: 1500, outputTokens: 170, cacheReadInputTokens: 0, cacheWriteInputTokens: 0 },
    reported: true,
    responseModel: 'anthropic.claude-3-haiku-20240307-v1:0',
  };

  it('sums model invocation usage over trace events, at every split', () => {
    for (const chunks of everySplit(agentBytes)) assert.deepEqual(run(meterFor('InvokeAgent'), chunks), expected);
  });

  it('InvokeInlineAgent reads the same traces', () => {
    assert.deepEqual(run(meterFor('InvokeInlineAgent'), oneBytePerChunk(agentBytes)), expected);
  });

  it('reports nothing without traces (trace disabled)', () => {
    const bytes = concatBytes([eventFrame('chunk', { bytes: Buffer.from('hello').toString('base64') })]);
    assert.deepEqual(run(meterFor('InvokeAgent'), [bytes]), NOTHING);
  });
});

describe('event-stream operations without token usage', () => {
  it('RetrieveAndGenerateStream and OptimizePrompt are counted as requests only', () => {
    for (const operation of ['RetrieveAndGenerateStream', 'OptimizePrompt']) {
      assert.deepEqual(run(meterFor(operation), [converseBytes]), NOTHING, operation);
    }
  });
});
