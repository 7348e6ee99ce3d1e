import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RelayError } from '../../lambda/http/errors.js';
import { createKeyAuthenticator } from '../../lambda/keys/authenticator.js';
import { KeyCache } from '../../lambda/keys/cache.js';
import { generateSecret } from '../../lambda/keys/secrets.js';
import { startKeyTestEnv, type KeyTestEnv } from './keys-harness.js';

const MASTER = 'sk-master-for-auth-tests';

function relayError(status: number, type: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof RelayError, String(error));
    assert.equal(error.status, status);
    assert.equal(error.type, type);
    if (message) assert.match(error.message, message);
    return true;
  };
}

describe('key authenticator on dynalite', () => {
  let env: KeyTestEnv;
  before(async () => {
    env = await startKeyTestEnv();
  });
  after(async () => {
    await env.close();
  });

  const authenticator = (cache?: KeyCache) => createKeyAuthenticator({ store: env.store, cache, masterKey: async () => MASTER, clock: env.clock });

  it('knows the master key, virtual keys, and nothing else', async () => {
    const authenticate = authenticator();
    assert.deepEqual(await authenticate(MASTER), { kind: 'master' });
    const { secret, record } = await env.store.create({ key_alias: 'auth-1' });
    const principal = await authenticate(secret);
    assert.equal(principal.kind, 'virtual-key');
    assert.equal(principal.kind === 'virtual-key' && principal.token, record.token);
    assert.equal(principal.kind === 'virtual-key' && principal.record.key_alias, 'auth-1');
    await assert.rejects(authenticate(undefined), relayError(401, 'UnrecognizedClientException', /Missing/));
    await assert.rejects(authenticate(generateSecret()), relayError(401, 'UnrecognizedClientException'));
    await assert.rejects(authenticate(record.token), relayError(401, 'UnrecognizedClientException'), 'the token is not a credential');
    await assert.rejects(authenticate(`${secret}${'x'.repeat(600)}`), relayError(401, 'UnrecognizedClientException'));
  });

  it('refuses expired keys with 401 ExpiredTokenException, saying when', async () => {
    const authenticate = authenticator(new KeyCache({ clock: env.clock }));
    const { secret, record } = await env.store.create({ duration: '30m' });
    assert.equal((await authenticate(secret)).kind, 'virtual-key');
    env.clock.advance(30 * 60_000);
    await assert.rejects(authenticate(secret), relayError(401, 'ExpiredTokenException', new RegExp(`expired at ${record.expires!.replace(/\./g, '\\.')}`)));
  });

  it('refuses blocked keys with 403, deleted and regenerated ones with 401', async () => {
    const authenticate = authenticator();
    const blocked = await env.store.create({ blocked: true });
    await assert.rejects(authenticate(blocked.secret), relayError(403, 'AccessDeniedException', /blocked/));
    const deleted = await env.store.create({});
    await env.store.delete([deleted.record.token]);
    await assert.rejects(authenticate(deleted.secret), relayError(401, 'UnrecognizedClientException'));
    const old = await env.store.create({});
    const fresh = await env.store.regenerate(old.record.token);
    await assert.rejects(authenticate(old.secret), relayError(401, 'UnrecognizedClientException'));
    assert.equal((await authenticate(fresh.secret)).kind, 'virtual-key');
  });

  it('sees a change made in another environment within the cache ttl, not before', async () => {
    const cache = new KeyCache({ ttlSeconds: 30, clock: env.clock });
    const here = authenticator(cache);
    const elsewhere = env.newStore();
    const { secret, record } = await env.store.create({});
    assert.equal((await here(secret)).kind, 'virtual-key');
    await elsewhere.setBlocked(record.token, true);
    env.clock.advance(29_000);
    assert.equal((await here(secret)).kind, 'virtual-key', 'served from cache inside the bound');
    env.clock.advance(1_000);
    await assert.rejects(here(secret), relayError(403, 'AccessDeniedException'));
    await elsewhere.setBlocked(record.token, false);
    cache.invalidate(record.token);
    assert.equal((await here(secret)).kind, 'virtual-key', 'invalidate is immediate');
  });

  it('accepts a key created elsewhere within the negative-cache time', async () => {
    const cache = new KeyCache({ ttlSeconds: 30, clock: env.clock });
    const here = authenticator(cache);
    const { secret, record } = await env.store.create({});
    await env.store.delete([record.token]);
    await assert.rejects(here(secret), relayError(401, 'UnrecognizedClientException'));
    const created = await env.newStore().create({});
    await assert.rejects(here(generateSecret()), relayError(401, 'UnrecognizedClientException'));
    env.clock.advance(cache.negativeTtlMs);
    assert.equal((await here(created.secret)).kind, 'virtual-key');
  });

  it('works for virtual keys while the master key cannot be loaded, and never says 401 then', async () => {
    const authenticate = createKeyAuthenticator({
      store: env.store,
      masterKey: async () => Promise.reject(new Error('secrets manager down')),
      clock: env.clock,
    });
    const { secret } = await env.store.create({});
    assert.equal((await authenticate(secret)).kind, 'virtual-key');
    await assert.rejects(authenticate(MASTER), relayError(503, 'ServiceUnavailableException'));
  });
});

describe('key store outage', () => {
  it('fails closed with 503 ServiceUnavailableException', async () => {
    const env = await startKeyTestEnv();
    try {
      const { secret } = await env.store.create({});
      const errors: unknown[] = [];
      const authenticate = createKeyAuthenticator({
        store: env.store,
        cache: new KeyCache({ clock: env.clock }),
        masterKey: async () => MASTER,
        clock: env.clock,
        onStoreError: (error) => errors.push(error),
      });
      await env.dynamo.stop();
      await assert.rejects(authenticate(secret), relayError(503, 'ServiceUnavailableException', /Nothing was sent to Bedrock/));
      assert.equal(errors.length, 1);
      assert.ok(!String((errors[0] as Error).message).includes(secret));
      assert.deepEqual(await authenticate(MASTER), { kind: 'master' }, 'the master key needs no store');
      await assert.rejects(env.store.ping(), /key store is unavailable/);
    } finally {
      await env.close();
    }
  });
});
