/**
 * Issue 12, item 3: memory before authentication is bounded. A relay call with no key, or with
 * something that cannot be a key, is refused from its head, in the dialect of its API, before
 * a body byte is buffered; request bodies buffered across all in-flight requests share one
 * budget (RELAY_MAX_BUFFERED_REQUEST_BYTES, 1 MB here), beyond which new bodies get 503 with
 * retry-after instead of growing memory; the budget is whole again once requests end.
 */
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';
import { waitFor } from './accounting-harness.js';
import { closed, connect, httpHead, readAnswer, startLocal, type LocalUnderTest } from './local-server-harness.js';

const MB = 1024 * 1024;
const CONVERSE = `/bedrock/model/${encodeURIComponent('us.amazon.nova-micro-v1:0')}/converse`;
const TEST = { timeout: 20_000 };

let relay: LocalUnderTest;
before(async () => {
  relay = await startLocal({ env: { RELAY_MAX_BUFFERED_REQUEST_BYTES: String(MB) } });
});
after(async () => relay.close());

/** Sends a head that announces a big body and none of the body: the answer must come from the head. */
async function headOnly(
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string>; body: string; socket: net.Socket }> {
  const socket = await connect(relay.port);
  socket.write(httpHead('POST', path, { 'content-type': 'application/json', 'content-length': String(5 * MB), ...headers }));
  const answer = await readAnswer(socket);
  return { ...answer, socket };
}

describe('refused before the body is read', () => {
  it('no key: 401 in each API dialect, from the head alone', TEST, async () => {
    const bedrock = await headOnly(CONVERSE, {});
    assert.equal(bedrock.status, 401);
    assert.equal(bedrock.headers['x-amzn-errortype'], 'UnrecognizedClientException');
    assert.match((JSON.parse(bedrock.body) as { message: string }).message, /Missing API key/);

    const anthropic = await headOnly('/bedrock/anthropic/v1/messages', {});
    assert.equal(anthropic.status, 401);
    assert.deepEqual((JSON.parse(anthropic.body) as { type: string; error: { type: string } }).error.type, 'authentication_error');

    const openai = await headOnly('/bedrock-mantle/v1/chat/completions', {});
    assert.equal(openai.status, 401);
    assert.equal((JSON.parse(openai.body) as { error: { code: string } }).error.code, 'invalid_api_key');
    for (const answer of [bedrock, anthropic, openai]) answer.socket.destroy();
  });

  it('a credential that cannot be a key: 401 from the head; a key-shaped one passes the screen', TEST, async () => {
    const malformed: Record<string, string>[] = [{ authorization: 'Bearer not-a-key' }, { 'x-api-key': 'sk-' }, { authorization: 'Basic dXNlcjpwYXNz' }];
    for (const headers of malformed) {
      const answer = await headOnly(CONVERSE, headers);
      assert.equal(answer.status, 401, JSON.stringify(headers));
      assert.equal(answer.headers['x-amzn-errortype'], 'UnrecognizedClientException');
      answer.socket.destroy();
    }
    assert.equal(relay.local.emulator.stats().bufferedRequestBytes, 0);
    assert.equal(relay.fake.requests.length, 0);

    // Shaped like a key (unknown to the store): past the screen, so its 5 MB meet the 1 MB budget.
    const shaped = await headOnly(CONVERSE, { authorization: `Bearer sk-${'A'.repeat(43)}` });
    assert.equal(shaped.status, 503);
    shaped.socket.destroy();

    // SigV4 (a key's AWS credentials): a well-formed header passes the screen too (the handler
    // verifies the signature once the body is in); a malformed one gets AWS's 400 from the head.
    const signature = `AWS4-HMAC-SHA256 Credential=BRLY${'A'.repeat(16)}/20261205/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
    const signed = await headOnly(CONVERSE, { authorization: signature, 'x-amz-date': '20261205T120000Z' });
    assert.equal(signed.status, 503);
    signed.socket.destroy();
    const unsigned = await headOnly(CONVERSE, { authorization: 'AWS4-HMAC-SHA256 Credential=x' });
    assert.equal(unsigned.status, 400);
    assert.equal(unsigned.headers['x-amzn-errortype'], 'IncompleteSignatureException');
    unsigned.socket.destroy();
  });

  it('a declared body over 6 MB: 413 at once', TEST, async () => {
    const socket = await connect(relay.port);
    socket.write(httpHead('POST', CONVERSE, { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-length': String(7 * MB) }));
    assert.equal((await readAnswer(socket)).status, 413);
    socket.destroy();
  });
});

describe('the buffered-bytes budget', () => {
  it('beyond the budget new bodies get 503 with retry-after; bytes come back when requests end', TEST, async () => {
    const auth = { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' };
    // Two stalled uploads that announce 400 KB each hold 800 KB of the 1 MB budget.
    const held: net.Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const socket = await connect(relay.port);
      socket.write(`${httpHead('POST', CONVERSE, { ...auth, 'content-length': String(400 * 1024) })}{"messages":`);
      held.push(socket);
    }
    await waitFor(() => (relay.local.emulator.stats().bufferedRequestBytes === 800 * 1024 ? true : undefined));

    // A third announced body does not fit: refused before it is read.
    const third = await connect(relay.port);
    third.write(httpHead('POST', '/bedrock/anthropic/v1/messages', { ...auth, 'content-length': String(400 * 1024) }));
    const refused = await readAnswer(third);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal((JSON.parse(refused.body) as { error: { type: string } }).error.type, 'overloaded_error');
    third.destroy();

    // A chunked body (no length announced) is counted as it arrives and refused when it overflows.
    const chunked = await connect(relay.port);
    chunked.write(httpHead('POST', CONVERSE, { ...auth, 'transfer-encoding': 'chunked' }));
    const chunk = Buffer.alloc(300 * 1024, 0x20);
    chunked.write(`${chunk.byteLength.toString(16)}\r\n`);
    chunked.write(chunk);
    chunked.write('\r\n');
    const overflow = await readAnswer(chunked);
    assert.equal(overflow.status, 503);
    assert.equal(overflow.headers['x-amzn-errortype'], 'ServiceUnavailableException');
    assert.ok(relay.local.emulator.stats().bufferedRequestBytes <= MB);
    chunked.destroy();

    // The stalled uploads go away: their bytes return to the budget and calls go through again.
    for (const socket of held) {
      const gone = closed(socket);
      socket.resetAndDestroy();
      await gone;
    }
    await waitFor(() => (relay.local.emulator.stats().bufferedRequestBytes === 0 ? true : undefined));
    const answer = await fetch(`${relay.url}${CONVERSE}`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'x'.repeat(700 * 1024) }] }] }),
    });
    assert.equal(answer.status, 200, await answer.clone().text());
    await answer.arrayBuffer();
  });
});
