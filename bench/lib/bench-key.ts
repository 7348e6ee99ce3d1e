/**
 * The credential the benchmarks present to the relay, chosen with BENCH_KEY:
 *
 *   master   (default) the master key: authentication is one constant-time comparison.
 *   virtual  a virtual key issued through the admin API (POST /key/generate) of each door and
 *            used once before timing starts, so the figures are for a key already in the
 *            relay's cache, the steady state of a warm Lambda.
 *
 * Every door (local server, in-process Lambda handler) gets its key through the door itself
 * (`adminDoor` presents the master key), so the same code works whatever store the relay has.
 */
import { TEST_MASTER_KEY } from '../../test/support/relay-harness.js';
import { body, type Door } from './doors.js';

export interface BenchKey {
  readonly label: string;
  /** The key to send through `door` (issued through it when needed). */
  issue(adminDoor: Door): Promise<string>;
}

export const MASTER_KEY = TEST_MASTER_KEY;

export function benchKeyFromEnv(choice = process.env.BENCH_KEY || 'master'): BenchKey {
  switch (choice) {
    case 'master':
      return { label: 'master key', issue: async () => MASTER_KEY };
    case 'virtual':
      return { label: 'virtual key (cached)', issue: issueVirtualKey };
    default:
      throw new Error(`BENCH_KEY must be "master" or "virtual", not "${choice}"`);
  }
}

async function issueVirtualKey(door: Door): Promise<string> {
  const request = Buffer.from(JSON.stringify({ key_alias: `bench-${door.name.replace(/\W+/g, '-')}-${Date.now()}` }));
  const admin = await door.prepare({ method: 'POST', path: '', headers: { 'content-type': 'application/json' }, body: request });
  // The admin API lives at /key/generate, outside the /bedrock prefix the door adds.
  const response = await door.send({ ...admin, path: '/key/generate' });
  const text = body(response).toString('utf8');
  const key = response.status === 200 ? (JSON.parse(text) as { key?: unknown }).key : undefined;
  if (typeof key !== 'string') {
    throw new Error(`BENCH_KEY=virtual: ${door.name} could not issue a key (POST /key/generate → ${response.status} ${text.slice(0, 200)})`);
  }
  return key;
}

/** The key to measure with, issued through `adminDoor` (which is closed afterwards). */
export async function keyFor(benchKey: BenchKey, adminDoor: Door): Promise<string> {
  try {
    return await benchKey.issue(adminDoor);
  } finally {
    adminDoor.close();
  }
}
