/** Retries with capped exponential backoff and full jitter (AWS's recommendation for contended writes). */
export interface RetryPolicy {
  /** Tries in all, the first included. */
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** Five tries, at most 0.75 s of backoff between them (each try has the SDK's own retries too): only a failing DynamoDB makes an invocation wait. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 50, maxDelayMs: 2_000 };

export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `attempt` until it resolves or the policy is spent; rejects with the last error. */
export async function withRetry<T>(attempt: (tryNumber: number) => Promise<T>, policy: RetryPolicy, sleep: Sleep = realSleep): Promise<T> {
  let lastError: unknown;
  for (let tryNumber = 1; tryNumber <= Math.max(1, policy.attempts); tryNumber++) {
    try {
      return await attempt(tryNumber);
    } catch (error) {
      lastError = error;
      if (tryNumber >= policy.attempts) break;
      const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (tryNumber - 1));
      await sleep(Math.random() * cap);
    }
  }
  throw lastError;
}
