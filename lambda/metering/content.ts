/**
 * Where each streaming family puts the content it generates, for the output estimate a meter
 * falls back on when a stream ends before its usage report (client gone, upstream failure,
 * no usage event): text, tool-input JSON and reasoning deltas are counted; anything that
 * restates content already streamed (OpenAI Responses' `*.done` events, Cohere's `stream-end`)
 * or is not generated text (signatures, redacted reasoning, audio) is not.
 *
 * Partial counts some families report mid-stream are read too: input counts that arrive
 * first (Anthropic message_start, Llama, Titan) and running output counts (Anthropic
 * message_delta, Llama, Titan), which the estimate can only raise (UsageState.result()).
 */
import { anthropicUsage } from './families.js';
import { isRecord, type UsageState } from './usage.js';

/** ConverseStream `contentBlockStart` / `contentBlockDelta` events (and Nova's invoke chunks, same shapes). */
export function converseContent(eventType: string, doc: unknown, state: UsageState): void {
  if (!isRecord(doc)) return;
  if (eventType === 'contentBlockDelta' && isRecord(doc.delta)) {
    const delta = doc.delta;
    state.addContent(delta.text);
    if (isRecord(delta.toolUse)) state.addContent(delta.toolUse.input);
    if (isRecord(delta.reasoningContent)) state.addContent(delta.reasoningContent.text);
  } else if (eventType === 'contentBlockStart' && isRecord(doc.start) && isRecord(doc.start.toolUse)) {
    state.addContent(doc.start.toolUse.name);
  }
}

/** Anthropic Messages stream events (SSE, and the InvokeModelWithResponseStream chunks of Claude). */
export function anthropicContent(doc: Record<string, unknown>, state: UsageState): void {
  if (doc.type === 'content_block_delta' && isRecord(doc.delta)) {
    const delta = doc.delta;
    state.addContent(delta.text);
    state.addContent(delta.partial_json);
    state.addContent(delta.thinking);
  } else if (doc.type === 'content_block_start' && isRecord(doc.content_block)) {
    const block = doc.content_block;
    state.addContent(block.text);
    state.addContent(block.thinking);
    state.addContent(block.name);
  }
}

/** OpenAI Chat Completions chunks (and the OpenAI-shaped chunks of Mistral, AI21, DeepSeek, gpt-oss on InvokeModel). */
export function chatContent(doc: Record<string, unknown>, state: UsageState): void {
  if (!Array.isArray(doc.choices)) return;
  for (const choice of doc.choices) {
    if (!isRecord(choice)) continue;
    state.addContent(choice.text);
    for (const part of [choice.delta, choice.message]) {
      if (!isRecord(part)) continue;
      state.addContent(part.content);
      state.addContent(part.reasoning_content);
      state.addContent(part.reasoning);
      state.addContent(part.refusal);
      if (!Array.isArray(part.tool_calls)) continue;
      for (const call of part.tool_calls) {
        if (isRecord(call) && isRecord(call.function)) {
          state.addContent(call.function.name);
          state.addContent(call.function.arguments);
        }
      }
    }
  }
}

/** OpenAI Responses stream events: every `….delta` carries new text (output, reasoning, tool arguments). */
export function responsesContent(doc: Record<string, unknown>, state: UsageState): void {
  if (typeof doc.type === 'string' && doc.type.endsWith('.delta') && !doc.type.includes('audio')) state.addContent(doc.delta);
}

/**
 * One InvokeModelWithResponseStream chunk, in whichever model's own format it is. The formats do
 * not overlap, so each is recognised by its keys: Anthropic (`type`), Amazon Nova
 * (`contentBlockDelta`…), Meta Llama (`generation`), Amazon Titan (`outputText`), Mistral
 * (`outputs`), Cohere (`text`, `generations`), Claude text completions (`completion`), and the
 * OpenAI-shaped ones (`choices`).
 */
export function invokeChunkContent(doc: unknown, state: UsageState): void {
  if (!isRecord(doc)) return;
  if (typeof doc.type === 'string') {
    if (doc.type === 'message_start' && isRecord(doc.message)) anthropicUsage(doc.message.usage, state);
    else if (doc.type === 'message_delta') anthropicUsage(doc.usage, state);
    else anthropicContent(doc, state);
    return;
  }
  for (const eventType of ['contentBlockStart', 'contentBlockDelta']) {
    if (isRecord(doc[eventType])) converseContent(eventType, doc[eventType], state);
  }
  if (isRecord(doc.metadata) && isRecord(doc.metadata.usage)) {
    state.set('inputTokens', doc.metadata.usage.inputTokens);
    state.set('outputTokens', doc.metadata.usage.outputTokens);
  }
  // Llama
  state.addContent(doc.generation);
  state.set('inputTokens', doc.prompt_token_count);
  state.set('outputTokens', doc.generation_token_count);
  // Titan
  state.addContent(doc.outputText);
  state.set('inputTokens', doc.inputTextTokenCount);
  state.set('outputTokens', doc.totalOutputTextTokenCount);
  // Claude text completions, Cohere
  state.addContent(doc.completion);
  if (doc.is_finished !== true) state.addContent(doc.text);
  for (const list of [doc.outputs, doc.generations]) {
    if (!Array.isArray(list)) continue;
    for (const item of list) if (isRecord(item)) state.addContent(item.text);
  }
  chatContent(doc, state);
}
