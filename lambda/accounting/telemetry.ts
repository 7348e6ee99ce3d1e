/**
 * One record per relayed call: CloudWatch EMF metrics through Powertools Metrics and one
 * structured log line through Powertools Logger.
 *
 * The app emits every call's CallRecord (lambda/call-record.ts) when it is done with it, including
 * calls refused before admission (401, unknown route) and those that fail mid-stream; admission
 * and settle note what they know in it (key alias, model, tokens, cost). That is inside the Lambda
 * invocation (the handler awaits the app, and the app awaits settle), so metrics are flushed per
 * invocation. Emission is synchronous from the first
 * metric to the flush: concurrent calls in one process (the local server) never mix dimensions.
 *
 * Metric contract (names in lambda/contract.ts, which lib/ alarms on): every call emits each of
 * METRICS' per-call metrics under the dimension sets [service] (totals: alarms and headline
 * graphs) and [service, model]; [service, keyAlias, model] only when per-key metrics are switched
 * on (RELAY_METRICS_PER_KEY), because CloudWatch bills every distinct name × dimension value as a
 * custom metric: per key it grows with keys × models. Per-key detail is always in the usage table,
 * `/key/usage` and the relay-call log line. Cardinality stays bounded: keyAlias is the alias
 * (or `key-<12 hex of the token>` for keys without one, `master`, `anonymous`), and model is the
 * price-table key when the model is priced, the normalised ID when Bedrock accepted the call,
 * otherwise `other` (so clients cannot mint a metric per made-up model name); `none` for
 * operations without a model.
 *
 * Who made a failure matters for paging: ClientErrors are 4xx other than 429 (scanners' 401s land
 * here, never paged); RelayErrors are 5xx the relay made itself; UpstreamErrors are 5xx Bedrock
 * answered plus calls whose upstream was unreachable, timed out or broke mid-stream; Throttles
 * counts every 429 and UpstreamThrottles those Bedrock answered. Errors (any status ≥ 400 but 429,
 * or an upstream failure) stays for the error rate.
 *
 * Never logged: the key, its secret, request or response bodies.
 */
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { CallRecord } from '../call-record.js';
import { LOG_MESSAGES, METRICS, METRICS_NAMESPACE, SERVICE_NAME } from '../contract.js';
import { normalizeModelId } from '../models/ids.js';
import type { LogFn } from '../observability/log.js';
import { formatUsd } from '../pricing/units.js';

export interface CallTelemetryOptions {
  readonly namespace?: string;
  readonly serviceName?: string;
  readonly log: LogFn;
  /** Where EMF lines go; default: Powertools' own stdout writer. Tests capture them here. */
  readonly writeMetrics?: (line: string) => void;
  readonly metricsDisabled?: boolean;
  /** Also emit the [service, keyAlias, model] dimension set (billed per key × model). */
  readonly perKeyMetrics?: boolean;
}

export const DEFAULT_METRICS_NAMESPACE = METRICS_NAMESPACE;

export class CallTelemetry {
  private readonly metrics: Metrics;

  constructor(private readonly options: CallTelemetryOptions) {
    this.metrics = new Metrics({
      namespace: options.namespace ?? DEFAULT_METRICS_NAMESPACE,
      serviceName: options.serviceName ?? SERVICE_NAME,
    });
  }

  /** Emits the call's metrics and its log line. Never throws. */
  emit(record: CallRecord): void {
    try {
      const { facts, outcome } = record;
      const status = record.status ?? outcome?.status ?? 499;
      const upstreamFailed = outcome?.upstreamFailed === true && !outcome.clientAborted;
      // An outcome without upstreamFailed means Bedrock answered, so its status is Bedrock's.
      const fromUpstream = outcome !== undefined && !outcome.upstreamFailed;
      const throttled = status === 429;
      const failed = (status >= 400 && !throttled) || upstreamFailed;
      const keyAlias = facts.keyAlias ?? 'anonymous';
      const model = metricModel(facts, status);
      const tokens = facts.tokens;
      const costNanos = facts.price?.costNanos ?? 0;
      const totalMs = outcome?.totalMs ?? record.elapsedMs();

      if (!this.options.metricsDisabled) {
        const m = this.metrics;
        const count = (name: string, value: boolean): void => {
          m.addMetric(name, MetricUnit.Count, value ? 1 : 0);
        };
        m.addDimensions({});
        m.addDimensions({ model });
        if (this.options.perKeyMetrics) m.addDimensions({ keyAlias, model });
        m.addMetadata('requestId', record.requestId);
        m.addMetric(METRICS.requests, MetricUnit.Count, 1);
        count(METRICS.errors, failed);
        count(METRICS.clientErrors, status >= 400 && status < 500 && !throttled);
        count(METRICS.relayErrors, status >= 500 && !fromUpstream && !upstreamFailed);
        count(METRICS.upstreamErrors, (fromUpstream && status >= 500) || upstreamFailed);
        count(METRICS.throttles, throttled);
        count(METRICS.upstreamThrottles, fromUpstream && throttled);
        m.addMetric(METRICS.latency, MetricUnit.Milliseconds, round(totalMs));
        if (outcome?.timeToFirstByteMs !== undefined) m.addMetric(METRICS.timeToFirstByte, MetricUnit.Milliseconds, round(outcome.timeToFirstByteMs));
        m.addMetric(METRICS.inputTokens, MetricUnit.Count, tokens ? tokens.input + tokens.cacheRead + tokens.cacheWrite : 0);
        m.addMetric(METRICS.outputTokens, MetricUnit.Count, tokens?.output ?? 0);
        m.addMetric(METRICS.costUsd, MetricUnit.NoUnit, costNanos / 1e9);
        if (this.options.writeMetrics) {
          const line = JSON.stringify(m.serializeMetrics());
          m.clearMetrics();
          m.clearDimensions();
          m.clearMetadata();
          this.options.writeMetrics(line);
        } else {
          m.publishStoredMetrics();
        }
      }

      this.options.log(failed ? 'warn' : 'info', LOG_MESSAGES.relayCall, {
        requestId: record.requestId,
        keyAlias,
        operation: facts.operation,
        model: facts.model,
        status,
        ...(facts.refusal ? { refusal: facts.refusal } : {}),
        inputTokens: tokens?.input ?? 0,
        outputTokens: tokens?.output ?? 0,
        cacheReadInputTokens: tokens?.cacheRead ?? 0,
        cacheWriteInputTokens: tokens?.cacheWrite ?? 0,
        ...(tokens?.guardrailUnits ? { guardrailUnits: tokens.guardrailUnits } : {}),
        usageReported: outcome?.meter?.reported ?? false,
        costUsd: formatUsd(costNanos),
        priced: facts.price?.priced ?? false,
        upstreamLatencyMs: outcome?.upstreamLatencyMs === undefined ? undefined : round(outcome.upstreamLatencyMs),
        timeToFirstByteMs: outcome?.timeToFirstByteMs === undefined ? undefined : round(outcome.timeToFirstByteMs),
        totalMs: round(totalMs),
        bytesOut: outcome?.bytesOut,
        clientAborted: outcome?.clientAborted ?? false,
        upstreamFailed,
      });
    } catch {
      // Telemetry must never turn a served call into a failed invocation.
    }
  }
}

/** The key alias as telemetry shows it: never the key, never its secret. */
export function telemetryAlias(principal: { kind: 'master' } | { kind: 'virtual-key'; token: string; alias?: string }): string {
  if (principal.kind === 'master') return 'master';
  return principal.alias ?? `key-${principal.token.slice(0, 12)}`;
}

function metricModel(facts: CallRecord['facts'], status: number): string {
  if (!facts.model) return 'none';
  if (facts.price?.priced && facts.price.priceKey) return facts.price.priceKey;
  if (status >= 200 && status < 300) {
    const base = normalizeModelId(facts.model).base;
    return base.length > 100 ? base.slice(0, 100) : base;
  }
  return 'other';
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
