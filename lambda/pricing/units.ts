/**
 * Money as integers.
 *
 * Table prices are USD per 1K tokens, written as decimals. They are converted exactly (from
 * their decimal text, never through float arithmetic) into pico-USD (1e-12 USD) per token:
 * $0.00025 per 1K = 250 nano-USD = 250 000 pico-USD per token. Most real prices are whole
 * nano-USD per token, but not all (Nova Micro's cache read is $0.00000875 per 1K = 8.75
 * nano-USD per token), so the per-token unit is the pico; a price finer than that is refused.
 *
 * A call's cost is summed exactly in pico-USD and rounded once, half up, to whole nano-USD
 * (an error below $5e-10 per call, and only for prices that are not whole nano-USD per token).
 * Spend is stored and summed as integer nano-USD, so totals are exact sums of call costs.
 */

export const PICOS_PER_NANO = 1000n;

const DECIMAL = /^(\d+)(?:\.(\d*))?(?:e([+-]?\d+))?$/i;

/** Thrown for a price that is not a non-negative decimal with at most 12 decimals of USD per token. */
export class PriceValueError extends Error {}

/**
 * USD per 1K tokens (a number or a decimal string) → pico-USD per token, exactly.
 * Numbers are read from their shortest round-trip text, which is the decimal as written.
 */
export function usdPer1kToPicosPerToken(value: number | string): bigint {
  if (typeof value === 'number' && (!Number.isFinite(value) || value < 0)) {
    throw new PriceValueError(`must be a finite, non-negative number, got ${String(value)}`);
  }
  const text = (typeof value === 'number' ? String(value) : value).trim();
  const match = DECIMAL.exec(text);
  if (!match) throw new PriceValueError(`must be a non-negative decimal number, got ${JSON.stringify(value)}`);
  const [, whole, fraction = '', exponent = '0'] = match;
  const digits = BigInt(`${whole}${fraction}`);
  // value = digits × 10^(exponent − fraction.length) USD per 1K; × 10^9 → pico-USD per token.
  const shift = Number(exponent) - fraction.length + 9;
  if (shift >= 0) return digits * 10n ** BigInt(shift);
  const divisor = 10n ** BigInt(-shift);
  if (digits % divisor !== 0n) {
    throw new PriceValueError(`${text} USD per 1K tokens is finer than 1e-12 USD per token (the relay's unit); round it to at most 9 decimals of USD per 1K`);
  }
  return digits / divisor;
}

/** Picos → nanos, half up. */
export function picosToNanos(picos: bigint): bigint {
  return (picos + PICOS_PER_NANO / 2n) / PICOS_PER_NANO;
}

/** Nano-USD → USD as a number (for display and LiteLLM-compatible JSON; the ledger keeps nanos). */
export function nanosToUsd(nanos: number): number {
  return nanos / 1e9;
}

/** Nano-USD → an exact decimal string of USD, e.g. 1234 → "0.000001234". */
export function formatUsd(nanos: number | bigint): string {
  const n = BigInt(nanos);
  const negative = n < 0n;
  const abs = negative ? -n : n;
  const whole = abs / 1_000_000_000n;
  const fraction = (abs % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}`;
}

/** USD (e.g. a key's max_budget) → nano-USD, exactly from its decimal text, half up beyond 9 decimals. */
export function usdToNanos(usd: number | string): number {
  const text = (typeof usd === 'number' ? String(usd) : usd).trim();
  const negative = text.startsWith('-');
  const match = DECIMAL.exec(negative ? text.slice(1) : text);
  if (!match || (typeof usd === 'number' && !Number.isFinite(usd))) throw new PriceValueError(`not a USD amount: ${JSON.stringify(usd)}`);
  const [, whole, fraction = '', exponent = '0'] = match;
  const digits = BigInt(`${whole}${fraction}`);
  const shift = Number(exponent) - fraction.length + 9;
  let nanos: bigint;
  if (shift >= 0) {
    nanos = digits * 10n ** BigInt(shift);
  } else {
    const divisor = 10n ** BigInt(-shift);
    nanos = (digits + divisor / 2n) / divisor;
  }
  const result = Number(negative ? -nanos : nanos);
  if (!Number.isSafeInteger(result)) throw new PriceValueError(`USD amount out of range: ${text}`);
  return result;
}
