/**
 * Anthropic Messages bodies and streaming events, shared by InvokeModel (whose Claude bodies are
 * Anthropic's format) and the /anthropic/v1/messages compatible API.
 */
import { randomId, replyText, type OperationContext } from './context.js';
import { expectedAnthropicUsage } from './usage.js';

export type AnthropicEvent = { readonly type: string } & Readonly<Record<string, unknown>>;

/** A content block of an assistant message; a text block may arrive as several deltas. */
export type AnthropicBlock =
  | { readonly type: 'text'; readonly text: string | readonly string[] }
  | { readonly type: 'tool_use'; readonly name: string; readonly input: Readonly<Record<string, unknown>> };

export function anthropicMessage(ctx: OperationContext, model: string): Record<string, unknown> {
  return {
    id: randomId('msg_bdrk_'),
    type: 'message',
    role: 'assistant',
    model,
    content: [{ type: 'text', text: replyText(ctx) }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: expectedAnthropicUsage(ctx.body),
  };
}

/** The fake's own streamed answer: its reply text, one delta per reply chunk. */
export function anthropicStreamEvents(ctx: OperationContext, model: string): AnthropicEvent[] {
  return messageEvents(model, ctx.body, [{ type: 'text', text: ctx.replyChunks }]);
}

/**
 * The event sequence of one streamed assistant message made of `blocks`. As Anthropic does,
 * `message_start` carries the input figures with `output_tokens: 1` and `message_delta` the
 * final, cumulative `output_tokens`: a meter that adds the two overcounts by one. The figures
 * follow the fake's arithmetic (expectedAnthropicUsage of the request body).
 */
export function messageEvents(model: string, body: Uint8Array | string, blocks: readonly AnthropicBlock[]): AnthropicEvent[] {
  const usage = expectedAnthropicUsage(body);
  const events: AnthropicEvent[] = [
    {
      type: 'message_start',
      message: {
        id: randomId('msg_bdrk_'),
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
      for (const text of typeof block.text === 'string' ? [block.text] : block.text) {
        events.push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } });
      }
    } else {
      events.push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: randomId('toolu_bdrk_'), name: block.name, input: {} } });
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
