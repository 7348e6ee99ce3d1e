/** The AWS pair of a key (lambda/keys/aws-credentials.ts): shape, determinism and independence. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AwsCredentialDeriver, generateAccessKeyId, isAccessKeyId } from '../../lambda/keys/aws-credentials.js';
import { hashSecret } from '../../lambda/keys/secrets.js';

const SECRET_A = 'signing-secret-a-0123456789abcdef0123456789';
const SECRET_B = 'signing-secret-b-0123456789abcdef0123456789';
const deriver = (secret: string) => new AwsCredentialDeriver(async () => secret);

describe('AWS credential pairs', () => {
  it("access key ids have AWS's length and alphabet, a prefix no AWS key has, and do not repeat", () => {
    const ids = new Set(Array.from({ length: 2000 }, generateAccessKeyId));
    assert.equal(ids.size, 2000);
    for (const id of ids) {
      assert.equal(id.length, 20);
      assert.ok(isAccessKeyId(id), id);
    }
    assert.ok(!isAccessKeyId('AKIAIOSFODNN7EXAMPLE'));
    assert.ok(!isAccessKeyId('RELAY'));
  });

  it("a key's secret depends on its token and on the signing secret, and on nothing else", async () => {
    const token = hashSecret('sk-one');
    const a = await deriver(SECRET_A).secretFor(token);
    assert.equal(await deriver(SECRET_A).secretFor(token), a, 'deterministic, so the relay can recompute it');
    assert.notEqual(await deriver(SECRET_B).secretFor(token), a, 'another signing secret, another key secret');
    assert.notEqual(await deriver(SECRET_A).secretFor(hashSecret('sk-two')), a);
    assert.match(a, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(!a.includes(token.slice(0, 8)));
  });

  it("the master key's pair is derived, stable, and changes with the master key", async () => {
    const one = await deriver(SECRET_A).masterPair('master-one');
    assert.deepEqual(await deriver(SECRET_A).masterPair('master-one'), one);
    assert.ok(isAccessKeyId(one.aws_access_key_id));
    const two = await deriver(SECRET_A).masterPair('master-two');
    assert.notEqual(two.aws_access_key_id, one.aws_access_key_id);
    assert.notEqual(two.aws_secret_access_key, one.aws_secret_access_key);
    // The master secret is the same derivation as a virtual key's, over the master key's hash.
    assert.equal(one.aws_secret_access_key, await deriver(SECRET_A).secretFor(hashSecret('master-one')));
  });

  it('an unreadable signing secret fails the derivation (callers fail closed)', async () => {
    const broken = new AwsCredentialDeriver(async () => {
      throw new Error('Secrets Manager unreachable');
    });
    await assert.rejects(broken.secretFor(hashSecret('sk-one')), /unreachable/);
  });
});
