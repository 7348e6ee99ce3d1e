/**
 * The virtual-key, usage and limit-counter table: the layout comes from the key store's own schema
 * (lambda/store/schema.ts), so the deployed table and the embedded local one cannot drift apart.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TABLE_SCHEMA } from '../../lambda/store/schema.js';

/**
 * DynamoDB actions the key store and accounting issue (GetCommand, PutCommand, UpdateCommand,
 * DeleteCommand, QueryCommand through lib-dynamodb), each a DynamoDB API action of the same name:
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazondynamodb.html
 * No transactions (the embedded dynalite store has none, and one implementation serves both), no
 * batch writes, no Scan (listing keys goes through the gsi1 index with Query).
 */
// BatchGetItem: /key/list reads the listed keys in batches (lambda/keys/store.ts).
export const KEYS_TABLE_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
] as const;

export interface RelayKeysTableProps {
  /** Default RETAIN: keys and the usage ledger outlive the stack. */
  readonly removalPolicy?: RemovalPolicy;
  /** Default true; tests and throwaway stages may turn it off. */
  readonly deletionProtection?: boolean;
}

export class RelayKeysTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: RelayKeysTableProps = {}) {
    super(scope, id);
    // "Default" drops out of the logical ID, so the table keeps the ID it had before this construct
    // existed: an update never replaces (and, with RETAIN, orphans) a deployed table.
    this.table = new dynamodb.Table(this, 'Default', {
      partitionKey: { name: TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE_SCHEMA.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.deletionProtection ?? true,
      // The AWS managed key (aws/dynamodb): encryption at rest with key use visible in CloudTrail,
      // no key policy to maintain, and callers need no kms: permissions.
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TABLE_SCHEMA.gsi1.name,
      partitionKey: { name: TABLE_SCHEMA.gsi1.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.gsi1.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }

  /** Exactly the key store's item operations, on the table and its gsi1 index. */
  grantKeyStore(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [...KEYS_TABLE_ACTIONS],
      resourceArns: [this.table.tableArn, `${this.table.tableArn}/index/${TABLE_SCHEMA.gsi1.name}`],
    });
  }

  /**
   * Read and write throttle events on the table (on-demand tables throttle too, at twice the previous
   * peak or the account's table quota). AWS/DynamoDB metrics:
   * https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html
   */
  metricThrottleEvents(period: cloudwatch.MetricOptions['period']): cloudwatch.MathExpression {
    return new cloudwatch.MathExpression({
      expression: 'FILL(reads, 0) + FILL(writes, 0)',
      usingMetrics: {
        reads: this.table.metric('ReadThrottleEvents', { statistic: 'Sum', period }),
        writes: this.table.metric('WriteThrottleEvents', { statistic: 'Sum', period }),
      },
      label: 'DynamoDB throttle events',
      period,
    });
  }
}
