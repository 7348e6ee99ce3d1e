import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { resolve } from 'node:path';
import { KeyApiError, StoreUnavailableError } from '../http/errors.js';
import { KeyStore } from '../keys/store.js';
import { createDynamoClients, LOCAL_CREDENTIALS } from '../store/dynamo.js';
import { DataDirLockedError, EMBEDDED_REGION, readEndpointFile, startEmbeddedDynamo } from '../store/embedded.js';
import { CliError, EXIT, type CliIo } from './io.js';
import { localMasterKey, loopbackUrl, type LocalRelay } from './local-relay.js';
import { regionOf, stackOutput } from './stack.js';

export interface TargetOptions {
  readonly dataDir?: string;
  readonly table?: string;
  readonly stack?: string;
  readonly region?: string;
}

/** An open key store and how to let go of it. */
export interface StoreTarget {
  readonly store: KeyStore;
  /** The same table's document client, for commands that read more than keys (relay usage, relay ledger). */
  readonly doc: DynamoDBDocumentClient;
  /** Where the keys are, for humans (never printed into JSON output). */
  readonly description: string;
  /** The local relay running on this store, when it publishes its URL: key changes go through it (local-relay.ts). */
  readonly relay?: LocalRelay;
  close(): Promise<void>;
}

/**
 * Which store the CLI works on:
 *   --table NAME / RELAY_KEYS_TABLE   a DynamoDB table, with the caller's own AWS credentials
 *   --stack NAME                      the table named by that stack's KeysTableName output
 *   otherwise                         the local store in --data-dir / RELAY_DATA_DIR / .relay:
 *                                     through the running local relay's endpoint if it is up
 *                                     (it holds the LevelDB lock), else an embedded dynalite.
 */
export async function openStoreTarget(options: TargetOptions, io: CliIo): Promise<StoreTarget> {
  const region = regionOf(options.region, io.env);
  let table = options.table ?? (options.stack ? undefined : io.env.RELAY_KEYS_TABLE || undefined);
  if (options.stack) table = await stackOutput(options.stack, region, 'KeysTableName');
  if (table) {
    const { client, doc } = createDynamoClients({ ...(region ? { region } : {}), requestTimeoutMs: 10_000 });
    return { store: new KeyStore(doc, table), doc, description: `DynamoDB table ${table}`, close: async () => client.destroy() };
  }

  const dataDir = resolve(io.cwd, options.dataDir ?? io.env.RELAY_DATA_DIR ?? '.relay');
  const running = await readEndpointFile(dataDir);
  if (running) {
    const { client, doc } = createDynamoClients({ endpoint: running.endpoint, region: EMBEDDED_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
    try {
      await client.send(new DescribeTableCommand({ TableName: running.tableName }));
      const relayUrl = loopbackUrl(running.relayUrl);
      return {
        store: new KeyStore(doc, running.tableName),
        doc,
        description: `the running local relay's store (${dataDir})`,
        ...(relayUrl ? { relay: { url: relayUrl, masterKey: await localMasterKey(io.env, dataDir) } } : {}),
        close: async () => client.destroy(),
      };
    } catch {
      // A stale endpoint file from a relay that is gone: open the store ourselves.
      client.destroy();
    }
  }
  try {
    const embedded = await startEmbeddedDynamo({ dataDir });
    return {
      store: new KeyStore(embedded.clients.doc, embedded.tableName),
      doc: embedded.clients.doc,
      description: `the local store in ${dataDir}`,
      close: embedded.stop,
    };
  } catch (error) {
    if (error instanceof DataDirLockedError) throw new CliError(error.message, EXIT.unavailable);
    throw error;
  }
}

/**
 * Opens the store the options name, runs one command against it and prints its JSON answer.
 * Key-API refusals print LiteLLM's error shape (exit 1); an unreachable store exits 3. With
 * `command`, any other failure is reported as the store not being readable by that command.
 */
export async function withStoreTarget(options: TargetOptions, io: CliIo, work: (target: StoreTarget) => Promise<unknown>, command?: string): Promise<number> {
  const target = await openStoreTarget(options, io);
  try {
    io.stdout(`${JSON.stringify(await work(target), null, 2)}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof KeyApiError) {
      io.stderr(`${JSON.stringify({ error: { message: error.message, type: error.type, param: error.param, code: String(error.status) } }, null, 2)}\n`);
      return EXIT.refused;
    }
    if (error instanceof StoreUnavailableError) throw new CliError(`${error.message} (store: ${target.description})`, EXIT.unavailable);
    if (command) throw new CliError(`${command}: the store could not be read (${(error as Error).name}; store: ${target.description})`, EXIT.unavailable);
    throw error;
  } finally {
    await target.close();
  }
}
