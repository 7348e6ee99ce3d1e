import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { createDynamoClients, LOCAL_CREDENTIALS, type DynamoClients } from './dynamo.js';
import { limitInFlight } from './embedded-limit.js';
import type { EmbeddedWorkerData, FromEmbeddedWorker, ToEmbeddedWorker, WorkerError } from './embedded-worker.js';
import { LOCAL_TABLE_NAME } from './schema.js';
import { createTableIfMissing } from './table.js';

/**
 * The local key store: dynalite (DynamoDB's API on LevelDB) on 127.0.0.1, so the relay runs the
 * very same DynamoDB code locally as in AWS. Persisted under the data dir. dynalite runs in a
 * worker thread of this process (embedded-worker.ts): every relayed call with a virtual key
 * writes to the store, and on its own event loop that work uses another core instead of
 * queueing between the relay's requests.
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
  /** Requests in flight to the store at once; the rest wait in order (embedded-limit.ts). */
  readonly maxInFlight?: number;
}

/** Enough to keep dynalite's thread busy; more only makes every request wait longer inside it. */
export const EMBEDDED_MAX_IN_FLIGHT = 32;

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

interface LevelLike {
  open(): Promise<void>;
  close(): Promise<void>;
}
type LevelConstructor = new (location: string, options?: { valueEncoding?: string }) => LevelLike;

const requireHere = createRequire(import.meta.url);

/**
 * The worker's first lines (plain JS, so they need no loader): import the TypeScript entry, or,
 * where the thread has no TypeScript loader (Node 20 does not carry the main thread's
 * `--import tsx` hooks into workers, and `bin/relay.mjs` registers tsx through its API, which no
 * worker inherits), load it through tsx's CommonJS API, which hooks this thread only.
 */
const WORKER_BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const { entry, entryPath, tsxCjsApi } = workerData.boot;
import(entry).catch((error) => {
  if (error?.code !== 'ERR_UNKNOWN_FILE_EXTENSION' || !tsxCjsApi) throw error;
  require(tsxCjsApi).register();
  require(entryPath);
});
`;
const WORKER_ENTRY = new URL('./embedded-worker.ts', import.meta.url);

function resolveOrUndefined(specifier: string): string | undefined {
  try {
    return requireHere.resolve(specifier);
  } catch {
    return undefined;
  }
}

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
  const tsxCjsApi = resolveOrUndefined('tsx/cjs/api');
  const workerData: EmbeddedWorkerData & { boot: { entry: string; entryPath: string; tsxCjsApi?: string } } = {
    embeddedDynamo: true,
    dynalite: requireHere.resolve('dynalite'),
    ...(path ? { path } : {}),
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    boot: { entry: WORKER_ENTRY.href, entryPath: fileURLToPath(WORKER_ENTRY), ...(tsxCjsApi ? { tsxCjsApi } : {}) },
  };
  const worker = new Worker(WORKER_BOOTSTRAP, { eval: true, name: 'embedded-dynamodb', workerData });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  let listening: { address: string; port: number };
  try {
    listening = await new Promise((resolve, reject) => {
      const settle = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (message: FromEmbeddedWorker) => {
        if (message.type === 'listening') {
          settle();
          resolve(message);
        } else if (message.type === 'listen-failed') {
          settle();
          reject(fromWorkerError(message.error));
        }
      };
      const onError = (error: Error) => {
        settle();
        reject(error);
      };
      const onExit = (code: number) => {
        settle();
        reject(new Error(`The embedded DynamoDB thread exited (code ${code}) before it listened`));
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  // From here on, a failure inside the store's thread (dynalite throws on a request that
  // arrives while it closes) must not end the relay: calls fail closed on the store instead.
  worker.on('error', () => undefined);
  const { address, port } = listening;
  const endpoint = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  const clients = createDynamoClients({ endpoint, region: EMBEDDED_REGION, credentials: LOCAL_CREDENTIALS });
  limitInFlight(clients.client, options.maxInFlight ?? EMBEDDED_MAX_IN_FLIGHT);
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      clients.client.destroy();
      // dynalite closes its server (after open connections) and LevelDB; a thread that has
      // already ended has nothing left to close.
      const closed = new Promise<WorkerError | undefined>((resolve) => {
        const onMessage = (message: FromEmbeddedWorker) => {
          if (message.type !== 'closed') return;
          worker.off('message', onMessage);
          resolve(message.error);
        };
        worker.on('message', onMessage);
        void exited.then(() => {
          worker.off('message', onMessage);
          resolve(undefined);
        });
      });
      worker.postMessage({ type: 'stop' } satisfies ToEmbeddedWorker);
      const error = await closed;
      await worker.terminate();
      if (error) throw fromWorkerError(error);
    })());
  try {
    await createTableIfMissing(clients.client, tableName);
  } catch (error) {
    await stop();
    throw error;
  }
  return { endpoint, tableName, region: EMBEDDED_REGION, clients, stop };
}

function fromWorkerError(from: WorkerError): Error {
  const { name, message, stack, ...fields } = from;
  const error = Object.assign(new Error(message), fields);
  error.name = name;
  if (stack !== undefined) error.stack = stack;
  return error;
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
  /** The running relay's own URL: the CLI makes key changes through its admin API, so they apply at once. */
  readonly relayUrl?: string;
}

export function endpointFilePath(dataDir: string): string {
  return join(dataDir, 'dynamodb-endpoint');
}

/** Written by the local server once its embedded store listens; removed when it stops. */
export async function writeEndpointFile(dataDir: string, store: { endpoint: string; tableName: string }, relayUrl?: string): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const content: EndpointFile = { endpoint: store.endpoint, tableName: store.tableName, ...(relayUrl ? { relayUrl } : {}) };
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
      const parsed = JSON.parse(text) as { endpoint?: unknown; tableName?: unknown; relayUrl?: unknown };
      if (typeof parsed.endpoint !== 'string') return undefined;
      return {
        endpoint: parsed.endpoint,
        tableName: typeof parsed.tableName === 'string' ? parsed.tableName : LOCAL_TABLE_NAME,
        ...(typeof parsed.relayUrl === 'string' ? { relayUrl: parsed.relayUrl } : {}),
      };
    } catch {
      return undefined;
    }
  }
  return { endpoint: text, tableName: LOCAL_TABLE_NAME };
}
