/**
 * The fake Bedrock's usage figures for a request body (./fake-bedrock/usage.ts), in each API
 * family's own spelling, as the relay's TokenUsage: what the ledger must record for the call.
 */
import type { TokenUsage } from '../../lambda/pipeline.js';
import { expectedAnthropicUsage, expectedConverseUsage, expectedInvocationMetrics } from './fake-bedrock.js';

/** Converse / ConverseStream (`usage` in the answer or the metadata event). */
export function converseTokenUsage(body: string): TokenUsage {
  const u = expectedConverseUsage(body);
  return {
    inputTokens: u.inputTokens,
    outputTokens: u.outputTokens,
    cacheReadInputTokens: u.cacheReadInputTokens,
    cacheWriteInputTokens: u.cacheWriteInputTokens,
  };
}

/** InvokeModel / InvokeModelWithResponseStream (`amazon-bedrock-invocationMetrics`). */
export function invocationTokenUsage(body: string): TokenUsage {
  const m = expectedInvocationMetrics(body);
  return {
    inputTokens: m.inputTokenCount,
    outputTokens: m.outputTokenCount,
    cacheReadInputTokens: m.cacheReadInputTokenCount,
    cacheWriteInputTokens: m.cacheWriteInputTokenCount,
  };
}

/** Anthropic Messages (`usage` in message_start / message_delta, or the JSON answer). */
export function anthropicTokenUsage(body: string): TokenUsage {
  const a = expectedAnthropicUsage(body);
  return {
    inputTokens: a.input_tokens,
    outputTokens: a.output_tokens,
    cacheReadInputTokens: a.cache_read_input_tokens,
    cacheWriteInputTokens: a.cache_creation_input_tokens,
  };
}
