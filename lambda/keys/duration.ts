/**
 * Durations as LiteLLM accepts them for `duration` and `budget_duration`: a positive whole
 * number and a unit — s, m, h, d, w, or mo (calendar months). "30s", "30m", "12h", "30d", "1mo".
 */
export type ParsedDuration = { readonly seconds: number } | { readonly months: number };

const DURATION = /^(\d{1,9})(s|m|h|d|w|mo)$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

export function parseDuration(text: string): ParsedDuration | undefined {
  const match = DURATION.exec(text.trim());
  if (!match) return undefined;
  const amount = Number(match[1]);
  if (amount <= 0) return undefined;
  const unit = match[2]!;
  return unit === 'mo' ? { months: amount } : { seconds: amount * UNIT_SECONDS[unit]! };
}

/** `from` plus the duration, in epoch milliseconds. Months are calendar months (UTC). */
export function addDuration(from: number, duration: ParsedDuration): number {
  if ('seconds' in duration) return from + duration.seconds * 1000;
  const date = new Date(from);
  const day = date.getUTCDate();
  date.setUTCDate(1);
  date.setUTCMonth(date.getUTCMonth() + duration.months);
  // Jan 31 + 1 month is the end of February, not March 3rd.
  const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  date.setUTCDate(Math.min(day, lastDay));
  return date.getTime();
}
