/**
 * Shared set-up for the accounting tests: an embedded dynalite reached over HTTP, relays built by
 * startRelay (the Function URL emulator around the Lambda handler) with their own DynamoDB
 * clients, whose calls are counted and can be made to fail, and captured telemetry.
 */
import http from 'node:http';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AppOverrides } from '../../lambda/deps.js';
import { hashSecret } from '../../lambda/keys/secrets.js';
import type { LogFn } from '../../lambda/observability/log.js';
import { LOCAL_CREDENTIALS, type DynamoClients } from '../../lambda/store/dynamo.js';
import { EMBEDDED_REGION, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { rawRequest } from '../support/clients.js';
import type { FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';

export interface DynamoCall {
  readonly command: string;
  readonly key?: { pk?: unknown; sk?: unknown };
}

export interface Failure {
  /** Which calls fail, e.g. UpdateItem on the key item. */
  readonly when: (call: DynamoCall) => boolean;
  /** How many times (then the calls go through again). */
  remaining: number;
}

/** DynamoDB clients for one relay, with every call recorded and failures injected on demand. */
export interface ProbedDynamo {
  readonly clients: DynamoClients;
  readonly calls: DynamoCall[];
  /** Makes the next `times` matching calls throw a 500 InternalServerError before they are sent. */
  failNext(when: (call: DynamoCall) => boolean, times: number): Failure;
  close(): void;
}

export function probedDynamo(dynamo: EmbeddedDynamo): ProbedDynamo {
  // One process plays hundreds of Lambda environments here, all against one dynalite: give the
  // client the sockets and the patience that many environments would have between them.
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: EMBEDDED_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({ httpAgent: new http.Agent({ keepAlive: true, maxSockets: 512 }), connectionTimeout: 20_000, requestTimeout: 20_000 }),
  });
  const clients: DynamoClients = { client, doc: DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } }) };
  const calls: DynamoCall[] = [];
  const failures: Failure[] = [];
  clients.client.middlewareStack.add(
    (next, context) => async (args) => {
      const input = args.input as { Key?: { pk?: unknown; sk?: unknown } };
      const call: DynamoCall = { command: String(context.commandName).replace(/Command$/, ''), key: input.Key };
      calls.push(call);
      const failure = failures.find((f) => f.remaining > 0 && f.when(call));
      if (failure) {
        failure.remaining--;
        throw Object.assign(new Error('injected failure'), { name: 'InternalServerError', $fault: 'server' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'accountingTestProbe', priority: 'high' },
  );
  return {
    clients,
    calls,
    failNext(when, times) {
      const failure: Failure = { when, remaining: times };
      failures.push(failure);
      return failure;
    },
    close: () => clients.client.destroy(),
  };
}

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly fields: Record<string, unknown>;
}

export interface AccountingRelay {
  readonly relay: RelayUnderTest;
  readonly url: string;
  readonly dynamo: ProbedDynamo;
  readonly logs: LogLine[];
  readonly metrics: string[];
  close(): Promise<void>;
}

export async function startAccountingRelay(options: {
  fake: FakeBedrock;
  store: EmbeddedDynamo;
  clock?: () => number;
  env?: Record<string, string>;
  accounting?: AppOverrides['accounting'];
}): Promise<AccountingRelay> {
  const dynamo = probedDynamo(options.store);
  const logs: LogLine[] = [];
  const metrics: string[] = [];
  const log: LogFn = (level, message, fields = {}) => {
    logs.push({ level, message, fields });
  };
  const relay = await startRelay({
    fake: options.fake,
    env: { RELAY_KEYS_TABLE: options.store.tableName, POWERTOOLS_METRICS_DISABLED: 'false', ...options.env },
    overrides: {
      dynamo: dynamo.clients,
      ...(options.clock ? { clock: options.clock } : {}),
      telemetry: { log, writeMetrics: (line) => metrics.push(line) },
      accounting: { ledgerRetry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, ...options.accounting },
    },
  });
  return {
    relay,
    url: relay.url,
    dynamo,
    logs,
    metrics,
    close: async () => {
      await relay.close();
      dynamo.close();
    },
  };
}

export async function admin(url: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await rawRequest(
    url,
    method,
    path,
    { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' },
    body === undefined ? undefined : JSON.stringify(body),
  );
  return { status: res.status, json: JSON.parse(res.body.toString() || 'null') as Record<string, unknown> };
}

export async function createKey(url: string, fields: Record<string, unknown> = {}): Promise<{ key: string; token: string }> {
  const created = await admin(url, 'POST', '/key/generate', fields);
  if (created.status !== 200) throw new Error(`key/generate failed: ${JSON.stringify(created.json)}`);
  const key = created.json.key as string;
  return { key, token: hashSecret(key) };
}

/** The key item as stored (strongly consistent). */
export async function keyItem(store: EmbeddedDynamo, token: string): Promise<Record<string, unknown>> {
  const result = await store.clients.doc.send(new GetCommand({ TableName: store.tableName, Key: { pk: `KEY#${token}`, sk: 'KEY' }, ConsistentRead: true }));
  if (!result.Item) throw new Error('no key item');
  return result.Item;
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends a raw call to the relay with a virtual key, and reads the whole answer. */
export async function call(url: string, key: string, path: string, body: string, headers: Record<string, string> = {}) {
  return rawRequest(url, 'POST', path, { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, body);
}

/**
 * Waits until the relay has no invocation running, so every call it answered is settled (its
 * ledger writes done: RelayUnderTest.idle), then checks that at least `count` calls by this key
 * alias were seen, so a test that miscounts its calls fails here rather than asserting on a
 * store its calls never reached. Counting log lines is not a wait: refused calls log a line too,
 * and a line says nothing about calls still running.
 */
export async function settled(relay: AccountingRelay, keyAlias: string, count: number, timeoutMs = 60_000): Promise<void> {
  await relay.relay.idle(timeoutMs);
  const seen = relay.logs.filter((l) => l.message === 'relay-call' && l.fields.keyAlias === keyAlias).length;
  if (seen < count) throw new Error(`expected at least ${count} calls by ${keyAlias}, the relay saw ${seen}`);
}
