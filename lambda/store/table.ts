import {
  CreateTableCommand,
  DescribeTableCommand,
  ResourceInUseException,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import { TABLE_SCHEMA } from './schema.js';

/**
 * Create the relay's table (the same schema the CDK stack deploys) unless it exists, and wait
 * until it is ACTIVE. Used by the embedded local store and by tests; a deployed stack's table
 * comes from CloudFormation instead.
 */
export async function createTableIfMissing(client: DynamoDBClient, tableName: string, timeoutMs = 60_000): Promise<void> {
  if (!(await tableStatus(client, tableName))) {
    try {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [
            { AttributeName: TABLE_SCHEMA.partitionKey, AttributeType: 'S' },
            { AttributeName: TABLE_SCHEMA.sortKey, AttributeType: 'S' },
            { AttributeName: TABLE_SCHEMA.gsi1.partitionKey, AttributeType: 'S' },
            { AttributeName: TABLE_SCHEMA.gsi1.sortKey, AttributeType: 'S' },
          ],
          KeySchema: [
            { AttributeName: TABLE_SCHEMA.partitionKey, KeyType: 'HASH' },
            { AttributeName: TABLE_SCHEMA.sortKey, KeyType: 'RANGE' },
          ],
          GlobalSecondaryIndexes: [
            {
              IndexName: TABLE_SCHEMA.gsi1.name,
              KeySchema: [
                { AttributeName: TABLE_SCHEMA.gsi1.partitionKey, KeyType: 'HASH' },
                { AttributeName: TABLE_SCHEMA.gsi1.sortKey, KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'ALL' },
            },
          ],
        }),
      );
    } catch (error) {
      // Someone else (another test, the local server) created it first: fine.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
  }
  const deadline = Date.now() + timeoutMs;
  while ((await tableStatus(client, tableName)) !== 'ACTIVE') {
    if (Date.now() > deadline) throw new Error(`Table ${tableName} did not become ACTIVE within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await enableTtl(client, tableName);
}

async function tableStatus(client: DynamoDBClient, tableName: string): Promise<string | undefined> {
  try {
    const described = await client.send(new DescribeTableCommand({ TableName: tableName }));
    return described.Table?.TableStatus ?? 'ACTIVE';
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

/**
 * Real DynamoDB needs TTL switched on separately. dynalite knows no UpdateTimeToLive (and never
 * expires items), which is why the key store also ignores items whose `ttl` has passed.
 */
async function enableTtl(client: DynamoDBClient, tableName: string): Promise<void> {
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TABLE_SCHEMA.ttlAttribute, Enabled: true },
      }),
    );
  } catch (error) {
    const name = (error as { name?: string }).name ?? '';
    const message = (error as { message?: string }).message ?? '';
    // dynalite: UnknownOperationException. DynamoDB: ValidationException when TTL is already on.
    if (name === 'UnknownOperationException' || /already enabled/i.test(message)) return;
    throw error;
  }
}
