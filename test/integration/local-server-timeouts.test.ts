/**
 * Issue 12, item 2: the local server's timeouts and connection cap, set small through the
 * RELAY_* variables `npm start` reads. Each test waits for the timeout to act (no timing is
 * asserted); without it the connection would stay open and the test would time out instead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type net from 'node:net';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';
import { waitFor } from './accounting-harness.js';
import { closed, connect, h2Session, httpHead, readAnswer, startLocal, type LocalUnderTest } from './local-server-harness.js';

const CONVERSE = `/bedrock/model/${encodeURIComponent('us.amazon.nova-micro-v1:0')}/converse`;
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'slowly' }] }] });
const auth = { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' };
const TEST = { timeout: 20_000 };

describe('timeouts', () => {
  let relay: LocalUnderTest;
  before(async () => {
    relay = await startLocal({
      env: {
        RELAY_HEADERS_TIMEOUT_MS: '400',
        RELAY_BODY_TIMEOUT_MS: '1000',
        RELAY_KEEP_ALIVE_TIMEOUT_MS: '400',
        RELAY_H2_IDLE_TIMEOUT_MS: '400',
      },
    });
  });
  after(async () => relay.close());

  it('a connection that sends nothing is closed', TEST, async () => {
    const socket = await connect(relay.port);
    assert.equal(await closed(socket), '');
  });

  it('a request head that never completes gets 408 and the connection is closed', TEST, async () => {
    const socket = await connect(relay.port);
    socket.write('POST /bedrock/model/x/converse HTTP/1.1\r\nHost: 127.0.0.1\r\nx-partial: ');
    assert.match(await closed(socket), /^HTTP\/1\.1 408 /);
  });

  it('a body that stops arriving gets 408 in the API dialect of its path, and the connection is closed', TEST, async () => {
    const socket = await connect(relay.port);
    const received = closed(socket);
    socket.write(`${httpHead('POST', '/bedrock/anthropic/v1/messages', { ...auth, 'content-length': '1000' })}{"model":`);
    const answer = await received;
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.match(answer, /connection: close/i);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.match(body.error.message, /stopped arriving/);
    assert.equal(relay.fake.requests.length, 0, 'nothing went upstream');
    assert.equal(relay.local.emulator.stats().bufferedRequestBytes, 0);
  });

  it('a body that keeps progressing is not cut, even when it takes longer than the idle timeout in total', TEST, async () => {
    const socket = await connect(relay.port);
    socket.write(httpHead('POST', CONVERSE, { ...auth, 'content-length': String(BODY.length) }));
    const answer = readAnswer(socket);
    const pieces = BODY.match(/.{1,6}/gs)!;
    // One piece every 150 ms: far inside the 1 s idle timeout, beyond it in total.
    for (const piece of pieces.slice(0, -1)) {
      socket.write(piece);
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    socket.write(pieces.at(-1)!);
    assert.ok(pieces.length * 150 > 1000);
    const { status, body } = await answer;
    assert.equal(status, 200, body);
    socket.destroy();
  });

  it('an idle keep-alive connection is closed after its response', TEST, async () => {
    const socket = await connect(relay.port);
    const done = closed(socket);
    socket.write(httpHead('GET', '/health/liveliness', {}));
    const answer = await readAnswer(socket);
    assert.equal(answer.status, 200);
    assert.match(answer.headers['keep-alive'] ?? '', /timeout=0|timeout=1/);
    await done;
  });

  it('an idle h2 session is closed (GOAWAY)', TEST, async () => {
    const { session } = await h2Session(relay.port);
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
    const stream = session.request({ ':path': '/health/liveliness' });
    stream.resume();
    await new Promise((resolve) => stream.once('end', resolve));
    await goaway;
    await new Promise((resolve) => (session.closed ? resolve(undefined) : session.once('close', resolve)));
  });
});

describe('connection cap', () => {
  const CAP = 8;
  let relay: LocalUnderTest;
  before(async () => {
    relay = await startLocal({ env: { RELAY_MAX_CONNECTIONS: String(CAP) } });
  });
  after(async () => relay.close());

  it(`beyond ${CAP} connections a new one is closed at once; the server answers as soon as one is free`, TEST, async () => {
    const held: net.Socket[] = [];
    for (let i = 0; i < CAP; i++) held.push(await connect(relay.port));
    await waitFor(() => (relay.local.emulator.stats().connections === CAP ? true : undefined));

    for (let i = 0; i < 3; i++) {
      const extra = await connect(relay.port);
      extra.write(httpHead('GET', '/health/liveliness', {}));
      assert.equal(await closed(extra), '', 'the connection over the cap got no answer');
    }

    held.pop()!.destroy();
    await waitFor(() => (relay.local.emulator.stats().connections < CAP ? true : undefined));
    const socket = await connect(relay.port);
    socket.write(httpHead('GET', '/health/liveliness', {}));
    assert.equal((await readAnswer(socket)).status, 200);
    socket.destroy();
    for (const s of held) s.destroy();
  });
});
