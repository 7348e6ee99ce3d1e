/**
 * The seams of a relayed call. The relay core (lambda/relay.ts) drives them in this order:
 *
 *   authenticate(credential)            → Principal            (lambda/auth, lambda/keys)
 *   admission.admit(call)               → Admission            (policy, budgets, limits)
 *   upstream call, streamed to the client; meter.observe(chunk) on every chunk as it passes
 *   admission.settle(outcome)                                  (ledger, lease release)
 *
 * Each seam is a plain interface so tests can run the real implementations against dynalite
 * and the fake Bedrock, and so the core stays small.
 */
import type { Principal } from './auth/principal.js';
import type { CallRecord } from './call-record.js';
import type { JsonDocument } from './http/json-document.js';
import type { MatchedRoute } from './routes/match.js';

export interface RelayRequest {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  /** Lower-cased names, duplicate values joined with ',' (as a Function URL delivers them). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  readonly requestId: string;
  readonly sourceIp?: string;
}

/** A call about to go upstream, after routing and authentication. */
export interface CallContext {
  readonly request: RelayRequest;
  readonly match: MatchedRoute;
  readonly principal: Principal;
  /** The model the call targets (decoded path label or the JSON body's `model`), if any. */
  readonly model?: string;
  /**
   * The request body parsed once, before admission (lambda/routes/request-document.ts): read
   * body fields from `document.json` (undefined when the body is empty or not JSON), never by
   * parsing or searching the bytes again. A JSON body with a duplicate name, a BOM or invalid
   * UTF-8 was refused before this was built. Absent only on calls built by hand (tests).
   */
  readonly document?: JsonDocument;
  /** What the call did so far, for telemetry (lambda/call-record.ts); absent only on calls built by hand (tests). */
  readonly record?: CallRecord;
}

/** Token counts as Bedrock reports them; absent fields were not reported. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens: number;
  cacheWriteInputTokens: number;
  /** Guardrail policy units (ApplyGuardrail), summed over policy types. */
  guardrailUnits?: number;
}

export interface MeterResult {
  readonly usage: TokenUsage;
  /** True when Bedrock reported usage (false: counted as a request only). */
  readonly reported: boolean;
  /**
   * The answer ended before its final usage report (client gone, upstream failed mid-stream, a
   * stream or JSON body without usage): `usage` is what was reported so far, with
   * `outputTokens` at least an upward estimate from the content relayed (lambda/metering/usage.ts,
   * estimateOutputTokens). Absent when the counts are Bedrock's final ones.
   */
  readonly estimated?: boolean;
  /**
   * Only with `estimated`: no input count was seen (ConverseStream and the OpenAI streams report
   * input only at the end), so `inputTokens` (and the cache counts) are 0 and stand for
   * "unknown", not "none": the accounting layer should charge its own input estimate.
   */
  readonly inputUnknown?: boolean;
  /** The model Bedrock says answered, when the response names one. */
  readonly responseModel?: string;
}

/** Reads usage from a copy of the response bytes as they pass; never alters or delays them. */
export interface Meter {
  observe(chunk: Uint8Array): void;
  finish(): MeterResult;
}

export type MeterFactory = (call: CallContext, response: { status: number; headers: Readonly<Record<string, string>> }) => Meter;

/** What happened, for the ledger, metrics and the log line. */
export interface CallOutcome {
  readonly status: number;
  readonly meter?: MeterResult;
  /** The client went away before the end (the upstream call was aborted). */
  readonly clientAborted: boolean;
  /** The upstream failed mid-stream or could not be reached. */
  readonly upstreamFailed: boolean;
  readonly upstreamLatencyMs?: number; // until response headers
  readonly timeToFirstByteMs?: number; // until the first body byte reached the client
  readonly totalMs: number;
  readonly bytesOut: number;
}

/** Policy, budget and limit checks for one call; settle() runs after the last byte. */
export interface Admission {
  settle(outcome: CallOutcome): Promise<void>;
}

export interface AdmissionControl {
  /** Throws a RelayError (403, 429…) to refuse the call; nothing goes upstream then. */
  admit(call: CallContext): Promise<Admission>;
}
