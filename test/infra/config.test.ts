/**
 * Configuration: context and props are read, typed and validated at synth, with errors that name
 * the key and say what is allowed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { addRelayStack, cdkJsonContext } from '../../lib/app.js';
import { RELAY_CONTEXT_KEYS, RelayConfigError, readRelayContext, resolveRelayConfig, type RelayConfigInput } from '../../lib/config.js';

/** The problems reported for a configuration, or [] when it is valid. */
function problems(context: Record<string, unknown>, props: RelayConfigInput = {}): string[] {
  try {
    resolveRelayConfig(props, context);
    return [];
  } catch (error) {
    assert.ok(error instanceof RelayConfigError, `expected a RelayConfigError, got ${String(error)}`);
    return [...error.problems];
  }
}

function assertRejected(context: Record<string, unknown>, key: string, pattern: RegExp): void {
  const found = problems(context);
  assert.equal(found.length, 1, `one problem for ${JSON.stringify(context)}: ${found.join(' | ')}`);
  assert.ok(found[0]!.startsWith(`${key}:`), `the problem names ${key}: ${found[0]}`);
  assert.match(found[0]!, pattern);
}

describe('configuration defaults', () => {
  it('are sized for long generations and safe to deploy', () => {
    assert.deepEqual(resolveRelayConfig(), {
      stage: 'dev',
      bedrockRegions: undefined,
      modelFamilies: undefined,
      // bench/lambda-memory.ts: see README, "Costs".
      memorySize: 512,
      timeoutSeconds: 900,
      // A ceiling on a public URL: a flood cannot take the account's whole concurrency.
      reservedConcurrency: 100,
      logRetentionDays: 30,
      keyCacheTtlSeconds: 30,
      corsAllowedOrigins: undefined,
      authType: 'NONE',
      alarmEmail: undefined,
      alarmTopicArn: undefined,
      tracing: false,
      logLevel: 'INFO',
      perKeyMetrics: false,
      asyncOutputBuckets: undefined,
      marketplaceProductIds: undefined,
    });
  });
});

describe('context values', () => {
  it('are parsed from the strings `cdk -c key=value` passes', () => {
    const config = resolveRelayConfig(
      {},
      {
        stage: 'prod',
        bedrockRegions: 'us-east-1, us-west-2',
        modelFamilies: '["anthropic.*","amazon.nova-*"]',
        memorySize: '2048',
        timeoutSeconds: '600',
        reservedConcurrency: '50',
        logRetentionDays: '90',
        keyCacheTtlSeconds: '0',
        corsAllowedOrigins: 'https://app.example.com',
        authType: 'aws_iam',
        alarmEmail: 'ops@example.com',
        tracing: 'true',
      },
    );
    assert.equal(config.stage, 'prod');
    assert.deepEqual(config.bedrockRegions, ['us-east-1', 'us-west-2']);
    assert.deepEqual(config.modelFamilies, ['anthropic.*', 'amazon.nova-*']);
    assert.equal(config.memorySize, 2048);
    assert.equal(config.timeoutSeconds, 600);
    assert.equal(config.reservedConcurrency, 50);
    assert.equal(config.logRetentionDays, 90);
    assert.equal(config.keyCacheTtlSeconds, 0);
    assert.deepEqual(config.corsAllowedOrigins, ['https://app.example.com']);
    assert.equal(config.authType, 'AWS_IAM');
    assert.equal(config.alarmEmail, 'ops@example.com');
    assert.equal(config.tracing, true);
  });

  it('parse the options for a public URL, metrics and optional grants', () => {
    const config = resolveRelayConfig(
      {},
      {
        reservedConcurrency: 'none',
        logLevel: 'debug',
        perKeyMetrics: 'true',
        asyncOutputBuckets: 'a-bucket,b.bucket',
        marketplaceSubscribe: 'prod-abc123,prod-def456',
      },
    );
    assert.equal(config.reservedConcurrency, undefined, '"none" lifts the reservation');
    assert.equal(config.logLevel, 'DEBUG');
    assert.equal(config.perKeyMetrics, true);
    assert.deepEqual(config.asyncOutputBuckets, ['a-bucket', 'b.bucket']);
    assert.deepEqual(config.marketplaceProductIds, ['prod-abc123', 'prod-def456']);
    assert.equal(resolveRelayConfig({}, { marketplaceSubscribe: 'true' }).marketplaceProductIds, '*');
    assert.equal(resolveRelayConfig({}, { marketplaceSubscribe: 'false' }).marketplaceProductIds, undefined);
  });

  it('also accept JSON types, as cdk.json gives them', () => {
    const config = resolveRelayConfig({}, { bedrockRegions: ['eu-west-1'], memorySize: 512, tracing: false });
    assert.deepEqual(config.bedrockRegions, ['eu-west-1']);
    assert.equal(config.memorySize, 512);
    assert.equal(config.tracing, false);
  });

  it('are overridden by stack props', () => {
    assert.equal(resolveRelayConfig({ memorySize: 3008 }, { memorySize: '512' }).memorySize, 3008);
  });

  it("are read only for the relay's own keys", () => {
    const context: Record<string, unknown> = { stage: 'qa', '@aws-cdk/core:newStyleStackSynthesis': true, unrelated: 1, tracing: '' };
    assert.deepEqual(
      readRelayContext((key) => context[key]),
      { stage: 'qa' },
    );
    assert.ok(RELAY_CONTEXT_KEYS.includes('bedrockRegions'), 'bedrockRegions is a context key');
  });
});

describe('invalid configuration', () => {
  it("rejects a timeout above Lambda's 15 minutes, or below 1 second", () => {
    assertRejected({ timeoutSeconds: 901 }, 'timeoutSeconds', /at most|between 1 and 900/);
    assertRejected({ timeoutSeconds: 0 }, 'timeoutSeconds', /between 1 and 900/);
    assertRejected({ timeoutSeconds: '15m' }, 'timeoutSeconds', /whole number/);
  });

  it("rejects memory outside Lambda's range", () => {
    assertRejected({ memorySize: 64 }, 'memorySize', /128 and 10240/);
    assertRejected({ memorySize: 20000 }, 'memorySize', /128 and 10240/);
    assertRejected({ memorySize: 1.5 }, 'memorySize', /whole number/);
  });

  it('rejects a reserved concurrency of 0, which would stop the function', () => {
    assertRejected({ reservedConcurrency: 0 }, 'reservedConcurrency', /at least 1/);
  });

  it('rejects a log level Lambda does not know, and product IDs that are not product IDs', () => {
    assertRejected({ logLevel: 'VERBOSE' }, 'logLevel', /must be one of TRACE/);
    assertRejected({ marketplaceSubscribe: ['*'] }, 'marketplaceSubscribe', /not a Marketplace product ID/);
  });

  it('rejects a log retention CloudWatch does not offer', () => {
    assertRejected({ logRetentionDays: 31 }, 'logRetentionDays', /one of 1, 3, 5/);
  });

  it('rejects a key cache TTL outside 0..3600 seconds', () => {
    assertRejected({ keyCacheTtlSeconds: -1 }, 'keyCacheTtlSeconds', /between 0 and 3600/);
    assertRejected({ keyCacheTtlSeconds: 7200 }, 'keyCacheTtlSeconds', /between 0 and 3600/);
  });

  it('rejects region names that are not regions, and duplicates', () => {
    assertRejected({ bedrockRegions: 'us-east-1,virginia' }, 'bedrockRegions', /"virginia" is not an AWS region/);
    assertRejected({ bedrockRegions: ['us-east-1', 'us-east-1'] }, 'bedrockRegions', /twice/);
    assertRejected({ bedrockRegions: [] }, 'bedrockRegions', /at least one/);
    assertRejected({ bedrockRegions: [1] }, 'bedrockRegions', /list of strings/);
  });

  it('rejects model families that would match everything or are not model ID patterns', () => {
    assertRejected({ modelFamilies: ['*'] }, 'modelFamilies', /every model/);
    assertRejected({ modelFamilies: ['*claude*'] }, 'modelFamilies', /every model/);
    assertRejected({ modelFamilies: ['anthropic/claude'] }, 'modelFamilies', /model ID or prefix pattern/);
  });

  it('rejects CORS origins with paths or without a scheme', () => {
    assertRejected({ corsAllowedOrigins: ['https://app.example.com/path'] }, 'corsAllowedOrigins', /scheme and host/);
    assertRejected({ corsAllowedOrigins: ['app.example.com'] }, 'corsAllowedOrigins', /scheme and host/);
  });

  it('rejects auth types other than NONE and AWS_IAM', () => {
    assertRejected({ authType: 'API_KEY' }, 'authType', /NONE or AWS_IAM/);
  });

  it('rejects a malformed alarm target, and both targets at once', () => {
    assertRejected({ alarmEmail: 'ops' }, 'alarmEmail', /not an e-mail/);
    assertRejected({ alarmTopicArn: 'ops-topic' }, 'alarmTopicArn', /not an SNS topic ARN/);
    const both = problems({ alarmEmail: 'ops@example.com', alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:ops' });
    assert.equal(both.length, 1);
    assert.match(both[0]!, /not both/);
  });

  it('rejects a stage name that cannot be part of a stack name', () => {
    assertRejected({ stage: 'Prod_1' }, 'stage', /a-z, 0-9/);
    assertRejected({ stage: 'a-very-long-stage-name' }, 'stage', /1-16 characters/);
  });

  it('rejects a tracing value that is not a boolean', () => {
    assertRejected({ tracing: 'yes' }, 'tracing', /true or false/);
  });

  it('lists every problem at once', () => {
    const found = problems({ timeoutSeconds: 1000, memorySize: 1, authType: 'OPEN' });
    assert.deepEqual(
      found.map((problem) => problem.split(':')[0]),
      ['memorySize', 'timeoutSeconds', 'authType'],
    );
  });

  it('fails `cdk synth` before any resource is created', () => {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], timeoutSeconds: '1200' } });
    assert.throws(
      () => addRelayStack(app, { nag: false }),
      (error: unknown) => {
        assert.ok(error instanceof RelayConfigError, 'a RelayConfigError');
        assert.match(error.message, /Invalid bedrock-relay configuration:\n {2}- timeoutSeconds: 1200 must be between 1 and 900/);
        return true;
      },
    );
    assert.equal(app.node.children.length, 0, 'no stack was added');
  });
});
