/**
 * Token counts as a meter collects them, before they become a MeterResult.
 *
 * Every reader (JSON body, event stream, SSE, headers) writes into one UsageState so that the
 * rules "only well-formed counts are taken" and "reported means Bedrock told us something" live
 * in one place.
 */
import type { MeterResult, TokenUsage } from '../pipeline.js';

export type UsageField = 'inputTokens' | 'outputTokens' | 'cacheReadInputTokens' | 'cacheWriteInputTokens';

/** A token count as reported in JSON: a non-negative safe integer. */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** A token count as reported in a header: decimal digits only. */
export function headerCount(value: string | undefined): number | undefined {
  return value !== undefined && /^\s*\d{1,15}\s*$/.test(value) ? Number(value) : undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class UsageState {
  private readonly fields: Record<UsageField, number | undefined> = {
    inputTokens: undefined,
    outputTokens: undefined,
    cacheReadInputTokens: undefined,
    cacheWriteInputTokens: undefined,
  };
  private guardrailUnits: number | undefined;
  responseModel: string | undefined;

  /** Latest value wins (streams that restate a count, e.g. Anthropic's message_delta). */
  set(field: UsageField, value: unknown): void {
    const n = count(value);
    if (n !== undefined) this.fields[field] = n;
  }

  /** Adds to the count (usage spread over several reports, e.g. agent trace steps). */
  add(field: UsageField, value: unknown): void {
    const n = count(value);
    if (n !== undefined) this.fields[field] = (this.fields[field] ?? 0) + n;
  }

  addGuardrailUnits(value: unknown): void {
    const n = count(value);
    if (n !== undefined) this.guardrailUnits = (this.guardrailUnits ?? 0) + n;
  }

  setModel(value: unknown): void {
    if (typeof value === 'string' && value.length > 0 && value.length <= 2048) this.responseModel = value;
  }

  get reported(): boolean {
    return Object.values(this.fields).some((v) => v !== undefined) || this.guardrailUnits !== undefined;
  }

  result(): MeterResult {
    const usage: TokenUsage = {
      inputTokens: this.fields.inputTokens ?? 0,
      outputTokens: this.fields.outputTokens ?? 0,
      cacheReadInputTokens: this.fields.cacheReadInputTokens ?? 0,
      cacheWriteInputTokens: this.fields.cacheWriteInputTokens ?? 0,
    };
    if (this.guardrailUnits !== undefined) usage.guardrailUnits = this.guardrailUnits;
    return this.responseModel === undefined
      ? { usage, reported: this.reported }
      : { usage, reported: this.reported, responseModel: this.responseModel };
  }
}

export function unreported(): MeterResult {
  return new UsageState().result();
}
