/**
 * The bedrock-relay stack: one streaming Lambda behind a Function URL, the master-key secret,
 * the key/usage table, and the operations around them (dashboard, alarms).
 *
 * Nothing here has a fixed physical name, so several stages (`-c stage=dev`, `-c stage=prod`) can
 * live side by side in one account and region.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, Tags, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, LogLevel } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { requiredIamActions, ROUTES } from '../lambda/routes/table.js';
import { TABLE_SCHEMA } from '../lambda/store/schema.js';
import { bedrockPolicyStatements, WILDCARD_REASONS } from './bedrock-iam.js';
import { readRelayContext, resolveRelayConfig, type RelayConfig, type RelayConfigInput } from './config.js';
import { acknowledge, acknowledgeWildcardResources } from './nag.js';
import { RelayOperations } from './operations.js';

/** The repository root (this file is lib/relay-stack.ts). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Lambda entry: the streaming handler, bundled by esbuild. */
export const HANDLER_ENTRY = join(PROJECT_ROOT, 'lambda', 'handler.ts');

/** Names shared by the function's environment, the EMF metrics and the dashboard. */
export const SERVICE_NAME = 'bedrock-relay';
export const METRICS_NAMESPACE = 'BedrockRelay';

/**
 * DynamoDB actions the relay's key store needs on its table and gsi1 index. It uses no transactions
 * (the embedded dynalite store has none, and one implementation serves both), so neither
 * ConditionCheckItem nor the item actions a transaction would authorize are needed beyond these.
 * No Scan: listing keys goes through the gsi1 index with Query.
 */
export const KEYS_TABLE_ACTIONS = [
  'dynamodb:BatchWriteItem',
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
] as const;

export interface RelayStackProps extends StackProps {
  /** Configuration; any field left out is read from CDK context, then defaulted (see lib/config.ts). */
  readonly config?: RelayConfigInput;
}

export class RelayStack extends Stack {
  readonly config: RelayConfig;
  readonly function: NodejsFunction;
  readonly functionUrl: lambda.FunctionUrl;
  readonly masterKeySecret: secretsmanager.Secret;
  /** What every key's aws_secret_access_key is derived from (lambda/keys/aws-credentials.ts). */
  readonly sigv4SigningSecret: secretsmanager.Secret;
  readonly keysTable: dynamodb.Table;
  readonly logGroup: logs.LogGroup;
  readonly operations: RelayOperations;

  constructor(scope: Construct, id: string, props: RelayStackProps = {}) {
    super(scope, id, props);
    this.config = resolveRelayConfig(props.config, readRelayContext((key) => this.node.tryGetContext(key)));
    const config = this.config;
    Tags.of(this).add('application', SERVICE_NAME);
    Tags.of(this).add('stage', config.stage);

    if (!existsSync(HANDLER_ENTRY)) {
      throw new Error(`The Lambda entry ${HANDLER_ENTRY} does not exist; the stack bundles the relay's handler from there.`);
    }

    // The first region is the one the relay calls; all of them get IAM grants.
    const bedrockRegions = config.bedrockRegions ?? [this.region];
    const bedrockRegion = bedrockRegions[0] ?? this.region;

    // ── Data ──
    // The master key is the secret's whole SecretString (48 letters and digits, no prefix): what
    // clients send as `Authorization: Bearer …`. Retained so a stack update or delete never
    // invalidates it; rotate it by putting a new value (see README).
    this.masterKeySecret = new secretsmanager.Secret(this, 'MasterKey', {
      description: `bedrock-relay (${config.stage}) master key: the SecretString is the key itself`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.masterKeySecret,
      'AwsSolutions-SMG4',
      'The master key is an administrator credential held by people and scripts, so rotating it is a coordinated step (put a new ' +
        'SecretString; environments read it at cold start), documented in the README. Automatic rotation would need a rotation ' +
        'function and would lock administrators out without notice. Day-to-day callers use virtual keys, rotated with /key/regenerate.',
    );

    // SigV4 in: each key's aws_secret_access_key is HMAC(this secret, key token), so the table
    // alone does not reveal it. Separate from the master key so rotating one leaves the other;
    // retained, since replacing it changes every key's AWS secret (see docs/readme-sigv4.md).
    this.sigv4SigningSecret = new secretsmanager.Secret(this, 'SigV4SigningSecret', {
      description: `bedrock-relay (${config.stage}) SigV4 signing secret: keys' AWS secret access keys are derived from it`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(
      this.sigv4SigningSecret,
      'AwsSolutions-SMG4',
      'Rotating the SigV4 signing secret changes every virtual key\'s aws_secret_access_key at once, so it is a coordinated step ' +
        '(documented in docs/readme-sigv4.md), not an automatic rotation. Individual pairs rotate with /key/regenerate.',
    );

    // The layout comes from the key store's own schema (lambda/store/schema.ts), so the deployed
    // table and the embedded local one cannot drift apart.
    this.keysTable = new dynamodb.Table(this, 'KeysTable', {
      partitionKey: { name: TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE_SCHEMA.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: true,
      // The AWS managed key (aws/dynamodb): encryption at rest with key use visible in CloudTrail,
      // no key policy to maintain, and callers need no kms: permissions.
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.keysTable.addGlobalSecondaryIndex({
      indexName: TABLE_SCHEMA.gsi1.name,
      partitionKey: { name: TABLE_SCHEMA.gsi1.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.gsi1.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    // ── Function ──
    this.logGroup = new logs.LogGroup(this, 'FunctionLogs', {
      retention: config.logRetentionDays as logs.RetentionDays,
      // Logs are operational data, not the system of record; they go with the stack.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // An explicit role instead of AWSLambdaBasicExecutionRole: that managed policy lets the function
    // write to every log group in the account; this one may write to its own only.
    const role = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `bedrock-relay (${config.stage}) execution role`,
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadMasterKey',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [this.masterKeySecret.secretArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadSigV4SigningSecret',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [this.sigv4SigningSecret.secretArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'KeysTable',
        actions: [...KEYS_TABLE_ACTIONS],
        resources: [this.keysTable.tableArn, `${this.keysTable.tableArn}/index/${TABLE_SCHEMA.gsi1.name}`],
      }),
    );
    const bedrockGrants = bedrockPolicyStatements(requiredIamActions(ROUTES), {
      partition: Aws.PARTITION,
      account: this.account,
      regions: bedrockRegions,
      modelFamilies: config.modelFamilies,
    });
    for (const { resourceType, statement } of bedrockGrants) {
      role.addToPolicy(statement);
      if (resourceType !== 'none') acknowledgeWildcardResources(role, statement.resources, WILDCARD_REASONS[resourceType]);
    }
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      `${WILDCARD_REASONS.none} With tracing on, the X-Ray actions xray:PutTraceSegments and xray:PutTelemetryRecords likewise support no resource-level permissions.`,
    );

    this.function = new NodejsFunction(this, 'RelayFunction', {
      description: `bedrock-relay (${config.stage}): Bedrock pass-through gateway with virtual keys`,
      entry: HANDLER_ENTRY,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: config.memorySize,
      timeout: Duration.seconds(config.timeoutSeconds),
      reservedConcurrentExecutions: config.reservedConcurrency,
      tracing: config.tracing ? lambda.Tracing.ACTIVE : undefined,
      role,
      logGroup: this.logGroup,
      environment: {
        RELAY_MASTER_KEY_SECRET_ARN: this.masterKeySecret.secretArn,
        RELAY_SIGV4_SECRET_ARN: this.sigv4SigningSecret.secretArn,
        RELAY_KEYS_TABLE: this.keysTable.tableName,
        RELAY_BEDROCK_REGION: bedrockRegion,
        RELAY_KEY_CACHE_TTL_SECONDS: String(config.keyCacheTtlSeconds),
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        // esbuild from node_modules, never a Docker image: synth must work on a laptop and in CI
        // without a Docker daemon.
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
        // Line mappings without the original sources: readable stack traces, a smaller bundle.
        sourcesContent: false,
        target: 'node22',
        // ESM because the code is ESM (import.meta, top-level await stay legal); Lambda loads the
        // resulting index.mjs natively. Packages' ESM builds tree-shake best.
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        // CommonJS dependencies bundled into ESM still call require() for Node built-ins; give the
        // module a require of its own (no double quotes: CDK passes this through a shell).
        banner: "import { createRequire as __relayCreateRequire } from 'node:module'; const require = __relayCreateRequire(import.meta.url);",
        // Bundle every dependency, the AWS SDK included, so behaviour is pinned by package-lock.json
        // rather than by whatever SDK version the managed runtime ships.
        externalModules: [],
        logLevel: LogLevel.WARNING,
      },
    });

    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'Pinned to nodejs22.x on purpose: the bundle is built for target node22 and tested under the Node 22 managed-runtime client ' +
        '(aws-lambda-ric, see design.md §5); runtime and esbuild target are raised together, after testing, not by a linter.',
    );

    this.functionUrl = this.function.addFunctionUrl({
      authType: config.authType === 'AWS_IAM' ? lambda.FunctionUrlAuthType.AWS_IAM : lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.RESPONSE_STREAM,
      cors: config.corsAllowedOrigins
        ? {
            allowedOrigins: [...config.corsAllowedOrigins],
            allowedMethods: [lambda.HttpMethod.ALL],
            // SDKs send many headers of their own (anthropic-*, x-stainless-*, x-amz-*); the relay
            // authenticates every request itself, so restricting headers would only break clients.
            allowedHeaders: ['*'],
            exposedHeaders: [
              'x-amzn-requestid',
              'x-amzn-errortype',
              'x-amzn-bedrock-input-token-count',
              'x-amzn-bedrock-output-token-count',
              'x-amzn-bedrock-invocation-latency',
              'retry-after',
              'request-id',
            ],
            maxAge: Duration.hours(1),
          }
        : undefined,
    });
    // For authType NONE, addFunctionUrl already grants principal "*" both lambda:InvokeFunctionUrl
    // (condition lambda:FunctionUrlAuthType = NONE) and lambda:InvokeFunction (condition
    // lambda:InvokedViaFunctionUrl = true), the pair AWS now requires for a public Function URL;
    // test/infra/stack.test.ts asserts both, so a CDK change that drops one fails the tests.

    // ── Operations ──
    let alarmTopic: sns.ITopic | undefined;
    if (config.alarmTopicArn) {
      alarmTopic = sns.Topic.fromTopicArn(this, 'AlarmTopic', config.alarmTopicArn);
    } else if (config.alarmEmail) {
      const topic = new sns.Topic(this, 'AlarmTopic', {
        displayName: `bedrock-relay (${config.stage}) alarms`,
        enforceSSL: true,
      });
      topic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
      alarmTopic = topic;
    }
    this.operations = new RelayOperations(this, 'Operations', {
      function: this.function,
      namespace: METRICS_NAMESPACE,
      serviceName: SERVICE_NAME,
      // Dashboard names are account-wide (not regional): the region keeps same-named stacks apart.
      dashboardName: `${this.stackName}-${this.region}`,
      alarmTopic,
    });

    // ── Outputs (names and ARNs only: nothing here is secret) ──
    new CfnOutput(this, 'FunctionUrl', { value: this.functionUrl.url, description: 'Base URL of the relay (append /bedrock/…)' });
    new CfnOutput(this, 'MasterKeySecretName', {
      value: this.masterKeySecret.secretName,
      description: 'Secrets Manager secret holding the master key (its whole secret value is the key)',
    });
    new CfnOutput(this, 'MasterKeySecretArn', { value: this.masterKeySecret.secretArn, description: 'ARN of the master-key secret' });
    new CfnOutput(this, 'KeysTableName', { value: this.keysTable.tableName, description: 'DynamoDB table of virtual keys and usage' });
    new CfnOutput(this, 'DashboardName', { value: this.operations.dashboard.dashboardName, description: 'CloudWatch dashboard' });
  }
}
