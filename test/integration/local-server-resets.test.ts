/**
 * Issue 12, item 1: nothing on a socket can end the local server. Connections are reset
 * (TCP RST, socket.resetAndDestroy()) at every phase of a request, over HTTP/1.1 and h2c:
 * before any byte, mid-head, mid-body, mid-response (several h2 streams in flight on one
 * session). Afterwards the same server answers /health/liveliness and a normal call from the
 * official SDK, and every call that was cut mid-response has its usage recorded (read back
 * through the admin API), while calls cut before their body was complete never went upstream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { runtimeClient } from '../support/clients.js';
import { admin, createKey, waitFor } from './accounting-harness.js';
import { closed, connect, firstBytes, h2Session, httpHead, startLocal, type LocalUnderTest } from './local-server-harness.js';

const STREAM_PATH = `/bedrock/model/${encodeURIComponent('us.amazon.nova-micro-v1:0')}/converse-stream`;
const STREAM_BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'cut me off' }] }] });
const H1_CUT = 4;
const H2_STREAMS = 6;

let relay: LocalUnderTest;
let key: { key: string; token: string };

before(async () => {
  // Frames 50 ms apart: a streamed answer is still flowing when the client goes.
  relay = await startLocal({ fake: { frameDelayMs: 50 } });
  key = await createKey(relay.url, { key_alias: 'resets' });
});
after(async () => {
  await relay.close();
});

const written = (socket: import('node:net').Socket, data: string | Buffer) => new Promise<void>((resolve) => socket.write(data, () => resolve()));

async function resetBeforeAnyByte(times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    const socket = await connect(relay.port);
    const done = closed(socket);
    socket.resetAndDestroy();
    await done;
  }
}

describe('connection resets at every phase', () => {
  it('HTTP/1.1: before any byte, mid-head, mid-body, mid-response', async () => {
    await resetBeforeAnyByte(5);

    for (let i = 0; i < 3; i++) {
      const socket = await connect(relay.port);
      await written(socket, `POST ${STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nauthori`);
      socket.resetAndDestroy();
    }

    for (let i = 0; i < 3; i++) {
      const socket = await connect(relay.port);
      const head = httpHead('POST', STREAM_PATH, { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'content-length': '5000' });
      await written(socket, head + STREAM_BODY.slice(0, 20));
      socket.resetAndDestroy();
    }

    // Mid-response: the answer has started (status line and first bytes seen), then RST.
    await Promise.all(
      Array.from({ length: H1_CUT }, async () => {
        const socket = await connect(relay.port);
        const first = firstBytes(socket);
        socket.write(
          httpHead('POST', STREAM_PATH, {
            authorization: `Bearer ${key.key}`,
            'content-type': 'application/json',
            'content-length': String(STREAM_BODY.length),
          }) + STREAM_BODY,
        );
        assert.match(await first, /^HTTP\/1\.1 200/);
        socket.resetAndDestroy();
      }),
    );
  });

  it('h2c: mid-preface, mid-frame, mid-body, several streams mid-response', async () => {
    // Half of the connection preface, then RST.
    for (let i = 0; i < 3; i++) {
      const socket = await connect(relay.port);
      await written(socket, 'PRI * HTTP/2.0\r\n');
      socket.resetAndDestroy();
    }
    // The preface, an empty SETTINGS frame, and a HEADERS frame that promises 100 bytes and brings 10.
    for (let i = 0; i < 3; i++) {
      const socket = await connect(relay.port);
      const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
      const headers = Buffer.concat([Buffer.from([0, 0, 100, 1, 4, 0, 0, 0, 1]), Buffer.alloc(10, 0x82)]);
      await written(socket, Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), settings, headers]));
      socket.resetAndDestroy();
    }
    // A request whose body is half sent.
    for (let i = 0; i < 3; i++) {
      const { session, socket } = await h2Session(relay.port);
      const stream = session.request({
        ':method': 'POST',
        ':path': STREAM_PATH,
        authorization: `Bearer ${key.key}`,
        'content-type': 'application/json',
        'content-length': '5000',
      });
      stream.on('error', () => undefined);
      await new Promise<void>((resolve) => stream.write(STREAM_BODY.slice(0, 20), () => resolve()));
      socket.resetAndDestroy();
    }
    // Several streams on one session, each with its answer flowing, then the TCP connection reset.
    const { session, socket } = await h2Session(relay.port);
    await Promise.all(
      Array.from({ length: H2_STREAMS }, async () => {
        const stream = session.request({ ':method': 'POST', ':path': STREAM_PATH, authorization: `Bearer ${key.key}`, 'content-type': 'application/json' });
        stream.on('error', () => undefined);
        stream.end(STREAM_BODY);
        const status = await new Promise<number>((resolve) => stream.once('response', (headers) => resolve(Number(headers[':status']))));
        assert.equal(status, 200);
        await new Promise((resolve) => stream.once('data', resolve));
      }),
    );
    socket.resetAndDestroy();
    session.destroy();
  });

  it('afterwards: the server answers, and the usage of every call cut mid-response is recorded', async () => {
    const health = await fetch(`${relay.url}/health/liveliness`);
    assert.equal(health.status, 200);

    // The official SDK, HTTP/2 by default, with the same virtual key.
    const client = runtimeClient(relay.url, key.key);
    try {
      const answer = await client.send(
        new ConverseCommand({ modelId: 'us.amazon.nova-micro-v1:0', messages: [{ role: 'user', content: [{ text: 'still there?' }] }] }),
      );
      assert.ok(answer.usage && answer.usage.outputTokens! > 0);
    } finally {
      client.destroy();
    }

    const expected = H1_CUT + H2_STREAMS + 1;
    // Usage is written after the last byte (or the abort): read it back until all calls have settled.
    const requests = await waitFor(async () => {
      const info = await admin(relay.url, 'GET', `/key/info?key=${key.token}`);
      const totals = (info.json.info as { usage_totals?: { requests?: number } } | undefined)?.usage_totals;
      return totals?.requests === expected ? totals.requests : undefined;
    }, 15_000).catch(async () => {
      const info = await admin(relay.url, 'GET', `/key/info?key=${key.token}`);
      assert.fail(`expected ${expected} recorded requests, the key shows ${JSON.stringify((info.json.info as Record<string, unknown>)?.usage_totals)}`);
    });
    assert.equal(requests, expected);
    // Calls cut before their body was complete never reached Bedrock; the others did, signed.
    assert.equal(relay.fake.requests.length, expected);
    assert.ok(relay.fake.requests.every((r) => r.signature.valid));
    assert.equal(relay.local.emulator.stats().bufferedRequestBytes, 0, 'no request bytes left reserved');
  });
});
