/**
 * Built-in on-demand prices (standard tier) for Bedrock models, in USD per 1K tokens.
 *
 * Taken on 2026-11-25 from:
 *   G  pydantic/genai-prices, prices/providers/aws.yml at commit 47df840a (2026-08-21), whose
 *      source is https://aws.amazon.com/bedrock/pricing/ — the primary source;
 *   M  anomalyco/models.dev (the models.dev database), providers/amazon-bedrock at commit f3fc6922
 *      (2026-07-02) — for models G does not list, and as a cross-check;
 *   C  Cohere Command R/R+ Bedrock prices as quoted from https://aws.amazon.com/bedrock/pricing/
 *      by several public price tables (Cohere is in neither G nor M);
 *   A  the AWS pricing page as summarised by public guides (Titan Text Embeddings V2);
 *   L  BerriAI/litellm model_prices_and_context_window.json (AI21 Jamba).
 * Cross-checks: the Claude 4.5+ global/regional split matches AWS's documentation ("Global
 * cross-Region inference … approximately 10% savings … compared to geographic cross-Region
 * inference", docs.aws.amazon.com/bedrock/latest/userguide/global-cross-region-inference.html)
 * and LiteLLM's us.anthropic.claude-opus-4-7 entry ($5.50/$27.50 per 1M). Where M disagrees
 * with G the entry says so. Re-check https://aws.amazon.com/bedrock/pricing/ before relying
 * on a price, and override what differs (RELAY_PRICES_JSON / RELAY_PRICES_FILE).
 *
 * Keys and lookup (see book.ts): a key is a model ID as normalizeModelId() reads it. A key
 * without a version suffix (`anthropic.claude-opus-4-7`, `meta.llama3-1-70b-instruct`) prices
 * every version of the model and its bedrock-mantle spelling; a key with one
 * (`amazon.titan-embed-text-v2:0`) prices only that version. A key with a profile prefix
 * (`global.…`) prices only that inference profile; other profiles (`us.`, `eu.`…) and in-Region
 * calls use the plain key.
 *
 * Regions: Bedrock bills cross-Region inference at the price of the source Region. These are
 * us-east-1 prices; a few models cost more in some Regions — override them if you deploy
 * there. Batch and provisioned throughput are not covered (the relay meters on-demand calls).
 * Service tiers (priority, flex): an entry's `tiers` says which it supports and at what price,
 * see tiers.ts; `tiers: ON_DEMAND_TIERS` marks the models AWS documents as supporting both, priced
 * at RELAY_PRICES_TIER_MULTIPLIERS times the standard price. Anthropic's 1-hour cache writes (priced higher than 5-minute ones)
 * are counted at the cache-write price here, since Bedrock reports one cache-write count.
 */

/** USD per 1K tokens, as a decimal number or a decimal string. */
export type PriceValue = number | string;

export interface TokenPrices {
  readonly input: PriceValue;
  readonly output: PriceValue;
  /** Absent: cache reads are charged at the input price. */
  readonly cacheRead?: PriceValue;
  /** Absent: cache writes are charged at the input price. */
  readonly cacheWrite?: PriceValue;
}

export interface PriceSpec extends TokenPrices {
  /**
   * Long-context pricing: when a call's input (input + cache read + cache write tokens) exceeds
   * `aboveInputTokens`, all of its tokens are charged at these prices instead.
   */
  readonly longContext?: TokenPrices & { readonly aboveInputTokens: number };
  /**
   * The most output tokens the model generates in one call: what a call that states no max
   * tokens reserves against budgets and tpm limits (default 64,000).
   */
  readonly maxOutputTokens?: number;
  /**
   * Prices of the priority and flex service tiers (tiers.ts). A tier absent here is unpriced for
   * the model: its calls are flagged unpriced, and budgeted keys are refused it. `default` and
   * `reserved` always use the standard price above.
   */
  readonly tiers?: Readonly<Partial<Record<PricedTier, TierPriceSpec>>>;
  /** Where the price comes from (documentation only). */
  readonly source?: string;
}

/**
 * One tier's price: `true` = the standard price × the configured multiplier for the tier
 * (RELAY_PRICES_TIER_MULTIPLIERS, default priority 1.75, flex 0.5); `{multiplier}` = the standard
 * price × this model's own multiplier; or explicit prices in the standard price's format.
 */
export type TierPriceSpec =
  | true
  | { readonly multiplier: PriceValue }
  | (TokenPrices & { readonly longContext?: TokenPrices & { readonly aboveInputTokens: number } });

/** Priority and flex at the configured multipliers: the models of TIERED_MODELS_SOURCE. */
const ON_DEMAND_TIERS = { priority: true, flex: true } as const;

import type { PricedTier } from './tiers.js';

export const PRICES_TAKEN_ON = '2026-11-25';

const G = 'pydantic/genai-prices aws.yml @47df840a (2026-08-21) ← aws.amazon.com/bedrock/pricing';
const M = 'anomalyco/models.dev amazon-bedrock @f3fc6922 (2026-07-02)';
const C = 'aws.amazon.com/bedrock/pricing (Cohere), as quoted by public price tables';
const A = 'aws.amazon.com/bedrock/pricing (Titan Text Embeddings V2), as quoted by public guides';
const L = 'BerriAI/litellm model_prices_and_context_window.json';

export const PRICE_SOURCES: readonly string[] = [G, M, C, A, L];

export const BUILTIN_PRICES: Readonly<Record<string, PriceSpec>> = {
  // ── Anthropic Claude
  // From Claude Sonnet 4.5 / Haiku 4.5 / Opus 4.5 on, Bedrock prices the global cross-Region profile
  // (`global.`) about 10% below in-Region and geographic profiles (`us.`, `eu.`, `jp.`, `au.`,
  // `apac.`…); the plain key holds the regional price and the `global.` key the global one. Older models
  // have one price everywhere.
  'anthropic.claude-3-haiku-20240307': { input: 0.00025, output: 0.00125, source: G },
  'anthropic.claude-3-sonnet-20240229': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G },
  'anthropic.claude-3-opus-20240229': { input: 0.015, output: 0.075, source: G },
  'anthropic.claude-3-5-haiku-20241022': { input: 0.0008, output: 0.004, cacheRead: 0.00008, cacheWrite: 0.001, source: G },
  'anthropic.claude-3-5-sonnet-20240620': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G }, // some sources report $6/$30 per 1M under extended access; override if your bill shows it
  'anthropic.claude-3-5-sonnet-20241022': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G }, // as above
  'anthropic.claude-3-7-sonnet-20250219': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G },
  'anthropic.claude-sonnet-4-20250514': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G },
  'anthropic.claude-opus-4-20250514': { input: 0.015, output: 0.075, cacheRead: 0.0015, cacheWrite: 0.01875, source: G },
  'anthropic.claude-opus-4-1-20250805': { input: 0.015, output: 0.075, cacheRead: 0.0015, cacheWrite: 0.01875, source: G },
  'anthropic.claude-sonnet-4-5-20250929': { input: 0.0033, output: 0.0165, cacheRead: 0.00033, cacheWrite: 0.004125, source: G },
  'global.anthropic.claude-sonnet-4-5-20250929': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G },
  'anthropic.claude-haiku-4-5-20251001': { input: 0.0011, output: 0.0055, cacheRead: 0.00011, cacheWrite: 0.001375, source: G },
  'global.anthropic.claude-haiku-4-5-20251001': { input: 0.001, output: 0.005, cacheRead: 0.0001, cacheWrite: 0.00125, source: G },
  'anthropic.claude-opus-4-5-20251101': { input: 0.0055, output: 0.0275, cacheRead: 0.00055, cacheWrite: 0.006875, source: G },
  'global.anthropic.claude-opus-4-5-20251101': { input: 0.005, output: 0.025, cacheRead: 0.0005, cacheWrite: 0.00625, source: G },
  'anthropic.claude-opus-4-6': { input: 0.0055, output: 0.0275, cacheRead: 0.00055, cacheWrite: 0.006875, source: G },
  'global.anthropic.claude-opus-4-6': { input: 0.005, output: 0.025, cacheRead: 0.0005, cacheWrite: 0.00625, source: G },
  'anthropic.claude-sonnet-4-6': { input: 0.0033, output: 0.0165, cacheRead: 0.00033, cacheWrite: 0.004125, source: G },
  'global.anthropic.claude-sonnet-4-6': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G },
  'anthropic.claude-opus-4-7': { input: 0.0055, output: 0.0275, cacheRead: 0.00055, cacheWrite: 0.006875, source: G },
  'global.anthropic.claude-opus-4-7': { input: 0.005, output: 0.025, cacheRead: 0.0005, cacheWrite: 0.00625, source: G },
  'anthropic.claude-opus-4-8': { input: 0.0055, output: 0.0275, cacheRead: 0.00055, cacheWrite: 0.006875, source: G },
  'global.anthropic.claude-opus-4-8': { input: 0.005, output: 0.025, cacheRead: 0.0005, cacheWrite: 0.00625, source: G },
  'anthropic.claude-sonnet-5': { input: 0.0033, output: 0.0165, cacheRead: 0.00033, cacheWrite: 0.004125, source: G }, // launch price $2.2/$11 (global $2/$10) ended 2026-09-01
  'global.anthropic.claude-sonnet-5': { input: 0.003, output: 0.015, cacheRead: 0.0003, cacheWrite: 0.00375, source: G },
  'anthropic.claude-opus-5': { input: 0.0055, output: 0.0275, cacheRead: 0.00055, cacheWrite: 0.006875, source: G },
  'global.anthropic.claude-opus-5': { input: 0.005, output: 0.025, cacheRead: 0.0005, cacheWrite: 0.00625, source: G },
  'anthropic.claude-fable-5': { input: 0.011, output: 0.055, cacheRead: 0.0011, cacheWrite: 0.01375, source: G },
  'global.anthropic.claude-fable-5': { input: 0.01, output: 0.05, cacheRead: 0.001, cacheWrite: 0.0125, source: G },

  // ── Amazon Nova and Titan
  'amazon.nova-micro': { input: 0.000035, output: 0.00014, cacheRead: 0.00000875, source: G },
  'amazon.nova-lite': { input: 0.00006, output: 0.00024, cacheRead: 0.000015, source: G },
  'amazon.nova-pro': { input: 0.0008, output: 0.0032, cacheRead: 0.0002, tiers: ON_DEMAND_TIERS, source: G },
  'amazon.nova-premier': { input: 0.0025, output: 0.0125, cacheRead: 0.000625, tiers: ON_DEMAND_TIERS, source: G },
  'amazon.nova-2-lite': { input: 0.00033, output: 0.00275, cacheRead: 0.0000825, source: G },
  'global.amazon.nova-2-lite': { input: 0.0003, output: 0.0025, cacheRead: 0.000075, source: G },
  'amazon.titan-text-lite': { input: 0.00015, output: 0.0002, source: G },
  'amazon.titan-text-express': { input: 0.0002, output: 0.0006, source: G },
  'amazon.titan-embed-text-v1': { input: 0.0001, output: 0, source: G }, // versioned key: v1 and v2 share a family but not a price
  'amazon.titan-embed-text-v2:0': { input: 0.00002, output: 0, source: A }, // versioned key, as above

  // ── Meta Llama
  'meta.llama3-8b-instruct': { input: 0.0003, output: 0.0006, source: G },
  'meta.llama3-70b-instruct': { input: 0.00265, output: 0.0035, source: G },
  'meta.llama3-1-8b-instruct': { input: 0.00022, output: 0.00022, source: G },
  'meta.llama3-1-70b-instruct': { input: 0.00072, output: 0.00072, source: G },
  'meta.llama3-2-1b-instruct': { input: 0.0001, output: 0.0001, source: G },
  'meta.llama3-2-3b-instruct': { input: 0.00015, output: 0.00015, source: G },
  'meta.llama3-2-11b-instruct': { input: 0.00016, output: 0.00016, source: G },
  'meta.llama3-2-90b-instruct': { input: 0.00072, output: 0.00072, source: G },
  'meta.llama3-3-70b-instruct': { input: 0.00072, output: 0.00072, source: G },
  'meta.llama4-scout-17b-instruct': { input: 0.00017, output: 0.00066, source: G },
  'meta.llama4-maverick-17b-instruct': { input: 0.00024, output: 0.00097, source: G },

  // ── Mistral AI
  'mistral.mistral-7b-instruct': { input: 0.00015, output: 0.0002, source: G },
  'mistral.mixtral-8x7b-instruct': { input: 0.00045, output: 0.0007, source: G },
  'mistral.mistral-small-2402': { input: 0.001, output: 0.003, source: G },
  'mistral.mistral-large-2402': { input: 0.004, output: 0.012, source: G },
  'mistral.pixtral-large-2502': { input: 0.002, output: 0.006, source: G },
  'mistral.mistral-large-3-675b-instruct': { input: 0.0005, output: 0.0015, source: G },
  'mistral.devstral-2-123b': { input: 0.0004, output: 0.002, source: G },
  'mistral.magistral-small-2509': { input: 0.0005, output: 0.0015, source: G },
  'mistral.ministral-3-3b-instruct': { input: 0.0001, output: 0.0001, source: G },
  'mistral.ministral-3-8b-instruct': { input: 0.00015, output: 0.00015, source: G },
  'mistral.ministral-3-14b-instruct': { input: 0.0002, output: 0.0002, source: G },
  'mistral.voxtral-mini-3b-2507': { input: 0.00004, output: 0.00004, source: G },
  'mistral.voxtral-small-24b-2507': { input: 0.0001, output: 0.0003, source: G }, // models.dev lists $0.15/$0.35

  // ── Cohere
  'cohere.command-r': { input: 0.0005, output: 0.0015, source: C },
  'cohere.command-r-plus': { input: 0.003, output: 0.015, source: C },

  // ── DeepSeek
  'deepseek.r1': { input: 0.00135, output: 0.0054, source: G },
  'deepseek.v3': { input: 0.00058, output: 0.00168, tiers: ON_DEMAND_TIERS, source: M }, // deepseek.v3-v1:0 is DeepSeek-V3.1
  'deepseek.v3.2': { input: 0.00062, output: 0.00185, source: M },

  // ── OpenAI
  // gpt-oss is served as `openai.gpt-oss-120b-1:0` on bedrock-runtime and `openai.gpt-oss-120b`
  // elsewhere; lambda/models/ids.ts reads `-1:0` as a version, so one key prices both. GPT-5.6 models charge their long-context rates for the whole
  // call when its input exceeds 272K tokens.
  'openai.gpt-oss-20b': { input: 0.00007, output: 0.0003, tiers: ON_DEMAND_TIERS, source: G },
  'openai.gpt-oss-120b': { input: 0.00015, output: 0.0006, tiers: ON_DEMAND_TIERS, source: G },
  'openai.gpt-oss-safeguard-20b': { input: 0.00007, output: 0.0002, source: M },
  'openai.gpt-oss-safeguard-120b': { input: 0.00015, output: 0.0006, source: M },
  'openai.gpt-5.4': { input: 0.00275, output: 0.0165, cacheRead: 0.000275, source: G },
  'openai.gpt-5.5': { input: 0.0055, output: 0.033, cacheRead: 0.00055, source: G },
  'openai.gpt-5.6-sol': {
    input: 0.0055,
    output: 0.033,
    cacheRead: 0.00055,
    cacheWrite: 0.006875,
    longContext: { aboveInputTokens: 272_000, input: 0.011, output: 0.0495, cacheRead: 0.0011, cacheWrite: 0.01375 },
    source: G,
  },
  'openai.gpt-5.6-terra': {
    input: 0.0022,
    output: 0.0132,
    cacheRead: 0.00022,
    cacheWrite: 0.00275,
    longContext: { aboveInputTokens: 272_000, input: 0.0044, output: 0.0198, cacheRead: 0.00044, cacheWrite: 0.0055 },
    source: G,
  }, // price since 2026-07-30
  'openai.gpt-5.6-luna': {
    input: 0.00022,
    output: 0.00132,
    cacheRead: 0.000022,
    cacheWrite: 0.000275,
    longContext: { aboveInputTokens: 272_000, input: 0.00044, output: 0.00198, cacheRead: 0.000044, cacheWrite: 0.00055 },
    source: G,
  }, // price since 2026-07-30

  // ── Qwen
  'qwen.qwen3-32b': { input: 0.00015, output: 0.0006, tiers: ON_DEMAND_TIERS, source: G },
  'qwen.qwen3-coder-30b-a3b': { input: 0.00015, output: 0.0006, tiers: ON_DEMAND_TIERS, source: G },
  'qwen.qwen3-coder-480b-a35b': { input: 0.00045, output: 0.0018, tiers: ON_DEMAND_TIERS, source: G }, // models.dev lists $0.22 input
  'qwen.qwen3-vl-235b-a22b': { input: 0.00053, output: 0.00266, source: G }, // models.dev lists $0.30/$1.50
  'qwen.qwen3-235b-a22b-2507': { input: 0.00022, output: 0.00088, tiers: ON_DEMAND_TIERS, source: M },
  'qwen.qwen3-next-80b-a3b': { input: 0.00014, output: 0.0014, source: M },
  'qwen.qwen3-coder-next': { input: 0.00022, output: 0.0018, source: M },

  // ── Other open-weight and partner models
  'google.gemma-3-4b-it': { input: 0.00004, output: 0.00008, source: G },
  'google.gemma-3-12b-it': { input: 0.00009, output: 0.00029, source: G }, // models.dev lists $0.05/$0.10
  'google.gemma-3-27b-it': { input: 0.00023, output: 0.00038, source: G }, // models.dev lists $0.12/$0.20
  'nvidia.nemotron-nano-9b': { input: 0.00006, output: 0.00023, source: G }, // family key: matches nvidia.nemotron-nano-9b-v2 and its versions
  'nvidia.nemotron-nano-12b': { input: 0.0002, output: 0.0006, source: M }, // family key of nvidia.nemotron-nano-12b-v2
  'nvidia.nemotron-nano-3-30b': { input: 0.00006, output: 0.00024, source: G },
  'nvidia.nemotron-super-3-120b': { input: 0.00015, output: 0.00065, source: G },
  'moonshot.kimi-k2-thinking': { input: 0.0006, output: 0.0025, source: M },
  'moonshotai.kimi-k2.5': { input: 0.0006, output: 0.003, source: M },
  'minimax.minimax-m2': { input: 0.0003, output: 0.0012, source: M },
  'minimax.minimax-m2.1': { input: 0.0003, output: 0.0012, source: M },
  'minimax.minimax-m2.5': { input: 0.0003, output: 0.0012, source: M },
  'zai.glm-4.7': { input: 0.0006, output: 0.0022, source: M },
  'zai.glm-4.7-flash': { input: 0.00007, output: 0.0004, source: M },
  'zai.glm-5': { input: 0.001, output: 0.0032, source: M },
  'xai.grok-4.3': { input: 0.00125, output: 0.0025, cacheRead: 0.0002, source: M },
  'writer.palmyra-x4': { input: 0.0025, output: 0.01, source: G },
  'writer.palmyra-x5': { input: 0.0006, output: 0.006, source: G },
  'ai21.jamba-1-5-mini': { input: 0.0002, output: 0.0004, source: L },
  'ai21.jamba-1-5-large': { input: 0.002, output: 0.008, source: L },
};
