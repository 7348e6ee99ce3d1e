/**
 * The bedrock-relay stack: the constructs in lib/constructs wired together. One streaming Lambda
 * behind a Function URL, the master-key secret, the key/usage table, and the operations around them.
 *
 * Nothing here has a fixed physical name, so several stages (`-c stage=dev`, `-c stage=prod`) can
 * live side by side in one account and region. Nothing here pins a region either: without
 * `bedrockRegions`, IAM resolves the region at deploy time and the function at run time.
 *
 * To add a credential the function needs: `new RelaySecret(this, 'Name', …)`, then
 * `secret.grantRead(this.relay)` and `this.relay.addEnvironment(ENV.…, secret.secret.secretArn)`.
 */
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { ENV, SERVICE_NAME } from '../lambda/contract.js';
import { requiredIamActions, ROUTES } from '../lambda/routes/table.js';
import { asyncOutputStatement, bedrockPolicyStatements, marketplaceStatements, WILDCARD_REASONS } from './bedrock-iam.js';
import { readRelayContext, resolveRelayConfig, type RelayConfigInput, type RelayStackConfig } from './config.js';
import { RelayKeysTable } from './constructs/keys-table.js';
import { RelayFunction } from './constructs/relay-function.js';
import { RelaySecret } from './constructs/secret.js';
import { acknowledge, acknowledgeWildcardResources } from './nag.js';
import { RelayOperations } from './operations.js';

export { HANDLER_ENTRY, PROJECT_ROOT } from './constructs/relay-function.js';

export interface RelayStackProps extends StackProps {
  /** Configuration; any field left out is read from CDK context, then defaulted (see lib/config.ts). */
  readonly config?: RelayConfigInput;
}

export class RelayStack extends Stack {
  readonly config: RelayStackConfig;
  readonly relay: RelayFunction;
  readonly masterKey: RelaySecret;
  /** What every key's aws_secret_access_key is derived from (lambda/keys/aws-credentials.ts). */
  readonly sigv4SigningSecret: RelaySecret;
  readonly keysTable: RelayKeysTable;
  readonly operations: RelayOperations;

  constructor(scope: Construct, id: string, props: RelayStackProps = {}) {
    super(scope, id, props);
    this.config = resolveRelayConfig(
      props.config,
      readRelayContext((key) => this.node.tryGetContext(key)),
    );
    const config = this.config;
    Tags.of(this).add('application', SERVICE_NAME);
    Tags.of(this).add('stage', config.stage);

    // ── Data ──
    // The master key is the secret's whole SecretString: what clients send as `Authorization: Bearer …`.
    this.masterKey = new RelaySecret(this, 'MasterKey', { description: `bedrock-relay (${config.stage}) master key: the SecretString is the key itself` });
    acknowledge(
      this.masterKey.secret,
      'AwsSolutions-SMG4',
      'The master key is an administrator credential held by people and scripts, so rotating it is a coordinated step (put a new ' +
        'SecretString; environments read it at cold start), documented in the README. Automatic rotation would need a rotation ' +
        'function and would lock administrators out without notice. Day-to-day callers use virtual keys, rotated with /key/regenerate.',
    );

    // SigV4 in: each key's aws_secret_access_key is HMAC(this secret, key token), so the table
    // alone does not reveal it. Separate from the master key so rotating one leaves the other.
    this.sigv4SigningSecret = new RelaySecret(this, 'SigV4SigningSecret', {
      description: `bedrock-relay (${config.stage}) SigV4 signing secret: keys' AWS secret access keys are derived from it`,
      length: 64,
    });
    acknowledge(
      this.sigv4SigningSecret.secret,
      'AwsSolutions-SMG4',
      "Rotating the SigV4 signing secret changes every virtual key's aws_secret_access_key at once, so it is a coordinated step " +
        '(documented in the README), not an automatic rotation. Individual pairs rotate with /key/regenerate.',
    );
    this.keysTable = new RelayKeysTable(this, 'KeysTable');

    // ── Function ──
    // Created here rather than inside RelayFunction so that its logical ID (and the
    // ledger-write-failed records it holds for replay) survives changes to that construct.
    const logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const environment: Record<string, string> = {
      [ENV.masterKeySecretArn]: this.masterKey.secret.secretArn,
      [ENV.sigv4SecretArn]: this.sigv4SigningSecret.secret.secretArn,
      [ENV.keysTable]: this.keysTable.table.tableName,
      [ENV.keyCacheTtlSeconds]: String(config.keyCacheTtlSeconds),
      // Set (even empty) so the function refuses StartAsyncInvoke to buckets it has no grant on.
      [ENV.asyncOutputBuckets]: (config.asyncOutputBuckets ?? []).join(','),
    };
    // Only an explicit choice is written: the default is the function's own AWS_REGION at run time.
    if (config.bedrockRegions?.[0]) environment[ENV.bedrockRegion] = config.bedrockRegions[0];
    if (config.perKeyMetrics) environment[ENV.perKeyMetrics] = 'true';

    this.relay = new RelayFunction(this, 'RelayFunction', {
      stage: config.stage,
      memorySize: config.memorySize,
      timeout: Duration.seconds(config.timeoutSeconds),
      reservedConcurrency: config.reservedConcurrency,
      tracing: config.tracing,
      authType: config.authType,
      corsAllowedOrigins: config.corsAllowedOrigins,
      logLevel: config.logLevel,
      logGroup,
      environment,
    });
    acknowledge(
      this.relay.function,
      'AwsSolutions-L1',
      'Pinned to nodejs22.x on purpose: the bundle is built for target node22 and tested under the Node 22 managed-runtime client ' +
        '(aws-lambda-ric, see design.md §5); runtime and esbuild target are raised together, after testing, not by a linter.',
    );

    // ── Grants ──
    this.masterKey.grantRead(this.relay);
    this.sigv4SigningSecret.grantRead(this.relay);
    this.keysTable.grantKeyStore(this.relay);
    this.grantBedrock(config);

    // ── Operations ──
    let alarmTopic: sns.ITopic | undefined;
    if (config.alarmTopicArn) {
      alarmTopic = sns.Topic.fromTopicArn(this, 'AlarmTopic', config.alarmTopicArn);
    } else if (config.alarmEmail) {
      const topic = new sns.Topic(this, 'AlarmTopic', { displayName: `bedrock-relay (${config.stage}) alarms`, enforceSSL: true });
      topic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
      alarmTopic = topic;
    }
    this.operations = new RelayOperations(this, 'Operations', {
      function: this.relay.function,
      logGroup,
      keysTable: this.keysTable,
      reservedConcurrency: config.reservedConcurrency,
      perKeyMetrics: config.perKeyMetrics,
      // Dashboard names are account-wide (not regional): the region keeps same-named stacks apart.
      dashboardName: `${this.stackName}-${this.region}`,
      alarmTopic,
    });

    // ── Outputs (names and ARNs only: nothing here is secret) ──
    new CfnOutput(this, 'FunctionUrl', { value: this.relay.url.url, description: 'Base URL of the relay (append /bedrock/…)' });
    new CfnOutput(this, 'MasterKeySecretName', {
      value: this.masterKey.secret.secretName,
      description: 'Secrets Manager secret holding the master key (its whole secret value is the key)',
    });
    new CfnOutput(this, 'MasterKeySecretArn', { value: this.masterKey.secret.secretArn, description: 'ARN of the master-key secret' });
    new CfnOutput(this, 'KeysTableName', { value: this.keysTable.table.tableName, description: 'DynamoDB table of virtual keys and usage' });
    new CfnOutput(this, 'DashboardName', { value: this.operations.dashboard.dashboardName, description: 'CloudWatch dashboard' });
  }

  /** The route table's Bedrock actions, plus the optional S3 and Marketplace grants. */
  private grantBedrock(config: RelayStackConfig): void {
    const role = this.relay.role;
    const grants = bedrockPolicyStatements(requiredIamActions(ROUTES), {
      partition: Aws.PARTITION,
      account: this.account,
      // Without a configured list, the deploy-time region (a token, never a synth-time literal).
      regions: config.bedrockRegions ?? [this.region],
      modelFamilies: config.modelFamilies,
    });
    for (const { resourceType, statement } of grants) {
      this.relay.addToRolePolicy(statement);
      if (resourceType !== 'none') acknowledgeWildcardResources(role, statement.resources, WILDCARD_REASONS[resourceType]);
    }
    let starReason = `${WILDCARD_REASONS.none} With tracing on, the X-Ray actions xray:PutTraceSegments and xray:PutTelemetryRecords likewise support no resource-level permissions.`;
    if (config.asyncOutputBuckets) {
      const statement = asyncOutputStatement(Aws.PARTITION, config.asyncOutputBuckets);
      this.relay.addToRolePolicy(statement);
      acknowledgeWildcardResources(
        role,
        statement.resources,
        'Bedrock names the output objects per job (one folder per invocation ID) inside the configured buckets; the buckets are exactly those the deployer listed.',
      );
    }
    if (config.marketplaceProductIds) {
      for (const statement of marketplaceStatements(config.marketplaceProductIds)) this.relay.addToRolePolicy(statement);
      starReason += ' aws-marketplace:Subscribe and ViewSubscriptions (opted in with marketplaceSubscribe) support no resource-level permissions either.';
    }
    acknowledge(role, 'AwsSolutions-IAM5[Resource::*]', starReason);
  }
}
