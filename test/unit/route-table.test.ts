import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { ROUTES, requiredIamActions } from '../../lambda/routes/table.js';

const require = createRequire(import.meta.url);

interface SdkOperation {
  readonly name: string;
  readonly method: string;
  readonly uri: string;
}

/** Every operation of an installed SDK client, with the HTTP binding from its schema. */
function sdkOperations(packageName: string): SdkOperation[] {
  const sdk = require(packageName) as Record<string, unknown>;
  return Object.entries(sdk)
    .filter(([name, value]) => name.endsWith('Command') && name !== '$Command' && typeof value === 'function')
    .map(([name, Command]) => {
      const schema = new (Command as new (input: object) => { schema: unknown[] })({}).schema;
      const traits = schema[3] as { http: [string, string, number] };
      return { name: name.replace(/Command$/, ''), method: traits.http[0], uri: traits.http[1] };
    });
}

const SDK_SERVICES = [
  { pkg: '@aws-sdk/client-bedrock-runtime', service: 'bedrock-runtime' },
  { pkg: '@aws-sdk/client-bedrock-agent-runtime', service: 'bedrock-agent-runtime' },
] as const;

describe('route table against the installed AWS SDK models', () => {
  for (const { pkg, service } of SDK_SERVICES) {
    const operations = sdkOperations(pkg);

    it(`${pkg} exposes operations to compare against`, () => {
      assert.ok(operations.length >= 10, `expected the SDK to list its operations, got ${operations.length}`);
    });

    it(`every ${service} operation has a route with the same method and URI template`, () => {
      const missing: string[] = [];
      for (const op of operations) {
        const route = ROUTES.find((r) => r.service === service && r.operation === op.name);
        if (!route) {
          missing.push(`${op.name} (${op.method} ${op.uri})`);
          continue;
        }
        assert.equal(route.method, op.method, `${op.name} method`);
        assert.equal(route.template, op.uri, `${op.name} URI template`);
        assert.equal(route.source, 'sdk', `${op.name} should say it comes from the SDK model`);
      }
      assert.deepEqual(missing, [], `operations without a route: ${missing.join(', ')}`);
    });

    it(`no ${service} route claims an SDK operation that does not exist`, () => {
      const names = new Set(operations.map((op) => op.name));
      const stale = ROUTES.filter((r) => r.service === service && r.source === 'sdk' && !names.has(r.operation));
      assert.deepEqual(
        stale.map((r) => r.operation),
        [],
      );
    });
  }

  it('covers the control-plane discovery calls with the templates of @aws-sdk/client-bedrock', () => {
    const control = sdkOperations('@aws-sdk/client-bedrock');
    for (const name of ['ListInferenceProfiles', 'GetInferenceProfile', 'ListFoundationModels', 'GetFoundationModel']) {
      const op = control.find((o) => o.name === name);
      const route = ROUTES.find((r) => r.operation === name);
      assert.ok(op && route, name);
      assert.equal(route.method, op.method);
      assert.equal(route.template, op.uri);
    }
    // No other control-plane operation is reachable.
    assert.equal(ROUTES.filter((r) => r.service === 'bedrock').length, 4);
    assert.ok(ROUTES.filter((r) => r.service === 'bedrock').every((r) => r.method === 'GET'));
  });
});

describe('route table invariants', () => {
  it('has one entry per service, method and template', () => {
    const seen = new Set<string>();
    for (const r of ROUTES) {
      const id = `${r.prefix} ${r.method} ${r.template}`;
      assert.ok(!seen.has(id), `duplicate route ${id}`);
      seen.add(id);
    }
  });

  it('marks the streaming operations', () => {
    const streaming = ROUTES.filter((r) => r.stream === 'eventstream')
      .map((r) => r.operation)
      .sort();
    assert.deepEqual(streaming, [
      'AgenticRetrieveStream',
      'ConverseStream',
      'InvokeAgent',
      'InvokeFlow',
      'InvokeInlineAgent',
      'InvokeModelWithBidirectionalStream',
      'InvokeModelWithResponseStream',
      'OptimizePrompt',
      'RetrieveAndGenerateStream',
    ]);
  });

  it('names IAM actions for every supported route and none for the unsupported one', () => {
    for (const r of ROUTES) {
      if (r.unsupported) assert.equal(r.iamActions.length, 0, r.operation);
      else assert.ok(r.iamActions.length > 0 && r.iamActions.every((a) => /^bedrock(-mantle)?:[A-Z]\w+$/.test(a)), r.operation);
    }
    assert.ok(!requiredIamActions().some((a) => a.endsWith(':*')));
    assert.ok(requiredIamActions().includes('bedrock:InvokeModelWithResponseStream'));
  });

  it('knows the bidirectional stream cannot pass through a Function URL', () => {
    const bidi = ROUTES.find((r) => r.operation === 'InvokeModelWithBidirectionalStream');
    assert.match(bidi?.unsupported ?? '', /Function URL/);
  });

  it('gives every template label a resource kind', () => {
    for (const r of ROUTES) {
      const labels = [...r.template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
      assert.deepEqual(
        labels.filter((l) => !(l in r.resources)),
        [],
        `${r.operation} has labels without a resource kind`,
      );
    }
  });

  it('names a source for every entry no Smithy model describes', () => {
    for (const r of ROUTES.filter((route) => route.source !== 'sdk')) assert.ok(r.source.length > 10, r.operation);
  });
});
