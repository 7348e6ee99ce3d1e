/**
 * A compiled price table: keys normalised, prices converted to integer pico-USD per token, and
 * the lookup that maps any spelling of a model ID to its price.
 */
import { normalizeModelId, type NormalizedModel } from '../models/ids.js';
import type { TokenUsage } from '../pipeline.js';
import type { PriceSpec, TokenPrices } from './table.js';
import {
  DEFAULT_TIER_MULTIPLIERS,
  isPricedTier,
  isStandardTier,
  parseMultiplier,
  PRICED_TIERS,
  ratioToNumber,
  type PricedTier,
  type Ratio,
  type TierMultipliers,
} from './tiers.js';
import { PICOS_PER_NANO, picosToNanos, PriceValueError, usdPer1kToPicosPerToken } from './units.js';

/** Pico-USD per token. */
export interface CompiledTokenPrices {
  readonly input: bigint;
  readonly output: bigint;
  readonly cacheRead: bigint;
  readonly cacheWrite: bigint;
}

export interface CompiledPrice extends CompiledTokenPrices {
  readonly longContext?: CompiledTokenPrices & { readonly aboveInputTokens: number };
  /** The model's output ceiling, for reserving calls that state no max tokens (lambda/accounting/reservation.ts). */
  readonly maxOutputTokens?: number;
  /** Priority / flex prices; a tier absent here is unpriced for the model. */
  readonly tiers?: Readonly<Partial<Record<PricedTier, CompiledTier>>>;
}

/** A tier's price: the standard price times an exact ratio, or prices of its own. */
export type CompiledTier = { readonly multiplier: Ratio } | { readonly price: CompiledPrice };

export interface CallPrice {
  /** The call's cost in nano-USD (1e-9 USD), an exact integer. 0 when unpriced. */
  readonly costNanos: number;
  /** False when no price is known for the model (its tokens are still counted). */
  readonly priced: boolean;
  /** The table key that priced the call. */
  readonly priceKey?: string;
  /** The service tier it was priced at, when not standard (`priority`, `flex`). */
  readonly serviceTier?: string;
}

/**
 * The price function accounting calls: `tier` is the service tier the call asked for (a
 * ServiceTier, or any other string, which no price covers); absent, `default` and `reserved`
 * mean the standard price.
 */
export type PriceFn = (model: ModelCandidates, usage: TokenUsage, tier?: string) => CallPrice;

/** A model ID, or candidates in order of preference. */
export type ModelCandidates = string | undefined | readonly (string | undefined)[];

/** A table entry that cannot be used; `path` says which one (e.g. `"my.model".input`). */
export class PriceTableError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'PriceTableError';
  }
}

/** The key a model ID is stored under: profile prefix (if any) + the ID as normalised. */
export function priceKeyOf(model: NormalizedModel): string {
  if (model.opaque) return model.id;
  return model.profilePrefix ? `${model.profilePrefix}.${model.base}` : model.base;
}

/** Keys to try for a model, most specific first. */
function candidates(model: NormalizedModel): string[] {
  if (model.opaque) return [model.id];
  const keys: string[] = [];
  if (model.profilePrefix) keys.push(`${model.profilePrefix}.${model.base}`, `${model.profilePrefix}.${model.family}`);
  keys.push(model.base, model.family);
  // Last resort: the release-date-less (mantle) spelling, e.g. a dated runtime ID whose price
  // is only listed under `anthropic.claude-haiku-4-5`.
  if (model.undated !== model.family) {
    if (model.profilePrefix) keys.push(`${model.profilePrefix}.${model.undated}`);
    keys.push(model.undated);
  }
  return keys;
}

/**
 * Dated keys by their undated spelling (`anthropic.claude-haiku-4-5` →
 * `anthropic.claude-haiku-4-5-20251001`), so that the mantle ID, which has no release date,
 * finds the dated runtime price. Where several releases share an undated name the newest date
 * wins: the undated ID names the current release.
 */
function undatedIndex(keys: Iterable<string>): Map<string, string> {
  const index = new Map<string, string>();
  for (const key of keys) {
    const model = normalizeModelId(key);
    if (model.opaque || model.undated === model.family) continue;
    const undated = model.profilePrefix ? `${model.profilePrefix}.${model.undated}` : model.undated;
    const current = index.get(undated);
    if (current === undefined || current < key) index.set(undated, key);
  }
  return index;
}

export class PriceBook {
  private readonly prices: ReadonlyMap<string, CompiledPrice>;
  private readonly undated: ReadonlyMap<string, string>;
  /** What `tiers: {priority: true}` means in this book's entries. */
  readonly multipliers: TierMultipliers;

  private constructor(prices: Map<string, CompiledPrice>, multipliers: TierMultipliers) {
    this.prices = prices;
    this.undated = undatedIndex(prices.keys());
    this.multipliers = multipliers;
  }

  /**
   * Compiles a table; throws PriceTableError naming the first bad entry. `multipliers` price the
   * tiers an entry marks `true` (and those of every entry laid over it later with `with`).
   */
  static compile(table: Readonly<Record<string, PriceSpec>>, origin = 'price table', multipliers: TierMultipliers = DEFAULT_TIER_MULTIPLIERS): PriceBook {
    const prices = new Map<string, CompiledPrice>();
    for (const [rawKey, spec] of Object.entries(table)) {
      const key = priceKeyOf(normalizeModelId(rawKey));
      prices.set(key, compileSpec(spec, `${origin} "${rawKey}"`, multipliers));
    }
    return new PriceBook(prices, multipliers);
  }

  /** This book with `overrides` laid over it: an entry replaces the whole price; `null` removes it. */
  with(overrides: Readonly<Record<string, PriceSpec | null>>, origin: string): PriceBook {
    const prices = new Map(this.prices);
    for (const [rawKey, spec] of Object.entries(overrides)) {
      const key = priceKeyOf(normalizeModelId(rawKey));
      if (spec === null) prices.delete(key);
      else prices.set(key, compileSpec(spec, `${origin} "${rawKey}"`, this.multipliers));
    }
    return new PriceBook(prices, this.multipliers);
  }

  get size(): number {
    return this.prices.size;
  }

  keys(): string[] {
    return [...this.prices.keys()].sort();
  }

  lookup(model: string): { key: string; price: CompiledPrice } | undefined {
    const normalized = normalizeModelId(model);
    const keys = candidates(normalized);
    for (const key of keys) {
      const price = this.prices.get(key);
      if (price) return { key, price };
    }
    // An ID without a release date (bedrock-mantle's `anthropic.claude-haiku-4-5`) falls back to
    // the dated entry of the same model. Only then: a dated ID never borrows another date's price.
    if (!normalized.opaque && normalized.undated === normalized.family) {
      for (const candidate of keys) {
        const key = this.undated.get(candidate);
        const price = key === undefined ? undefined : this.prices.get(key);
        if (key !== undefined && price) return { key, price };
      }
    }
    return undefined;
  }

  /**
   * The cost of one call; unknown (or absent) models are unpriced at 0, never an error.
   * Given several candidate models, the first with a price is used: pass
   * `[call.model, meter.responseModel]`, so that the model asked for prices the call, and the
   * model that answered stands in when the one asked for has no public price (a prompt router
   * ARN, an agent whose model only its trace names).
   */
  priceCall(model: ModelCandidates, usage: TokenUsage, tier?: string): CallPrice {
    for (const candidate of typeof model === 'string' || model === undefined ? [model] : model) {
      const found = candidate ? this.lookup(candidate) : undefined;
      if (!found) continue;
      if (isStandardTier(tier)) return { costNanos: costNanos(found.price, usage), priced: true, priceKey: found.key };
      // A model that has a price but not this tier's is unpriced: a price for the model that
      // answered (the next candidate) would not be the tier's price of the one asked for either.
      const tiered = isPricedTier(tier) ? found.price.tiers?.[tier] : undefined;
      if (!tiered) return { costNanos: 0, priced: false, serviceTier: tier };
      return { costNanos: tierCostNanos(found.price, tiered, usage), priced: true, priceKey: found.key, serviceTier: tier };
    }
    return { costNanos: 0, priced: false, ...(isStandardTier(tier) ? {} : { serviceTier: tier }) };
  }

  /**
   * How many times the standard price a call of `model` costs at `tier`, at most (for worst-case
   * estimates such as budget reservations): 1 for standard tiers, the tier's multiplier, or for
   * explicit tier prices the largest ratio of a tier price to its standard price. Undefined when
   * the model or its tier has no price, or no ratio bounds it (a tier price over a zero standard one).
   */
  tierMultiplier(model: ModelCandidates, tier: string | undefined): number | undefined {
    for (const candidate of typeof model === 'string' || model === undefined ? [model] : model) {
      const found = candidate ? this.lookup(candidate) : undefined;
      if (!found) continue;
      if (isStandardTier(tier)) return 1;
      const tiered = isPricedTier(tier) ? found.price.tiers?.[tier] : undefined;
      if (!tiered) return undefined;
      return 'multiplier' in tiered ? ratioToNumber(tiered.multiplier) : largestRatio(found.price, tiered.price);
    }
    return undefined;
  }
}

/** See PriceBook.tierMultiplier. */
export function tierMultiplier(book: PriceBook, model: ModelCandidates, tier: string | undefined): number | undefined {
  return book.tierMultiplier(model, tier);
}

export function tierCostNanos(standard: CompiledPrice, tier: CompiledTier, usage: TokenUsage): number {
  if ('price' in tier) return costNanos(tier.price, usage);
  const picos = costPicos(standard, usage) * tier.multiplier.num;
  // One rounding, half up, of the exact product: picos × num / den → nanos.
  const divisor = tier.multiplier.den * PICOS_PER_NANO;
  return safeNanos((picos + divisor / 2n) / divisor);
}

function largestRatio(standard: CompiledPrice, tier: CompiledPrice): number | undefined {
  const pairs: [bigint, bigint][] = [];
  const fields = ['input', 'output', 'cacheRead', 'cacheWrite'] as const;
  for (const field of fields) pairs.push([standard[field], tier[field]]);
  if (standard.longContext || tier.longContext) {
    for (const field of fields) pairs.push([(standard.longContext ?? standard)[field], (tier.longContext ?? tier)[field]]);
  }
  let largest = 0;
  for (const [base, priced] of pairs) {
    if (base === 0n) {
      if (priced !== 0n) return undefined;
      continue;
    }
    largest = Math.max(largest, Number(priced) / Number(base));
  }
  return largest;
}

export function costNanos(price: CompiledPrice, usage: TokenUsage): number {
  return safeNanos(picosToNanos(costPicos(price, usage)));
}

function costPicos(price: CompiledPrice, usage: TokenUsage): bigint {
  const promptTokens = usage.inputTokens + usage.cacheReadInputTokens + usage.cacheWriteInputTokens;
  const rates = price.longContext && promptTokens > price.longContext.aboveInputTokens ? price.longContext : price;
  return (
    BigInt(usage.inputTokens) * rates.input +
    BigInt(usage.outputTokens) * rates.output +
    BigInt(usage.cacheReadInputTokens) * rates.cacheRead +
    BigInt(usage.cacheWriteInputTokens) * rates.cacheWrite
  );
}

function safeNanos(nanos: bigint): number {
  if (nanos > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`call cost out of range: ${nanos} nano-USD`);
  return Number(nanos);
}

const SPEC_FIELDS: ReadonlySet<string> = new Set(['input', 'output', 'cacheRead', 'cacheWrite', 'longContext', 'maxOutputTokens', 'tiers', 'source', 'note']);
const TIER_PRICE_FIELDS: ReadonlySet<string> = new Set(['input', 'output', 'cacheRead', 'cacheWrite', 'longContext']);
const LONG_FIELDS: ReadonlySet<string> = new Set(['input', 'output', 'cacheRead', 'cacheWrite', 'aboveInputTokens']);

function compileSpec(spec: unknown, path: string, multipliers: TierMultipliers): CompiledPrice {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw new PriceTableError(path, 'must be an object like {"input": 0.003, "output": 0.015} (USD per 1K tokens), or null to remove a built-in price');
  }
  const record = spec as Record<string, unknown>;
  rejectUnknown(record, SPEC_FIELDS, path);
  for (const field of ['source', 'note']) {
    if (record[field] !== undefined && typeof record[field] !== 'string') throw new PriceTableError(`${path}.${field}`, 'must be a string');
  }
  const compiled = compilePrices(record, path);
  const ceiling = record.maxOutputTokens;
  if (ceiling !== undefined && (typeof ceiling !== 'number' || !Number.isSafeInteger(ceiling) || ceiling <= 0)) {
    throw new PriceTableError(`${path}.maxOutputTokens`, 'must be a positive integer number of output tokens');
  }
  const prices: CompiledPrice = ceiling === undefined ? compiled : { ...compiled, maxOutputTokens: ceiling };
  if (record.tiers === undefined) return prices;
  return { ...prices, tiers: compileTiers(record.tiers, `${path}.tiers`, multipliers) };
}

function compileTiers(value: unknown, path: string, multipliers: TierMultipliers): Partial<Record<PricedTier, CompiledTier>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PriceTableError(path, 'must be an object like {"priority": true, "flex": {"multiplier": 0.5}}');
  }
  const record = value as Record<string, unknown>;
  rejectUnknown(record, new Set(PRICED_TIERS), path);
  const tiers: Partial<Record<PricedTier, CompiledTier>> = {};
  for (const tier of PRICED_TIERS) {
    const spec = record[tier];
    const tierPath = `${path}.${tier}`;
    if (spec === undefined || spec === false) continue;
    if (spec === true) {
      tiers[tier] = { multiplier: multipliers[tier] };
      continue;
    }
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
      throw new PriceTableError(tierPath, 'must be true (the configured multiplier), {"multiplier": 1.75}, or prices like {"input": 0.003, "output": 0.015}');
    }
    const tierRecord = spec as Record<string, unknown>;
    if ('multiplier' in tierRecord) {
      rejectUnknown(tierRecord, new Set(['multiplier']), tierPath);
      try {
        tiers[tier] = { multiplier: parseMultiplier(tierRecord.multiplier) };
      } catch (error) {
        if (error instanceof PriceValueError) throw new PriceTableError(`${tierPath}.multiplier`, error.message);
        throw error;
      }
      continue;
    }
    rejectUnknown(tierRecord, TIER_PRICE_FIELDS, tierPath);
    tiers[tier] = { price: compilePrices(tierRecord, tierPath) };
  }
  return tiers;
}

function compilePrices(record: Record<string, unknown>, path: string): CompiledPrice {
  const base = compileTokens(record, path);
  if (record.longContext === undefined) return base;
  const long = record.longContext;
  const longPath = `${path}.longContext`;
  if (typeof long !== 'object' || long === null || Array.isArray(long)) throw new PriceTableError(longPath, 'must be an object');
  const longRecord = long as Record<string, unknown>;
  rejectUnknown(longRecord, LONG_FIELDS, longPath);
  const above = longRecord.aboveInputTokens;
  if (typeof above !== 'number' || !Number.isSafeInteger(above) || above <= 0) {
    throw new PriceTableError(`${longPath}.aboveInputTokens`, 'must be a positive integer number of input tokens');
  }
  return { ...base, longContext: { ...compileTokens(longRecord, longPath), aboveInputTokens: above } };
}

function compileTokens(record: Record<string, unknown>, path: string): CompiledTokenPrices {
  const input = requiredPrice(record, 'input', path);
  return {
    input,
    output: requiredPrice(record, 'output', path),
    cacheRead: record.cacheRead === undefined ? input : price(record.cacheRead, `${path}.cacheRead`),
    cacheWrite: record.cacheWrite === undefined ? input : price(record.cacheWrite, `${path}.cacheWrite`),
  };
}

function requiredPrice(record: Record<string, unknown>, field: keyof TokenPrices, path: string): bigint {
  if (record[field] === undefined) throw new PriceTableError(`${path}.${field}`, 'is required (USD per 1K tokens)');
  return price(record[field], `${path}.${field}`);
}

function price(value: unknown, path: string): bigint {
  if (typeof value !== 'number' && typeof value !== 'string') {
    throw new PriceTableError(path, `must be a number or decimal string of USD per 1K tokens, got ${JSON.stringify(value)}`);
  }
  try {
    return usdPer1kToPicosPerToken(value);
  } catch (error) {
    if (error instanceof PriceValueError) throw new PriceTableError(path, error.message);
    throw error;
  }
}

function rejectUnknown(record: Record<string, unknown>, allowed: ReadonlySet<string>, path: string): void {
  for (const field of Object.keys(record)) {
    if (!allowed.has(field)) throw new PriceTableError(`${path}.${field}`, `unknown field (expected one of ${[...allowed].join(', ')})`);
  }
}
