/**
 * Where each API family puts its usage, as functions from a parsed JSON document into a
 * UsageState. Shared by the whole-body readers and the stream readers, which see the same
 * objects inside events.
 *
 * Convention: `inputTokens` counts input tokens billed at the plain input rate, so cached
 * tokens are never counted twice. Bedrock (Converse, invocation metrics) and Anthropic already
 * report it that way; OpenAI's `prompt_tokens` / `input_tokens` include the cached tokens, so
 * those are subtracted here.
 */
import { count, isRecord, type UsageState } from './usage.js';

/** Converse `usage` and the ConverseStream `metadata` event. */
export function converseUsage(doc: unknown, state: UsageState): void {
  if (!isRecord(doc)) return;
  const usage = doc.usage;
  if (isRecord(usage)) {
    state.markFinal();
    state.set('inputTokens', usage.inputTokens);
    state.set('outputTokens', usage.outputTokens);
    state.set('cacheReadInputTokens', usage.cacheReadInputTokens);
    state.set('cacheWriteInputTokens', usage.cacheWriteInputTokens);
  }
  // Intelligent prompt routing answers with another model than the one called; its price applies.
  const trace = doc.trace;
  if (isRecord(trace) && isRecord(trace.promptRouter)) state.setModel(trace.promptRouter.invokedModelId);
}

/** `amazon-bedrock-invocationMetrics` of the last InvokeModelWithResponseStream chunk. */
export function invocationMetrics(doc: unknown, state: UsageState): void {
  if (!isRecord(doc)) return;
  const metrics = doc['amazon-bedrock-invocationMetrics'];
  if (!isRecord(metrics)) return;
  state.markFinal();
  state.set('inputTokens', metrics.inputTokenCount);
  state.set('outputTokens', metrics.outputTokenCount);
  state.set('cacheReadInputTokens', metrics.cacheReadInputTokenCount);
  state.set('cacheWriteInputTokens', metrics.cacheWriteInputTokenCount);
}

/**
 * ApplyGuardrail `usage`: every `…Units` count is summed. `sensitiveInformationPolicyFreeUnits`
 * are not billed and `automatedReasoningPolicies` counts policies, not units, so both are left out.
 */
export function guardrailUsage(doc: unknown, state: UsageState): void {
  if (!isRecord(doc) || !isRecord(doc.usage)) return;
  for (const [name, value] of Object.entries(doc.usage)) {
    if (name.endsWith('Units') && !name.includes('Free')) state.addGuardrailUnits(value);
  }
}

/** Anthropic Messages usage: latest value per field (message_delta restates cumulative counts). */
export function anthropicUsage(usage: unknown, state: UsageState): void {
  if (!isRecord(usage)) return;
  state.set('inputTokens', usage.input_tokens);
  state.set('outputTokens', usage.output_tokens);
  state.set('cacheReadInputTokens', usage.cache_read_input_tokens);
  state.set('cacheWriteInputTokens', usage.cache_creation_input_tokens);
}

/** A whole Anthropic Messages response, or one SSE event of it. */
export function anthropicDocument(doc: unknown, state: UsageState): void {
  if (!isRecord(doc)) return;
  if (doc.type === 'message_start' && isRecord(doc.message)) {
    anthropicUsage(doc.message.usage, state);
    state.setModel(doc.message.model);
  } else if (doc.type === 'message_delta') {
    // message_delta restates the final output count; message_start's was a placeholder.
    if (isRecord(doc.usage)) state.markFinal();
    anthropicUsage(doc.usage, state);
  } else if (doc.type === 'message' || doc.type === undefined) {
    if (isRecord(doc.usage)) state.markFinal();
    anthropicUsage(doc.usage, state);
    state.setModel(doc.model);
  }
}

/** OpenAI-style usage: `total` includes `cached`, which is billed at the cache-read rate. */
function openAiUsage(total: unknown, output: unknown, details: unknown, state: UsageState): void {
  const all = count(total);
  const cached = isRecord(details) ? count(details.cached_tokens) : undefined;
  if (all !== undefined) {
    state.set('inputTokens', Math.max(0, all - (cached ?? 0)));
    state.set('cacheReadInputTokens', Math.min(all, cached ?? 0));
  }
  state.set('outputTokens', output);
}

/** A Chat Completions response, or one streamed chunk (usage only in the last one, when asked). */
export function chatCompletionDocument(doc: unknown, state: UsageState): void {
  if (!isRecord(doc) || !isRecord(doc.usage)) return;
  const usage = doc.usage;
  state.markFinal();
  openAiUsage(usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details, state);
  state.setModel(doc.model);
}

function responsesUsage(response: Record<string, unknown>, state: UsageState): void {
  if (!isRecord(response.usage)) return;
  const usage = response.usage;
  state.markFinal();
  openAiUsage(usage.input_tokens, usage.output_tokens, usage.input_tokens_details, state);
  state.setModel(response.model);
}

/** A Responses API response object. */
export function responsesDocument(doc: unknown, state: UsageState): void {
  if (isRecord(doc)) responsesUsage(doc, state);
}

/**
 * A Responses API stream event. Usage arrives with the terminal event: `response.completed`,
 * and also `response.incomplete` (max tokens reached) and `response.failed`, which are billed too.
 */
export function responsesEvent(doc: unknown, state: UsageState): void {
  if (!isRecord(doc) || typeof doc.type !== 'string' || !doc.type.startsWith('response.')) return;
  if (isRecord(doc.response)) responsesUsage(doc.response, state);
}

/**
 * InvokeAgent / InvokeInlineAgent / InvokeFlow trace events: each model invocation of the
 * agent reports `modelInvocationOutput.metadata.usage`, wherever in the trace it happens
 * (pre-processing, orchestration, post-processing, routing classifier…). They add up.
 */
export function agentTrace(doc: unknown, state: UsageState): void {
  walk(doc, 0, state);
}

const MAX_TRACE_DEPTH = 12;

function walk(node: unknown, depth: number, state: UsageState): void {
  if (depth > MAX_TRACE_DEPTH) return;
  if (Array.isArray(node)) {
    for (const item of node) walk(item, depth + 1, state);
    return;
  }
  if (!isRecord(node)) return;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'modelInvocationOutput' && isRecord(value) && isRecord(value.metadata) && isRecord(value.metadata.usage)) {
      state.add('inputTokens', value.metadata.usage.inputTokens);
      state.add('outputTokens', value.metadata.usage.outputTokens);
    } else if (key === 'modelInvocationInput' && isRecord(value)) {
      state.setModel(value.foundationModel);
    } else if (typeof value === 'object' && value !== null) {
      walk(value, depth + 1, state);
    }
  }
}
