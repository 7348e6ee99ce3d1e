import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { KeyStore } from '../../lambda/keys/store.js';
import { hashSecret } from '../../lambda/keys/secrets.js';
import { endpointFilePath, startEmbeddedDynamo, writeEndpointFile } from '../../lambda/store/embedded.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'bin', 'relay.mjs');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  json(): Record<string, unknown>;
}

function relay(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
        // Only what the CLI needs: no ambient AWS settings or RELAY_* from the machine running the tests.
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolvePromise({ code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> });
      },
    );
  });
}

describe('relay CLI', () => {
  let dataDir: string;
  let env: Record<string, string>;

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'relay-cli-'));
    env = { RELAY_DATA_DIR: dataDir };
  });
  after(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('manages a key in the embedded store: create, list, info, block, unblock, regenerate, delete', async () => {
    const created = await relay(
      ['keys', 'create', '--alias', 'x', '--models', 'anthropic.claude-3-haiku-20240307-v1:0,amazon.nova-lite-v1:0', '--duration', '30d', '--max-budget', '5'],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const key = created.json().key as string;
    assert.match(key, /^sk-/);
    assert.equal(created.json().token, hashSecret(key));
    assert.deepEqual(created.json().models, ['anthropic.claude-3-haiku-20240307-v1:0', 'amazon.nova-lite-v1:0']);

    const listed = await relay(['keys', 'list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(!listed.stdout.includes(key), 'list never shows the secret');
    const keys = listed.json().keys as Array<Record<string, unknown>>;
    assert.deepEqual(
      keys.map((k) => k.key_alias),
      ['x'],
    );
    assert.equal(keys[0]!.max_budget, 5);

    const info = await relay(['keys', 'info', '--alias', 'x'], env);
    assert.equal(info.code, 0, info.stderr);
    assert.equal(info.json().key, hashSecret(key));
    assert.equal((info.json().info as Record<string, unknown>).key_name, `sk-...${key.slice(-4)}`);

    const blocked = await relay(['keys', 'block', key], env);
    assert.equal(blocked.code, 0, blocked.stderr);
    assert.equal(blocked.json().blocked, true);
    assert.equal((await relay(['keys', 'unblock', '--alias', 'x'], env)).json().blocked, false);

    const updated = await relay(['keys', 'update', '--alias', 'x', '--key-alias', 'y', '--rpm-limit', '7', '--max-budget', 'null'], env);
    assert.equal(updated.code, 0, updated.stderr);
    assert.equal(updated.json().key_alias, 'y');
    assert.equal(updated.json().rpm_limit, 7);
    assert.equal(updated.json().max_budget, null);

    const regenerated = await relay(['keys', 'regenerate', '--alias', 'y'], env);
    assert.equal(regenerated.code, 0, regenerated.stderr);
    const newKey = regenerated.json().key as string;
    assert.notEqual(newKey, key);
    const oldInfo = await relay(['keys', 'info', key], env);
    assert.equal(oldInfo.code, 1);
    assert.equal((JSON.parse(oldInfo.stderr) as { error: { code: string } }).error.code, '404');
    assert.equal((await relay(['keys', 'info', newKey], env)).code, 0);

    const deleted = await relay(['keys', 'delete', '--alias', 'y'], env);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.deepEqual(deleted.json(), { deleted_keys: ['y'] });
    assert.equal((await relay(['keys', 'info', newKey], env)).code, 1);
    assert.deepEqual((await relay(['keys', 'list'], env)).json().keys, []);
  });

  it('answers refusals with exit 1 and LiteLLM’s error on stderr, usage errors with exit 2', async () => {
    const refused = await relay(['keys', 'create', '--max-budget=-5'], env);
    assert.equal(refused.code, 1);
    assert.deepEqual((JSON.parse(refused.stderr) as { error: Record<string, unknown> }).error.param, 'max_budget');
    assert.equal((await relay(['keys', 'create', '--duration', 'forever'], env)).code, 1);
    assert.equal((await relay(['keys', 'frobnicate'], env)).code, 2);
    assert.equal((await relay(['keys', 'create', '--bogus'], env)).code, 2);
    assert.equal((await relay(['keys', 'info'], env)).code, 2);
    assert.equal((await relay([], env)).code, 2);
    const help = await relay(['keys', '--help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /regenerate/);
  });

  it('says clearly when a running relay holds the store, and uses its endpoint when it publishes one', async () => {
    const server = await startEmbeddedDynamo({ dataDir });
    try {
      const locked = await relay(['keys', 'list'], env);
      assert.equal(locked.code, 3);
      assert.match(locked.stderr, /in use by another process/);
      assert.match(locked.stderr, /dynamodb-endpoint/);

      await writeEndpointFile(dataDir, server);
      const created = await relay(['keys', 'create', '--alias', 'via-endpoint'], env);
      assert.equal(created.code, 0, created.stderr);
      const store = new KeyStore(server.clients.doc, server.tableName);
      assert.equal((await store.getByAlias('via-endpoint'))?.token, created.json().token, 'written to the running store');
    } finally {
      await server.stop();
    }
    // The relay is gone but its endpoint file stayed: the CLI opens the store itself.
    const afterwards = await relay(['keys', 'info', '--alias', 'via-endpoint'], env);
    assert.equal(afterwards.code, 0, afterwards.stderr);
    await rm(endpointFilePath(dataDir), { force: true });
  });

  it('works on a named table with the SDK’s own endpoint resolution (--table, AWS_ENDPOINT_URL_DYNAMODB)', async () => {
    const other = await mkdtemp(join(tmpdir(), 'relay-cli-table-'));
    const server = await startEmbeddedDynamo({ dataDir: other, tableName: 'deployed-keys' });
    try {
      const awsEnv = {
        AWS_ENDPOINT_URL_DYNAMODB: server.endpoint,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        RELAY_DATA_DIR: join(other, 'unused'),
      };
      const created = await relay(['keys', 'create', '--table', 'deployed-keys', '--alias', 'remote'], awsEnv);
      assert.equal(created.code, 0, created.stderr);
      const store = new KeyStore(server.clients.doc, 'deployed-keys');
      assert.equal((await store.getByAlias('remote'))?.token, created.json().token);
      const listed = await relay(['keys', 'list'], { ...awsEnv, RELAY_KEYS_TABLE: 'deployed-keys' });
      assert.equal(listed.code, 0, listed.stderr);
      assert.equal((listed.json().keys as unknown[]).length, 1);
      const missing = await relay(['keys', 'list', '--table', 'no-such-table'], awsEnv);
      assert.equal(missing.code, 3, 'an unreachable or missing table is "unavailable"');
      const noStackSupport = await relay(['keys', 'list', '--stack', 'my-stack'], awsEnv);
      assert.ok(noStackSupport.code === 2 || noStackSupport.code === 3, noStackSupport.stderr);
    } finally {
      await server.stop();
      await rm(other, { recursive: true, force: true });
    }
  });

  it('ignores a garbled endpoint file', async () => {
    await writeFile(endpointFilePath(dataDir), 'not a url\n');
    const listed = await relay(['keys', 'list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    await rm(endpointFilePath(dataDir), { force: true });
  });
});
