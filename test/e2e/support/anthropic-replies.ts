/**
 * Anthropic-shaped answers for fake.override(), on both transports Claude Code reads them from:
 * Bedrock's InvokeModelWithResponseStream (event-stream `chunk` frames with the JSON event in
 * base64 `bytes`, invocation metrics in the last one) and the Messages API's SSE (mantle).
 *
 * The usage figures follow the fake's own arithmetic (expectedAnthropicUsage of the request
 * body), so a test can check what the relay metered for an overridden call exactly as for a
 * built-in one.
 */
import { randomUUID } from 'node:crypto';
import {
  chunkFrame,
  eventStreamReply,
  expectedAnthropicUsage,
  expectedInvocationMetrics,
  sseEvent,
  sseReply,
  type Reply,
} from '../../support/fake-bedrock.js';

export type AnthropicEvent = { readonly type: string } & Readonly<Record<string, unknown>>;

export type AnthropicBlock =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'tool_use'; readonly name: string; readonly input: Readonly<Record<string, unknown>> };

/** The streamed events of one assistant message made of `blocks`, as Anthropic sends them. */
export function messageEvents(model: string, body: Uint8Array, blocks: readonly AnthropicBlock[]): AnthropicEvent[] {
  const usage = expectedAnthropicUsage(body);
  const events: AnthropicEvent[] = [
    {
      type: 'message_start',
      message: {
        id: `msg_bdrk_${randomUUID().replaceAll('-', '').slice(0, 24)}`,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    },
  ];
  for (const [index, block] of blocks.entries()) {
    if (block.type === 'text') {
      events.push({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
      events.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: block.text } });
    } else {
      const id = `toolu_bdrk_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
      events.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id, name: block.name, input: {} } });
      // Tool input arrives as JSON text split across deltas; split it so the client must join them.
      const json = JSON.stringify(block.input);
      const cut = Math.floor(json.length / 2);
      for (const part of [json.slice(0, cut), json.slice(cut)]) {
        events.push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: part } });
      }
    }
    events.push({ type: 'content_block_stop', index });
  }
  const stopReason = blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn';
  events.push({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } });
  events.push({ type: 'message_stop' });
  return events;
}

/** InvokeModelWithResponseStream: one `chunk` frame per event, Bedrock's metrics on the last. */
export function invokeStreamReply(events: readonly AnthropicEvent[], body: Uint8Array): Reply {
  const last = events.length - 1;
  return eventStreamReply(
    events.map((event, index) =>
      chunkFrame(index === last ? { ...event, 'amazon-bedrock-invocationMetrics': expectedInvocationMetrics(body) } : event, index),
    ),
    { 'x-amzn-bedrock-content-type': 'application/json' },
  );
}

/** The Messages API's SSE: `event: <type>` and the JSON event per block. */
export function messagesSseReply(events: readonly AnthropicEvent[]): Reply {
  return sseReply(events.map((event) => sseEvent(event, event.type)));
}
