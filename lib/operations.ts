/**
 * Operations for the relay: a CloudWatch dashboard and alarms.
 *
 * They read the relay's EMF metrics (namespace `BedrockRelay`, written with Powertools Metrics, whose
 * `service` default dimension is the POWERTOOLS_SERVICE_NAME) and Lambda's own metrics.
 * The metric contract the relay keeps:
 *
 *   metric names     Requests, Errors, Throttles (Count); Latency, TimeToFirstByte (Milliseconds);
 *                    InputTokens, OutputTokens (Count); CostUSD (None)
 *   dimension sets   [service]                    totals: alarms and the headline graphs
 *                    [service, keyAlias, model]   breakdowns per key and model
 *
 * Breakdowns are drawn with SEARCH expressions, so new keys and models appear without a deploy.
 * Alarms cannot use SEARCH, which is why totals are a dimension set of their own.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';

export interface RelayOperationsProps {
  readonly function: lambda.IFunction;
  readonly namespace: string;
  /** Value of the `service` dimension (POWERTOOLS_SERVICE_NAME). */
  readonly serviceName: string;
  readonly dashboardName: string;
  /** Where alarms notify; without one the alarms only change state. */
  readonly alarmTopic?: sns.ITopic;
  /** Error-rate alarm threshold in percent of requests. */
  readonly errorRatePercent?: number;
  /** Relay throttles (429s: key limits or Bedrock throttling) per 5 minutes before alarming. */
  readonly throttlesPer5Minutes?: number;
}

/** The relay's custom metric names (the EMF contract above). */
export const RELAY_METRICS = {
  requests: 'Requests',
  errors: 'Errors',
  throttles: 'Throttles',
  latency: 'Latency',
  timeToFirstByte: 'TimeToFirstByte',
  inputTokens: 'InputTokens',
  outputTokens: 'OutputTokens',
  costUsd: 'CostUSD',
} as const;

export class RelayOperations extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly errorRateAlarm: cloudwatch.Alarm;
  readonly relayThrottlesAlarm: cloudwatch.Alarm;
  readonly lambdaErrorsAlarm: cloudwatch.Alarm;
  readonly lambdaThrottlesAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: RelayOperationsProps) {
    super(scope, id);
    const fiveMinutes = Duration.minutes(5);
    const total = (metricName: string, statistic: string, label?: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: props.namespace,
        metricName,
        dimensionsMap: { service: props.serviceName },
        statistic,
        period: fiveMinutes,
        label,
      });
    // One line per (keyAlias, model) pair present in the period, whatever keys exist.
    const perKeyAndModel = (metricName: string, statistic: string): cloudwatch.MathExpression =>
      new cloudwatch.MathExpression({
        expression: `SEARCH('{${props.namespace},keyAlias,model,service} MetricName="${metricName}" service="${props.serviceName}"', '${statistic}', 300)`,
        // A dynamic label names each line after its dimensions.
        label: "${PROP('Dim.keyAlias')} · ${PROP('Dim.model')}",
        period: fiveMinutes,
      });

    const requests = total(RELAY_METRICS.requests, 'Sum', 'Requests');
    const errors = total(RELAY_METRICS.errors, 'Sum', 'Errors');
    const throttles = total(RELAY_METRICS.throttles, 'Sum', 'Throttles (429)');
    const errorRate = new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors },
      label: 'Error rate (%)',
      period: fiveMinutes,
    });

    // ── Alarms ──
    this.errorRateAlarm = errorRate.createAlarm(this, 'ErrorRateAlarm', {
      alarmDescription: `More than ${props.errorRatePercent ?? 5}% of relay requests failed (Errors / Requests, relay metrics).`,
      threshold: props.errorRatePercent ?? 5,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.relayThrottlesAlarm = throttles.createAlarm(this, 'RelayThrottlesAlarm', {
      alarmDescription: 'The relay answered 429 (key rate limits or Bedrock throttling) more often than expected.',
      threshold: props.throttlesPer5Minutes ?? 10,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.lambdaErrorsAlarm = props.function.metricErrors({ period: fiveMinutes, statistic: 'Sum' }).createAlarm(this, 'LambdaErrorsAlarm', {
      alarmDescription: 'The relay function failed (an invocation error, a crash or a timeout), not a relayed error status.',
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    this.lambdaThrottlesAlarm = props.function.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }).createAlarm(this, 'LambdaThrottlesAlarm', {
      alarmDescription: 'Lambda throttled relay invocations (concurrency limit reached): clients saw errors.',
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (props.alarmTopic) {
      const action = new actions.SnsAction(props.alarmTopic);
      for (const alarm of [this.errorRateAlarm, this.relayThrottlesAlarm, this.lambdaErrorsAlarm, this.lambdaThrottlesAlarm]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }

    // ── Dashboard ──
    const width = 8;
    const height = 6;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown:
          '## bedrock-relay\nRelay metrics (namespace `' +
          props.namespace +
          '`) and the function\'s Lambda metrics. Per-key and per-model graphs list every key alias and model seen in the period.',
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Requests',
        left: [requests, props.function.metricInvocations({ period: fiveMinutes, label: 'Lambda invocations' })],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Errors and throttles',
        left: [
          errors,
          throttles,
          props.function.metricErrors({ period: fiveMinutes, label: 'Lambda errors' }),
          props.function.metricThrottles({ period: fiveMinutes, label: 'Lambda throttles' }),
        ],
        right: [errorRate],
        rightYAxis: { min: 0, max: 100, label: '%', showUnits: false },
        rightAnnotations: [{ value: props.errorRatePercent ?? 5, label: 'error-rate alarm' }],
        width,
        height,
      }),
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms',
        alarms: [this.errorRateAlarm, this.relayThrottlesAlarm, this.lambdaErrorsAlarm, this.lambdaThrottlesAlarm],
        width,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Latency (ms)',
        left: [total(RELAY_METRICS.latency, 'p50', 'p50'), total(RELAY_METRICS.latency, 'p99', 'p99')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Time to first byte (ms)',
        left: [total(RELAY_METRICS.timeToFirstByte, 'p50', 'p50'), total(RELAY_METRICS.timeToFirstByte, 'p99', 'p99')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Lambda duration (ms) and concurrency',
        left: [
          props.function.metricDuration({ period: fiveMinutes, statistic: 'p50', label: 'duration p50' }),
          props.function.metricDuration({ period: fiveMinutes, statistic: 'p99', label: 'duration p99' }),
        ],
        right: [
          new cloudwatch.Metric({
            namespace: 'AWS/Lambda',
            metricName: 'ConcurrentExecutions',
            dimensionsMap: { FunctionName: props.function.functionName },
            statistic: 'Maximum',
            period: fiveMinutes,
            label: 'concurrent executions',
          }),
        ],
        width,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Input tokens by key and model',
        left: [perKeyAndModel(RELAY_METRICS.inputTokens, 'Sum')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Output tokens by key and model',
        left: [perKeyAndModel(RELAY_METRICS.outputTokens, 'Sum')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Cost (USD) by key and model',
        left: [perKeyAndModel(RELAY_METRICS.costUsd, 'Sum')],
        width,
        height,
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Requests by key and model',
        left: [perKeyAndModel(RELAY_METRICS.requests, 'Sum')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Errors by key and model',
        left: [perKeyAndModel(RELAY_METRICS.errors, 'Sum')],
        width,
        height,
      }),
      new cloudwatch.GraphWidget({
        title: 'Latency p99 by key and model (ms)',
        left: [perKeyAndModel(RELAY_METRICS.latency, 'p99')],
        width,
        height,
      }),
    );
  }
}
