/**
 * Realistic Bedrock response bytes for the meter tests and the meter benchmark: AWS event
 * streams encoded with @smithy/eventstream-codec, and the SSE streams of the compatible APIs.
 * (Not a test file itself: node's runner picks up only *.test.ts.)
 */
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { Meter, MeterResult } from '../../lambda/pipeline.js';
import { ROUTES, type RouteSpec } from '../../lambda/routes/table.js';

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

export function route(operation: string): RouteSpec {
  const found = ROUTES.find((r) => r.operation === operation);
  if (!found) throw new Error(`no route ${operation}`);
  return found;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

export function eventFrame(eventType: string, payload: unknown): Uint8Array {
  return codec.encode({
    headers: {
      ':event-type': { type: 'string', value: eventType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'event' },
    },
    body: utf8(JSON.stringify(payload)),
  });
}

export function exceptionFrame(exceptionType: string, message: string): Uint8Array {
  return codec.encode({
    headers: {
      ':exception-type': { type: 'string', value: exceptionType },
      ':content-type': { type: 'string', value: 'application/json' },
      ':message-type': { type: 'string', value: 'exception' },
    },
    body: utf8(JSON.stringify({ message })),
  });
}

/** Bedrock pads event bodies with a random-length `p` field so sizes leak nothing. */
function pad(i: number): string {
  return 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123'.slice(0, 5 + ((i * 7) % 40));
}

export interface ConverseUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

export function converseStreamFrames(usage: ConverseUsage, deltas = 12, trace?: unknown): Uint8Array[] {
  const frames = [eventFrame('messageStart', { role: 'assistant', p: pad(0) })];
  for (let i = 0; i < deltas; i++) {
    frames.push(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: `token ${i} ü€ ` }, p: pad(i + 1) }));
  }
  frames.push(eventFrame('contentBlockStop', { contentBlockIndex: 0, p: pad(98) }));
  frames.push(eventFrame('messageStop', { stopReason: 'end_turn', p: pad(99) }));
  frames.push(
    eventFrame('metadata', {
      usage: { ...usage, totalTokens: usage.inputTokens + usage.outputTokens + (usage.cacheReadInputTokens ?? 0) + (usage.cacheWriteInputTokens ?? 0) },
      metrics: { latencyMs: 812 },
      ...(trace ? { trace } : {}),
      p: pad(100),
    }),
  );
  return frames;
}

export interface InvocationMetrics {
  inputTokenCount: number;
  outputTokenCount: number;
  cacheReadInputTokenCount?: number;
  cacheWriteInputTokenCount?: number;
}

function chunkFrame(payload: unknown, i: number): Uint8Array {
  return eventFrame('chunk', { bytes: Buffer.from(JSON.stringify(payload)).toString('base64'), p: pad(i) });
}

/** InvokeModelWithResponseStream for an Anthropic model: the model's own events, metrics in the last chunk. */
export function invokeStreamFrames(metrics: InvocationMetrics, deltas = 12): Uint8Array[] {
  const frames = [
    chunkFrame(
      {
        type: 'message_start',
        message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude', usage: { input_tokens: metrics.inputTokenCount, output_tokens: 1 } },
      },
      0,
    ),
  ];
  for (let i = 0; i < deltas; i++) frames.push(chunkFrame({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `tok${i}` } }, i + 1));
  frames.push(chunkFrame({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: metrics.outputTokenCount } }, 98));
  frames.push(chunkFrame({ type: 'message_stop', 'amazon-bedrock-invocationMetrics': { ...metrics, invocationLatency: 900, firstByteLatency: 300 } }, 99));
  return frames;
}

/** InvokeAgent with trace enabled: two model invocations (pre-processing and orchestration). */
export function agentFrames(): Uint8Array[] {
  const input = (kind: string) =>
    eventFrame('trace', {
      agentId: 'AGENT1',
      agentAliasId: 'ALIAS1',
      sessionId: 's1',
      trace: { [kind]: { modelInvocationInput: { foundationModel: 'anthropic.claude-3-haiku-20240307-v1:0', text: '…', type: 'ORCHESTRATION' } } },
    });
  const output = (kind: string, usage: { inputTokens: number; outputTokens: number }) =>
    eventFrame('trace', {
      agentId: 'AGENT1',
      agentAliasId: 'ALIAS1',
      sessionId: 's1',
      // The raw model response is a string: a "usage" inside it must not be counted.
      trace: { [kind]: { modelInvocationOutput: { traceId: 't', metadata: { usage }, rawResponse: { content: '{"usage": {"inputTokens": 999}}' } } } },
    });
  return [
    input('preProcessingTrace'),
    output('preProcessingTrace', { inputTokens: 300, outputTokens: 20 }),
    eventFrame('trace', { agentId: 'AGENT1', trace: { orchestrationTrace: { rationale: { text: 'thinking' } } } }),
    input('orchestrationTrace'),
    output('orchestrationTrace', { inputTokens: 1200, outputTokens: 150 }),
    eventFrame('chunk', { bytes: Buffer.from('The answer is 42.').toString('base64') }),
  ];
}

// ── SSE ──

export function anthropicSse(eol = '\n'): string {
  const ev = (name: string, data: unknown) => `event: ${name}${eol}data: ${JSON.stringify(data)}${eol}${eol}`;
  return [
    ev('message_start', {
      type: 'message_start',
      message: {
        id: 'msg_01',
        type: 'message',
        role: 'assistant',
        model: 'claude-opus-4-7',
        content: [],
        stop_reason: null,
        usage: { input_tokens: 2095, cache_creation_input_tokens: 1500, cache_read_input_tokens: 30000, output_tokens: 1 },
      },
    }),
    ev('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
    ev('ping', { type: 'ping' }),
    ...Array.from({ length: 8 }, (_, i) =>
      ev('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: `Hé ${i} "usage" ` } }),
    ),
    ev('content_block_stop', { type: 'content_block_stop', index: 0 }),
    ev('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 503 } }),
    ev('message_stop', { type: 'message_stop' }),
  ].join('');
}

export const ANTHROPIC_SSE_USAGE = { inputTokens: 2095, outputTokens: 503, cacheReadInputTokens: 30000, cacheWriteInputTokens: 1500 };

export function chatChunk(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1760000000,
    model: 'openai.gpt-oss-120b-1:0',
    choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: '' } : { content: `w${i} ` }, finish_reason: null }],
    ...extra,
  };
}

/**
 * A streamed chat completion; with usage, the final usage-only chunk OpenAI-compatible servers
 * add, and (`nullUsage`) the `"usage": null` OpenAI puts on every other chunk once usage is asked for.
 */
export function chatSse(withUsage: boolean, eol = '\n', chunks = 6, nullUsage = false): string {
  const lines: string[] = [];
  const extra = withUsage && nullUsage ? { usage: null } : {};
  for (let i = 0; i < chunks; i++) lines.push(`data: ${JSON.stringify(chatChunk(i, extra))}${eol}${eol}`);
  lines.push(`data: ${JSON.stringify({ ...chatChunk(chunks), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], ...extra })}${eol}${eol}`);
  if (withUsage) {
    lines.push(
      `data: ${JSON.stringify({
        id: 'chatcmpl-1',
        object: 'chat.completion.chunk',
        created: 1760000000,
        model: 'openai.gpt-oss-120b-1:0',
        choices: [],
        usage: { prompt_tokens: 120, completion_tokens: 37, total_tokens: 157, prompt_tokens_details: { cached_tokens: 20 } },
      })}${eol}${eol}`,
    );
  }
  lines.push(`data: [DONE]${eol}${eol}`);
  return lines.join('');
}

export function responsesSse(eol = '\n'): string {
  const ev = (data: Record<string, unknown>) => `event: ${String(data.type)}${eol}data: ${JSON.stringify(data)}${eol}${eol}`;
  const response = (status: string, usage: unknown) => ({ id: 'resp_1', object: 'response', model: 'openai.gpt-oss-120b', status, output: [], usage });
  return [
    ev({ type: 'response.created', sequence_number: 0, response: response('in_progress', null) }),
    ev({ type: 'response.in_progress', sequence_number: 1, response: response('in_progress', null) }),
    ...Array.from({ length: 5 }, (_, i) =>
      ev({ type: 'response.output_text.delta', sequence_number: i + 2, item_id: 'msg_1', output_index: 0, content_index: 0, delta: `w${i} ` }),
    ),
    ev({
      type: 'response.completed',
      sequence_number: 9,
      response: response('completed', {
        input_tokens: 400,
        input_tokens_details: { cached_tokens: 100 },
        output_tokens: 60,
        output_tokens_details: { reasoning_tokens: 12 },
        total_tokens: 460,
      }),
    }),
  ].join('');
}

// ── chunking ──

/** Feeds the chunks and returns the result. */
export function run(meter: Meter, chunks: Iterable<Uint8Array>): MeterResult {
  for (const chunk of chunks) meter.observe(chunk);
  return meter.finish();
}

/** Every way to cut `bytes` in two (and the uncut whole). */
export function* everySplit(bytes: Uint8Array): Generator<Uint8Array[]> {
  for (let i = 0; i <= bytes.byteLength; i++) yield [bytes.subarray(0, i), bytes.subarray(i)];
}

export function oneBytePerChunk(bytes: Uint8Array): Uint8Array[] {
  return Array.from({ length: bytes.byteLength }, (_, i) => bytes.subarray(i, i + 1));
}

/** Cuts at the given offsets (sorted, deduplicated inside). */
export function cutAt(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const points = [...new Set(offsets.map((o) => Math.max(0, Math.min(bytes.byteLength, o))))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const point of points) {
    out.push(bytes.subarray(from, point));
    from = point;
  }
  out.push(bytes.subarray(from));
  return out;
}

export { utf8 };
