import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { RelayError } from '../../lambda/http/errors.js';
import { handleAdminRequest } from '../../lambda/http/surface.js';
import { createKeyAuthenticator, type KeyAuthenticator } from '../../lambda/keys/authenticator.js';
import { KeyCache } from '../../lambda/keys/cache.js';
import { hashSecret } from '../../lambda/keys/secrets.js';
import { startKeyTestEnv, type KeyTestEnv } from './keys-harness.js';

const MASTER = 'sk-master-key-for-admin-tests';

type Json = Record<string, unknown>;

/**
 * The admin API over real HTTP: a node:http server hands each request to handleAdminRequest, the
 * way the relay's app does, against an embedded dynalite.
 */
describe('admin API (LiteLLM-compatible) over HTTP', () => {
  let env: KeyTestEnv;
  let server: Server;
  let base: string;
  let cache: KeyCache;
  let authenticate: KeyAuthenticator;

  before(async () => {
    env = await startKeyTestEnv();
    cache = new KeyCache({ clock: env.clock });
    authenticate = createKeyAuthenticator({ store: env.store, cache, masterKey: async () => MASTER, clock: env.clock });
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        const url = new URL(req.url ?? '/', 'http://relay');
        const headers = Object.fromEntries(Object.entries(req.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(',') : (value ?? '')]));
        const answer = await handleAdminRequest(
          { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers, body: Buffer.concat(chunks) },
          { store: env.store, cache, masterKey: async () => MASTER, clock: env.clock },
        );
        res.writeHead(answer.status, answer.headers).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await env.close();
  });

  async function api(method: string, path: string, body?: unknown, auth: string | null = MASTER): Promise<{ status: number; json: Json; text: string }> {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    return { status: response.status, json: JSON.parse(text) as Json, text };
  }

  function expectError(result: { status: number; json: Json }, status: number, param?: string | null): void {
    assert.equal(result.status, status, JSON.stringify(result.json));
    const error = result.json.error as Json;
    assert.equal(typeof error.message, 'string');
    assert.equal(typeof error.type, 'string');
    assert.equal(error.code, String(status));
    assert.ok('param' in error);
    if (param !== undefined) assert.equal(error.param, param);
  }

  async function total(): Promise<number> {
    return (await api('GET', '/key/list?size=100')).json.total_count as number;
  }

  async function generate(body: Json = {}): Promise<Json> {
    const result = await api('POST', '/key/generate', body);
    assert.equal(result.status, 200, result.text);
    return result.json;
  }

  it('requires the master key, compared exactly: no key or an invalid one 401, a valid virtual key 403', async () => {
    expectError(await api('POST', '/key/generate', {}, null), 401, null);
    expectError(await api('GET', '/key/list', undefined, `${MASTER}x`), 401);
    const { key, token } = await generate();
    expectError(await api('GET', '/key/list', undefined, key as string), 403);
    for (const [method, path] of [
      ['POST', '/key/generate'],
      ['POST', '/key/block'],
      ['GET', '/key/nowhere'],
      ['POST', '/key/info'],
    ] as const) {
      const refused = await api(method, path, method === 'POST' ? { key: token } : undefined, key as string);
      expectError(refused, 403);
      assert.equal((refused.json.error as Json).type, 'auth_error');
    }
    // A token is not a credential: it is shown by /key/list and is no secret.
    expectError(await api('GET', '/key/info', undefined, token as string), 401);
    const viaApiKey = await fetch(`${base}/key/list`, { headers: { 'x-api-key': MASTER } });
    assert.equal(viaApiKey.status, 200);
  });

  it("lets a key read its own /key/info (no key parameter, or its own key or token) and no other key's", async () => {
    const mine = await generate({ key_alias: 'self-info', max_budget: 3, models: ['amazon.nova-micro-v1:0'] });
    const other = await generate({ key_alias: 'someone-else' });
    const asMaster = await api('GET', `/key/info?key=${mine.token as string}`);
    assert.equal(asMaster.status, 200, asMaster.text);
    for (const query of ['', `?key=${mine.token as string}`, `?key=${encodeURIComponent(mine.key as string)}`]) {
      const own = await api('GET', `/key/info${query}`, undefined, mine.key as string);
      assert.equal(own.status, 200, `${query}: ${own.text}`);
      assert.deepEqual(own.json, asMaster.json, 'the same answer the master key gets');
      assert.ok(!own.text.includes(mine.key as string), 'never the secret');
    }
    const theirs = await api('GET', `/key/info?key=${other.token as string}`, undefined, mine.key as string);
    expectError(theirs, 403, 'key');
    assert.ok(!theirs.text.includes('someone-else'));
    // A key that does not exist is refused alike: the answer does not tell which keys exist.
    expectError(await api('GET', `/key/info?key=${'0'.repeat(64)}`, undefined, mine.key as string), 403, 'key');
    expectError(await api('GET', '/key/info', undefined, `sk-${'x'.repeat(43)}`), 401);

    // Blocked: 403 at once (the block went through this environment's cache); deleted: 401.
    assert.equal((await api('POST', '/key/block', { key: mine.token })).status, 200);
    expectError(await api('GET', '/key/info', undefined, mine.key as string), 403);
    assert.equal((await api('POST', '/key/unblock', { key: mine.token })).status, 200);
    assert.equal((await api('GET', '/key/info', undefined, mine.key as string)).status, 200);
    assert.equal((await api('POST', '/key/delete', { keys: [mine.token] })).status, 200);
    expectError(await api('GET', '/key/info', undefined, mine.key as string), 401);
  });

  it('refuses an expired key with 401, like an unknown one', async () => {
    const short = await generate({ duration: '1h' });
    assert.equal((await api('GET', '/key/info', undefined, short.key as string)).status, 200);
    env.clock.advance(3_600_000 + 1);
    expectError(await api('GET', '/key/info', undefined, short.key as string), 401);
  });

  it('generates a key: shown once, with its token, expiry and the stored fields', async () => {
    const before = env.clock();
    const created = await generate({
      key_alias: 'gen-1',
      duration: '12h',
      models: ['anthropic.claude-3-haiku-20240307-v1:0'],
      max_budget: 25,
      budget_duration: '30d',
      tpm_limit: 1000,
      rpm_limit: 10,
      max_parallel_requests: 2,
      metadata: { app: 'x' },
      user_id: 'u-1',
      team_id: 't-1',
      allowed_routes: ['converse'],
      allowed_operations: ['Converse'],
      object_permission: { agents: ['AGENT12345'] },
    });
    const key = created.key as string;
    assert.match(key, /^sk-[A-Za-z0-9_-]{43}$/);
    assert.equal(created.token, hashSecret(key));
    assert.equal(created.token_id, hashSecret(key));
    assert.equal(created.key_name, `sk-...${key.slice(-4)}`);
    assert.equal(created.expires, new Date(before + 12 * 3600_000).toISOString());
    assert.equal(created.budget_reset_at, new Date(before + 30 * 86_400_000).toISOString());
    assert.equal(created.key_alias, 'gen-1');
    assert.deepEqual(created.models, ['anthropic.claude-3-haiku-20240307-v1:0']);
    assert.deepEqual(created.object_permission, { agents: ['AGENT12345'] });
    assert.equal(created.spend, 0);
    assert.equal(created.blocked, false);
    const principal = await authenticate(key);
    assert.equal(principal.kind, 'virtual-key');
  });

  it('answers /key/info in LiteLLM’s shape, by secret or token, never echoing the secret', async () => {
    const created = await generate({ key_alias: 'info-1', max_budget: 3 });
    const bySecret = await api('GET', `/key/info?key=${encodeURIComponent(created.key as string)}`);
    assert.equal(bySecret.status, 200);
    assert.equal(bySecret.json.key, created.token);
    assert.ok(!bySecret.text.includes(created.key as string));
    const info = bySecret.json.info as Json;
    assert.equal(info.key_alias, 'info-1');
    assert.equal(info.max_budget, 3);
    assert.equal(info.spend, 0);
    assert.equal(info.expires, null);
    assert.equal(info.blocked, false);
    assert.ok(!('token' in info), 'LiteLLM leaves the token out of info');
    const byToken = await api('GET', `/key/info?key=${created.token as string}`);
    assert.deepEqual(byToken.json, bySecret.json);
    expectError(await api('GET', `/key/info?key=${hashSecret('sk-unknown')}`), 404, 'key');
    expectError(await api('GET', '/key/info'), 400, 'key');
  });

  it('refuses bad input with 400 naming the field, writing nothing', async () => {
    await generate({ key_alias: 'taken' });
    const count = await total();
    const cases: Array<[Json | string, string]> = [
      [{ modles: ['x'] }, 'modles'],
      [{ models: 'x' }, 'models'],
      [{ max_budget: -1 }, 'max_budget'],
      [{ duration: '30 days' }, 'duration'],
      [{ budget_duration: '1y' }, 'budget_duration'],
      [{ tpm_limit: '100' }, 'tpm_limit'],
      [{ key_alias: 'taken', max_budget: 1 }, 'key_alias'],
      [{ allowed_operations: ['Conversation'] }, 'allowed_operations'],
      [{ allowed_routes: ['/nowhere/*'] }, 'allowed_routes'],
      [{ object_permission: { flows: ['arn:aws:bedrock:us-east-1:1:agent/X'] } }, 'object_permission.flows'],
      ['{"models": [', 'body'],
    ];
    for (const [body, param] of cases) expectError(await api('POST', '/key/generate', body), 400, param);
    assert.equal(await total(), count, 'nothing was written');
  });

  it('updates fields (null clears) and refuses unknown keys', async () => {
    const created = await generate({ key_alias: 'upd-1', max_budget: 5, models: ['a.b'] });
    const updated = await api('POST', '/key/update', {
      key: created.key,
      max_budget: null,
      models: null,
      rpm_limit: 3,
      metadata: { v: 2 },
      key_alias: 'upd-2',
    });
    assert.equal(updated.status, 200, updated.text);
    assert.equal(updated.json.key, created.token, 'the token, not the secret');
    assert.equal(updated.json.max_budget, null);
    assert.deepEqual(updated.json.models, []);
    assert.equal(updated.json.rpm_limit, 3);
    assert.deepEqual(updated.json.metadata, { v: 2 });
    assert.equal(updated.json.key_alias, 'upd-2');
    expectError(await api('POST', '/key/update', { key: hashSecret('sk-unknown'), max_budget: 1 }), 404, 'key');
    expectError(await api('POST', '/key/update', { key: created.token, max_budget: -5 }), 400, 'max_budget');
    assert.equal(((await api('GET', `/key/info?key=${created.token as string}`)).json.info as Json).rpm_limit, 3);
  });

  it('lists keys: tokens by default, full objects on request, with filters and pages', async () => {
    for (let i = 0; i < 3; i++) await generate({ user_id: 'list-user', team_id: i === 0 ? 'list-team' : 'other' });
    const tokens = await api('GET', '/key/list?user_id=list-user&size=2');
    assert.equal(tokens.status, 200);
    assert.deepEqual(Object.keys(tokens.json).sort(), ['current_page', 'keys', 'total_count', 'total_pages']);
    assert.equal(tokens.json.total_count, 3);
    assert.equal(tokens.json.total_pages, 2);
    assert.equal(tokens.json.current_page, 1);
    assert.ok((tokens.json.keys as unknown[]).every((k) => typeof k === 'string' && /^[0-9a-f]{64}$/.test(k)));
    const full = await api('GET', '/key/list?team_id=list-team&return_full_object=true');
    assert.equal(full.json.total_count, 1);
    assert.equal((full.json.keys as Json[])[0]!.team_id, 'list-team');
    const byAlias = await api('GET', '/key/list?key_alias=upd-2&return_full_object=true');
    assert.equal((byAlias.json.keys as Json[])[0]!.key_alias, 'upd-2');
    expectError(await api('GET', '/key/list?size=500'), 400, 'size');
  });

  it('regenerates (both LiteLLM forms): old secret 401 at once, new one works, spend kept', async () => {
    const created = await generate({ key_alias: 'regen-http', models: ['a.b'] });
    await api('POST', '/key/update', { key: created.token, spend: 1.5 });
    assert.equal((await authenticate(created.key as string)).kind, 'virtual-key'); // now cached
    const first = await api('POST', '/key/regenerate', { key: created.key });
    assert.equal(first.status, 200, first.text);
    assert.notEqual(first.json.key, created.key);
    assert.equal(first.json.token, hashSecret(first.json.key as string));
    assert.equal(first.json.spend, 1.5);
    assert.deepEqual(first.json.models, ['a.b']);
    assert.equal(first.json.key_alias, 'regen-http');
    await assert.rejects(authenticate(created.key as string), (error: unknown) => error instanceof RelayError && error.status === 401);
    assert.equal((await authenticate(first.json.key as string)).kind, 'virtual-key');

    const second = await api('POST', `/key/${first.json.token as string}/regenerate`, { max_budget: 2 });
    assert.equal(second.status, 200, second.text);
    assert.equal(second.json.max_budget, 2);
    assert.equal(second.json.spend, 1.5);
    await assert.rejects(authenticate(first.json.key as string), (error: unknown) => error instanceof RelayError && error.status === 401);
    const pathless = await fetch(`${base}/key/${encodeURIComponent(second.json.key as string)}/regenerate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MASTER}` },
    });
    assert.equal(pathless.status, 200, 'no body: the key comes from the path');
    expectError(await api('POST', '/key/regenerate', { key: created.token }), 404, 'key');
    expectError(await api('POST', '/key/regenerate', {}), 400, 'key');
  });

  it('blocks and unblocks, taking effect at once in this environment', async () => {
    const created = await generate();
    const key = created.key as string;
    assert.equal((await authenticate(key)).kind, 'virtual-key');
    const blocked = await api('POST', '/key/block', { key });
    assert.equal(blocked.status, 200);
    assert.equal(blocked.json.blocked, true);
    assert.ok(!blocked.text.includes(key));
    await assert.rejects(authenticate(key), (error: unknown) => error instanceof RelayError && error.status === 403 && error.type === 'AccessDeniedException');
    const unblocked = await api('POST', '/key/unblock', { key: created.token });
    assert.equal(unblocked.json.blocked, false);
    assert.equal((await authenticate(key)).kind, 'virtual-key');
    expectError(await api('POST', '/key/block', { key: hashSecret('sk-nope') }), 404, 'key');
  });

  it('deletes by keys or by key_aliases', async () => {
    const a = await generate({ key_alias: 'del-http-a' });
    const b = await generate({ key_alias: 'del-http-b' });
    await authenticate(a.key as string);
    const byKey = await api('POST', '/key/delete', { keys: [a.key] });
    assert.equal(byKey.status, 200);
    assert.deepEqual(byKey.json, { deleted_keys: [a.token] });
    await assert.rejects(authenticate(a.key as string), (error: unknown) => error instanceof RelayError && error.status === 401);
    expectError(await api('POST', '/key/delete', { key_aliases: ['del-http-b', 'del-http-missing'] }), 404, 'key_aliases');
    assert.equal((await api('GET', `/key/info?key=${b.token as string}`)).status, 200, 'nothing deleted when one is missing');
    const byAlias = await api('POST', '/key/delete', { key_aliases: ['del-http-b'] });
    assert.deepEqual(byAlias.json, { deleted_keys: ['del-http-b'] });
    expectError(await api('GET', `/key/info?key=${b.token as string}`), 404);
    expectError(await api('POST', '/key/delete', { keys: [b.token], key_aliases: ['x'] }), 400, 'keys');
  });

  it('answers unknown paths and methods in the same error shape', async () => {
    expectError(await api('GET', '/key/nothing-here'), 404);
    expectError(await api('GET', '/key/generate'), 405);
  });
});
