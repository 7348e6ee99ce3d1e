import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createDynamoClients, LOCAL_CREDENTIALS, type DynamoClients } from './dynamo.js';
import { LOCAL_TABLE_NAME } from './schema.js';
import { createTableIfMissing } from './table.js';

/**
 * The local key store: an in-process dynalite (DynamoDB's API on LevelDB) on 127.0.0.1, so the
 * relay runs the very same DynamoDB code locally as in AWS. Persisted under the data dir.
 */
export interface EmbeddedDynamo {
  readonly endpoint: string;
  readonly tableName: string;
  readonly region: string;
  readonly clients: DynamoClients;
  stop(): Promise<void>;
}

export interface EmbeddedDynamoOptions {
  /** Where LevelDB lives is `<dataDir>/dynamodb`; omit for an in-memory store (tests). */
  readonly dataDir?: string;
  readonly tableName?: string;
  readonly host?: string;
  /** 0 (default): a free port. */
  readonly port?: number;
}

/** Another process (usually the running local relay) holds the data dir's LevelDB lock. */
export class DataDirLockedError extends Error {
  constructor(readonly dataDir: string) {
    super(
      `The key store in ${dataDir} is in use by another process (is the local relay running?). ` +
        `Stop it, or let it serve the store: it writes its DynamoDB endpoint to ${endpointFilePath(dataDir)}.`,
    );
    this.name = 'DataDirLockedError';
  }
}

type DynaliteFactory = (options: {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}) => Server;
interface LevelLike {
  open(): Promise<void>;
  close(): Promise<void>;
}
type LevelConstructor = new (location: string, options?: { valueEncoding?: string }) => LevelLike;

const requireHere = createRequire(import.meta.url);
// dynalite ships no type declarations; this is the part of its API used here.
const dynalite = requireHere('dynalite') as DynaliteFactory;

export const EMBEDDED_REGION = 'us-east-1';

export function embeddedStorePath(dataDir: string): string {
  return join(dataDir, 'dynamodb');
}

export async function startEmbeddedDynamo(options: EmbeddedDynamoOptions = {}): Promise<EmbeddedDynamo> {
  const tableName = options.tableName ?? LOCAL_TABLE_NAME;
  let path: string | undefined;
  if (options.dataDir !== undefined) {
    path = embeddedStorePath(options.dataDir);
    await mkdir(path, { recursive: true });
    await assertNotLocked(path, options.dataDir);
  }
  const server = dynalite({ ...(path ? { path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const endpoint = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  const clients = createDynamoClients({ endpoint, region: EMBEDDED_REGION, credentials: LOCAL_CREDENTIALS });
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      clients.client.destroy();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    })());
  try {
    await createTableIfMissing(clients.client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, tableName, region: EMBEDDED_REGION, clients, stop };
}

/**
 * dynalite opens LevelDB lazily and crashes the process on the first request when another
 * process holds the lock, so probe the lock up front and fail with a message that says why.
 */
async function assertNotLocked(path: string, dataDir: string): Promise<void> {
  // Resolve `level` from dynalite's own location: it is dynalite's dependency, not ours.
  const requireFromDynalite = createRequire(requireHere.resolve('dynalite'));
  const { Level } = requireFromDynalite('level') as { Level: LevelConstructor };
  const probe = new Level(path, { valueEncoding: 'json' });
  try {
    await probe.open();
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code === 'LEVEL_LOCKED') throw new DataDirLockedError(dataDir);
    throw error;
  }
  await probe.close();
}

// ── The endpoint file: how the CLI finds the store of a running local relay ──

export interface EndpointFile {
  readonly endpoint: string;
  readonly tableName: string;
}

export function endpointFilePath(dataDir: string): string {
  return join(dataDir, 'dynamodb-endpoint');
}

/** Written by the local server once its embedded store listens; removed when it stops. */
export async function writeEndpointFile(dataDir: string, store: { endpoint: string; tableName: string }): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const content: EndpointFile = { endpoint: store.endpoint, tableName: store.tableName };
  await writeFile(endpointFilePath(dataDir), `${JSON.stringify(content)}\n`, { mode: 0o600 });
}

export async function removeEndpointFile(dataDir: string): Promise<void> {
  await rm(endpointFilePath(dataDir), { force: true });
}

/** Accepts the JSON form above or a bare URL on one line. */
export async function readEndpointFile(dataDir: string): Promise<EndpointFile | undefined> {
  let text: string;
  try {
    text = (await readFile(endpointFilePath(dataDir), 'utf8')).trim();
  } catch {
    return undefined;
  }
  if (!text) return undefined;
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { endpoint?: unknown; tableName?: unknown };
      if (typeof parsed.endpoint !== 'string') return undefined;
      return { endpoint: parsed.endpoint, tableName: typeof parsed.tableName === 'string' ? parsed.tableName : LOCAL_TABLE_NAME };
    } catch {
      return undefined;
    }
  }
  return { endpoint: text, tableName: LOCAL_TABLE_NAME };
}
