import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyCache } from '../../lambda/keys/cache.js';
import type { KeyRecord } from '../../lambda/keys/types.js';
import { keyRecord } from '../support/key-record.js';

function record(token: string, blocked = false): KeyRecord {
  return keyRecord({ token, blocked });
}

function clock(start = 0) {
  let now = start;
  const fn = () => now;
  return Object.assign(fn, { advance: (ms: number) => void (now += ms) });
}

/** A loader that answers from a mutable "truth" and counts its calls. */
function loader(truth: Map<string, KeyRecord>) {
  let calls = 0;
  return {
    load: (token: string) => async () => {
      calls++;
      return truth.get(token);
    },
    get calls() {
      return calls;
    },
  };
}

describe('key cache', () => {
  it('serves a record for ttl, then reloads (the staleness bound)', async () => {
    const now = clock();
    const truth = new Map([['t', record('t')]]);
    const source = loader(truth);
    const cache = new KeyCache({ ttlSeconds: 30, clock: now });
    assert.equal((await cache.getOrLoad('t', source.load('t')))?.blocked, false);
    truth.set('t', record('t', true));
    now.advance(29_999);
    assert.equal((await cache.getOrLoad('t', source.load('t')))?.blocked, false, 'within the bound the old record may be served');
    now.advance(1);
    assert.equal((await cache.getOrLoad('t', source.load('t')))?.blocked, true, 'at the bound the change is seen');
    assert.equal(source.calls, 2);
  });

  it('makes invalidation immediate', async () => {
    const truth = new Map([['t', record('t')]]);
    const source = loader(truth);
    const cache = new KeyCache({ clock: clock() });
    await cache.getOrLoad('t', source.load('t'));
    truth.set('t', record('t', true));
    cache.invalidate('t');
    assert.equal((await cache.getOrLoad('t', source.load('t')))?.blocked, true);
  });

  it('remembers unknown keys only briefly, so keys created elsewhere work soon', async () => {
    const now = clock();
    const truth = new Map<string, KeyRecord>();
    const source = loader(truth);
    const cache = new KeyCache({ ttlSeconds: 30, clock: now });
    assert.equal(await cache.getOrLoad('new', source.load('new')), undefined);
    truth.set('new', record('new'));
    now.advance(4_999);
    assert.equal(await cache.getOrLoad('new', source.load('new')), undefined);
    now.advance(1);
    assert.ok(await cache.getOrLoad('new', source.load('new')));
    assert.equal(new KeyCache({ ttlSeconds: 2 }).negativeTtlMs, 2000, 'never longer than the positive ttl');
  });

  it('shares one store read among concurrent lookups', async () => {
    const truth = new Map([['t', record('t')]]);
    const source = loader(truth);
    const cache = new KeyCache({ clock: clock() });
    await Promise.all(Array.from({ length: 20 }, () => cache.getOrLoad('t', source.load('t'))));
    assert.equal(source.calls, 1);
  });

  it('does not let a read that raced an invalidation repopulate the cache', async () => {
    const cache = new KeyCache({ clock: clock() });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const stale = cache.getOrLoad('t', async () => {
      await gate;
      return record('t', false);
    });
    cache.invalidate('t');
    release();
    assert.equal((await stale)?.blocked, false);
    assert.equal((await cache.getOrLoad('t', async () => record('t', true)))?.blocked, true);
  });

  it('never caches failures', async () => {
    const cache = new KeyCache({ clock: clock() });
    await assert.rejects(cache.getOrLoad('t', async () => Promise.reject(new Error('store down'))));
    assert.ok(await cache.getOrLoad('t', async () => record('t')));
  });

  it('stays within maxEntries', async () => {
    const cache = new KeyCache({ clock: clock(), maxEntries: 100 });
    for (let i = 0; i < 1000; i++) await cache.getOrLoad(`k${i}`, async () => undefined);
    assert.equal(cache.size, 100);
  });

  it('caches nothing with ttl 0', async () => {
    const truth = new Map([['t', record('t')]]);
    const source = loader(truth);
    const cache = new KeyCache({ ttlSeconds: 0, clock: clock() });
    await cache.getOrLoad('t', source.load('t'));
    await cache.getOrLoad('t', source.load('t'));
    assert.equal(source.calls, 2);
  });
});
