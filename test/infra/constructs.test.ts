/**
 * The reusable constructs on their own, each in a bare stack: what they create, what their grants
 * allow (and nothing more), and how a stack extends them (a second secret, more environment).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { ENV, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/contract.js';
import { loadConfig } from '../../lambda/config.js';
import { RelayError } from '../../lambda/http/errors.js';
import type { AdmissionControl, CallContext } from '../../lambda/pipeline.js';
import { guardAsyncOutput } from '../../lambda/policy/async-output.js';
import { KEYS_TABLE_ACTIONS, RelayKeysTable } from '../../lib/constructs/keys-table.js';
import { RelayFunction } from '../../lib/constructs/relay-function.js';
import { RelaySecret } from '../../lib/constructs/secret.js';
import { RelayOperations } from '../../lib/operations.js';

interface Statement {
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Sid?: string;
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

function bareStack(): Stack {
  // Bundling skipped: these tests are about resources, bundle.test.ts builds the real bundle.
  return new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Bare');
}

function statementsOf(template: Template): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy')).flatMap(
    (policy) => (policy.Properties as { PolicyDocument: { Statement: Statement[] } }).PolicyDocument.Statement,
  );
}

function relayFunction(stack: Stack, extra: Partial<ConstructorParameters<typeof RelayFunction>[2]> = {}): RelayFunction {
  return new RelayFunction(stack, 'Relay', { stage: 'test', memorySize: 512, timeout: Duration.minutes(15), authType: 'NONE', logLevel: 'INFO', ...extra });
}

describe('RelayKeysTable', () => {
  it("grants exactly the key store's item operations on the table and its index", () => {
    const stack = bareStack();
    const table = new RelayKeysTable(stack, 'Keys');
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    table.grantKeyStore(role);
    const template = Template.fromStack(stack);
    const statements = statementsOf(template);
    assert.equal(statements.length, 1);
    assert.deepEqual(list(statements[0]!.Action).sort(), [...KEYS_TABLE_ACTIONS].sort());
    assert.equal(list(statements[0]!.Action).includes('dynamodb:BatchWriteItem'), false);
    assert.equal(list(statements[0]!.Resource).length, 2, 'the table and the gsi1 index');
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', Properties: { DeletionProtectionEnabled: true } });
  });

  it('lets a throwaway stage turn deletion protection off', () => {
    const stack = bareStack();
    new RelayKeysTable(stack, 'Keys', { deletionProtection: false });
    Template.fromStack(stack).hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
  });
});

describe('RelaySecret', () => {
  it('grants GetSecretValue on itself only, so a second secret is a separate grant', () => {
    const stack = bareStack();
    const relay = relayFunction(stack);
    const first = new RelaySecret(stack, 'First', { description: 'first' });
    const second = new RelaySecret(stack, 'Second', { description: 'second', length: 64 });
    first.grantRead(relay);
    second.grantRead(relay);
    relay.addEnvironment('SECOND_SECRET_ARN', second.secret.secretArn);
    const template = Template.fromStack(stack);
    const reads = statementsOf(template).filter((s) => list(s.Action).some((a) => a.startsWith('secretsmanager:')));
    assert.deepEqual(
      reads.flatMap((s) => list(s.Action)),
      ['secretsmanager:GetSecretValue', 'secretsmanager:GetSecretValue'],
    );
    assert.deepEqual(
      reads.map((s) => list(s.Resource).length),
      [1, 1],
    );
    template.hasResourceProperties('AWS::SecretsManager::Secret', { GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } });
    const env = (Object.values(template.findResources('AWS::Lambda::Function'))[0]!.Properties as { Environment: { Variables: Record<string, unknown> } })
      .Environment.Variables;
    assert.ok(env.SECOND_SECRET_ARN, 'addEnvironment reaches the function');
  });
});

describe('RelayFunction', () => {
  const stack = bareStack();
  const relay = relayFunction(stack, { environment: { [ENV.keyCacheTtlSeconds]: '7' }, reservedConcurrency: 5 });
  const template = Template.fromStack(stack);

  it('is a streaming Function URL on Node 22 arm64 with JSON logs at the given level', () => {
    template.hasResourceProperties('AWS::Lambda::Url', { InvokeMode: 'RESPONSE_STREAM', AuthType: 'NONE' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 512,
      ReservedConcurrentExecutions: 5,
      LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO' },
    });
  });

  it("always names the service and metric namespace of the contract, beside the caller's variables", () => {
    const env = (Object.values(template.findResources('AWS::Lambda::Function'))[0]!.Properties as { Environment: { Variables: Record<string, unknown> } })
      .Environment.Variables;
    assert.equal(env[ENV.serviceName], SERVICE_NAME);
    assert.equal(env[ENV.metricsNamespace], METRICS_NAMESPACE);
    assert.equal(env[ENV.keyCacheTtlSeconds], '7');
  });

  it('creates its own log group when given none, and its role may write there and nowhere else', () => {
    template.resourceCountIs('AWS::Logs::LogGroup', 1);
    const statements = statementsOf(template);
    assert.deepEqual(
      statements.map((s) => s.Sid),
      ['WriteOwnLogs'],
    );
    const role = Object.values(template.findResources('AWS::IAM::Role'))[0]!.Properties as Record<string, unknown>;
    assert.equal(role.ManagedPolicyArns, undefined, 'not AWSLambdaBasicExecutionRole');
  });

  it('is the grantee: tables and secrets grant themselves to it', () => {
    assert.equal(relay.grantPrincipal, relay.role);
  });

  it('uses a log group it is given instead of making one', () => {
    const other = bareStack();
    const logGroup = new logs.LogGroup(other, 'Given');
    relayFunction(other, { logGroup });
    Template.fromStack(other).resourceCountIs('AWS::Logs::LogGroup', 1);
  });
});

describe('RelayOperations', () => {
  it('works for any function, leaves the DynamoDB and concurrency alarms out without a table or reservation, and takes thresholds', () => {
    const stack = bareStack();
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => {}'),
    });
    const ops = new RelayOperations(stack, 'Ops', {
      function: fn,
      logGroup: new logs.LogGroup(stack, 'Logs'),
      dashboardName: 'relay-test',
      thresholds: { relayErrorsPer5Minutes: 42 },
    });
    assert.deepEqual(Object.keys(ops.alarms).sort(), [
      'BedrockThrottleRate',
      'KeyStoreUnavailable',
      'LambdaErrors',
      'LambdaThrottles',
      'LedgerWriteFailures',
      'RelayErrors',
      'UpstreamErrorRate',
    ]);
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'RelayErrors', Threshold: 42 });
  });
});

describe('StartAsyncInvoke without an output bucket', () => {
  const call = (body: unknown): CallContext =>
    ({
      request: { method: 'POST', rawPath: '/bedrock/async-invoke', rawQueryString: '', headers: {}, body: Buffer.from(JSON.stringify(body)), requestId: 'r' },
      match: { route: { operation: 'StartAsyncInvoke' } },
    }) as unknown as CallContext;
  const open: AdmissionControl = { admit: async () => ({ settle: async () => undefined }) };
  const body = (uri: string) => ({ modelId: 'amazon.nova-reel-v1:1', modelInput: {}, outputDataConfig: { s3OutputDataConfig: { s3Uri: uri } } });

  it('is refused with a 403 that says how to enable it, when the stack granted no bucket', async () => {
    // What the stack sets by default: an empty list.
    const guard = guardAsyncOutput(open, loadConfig({ [ENV.asyncOutputBuckets]: '' }).asyncOutputBuckets);
    await assert.rejects(guard.admit(call(body('s3://anywhere/out/'))), (error: unknown) => {
      assert.ok(error instanceof RelayError);
      assert.equal(error.status, 403);
      assert.match(error.message, /asyncOutputBuckets=<bucket>/);
      return true;
    });
  });

  it('goes through to the granted buckets only', async () => {
    const guard = guardAsyncOutput(open, loadConfig({ [ENV.asyncOutputBuckets]: 'video-out' }).asyncOutputBuckets);
    await guard.admit(call(body('s3://video-out/jobs/')));
    await assert.rejects(guard.admit(call(body('s3://someone-else/'))), /only to s3:\/\/video-out\//);
  });

  it("is not checked by a local server, which runs with the caller's own credentials", async () => {
    const guard = guardAsyncOutput(open, loadConfig({}).asyncOutputBuckets);
    await guard.admit(call(body('s3://anywhere/')));
  });
});
