/**
 * Price overrides from configuration, laid over the built-in table:
 *
 *   RELAY_PRICES_FILE  path of a JSON file
 *   RELAY_PRICES_JSON  inline JSON (applied after the file, so it wins)
 *
 * Both hold one object mapping model IDs (any spelling normalizeModelId accepts) to prices in
 * USD per 1K tokens, the built-in table's format:
 *
 *   {"anthropic.claude-opus-4-7": {"input": 0.0055, "output": 0.0275, "cacheRead": 0.00055, "cacheWrite": 0.006875},
 *    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc": {"input": "0.003", "output": "0.015"},
 *    "meta.llama3-70b-instruct": null}
 *
 * An entry replaces the model's whole price (fields are not merged with the built-in one);
 * `null` removes a built-in price (the model becomes unpriced). Anything invalid stops the
 * relay at start with an error naming the variable, the model and the field.
 *
 * Service tiers (tiers.ts): an entry's `"tiers": {"priority": true, "flex": {"multiplier": 0.45}}`
 * prices a model's priority and flex calls; `true` means the standard price times
 *
 *   RELAY_PRICES_TIER_MULTIPLIERS  e.g. {"priority": 1.75, "flex": 0.5} (those are the defaults,
 *                                   assumptions: AWS states no figure in citable text)
 *
 * and explicit prices ({"priority": {"input": 0.00026, "output": 0.00105}}) replace the multiplier.
 */
import { readFileSync } from 'node:fs';
import { PriceBook, PriceTableError } from './book.js';
import { BUILTIN_PRICES, type PriceSpec } from './table.js';
import { DEFAULT_TIER_MULTIPLIERS, parseMultiplier, PRICED_TIERS, type PricedTier, type Ratio, type TierMultipliers } from './tiers.js';
import { PriceValueError } from './units.js';

export class PriceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PriceConfigError';
  }
}

export type ReadTextFile = (path: string) => string;

export function loadPriceBook(
  env: Readonly<Record<string, string | undefined>> = process.env,
  readFile: ReadTextFile = (path) => readFileSync(path, 'utf8'),
): PriceBook {
  const multipliers = tierMultipliersFrom(env.RELAY_PRICES_TIER_MULTIPLIERS);
  let book = PriceBook.compile(BUILTIN_PRICES, 'built-in price table', multipliers);
  const file = env.RELAY_PRICES_FILE?.trim();
  if (file) {
    let text: string;
    try {
      text = readFile(file);
    } catch (error) {
      throw new PriceConfigError(`RELAY_PRICES_FILE: cannot read ${file}: ${(error as Error).message}`);
    }
    book = overlay(book, text, `RELAY_PRICES_FILE (${file})`);
  }
  const inline = env.RELAY_PRICES_JSON?.trim();
  if (inline) book = overlay(book, inline, 'RELAY_PRICES_JSON');
  return book;
}

/** RELAY_PRICES_TIER_MULTIPLIERS laid over the defaults; a tier left out keeps its default. */
export function tierMultipliersFrom(text: string | undefined): TierMultipliers {
  if (!text?.trim()) return DEFAULT_TIER_MULTIPLIERS;
  const origin = 'RELAY_PRICES_TIER_MULTIPLIERS';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PriceConfigError(`${origin}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PriceConfigError(`${origin}: must be a JSON object like {"priority": 1.75, "flex": 0.5}`);
  }
  const result: Record<PricedTier, Ratio> = { ...DEFAULT_TIER_MULTIPLIERS };
  for (const [tier, value] of Object.entries(parsed)) {
    if (!(PRICED_TIERS as readonly string[]).includes(tier))
      throw new PriceConfigError(`${origin}.${tier}: unknown tier (expected ${PRICED_TIERS.join(' or ')})`);
    try {
      result[tier as PricedTier] = parseMultiplier(value);
    } catch (error) {
      if (error instanceof PriceValueError) throw new PriceConfigError(`${origin}.${tier}: ${error.message}`);
      throw error;
    }
  }
  return result;
}

function overlay(book: PriceBook, text: string, origin: string): PriceBook {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new PriceConfigError(`${origin}: not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PriceConfigError(
      `${origin}: must be a JSON object mapping model IDs to prices, e.g. {"anthropic.claude-opus-4-7": {"input": 0.0055, "output": 0.0275}}`,
    );
  }
  try {
    return book.with(parsed as Record<string, PriceSpec | null>, origin);
  } catch (error) {
    if (error instanceof PriceTableError) throw new PriceConfigError(error.message);
    throw error;
  }
}

let defaultBook: PriceBook | undefined;

/** The book from process.env, built once. Call it at start so a bad override fails fast. */
export function defaultPriceBook(): PriceBook {
  defaultBook ??= loadPriceBook();
  return defaultBook;
}
