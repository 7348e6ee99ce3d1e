/**
 * How the local server writes an answer on HTTP/1.1 (issue 12, item 5): what the handler writes
 * in one turn of the event loop leaves in one write, so a JSON answer (head, body, final chunk)
 * leaves in one syscall instead of three (head, body, final chunk); a stream's head and each
 * event still leave as they come.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';
import { connect, httpHead, startLocal, type LocalUnderTest } from './local-server-harness.js';

const CONVERSE_PATH = `/bedrock/model/${encodeURIComponent('amazon.nova-micro-v1:0')}/converse`;
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }], inferenceConfig: { maxTokens: 16 } });

let relay: LocalUnderTest;

before(async () => {
  relay = await startLocal();
});
after(async () => {
  await relay.close();
});

/** Counts the flushes (net.Socket _write/_writev: one syscall each) the server makes on the connection from `clientPort`. */
function countServerFlushes(clientPort: () => number | undefined): { count: () => number; restore: () => void } {
  const proto = net.Socket.prototype as unknown as Record<'_write' | '_writev', (...args: unknown[]) => unknown>;
  const original = { _write: proto._write, _writev: proto._writev };
  let flushes = 0;
  for (const name of ['_write', '_writev'] as const) {
    proto[name] = function (this: net.Socket, ...args: unknown[]) {
      if (this.remotePort !== undefined && this.remotePort === clientPort()) flushes++;
      return original[name].apply(this, args);
    };
  }
  return {
    count: () => flushes,
    restore: () => Object.assign(proto, original),
  };
}

describe('HTTP/1.1 writes', () => {
  it('a JSON answer (head, whole body, final chunk) leaves in one write', async () => {
    const socket = await connect(relay.port);
    const flushes = countServerFlushes(() => socket.localPort);
    try {
      const head = httpHead('POST', CONVERSE_PATH, {
        authorization: `Bearer ${TEST_MASTER_KEY}`,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(BODY)),
      });
      for (let call = 1; call <= 3; call++) {
        let answer = '';
        const complete = new Promise<void>((resolve, reject) => {
          const onData = (chunk: Buffer) => {
            answer += chunk.toString('latin1');
            if (answer.endsWith('\r\n0\r\n\r\n')) {
              socket.off('data', onData);
              resolve();
            }
          };
          socket.on('data', onData);
          socket.once('close', () => reject(new Error(`closed after ${JSON.stringify(answer)}`)));
        });
        socket.write(head + BODY);
        await complete;
        assert.match(answer, /^HTTP\/1\.1 200 /);
        assert.match(answer, /"output"/);
        // Three would be the head, the body and "0\r\n\r\n" apart: three syscalls, three wake-ups.
        assert.equal(flushes.count(), call, `after call ${call}: ${flushes.count()} writes on the connection`);
      }
    } finally {
      flushes.restore();
      socket.destroy();
    }
  });

  it("a stream's head and each event leave as they come, not held for the next", async () => {
    // Events 300 ms apart: the head and the first event must reach the client long before the second.
    const slow = await startLocal({ fake: { frameDelayMs: 300 } });
    try {
      const started = performance.now();
      const arrivals = await new Promise<{ status: number; headersAt: number; chunksAt: number[] }>((resolve, reject) => {
        const req = http.request(
          `${slow.url}/bedrock/model/${encodeURIComponent('amazon.nova-micro-v1:0')}/converse-stream`,
          { method: 'POST', headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' } },
          (res) => {
            const headersAt = performance.now() - started;
            const chunksAt: number[] = [];
            res.on('data', () => chunksAt.push(performance.now() - started));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headersAt, chunksAt }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(BODY);
      });
      assert.equal(arrivals.status, 200);
      assert.ok(arrivals.chunksAt.length >= 3, `${arrivals.chunksAt.length} pieces`);
      const last = arrivals.chunksAt.at(-1)!;
      assert.ok(arrivals.headersAt < last - 500, `head at ${arrivals.headersAt.toFixed(0)} ms, last event at ${last.toFixed(0)} ms`);
      assert.ok(arrivals.chunksAt[0]! < last - 500, `first event at ${arrivals.chunksAt[0]!.toFixed(0)} ms, last at ${last.toFixed(0)} ms`);
    } finally {
      await slow.close();
    }
  });
});
