/**
 * Shared set-up for the key tests: a real dynalite (persisted in a temp dir) reached over HTTP
 * by the official DynamoDB client, and a clock the test moves by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../../lambda/keys/store.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';

export interface ManualClock {
  (): number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function manualClock(start = Date.parse('2030-01-01T00:00:00.000Z')): ManualClock {
  let now = start;
  const clock = (() => now) as ManualClock;
  clock.set = (ms) => {
    now = ms;
  };
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}

export interface KeyTestEnv {
  readonly dataDir: string;
  readonly dynamo: EmbeddedDynamo;
  readonly clock: ManualClock;
  readonly store: KeyStore;
  /** Another "Lambda environment": its own store object on the same table. */
  newStore(clock?: () => number): KeyStore;
  restart(): Promise<KeyTestEnv>;
  close(): Promise<void>;
}

export async function startKeyTestEnv(options: { dataDir?: string; clock?: ManualClock } = {}): Promise<KeyTestEnv> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'relay-keys-')));
  const clock = options.clock ?? manualClock();
  const dynamo = await startEmbeddedDynamo({ dataDir });
  const newStore = (storeClock: () => number = clock) => new KeyStore(dynamo.clients.doc, dynamo.tableName, storeClock);
  let stopped = false;
  const env: KeyTestEnv = {
    dataDir,
    dynamo,
    clock,
    store: newStore(),
    newStore,
    restart: async () => {
      await dynamo.stop();
      stopped = true;
      return startKeyTestEnv({ dataDir, clock });
    },
    close: async () => {
      if (!stopped) await dynamo.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return env;
}
