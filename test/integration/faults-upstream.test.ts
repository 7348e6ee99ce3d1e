/**
 * Upstream faults, end to end through the local server (the Lambda handler behind the Function
 * URL emulator): Bedrock refusing connections, accepting them and never answering, resetting
 * mid-stream, stalling, and answering 5xx. Whatever happens, the client gets a typed error or a
 * cut stream, promptly; never a hung request and never a clean-looking truncated answer.
 *
 * Key-store faults (store unreachable or throttling: fail closed with 503, nothing upstream,
 * recovery) and ledger faults (write failures retried, never lost, replayable) belong with the
 * key store and the ledger: they go in test/integration/faults-keystore.test.ts and
 * faults-ledger.test.ts, driving dynalite the way test/integration/keys-harness.ts does.
 * Secrets Manager failing at cold start is in faults-secrets.test.ts (it needs a process of its
 * own: the SDK reads its endpoint from process.env).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { ConverseCommand, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { decodeEventStream, eventFrame, EVENTSTREAM_CONTENT_TYPE, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { rawRequest, runtimeClient } from '../support/clients.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';

const AUTH = { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' };
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });
/** The relay's upstream timeout in these tests. */
const UPSTREAM_TIMEOUT_MS = 300;
/** "Promptly": far above the timeout, far below a hang. Not a benchmark, a liveness bound. */
const PROMPT_MS = 5_000;

/** What a client observed: an answer (complete or cut) or a transport error, and how long it took. */
interface Observed {
  readonly status?: number;
  readonly headers?: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body ended cleanly (HTTP/1.1: the terminating chunk or the full content-length arrived). */
  readonly complete: boolean;
  readonly error?: string;
  readonly elapsedMs: number;
}

/** One HTTP/1.1 request that reports a cut stream instead of throwing it away. */
function observe(baseUrl: string, path: string, headers: Record<string, string> = AUTH, body = BODY): Promise<Observed> {
  const started = performance.now();
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (result: Omit<Observed, 'elapsedMs' | 'body'>) => {
      if (done) return;
      done = true;
      resolve({ ...result, body: Buffer.concat(chunks), elapsedMs: performance.now() - started });
    };
    const req = http.request({ hostname, port, method: 'POST', path, headers, agent: false }, (res) => {
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => finish({ status: res.statusCode, headers: res.headers, complete: res.complete }));
      res.on('aborted', () => finish({ status: res.statusCode, headers: res.headers, complete: false, error: 'aborted' }));
      res.on('error', (error) => finish({ status: res.statusCode, headers: res.headers, complete: false, error: error.message }));
      res.on('close', () => finish({ status: res.statusCode, headers: res.headers, complete: res.complete }));
    });
    req.on('error', (error) => finish({ complete: false, error: error.message }));
    // A hung request must fail the test, not the test runner.
    req.setTimeout(PROMPT_MS * 2, () => req.destroy(new Error('client gave up: the relay hung')));
    req.end(body);
  });
}

/** A port nobody listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A typed error made by the relay itself: status, Bedrock's error type header, JSON message. */
function assertTypedRelayError(observed: Observed, status: number, type: string): void {
  assert.equal(observed.status, status, `status (got ${observed.status}: ${observed.body.toString()})`);
  assert.equal(observed.headers?.['x-amzn-errortype'], type);
  assert.ok(observed.headers?.['x-amzn-requestid'], 'the relay names its request');
  assert.equal(typeof (JSON.parse(observed.body.toString()) as { message?: unknown }).message, 'string');
  assert.ok(observed.elapsedMs < PROMPT_MS, `answered in ${Math.round(observed.elapsedMs)} ms`);
}

/** Either a typed error (relay-made 5xx with x-amzn-errortype) or a cut stream; never a clean answer. */
function assertTypedErrorOrCut(observed: Observed): void {
  assert.ok(observed.elapsedMs < PROMPT_MS, `no hung request (${Math.round(observed.elapsedMs)} ms)`);
  if (observed.complete) {
    assert.ok((observed.status ?? 0) >= 500, `a complete answer must be an error, got ${observed.status}`);
    assert.ok(observed.headers?.['x-amzn-errortype'], `a complete error must be typed (x-amzn-errortype), got ${observed.body.toString()}`);
  }
}

let fake: FakeBedrock;
let relay: RelayUnderTest;

before(async () => {
  fake = await startFakeBedrock({ frameDelayMs: 5 });
  relay = await startRelay({ fake, env: { RELAY_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) } });
});
after(async () => {
  await relay.close();
  await fake.close();
});
beforeEach(() => fake.reset());

describe('upstream refusing connections', () => {
  let refusing: RelayUnderTest;
  before(async () => {
    const port = await closedPort();
    refusing = await startRelay({ fake, env: { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: `http://127.0.0.1:${port}` } });
  });
  after(() => refusing.close());

  for (const operation of ['converse', 'converse-stream']) {
    it(`${operation}: typed 502 ServiceUnavailableException at once, no hang`, async () => {
      const observed = await observe(refusing.url, `/bedrock/model/amazon.nova-micro-v1:0/${operation}`);
      assertTypedRelayError(observed, 502, 'ServiceUnavailableException');
      assert.equal(fake.requests.length, 0);
    });
  }

  it('the SDK raises the typed exception', async () => {
    const client = runtimeClient(refusing.url, TEST_MASTER_KEY, undefined, 1);
    try {
      await assert.rejects(
        client.send(new ConverseCommand({ modelId: 'amazon.nova-micro-v1:0', messages: [{ role: 'user', content: [{ text: 'x' }] }] })),
        (error: Error & { $metadata?: { httpStatusCode?: number } }) => error.name === 'ServiceUnavailableException' && error.$metadata?.httpStatusCode === 502,
      );
    } finally {
      client.destroy();
    }
  });
});

describe('upstream accepting connections but never answering', () => {
  let silent: net.Server;
  let silentRelay: RelayUnderTest;
  const sockets = new Set<net.Socket>();
  before(async () => {
    // Reads the request and says nothing: no status line, no headers.
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const { port } = silent.address() as net.AddressInfo;
    silentRelay = await startRelay({
      fake,
      env: { AWS_ENDPOINT_URL_BEDROCK_RUNTIME: `http://127.0.0.1:${port}`, RELAY_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS) },
    });
  });
  after(async () => {
    await silentRelay.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('times out into a typed 504 ModelTimeoutException', async () => {
    const observed = await observe(silentRelay.url, '/bedrock/model/amazon.nova-micro-v1:0/converse');
    assertTypedRelayError(observed, 504, 'ModelTimeoutException');
    assert.ok(observed.elapsedMs >= UPSTREAM_TIMEOUT_MS * 0.9, 'the relay waited for its timeout, not less');
  });
});

describe('upstream resetting mid-stream', () => {
  it('ConverseStream over HTTP/1.1: the frames that came, then a cut stream, not a clean end', async () => {
    const observed = await observe(relay.url, '/bedrock/model/fake.midstream-reset/converse-stream');
    assert.equal(observed.status, 200);
    assert.equal(observed.complete, false, 'the client must see the stream break');
    assert.ok(observed.elapsedMs < PROMPT_MS);
    // What arrived is whole frames, byte for byte as the fake sent them.
    assert.equal(decodeEventStream(observed.body).length, 2);
    assert.equal(await fake.requests[0]!.finished, 'reset');
  });

  it('ConverseStream through the SDK (HTTP/2): iterating the stream raises', async () => {
    const client = runtimeClient(relay.url, TEST_MASTER_KEY, undefined, 1);
    try {
      const answer = await client.send(new ConverseStreamCommand({ modelId: 'fake.midstream-reset', messages: [{ role: 'user', content: [{ text: 'x' }] }] }));
      await assert.rejects(async () => {
        for await (const _event of answer.stream!) {
          // drain
        }
      });
    } finally {
      client.destroy();
    }
  });

  it('non-streaming Converse cut halfway: the client sees a broken body, not a short 200', async () => {
    const observed = await observe(relay.url, '/bedrock/model/fake.midstream-reset/converse');
    assert.equal(observed.complete, false);
    assert.ok(observed.elapsedMs < PROMPT_MS);
  });

  it('non-streaming Converse cut halfway, through the SDK (HTTP/2): the call raises', async () => {
    const client = runtimeClient(relay.url, TEST_MASTER_KEY, undefined, 1);
    try {
      await assert.rejects(client.send(new ConverseCommand({ modelId: 'fake.midstream-reset', messages: [{ role: 'user', content: [{ text: 'x' }] }] })));
    } finally {
      client.destroy();
    }
  });
});

describe('upstream stalling (RELAY_UPSTREAM_TIMEOUT_MS=300)', () => {
  it('after two frames: the client gets those frames, then a cut stream', async () => {
    fake.override(
      (req) =>
        req.operation === 'ConverseStream'
          ? {
              kind: 'custom',
              write: async (res) => {
                res.writeHead(200, { 'content-type': EVENTSTREAM_CONTENT_TYPE });
                res.write(eventFrame('messageStart', { role: 'assistant' }));
                res.write(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Hel' } }));
                // …and nothing more, until the fake closes.
              },
            }
          : undefined,
      { times: 1 },
    );
    const observed = await observe(relay.url, '/bedrock/model/amazon.nova-micro-v1:0/converse-stream');
    assert.equal(observed.status, 200, observed.body.toString());
    assert.equal(observed.complete, false, 'a stalled stream is cut, not ended cleanly');
    assert.equal(decodeEventStream(observed.body).length, 2);
    assert.ok(observed.elapsedMs >= UPSTREAM_TIMEOUT_MS * 0.9 && observed.elapsedMs < PROMPT_MS, `cut after ${Math.round(observed.elapsedMs)} ms`);
  });

  // The fake sends status and headers, then nothing. No byte has reached the client yet (the
  // Function URL prelude goes out with the first body write), so the relay still answers a
  // typed error rather than the Function URL's generic 502.
  for (const operation of ['converse', 'converse-stream']) {
    it(`${operation}, stalled before the first byte: a typed 504, promptly`, async () => {
      const observed = await observe(relay.url, `/bedrock/model/fake.stall/${operation}`);
      assertTypedErrorOrCut(observed);
      assert.equal(observed.status, 504);
      assert.equal(observed.headers?.['x-amzn-errortype'], 'ModelTimeoutException');
    });
  }

  it('stalled before the first byte: never a hang and never a 2xx', async () => {
    for (const operation of ['converse', 'converse-stream']) {
      const observed = await observe(relay.url, `/bedrock/model/fake.stall/${operation}`);
      assert.ok(observed.elapsedMs < PROMPT_MS, `${operation}: answered in ${Math.round(observed.elapsedMs)} ms`);
      assert.ok(!observed.complete || (observed.status ?? 0) >= 500, `${operation}: got a complete ${observed.status}`);
    }
  });
});

describe('upstream 5xx (and 429) pass through untouched', () => {
  const cases = [
    { model: 'fake.internal', status: 500, type: 'InternalServerException' },
    { model: 'fake.unavailable', status: 503, type: 'ServiceUnavailableException' },
    { model: 'fake.throttle', status: 429, type: 'ThrottlingException' },
  ];
  for (const { model, status, type } of cases) {
    it(`${model}: ${status} ${type}, Bedrock's body and request id`, async () => {
      const observed = await observe(relay.url, `/bedrock/model/${model}/converse`);
      assert.equal(observed.status, status);
      assert.equal(observed.complete, true);
      assert.equal(observed.headers?.['x-amzn-errortype'], type);
      const upstream = fake.requests[0]!;
      assert.equal(fake.requests.length, 1, 'no retries by the relay: the client decides');
      // The request id is Bedrock's, so this is Bedrock's answer, not one the relay made up.
      assert.equal(observed.headers?.['x-amzn-requestid'], upstream.requestId);
      assert.match(JSON.parse(observed.body.toString()).message as string, /\S/);
    });
  }

  it('the SDK raises them as their own typed exceptions', async () => {
    const client = runtimeClient(relay.url, TEST_MASTER_KEY, undefined, 1);
    try {
      for (const { model, status, type } of cases) {
        await assert.rejects(
          client.send(new ConverseCommand({ modelId: model, messages: [{ role: 'user', content: [{ text: 'x' }] }] })),
          (error: Error & { $metadata?: { httpStatusCode?: number } }) => error.name === type && error.$metadata?.httpStatusCode === status,
        );
      }
    } finally {
      client.destroy();
    }
  });

  it('a 5xx on a streamed operation passes through as a typed error too', async () => {
    const observed = await rawRequest(relay.url, 'POST', '/bedrock/model/fake.unavailable/converse-stream', AUTH, BODY);
    assert.equal(observed.status, 503);
    assert.equal(observed.headers['x-amzn-errortype'], 'ServiceUnavailableException');
    assert.equal(observed.headers['x-amzn-requestid'], fake.requests[0]!.requestId);
  });
});
