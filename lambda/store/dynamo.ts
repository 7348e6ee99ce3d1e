import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface DynamoClientOptions {
  /** Only for the embedded store and tests; otherwise the SDK resolves the endpoint itself, which is what makes AWS_ENDPOINT_URL_DYNAMODB work. */
  readonly endpoint?: string;
  readonly region?: string;
  readonly credentials?: DynamoDBClientConfig['credentials'];
  /**
   * Per-attempt timeouts. The key store sits on every request's path and the relay fails closed
   * when it cannot read it, so a hung connection must turn into a quick 503, not a 15-minute wait.
   */
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly maxAttempts?: number;
}

export interface DynamoClients {
  /** For table-level calls (DescribeTable, CreateTable). */
  readonly client: DynamoDBClient;
  /** For item calls with plain JS values. */
  readonly doc: DynamoDBDocumentClient;
}

export function createDynamoClients(options: DynamoClientOptions = {}): DynamoClients {
  const client = new DynamoDBClient({
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(options.region ? { region: options.region } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    maxAttempts: options.maxAttempts ?? 3,
    requestHandler: {
      connectionTimeout: options.connectionTimeoutMs ?? 1_000,
      requestTimeout: options.requestTimeoutMs ?? 3_000,
      // Without it the handler only logs a warning when requestTimeout passes and keeps waiting:
      // a silent store would hang the call instead of failing closed.
      throwOnRequestTimeout: true,
    },
  });
  const doc = DynamoDBDocumentClient.from(client, {
    // Optional record fields are left out of items rather than stored as NULL.
    marshallOptions: { removeUndefinedValues: true },
  });
  return { client, doc };
}

/** Credentials for the embedded dynalite, which checks that requests are signed but not by whom. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
