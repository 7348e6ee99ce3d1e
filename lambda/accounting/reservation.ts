/**
 * A call's worst case, reserved at admission so that concurrent calls cannot spend past a budget
 * or a tpm limit between their admission and their settle (issue 11).
 *
 *   input tokens  ≤ the request body's bytes, plus S3_REFERENCE_TOKENS for every object the
 *                   body only names by S3 location (an image, document or video Bedrock fetches
 *                   itself). Every tokenizer Bedrock's models use spends at least one byte of
 *                   UTF-8 text per token, so bytes bound text from above (English runs ~4 bytes
 *                   a token, so the bound is ~4× generous there; CJK ~3 bytes a token). Images
 *                   and documents sent inline travel base64-encoded: Claude counts an image as
 *                   about width×height/750 tokens (≤ ~1,600 at its 1.15-megapixel cap) while even
 *                   a heavily compressed image of that size is tens of kilobytes of base64, so
 *                   bytes bound those too. A PDF page costs Claude ~1,500–3,000 tokens of text and
 *                   image; its base64 is larger for anything but a blank page.
 *   output tokens = the largest max-tokens field the body states (every API spelling, at the top
 *                   level and inside the usual config objects); where it states none, the
 *                   model's ceiling from the price table (`maxOutputTokens`), else
 *                   DEFAULT_OUTPUT_CEILING.
 *   cost          = input bound × the dearest prompt rate (input, cache write, long context)
 *                 + output bound × the dearest output rate, exact integer nano-USD, rounded up.
 *
 * Operations that generate nothing billable per token (CountTokens, discovery, agent sessions…)
 * and models without a price reserve no money: their cost cannot be known before the answer
 * (agents, flows and prompt routers are priced by the model that answered, at settle).
 */
import type { CallContext } from '../pipeline.js';
import type { CompiledPrice } from '../pricing/book.js';
import { picosToNanos } from '../pricing/units.js';

/** Tokens allowed for each object the body references by S3 location instead of carrying it. */
export const S3_REFERENCE_TOKENS = 100_000;
/** Output ceiling for models whose price entry names none: the largest max-output of current Bedrock text models. */
export const DEFAULT_OUTPUT_CEILING = 64_000;
/**
 * A reservation never settled (the process was killed, the Lambda timed out) is charged at its
 * reserved amount once this has passed: Lambda's longest invocation (15 min) plus a margin.
 */
export const RESERVATION_TTL_MS = 20 * 60_000;

/** Operations that generate tokens billed per token: these reserve. */
export const GENERATING_OPERATIONS: ReadonlySet<string> = new Set([
  'Converse',
  'ConverseStream',
  'InvokeModel',
  'InvokeModelWithResponseStream',
  'AnthropicMessages',
  'ChatCompletions',
  'OpenAIChatCompletions',
  'OpenAIResponses',
  'MantleAnthropicMessages',
  'MantleChatCompletions',
  'MantleOpenAIChatCompletions',
  'MantleOpenAIResponses',
  'MantleResponses',
]);

/** Every spelling of "at most this many output tokens" across Bedrock's native and compatible APIs. */
const MAX_TOKEN_FIELDS: readonly string[] = [
  'maxTokens', // Converse inferenceConfig
  'max_tokens', // Anthropic, OpenAI (legacy), Mistral, Cohere, AI21, DeepSeek
  'max_completion_tokens', // OpenAI Chat Completions
  'max_output_tokens', // OpenAI Responses
  'maxTokenCount', // Titan textGenerationConfig
  'max_new_tokens', // Nova inferenceConfig
  'max_gen_len', // Llama
];
// additionalModelRequestFields: Converse passes it to the model as is, so a max_tokens there counts too.
const CONFIG_OBJECTS: readonly string[] = ['inferenceConfig', 'textGenerationConfig', 'generationConfig', 'parameters', 'additionalModelRequestFields'];

export interface WorstCase {
  readonly inputTokens: number;
  readonly outputTokens: number;
  /** Whether the body stated its max tokens (false: the model's ceiling was used). */
  readonly statedMaxTokens: boolean;
  /** Worst-case cost in nano-USD; 0 when the model has no price. */
  readonly costNanos: number;
  readonly priced: boolean;
}

export interface WorstCaseDeps {
  /** The model's compiled price (with its output ceiling, if the table gives one), if known. */
  readonly lookup: (model: string) => CompiledPrice | undefined;
  /** Cost multiplier of the requested service tier (1 = standard). */
  readonly tierMultiplier?: (call: CallContext) => number;
}

/** Does this call reserve at all? Only generating operations with a model do. */
export function reserves(call: CallContext): boolean {
  return call.model !== undefined && GENERATING_OPERATIONS.has(call.match.route.operation);
}

export function worstCase(call: CallContext, deps: WorstCaseDeps): WorstCase {
  const document = call.document ? call.document.json : parseQuietly(call.request.body);
  const inputTokens = call.request.body.byteLength + S3_REFERENCE_TOKENS * countS3References(document);
  const found = call.model ? deps.lookup(call.model) : undefined;
  const stated = statedMaxTokens(document);
  const outputTokens = stated ?? found?.maxOutputTokens ?? DEFAULT_OUTPUT_CEILING;
  if (!found) return { inputTokens, outputTokens, statedMaxTokens: stated !== undefined, costNanos: 0, priced: false };
  const price = found;
  const promptRate = max(price.input, price.cacheWrite, price.cacheRead, price.longContext?.input, price.longContext?.cacheWrite, price.longContext?.cacheRead);
  const outputRate = max(price.output, price.longContext?.output);
  const picos = BigInt(inputTokens) * promptRate + BigInt(outputTokens) * outputRate;
  // Round up to whole nanos: a reservation may never be smaller than what it covers.
  let nanos = picosToNanos(picos);
  if (nanos * 1000n < picos) nanos += 1n;
  const multiplier = deps.tierMultiplier?.(call) ?? 1;
  // An absurd max tokens (1e300) must end in a budget refusal, not an arithmetic error: clamp.
  const costNanos = Math.min(Number.MAX_SAFE_INTEGER, Math.ceil(Number(nanos) * multiplier));
  return { inputTokens, outputTokens, statedMaxTokens: stated !== undefined, costNanos, priced: true };
}

/** The largest max-tokens value the body states, where it states one as a positive integer. */
export function statedMaxTokens(document: unknown): number | undefined {
  if (!isObject(document)) return undefined;
  let largest: number | undefined;
  const consider = (container: Record<string, unknown>) => {
    for (const field of MAX_TOKEN_FIELDS) {
      const value = container[field];
      if (typeof value === 'number' && Number.isFinite(value) && value > 0) largest = Math.max(largest ?? 0, Math.ceil(value));
    }
  };
  consider(document);
  for (const name of CONFIG_OBJECTS) {
    const nested = document[name];
    if (isObject(nested)) consider(nested);
  }
  return largest;
}

/** Objects naming content by S3 location (`s3Location`, or a `uri` / `url` beginning with s3://). */
export function countS3References(document: unknown): number {
  let count = 0;
  const stack: unknown[] = [document];
  let visited = 0;
  while (stack.length > 0 && visited < 100_000) {
    const value = stack.pop();
    visited++;
    if (Array.isArray(value)) {
      for (const item of value) stack.push(item);
    } else if (isObject(value)) {
      if (isObject(value.s3Location)) count++;
      for (const field of ['uri', 'url']) {
        const text = value[field];
        if (typeof text === 'string' && text.startsWith('s3://')) count++;
      }
      // An s3Location's own `uri` is the same object: not counted twice.
      for (const [name, item] of Object.entries(value)) if (name !== 's3Location' && typeof item === 'object' && item !== null) stack.push(item);
    }
  }
  return count;
}

function parseQuietly(body: Buffer): unknown {
  if (body.byteLength === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function max(...values: Array<bigint | undefined>): bigint {
  let best = 0n;
  for (const value of values) if (value !== undefined && value > best) best = value;
  return best;
}
