/**
 * Anthropic Messages bodies and streaming events, shared by InvokeModel (whose Claude bodies are
 * Anthropic's format) and the /anthropic/v1/messages compatible API.
 */
import { randomId, replyText, type OperationContext } from './context.js';
import { expectedAnthropicUsage } from './usage.js';

type AnthropicEvent = { readonly type: string } & Readonly<Record<string, unknown>>;

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

/**
 * The event sequence of a streamed message. As Anthropic does, `message_start` carries the input
 * figures with `output_tokens: 1` and `message_delta` the final, cumulative `output_tokens`: a
 * meter that adds the two overcounts by one.
 */
export function anthropicStreamEvents(ctx: OperationContext, model: string): AnthropicEvent[] {
  const usage = expectedAnthropicUsage(ctx.body);
  return [
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
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    ...ctx.replyChunks.map((text) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })),
    { type: 'content_block_stop', index: 0 },
    { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output_tokens } },
    { type: 'message_stop' },
  ];
}
