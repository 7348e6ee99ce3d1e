/**
 * What one relayed call did, gathered as it proceeds and read once at its end by telemetry
 * (lambda/accounting/telemetry.ts: the metrics and the relay-call log line).
 *
 * The app creates it when a request for a relay path arrives (lambda/app.ts) and hands it down:
 * the relay core (lambda/relay.ts) times the upstream call and records its outcome; admission
 * (lambda/accounting/admission.ts) notes who called, what and why it was refused, then the price
 * and tokens it settled; the app records the status the response started with. `log` is the
 * app's logger with this call's requestId bound to every line.
 */
import type { ResponseSink } from './http/sink.js';
import { childLog, type LogFn } from './observability/log.js';
import type { CallOutcome, MeterResult, RelayRequest } from './pipeline.js';
import type { CallPrice } from './pricing/book.js';
import type { LedgerTokens } from './accounting/ledger.js';

/** What admission and settle learn about a call. */
export interface CallFacts {
  readonly keyAlias?: string;
  readonly operation?: string;
  readonly model?: string;
  readonly price?: CallPrice;
  readonly tokens?: LedgerTokens;
  /** Why admission refused the call (budget, rpm, tpm, parallel, policy). */
  readonly refusal?: string;
}

export class CallRecord {
  readonly requestId: string;
  readonly log: LogFn;
  /** When the app took the request (performance.now()). */
  readonly started = performance.now();
  /** The status the response started with; undefined while none was sent. */
  status?: number;
  facts: CallFacts = {};
  /** What happened upstream; undefined for calls refused before they went there. */
  outcome?: CallOutcome;

  /** Upstream timings, measured from when the call goes upstream (after admission). */
  private upstreamStarted?: number;
  private upstreamLatencyMs?: number;
  private timeToFirstByteMs?: number;
  private bytesOut = 0;

  constructor(request: RelayRequest, log: LogFn) {
    this.requestId = request.requestId;
    this.log = childLog(log, { requestId: request.requestId });
  }

  /** Adds what a stage knows (later notes win). */
  note(facts: CallFacts): void {
    this.facts = { ...this.facts, ...facts };
  }

  /** The sink, with the status the response starts with recorded here. */
  observe(sink: ResponseSink): ResponseSink {
    return {
      start: (statusCode, headers) => {
        this.status = statusCode;
        sink.start(statusCode, headers);
      },
      write: (chunk) => sink.write(chunk),
      end: () => sink.end(),
      get committed() {
        return sink.committed;
      },
      get clientGone() {
        return sink.clientGone;
      },
    };
  }

  goingUpstream(): void {
    this.upstreamStarted = performance.now();
  }

  upstreamAnswered(): void {
    this.upstreamLatencyMs = this.sinceUpstream();
  }

  /** A chunk of `bytes` is about to be written to the client. */
  sending(bytes: number): void {
    this.timeToFirstByteMs ??= this.sinceUpstream();
    this.bytesOut += bytes;
  }

  /** The outcome of a call Bedrock answered, with the timings and bytes recorded so far. */
  answered(status: number, meter: MeterResult | undefined, ended: { clientAborted: boolean; upstreamFailed: boolean }): CallOutcome {
    return {
      status,
      meter,
      clientAborted: ended.clientAborted,
      upstreamFailed: ended.upstreamFailed,
      upstreamLatencyMs: this.upstreamLatencyMs,
      timeToFirstByteMs: this.timeToFirstByteMs,
      totalMs: this.sinceUpstream(),
      bytesOut: this.bytesOut,
    };
  }

  /** The outcome of a call whose upstream could not be reached or answered nothing usable. */
  unanswered(status: number, clientAborted: boolean): CallOutcome {
    return { status, clientAborted, upstreamFailed: true, totalMs: this.sinceUpstream(), bytesOut: 0 };
  }

  /** Milliseconds since the app took the request. */
  elapsedMs(): number {
    return performance.now() - this.started;
  }

  private sinceUpstream(): number {
    return performance.now() - (this.upstreamStarted ?? this.started);
  }
}
