/**
 * Template assertions on the relay stack: function, URL, data stores, environment, outputs,
 * operations, and stages side by side (IAM has its own file, iam.test.ts). Bundling is skipped (`aws:cdk:bundling-stacks: []`) to keep these fast; the real
 * esbuild bundle is built and run in bundle.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, type Environment } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { addRelayStack, cdkJsonContext, relayStackName } from '../../lib/app.js';
import type { RelayConfigInput } from '../../lib/config.js';
import type { RelayStack } from '../../lib/relay-stack.js';
import { ENV, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/contract.js';
import { bedrockRegion, loadConfig } from '../../lambda/config.js';

/** Environment values that are plain strings (tokens such as Ref are left out). */
function stringsOnly(variables: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

function synth(config: RelayConfigInput = {}, env: Environment = {}): { stack: RelayStack; template: Template } {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = addRelayStack(app, { config, env, nag: false });
  return { stack, template: Template.fromStack(stack) };
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown>; DeletionPolicy?: string; UpdateReplacePolicy?: string }>;

function only(template: Template, type: string): { id: string; properties: Record<string, unknown>; resource: Resources[string] } {
  const found = Object.entries(template.findResources(type) as Resources);
  assert.equal(found.length, 1, `expected exactly one ${type}, found ${found.length}`);
  const [id, resource] = found[0]!;
  return { id, properties: resource.Properties ?? {}, resource };
}

/** One of the stack's Secrets Manager secrets, by the start of its logical id (`MasterKey`, `SigV4SigningSecret`). */
function secretNamed(template: Template, prefix: string): { id: string; properties: Record<string, unknown>; resource: Resources[string] } {
  const found = Object.entries(template.findResources('AWS::SecretsManager::Secret') as Resources).filter(([id]) => id.startsWith(prefix));
  assert.equal(found.length, 1, `expected exactly one ${prefix} secret, found ${found.length}`);
  const [id, resource] = found[0]!;
  return { id, properties: resource.Properties ?? {}, resource };
}

const defaults = synth();

describe('Lambda function', () => {
  const fn = only(defaults.template, 'AWS::Lambda::Function').properties;

  it('runs Node.js 22 on arm64 with the bundled ESM handler', () => {
    assert.equal(fn.Runtime, 'nodejs22.x');
    assert.deepEqual(fn.Architectures, ['arm64']);
    assert.equal(fn.Handler, 'index.handler');
  });

  it('defaults to a 15-minute timeout, 512 MB and 100 reserved concurrent executions, without tracing', () => {
    assert.equal(fn.Timeout, 900);
    assert.equal(fn.MemorySize, 512);
    assert.equal(fn.ReservedConcurrentExecutions, 100);
    assert.equal(fn.TracingConfig, undefined);
    const unreserved = only(synth({ reservedConcurrency: 'none' }).template, 'AWS::Lambda::Function').properties;
    assert.equal(unreserved.ReservedConcurrentExecutions, undefined);
  });

  it('takes memory, timeout, reserved concurrency and tracing from the configuration', () => {
    const custom = only(synth({ memorySize: 2048, timeoutSeconds: 600, reservedConcurrency: 25, tracing: true }).template, 'AWS::Lambda::Function').properties;
    assert.equal(custom.MemorySize, 2048);
    assert.equal(custom.Timeout, 600);
    assert.equal(custom.ReservedConcurrentExecutions, 25);
    assert.deepEqual(custom.TracingConfig, { Mode: 'Active' });
  });

  it('logs JSON to its own log group with the configured retention and application log level', () => {
    const logGroup = only(defaults.template, 'AWS::Logs::LogGroup');
    assert.deepEqual(fn.LoggingConfig, { LogGroup: { Ref: logGroup.id }, LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' });
    const debug = only(synth({ logLevel: 'DEBUG' }).template, 'AWS::Lambda::Function').properties;
    assert.equal((debug.LoggingConfig as { ApplicationLogLevel: string }).ApplicationLogLevel, 'DEBUG');
    assert.equal(logGroup.properties.RetentionInDays, 30);
    assert.equal(logGroup.properties.LogGroupName, undefined, 'no fixed log group name');
    const custom = only(synth({ logRetentionDays: 365 }).template, 'AWS::Logs::LogGroup').properties;
    assert.equal(custom.RetentionInDays, 365);
  });
});

describe('environment', () => {
  const { template } = defaults;
  const secret = secretNamed(template, 'MasterKey');
  const signingSecret = secretNamed(template, 'SigV4SigningSecret');
  const table = only(template, 'AWS::DynamoDB::Table');
  const variables = (only(template, 'AWS::Lambda::Function').properties.Environment as { Variables: Record<string, unknown> }).Variables;

  it('has exactly the variables the relay reads, named by the shared contract', () => {
    assert.deepEqual(variables, {
      [ENV.masterKeySecretArn]: { Ref: secret.id },
      [ENV.sigv4SecretArn]: { Ref: signingSecret.id },
      [ENV.keysTable]: { Ref: table.id },
      [ENV.keyCacheTtlSeconds]: '30',
      [ENV.asyncOutputBuckets]: '',
      [ENV.serviceName]: SERVICE_NAME,
      [ENV.metricsNamespace]: METRICS_NAMESPACE,
      NODE_OPTIONS: '--enable-source-maps',
    });
    // The function reads what the stack writes: the same names, the same values.
    const config = loadConfig({ ...stringsOnly(variables), AWS_REGION: 'eu-west-3' });
    assert.equal(config.keyCacheTtlSeconds, 30);
    assert.deepEqual(config.asyncOutputBuckets, [], 'StartAsyncInvoke refused until buckets are configured');
    assert.equal(config.perKeyMetrics, false);
  });

  it('carries no secret: no key variable and no Secrets Manager dynamic reference anywhere in the template', () => {
    assert.equal(variables.RELAY_MASTER_KEY, undefined);
    assert.equal(variables.LITELLM_MASTER_KEY, undefined);
    const json = JSON.stringify(template.toJSON());
    assert.doesNotMatch(json, /\{\{resolve:secretsmanager/);
    assert.doesNotMatch(json, /"SecretString"/);
  });

  it('uses the first configured Bedrock region and the configured cache TTL', () => {
    const custom = only(synth({ bedrockRegions: ['us-west-2', 'us-east-1'], keyCacheTtlSeconds: 5 }, { region: 'eu-west-1' }).template, 'AWS::Lambda::Function')
      .properties.Environment as { Variables: Record<string, unknown> };
    assert.equal(custom.Variables[ENV.bedrockRegion], 'us-west-2');
    assert.equal(custom.Variables[ENV.keyCacheTtlSeconds], '5');
  });

  it('switches per-key metrics on only when asked', () => {
    const custom = only(synth({ perKeyMetrics: true }).template, 'AWS::Lambda::Function').properties.Environment as { Variables: Record<string, string> };
    assert.equal(custom.Variables[ENV.perKeyMetrics], 'true');
    assert.equal(loadConfig(custom.Variables).perKeyMetrics, true);
    assert.equal(variables[ENV.perKeyMetrics], undefined);
  });
});

describe('region at run time', () => {
  it('is never pinned by synth: without bedrockRegions the function uses its own AWS_REGION', () => {
    for (const env of [{}, { region: 'eu-central-1' }]) {
      const fn = only(synth({}, env).template, 'AWS::Lambda::Function').properties.Environment as { Variables: Record<string, string> };
      assert.equal(fn.Variables[ENV.bedrockRegion], undefined);
      // What Lambda then gives the function: its own region, wherever the template was deployed.
      assert.equal(loadConfig({ ...fn.Variables, AWS_REGION: 'ap-southeast-2' }).region, 'ap-southeast-2');
    }
  });

  it("is not taken from the CLI's default region either (offline, the CLI says us-east-1)", () => {
    const saved = { region: process.env.CDK_DEFAULT_REGION, account: process.env.CDK_DEFAULT_ACCOUNT };
    process.env.CDK_DEFAULT_REGION = 'us-east-1';
    process.env.CDK_DEFAULT_ACCOUNT = '123456789012';
    try {
      const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
      const template = Template.fromStack(addRelayStack(app, { nag: false }));
      const json = JSON.stringify(template.toJSON());
      assert.doesNotMatch(json, /us-east-1/, 'no region literal anywhere in the template');
      assert.doesNotMatch(json, /123456789012/, 'no account literal either');
      assert.match(json, /"Ref":"AWS::Region"/, 'IAM resolves the region at deploy time');
    } finally {
      if (saved.region === undefined) delete process.env.CDK_DEFAULT_REGION;
      else process.env.CDK_DEFAULT_REGION = saved.region;
      if (saved.account === undefined) delete process.env.CDK_DEFAULT_ACCOUNT;
      else process.env.CDK_DEFAULT_ACCOUNT = saved.account;
    }
  });

  it('is the explicit RELAY_BEDROCK_REGION when a deployer names one', () => {
    assert.equal(bedrockRegion({ [ENV.bedrockRegion]: 'us-west-2', AWS_REGION: 'eu-west-1' }), 'us-west-2');
    assert.equal(bedrockRegion({ AWS_REGION: 'eu-west-1' }), 'eu-west-1');
  });
});

describe('Function URL', () => {
  it('streams responses and is public by default (the relay authenticates callers itself)', () => {
    defaults.template.hasResourceProperties('AWS::Lambda::Url', {
      InvokeMode: 'RESPONSE_STREAM',
      AuthType: 'NONE',
      TargetFunctionArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^RelayFunction'), 'Arn'] },
      Cors: Match.absent(),
    });
  });

  it('grants principal * both lambda:InvokeFunctionUrl and lambda:InvokeFunction, each only via the URL', () => {
    const permissions = Object.values(defaults.template.findResources('AWS::Lambda::Permission') as Resources).map((r) => r.Properties);
    assert.equal(permissions.length, 2);
    const fnArn = { 'Fn::GetAtt': [only(defaults.template, 'AWS::Lambda::Function').id, 'Arn'] };
    assert.deepEqual(
      permissions.find((p) => p?.Action === 'lambda:InvokeFunctionUrl'),
      { Action: 'lambda:InvokeFunctionUrl', FunctionName: fnArn, FunctionUrlAuthType: 'NONE', Principal: '*' },
    );
    assert.deepEqual(
      permissions.find((p) => p?.Action === 'lambda:InvokeFunction'),
      { Action: 'lambda:InvokeFunction', FunctionName: fnArn, InvokedViaFunctionUrl: true, Principal: '*' },
    );
  });

  it('with authType AWS_IAM requires SigV4 and grants nobody public access', () => {
    const { template } = synth({ authType: 'AWS_IAM' });
    template.hasResourceProperties('AWS::Lambda::Url', { AuthType: 'AWS_IAM', InvokeMode: 'RESPONSE_STREAM' });
    template.resourceCountIs('AWS::Lambda::Permission', 0);
  });

  it('adds CORS only for the configured origins', () => {
    synth({ corsAllowedOrigins: ['https://app.example.com', 'http://localhost:5173'] }).template.hasResourceProperties('AWS::Lambda::Url', {
      Cors: Match.objectLike({
        AllowOrigins: ['https://app.example.com', 'http://localhost:5173'],
        AllowMethods: ['*'],
        AllowHeaders: ['*'],
        ExposeHeaders: Match.arrayWith(['x-amzn-requestid', 'x-amzn-errortype', 'retry-after']),
      }),
    });
  });
});

describe('keys table', () => {
  const table = only(defaults.template, 'AWS::DynamoDB::Table');

  it('has pk/sk, the gsi1 index (projection ALL) and TTL on ttl', () => {
    assert.deepEqual(table.properties.KeySchema, [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    assert.deepEqual(
      new Set(table.properties.AttributeDefinitions as unknown[]),
      new Set([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'gsi1pk', AttributeType: 'S' },
        { AttributeName: 'gsi1sk', AttributeType: 'S' },
      ]),
    );
    assert.deepEqual(table.properties.GlobalSecondaryIndexes, [
      {
        IndexName: 'gsi1',
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
    assert.deepEqual(table.properties.TimeToLiveSpecification, { AttributeName: 'ttl', Enabled: true });
  });

  it('is on-demand, encrypted at rest, point-in-time recoverable, deletion-protected and retained', () => {
    assert.equal(table.properties.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(table.properties.SSESpecification, { SSEEnabled: true });
    assert.deepEqual(table.properties.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.equal(table.properties.DeletionProtectionEnabled, true);
    assert.equal(table.resource.DeletionPolicy, 'Retain');
    assert.equal(table.resource.UpdateReplacePolicy, 'Retain');
    assert.equal(table.properties.TableName, undefined, 'no fixed table name');
  });
});

describe('master-key secret', () => {
  const secret = secretNamed(defaults.template, 'MasterKey');

  it('is generated by Secrets Manager as a plain 48-character string of letters and digits, and retained', () => {
    assert.deepEqual(secret.properties.GenerateSecretString, { ExcludePunctuation: true, IncludeSpace: false, PasswordLength: 48 });
    assert.equal(secret.resource.DeletionPolicy, 'Retain');
    assert.equal(secret.resource.UpdateReplacePolicy, 'Retain');
    assert.equal(secret.properties.Name, undefined, 'no fixed secret name');
    assert.equal(secret.properties.SecretString, undefined);
  });
});

describe('SigV4 signing secret', () => {
  const secret = secretNamed(defaults.template, 'SigV4SigningSecret');

  it("is generated by Secrets Manager (64 letters and digits) and retained: replacing it changes every key's AWS secret", () => {
    assert.deepEqual(secret.properties.GenerateSecretString, { ExcludePunctuation: true, IncludeSpace: false, PasswordLength: 64 });
    assert.equal(secret.resource.DeletionPolicy, 'Retain');
    assert.equal(secret.resource.UpdateReplacePolicy, 'Retain');
    assert.equal(secret.properties.SecretString, undefined);
  });
});

describe('outputs', () => {
  it('are the URL, the secret name and ARN, the table name and the dashboard, and nothing secret', () => {
    const outputs = defaults.template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const secret = secretNamed(defaults.template, 'MasterKey').id;
    assert.deepEqual(Object.keys(outputs).sort(), ['DashboardName', 'FunctionUrl', 'KeysTableName', 'MasterKeySecretArn', 'MasterKeySecretName']);
    assert.deepEqual(outputs.FunctionUrl!.Value, { 'Fn::GetAtt': [only(defaults.template, 'AWS::Lambda::Url').id, 'FunctionUrl'] });
    assert.deepEqual(outputs.MasterKeySecretArn!.Value, { Ref: secret });
    assert.deepEqual(outputs.KeysTableName!.Value, { Ref: only(defaults.template, 'AWS::DynamoDB::Table').id });
    // The name is derived from the ARN (Fn::Split/Select on the Ref), never from the secret's value.
    assert.match(JSON.stringify(outputs.MasterKeySecretName!.Value), new RegExp(`"Ref":"${secret}"`));
    assert.doesNotMatch(JSON.stringify(outputs), /"SecretString"|resolve:secretsmanager/);
  });
});

/** Properties that would fix a resource's physical name, per resource type in this stack. */
const NAME_PROPERTIES: Record<string, string[]> = {
  'AWS::Lambda::Function': ['FunctionName'],
  'AWS::IAM::Role': ['RoleName'],
  'AWS::IAM::Policy': [],
  'AWS::DynamoDB::Table': ['TableName'],
  'AWS::SecretsManager::Secret': ['Name'],
  'AWS::Logs::LogGroup': ['LogGroupName'],
  'AWS::SNS::Topic': ['TopicName'],
  'AWS::CloudWatch::Alarm': ['AlarmName'],
  'AWS::CloudWatch::Dashboard': ['DashboardName'],
  'AWS::Logs::MetricFilter': ['FilterName'],
};

describe('upgrades', () => {
  it('keep the logical IDs of everything stateful or client-facing from before the constructs existed', () => {
    // A new ID would make CloudFormation create a new table and secret (the old ones, retained,
    // orphaned with every key), a new function URL, and drop the log group holding ledger replays.
    const ids = Object.entries(defaults.template.toJSON().Resources as Resources).map(([id, r]) => `${r.Type} ${id}`);
    for (const expected of [
      'AWS::SecretsManager::Secret MasterKey0175C9E2',
      'AWS::DynamoDB::Table KeysTableDD857A22',
      'AWS::Logs::LogGroup FunctionLogsAE28C13D',
      'AWS::Lambda::Function RelayFunctionD137DF95',
      'AWS::Lambda::Url RelayFunctionFunctionUrl1A54261A',
    ]) {
      assert.ok(ids.includes(expected), `${expected} (found: ${ids.filter((id) => id.startsWith(expected.split(' ')[0]!)).join(', ')})`);
    }
  });
});

describe('stages: two stacks in one account and region', () => {
  const env = { account: '123456789012', region: 'us-east-1' };
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const dev = addRelayStack(app, { config: { stage: 'dev' }, env, nag: false });
  const prod = addRelayStack(app, { config: { stage: 'prod', alarmEmail: 'ops@example.com' }, env, nag: false });
  const templates = [Template.fromStack(dev), Template.fromStack(prod)];

  it('get their own stack names', () => {
    assert.equal(dev.stackName, 'BedrockRelay-dev');
    assert.equal(prod.stackName, 'BedrockRelay-prod');
    assert.equal(relayStackName('staging'), 'BedrockRelay-staging');
  });

  it('synthesize side by side in one account and region', () => {
    const assembly = app.synth();
    assert.deepEqual(assembly.stacks.map((stack) => stack.stackName).sort(), ['BedrockRelay-dev', 'BedrockRelay-prod']);
  });

  it("fix no physical names except the dashboard's, which includes the stage", () => {
    for (const template of templates) {
      for (const [id, resource] of Object.entries(template.toJSON().Resources as Record<string, { Type: string; Properties?: Record<string, unknown> }>)) {
        for (const property of NAME_PROPERTIES[resource.Type] ?? []) {
          if (property === 'DashboardName') continue;
          assert.equal(resource.Properties?.[property], undefined, `${id} (${resource.Type}) must not set ${property}`);
        }
      }
    }
    const dashboardNames = templates.map((template) =>
      JSON.stringify(Object.values(template.findResources('AWS::CloudWatch::Dashboard'))[0]?.Properties?.DashboardName),
    );
    assert.match(dashboardNames[0]!, /BedrockRelay-dev-/);
    assert.match(dashboardNames[1]!, /BedrockRelay-prod-/);
  });

  it('export nothing, so no export name can collide', () => {
    for (const template of templates) {
      for (const output of Object.values(template.toJSON().Outputs as Record<string, { Export?: unknown }>)) {
        assert.equal(output.Export, undefined);
      }
    }
  });

  it('are chosen with `-c stage=<name>`', () => {
    const fromContext = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], stage: 'qa' } });
    assert.equal(addRelayStack(fromContext, { nag: false }).stackName, 'BedrockRelay-qa');
  });
});
