/**
 * The Anthropic- and OpenAI-compatible APIs (on bedrock-runtime and bedrock-mantle alike).
 * Each streams SSE only when the JSON body says `"stream": true`, as the real services do.
 */
import { anthropicMessage, anthropicStreamEvents } from './anthropic.js';
import { randomId, replyText, stringField, type OperationContext } from './context.js';
import { jsonReply, sseReply, type Reply } from './reply.js';
import { sseEvent } from './sse.js';
import { expectedOpenAIChatUsage, expectedOpenAIResponsesUsage, isObject } from './usage.js';

function wantsStream(ctx: OperationContext): boolean {
  return ctx.json['stream'] === true;
}

function bodyModel(ctx: OperationContext): string {
  return stringField(ctx.json, 'model') ?? '';
}

// ── Anthropic Messages: POST /anthropic/v1/messages ──

export function anthropicMessages(ctx: OperationContext): Reply {
  const model = bodyModel(ctx);
  if (!wantsStream(ctx)) return jsonReply(200, anthropicMessage(ctx, model));
  const events = anthropicStreamEvents(ctx, model).map((event) => sseEvent(event, event.type));
  // Anthropic sends a ping after the first content block starts; meters must skip it.
  events.splice(2, 0, sseEvent({ type: 'ping' }, 'ping'));
  return sseReply(events);
}

// ── OpenAI Chat Completions: POST /openai/v1/chat/completions, /v1/chat/completions ──

export function openAIChatCompletions(ctx: OperationContext): Reply {
  const model = bodyModel(ctx);
  const id = randomId('chatcmpl-');
  const created = Math.floor(ctx.now.getTime() / 1000);
  const usage = expectedOpenAIChatUsage(ctx.body);
  if (!wantsStream(ctx)) {
    return jsonReply(200, {
      id,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: replyText(ctx), refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage,
    });
  }
  // OpenAI sends usage only when asked (stream_options.include_usage), in one last chunk with no
  // choices; until then every chunk carries `"usage": null`.
  const options = ctx.json['stream_options'];
  const includeUsage = isObject(options) && options['include_usage'] === true;
  const chunk = (delta: Record<string, unknown>, finishReason: string | null) =>
    sseEvent({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
  return sseReply([
    chunk({ role: 'assistant', content: '' }, null),
    ...ctx.replyChunks.map((content) => chunk({ content }, null)),
    chunk({}, 'stop'),
    ...(includeUsage ? [sseEvent({ id, object: 'chat.completion.chunk', created, model, choices: [], usage })] : []),
    sseEvent('[DONE]'),
  ]);
}

// ── OpenAI Responses: POST /openai/v1/responses, /v1/responses ──

export function openAIResponses(ctx: OperationContext): Reply {
  const model = bodyModel(ctx);
  const text = replyText(ctx);
  const responseId = randomId('resp_');
  const messageId = randomId('msg_');
  const completedMessage = {
    type: 'message',
    id: messageId,
    status: 'completed',
    role: 'assistant',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
  const response = (status: string, output: unknown[], usage: unknown) => ({
    id: responseId,
    object: 'response',
    created_at: Math.floor(ctx.now.getTime() / 1000),
    status,
    error: null,
    incomplete_details: null,
    model,
    output,
    usage,
  });
  const usage = expectedOpenAIResponsesUsage(ctx.body);
  if (!wantsStream(ctx)) return jsonReply(200, response('completed', [completedMessage], usage));

  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>) => sseEvent({ type, sequence_number: sequence++, ...fields }, type);
  const at = { item_id: messageId, output_index: 0, content_index: 0 };
  return sseReply([
    event('response.created', { response: response('in_progress', [], null) }),
    event('response.in_progress', { response: response('in_progress', [], null) }),
    event('response.output_item.added', { output_index: 0, item: { ...completedMessage, status: 'in_progress', content: [] } }),
    event('response.content_part.added', { ...at, part: { type: 'output_text', text: '', annotations: [] } }),
    ...ctx.replyChunks.map((delta) => event('response.output_text.delta', { ...at, delta })),
    event('response.output_text.done', { ...at, text }),
    event('response.content_part.done', { ...at, part: { type: 'output_text', text, annotations: [] } }),
    event('response.output_item.done', { output_index: 0, item: completedMessage }),
    event('response.completed', { response: response('completed', [completedMessage], usage) }),
  ]);
}

// ── bedrock-mantle: GET /v1/models, /openai/v1/models ──

export const FAKE_MANTLE_MODELS: readonly { readonly id: string; readonly owned_by: string }[] = [
  { id: 'anthropic.claude-opus-4-7', owned_by: 'anthropic' },
  { id: 'anthropic.claude-sonnet-4-5', owned_by: 'anthropic' },
  { id: 'anthropic.claude-haiku-4-5', owned_by: 'anthropic' },
  { id: 'openai.gpt-oss-120b', owned_by: 'openai' },
  { id: 'openai.gpt-oss-20b', owned_by: 'openai' },
  { id: 'meta.llama3-3-70b-instruct', owned_by: 'meta' },
];

export function mantleListModels(): Reply {
  const created = 1735689600; // 2025-01-01: a fixed date keeps the listing byte-stable
  return jsonReply(200, { object: 'list', data: FAKE_MANTLE_MODELS.map((m) => ({ id: m.id, object: 'model', created, owned_by: m.owned_by })) });
}
