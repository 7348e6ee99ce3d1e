/**
 * Request smuggling and header injection against the local server, over raw TCP so that the
 * bytes are exactly the attack (an HTTP client library would refuse to send most of them):
 * CR/LF tricks in header values, duplicate and conflicting Content-Length, Content-Length with
 * Transfer-Encoding, obfuscated Transfer-Encoding, oversized headers. Each must be refused (4xx
 * or a closed connection) and nothing of it may reach Bedrock. Then what does cross: the
 * client's credentials never reach Bedrock, and no header can choose the upstream host.
 */
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FAKE_CREDENTIALS, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';

const CONVERSE = '/bedrock/model/amazon.nova-micro-v1:0/converse';
const BODY = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });
const AUTH = `authorization: Bearer ${TEST_MASTER_KEY}`;

let fake: FakeBedrock;
let relay: RelayUnderTest;
let port: number;

before(async () => {
  fake = await startFakeBedrock();
  relay = await startRelay({ fake });
  port = Number(new URL(relay.url).port);
});
after(async () => {
  await relay.close();
  await fake.close();
});
beforeEach(() => fake.reset());

interface Exchange {
  /** Status codes of every response on the connection, in order. */
  readonly statuses: number[];
  readonly raw: string;
  /** The server closed the connection. */
  readonly closed: boolean;
}

/**
 * Writes `bytes` on a fresh connection and collects what comes back until the server closes it
 * or goes quiet (a server that waits for more of a broken request is as good as a refusal, so
 * long as nothing goes upstream): `quietMs` without data once it has answered, `firstByteMs`
 * before. The first bound is generous because an accepted call reaches the key store and the
 * fake Bedrock first, which on a loaded machine can take far longer than a quiet gap.
 */
function exchange(bytes: string | Buffer, quietMs = 400, firstByteMs = 10_000): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let raw = '';
    let timer: NodeJS.Timeout;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      const statuses = [...raw.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1]));
      resolve({ statuses, raw, closed });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), raw === '' ? firstByteMs : quietMs);
    };
    socket.on('data', (data: Buffer) => {
      raw += data.toString('latin1');
      arm();
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? finish(true) : reject(error)));
    socket.write(bytes);
    arm();
  });
}

const request = (lines: readonly string[], body = ''): string => `${lines.join('\r\n')}\r\n\r\n${body}`;

/** Refused: a 4xx, or the connection closed without any answer. Never a 2xx or a 5xx. */
function assertRefused(result: Exchange, label: string, allowed: readonly number[] = [400, 413, 431]): void {
  if (result.statuses.length === 0) {
    assert.ok(result.closed || result.raw === '', `${label}: no answer, yet the connection stayed open with data`);
  } else {
    assert.ok(allowed.includes(result.statuses[0]!), `${label}: answered ${result.statuses[0]} (${result.raw.slice(0, 120).replace(/\r\n/g, ' | ')})`);
  }
  assert.equal(fake.requests.length, 0, `${label}: something reached Bedrock`);
}

describe('request smuggling over raw TCP', () => {
  it('a sanity request on the same path is accepted (so the refusals below mean something)', async () => {
    const result = await exchange(
      request(
        [`POST ${CONVERSE} HTTP/1.1`, 'Host: relay', AUTH, 'Content-Type: application/json', `Content-Length: ${BODY.length}`, 'Connection: close'],
        BODY,
      ),
    );
    assert.deepEqual(result.statuses, [200], result.raw.slice(0, 200));
    assert.equal(fake.requests.length, 1);
  });

  it('duplicate Content-Length with different values → 400, nothing upstream', async () => {
    const result = await exchange(
      request(
        [`POST ${CONVERSE} HTTP/1.1`, 'Host: relay', AUTH, 'Content-Type: application/json', `Content-Length: ${BODY.length}`, 'Content-Length: 5'],
        BODY,
      ),
    );
    assertRefused(result, 'duplicate Content-Length');
  });

  it('Content-Length and Transfer-Encoding together, with a request smuggled in the body → 400, neither goes upstream', async () => {
    const smuggled = request([`POST /bedrock/model/smuggled/converse HTTP/1.1`, 'Host: relay', AUTH, `Content-Length: ${BODY.length}`], BODY);
    const chunked = `0\r\n\r\n${smuggled}`;
    const result = await exchange(
      request(
        [`POST ${CONVERSE} HTTP/1.1`, 'Host: relay', AUTH, 'Content-Type: application/json', `Content-Length: ${chunked.length}`, 'Transfer-Encoding: chunked'],
        chunked,
      ),
    );
    assertRefused(result, 'CL + TE');
  });

  for (const te of ['chunked, identity', ' chunked', 'xchunked', 'chunked\t', 'Chunked ,', 'identity']) {
    it(`obfuscated Transfer-Encoding "${te.replace(/\t/g, '\\t')}" with Content-Length → refused, nothing upstream`, async () => {
      const chunked = `5\r\nhello\r\n0\r\n\r\n`;
      const result = await exchange(
        request([`POST ${CONVERSE} HTTP/1.1`, 'Host: relay', AUTH, `Content-Length: ${chunked.length}`, `Transfer-Encoding: ${te}`], chunked),
      );
      assertRefused(result, `TE "${te}"`, [400, 501]);
    });
  }

  it('a bare LF inside a header value → refused, nothing upstream', async () => {
    const result = await exchange(
      `POST ${CONVERSE} HTTP/1.1\r\nHost: relay\r\n${AUTH}\r\nx-amzn-bedrock-trace: ENABLED\nX-Injected: yes\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    );
    // Node may treat a bare LF as a line end (then X-Injected is just a header the relay drops);
    // what must never happen is X-Injected arriving upstream.
    if (result.statuses[0] === 200) assert.equal(fake.requests[0]?.headers['x-injected'], undefined);
    else assertRefused(result, 'bare LF');
  });

  it('a bare CR inside a header value → 400, nothing upstream', async () => {
    const result = await exchange(
      `POST ${CONVERSE} HTTP/1.1\r\nHost: relay\r\n${AUTH}\r\nx-amzn-bedrock-trace: ENABLED\rX-Injected: yes\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    );
    assertRefused(result, 'bare CR');
  });

  it('obs-fold (a header continued on the next line) cannot smuggle a header upstream', async () => {
    const result = await exchange(
      `POST ${CONVERSE} HTTP/1.1\r\nHost: relay\r\n${AUTH}\r\nx-amzn-bedrock-trace: ENABLED\r\n x-amz-security-token: evil\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`,
    );
    if (result.statuses[0] === 200) {
      const upstream = fake.requests[0]!;
      assert.equal(upstream.headers['x-amz-security-token'], FAKE_CREDENTIALS.sessionToken);
      assert.ok(!String(upstream.headers['x-amzn-bedrock-trace'] ?? '').includes('evil'), 'a folded value must not be forwarded');
    } else {
      assertRefused(result, 'obs-fold');
    }
  });

  it('CRLF injected into a forwarded header cannot add a header upstream', async () => {
    // The injected line is, on the wire, just another header of the client's: the relay must
    // drop it (x-amz-* are never forwarded) and sign with its own.
    const result = await exchange(
      request(
        [
          `POST ${CONVERSE} HTTP/1.1`,
          'Host: relay',
          AUTH,
          'x-amzn-bedrock-trace: ENABLED',
          'x-amz-security-token: injected',
          'x-amz-date: 20000101T000000Z',
          `Content-Length: ${BODY.length}`,
          'Connection: close',
        ],
        BODY,
      ),
    );
    assert.deepEqual(result.statuses, [200]);
    const upstream = fake.requests[0]!;
    assert.equal(upstream.signature.valid, true);
    assert.equal(upstream.headers['x-amz-security-token'], FAKE_CREDENTIALS.sessionToken);
    assert.notEqual(upstream.headers['x-amz-date'], '20000101T000000Z');
    assert.equal(upstream.headers['x-amzn-bedrock-trace'], 'ENABLED');
  });

  it('headers over 16 KB → 431 (or 400), nothing upstream', async () => {
    const big = 'a'.repeat(17 * 1024);
    const result = await exchange(
      request([`POST ${CONVERSE} HTTP/1.1`, 'Host: relay', AUTH, `x-amzn-bedrock-trace: ${big}`, `Content-Length: ${BODY.length}`], BODY),
    );
    assertRefused(result, 'oversized header', [431, 400]);
  });

  it('many headers adding up to over 16 KB → 431 (or 400), nothing upstream', async () => {
    const many = Array.from({ length: 400 }, (_, i) => `x-filler-${i}: ${'b'.repeat(40)}`);
    const result = await exchange(request([`POST ${CONVERSE} HTTP/1.1`, 'Host: relay', AUTH, ...many, `Content-Length: ${BODY.length}`], BODY));
    assertRefused(result, 'many headers', [431, 400]);
  });

  it('a request line with a space or NUL in the target → 400, nothing upstream', async () => {
    for (const target of ['/bedrock/model/a b/converse', '/bedrock/model/a\u0000b/converse']) {
      const result = await exchange(request([`POST ${target} HTTP/1.1`, 'Host: relay', AUTH, `Content-Length: ${BODY.length}`], BODY));
      assertRefused(result, JSON.stringify(target));
    }
  });
});

describe('what reaches Bedrock', () => {
  it("the client's Authorization, x-api-key, cookies and proxy credentials never do", async () => {
    const result = await exchange(
      request(
        [
          `POST ${CONVERSE} HTTP/1.1`,
          'Host: relay',
          AUTH,
          `x-api-key: ${TEST_MASTER_KEY}`,
          'Cookie: session=secret-cookie',
          'Proxy-Authorization: Basic c2VjcmV0',
          'x-amz-content-sha256: UNSIGNED-PAYLOAD',
          'Content-Type: application/json',
          `Content-Length: ${BODY.length}`,
          'Connection: close',
        ],
        BODY,
      ),
    );
    assert.deepEqual(result.statuses, [200]);
    const upstream = fake.requests[0]!;
    assert.equal(upstream.signature.valid, true);
    assert.match(String(upstream.headers.authorization), /^AWS4-HMAC-SHA256 Credential=ASIAFAKEBEDROCKTEST1\//);
    for (const name of ['x-api-key', 'cookie', 'proxy-authorization']) assert.equal(upstream.headers[name], undefined, name);
    const wire = upstream.rawHeaders.join('\n');
    assert.ok(!wire.includes(TEST_MASTER_KEY) && !wire.includes('secret-cookie') && !wire.includes('c2VjcmV0'));
    assert.notEqual(upstream.headers['x-amz-content-sha256'], 'UNSIGNED-PAYLOAD', 'the payload hash is the relay’s own');
  });

  it('nor over HTTP/2 (the AWS SDK default)', async () => {
    const session = http2.connect(relay.url);
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': CONVERSE,
          authorization: `Bearer ${TEST_MASTER_KEY}`,
          'x-api-key': TEST_MASTER_KEY,
          'content-type': 'application/json',
        });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.end(BODY);
      });
      assert.equal(status, 200);
    } finally {
      session.close();
    }
    const upstream = fake.requests[0]!;
    assert.equal(upstream.headers['x-api-key'], undefined);
    assert.ok(!upstream.rawHeaders.join('\n').includes(TEST_MASTER_KEY));
  });

  it('Host, X-Forwarded-Host and an absolute-form target cannot redirect the upstream', async () => {
    const attempts = [
      request(
        [
          `POST ${CONVERSE} HTTP/1.1`,
          'Host: evil.example',
          AUTH,
          'X-Forwarded-Host: evil.example',
          'Forwarded: host=evil.example',
          `Content-Length: ${BODY.length}`,
          'Connection: close',
        ],
        BODY,
      ),
      request([`POST http://evil.example${CONVERSE} HTTP/1.1`, 'Host: evil.example', AUTH, `Content-Length: ${BODY.length}`, 'Connection: close'], BODY),
    ];
    for (const attempt of attempts) {
      fake.reset();
      const result = await exchange(attempt);
      const status = result.statuses[0];
      if (status === 200) {
        // It went somewhere: it must have been the configured upstream, with its own host.
        assert.equal(fake.requests.length, 1);
        assert.equal(fake.requests[0]!.headers.host, `127.0.0.1:${fake.port}`);
        assert.equal(fake.requests[0]!.signature.valid, true);
      } else {
        assert.ok(status !== undefined && status >= 400 && status < 500, `answered ${status}`);
        assert.equal(fake.requests.length, 0);
      }
    }
    // The plain Host: evil.example request is a valid request and must have been relayed.
    fake.reset();
    const plain = await exchange(attempts[0]!);
    assert.deepEqual(plain.statuses, [200]);
  });
});
