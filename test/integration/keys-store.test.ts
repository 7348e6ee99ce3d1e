import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DeleteCommand, GetCommand, PutCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { KeyApiError } from '../../lambda/http/errors.js';
import { hashSecret } from '../../lambda/keys/secrets.js';
import { ALIAS_CLAIM_GRACE_MS, EXPIRED_KEY_RETENTION_SECONDS } from '../../lambda/keys/store.js';
import { aliasPartition, keyPartition } from '../../lambda/store/schema.js';
import { startKeyTestEnv, type KeyTestEnv } from './keys-harness.js';

function isStatus(status: number, param?: string) {
  return (error: unknown) => {
    assert.ok(error instanceof KeyApiError, String(error));
    assert.equal(error.status, status);
    if (param) assert.equal(error.param, param);
    return true;
  };
}

describe('key store on dynalite', () => {
  let env: KeyTestEnv;
  before(async () => {
    env = await startKeyTestEnv();
  });
  after(async () => {
    await env.close();
  });

  async function itemCount(): Promise<number> {
    const scan = await env.dynamo.clients.doc.send(new ScanCommand({ TableName: env.dynamo.tableName, Select: 'COUNT' }));
    return scan.Count ?? 0;
  }

  it('stores only the hash and finds the key by secret, hash and alias', async () => {
    const { secret, record } = await env.store.create({ key_alias: 'store-basic', models: ['amazon.nova-lite-v1:0'], max_budget: 5, metadata: { team: 'a' } });
    assert.equal(record.token, hashSecret(secret));
    const raw = await env.dynamo.clients.doc.send(new GetCommand({ TableName: env.dynamo.tableName, Key: { pk: keyPartition(record.token), sk: 'KEY' } }));
    assert.ok(raw.Item);
    assert.ok(!JSON.stringify(raw.Item).includes(secret.slice(3)), 'the secret is not stored');
    // The key item takes a ledger write on every call: it must not be in the listing index.
    assert.equal(raw.Item.gsi1pk, undefined);
    const entry = await env.dynamo.clients.doc.send(new GetCommand({ TableName: env.dynamo.tableName, Key: { pk: keyPartition(record.token), sk: 'LIST' } }));
    assert.equal(entry.Item?.gsi1pk, 'KEYS');
    assert.deepEqual(Object.keys(entry.Item ?? {}).sort(), ['gsi1pk', 'gsi1sk', 'pk', 'sk', 'token']);
    assert.equal((await env.store.getBySecret(secret))?.token, record.token);
    assert.equal((await env.store.getByHash(record.token))?.max_budget, 5);
    assert.deepEqual((await env.store.getByAlias('store-basic'))?.metadata, { team: 'a' });
    assert.equal(await env.store.getByAlias('no-such-alias'), undefined);
    assert.equal(await env.store.getBySecret(`${secret}x`), undefined);
  });

  it('lets exactly one of 10 concurrent creates with the same alias win', async () => {
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => env.store.create({ key_alias: 'contested' })));
    const won = results.filter((result) => result.status === 'fulfilled');
    const lost = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 9);
    for (const failure of lost) isStatus(400, 'key_alias')(failure.reason);
    const list = await env.store.list({ page: 1, size: 100, key_alias: 'contested' });
    assert.equal(list.total, 1);
  });

  it('moves an alias on update, freeing the old one, and refuses a taken one without writing', async () => {
    const a = await env.store.create({ key_alias: 'alias-a' });
    await env.store.create({ key_alias: 'alias-b' });
    const before = await itemCount();
    await assert.rejects(env.store.update(a.record.token, { key_alias: 'alias-b', max_budget: 9 }), isStatus(400, 'key_alias'));
    assert.equal(await itemCount(), before);
    assert.equal((await env.store.getByHash(a.record.token))?.max_budget, undefined, 'nothing written on error');
    const renamed = await env.store.update(a.record.token, { key_alias: 'alias-c' });
    assert.equal(renamed.key_alias, 'alias-c');
    assert.equal((await env.store.getByAlias('alias-c'))?.token, a.record.token);
    assert.equal(await env.store.getByAlias('alias-a'), undefined);
    const reused = await env.store.create({ key_alias: 'alias-a' });
    assert.equal((await env.store.getByAlias('alias-a'))?.token, reused.record.token);
    const cleared = await env.store.update(a.record.token, { key_alias: null, models: null, metadata: null });
    assert.equal(cleared.key_alias, undefined);
    assert.deepEqual(cleared.models, []);
    await env.store.create({ key_alias: 'alias-c' });
  });

  it('regenerates: new secret, same policy, alias and spend; the old token is dead at once', async () => {
    const { secret, record } = await env.store.create({ key_alias: 'regen', models: ['amazon.nova-lite-v1:0'], max_budget: 3, rpm_limit: 7 });
    // What the ledger (issue 4) does: an atomic ADD to spend_nanos.
    await env.dynamo.clients.doc.send(
      new UpdateCommand({
        TableName: env.dynamo.tableName,
        Key: { pk: keyPartition(record.token), sk: 'KEY' },
        UpdateExpression: 'ADD spend_nanos :n',
        ExpressionAttributeValues: { ':n': 1_234_567_891 },
      }),
    );
    const regenerated = await env.store.regenerate(record.token, { max_budget: 4 });
    assert.notEqual(regenerated.secret, secret);
    assert.equal(regenerated.previousToken, record.token);
    assert.equal(await env.store.getBySecret(secret), undefined);
    const fresh = await env.store.getBySecret(regenerated.secret);
    assert.ok(fresh);
    assert.equal(fresh.spend_nanos, 1_234_567_891);
    assert.deepEqual(fresh.models, ['amazon.nova-lite-v1:0']);
    assert.equal(fresh.rpm_limit, 7);
    assert.equal(fresh.max_budget, 4);
    assert.equal(fresh.created_at, record.created_at);
    assert.deepEqual(fresh.regenerated_from, [record.token]);
    assert.equal((await env.store.getByAlias('regen'))?.token, fresh.token);
    await assert.rejects(env.store.regenerate(record.token), isStatus(404));
    await assert.rejects(env.store.update(record.token, { max_budget: 1 }), isStatus(404));
    const listed = await env.store.list({ page: 1, size: 100 });
    assert.ok(!listed.records.some((r) => r.token === record.token), 'the tombstone is not listed');
  });

  it('blocks and unblocks', async () => {
    const { record } = await env.store.create({});
    assert.equal((await env.store.setBlocked(record.token, true)).blocked, true);
    assert.equal((await env.store.getByHash(record.token))?.blocked, true);
    assert.equal((await env.store.setBlocked(record.token, false)).blocked, false);
    await assert.rejects(env.store.setBlocked(hashSecret('sk-unknown'), true), isStatus(404));
  });

  it('deletes by alias and by token, all or nothing', async () => {
    const one = await env.store.create({ key_alias: 'del-1' });
    const two = await env.store.create({ key_alias: 'del-2' });
    await assert.rejects(env.store.deleteByAliases(['del-1', 'del-missing']), isStatus(404, 'key_aliases'));
    assert.ok(await env.store.getByAlias('del-1'), 'nothing deleted when one is missing');
    const deleted = await env.store.deleteByAliases(['del-1']);
    assert.deepEqual(
      deleted.map((r) => r.token),
      [one.record.token],
    );
    assert.equal(await env.store.getByHash(one.record.token), undefined);
    assert.equal(await env.store.getByAlias('del-1'), undefined);
    await env.store.create({ key_alias: 'del-1' });
    await assert.rejects(env.store.delete([two.record.token, hashSecret('sk-nope')]), isStatus(404, 'keys'));
    await env.store.delete([two.record.token]);
    assert.equal(await env.store.getBySecret(two.secret), undefined);
  });

  it('lists newest first with pagination and user/team filters', async () => {
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      env.clock.advance(1000);
      mine.push((await env.store.create({ user_id: 'lister', team_id: i % 2 ? 'odd' : 'even' })).record.token);
    }
    const page1 = await env.store.list({ page: 1, size: 2, user_id: 'lister' });
    const page3 = await env.store.list({ page: 3, size: 2, user_id: 'lister' });
    assert.equal(page1.total, 5);
    assert.deepEqual(
      page1.records.map((r) => r.token),
      [mine[4], mine[3]],
    );
    assert.deepEqual(
      page3.records.map((r) => r.token),
      [mine[0]],
    );
    const odd = await env.store.list({ page: 1, size: 10, user_id: 'lister', team_id: 'odd' });
    assert.deepEqual(
      odd.records.map((r) => r.token),
      [mine[3], mine[1]],
    );
    assert.equal((await env.store.list({ page: 1, size: 10, key_hash: mine[2] })).total, 1);
  });

  it('moves a key item of an earlier version (indexed itself) to a listing entry when listing', async () => {
    const { record } = await env.store.create({ user_id: 'legacy-lister' });
    const key = { pk: keyPartition(record.token), sk: 'KEY' };
    // What an earlier version wrote: gsi1pk on the key item, no LIST entry.
    await env.dynamo.clients.doc.send(
      new UpdateCommand({
        TableName: env.dynamo.tableName,
        Key: key,
        UpdateExpression: 'SET gsi1pk = :k, gsi1sk = :s',
        ExpressionAttributeValues: { ':k': 'KEYS', ':s': `${record.created_at}#${record.token}` },
      }),
    );
    await env.dynamo.clients.doc.send(new DeleteCommand({ TableName: env.dynamo.tableName, Key: { pk: key.pk, sk: 'LIST' } }));
    const listed = await env.store.list({ page: 1, size: 10, user_id: 'legacy-lister' });
    assert.deepEqual(
      listed.records.map((r) => r.token),
      [record.token],
    );
    const after = await env.dynamo.clients.doc.send(new GetCommand({ TableName: env.dynamo.tableName, Key: key }));
    assert.equal(after.Item?.gsi1pk, undefined, 'taken out of the index');
    const again = await env.store.list({ page: 1, size: 10, user_id: 'legacy-lister' });
    assert.deepEqual(
      again.records.map((r) => r.token),
      [record.token],
      'listed once, through its new entry',
    );
  });

  it('keeps expired keys readable until their ttl, then treats them as gone', async () => {
    const start = env.clock();
    const { record } = await env.store.create({ duration: '30s', key_alias: 'short-lived' });
    assert.equal(record.expires, new Date(start + 30_000).toISOString());
    assert.equal(record.ttl, Math.ceil((start + 30_000) / 1000) + EXPIRED_KEY_RETENTION_SECONDS);
    env.clock.advance(31_000);
    assert.ok(await env.store.getByHash(record.token), 'expired but still readable');
    env.clock.advance(EXPIRED_KEY_RETENTION_SECONDS * 1000);
    assert.equal(await env.store.getByHash(record.token), undefined, 'past ttl: gone even before DynamoDB deletes it');
    // Its alias is free again (the orphaned claim is taken over).
    const again = await env.store.create({ key_alias: 'short-lived' });
    assert.equal((await env.store.getByAlias('short-lived'))?.token, again.record.token);
    const updated = await env.store.update(again.record.token, { duration: '1h' });
    assert.ok(updated.ttl);
    const unexpiring = await env.store.update(again.record.token, { duration: null });
    assert.equal(unexpiring.expires, undefined);
    assert.equal(unexpiring.ttl, undefined);
  });

  it('respects a fresh orphaned alias claim and takes over a stale one', async () => {
    const orphan = { pk: aliasPartition('orphan'), sk: 'ALIAS', token: hashSecret('sk-never-written'), claimed_at: new Date(env.clock()).toISOString() };
    await env.dynamo.clients.doc.send(new PutCommand({ TableName: env.dynamo.tableName, Item: orphan }));
    await assert.rejects(env.store.create({ key_alias: 'orphan' }), isStatus(400, 'key_alias'));
    env.clock.advance(ALIAS_CLAIM_GRACE_MS + 1);
    const { record } = await env.store.create({ key_alias: 'orphan' });
    assert.equal((await env.store.getByAlias('orphan'))?.token, record.token);
  });

  it('survives a restart of the embedded store (LevelDB on disk)', async () => {
    const { secret } = await env.store.create({ key_alias: 'persistent', models: ['x.y'] });
    env = await env.restart();
    const found = await env.store.getBySecret(secret);
    assert.equal(found?.key_alias, 'persistent');
    assert.deepEqual(found?.models, ['x.y']);
  });
});
