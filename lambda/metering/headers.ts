/**
 * InvokeModel reports usage only in response headers; the body is the model's own format and
 * is not read at all.
 */
import type { Meter, MeterResult } from '../pipeline.js';
import { headerCount, UsageState } from './usage.js';

export const INVOKE_USAGE_HEADERS = {
  inputTokens: 'x-amzn-bedrock-input-token-count',
  outputTokens: 'x-amzn-bedrock-output-token-count',
  cacheReadInputTokens: 'x-amzn-bedrock-cache-read-input-token-count',
  cacheWriteInputTokens: 'x-amzn-bedrock-cache-write-input-token-count',
} as const;

/** Header lookup that does not depend on the caller having lower-cased the names. */
export function headerValue(headers: Readonly<Record<string, string>>, name: string): string | undefined {
  const direct = headers[name];
  if (direct !== undefined) return direct;
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return value;
  }
  return undefined;
}

export class HeaderMeter implements Meter {
  private readonly outcome: MeterResult;

  constructor(headers: Readonly<Record<string, string>>) {
    const state = new UsageState();
    for (const [field, name] of Object.entries(INVOKE_USAGE_HEADERS) as [keyof typeof INVOKE_USAGE_HEADERS, string][]) {
      state.set(field, headerCount(headerValue(headers, name)));
    }
    this.outcome = state.result();
  }

  observe(): void {}

  finish(): MeterResult {
    return this.outcome;
  }
}
