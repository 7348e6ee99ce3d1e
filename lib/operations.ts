/**
 * Operations for the relay: alarms that mean something, and a CloudWatch dashboard.
 *
 * They read the relay's EMF metrics (names, namespace and dimension sets in lambda/contract.ts,
 * emitted by lambda/accounting/telemetry.ts), two log-derived metrics (metric filters on the log
 * messages the contract names), and AWS/Lambda and AWS/DynamoDB metrics.
 *
 * What pages and what does not: client 4xx (scanners' 401s, bad requests, key limits' 429s) never
 * page. Alarms fire on 5xx the relay made itself, on Bedrock's 5xx and throttling *rates*, on usage
 * that could not be recorded, on a key store that cannot be read, on DynamoDB throttling, on Lambda
 * errors and throttles, and on concurrency nearing its reservation.
 *
 * Per-model breakdowns use SEARCH, so new models appear without a deploy; alarms cannot use SEARCH,
 * which is why totals are a dimension set of their own.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { DIMENSIONS, LOG_MESSAGES, METRICS, METRICS_NAMESPACE, SERVICE_NAME } from '../lambda/contract.js';
import type { RelayKeysTable } from './constructs/keys-table.js';

/** Alarm thresholds; every one has a default. */
export interface RelayAlarmThresholds {
  /** Relay-made 5xx per 5 minutes. Default 5. */
  readonly relayErrorsPer5Minutes?: number;
  /** Bedrock 5xx (and unreachable/broken upstream) in percent of requests. Default 5. */
  readonly upstreamErrorRatePercent?: number;
  /** Bedrock 429s in percent of requests. Default 10. */
  readonly bedrockThrottleRatePercent?: number;
  /** Key-store read failures per 5 minutes. Default 3. */
  readonly keyStoreUnavailablePer5Minutes?: number;
  /** DynamoDB throttle events per 5 minutes. Default 10. */
  readonly dynamoThrottlesPer5Minutes?: number;
  /** Peak concurrency in percent of the reservation. Default 80. */
  readonly concurrencyPercentOfReserved?: number;
}

export interface RelayOperationsProps {
  readonly function: lambda.IFunction;
  /** The function's log group: the log-derived metrics are filters on it. */
  readonly logGroup: logs.ILogGroup;
  readonly keysTable?: RelayKeysTable;
  readonly dashboardName: string;
  /** The function's reserved concurrency; with one, an alarm warns before it is reached. */
  readonly reservedConcurrency?: number;
  /** Draw per-key graphs (only meaningful when the function emits per-key metrics). */
  readonly perKeyMetrics?: boolean;
  /** Where alarms notify; without one the alarms only change state. */
  readonly alarmTopic?: sns.ITopic;
  readonly thresholds?: RelayAlarmThresholds;
}

const FIVE_MINUTES = Duration.minutes(5);

/** A relay metric over the [service] totals dimension set. */
export function relayTotal(metricName: string, statistic = 'Sum', label?: string): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { [DIMENSIONS.service]: SERVICE_NAME },
    statistic,
    period: FIVE_MINUTES,
    label,
  });
}

export class RelayOperations extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: Readonly<Record<string, cloudwatch.Alarm>>;

  constructor(scope: Construct, id: string, props: RelayOperationsProps) {
    super(scope, id);
    const t = props.thresholds ?? {};
    const fn = props.function;

    // ── Log-derived metrics: one per failure the code logs rather than counts per call ──
    const fromLog = (metricName: string, ...messages: string[]): cloudwatch.Metric => {
      const filter = new logs.MetricFilter(this, `${metricName}Filter`, {
        logGroup: props.logGroup,
        filterPattern: logs.FilterPattern.any(...messages.map((message) => logs.FilterPattern.stringValue('$.message', '=', message))),
        metricNamespace: METRICS_NAMESPACE,
        metricName,
        metricValue: '1',
      });
      return filter.metric({ statistic: 'Sum', period: FIVE_MINUTES });
    };
    const ledgerWriteFailures = fromLog(METRICS.ledgerWriteFailures, LOG_MESSAGES.ledgerWriteFailed);
    const keyStoreUnavailable = fromLog(METRICS.keyStoreUnavailable, LOG_MESSAGES.keyStoreUnavailable, LOG_MESSAGES.usageStoreUnavailable);

    const requests = relayTotal(METRICS.requests, 'Sum', 'Requests');
    // `id` names the part in the expression; two rates on one graph need different ids.
    const rate = (id: string, metric: cloudwatch.Metric, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `IF(requests > 0, 100 * ${id} / requests, 0)`,
        usingMetrics: { requests, [id]: metric },
        label,
        period: FIVE_MINUTES,
      });
    const upstreamErrorRate = rate('upstreamErrors', relayTotal(METRICS.upstreamErrors), 'Bedrock 5xx rate (%)');
    const bedrockThrottleRate = rate('upstreamThrottles', relayTotal(METRICS.upstreamThrottles), 'Bedrock throttling rate (%)');

    // ── Alarms ──
    const alarms: Record<string, cloudwatch.Alarm> = {};
    const alarm = (
      name: string,
      metric: cloudwatch.Metric | cloudwatch.MathExpression,
      threshold: number,
      description: string,
      options: { evaluationPeriods?: number; datapointsToAlarm?: number } = {},
    ): void => {
      alarms[name] = metric.createAlarm(this, `${name}Alarm`, {
        alarmDescription: description,
        threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: options.evaluationPeriods ?? 1,
        datapointsToAlarm: options.datapointsToAlarm,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    };
    alarm(
      'RelayErrors',
      relayTotal(METRICS.relayErrors),
      t.relayErrorsPer5Minutes ?? 5,
      'The relay itself answered 5xx (a store outage or a bug), not Bedrock and not a client mistake.',
    );
    alarm(
      'UpstreamErrorRate',
      upstreamErrorRate,
      t.upstreamErrorRatePercent ?? 5,
      'Bedrock answered 5xx, or could not be reached, timed out or broke mid-stream, for this share of calls.',
      { evaluationPeriods: 3, datapointsToAlarm: 2 },
    );
    alarm(
      'BedrockThrottleRate',
      bedrockThrottleRate,
      t.bedrockThrottleRatePercent ?? 10,
      "Bedrock throttled (429) this share of calls: the account's model quotas are too small for the traffic (key limits are not counted).",
      { evaluationPeriods: 3, datapointsToAlarm: 2 },
    );
    alarm('LedgerWriteFailures', ledgerWriteFailures, 1, 'Usage could not be recorded after retries; replay it from the logs with `npx relay ledger`.');
    alarm(
      'KeyStoreUnavailable',
      keyStoreUnavailable,
      t.keyStoreUnavailablePer5Minutes ?? 3,
      'The key or usage store could not be read: calls were refused with 503 (the relay fails closed).',
    );
    if (props.keysTable) {
      alarm(
        'DynamoDbThrottles',
        props.keysTable.metricThrottleEvents(FIVE_MINUTES),
        t.dynamoThrottlesPer5Minutes ?? 10,
        'DynamoDB throttled reads or writes on the keys table.',
      );
    }
    alarm(
      'LambdaErrors',
      fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
      1,
      'The relay function failed (an invocation error, a crash or a timeout), not a relayed error status.',
    );
    alarm(
      'LambdaThrottles',
      fn.metricThrottles({ period: FIVE_MINUTES, statistic: 'Sum' }),
      1,
      'Lambda throttled relay invocations (concurrency limit reached): clients saw errors.',
    );
    const concurrency = new cloudwatch.Metric({
      namespace: 'AWS/Lambda',
      metricName: 'ConcurrentExecutions',
      dimensionsMap: { FunctionName: fn.functionName },
      statistic: 'Maximum',
      period: FIVE_MINUTES,
      label: 'concurrent executions',
    });
    if (props.reservedConcurrency !== undefined) {
      const percent = t.concurrencyPercentOfReserved ?? 80;
      alarm(
        'Concurrency',
        concurrency,
        Math.max(1, Math.floor((props.reservedConcurrency * percent) / 100)),
        `Concurrent executions reached ${percent}% of the reserved ${props.reservedConcurrency}; beyond it Lambda throttles.`,
      );
    }
    this.alarms = alarms;
    if (props.alarmTopic) {
      const action = new actions.SnsAction(props.alarmTopic);
      for (const each of Object.values(alarms)) {
        each.addAlarmAction(action);
        each.addOkAction(action);
      }
    }

    // ── Dashboard ──
    const width = 8;
    const height = 6;
    const breakdown = (dimensions: readonly string[], metricName: string, statistic: string, label: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${METRICS_NAMESPACE},${[...dimensions].sort().join(',')}} MetricName="${metricName}" ${DIMENSIONS.service}="${SERVICE_NAME}"', '${statistic}', 300)`,
        label,
        period: FIVE_MINUTES,
      });
    // A dynamic label names each line after its dimensions: ${PROP(…)} is CloudWatch's syntax.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudWatch label syntax, not a JavaScript template
    const modelLabel = "${PROP('Dim.model')}";
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudWatch label syntax, not a JavaScript template
    const keyAndModelLabel = "${PROP('Dim.keyAlias')} · ${PROP('Dim.model')}";
    const byModel = (metricName: string, statistic = 'Sum'): cloudwatch.MathExpression =>
      breakdown([DIMENSIONS.model, DIMENSIONS.service], metricName, statistic, modelLabel);
    const byKeyAndModel = (metricName: string, statistic = 'Sum'): cloudwatch.MathExpression =>
      breakdown([DIMENSIONS.keyAlias, DIMENSIONS.model, DIMENSIONS.service], metricName, statistic, keyAndModelLabel);

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { dashboardName: props.dashboardName, defaultInterval: Duration.hours(3) });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          `## bedrock-relay\nRelay metrics (namespace \`${METRICS_NAMESPACE}\`) by model, and the function's Lambda metrics. ` +
          'Per-key usage and spend: `/key/usage`, the usage table, or the Logs Insights query in the README.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Requests',
        left: [requests, fn.metricInvocations({ period: FIVE_MINUTES, label: 'Lambda invocations' })],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Failures by origin',
        left: [
          relayTotal(METRICS.clientErrors, 'Sum', 'client 4xx'),
          relayTotal(METRICS.relayErrors, 'Sum', 'relay 5xx'),
          relayTotal(METRICS.upstreamErrors, 'Sum', 'Bedrock 5xx / unreachable'),
          relayTotal(METRICS.throttles, 'Sum', 'all 429'),
          relayTotal(METRICS.upstreamThrottles, 'Sum', 'Bedrock 429'),
          fn.metricErrors({ period: FIVE_MINUTES, label: 'Lambda errors' }),
          fn.metricThrottles({ period: FIVE_MINUTES, label: 'Lambda throttles' }),
        ],
        right: [upstreamErrorRate, bedrockThrottleRate],
        rightYAxis: { min: 0, max: 100, label: '%', showUnits: false },
        width,
        height,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(alarms), width, height }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Latency (ms)',
        left: [relayTotal(METRICS.latency, 'p50', 'p50'), relayTotal(METRICS.latency, 'p99', 'p99')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Time to first byte (ms)',
        left: [relayTotal(METRICS.timeToFirstByte, 'p50', 'p50'), relayTotal(METRICS.timeToFirstByte, 'p99', 'p99')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda duration (ms) and concurrency',
        left: [
          fn.metricDuration({ period: FIVE_MINUTES, statistic: 'p50', label: 'duration p50' }),
          fn.metricDuration({ period: FIVE_MINUTES, statistic: 'p99', label: 'duration p99' }),
        ],
        right: [concurrency],
        rightAnnotations: props.reservedConcurrency === undefined ? undefined : [{ value: props.reservedConcurrency, label: 'reserved concurrency' }],
        width,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Input tokens by model', left: [byModel(METRICS.inputTokens)], width, height }),
      new cloudwatch.GraphWidget({ title: 'Output tokens by model', left: [byModel(METRICS.outputTokens)], width, height }),
      new cloudwatch.GraphWidget({ title: 'Cost (USD) by model', left: [byModel(METRICS.costUsd)], width, height }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({ title: 'Requests by model', left: [byModel(METRICS.requests)], width, height }),
      new cloudwatch.GraphWidget({ title: 'Bedrock throttles by model', left: [byModel(METRICS.upstreamThrottles)], width, height }),
      new cloudwatch.GraphWidget({
        title: 'Usage records not written, key store unavailable',
        left: [ledgerWriteFailures, keyStoreUnavailable],
        width,
        height,
      }),
    );
    if (props.perKeyMetrics) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({ title: 'Requests by key and model', left: [byKeyAndModel(METRICS.requests)], width, height }),
        new cloudwatch.GraphWidget({ title: 'Output tokens by key and model', left: [byKeyAndModel(METRICS.outputTokens)], width, height }),
        new cloudwatch.GraphWidget({ title: 'Cost (USD) by key and model', left: [byKeyAndModel(METRICS.costUsd)], width, height }),
      );
    }
  }
}
