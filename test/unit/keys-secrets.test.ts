import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { displayForm, generateSecret, hashSecret, isKeyHash, secretsEqual, tokenFromIdentifier } from '../../lambda/keys/secrets.js';
import { addDuration, parseDuration } from '../../lambda/keys/duration.js';

describe('key secrets', () => {
  it('are sk- plus 32 CSPRNG bytes in base64url', () => {
    const secret = generateSecret();
    assert.match(secret, /^sk-[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(secret.slice(3), 'base64url').length, 32);
  });

  it('do not repeat', () => {
    const secrets = new Set(Array.from({ length: 2000 }, generateSecret));
    assert.equal(secrets.size, 2000);
  });

  it('hash with SHA-256 hex over the whole secret (LiteLLM-compatible tokens)', () => {
    assert.equal(hashSecret('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const secret = generateSecret();
    assert.ok(isKeyHash(hashSecret(secret)));
    assert.notEqual(hashSecret(secret), hashSecret(secret.slice(3)));
  });

  it('display only the last four characters', () => {
    assert.equal(displayForm('sk-abcdefghijklmnopWXYZ'), 'sk-...WXYZ');
    const secret = generateSecret();
    assert.ok(!displayForm(secret).includes(secret.slice(3, -4)));
  });

  it('accept a secret or a token as identifier, nothing else', () => {
    const secret = generateSecret();
    const token = hashSecret(secret);
    assert.equal(tokenFromIdentifier(secret), token);
    assert.equal(tokenFromIdentifier(token.toUpperCase()), token);
    assert.equal(tokenFromIdentifier(` ${token} `), token);
    assert.equal(tokenFromIdentifier('not-a-key'), undefined);
    assert.equal(tokenFromIdentifier('sk-'), undefined);
    assert.equal(tokenFromIdentifier(token.slice(1)), undefined);
  });

  it('compare in constant time, correctly', () => {
    assert.ok(secretsEqual('sk-same', 'sk-same'));
    assert.ok(!secretsEqual('sk-same', 'sk-samf'));
    assert.ok(!secretsEqual('sk-same', 'sk-same-longer'));
  });
});

describe('durations', () => {
  it('parse LiteLLM units', () => {
    assert.deepEqual(parseDuration('30s'), { seconds: 30 });
    assert.deepEqual(parseDuration('30m'), { seconds: 1800 });
    assert.deepEqual(parseDuration('12h'), { seconds: 43_200 });
    assert.deepEqual(parseDuration('30d'), { seconds: 2_592_000 });
    assert.deepEqual(parseDuration('2w'), { seconds: 1_209_600 });
    assert.deepEqual(parseDuration('1mo'), { months: 1 });
  });

  it('refuse anything else', () => {
    for (const bad of ['', '30', 'd', '0d', '-1d', '1.5h', '30 days', '30D', '1y', 'permanent', '1e3s']) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });

  it('add calendar months without overflowing into the next month', () => {
    assert.equal(new Date(addDuration(Date.parse('2030-01-31T10:00:00Z'), { months: 1 })).toISOString(), '2030-02-28T10:00:00.000Z');
    assert.equal(new Date(addDuration(Date.parse('2030-03-15T00:00:00Z'), { months: 12 })).toISOString(), '2031-03-15T00:00:00.000Z');
    assert.equal(addDuration(1000, { seconds: 30 }), 31_000);
  });
});
