/**
 * Alarms and dashboard, checked against what the function really emits: every alarm's metric is
 * looked up in EMF records written by the real CallTelemetry (lambda/accounting/telemetry.ts) for
 * calls of each kind, and every log-derived metric's filter is matched against log lines written by
 * the real Powertools logger. Names come from lambda/contract.ts on both sides.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CallTelemetry } from '../../lambda/accounting/telemetry.js';
import { CallRecord } from '../../lambda/call-record.js';
import { DIMENSIONS, ENV, LOG_MESSAGES, METRICS, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/contract.js';
import { createLog } from '../../lambda/observability/log.js';
import type { CallOutcome, RelayRequest } from '../../lambda/pipeline.js';
import { addRelayStack, cdkJsonContext } from '../../lib/app.js';
import type { RelayConfigInput } from '../../lib/config.js';

type Resources = Record<string, { Type: string; Properties: Record<string, unknown> }>;

function synth(config: RelayConfigInput = {}): Template {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  return Template.fromStack(addRelayStack(app, { config, nag: false }));
}

interface AlarmMetric {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Record<string, unknown>;
}

interface Alarm {
  readonly id: string;
  readonly props: Record<string, unknown>;
  readonly metrics: AlarmMetric[];
  readonly expression?: string;
}

function alarmsOf(template: Template): Alarm[] {
  const dims = (list: unknown): Record<string, unknown> =>
    Object.fromEntries(((list ?? []) as { Name: string; Value: unknown }[]).map((d) => [d.Name, d.Value]));
  return Object.entries(template.findResources('AWS::CloudWatch::Alarm') as Resources).map(([id, r]) => {
    const p = r.Properties;
    if (p.MetricName) return { id, props: p, metrics: [{ namespace: p.Namespace as string, name: p.MetricName as string, dimensions: dims(p.Dimensions) }] };
    const queries = p.Metrics as { Expression?: string; MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions?: unknown } } }[];
    return {
      id,
      props: p,
      expression: queries.find((q) => q.Expression)?.Expression,
      metrics: queries.flatMap((q) =>
        q.MetricStat
          ? [{ namespace: q.MetricStat.Metric.Namespace, name: q.MetricStat.Metric.MetricName, dimensions: dims(q.MetricStat.Metric.Dimensions) }]
          : [],
      ),
    };
  });
}

const defaults = synth();
const alarms = alarmsOf(defaults);
const alarm = (prefix: string): Alarm => {
  const found = alarms.filter((a) => a.id.startsWith(`Operations${prefix}Alarm`));
  assert.equal(found.length, 1, `one ${prefix} alarm (have ${alarms.map((a) => a.id).join(', ')})`);
  return found[0]!;
};

// ── What the function emits, per kind of call ──

interface Emf {
  readonly _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  readonly [key: string]: unknown;
}

const request = (id: string): RelayRequest => ({
  method: 'POST',
  rawPath: '/bedrock/model/m/converse',
  rawQueryString: '',
  headers: {},
  body: Buffer.alloc(0),
  requestId: id,
});
const outcome = (status: number, upstreamFailed = false): CallOutcome => ({ status, clientAborted: false, upstreamFailed, totalMs: 12, bytesOut: 10 });

/** One EMF record from the real telemetry for a call answered `status`, with `outcome` noted if it reached Bedrock. */
function emitted(status: number | undefined, noted?: CallOutcome, perKeyMetrics = false): Emf {
  const lines: string[] = [];
  const telemetry = new CallTelemetry({ log: () => undefined, writeMetrics: (line) => lines.push(line), perKeyMetrics });
  const record = new CallRecord(request(`r-${status}`), () => undefined);
  record.note({ keyAlias: 'team-a', model: 'anthropic.claude-3-haiku-20240307-v1:0' });
  record.outcome = noted;
  record.status = status;
  telemetry.emit(record);
  assert.equal(lines.length, 1);
  return JSON.parse(lines[0]!) as Emf;
}

const CALLS = {
  ok: emitted(200, outcome(200)),
  unauthenticated: emitted(401),
  keyLimit: emitted(429),
  storeUnavailable: emitted(503),
  bedrock500: emitted(500, outcome(500)),
  bedrock429: emitted(429, outcome(429)),
  bedrockUnreachable: emitted(502, outcome(502, true)),
};

/** The value an alarm metric takes in an EMF record, or throws if the record does not carry it. */
function valueIn(record: Emf, metric: AlarmMetric): number {
  const directive = record._aws.CloudWatchMetrics.find((d) => d.Namespace === metric.namespace);
  assert.ok(directive, `EMF has namespace ${metric.namespace}`);
  assert.ok(
    directive.Metrics.some((m) => m.Name === metric.name),
    `EMF emits ${metric.name}`,
  );
  const keys = Object.keys(metric.dimensions).sort();
  assert.ok(
    directive.Dimensions.some((set) => [...set].sort().join() === keys.join()),
    `EMF has the dimension set [${keys}] for ${metric.name}`,
  );
  for (const [key, value] of Object.entries(metric.dimensions)) assert.equal(record[key], value, `${key} = ${String(value)}`);
  return record[metric.name] as number;
}

/** The relay-metric alarm's statistic for one call: the metric itself, or the part/requests rate. */
function alarmValue(a: Alarm, record: Emf): number {
  const values = a.metrics.map((m) => valueIn(record, m));
  if (!a.expression) return values[0]!;
  const parts = a.metrics.map((m, i) => [m.name, values[i]!] as const);
  const requests = parts.find(([name]) => name === METRICS.requests)![1];
  const part = parts.find(([name]) => name !== METRICS.requests)![1];
  return requests > 0 ? (100 * part) / requests : 0;
}

describe('alarms on relay metrics', () => {
  const relayAlarms = alarms.filter(
    (a) => a.metrics.every((m) => m.namespace === METRICS_NAMESPACE) && a.metrics.every((m) => Object.keys(m.dimensions).length > 0),
  );

  it('read the [service] totals the function emits, by the names in the contract', () => {
    assert.deepEqual(relayAlarms.map((a) => a.id.replace(/^Operations|Alarm[0-9A-F]+$/g, '')).sort(), [
      'BedrockThrottleRate',
      'RelayErrors',
      'UpstreamErrorRate',
    ]);
    for (const a of relayAlarms) {
      for (const metric of a.metrics) {
        assert.deepEqual(metric.dimensions, { [DIMENSIONS.service]: SERVICE_NAME });
        valueIn(CALLS.ok, metric);
      }
    }
  });

  it("never fire for client mistakes: a scanner's 401 or a key's own 429 leaves every one at 0", () => {
    for (const a of relayAlarms) {
      assert.equal(alarmValue(a, CALLS.unauthenticated), 0, `${a.id} on a 401`);
      assert.equal(alarmValue(a, CALLS.keyLimit), 0, `${a.id} on a key-limit 429`);
      assert.equal(alarmValue(a, CALLS.ok), 0, `${a.id} on a 200`);
    }
    assert.equal(CALLS.unauthenticated[METRICS.clientErrors], 1, 'the 401 is counted, as a client error');
  });

  it("tell the relay's own 5xx from Bedrock's", () => {
    const relay = alarm('RelayErrors');
    const upstream = alarm('UpstreamErrorRate');
    assert.equal(alarmValue(relay, CALLS.storeUnavailable), 1);
    assert.equal(alarmValue(upstream, CALLS.storeUnavailable), 0);
    assert.equal(alarmValue(relay, CALLS.bedrock500), 0);
    assert.equal(alarmValue(upstream, CALLS.bedrock500), 100);
    assert.equal(alarmValue(upstream, CALLS.bedrockUnreachable), 100, 'an unreachable Bedrock is an upstream failure');
    assert.equal(alarmValue(relay, CALLS.bedrockUnreachable), 0);
    assert.ok(Number(relay.props.Threshold) >= 1);
  });

  it('measure Bedrock throttling as a rate, apart from key limits', () => {
    const throttling = alarm('BedrockThrottleRate');
    assert.match(throttling.expression ?? '', /100 \* upstreamThrottles \/ requests/);
    assert.equal(alarmValue(throttling, CALLS.bedrock429), 100);
    assert.equal(alarmValue(throttling, CALLS.keyLimit), 0);
  });
});

describe('metric dimensions', () => {
  it('are service and model by default: no per-key metric is billed', () => {
    const sets = CALLS.ok._aws.CloudWatchMetrics[0]!.Dimensions.map((set) => set.join());
    assert.deepEqual(sets, ['service', 'service,model']);
    assert.equal(CALLS.ok[DIMENSIONS.keyAlias], undefined);
  });

  it('add [service, keyAlias, model] only when per-key metrics are on', () => {
    const record = emitted(200, outcome(200), true);
    assert.deepEqual(
      record._aws.CloudWatchMetrics[0]!.Dimensions.map((set) => set.join()),
      ['service', 'service,model', 'service,keyAlias,model'],
    );
    assert.equal(record[DIMENSIONS.keyAlias], 'team-a');
  });

  it('draw per-key graphs on the dashboard only when per-key metrics are on', () => {
    const body = (template: Template) => JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]!.Properties);
    assert.doesNotMatch(body(defaults), /keyAlias/);
    assert.match(body(defaults), /\{BedrockRelay,model,service\}/);
    assert.match(body(synth({ perKeyMetrics: true })), /\{BedrockRelay,keyAlias,model,service\}/);
  });
});

/** The JSON lines the real logger writes for `message`. */
function loggedLine(message: string): Record<string, unknown> {
  const written: string[] = [];
  // Powertools writes errors to stderr and the rest to stdout; capture both.
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((stream) => stream.write);
  for (const stream of streams) {
    stream.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof stream.write;
  }
  try {
    createLog(SERVICE_NAME, 'INFO').log('error', message, { requestId: 'r-1' });
  } finally {
    streams.forEach((stream, i) => (stream.write = originals[i]!));
  }
  const line = written
    .join('')
    .trim()
    .split('\n')
    .find((l) => l.includes(message));
  assert.ok(line, `the logger wrote a line for ${message}`);
  return JSON.parse(line) as Record<string, unknown>;
}

/** Evaluates the `{ ($.field = "value") || … }` patterns RelayOperations writes, as CloudWatch Logs would. */
function filterMatches(pattern: string, event: Record<string, unknown>): boolean {
  const terms = [...pattern.matchAll(/\$\.(\w+) = "([^"]*)"/g)];
  assert.ok(terms.length > 0, `a JSON filter pattern: ${pattern}`);
  assert.doesNotMatch(pattern, /&&/, 'only || patterns are evaluated here');
  return terms.some(([, field, value]) => event[field!] === value);
}

describe('alarms on log-derived metrics', () => {
  const filters = Object.values(defaults.findResources('AWS::Logs::MetricFilter') as Resources).map((r) => r.Properties);
  const filterFor = (metricName: string): string => {
    const found = filters.filter((f) => (f.MetricTransformations as { MetricName: string }[])[0]!.MetricName === metricName);
    assert.equal(found.length, 1, `one filter for ${metricName}`);
    assert.equal((found[0]!.MetricTransformations as { MetricNamespace: string }[])[0]!.MetricNamespace, METRICS_NAMESPACE);
    return found[0]!.FilterPattern as string;
  };

  it('count the ledger-write-failed records the logger writes, and page on the first', () => {
    const pattern = filterFor(METRICS.ledgerWriteFailures);
    assert.equal(filterMatches(pattern, loggedLine(LOG_MESSAGES.ledgerWriteFailed)), true);
    assert.equal(filterMatches(pattern, loggedLine(LOG_MESSAGES.relayCall)), false);
    const a = alarm('LedgerWriteFailures');
    assert.deepEqual(a.metrics, [{ namespace: METRICS_NAMESPACE, name: METRICS.ledgerWriteFailures, dimensions: {} }]);
    assert.equal(a.props.Threshold, 1);
  });

  it('count both store-unavailable messages (key lookup and admission)', () => {
    const pattern = filterFor(METRICS.keyStoreUnavailable);
    assert.equal(filterMatches(pattern, loggedLine(LOG_MESSAGES.keyStoreUnavailable)), true);
    assert.equal(filterMatches(pattern, loggedLine(LOG_MESSAGES.usageStoreUnavailable)), true);
    assert.equal(filterMatches(pattern, loggedLine(LOG_MESSAGES.ledgerWriteFailed)), false);
    assert.deepEqual(
      alarm('KeyStoreUnavailable').metrics.map((m) => m.name),
      [METRICS.keyStoreUnavailable],
    );
  });

  it('match messages the code writes (a renamed log message fails here, not silently in production)', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const sources = (await readdir('lambda', { recursive: true })).filter((f) => f.endsWith('.ts') && f !== 'contract.ts').map((f) => `lambda/${f}`);
    const text = (await Promise.all(sources.map((f) => readFile(f, 'utf8')))).join('\n');
    for (const [name, message] of Object.entries(LOG_MESSAGES)) {
      const used = text.includes(`LOG_MESSAGES.${name}`) || text.includes(`'${message}'`);
      assert.ok(used, `lambda/ writes "${message}" (LOG_MESSAGES.${name})`);
    }
  });
});

describe('alarms on AWS metrics', () => {
  const dynamo = alarm('DynamoDbThrottles');
  const table = Object.keys(defaults.findResources('AWS::DynamoDB::Table'))[0]!;

  it('watch DynamoDB read and write throttling on the keys table', () => {
    assert.deepEqual(dynamo.metrics.map((m) => `${m.namespace} ${m.name}`).sort(), ['AWS/DynamoDB ReadThrottleEvents', 'AWS/DynamoDB WriteThrottleEvents']);
    for (const m of dynamo.metrics) assert.deepEqual(m.dimensions, { TableName: { Ref: table } });
  });

  it('watch Lambda errors, throttles, and concurrency against the reservation', () => {
    const fn = Object.keys(defaults.findResources('AWS::Lambda::Function'))[0]!;
    for (const [prefix, name] of [
      ['LambdaErrors', 'Errors'],
      ['LambdaThrottles', 'Throttles'],
      ['Concurrency', 'ConcurrentExecutions'],
    ] as const) {
      assert.deepEqual(alarm(prefix).metrics, [{ namespace: 'AWS/Lambda', name, dimensions: { FunctionName: { Ref: fn } } }]);
    }
    assert.equal(alarm('Concurrency').props.Threshold, 80, '80% of the 100 reserved');
    assert.equal(
      alarmsOf(synth({ reservedConcurrency: 'none' })).some((a) => a.id.includes('Concurrency')),
      false,
    );
  });
});

describe('notifications', () => {
  it('go to a new e-mail topic or an existing one, for every alarm, and nowhere by default', () => {
    for (const a of alarms) assert.equal(a.props.AlarmActions, undefined);
    const withEmail = synth({ alarmEmail: 'ops@example.com' });
    const topic = Object.keys(withEmail.findResources('AWS::SNS::Topic'))[0]!;
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    for (const a of alarmsOf(withEmail)) assert.deepEqual(a.props.AlarmActions, [{ Ref: topic }]);
    const arn = 'arn:aws:sns:us-east-1:123456789012:ops-alerts';
    for (const a of alarmsOf(synth({ alarmTopicArn: arn }))) assert.deepEqual(a.props.AlarmActions, [arn]);
  });
});

describe('the function environment', () => {
  it('names the metric namespace and service the alarms read', () => {
    const variables = (Object.values(defaults.findResources('AWS::Lambda::Function'))[0]!.Properties.Environment as { Variables: Record<string, unknown> })
      .Variables;
    assert.equal(variables[ENV.metricsNamespace], METRICS_NAMESPACE);
    assert.equal(variables[ENV.serviceName], SERVICE_NAME);
  });
});
