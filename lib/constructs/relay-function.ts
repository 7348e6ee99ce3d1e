/**
 * The relay's Lambda function: the streaming handler bundled by esbuild, its execution role (which
 * may write only to its own log group), and the Function URL in RESPONSE_STREAM mode.
 *
 * Grants go to the role through `grantPrincipal` (this construct is an IGrantable), so tables,
 * secrets and buckets grant themselves: `keysTable.grantKeyStore(relay)`, `secret.grantRead(relay)`.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV, METRICS_NAMESPACE, SERVICE_NAME } from '../../lambda/contract.js';
import type { RelayAuthType, RelayLogLevel } from '../config.js';

/** The repository root (this file is lib/constructs/relay-function.ts). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The Lambda entry: the streaming handler, bundled by esbuild. */
export const HANDLER_ENTRY = join(PROJECT_ROOT, 'lambda', 'handler.ts');

/** Response headers a browser may read when CORS is on. */
const EXPOSED_HEADERS = [
  'x-amzn-requestid',
  'x-amzn-errortype',
  'x-amzn-bedrock-input-token-count',
  'x-amzn-bedrock-output-token-count',
  'x-amzn-bedrock-invocation-latency',
  'retry-after',
  'request-id',
];

export interface RelayFunctionProps {
  /** Used in descriptions only. */
  readonly stage: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** Undefined: the account's unreserved pool. */
  readonly reservedConcurrency?: number;
  readonly tracing?: boolean;
  readonly authType: RelayAuthType;
  readonly corsAllowedOrigins?: readonly string[];
  readonly logLevel: RelayLogLevel;
  /** Days; ignored when `logGroup` is given. */
  readonly logRetentionDays?: number;
  /** An existing log group (the stack passes its own so the group's ID outlives refactors). */
  readonly logGroup?: logs.ILogGroup;
  /** Environment beyond the service name and metric namespace, which are always set. */
  readonly environment?: Readonly<Record<string, string>>;
}

export class RelayFunction extends Construct implements iam.IGrantable {
  readonly function: NodejsFunction;
  readonly url: lambda.FunctionUrl;
  readonly role: iam.Role;
  readonly logGroup: logs.ILogGroup;
  readonly grantPrincipal: iam.IPrincipal;

  constructor(scope: Construct, id: string, props: RelayFunctionProps) {
    super(scope, id);
    if (!existsSync(HANDLER_ENTRY)) {
      throw new Error(`The Lambda entry ${HANDLER_ENTRY} does not exist; the stack bundles the relay's handler from there.`);
    }

    this.logGroup =
      props.logGroup ??
      new logs.LogGroup(this, 'Logs', {
        retention: (props.logRetentionDays ?? 30) as logs.RetentionDays,
        // Logs are operational data, not the system of record; they go with the stack.
        removalPolicy: RemovalPolicy.DESTROY,
      });

    // An explicit role instead of AWSLambdaBasicExecutionRole: that managed policy lets the function
    // write to every log group in the account; this one may write to its own only.
    this.role = new iam.Role(this, 'ExecutionRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `bedrock-relay (${props.stage}) execution role`,
    });
    this.grantPrincipal = this.role;
    // Lambda's own log delivery needs exactly these two on the group:
    // https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-prereqs.html
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteOwnLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    // "Default" drops out of the logical ID: the function (and so its URL) keeps the ID it had
    // before this construct existed, so an update never hands clients a new URL.
    this.function = new NodejsFunction(this, 'Default', {
      description: `bedrock-relay (${props.stage}): Bedrock pass-through gateway with virtual keys`,
      entry: HANDLER_ENTRY,
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      reservedConcurrentExecutions: props.reservedConcurrency,
      tracing: props.tracing ? lambda.Tracing.ACTIVE : undefined,
      role: this.role,
      logGroup: this.logGroup,
      // JSON lines with a level Lambda filters before they are billed; Powertools Logger reads the
      // level from AWS_LAMBDA_LOG_LEVEL, which this sets.
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel[props.logLevel],
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      environment: {
        ...props.environment,
        [ENV.serviceName]: SERVICE_NAME,
        [ENV.metricsNamespace]: METRICS_NAMESPACE,
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

    this.url = this.function.addFunctionUrl({
      authType: props.authType === 'AWS_IAM' ? lambda.FunctionUrlAuthType.AWS_IAM : lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.RESPONSE_STREAM,
      cors: props.corsAllowedOrigins
        ? {
            allowedOrigins: [...props.corsAllowedOrigins],
            allowedMethods: [lambda.HttpMethod.ALL],
            // SDKs send many headers of their own (anthropic-*, x-stainless-*, x-amz-*); the relay
            // authenticates every request itself, so restricting headers would only break clients.
            allowedHeaders: ['*'],
            exposedHeaders: EXPOSED_HEADERS,
            maxAge: Duration.hours(1),
          }
        : undefined,
    });
    // For authType NONE, addFunctionUrl already grants principal "*" both lambda:InvokeFunctionUrl
    // (condition lambda:FunctionUrlAuthType = NONE) and lambda:InvokeFunction (condition
    // lambda:InvokedViaFunctionUrl = true), the pair AWS now requires for a public Function URL;
    // test/infra/stack.test.ts asserts both, so a CDK change that drops one fails the tests.
  }

  /** Sets one environment variable of the function (e.g. a new secret's ARN). */
  addEnvironment(name: string, value: string): this {
    this.function.addEnvironment(name, value);
    return this;
  }

  /** Adds a statement to the execution role (for grants no construct offers, e.g. Bedrock's). */
  addToRolePolicy(statement: iam.PolicyStatement): void {
    this.role.addToPolicy(statement);
  }
}
