/**
 * Bedrock service tiers and what they cost relative to the standard (on-demand) price.
 *
 * Bedrock's tiers (API reference, ServiceTier: "Valid Values: priority | default | flex | reserved",
 * https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ServiceTier.html):
 *   default   Standard: the on-demand price in table.ts.
 *   reserved  Capacity bought in advance at a fixed monthly price per 1K tokens-per-minute; the
 *             calls themselves are not billed per token, and overflow "is served by Standard"
 *             (https://docs.aws.amazon.com/bedrock/latest/userguide/service-tiers-inference.html).
 *             The relay charges them at the standard price, as it would the overflow.
 *   priority  "Standard rate + premium" (https://aws.amazon.com/bedrock/service-tiers);
 *             "at a premium price, over other service tiers" (What's New, 2025-11-18,
 *             https://aws.amazon.com/about-aws/whats-new/2025/11/amazon-bedrock-priority-flex-inference-service-tiers).
 *   flex      "Discounted standard model rate" (https://aws.amazon.com/bedrock/service-tiers);
 *             "priced at a discount relative to the Standard tier" (the What's New post above).
 *
 * AWS publishes the tier prices only in the per-model tables of https://aws.amazon.com/bedrock/pricing/,
 * which render client-side; no text we could cite states the premium or the discount as a
 * number. DEFAULT_TIER_MULTIPLIERS (priority ×1.75, i.e. +75%; flex ×0.5, i.e. −50%) are therefore
 * ASSUMPTIONS matching the figures commonly quoted for the supported models; set
 * RELAY_PRICES_TIER_MULTIPLIERS, or give a model explicit tier prices in RELAY_PRICES_JSON, when
 * your bill says otherwise.
 *
 * Only models AWS documents as supporting Priority and Flex carry tier prices in the built-in
 * table (TIERED_MODELS_SOURCE); for any other model those tiers are unpriced, so budgeted keys are
 * refused them (lambda/policy/service-tier.ts) rather than charged at a guess.
 */
import { PriceValueError } from './units.js';

/** Bedrock's ServiceTierType. */
export type ServiceTier = 'default' | 'priority' | 'flex' | 'reserved';

/** The tiers priced differently from standard, and so priced per model. */
export type PricedTier = 'priority' | 'flex';

export const PRICED_TIERS: readonly PricedTier[] = ['priority', 'flex'];

/** Tiers billed at the standard price (undefined: no tier asked for, which Bedrock serves as default). */
export function isStandardTier(tier: string | undefined): boolean {
  return tier === undefined || tier === 'default' || tier === 'reserved';
}

export function isPricedTier(tier: string | undefined): tier is PricedTier {
  return tier === 'priority' || tier === 'flex';
}

/** An exact multiplier: num / den. */
export interface Ratio {
  readonly num: bigint;
  readonly den: bigint;
}

export type TierMultipliers = Readonly<Record<PricedTier, Ratio>>;

/** Assumptions, see above: priority = standard × 1.75, flex = standard × 0.5. */
export const DEFAULT_TIER_MULTIPLIER_VALUES: Readonly<Record<PricedTier, string>> = { priority: '1.75', flex: '0.5' };

export const TIERED_MODELS_SOURCE =
  "docs.aws.amazon.com/bedrock/latest/userguide/service-tiers-inference.html (models supported by Priority and Flex) and the What's New post of 2025-11-18";

const DECIMAL = /^(\d+)(?:\.(\d*))?$/;

/** A non-negative decimal (number or string) → an exact ratio, e.g. 1.75 → 175/100. */
export function parseMultiplier(value: unknown): Ratio {
  if (typeof value === 'number' && (!Number.isFinite(value) || value < 0))
    throw new PriceValueError(`must be a finite, non-negative number, got ${String(value)}`);
  if (typeof value !== 'number' && typeof value !== 'string') throw new PriceValueError(`must be a number or decimal string, got ${JSON.stringify(value)}`);
  const text = (typeof value === 'number' ? String(value) : value).trim();
  const match = DECIMAL.exec(text);
  if (!match) throw new PriceValueError(`must be a non-negative decimal number like 1.75, got ${JSON.stringify(value)}`);
  const [, whole, fraction = ''] = match;
  if (fraction.length > 12) throw new PriceValueError(`has more than 12 decimals: ${text}`);
  return { num: BigInt(`${whole}${fraction}`), den: 10n ** BigInt(fraction.length) };
}

export const DEFAULT_TIER_MULTIPLIERS: TierMultipliers = {
  priority: parseMultiplier(DEFAULT_TIER_MULTIPLIER_VALUES.priority),
  flex: parseMultiplier(DEFAULT_TIER_MULTIPLIER_VALUES.flex),
};

export function ratioToNumber(ratio: Ratio): number {
  return Number(ratio.num) / Number(ratio.den);
}
