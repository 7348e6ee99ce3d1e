/**
 * Keys are only hashed at rest. Keys are made, changed, regenerated, blocked and deleted through
 * the admin API of a relay on the local server path, used for calls (so usage, limit and lease
 * items exist too), and then:
 *
 * - the whole table, read back with the official DynamoDB client (Scan, every page), holds no
 *   key secret and not the master key, in any encoding or in part, in any attribute;
 * - every key item is keyed by the SHA-256 of its secret, and by nothing else;
 * - the store's files on disk (LevelDB under the data dir) hold no secret either;
 * - /key/list and /key/info (and the other admin answers that are not generate/regenerate)
 *   never return a secret, whichever way the key was named.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DynamoDBClient, ScanCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { LogFn } from '../../lambda/observability/log.js';
import { LOCAL_CREDENTIALS } from '../../lambda/store/dynamo.js';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';
import { admin, call, type LogLine } from './accounting-harness.js';

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const CONVERSE = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'at rest' }] }], inferenceConfig: { maxTokens: 12 } });

let fake: FakeBedrock;
let store: EmbeddedDynamo;
let relay: RelayUnderTest;
let dataDir: string;
const logs: LogLine[] = [];
let relayClosed: Promise<void> | undefined;
const closeRelay = () => (relayClosed ??= relay.close());

/** Every secret the admin API handed out in this file, live or not. */
const issued: string[] = [];

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

before(async () => {
  fake = await startFakeBedrock();
  dataDir = await mkdtemp(join(tmpdir(), 'relay-at-rest-'));
  // On disk, as `npm start` keeps it, so the files can be searched as well as the table.
  store = await startEmbeddedDynamo({ dataDir });
  const log: LogFn = (level, message, fields = {}) => void logs.push({ level, message, fields });
  relay = await startRelay({
    fake,
    env: { RELAY_KEYS_TABLE: store.tableName },
    overrides: { dynamo: store.clients, telemetry: { log, writeMetrics: () => undefined } },
  });
});
after(async () => {
  if (relay) await closeRelay();
  await store?.stop();
  await fake?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function generate(fields: Record<string, unknown>): Promise<{ key: string; token: string }> {
  const created = await admin(relay.url, 'POST', '/key/generate', fields);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  const key = created.json.key as string;
  assert.match(key, /^sk-[A-Za-z0-9_-]{43}$/);
  issued.push(key);
  return { key, token: created.json.token_id as string };
}

/**
 * What would betray a secret: itself, its random part, common encodings of either, and any
 * 16-character stretch of the random part (a truncated or split copy). LiteLLM's display form
 * `sk-...abcd` (4 characters) is allowed and is shorter than any stretch looked for.
 */
function needles(secret: string): string[] {
  const random = secret.replace(/^sk-/, '');
  const found = new Set<string>([
    secret,
    random,
    Buffer.from(secret).toString('base64'),
    Buffer.from(secret).toString('hex'),
    Buffer.from(random).toString('base64'),
    Buffer.from(random).toString('hex'),
  ]);
  if (/^[A-Za-z0-9_-]{43}$/.test(random)) {
    const bytes = Buffer.from(random, 'base64url');
    found.add(bytes.toString('hex'));
    found.add(bytes.toString('base64').replace(/=+$/, ''));
  }
  for (let i = 0; i + 16 <= random.length; i++) found.add(random.slice(i, i + 16));
  return [...found];
}

function leaks(text: string, secrets: readonly string[]): string[] {
  const hits: string[] = [];
  for (const secret of secrets) {
    const hit = needles(secret).find((needle) => text.includes(needle));
    if (hit !== undefined) hits.push(`${secret.slice(0, 8)}… (as "${hit.slice(0, 20)}…")`);
  }
  return hits;
}

/** An item as text: every attribute, binary values as base64 and as UTF-8, sets as lists. */
function serialise(item: Record<string, AttributeValue>): string {
  return JSON.stringify(item, (_key, value: unknown) => {
    if (value instanceof Uint8Array) return [Buffer.from(value).toString('base64'), Buffer.from(value).toString('utf8')];
    if (value instanceof Set) return [...value];
    return value;
  });
}

async function scanAll(): Promise<Array<Record<string, AttributeValue>>> {
  const client = new DynamoDBClient({ endpoint: store.endpoint, region: store.region, credentials: LOCAL_CREDENTIALS });
  try {
    const items: Array<Record<string, AttributeValue>> = [];
    let start: Record<string, AttributeValue> | undefined;
    do {
      // Small pages, so paging is exercised and no item is missed at a page boundary.
      const page = await client.send(new ScanCommand({ TableName: store.tableName, ExclusiveStartKey: start, Limit: 7, ConsistentRead: true }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  } finally {
    client.destroy();
  }
}

describe('keys at rest', () => {
  let items: Array<Record<string, AttributeValue>>;
  let live: Array<{ key: string; token: string }>;
  let gone: string[];

  before(async () => {
    const plain = await generate({ key_alias: 'rest-plain' });
    const limited = await generate({
      key_alias: 'rest-limited',
      models: [HAIKU],
      max_budget: 5,
      budget_duration: '30d',
      rpm_limit: 100,
      tpm_limit: 100_000,
      max_parallel_requests: 4,
      model_rpm_limit: { [HAIKU]: 50 },
      metadata: { team: 'rest', note: 'metadata is stored as given' },
      user_id: 'rest-user',
      duration: '7d',
    });
    const toRegenerate = await generate({ key_alias: 'rest-regenerated' });
    const toDelete = await generate({ key_alias: 'rest-deleted' });

    const regenerated = await admin(relay.url, 'POST', '/key/regenerate', { key: toRegenerate.token });
    assert.equal(regenerated.status, 200, JSON.stringify(regenerated.json));
    const successor = { key: regenerated.json.key as string, token: regenerated.json.token_id as string };
    issued.push(successor.key);

    // Admin answers other than generate/regenerate must not carry a secret, however the key is named.
    const answers = [
      await admin(relay.url, 'POST', '/key/update', { key: plain.token, max_budget: 9, metadata: { changed: true } }),
      await admin(relay.url, 'POST', '/key/update', { key: limited.key, rpm_limit: 120 }),
      await admin(relay.url, 'POST', '/key/block', { key: plain.key }),
      await admin(relay.url, 'POST', '/key/unblock', { key: plain.token }),
    ];
    for (const answer of answers) {
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual(leaks(JSON.stringify(answer.json), [...issued, TEST_MASTER_KEY]), [], JSON.stringify(answer.json));
    }

    // Calls: virtual keys, the master key, a regenerated-away key and an unknown one.
    const path = `/bedrock/model/${HAIKU}/converse`;
    let expectedLines = 0;
    for (const k of [plain, limited, successor, toDelete]) {
      assert.equal((await call(relay.url, k.key, path, CONVERSE)).status, 200);
      assert.equal((await call(relay.url, k.key, `/bedrock/model/${HAIKU}/converse-stream`, CONVERSE)).status, 200);
      expectedLines += 2;
    }
    assert.equal((await call(relay.url, TEST_MASTER_KEY, path, CONVERSE)).status, 200);
    assert.equal((await call(relay.url, toRegenerate.key, path, CONVERSE)).status, 401);
    assert.equal((await call(relay.url, `sk-${'A'.repeat(43)}`, path, CONVERSE, { 'x-api-key': `sk-${'B'.repeat(43)}` })).status, 401);
    expectedLines += 3;
    // Every call settled (ledger written) before the scan below reads the table.
    await relay.idle();
    assert.equal(logs.filter((l) => l.message === 'relay-call').length, expectedLines);

    const deleted = await admin(relay.url, 'POST', '/key/delete', { keys: [toDelete.token] });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.json));
    assert.deepEqual(leaks(JSON.stringify(deleted.json), [...issued, TEST_MASTER_KEY]), []);

    live = [plain, limited, successor];
    gone = [toRegenerate.key, toDelete.key];
    items = await scanAll();
  });

  it('the table holds the items the calls made (so the scan below means something)', () => {
    const sortKeys = items.map((item) => item.sk?.S ?? '');
    assert.ok(sortKeys.filter((sk) => sk === 'KEY').length >= live.length, 'key items');
    assert.ok(
      sortKeys.some((sk) => sk.startsWith('USAGE#')),
      'usage items',
    );
    assert.ok(
      sortKeys.some((sk) => sk.startsWith('RL#')),
      'limit counters or leases',
    );
    assert.ok(sortKeys.includes('ALIAS'), 'alias claims');
    assert.ok(
      items.some((item) => item.pk?.S === 'KEY#MASTER'),
      'the master key’s usage',
    );
  });

  it('no item holds a key secret or the master key, in any attribute or encoding', () => {
    const secrets = [...issued, TEST_MASTER_KEY];
    const found = items.flatMap((item) => leaks(serialise(item), secrets).map((hit) => `${item.pk?.S} / ${item.sk?.S}: ${hit}`));
    assert.deepEqual(found, []);
    // The check can see a secret when one is there.
    const planted = { ...items[0]!, note: { S: `copied ${live[0]!.key.slice(3, 25)} here` } };
    assert.equal(leaks(serialise(planted), secrets).length, 1);
  });

  it('every key item is keyed by the SHA-256 of its secret, and by nothing else', () => {
    const keyItems = items.filter((item) => item.sk?.S === 'KEY');
    for (const item of keyItems) assert.match(item.pk?.S ?? '', /^KEY#[0-9a-f]{64}$/);
    const hashes = new Set(keyItems.map((item) => item.pk!.S!.slice('KEY#'.length)));
    for (const k of live) {
      assert.equal(k.token, sha256(k.key), 'the token the API reports is the SHA-256 of the secret');
      assert.ok(hashes.has(sha256(k.key)), `a live key’s item is at KEY#sha256(secret)`);
    }
    const issuedHashes = new Set(issued.map(sha256));
    assert.deepEqual(
      [...hashes].filter((hash) => !issuedHashes.has(hash)),
      [],
      'no key item under any other id',
    );
    // Each item on a key's partition hangs off that hash too (usage, limits, leases).
    const partitions = items.map((item) => item.pk?.S ?? '').filter((pk) => pk.startsWith('KEY#') && pk !== 'KEY#MASTER');
    assert.deepEqual(
      partitions.filter((pk) => !issuedHashes.has(pk.slice('KEY#'.length))),
      [],
    );
    // A regenerated-away secret is not a key any more, and a deleted one is gone from the table.
    assert.equal(
      keyItems.find((item) => item.pk?.S === `KEY#${sha256(gone[1]!)}`),
      undefined,
      'the deleted key item is gone',
    );
  });

  it('/key/list and /key/info never return a secret', async () => {
    const secrets = [...issued, TEST_MASTER_KEY];
    const answers = [
      await admin(relay.url, 'GET', '/key/list'),
      await admin(relay.url, 'GET', '/key/list?return_full_object=true&size=100'),
      await admin(relay.url, 'GET', '/key/list?key_alias=rest-limited&return_full_object=true'),
      await admin(relay.url, 'GET', '/key/list?user_id=rest-user&return_full_object=true'),
    ];
    for (const k of live) {
      answers.push(await admin(relay.url, 'GET', `/key/info?key=${k.token}`));
      answers.push(await admin(relay.url, 'GET', `/key/info?key=${encodeURIComponent(k.key)}`));
      answers.push(await admin(relay.url, 'GET', `/key/usage?key=${encodeURIComponent(k.key)}`));
    }
    const listed = answers[1]!.json.keys as Array<Record<string, unknown>>;
    assert.ok(listed.length >= live.length, 'the full list has the keys');
    for (const answer of answers) {
      assert.equal(answer.status, 200, JSON.stringify(answer.json));
      assert.deepEqual(leaks(JSON.stringify(answer.json), secrets), [], JSON.stringify(answer.json).slice(0, 300));
    }
    const info = answers[4]!.json;
    assert.equal(info.key, live[0]!.token, '/key/info names the key by its token');
  });

  it('nor do the store’s files on disk', async () => {
    // Stop the store so every write is on disk; the scan above already has the items.
    await closeRelay();
    await store.stop();
    const dir = join(dataDir, 'dynamodb');
    const files = await readdir(dir);
    const contents = Buffer.concat(await Promise.all(files.map((file) => readFile(join(dir, file)).catch(() => Buffer.alloc(0)))));
    const text = contents.toString('latin1');
    // The files are searchable: the tokens (and aliases) written with the keys are found in them.
    assert.ok(
      live.every((k) => text.includes(k.token)),
      'key tokens are visible in the raw files',
    );
    assert.ok(text.includes('rest-limited'));
    assert.deepEqual(leaks(text, [...issued, TEST_MASTER_KEY]), []);
  });
});
