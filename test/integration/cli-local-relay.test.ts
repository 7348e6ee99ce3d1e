/**
 * `relay keys …` against a running `npm start` (lambda/local/main.ts as a child process, its
 * embedded store in a temporary data dir, Bedrock faked): changes apply at once, although the
 * relay caches keys for 10 minutes here, because the CLI makes them through the relay's admin
 * API (lambda/cli/local-relay.ts). Also on the real server: a key reads its own /key/info and
 * gets 403 for the rest of the admin API.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { rawRequest } from '../support/clients.js';
import { fakeBedrockEnv, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const BIN = join(ROOT, 'bin', 'relay.mjs');
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const CONVERSE_BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  json(): Record<string, unknown>;
}

function cli(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolvePromise) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: ROOT,
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

let fake: FakeBedrock;
let dataDir: string;
let server: ChildProcess;
let url: string;
let output = '';

before(async () => {
  fake = await startFakeBedrock();
  dataDir = await mkdtemp(join(tmpdir(), 'relay-cli-live-'));
  server = spawn(process.execPath, ['--import', 'tsx', 'lambda/local/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...fakeBedrockEnv(fake),
      // No RELAY_MASTER_KEY: the server generates one into the data dir, where the CLI finds it.
      RELAY_DATA_DIR: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      // Far longer than the test: whatever takes effect here did not wait for the cache to expire.
      RELAY_KEY_CACHE_TTL_SECONDS: '600',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (data: Buffer) => (output += data.toString('utf8')));
  server.stderr!.on('data', (data: Buffer) => (output += data.toString('utf8')));
  url = await new Promise<string>((resolveUrl, reject) => {
    const check = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        server.stdout!.off('data', check);
        resolveUrl(match[1]!);
      }
    };
    server.stdout!.on('data', check);
    server.once('exit', (code) => reject(new Error(`the relay exited with ${code}:\n${output}`)));
  });
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolveExit) => server.once('exit', resolveExit));
    server.kill('SIGTERM');
    await exited;
  }
  await fake?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const env = () => ({ RELAY_DATA_DIR: dataDir });
const converse = async (key: string) =>
  (await rawRequest(url, 'POST', `/bedrock/model/${HAIKU}/converse`, { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, CONVERSE_BODY))
    .status;

async function ok(args: string[], extraEnv: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const run = await cli(args, { ...env(), ...extraEnv });
  assert.equal(run.code, 0, `relay ${args.join(' ')}: ${run.stderr}`);
  assert.equal(run.stderr, '', 'no note: the change went through the relay');
  return run.json();
}

describe('relay keys against a running npm start', () => {
  it('block, unblock, update, regenerate and delete take effect on the next call, not when the key cache expires', async () => {
    const key = (await ok(['keys', 'create', '--alias', 'live']))!.key as string;
    assert.equal(await converse(key), 200, "the key works, and is now in the relay's cache");

    assert.equal((await ok(['keys', 'block', '--alias', 'live'])).blocked, true);
    assert.equal(await converse(key), 403, 'blocked at once');
    assert.equal((await ok(['keys', 'unblock', key])).blocked, false);
    assert.equal(await converse(key), 200, 'unblocked at once');

    await ok(['keys', 'update', '--alias', 'live', '--models', 'amazon.nova-micro-v1:0']);
    assert.equal(await converse(key), 403, 'the new model list applies at once');
    await ok(['keys', 'update', '--alias', 'live', '--models', 'null']);
    assert.equal(await converse(key), 200);

    const successor = (await ok(['keys', 'regenerate', '--alias', 'live'])).key as string;
    assert.equal(await converse(key), 401, 'the old secret is refused at once');
    assert.equal(await converse(successor), 200);

    assert.deepEqual(await ok(['keys', 'delete', '--alias', 'live']), { deleted_keys: ['live'] });
    assert.equal(await converse(successor), 401, 'deleted at once');
  });

  it('a key reads its own /key/info on the running server, and gets 403 for the rest of the admin API', async () => {
    const created = await ok(['keys', 'create', '--alias', 'self', '--max-budget', '2']);
    const key = created.key as string;
    const auth = { authorization: `Bearer ${key}` };
    const own = await rawRequest(url, 'GET', '/key/info', auth);
    assert.equal(own.status, 200, own.body.toString());
    const info = JSON.parse(own.body.toString()) as { key: string; info: Record<string, unknown> };
    assert.equal(info.key, created.token);
    assert.equal(info.info.key_alias, 'self');
    assert.equal(info.info.max_budget, 2);
    assert.ok(!own.body.toString().includes(key), 'never the secret');
    for (const path of [`/key/usage?key=${created.token as string}`, '/key/list']) {
      const refused = await rawRequest(url, 'GET', path, auth);
      assert.equal(refused.status, 403, `${path}: ${refused.body.toString()}`);
      const error = (JSON.parse(refused.body.toString()) as { error: Record<string, unknown> }).error;
      assert.deepEqual(Object.keys(error).sort(), ['code', 'message', 'param', 'type'], "LiteLLM's error shape");
      assert.equal(error.code, '403');
    }
    assert.equal((await rawRequest(url, 'GET', '/key/list', { authorization: `Bearer sk-${'Z'.repeat(43)}` })).status, 401, 'an invalid key is still 401');
  });

  it("without the relay's master key the CLI still makes the change, in the store, and says when the relay will see it", async () => {
    const created = await ok(['keys', 'create', '--alias', 'fallback']);
    const master = (await readFile(join(dataDir, 'master-key'), 'utf8')).trim();
    const run = await cli(['keys', 'block', '--alias', 'fallback'], { ...env(), RELAY_MASTER_KEY: 'sk-not-the-master-key-of-this-relay' });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.json().blocked, true);
    assert.match(
      run.stderr,
      /^note: the running relay at http:\/\/127\.0\.0\.1:\d+ did not accept the master key the CLI found, so the change is written to its store directly; .*30 s by default/,
    );
    assert.ok(!run.stderr.includes('sk-not-the-master-key') && !run.stderr.includes(master), 'no key in the note');
    assert.equal(((await ok(['keys', 'info', created.token as string])).info as Record<string, unknown>).blocked, true, 'the store has it');
  });
});
