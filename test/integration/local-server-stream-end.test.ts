/**
 * How an invocation's response stream ends on the local server's Function URL emulator: an answer
 * delivered in full ends the stream with 'finish', as the Lambda runtime's does, and the emulator
 * never destroys it as if the client had left (on HTTP/1.1 it did, on every call: the response's
 * 'close' comes a tick before the stream's 'finish'; Node then builds an ERR_STREAM_DESTROYED with
 * its stack for the stream's pending end callbacks, about 1.5 % of the local server's CPU). A
 * client that leaves mid-answer still gets the stream destroyed, so the relay stops the upstream
 * call. Over HTTP/1.1 and cleartext HTTP/2.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { LambdaResponseStream } from '../../lambda/runtime/function-url.js';
import { startFunctionUrlEmulator, type RunningEmulator } from '../../lambda/local/function-url-emulator.js';

interface Ending {
  /** What end()'s callback received. */
  readonly endError: string | undefined;
  /** 'finish' or 'close' without 'finish' (destroyed). */
  readonly outcome: 'finish' | 'destroyed';
  /** Whether destroy() was called on the stream before it finished (its own autoDestroy comes after). */
  readonly destroyedEarly: boolean;
}

let emulator: RunningEmulator;
let endings: Ending[] = [];
const invocationsDone: (() => void)[] = [];

function nextEnding(): Promise<Ending> {
  return new Promise((resolve) => {
    invocationsDone.push(() => resolve(endings.at(-1)!));
  });
}

before(async () => {
  emulator = await startFunctionUrlEmulator({
    handler: async (event, stream: LambdaResponseStream) => {
      const slow = event.rawPath === '/slow';
      let destroyedEarly = false;
      const destroy = stream.destroy.bind(stream);
      stream.destroy = (error?: Error) => {
        if (!stream.writableFinished) destroyedEarly = true;
        return destroy(error);
      };
      const outcome = new Promise<'finish' | 'destroyed'>((resolve) => {
        stream.once('finish', () => resolve('finish'));
        stream.once('close', () => resolve(stream.writableFinished ? 'finish' : 'destroyed'));
      });
      stream.on('error', () => undefined);
      const body = awslambda.HttpResponseStream.from(stream, { statusCode: 200, headers: { 'content-type': 'text/plain' } });
      body.write('first;');
      // /slow: the rest comes 1 s later, so a client can leave in between (ample time for the
      // server to see it go, even on a loaded CI machine).
      if (slow) await new Promise((resolve) => setTimeout(resolve, 1_000));
      const endError = await new Promise<string | undefined>((resolve) => {
        if (body.destroyed) return resolve('destroyed before end');
        body.end('last', (error?: Error | null) => resolve(error ? ((error as NodeJS.ErrnoException).code ?? error.message) : undefined));
      });
      const ended = await outcome;
      // The emulator's reaction to the response's 'close' comes a tick after the answer's end.
      await new Promise((resolve) => setTimeout(resolve, 20));
      endings.push({ endError, outcome: ended, destroyedEarly });
      invocationsDone.shift()?.();
    },
  });
});
after(async () => {
  await emulator.close();
});

function h1Get(path: string, agent: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(`${emulator.url}${path}`, { agent }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

describe('HTTP/1.1', () => {
  it('an answer received in full ends the stream with finish, and the emulator never destroys it (keep-alive, 5 calls)', async () => {
    endings = [];
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let call = 0; call < 5; call++) {
        const ended = nextEnding();
        assert.equal(await h1Get('/fast', agent), 'first;last');
        assert.deepEqual(await ended, { endError: undefined, outcome: 'finish', destroyedEarly: false }, `call ${call + 1}`);
      }
    } finally {
      agent.destroy();
    }
  });

  it('a client that leaves mid-answer destroys the stream', async () => {
    endings = [];
    const ended = nextEnding();
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${emulator.url}/slow`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
    });
    const ending = await ended;
    assert.equal(ending.outcome, 'destroyed');
    assert.equal(ending.destroyedEarly, true);
    assert.notEqual(ending.endError, undefined, 'end() reports the stream could not finish');
  });
});

describe('HTTP/1.1 framing', () => {
  it('pieces written with the end in one turn keep their order on a keep-alive connection (raw bytes, 2 calls)', async () => {
    // The handler writes 'first;' and 'last' and ends in the head's turn. Since Node 22 a corked
    // ServerResponse sent its final chunk before 'last', and the next response on the
    // connection then began with a stray body chunk.
    const socket = net.connect(emulator.port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    try {
      const expected: string[] = [];
      for (let call = 1; call <= 2; call++) {
        const ended = nextEnding();
        const before = received.length;
        socket.write('GET /fast HTTP/1.1\r\nHost: relay.test\r\n\r\n');
        await ended;
        // Until the answer's final chunk is in, or 2 s (a broken answer never ends with it).
        const deadline = Date.now() + 2_000;
        while (!received.slice(before).endsWith('0\r\n\r\n') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
        expected.push('6\r\nfirst;\r\n4\r\nlast\r\n0\r\n\r\n');
      }
      const bodies = received.split(/HTTP\/1\.1 200 OK\r\n[^]*?\r\n\r\n/).filter((part) => part !== '');
      assert.deepEqual(bodies, expected, JSON.stringify(received));
    } finally {
      socket.destroy();
    }
  });
});

describe('HTTP/2 (h2c)', () => {
  it('an answer received in full ends the stream with finish', async () => {
    endings = [];
    const session = http2.connect(emulator.url);
    try {
      for (let call = 0; call < 3; call++) {
        const ended = nextEnding();
        const text = await new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':path': '/fast' });
          let body = '';
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => (body += chunk));
          stream.on('end', () => resolve(body));
          stream.on('error', reject);
        });
        assert.equal(text, 'first;last');
        assert.deepEqual(await ended, { endError: undefined, outcome: 'finish', destroyedEarly: false }, `call ${call + 1}`);
      }
    } finally {
      session.close();
    }
  });

  it('a client that resets the stream mid-answer destroys it', async () => {
    endings = [];
    const session = http2.connect(emulator.url);
    try {
      const ended = nextEnding();
      const stream = session.request({ ':path': '/slow' });
      stream.on('error', () => undefined);
      await new Promise<void>((resolve) => stream.once('data', () => resolve()));
      stream.close(http2.constants.NGHTTP2_CANCEL);
      const ending = await ended;
      assert.equal(ending.outcome, 'destroyed');
      assert.equal(ending.destroyedEarly, true);
      assert.notEqual(ending.endError, undefined);
    } finally {
      session.close();
    }
  });
});
