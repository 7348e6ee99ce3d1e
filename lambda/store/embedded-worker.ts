/**
 * The embedded store's thread (see embedded.ts): dynalite listens here, on an event loop of its
 * own, so the key store's work (every call's ledger writes) runs beside the relay's instead of
 * between its requests. Started by startEmbeddedDynamo only; it talks to that thread through
 * the messages below.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

export interface EmbeddedWorkerData {
  readonly embeddedDynamo: true;
  /** dynalite's main file, as the starting thread resolves it. */
  readonly dynalite: string;
  /** The LevelDB directory; absent for an in-memory store. */
  readonly path?: string;
  readonly host: string;
  readonly port: number;
}

/** An error as it crosses threads: the fields a caller may test (code, errno, …), kept. */
export interface WorkerError {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
  readonly code?: string;
  readonly errno?: number;
  readonly syscall?: string;
  readonly address?: string;
  readonly port?: number;
}

export type FromEmbeddedWorker =
  | { readonly type: 'listening'; readonly address: string; readonly port: number }
  | { readonly type: 'listen-failed'; readonly error: WorkerError }
  | { readonly type: 'closed'; readonly error?: WorkerError };

export type ToEmbeddedWorker = { readonly type: 'stop' };

type DynaliteFactory = (options: { path?: string; createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;

function toWorkerError(error: unknown): WorkerError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const { code, errno, syscall, address, port } = error as Error & Partial<Omit<WorkerError, 'name' | 'message' | 'stack'>>;
  return {
    name: error.name,
    message: error.message,
    ...(error.stack !== undefined ? { stack: error.stack } : {}),
    ...(typeof code === 'string' ? { code } : {}),
    ...(typeof errno === 'number' ? { errno } : {}),
    ...(typeof syscall === 'string' ? { syscall } : {}),
    ...(typeof address === 'string' ? { address } : {}),
    ...(typeof port === 'number' ? { port } : {}),
  };
}

const data = workerData as EmbeddedWorkerData | undefined;
if (parentPort && data?.embeddedDynamo === true) {
  const port = parentPort;
  const post = (message: FromEmbeddedWorker) => port.postMessage(message);
  // dynalite ships no type declarations; this is the part of its API used here.
  const dynalite = createRequire(data.dynalite)(data.dynalite) as DynaliteFactory;
  const server = dynalite({ ...(data.path ? { path: data.path } : {}), createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });

  const onListenError = (error: Error) => post({ type: 'listen-failed', error: toWorkerError(error) });
  server.once('error', onListenError);
  server.listen(data.port, data.host, () => {
    server.off('error', onListenError);
    const { address, port: listening } = server.address() as AddressInfo;
    post({ type: 'listening', address, port: listening });
  });

  port.on('message', (message: ToEmbeddedWorker) => {
    if (message.type !== 'stop') return;
    // dynalite's close also closes LevelDB (after its pending operations), releasing the lock.
    server.close((error) => {
      post(error ? { type: 'closed', error: toWorkerError(error) } : { type: 'closed' });
      port.close();
    });
  });
}
