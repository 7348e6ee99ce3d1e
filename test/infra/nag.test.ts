/**
 * cdk-nag's AWS Solutions checks pass, and every acknowledged finding carries a written reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { addRelayStack, cdkJsonContext } from '../../lib/app.js';
import type { RelayConfigInput } from '../../lib/config.js';

function stackFor(config: RelayConfigInput = {}) {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  return { app, stack: addRelayStack(app, { config, env: {}, nag: false }) };
}

/** `AwsSolutions-IAM5[Resource::…]` and the rest, as cdk-nag reports them. */
function violations(config: RelayConfigInput = {}, tamper?: (stack: ReturnType<typeof stackFor>['stack']) => void): string[] {
  const { stack } = stackFor(config);
  tamper?.(stack);
  const report = new AwsSolutionsChecks(undefined, { verbose: true }).validateScope(stack);
  return report.violations.map((violation) => violation.ruleName);
}

describe('cdk-nag AwsSolutionsChecks', () => {
  it('finds nothing unacknowledged in the default stack', () => {
    assert.deepEqual(violations(), []);
  });

  it('finds nothing unacknowledged with every option on', () => {
    assert.deepEqual(
      violations({
        bedrockRegions: ['us-east-1', 'us-west-2'],
        modelFamilies: ['anthropic.*', 'amazon.nova-*'],
        tracing: true,
        reservedConcurrency: 10,
        corsAllowedOrigins: ['https://app.example.com'],
        alarmEmail: 'ops@example.com',
        perKeyMetrics: true,
        asyncOutputBuckets: ['relay-video-out'],
        marketplaceSubscribe: ['prod-abcdef123456'],
      }),
      [],
    );
    assert.deepEqual(violations({ authType: 'AWS_IAM', alarmTopicArn: 'arn:aws:sns:us-east-1:123456789012:ops' }), []);
  });

  it('still catches a wildcard nobody acknowledged (the checks are live)', () => {
    const found = violations({}, (stack) => {
      stack.relay.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::*'] }));
    });
    assert.deepEqual(found, ['AwsSolutions-IAM5[Resource::arn:aws:s3:::*]']);
  });

  it('acknowledges findings only with a reason', () => {
    const { stack } = stackFor({ tracing: true });
    const acknowledged = new Map<string, string>();
    for (const construct of stack.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.data === null || typeof entry.data !== 'object') continue;
        for (const [key, reason] of Object.entries(entry.data as Record<string, unknown>)) {
          if (key.includes('AwsSolutions-')) acknowledged.set(key.replace(/^.*?(AwsSolutions-)/, '$1'), String(reason));
        }
      }
    }
    const ids = [...acknowledged.keys()];
    for (const expected of ['AwsSolutions-SMG4', 'AwsSolutions-L1', 'AwsSolutions-IAM5[Resource::*]']) {
      assert.ok(ids.includes(expected), `${expected} is acknowledged (found ${ids.join(', ')})`);
    }
    assert.ok(
      ids.some((id) => id.includes(':foundation-model/*]')),
      'the foundation-model wildcard is acknowledged',
    );
    for (const [id, reason] of acknowledged) assert.ok(reason.length >= 60, `${id} has a written reason: "${reason}"`);
  });

  it('run as part of the app and fail synth on a new finding', () => {
    const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    addRelayStack(app, { env: {} });
    assert.doesNotThrow(() => app.synth(), 'the app with its acknowledgements synthesizes');

    const tampered = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
    const tamperedStack = addRelayStack(tampered, { env: {} });
    new iam.User(tamperedStack, 'Unreviewed').addToPolicy(new iam.PolicyStatement({ actions: ['s3:*'], resources: ['*'] }));
    assert.throws(() => tampered.synth(), /Validation failed/);
  });
});
