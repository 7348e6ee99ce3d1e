/**
 * Least privilege, proved on the synthesized template: the execution role may do exactly what the
 * route table needs on Bedrock, its own table and index, its own secret and its own log group.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, type Environment } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { requiredIamActions, ROUTES } from '../../lambda/routes/table.js';
import { addRelayStack, cdkJsonContext } from '../../lib/app.js';
import { BEDROCK_ACTION_RESOURCES, bedrockPolicyStatements, resourceTypesFor, type BedrockResourceType } from '../../lib/bedrock-iam.js';
import type { RelayConfigInput } from '../../lib/config.js';
import { nagResourceName } from '../../lib/nag.js';

interface Statement {
  readonly Sid?: string;
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
}

interface RolePolicy {
  readonly template: Template;
  readonly statements: Statement[];
  readonly ids: { role: string; table: string; secret: string; signingSecret: string; logGroup: string };
}

function rolePolicy(config: RelayConfigInput = {}, env: Environment = {}): RolePolicy {
  const app = new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } });
  const stack = addRelayStack(app, { config, env, nag: false });
  const template = Template.fromStack(stack);
  const json = template.toJSON() as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  const idOf = (type: string, prefix = ''): string => {
    const ids = Object.keys(json.Resources).filter((id) => json.Resources[id]!.Type === type && id.startsWith(prefix));
    assert.equal(ids.length, 1, `one ${type}${prefix ? ` named ${prefix}…` : ''}`);
    return ids[0]!;
  };
  const role = idOf('AWS::IAM::Role');
  const roleProps = json.Resources[role]!.Properties;
  assert.equal(roleProps.ManagedPolicyArns, undefined, 'no managed policies on the execution role');
  assert.equal(roleProps.Policies, undefined, 'no other inline policies on the execution role');
  const statements = Object.values(json.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
    .filter((r) => JSON.stringify(r.Properties.Roles ?? []).includes(`"${role}"`))
    .flatMap((r) => (r.Properties.PolicyDocument as { Statement: Statement[] }).Statement);
  return {
    template,
    statements,
    ids: {
      role,
      table: idOf('AWS::DynamoDB::Table'),
      secret: idOf('AWS::SecretsManager::Secret', 'MasterKey'),
      signingSecret: idOf('AWS::SecretsManager::Secret', 'SigV4SigningSecret'),
      logGroup: idOf('AWS::Logs::LogGroup'),
    },
  };
}

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);
const actionsOf = (statements: Statement[], prefix: string): string[] =>
  [...new Set(statements.flatMap((s) => list(s.Action)).filter((a) => a.startsWith(prefix)))].sort();
const resourcesOf = (statement: Statement): string[] => list(statement.Resource).map(nagResourceName);
const isBedrock = (action: string): boolean => action.startsWith('bedrock:') || action.startsWith('bedrock-mantle:');

const defaults = rolePolicy();

describe('Bedrock permissions', () => {
  it('are exactly the actions of requiredIamActions(ROUTES), no more, no less', () => {
    const granted = [...new Set(defaults.statements.flatMap((s) => list(s.Action)).filter(isBedrock))].sort();
    assert.deepEqual(granted, requiredIamActions(ROUTES));
  });

  it('never use action wildcards (no bedrock:* or bedrock:Invoke*)', () => {
    for (const statement of defaults.statements) {
      for (const action of list(statement.Action)) assert.doesNotMatch(action, /\*/, `wildcard action ${action}`);
    }
  });

  it('put each action only on resource types AWS authorizes it against', () => {
    const expectedSegment: Record<BedrockResourceType, RegExp> = {
      'foundation-model': /^arn:<AWS::Partition>:bedrock:\*::foundation-model\/\*$/,
      'inference-profile': /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile\/\*$/,
      'application-inference-profile': /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:application-inference-profile\/\*$/,
      'async-invoke': /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:async-invoke\/\*$/,
      guardrail: /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:guardrail\/\*$/,
      'guardrail-profile': /^arn:<AWS::Partition>:bedrock:\*:<AWS::AccountId>:guardrail-profile\/\*$/,
      'knowledge-base': /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:knowledge-base\/\*$/,
      'agent-alias': /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:agent-alias\/\*$/,
      flow: /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:flow\/\*$/,
      session: /^arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:session\/\*$/,
      'mantle-project': /^arn:<AWS::Partition>:bedrock-mantle:<AWS::Region>:<AWS::AccountId>:project\/\*$/,
      none: /^\*$/,
    };
    const bedrockStatements = defaults.statements.filter((s) => list(s.Action).some(isBedrock));
    for (const statement of bedrockStatements) {
      const resources = resourcesOf(statement);
      const types = (Object.keys(expectedSegment) as BedrockResourceType[]).filter((type) => resources.every((r) => expectedSegment[type].test(r)));
      assert.equal(types.length, 1, `statement ${statement.Sid} covers one resource type: ${resources.join(', ')}`);
      const type = types[0]!;
      for (const action of list(statement.Action)) {
        assert.equal(resourceTypesFor(action).includes(type), true, `${action} is authorized against ${type}`);
      }
    }
    // And every (action, resource type) pair of the mapping is present.
    for (const action of requiredIamActions(ROUTES)) {
      for (const type of resourceTypesFor(action)) {
        const present = bedrockStatements.some((s) => list(s.Action).includes(action) && resourcesOf(s).every((r) => expectedSegment[type].test(r)));
        assert.equal(present, true, `${action} on ${type}`);
      }
    }
  });

  it('keep actions without resource-level permissions in the configured regions', () => {
    const star = defaults.statements.filter((s) => list(s.Action).some(isBedrock) && resourcesOf(s).includes('*'));
    assert.equal(star.length, 1);
    assert.deepEqual(star[0]!.Condition, { StringEquals: { 'aws:RequestedRegion': [{ Ref: 'AWS::Region' }] } });
    const starActions = list(star[0]!.Action);
    assert.deepEqual(
      starActions,
      requiredIamActions(ROUTES).filter((a) => BEDROCK_ACTION_RESOURCES[a]!.includes('none')),
    );
    // The discovery list calls are among them: AWS defines no resource type for them.
    for (const action of ['bedrock:ListFoundationModels', 'bedrock:ListInferenceProfiles', 'bedrock:ListAsyncInvokes', 'bedrock:ListSessions']) {
      assert.equal(starActions.includes(action), true, action);
    }
  });

  it('are scoped to every configured region and nothing else', () => {
    const { statements } = rolePolicy({ bedrockRegions: ['us-east-1', 'us-west-2'] }, { account: '123456789012', region: 'eu-west-1' });
    const resources = statements.filter((s) => list(s.Action).some(isBedrock)).flatMap(resourcesOf);
    const regions = new Set(resources.filter((r) => r !== '*').map((r) => r.replace('<AWS::Partition>', 'aws').split(':')[3]));
    assert.deepEqual([...regions].sort(), ['*', 'us-east-1', 'us-west-2']);
    assert.ok(resources.includes('arn:<AWS::Partition>:bedrock:us-west-2:123456789012:inference-profile/*'), 'us-west-2 profiles');
    assert.ok(resources.includes('arn:<AWS::Partition>:bedrock-mantle:us-east-1:123456789012:project/*'), 'us-east-1 mantle');
    const star = statements.find((s) => resourcesOf(s).includes('*') && list(s.Action).some(isBedrock));
    assert.deepEqual(star?.Condition, { StringEquals: { 'aws:RequestedRegion': ['us-east-1', 'us-west-2'] } });
  });

  it('narrow foundation models and inference profiles to modelFamilies, and drop application inference profiles', () => {
    const { statements } = rolePolicy({ modelFamilies: ['anthropic.*', 'amazon.nova-*'] });
    const bedrock = statements.filter((s) => list(s.Action).some(isBedrock));
    const resources = bedrock.flatMap(resourcesOf);
    const models = resources.filter((r) => r.includes(':foundation-model/'));
    assert.deepEqual(models.sort(), [
      'arn:<AWS::Partition>:bedrock:*::foundation-model/amazon.nova-*',
      'arn:<AWS::Partition>:bedrock:*::foundation-model/anthropic.*',
    ]);
    const profiles = resources.filter((r) => r.includes(':inference-profile/'));
    assert.deepEqual(profiles.sort(), [
      'arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/*.amazon.nova-*',
      'arn:<AWS::Partition>:bedrock:<AWS::Region>:<AWS::AccountId>:inference-profile/*.anthropic.*',
    ]);
    assert.equal(
      resources.some((r) => r.includes('application-inference-profile')),
      false,
    );
    // Narrowing resources never drops an action.
    assert.deepEqual(actionsOf(bedrock, 'bedrock'), requiredIamActions(ROUTES));
  });

  it('allow guardrail profiles in every destination Region, since a cross-Region guardrail runs there', () => {
    // Even with one configured Region: the profile (us., eu., apac.) picks the destinations.
    const { statements } = rolePolicy({ bedrockRegions: ['us-east-1'] }, { account: '123456789012', region: 'us-east-1' });
    const profiles = statements.filter((s) => resourcesOf(s).some((r) => r.includes(':guardrail-profile/')));
    assert.equal(profiles.length, 1);
    assert.deepEqual(resourcesOf(profiles[0]!), ['arn:<AWS::Partition>:bedrock:*:123456789012:guardrail-profile/*']);
    assert.deepEqual(list(profiles[0]!.Action), ['bedrock:ApplyGuardrail']);
  });

  it('fail the synth, naming the action, when the route table needs an action with no resource mapping', () => {
    assert.throws(
      () => bedrockPolicyStatements(['bedrock:InvokeModel', 'bedrock:SomeNewOperation'], { partition: 'aws', account: '1', regions: ['us-east-1'] }),
      /bedrock:SomeNewOperation.*BEDROCK_ACTION_RESOURCES/,
    );
    assert.throws(() => resourceTypesFor('s3:GetObject'), /not a bedrock/);
  });

  it("stay well inside the 10,240-character limit for a role's inline policies, even widely configured", () => {
    const { statements } = rolePolicy(
      {
        bedrockRegions: ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1'],
        modelFamilies: ['anthropic.*', 'amazon.nova-*', 'meta.llama*', 'mistral.*'],
        tracing: true,
      },
      { account: '123456789012', region: 'us-east-1' },
    );
    // IAM counts the policy without whitespace; tokens are rendered as their longest likely value.
    const rendered = JSON.stringify({ Version: '2012-10-17', Statement: statements }).replace(/\{"Ref":"AWS::Partition"\}/g, '"aws-us-gov"');
    const size = JSON.stringify(JSON.parse(rendered)).length;
    assert.ok(size < 9000, `policy is ${size} characters`);
  });
});

describe('DynamoDB permissions', () => {
  it("allow the key store's item operations on its table and gsi1 index only (no Scan, no table management)", () => {
    const dynamo = defaults.statements.filter((s) => list(s.Action).some((a) => a.startsWith('dynamodb:')));
    assert.equal(dynamo.length, 1);
    // No BatchWriteItem: the store issues none (a dead grant is a grant an attacker could use).
    assert.deepEqual(list(dynamo[0]!.Action).sort(), [
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    assert.deepEqual(list(dynamo[0]!.Resource), [
      { 'Fn::GetAtt': [defaults.ids.table, 'Arn'] },
      { 'Fn::Join': ['', [{ 'Fn::GetAtt': [defaults.ids.table, 'Arn'] }, '/index/gsi1']] },
    ]);
  });
});

describe('Secrets Manager permissions', () => {
  it('allow GetSecretValue on the master-key secret and the SigV4 signing secret only', () => {
    const secrets = defaults.statements.filter((s) => list(s.Action).some((a) => a.startsWith('secretsmanager:')));
    // CDK merges the two grants (same action) into one statement.
    for (const statement of secrets) assert.deepEqual(list(statement.Action), ['secretsmanager:GetSecretValue']);
    const resources = secrets.flatMap((s) => list(s.Resource));
    assert.deepEqual(
      resources.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [{ Ref: defaults.ids.secret }, { Ref: defaults.ids.signingSecret }].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
  });
});

describe('everything else', () => {
  it("is writing to the function's own log group (and X-Ray when tracing is on)", () => {
    const known = /^(bedrock|bedrock-mantle|dynamodb|secretsmanager):/;
    const other = defaults.statements.filter((s) => list(s.Action).some((a) => !known.test(a)));
    assert.deepEqual(other, [
      {
        Sid: 'WriteOwnLogs',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [defaults.ids.logGroup, 'Arn'] },
      },
    ]);
    const traced = rolePolicy({ tracing: true }).statements.filter((s) => list(s.Action).some((a) => a.startsWith('xray:')));
    assert.deepEqual(list(traced[0]!.Action).sort(), ['xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
  });

  it('has only Allow statements', () => {
    for (const statement of defaults.statements) assert.equal(statement.Effect, 'Allow');
  });
});

describe('optional grants', () => {
  it('give no S3 or Marketplace permission by default', () => {
    assert.deepEqual(actionsOf(defaults.statements, 's3:'), []);
    assert.deepEqual(actionsOf(defaults.statements, 'aws-marketplace:'), []);
  });

  it('allow s3:PutObject on exactly the asyncOutputBuckets objects, nothing else in S3', () => {
    const { statements } = rolePolicy({ asyncOutputBuckets: ['video-out', 'relay.results'] });
    const s3 = statements.filter((s) => list(s.Action).some((a) => a.startsWith('s3:')));
    assert.equal(s3.length, 1);
    assert.deepEqual(list(s3[0]!.Action), ['s3:PutObject']);
    assert.deepEqual(resourcesOf(s3[0]!).sort(), ['arn:<AWS::Partition>:s3:::relay.results/*', 'arn:<AWS::Partition>:s3:::video-out/*']);
  });

  it('rejects bucket names that would widen the grant', () => {
    assert.throws(() => rolePolicy({ asyncOutputBuckets: ['*'] }), /asyncOutputBuckets: "\*" is not an S3 bucket name/);
    assert.throws(() => rolePolicy({ asyncOutputBuckets: ['s3://bucket/prefix'] }), /not an S3 bucket name/);
  });

  it('allow Marketplace Subscribe (scoped to product IDs when given) and ViewSubscriptions, never Unsubscribe', () => {
    const scoped = rolePolicy({ marketplaceSubscribe: ['prod-abc123def456'] }).statements.filter((s) =>
      list(s.Action).some((a) => a.startsWith('aws-marketplace:')),
    );
    assert.deepEqual(scoped.flatMap((s) => list(s.Action)).sort(), ['aws-marketplace:Subscribe', 'aws-marketplace:ViewSubscriptions']);
    const subscribe = scoped.find((s) => list(s.Action).includes('aws-marketplace:Subscribe'))!;
    assert.deepEqual(subscribe.Condition, { 'ForAnyValue:StringEquals': { 'aws-marketplace:ProductId': ['prod-abc123def456'] } });
    const any = rolePolicy({ marketplaceSubscribe: true }).statements.find((s) => list(s.Action).includes('aws-marketplace:Subscribe'))!;
    assert.equal(any.Condition, undefined);
    assert.equal(JSON.stringify(rolePolicy({ marketplaceSubscribe: true }).statements).includes('Unsubscribe'), false);
  });
});
