/**
 * The local server's protective limits: what stands between a socket on the network and the
 * relay's memory, file descriptors and event loop. A Function URL gets these from AWS's front
 * end; `npm start` has to provide them itself. Every one is configurable (RELAY_* env vars).
 */
export interface ServerLimits {
  /** A request head (h1) must be complete this long after the connection opened or the previous response ended. */
  readonly headersTimeoutMs: number;
  /** A request body that receives no byte for this long is answered 408 and its connection closed. */
  readonly bodyIdleTimeoutMs: number;
  /** An idle HTTP/1.1 keep-alive connection is closed after this long. */
  readonly keepAliveTimeoutMs: number;
  /** An h2 session with no frame in either direction for this long is closed (GOAWAY, open streams finish). */
  readonly h2IdleTimeoutMs: number;
  /** Connections beyond this many are closed as soon as they are accepted. */
  readonly maxConnections: number;
  /** Request bytes buffered across every in-flight request; beyond it new bodies get 503 + retry-after. */
  readonly maxBufferedRequestBytes: number;
  /** On SIGTERM/SIGINT, how long calls in flight may take to finish (and record their usage). */
  readonly shutdownGraceMs: number;
  /**
   * Invocations running at once (each until its usage is written). Beyond it, requests wait,
   * bodies read, before the handler starts: when usage writes fall behind, clients slow down
   * instead of the writes piling up until they time out.
   */
  readonly maxInFlightCalls: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  bodyIdleTimeoutMs: 10_000,
  // Above the 60 s idle timeout of common load balancers and proxies, so they close first.
  keepAliveTimeoutMs: 65_000,
  h2IdleTimeoutMs: 65_000,
  maxConnections: 1_024,
  maxBufferedRequestBytes: 256 * 1024 * 1024,
  shutdownGraceMs: 30_000,
  maxInFlightCalls: 512,
};

/** The environment variable behind each limit. */
export const LIMIT_ENV: Readonly<Record<keyof ServerLimits, string>> = {
  headersTimeoutMs: 'RELAY_HEADERS_TIMEOUT_MS',
  bodyIdleTimeoutMs: 'RELAY_BODY_TIMEOUT_MS',
  keepAliveTimeoutMs: 'RELAY_KEEP_ALIVE_TIMEOUT_MS',
  h2IdleTimeoutMs: 'RELAY_H2_IDLE_TIMEOUT_MS',
  maxConnections: 'RELAY_MAX_CONNECTIONS',
  maxBufferedRequestBytes: 'RELAY_MAX_BUFFERED_REQUEST_BYTES',
  shutdownGraceMs: 'RELAY_SHUTDOWN_TIMEOUT_MS',
  maxInFlightCalls: 'RELAY_MAX_IN_FLIGHT_CALLS',
};

/** Reads the limits from the environment; a malformed value stops the server at start. */
export function limitsFromEnv(env: Readonly<Record<string, string | undefined>>): ServerLimits {
  const limits: Record<string, number> = { ...DEFAULT_LIMITS };
  for (const [field, name] of Object.entries(LIMIT_ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed <= 0) throw new Error(`${name} must be a positive whole number, got "${value}"`);
    limits[field] = parsed;
  }
  return limits as unknown as ServerLimits;
}
