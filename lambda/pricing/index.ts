/**
 * Pricing: what a call cost, in exact integer nano-USD.
 *
 *   priceCall(model, usage, tier?) → { costNanos, priced, priceKey?, serviceTier? }
 *
 * `model` is the requested model ID in any spelling (plain, `us.`/`eu.`/`global.` profile, ARN,
 * bedrock-mantle ID without version), optionally followed by the model the response names
 * (used only when the requested one has no price: prompt routers, agents). `tier` is the service
 * tier the call asked for (tiers.ts): priority and flex are priced per model, or unpriced.
 */
import type { TokenUsage } from '../pipeline.js';
import type { CallPrice, ModelCandidates } from './book.js';
import { defaultPriceBook } from './config.js';

export {
  PriceBook,
  PriceTableError,
  costNanos,
  priceKeyOf,
  tierMultiplier,
  type CallPrice,
  type CompiledPrice,
  type ModelCandidates,
  type PriceFn,
} from './book.js';
export { PriceConfigError, defaultPriceBook, loadPriceBook, tierMultipliersFrom, type ReadTextFile } from './config.js';
export { BUILTIN_PRICES, PRICE_SOURCES, PRICES_TAKEN_ON, type PriceSpec, type PriceValue, type TierPriceSpec, type TokenPrices } from './table.js';
export { DEFAULT_TIER_MULTIPLIER_VALUES, isStandardTier, type PricedTier, type ServiceTier } from './tiers.js';
export { formatUsd, nanosToUsd, usdPer1kToPicosPerToken, usdToNanos } from './units.js';

/**
 * Prices one call with the default book (built-in table + RELAY_PRICES_FILE + RELAY_PRICES_JSON).
 * Pass `[call.model, meter.responseModel]` to fall back on the model that answered.
 */
export function priceCall(model: ModelCandidates, usage: TokenUsage, tier?: string): CallPrice {
  return defaultPriceBook().priceCall(model, usage, tier);
}
