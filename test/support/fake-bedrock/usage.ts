/**
 * The fake's token arithmetic. Every figure the fake reports is a pure function of the request
 * body it received, so a test that knows what it sent can compute, to the token, what the relay
 * should meter and bill: pass the exact bytes the client sent (the relay forwards them unchanged).
 *
 * The rules, one set for every API family:
 * - prompt tokens  = ceil(body bytes / 4), at least 1;
 * - prompt caching happens when the body carries a cache marker (`"cachePoint"`, `"cache_control"`
 *   or `"prompt_cache_key"`): then half the prompt (rounded down) is read from the cache, a
 *   quarter (rounded down) is written to it, and the rest is uncached input;
 * - output tokens  = the request's own limit (`inferenceConfig.maxTokens`, `max_tokens`,
 *   `max_completion_tokens` or `max_output_tokens`) when it sets one, else FAKE_DEFAULT_OUTPUT_TOKENS.
 *   (The reply text stays short whatever the count: only the figures matter to metering.)
 *
 * Each family then reports the same counts in its own vocabulary; the `expected*` helpers below
 * give the exact objects.
 */

export const FAKE_DEFAULT_OUTPUT_TOKENS = 16;
/** Reported latencies (Converse `metrics.latencyMs`, InvokeModel latency headers and metrics). */
export const FAKE_LATENCY_MS = 120;
export const FAKE_FIRST_BYTE_LATENCY_MS = 40;

const CACHE_MARKER = /"(cachePoint|cache_control|prompt_cache_key)"/;

/** The family-neutral counts. `input` excludes the cached parts. */
export interface FakeTokenCounts {
  readonly input: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
  readonly output: number;
}

export type RequestBody = Uint8Array | string;

export function fakeTokenCounts(body: RequestBody): FakeTokenCounts {
  const bytes = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('utf8');
  const prompt = Math.max(1, Math.ceil(bytes / 4));
  const cached = CACHE_MARKER.test(text);
  const cacheRead = cached ? Math.floor(prompt / 2) : 0;
  const cacheWrite = cached ? Math.floor(prompt / 4) : 0;
  return { input: prompt - cacheRead - cacheWrite, cacheRead, cacheWrite, output: requestedMaxTokens(text) ?? FAKE_DEFAULT_OUTPUT_TOKENS };
}

/** The output limit a request sets, in whichever family's spelling. */
export function requestedMaxTokens(bodyText: string): number | undefined {
  const json = parseObject(bodyText);
  if (json === undefined) return undefined;
  const inference = json['inferenceConfig'];
  const candidates = [isObject(inference) ? inference['maxTokens'] : undefined, json['max_tokens'], json['max_completion_tokens'], json['max_output_tokens']];
  for (const candidate of candidates) {
    if (typeof candidate === 'number' && Number.isInteger(candidate) && candidate > 0) return candidate;
  }
  return undefined;
}

/** Converse / ConverseStream `usage`. totalTokens counts every token, cached ones included. */
export function expectedConverseUsage(body: RequestBody): {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  cacheReadInputTokens: number;
  cacheWriteInputTokens: number;
} {
  const t = fakeTokenCounts(body);
  return {
    inputTokens: t.input,
    outputTokens: t.output,
    totalTokens: t.input + t.output + t.cacheRead + t.cacheWrite,
    cacheReadInputTokens: t.cacheRead,
    cacheWriteInputTokens: t.cacheWrite,
  };
}

/**
 * Anthropic Messages `usage` (InvokeModel bodies, /anthropic/v1/messages, and the final figures
 * of a stream: `message_start` carries these with `output_tokens: 1`, `message_delta` the final
 * `output_tokens`).
 */
export function expectedAnthropicUsage(body: RequestBody): {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
} {
  const t = fakeTokenCounts(body);
  return { input_tokens: t.input, cache_creation_input_tokens: t.cacheWrite, cache_read_input_tokens: t.cacheRead, output_tokens: t.output };
}

/** InvokeModel headers and the stream's `amazon-bedrock-invocationMetrics`. */
export function expectedInvocationMetrics(body: RequestBody): {
  inputTokenCount: number;
  outputTokenCount: number;
  invocationLatency: number;
  firstByteLatency: number;
  cacheReadInputTokenCount: number;
  cacheWriteInputTokenCount: number;
} {
  const t = fakeTokenCounts(body);
  return {
    inputTokenCount: t.input,
    outputTokenCount: t.output,
    invocationLatency: FAKE_LATENCY_MS,
    firstByteLatency: FAKE_FIRST_BYTE_LATENCY_MS,
    cacheReadInputTokenCount: t.cacheRead,
    cacheWriteInputTokenCount: t.cacheWrite,
  };
}

/** OpenAI Chat Completions `usage`: prompt_tokens includes the cached tokens, as OpenAI counts. */
export function expectedOpenAIChatUsage(body: RequestBody): {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
} {
  const t = fakeTokenCounts(body);
  const prompt = t.input + t.cacheRead + t.cacheWrite;
  return {
    prompt_tokens: prompt,
    completion_tokens: t.output,
    total_tokens: prompt + t.output,
    prompt_tokens_details: { cached_tokens: t.cacheRead },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

/** OpenAI Responses `usage` (also in `response.completed`). */
export function expectedOpenAIResponsesUsage(body: RequestBody): {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
} {
  const t = fakeTokenCounts(body);
  const input = t.input + t.cacheRead + t.cacheWrite;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: t.cacheRead },
    output_tokens: t.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input + t.output,
  };
}

/** CountTokens answers with the whole request body's prompt count (no cache split). */
export function expectedCountTokens(body: RequestBody): number {
  const t = fakeTokenCounts(body);
  return t.input + t.cacheRead + t.cacheWrite;
}

/** Guardrail text units: one per 1,000 bytes of request body, at least 1 (AWS bills 1,000 characters a unit). */
export function expectedGuardrailUnits(body: RequestBody): number {
  const bytes = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  return Math.max(1, Math.ceil(bytes / 1000));
}

// ── small JSON helpers shared by the fake's handlers ──

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function parseObject(text: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
