import { systemClock, type Clock, type KeyRecord } from './types.js';

export interface KeyCacheOptions {
  /** How long a found key may be served from memory (config keyCacheTtlSeconds; default 30). */
  readonly ttlSeconds?: number;
  /**
   * How long "no such key" may be remembered. Short (default 5 s, never more than ttlSeconds), so
   * a key created in another environment works here within that time even if someone presented
   * it before it existed; long enough that a flood of invalid keys costs one read each per 5 s
   * instead of one per request.
   */
  readonly negativeTtlSeconds?: number;
  /** Bounds memory when callers spray random keys; the oldest entries go first. */
  readonly maxEntries?: number;
  readonly clock?: Clock;
}

interface Entry {
  readonly record: KeyRecord | undefined;
  readonly expiresAt: number;
}

/**
 * Key records cached per Lambda environment, keyed by token (never by secret). A change made
 * elsewhere (block, delete, regenerate in another environment or with the CLI) is seen here
 * within ttlSeconds; `invalidate` makes one made in this environment visible at once.
 * Store failures are never cached: the next request asks again (and fails closed meanwhile).
 */
export class KeyCache {
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  private readonly maxEntries: number;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<string, Promise<KeyRecord | undefined>>();
  /** Bumped by every invalidation, so a load that started before it cannot store a stale answer after it. */
  private generation = 0;

  constructor(options: KeyCacheOptions = {}) {
    const ttlSeconds = options.ttlSeconds ?? 30;
    this.ttlMs = ttlSeconds * 1000;
    this.negativeTtlMs = Math.min(options.negativeTtlSeconds ?? 5, ttlSeconds) * 1000;
    this.maxEntries = options.maxEntries ?? 10_000;
    this.clock = options.clock ?? systemClock;
  }

  /** The cached answer for a token, or the loader's (shared by concurrent callers). */
  async getOrLoad(token: string, load: () => Promise<KeyRecord | undefined>): Promise<KeyRecord | undefined> {
    const now = this.clock();
    const entry = this.entries.get(token);
    if (entry && entry.expiresAt > now) return entry.record;
    if (entry) this.entries.delete(token);

    const pending = this.inFlight.get(token);
    if (pending) return pending;
    const generation = this.generation;
    const loading = load().then(
      (record) => {
        if (this.inFlight.get(token) === loading) this.inFlight.delete(token);
        if (generation === this.generation) this.store(token, record);
        return record;
      },
      (error: unknown) => {
        if (this.inFlight.get(token) === loading) this.inFlight.delete(token);
        throw error;
      },
    );
    this.inFlight.set(token, loading);
    return loading;
  }

  /** Forget a token now (admin calls in this environment). */
  invalidate(token: string): void {
    this.generation++;
    this.entries.delete(token);
    this.inFlight.delete(token);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.inFlight.clear();
  }

  get size(): number {
    return this.entries.size;
  }

  private store(token: string, record: KeyRecord | undefined): void {
    const ttl = record ? this.ttlMs : this.negativeTtlMs;
    if (ttl <= 0) return;
    this.entries.delete(token);
    this.entries.set(token, { record, expiresAt: this.clock() + ttl });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
