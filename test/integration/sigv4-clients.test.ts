/**
 * Virtual keys as AWS credentials (issue 13): clients that only speak SigV4 sign with a key's
 * aws_access_key_id / aws_secret_access_key; the relay verifies the signature as AWS would,
 * applies the key's policy, limits and metering, and re-signs upstream with its own
 * credentials. Callers are the released client packages: @aws-sdk/client-bedrock-runtime
 * (this repo's pinned version and 3.704.0, which predates bearer auth),
 * @aws-sdk/client-bedrock-agent-runtime, Strands Agents and LangChain AWS. Refused requests
 * must never reach the fake Bedrock, which itself verifies the relay's signature like AWS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BedrockAgentRuntimeClient, RetrieveCommand } from '@aws-sdk/client-bedrock-agent-runtime';
import { BedrockRuntimeClient, ConverseCommand, ConverseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Hash } from '@smithy/hash-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import * as OldRuntime from 'client-bedrock-runtime-3704';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { admin as adminRequest, waitFor } from './accounting-harness.js';
import { manualClock, type ManualClock } from './keys-harness.js';
import { rawRequest, runtimeClient } from '../support/clients.js';
import { FAKE_CREDENTIALS, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, type RelayUnderTest } from '../support/relay-harness.js';

const run = promisify(execFile);
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const messages = [{ role: 'user' as const, content: [{ text: 'Hello' }] }];
const SIGNING_SECRET = randomBytes(32).toString('base64url');

interface Pair {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

interface IssuedKey {
  readonly key: string;
  readonly token: string;
  readonly pair: Pair;
}

let fake: FakeBedrock;
let dynamo: EmbeddedDynamo;
let relay: RelayUnderTest;
let clock: ManualClock;

before(async () => {
  // One fake for both hosts: it accepts the relay's bedrock and bedrock-mantle signatures.
  fake = await startFakeBedrock({ signingService: ['bedrock', 'bedrock-mantle'] });
  dynamo = await startEmbeddedDynamo();
  clock = manualClock(Date.now());
  relay = await startRelay({
    fake,
    env: { RELAY_KEYS_TABLE: dynamo.tableName, RELAY_KEY_CACHE_TTL_SECONDS: '0', RELAY_SIGV4_SECRET: SIGNING_SECRET },
    overrides: { dynamo: dynamo.clients, clock },
  });
});
after(async () => {
  await relay.close();
  await dynamo.stop().catch(() => undefined);
  await fake.close();
});
// The relay's clock follows real time unless a test moves it; SDKs sign with real time.
beforeEach(() => {
  fake.reset();
  clock.set(Date.now());
});

/** The admin API with the master key (accounting-harness's `admin`, on this file's relay). */
const admin = (path: string, body?: unknown, method = 'POST') => adminRequest(relay.url, method, path, body);

async function issue(fields: Record<string, unknown> = {}): Promise<IssuedKey> {
  const created = await admin('/key/generate', fields);
  assert.equal(created.status, 200, JSON.stringify(created.json));
  return fromAnswer(created.json);
}

function fromAnswer(json: Record<string, unknown>): IssuedKey {
  assert.match(String(json.aws_access_key_id), /^RELAY[A-Z2-7]{15}$/);
  assert.equal(typeof json.aws_secret_access_key, 'string');
  return {
    key: json.key as string,
    token: json.token as string,
    pair: { accessKeyId: json.aws_access_key_id as string, secretAccessKey: json.aws_secret_access_key as string },
  };
}

/** The SDK signing with the pair; its default HTTP/2 handler unless `http1`. */
function sigv4Client(pair: Pair, options: { http1?: boolean; clockOffsetMs?: number } = {}): BedrockRuntimeClient {
  return new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: `${relay.url}/bedrock`,
    credentials: pair,
    maxAttempts: 1,
    ...(options.http1 ? { requestHandler: new NodeHttpHandler() } : {}),
    ...(options.clockOffsetMs ? { systemClockOffset: options.clockOffsetMs } : {}),
  });
}

async function spendOf(token: string): Promise<number> {
  const info = await admin(`/key/info?key=${token}`, undefined, 'GET');
  return (info.json.info as { spend: number }).spend;
}

function rejectsWith(promise: Promise<unknown>, name: string, status: number) {
  return assert.rejects(promise, (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(error.name, name, error.message);
    assert.equal(error.$metadata?.httpStatusCode, status);
    return true;
  });
}

/** What reached the fake carries only the relay's own signature: no trace of the client's pair. */
function assertResignedUpstream(pair: Pair): void {
  assert.ok(fake.requests.length > 0);
  for (const request of fake.requests) {
    assert.equal(request.signature.valid, true);
    assert.match(String(request.headers.authorization), new RegExp(`Credential=${FAKE_CREDENTIALS.accessKeyId}/`));
    const everything = `${request.rawUrl}\n${request.rawHeaders.join('\n')}`;
    assert.ok(!everything.includes(pair.accessKeyId), 'the client access key id reached Bedrock');
  }
}

describe('the credential pair of a key', () => {
  it('generate returns it once; info and list show only the access key id; the table never holds the secret', async () => {
    const issued = await issue({ key_alias: 'pair-shown-once' });
    const info = await admin(`/key/info?key=${issued.token}`, undefined, 'GET');
    const shown = info.json.info as Record<string, unknown>;
    assert.equal(shown.aws_access_key_id, issued.pair.accessKeyId);
    assert.equal('aws_secret_access_key' in shown, false);
    const list = await admin('/key/list?return_full_object=true&key_alias=pair-shown-once', undefined, 'GET');
    assert.equal((list.json.keys as Array<Record<string, unknown>>)[0]!.aws_access_key_id, issued.pair.accessKeyId);
    assert.ok(!JSON.stringify(info.json).includes(issued.pair.secretAccessKey));
    assert.ok(!JSON.stringify(list.json).includes(issued.pair.secretAccessKey));

    const table = await dynamo.clients.doc.send(new ScanCommand({ TableName: dynamo.tableName }));
    const dump = JSON.stringify(table.Items);
    assert.ok(dump.includes(issued.pair.accessKeyId), 'the access key id is stored (it is public)');
    assert.ok(!dump.includes(issued.pair.secretAccessKey), 'the secret access key is in the table');
    assert.ok(!dump.includes(issued.key), 'the key is in the table');
  });

  it('the master key has a pair too, and it works', async () => {
    const answer = await admin('/key/master/aws-credentials', undefined, 'GET');
    assert.equal(answer.status, 200);
    const pair = { accessKeyId: answer.json.aws_access_key_id as string, secretAccessKey: answer.json.aws_secret_access_key as string };
    assert.match(pair.accessKeyId, /^RELAY[A-Z2-7]{15}$/);
    const client = sigv4Client(pair);
    const reply = await client.send(new ConverseCommand({ modelId: SONNET, messages }));
    client.destroy();
    assert.ok(reply.output?.message);
    assertResignedUpstream(pair);
    // Only the master key may ask for it.
    const issued = await issue();
    const refused = await rawRequest(relay.url, 'GET', '/key/master/aws-credentials', { authorization: `Bearer ${issued.key}` });
    // A valid virtual key on an admin route: authenticated, not allowed (lambda/http/surface.ts).
    assert.equal(refused.status, 403);
  });
});

describe('SigV4 in, SigV4 out, with the released AWS SDKs', () => {
  let issued: IssuedKey;
  before(async () => {
    issued = await issue({ key_alias: 'sdk-pair', models: [HAIKU] });
  });

  for (const http1 of [false, true]) {
    it(`client-bedrock-runtime (current) over ${http1 ? 'HTTP/1.1' : 'h2c (its default)'}: Converse and ConverseStream, metered like bearer`, async () => {
      const before = await spendOf(issued.token);
      const client = sigv4Client(issued.pair, { http1 });
      const reply = await client.send(new ConverseCommand({ modelId: HAIKU, messages }));
      assert.equal(reply.output?.message?.content?.[0]?.text, 'Hello from the fake Bedrock.');
      const stream = await client.send(new ConverseStreamCommand({ modelId: HAIKU, messages }));
      let text = '';
      for await (const event of stream.stream ?? []) text += event.contentBlockDelta?.delta?.text ?? '';
      client.destroy();
      assert.equal(text, 'Hello from the fake Bedrock.');
      assert.deepEqual(
        fake.requests.map((r) => r.operation),
        ['Converse', 'ConverseStream'],
      );
      assertResignedUpstream(issued.pair);
      await waitFor(async () => ((await spendOf(issued.token)) > before ? true : undefined));
    });
  }

  it('client-bedrock-runtime 3.704.0 (no bearer support): Converse and InvokeModelWithResponseStream', async () => {
    const client = new OldRuntime.BedrockRuntimeClient({ region: 'us-east-1', endpoint: `${relay.url}/bedrock`, credentials: issued.pair, maxAttempts: 1 });
    const reply = await client.send(new OldRuntime.ConverseCommand({ modelId: HAIKU, messages }));
    assert.equal(reply.output?.message?.content?.[0]?.text, 'Hello from the fake Bedrock.');
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 16, messages: [{ role: 'user', content: 'Hello' }] });
    const streamed = await client.send(new OldRuntime.InvokeModelWithResponseStreamCommand({ modelId: HAIKU, body, contentType: 'application/json' }));
    let chunks = 0;
    for await (const event of streamed.body ?? []) if (event.chunk?.bytes) chunks++;
    client.destroy();
    assert.ok(chunks > 0);
    assert.deepEqual(
      fake.requests.map((r) => r.operation),
      ['Converse', 'InvokeModelWithResponseStream'],
    );
    assertResignedUpstream(issued.pair);
  });

  it('the key policy applies to the SigV4 form: another model is AccessDeniedException, nothing upstream', async () => {
    const client = sigv4Client(issued.pair);
    await rejectsWith(client.send(new ConverseCommand({ modelId: SONNET, messages })), 'AccessDeniedException', 403);
    client.destroy();
    assert.equal(fake.requests.length, 0);
  });

  it('client-bedrock-agent-runtime Retrieve, signed with the pair and no middleware', async () => {
    const client = new BedrockAgentRuntimeClient({ region: 'us-east-1', endpoint: `${relay.url}/bedrock`, credentials: issued.pair, maxAttempts: 1 });
    const answer = await client.send(new RetrieveCommand({ knowledgeBaseId: 'KB12345678', retrievalQuery: { text: 'relay' } }));
    client.destroy();
    assert.ok((answer.retrievalResults?.length ?? 0) > 0);
    assertResignedUpstream(issued.pair);
  });
});

describe('clients configured only through the standard environment (child process)', () => {
  let issued: IssuedKey;
  let home: string;
  const results = new Map<string, { ok: boolean; result?: unknown; error?: { name: string; message: string; status?: number } }>();
  let upstream: FakeBedrock['requests'] = [];

  before(async () => {
    issued = await issue({ key_alias: 'env-pair' });
    home = await mkdtemp(join(tmpdir(), 'relay-sigv4-home-'));
    // Only what a user would set: no profile, no session token, no bearer token from this machine.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'none-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'none-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: issued.pair.accessKeyId,
      AWS_SECRET_ACCESS_KEY: issued.pair.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_ENDPOINT_URL_BEDROCK_RUNTIME: `${relay.url}/bedrock`,
      AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME: `${relay.url}/bedrock`,
    };
    const scenarios = ['runtime-converse', 'agent-retrieve', 'agent-invoke-stream', 'strands', 'langchain-chat', 'langchain-kb-retriever'];
    const script = join(import.meta.dirname, '..', 'support', 'sigv4-env-clients.ts');
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script, ...scenarios], {
      env,
      cwd: join(import.meta.dirname, '..', '..'),
      maxBuffer: 4 << 20,
    });
    for (const line of stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed = JSON.parse(line) as { name: string; ok: boolean };
      results.set(parsed.name, parsed);
    }
    // Taken now: the fake's log is cleared before each test.
    upstream = [...fake.requests];
  });
  after(async () => {
    await rm(home, { recursive: true, force: true });
  });

  const expectOk = (name: string) => {
    const result = results.get(name);
    assert.ok(result, `${name} did not report`);
    assert.equal(result.ok, true, JSON.stringify(result.error));
    return result.result;
  };

  it('client-bedrock-runtime (default h2c) Converse', () => {
    assert.equal(expectOk('runtime-converse'), 'Hello from the fake Bedrock.');
  });
  it('client-bedrock-agent-runtime Retrieve', () => {
    assert.ok((expectOk('agent-retrieve') as number) > 0);
  });
  it('client-bedrock-agent-runtime InvokeAgent, streamed', () => {
    assert.ok(String(expectOk('agent-invoke-stream')).length > 0);
  });
  it('Strands Agents (BedrockModel, streaming)', () => {
    assert.match(String(expectOk('strands')), /Hello from the fake Bedrock\./);
  });
  it('LangChain AWS ChatBedrockConverse', () => {
    assert.match(String(expectOk('langchain-chat')), /Hello from the fake Bedrock\./);
  });
  it('LangChain AWS AmazonKnowledgeBaseRetriever', () => {
    assert.ok((expectOk('langchain-kb-retriever') as number) > 0);
  });
  it('every one of those calls reached Bedrock re-signed by the relay, without the client pair', () => {
    assert.ok(upstream.length >= 6, `${upstream.length} upstream calls`);
    for (const request of upstream) {
      assert.equal(request.signature.valid, true);
      assert.ok(!`${request.rawUrl}\n${request.rawHeaders.join('\n')}`.includes(issued.pair.accessKeyId));
    }
  });
});

describe('refusals are AWS-shaped and nothing reaches Bedrock', () => {
  let issued: IssuedKey;
  const path = `/bedrock/model/${HAIKU}/converse`;
  const body = JSON.stringify({ messages });
  before(async () => {
    issued = await issue({ key_alias: 'refusals' });
  });

  /** Signs like the SDK does (@smithy/signature-v4, the SDK's own signer) for a raw request. */
  async function sign(
    options: {
      pair?: Pair;
      path?: string;
      body?: string;
      date?: Date;
      region?: string;
      service?: string;
      headers?: Record<string, string>;
      statePayloadHash?: boolean;
    } = {},
  ) {
    const pair = options.pair ?? issued.pair;
    const { hostname, port } = new URL(relay.url);
    const signer = new SignatureV4({
      service: options.service ?? 'bedrock',
      region: options.region ?? 'us-east-1',
      credentials: pair,
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: true,
      // false: no x-amz-content-sha256 header, so the relay must hash the body it received.
      applyChecksum: options.statePayloadHash ?? true,
    });
    const signed = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'http:',
        hostname,
        port: Number(port),
        path: (options.path ?? path).replace(/:/g, '%3A'),
        headers: { host: `${hostname}:${port}`, 'content-type': 'application/json', ...options.headers },
        body: options.body ?? body,
      }),
      { signingDate: options.date ?? new Date() },
    );
    return signed.headers as Record<string, string>;
  }

  async function send(headers: Record<string, string>, options: { path?: string; body?: string; query?: string } = {}) {
    const wirePath = (options.path ?? path).replace(/:/g, '%3A') + (options.query ? `?${options.query}` : '');
    const res = await rawRequest(relay.url, 'POST', wirePath, headers, options.body ?? body);
    return { status: res.status, type: res.headers['x-amzn-errortype'], message: (JSON.parse(res.body.toString()) as { message?: string }).message };
  }

  it('a correctly signed raw request passes (the baseline the cases below alter)', async () => {
    const answer = await send(await sign());
    assert.equal(answer.status, 200);
    assert.equal(fake.requests.length, 1);
    assert.equal(fake.requests[0]!.signature.valid, true);
    fake.reset(); // so the group's afterEach check holds for the refusals only
  });

  it('wrong secret → 403 InvalidSignatureException', async () => {
    // Change the last character to a different one (appending 'A' when it already is one would be no change).
    const secret = issued.pair.secretAccessKey;
    const wrong = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    const answer = await send(await sign({ pair: { ...issued.pair, secretAccessKey: wrong } }));
    assert.deepEqual([answer.status, answer.type], [403, 'InvalidSignatureException']);
  });

  it('altered body → 403 InvalidSignatureException', async () => {
    const headers = await sign();
    const answer = await send(headers, { body: JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hellp' }] }] }) });
    assert.deepEqual([answer.status, answer.type], [403, 'InvalidSignatureException']);
    // Also when the client did not state the body's hash (the relay hashes what arrived).
    const unstated = await sign({ statePayloadHash: false });
    assert.equal(unstated['x-amz-content-sha256'], undefined);
    assert.equal((await send(unstated)).status, 200);
    fake.reset();
    const answer2 = await send(unstated, { body: `${body} ` });
    assert.deepEqual([answer2.status, answer2.type], [403, 'InvalidSignatureException']);
  });

  it('altered path → 403 InvalidSignatureException', async () => {
    const answer = await send(await sign(), { path: `/bedrock/model/${SONNET}/converse` });
    assert.deepEqual([answer.status, answer.type], [403, 'InvalidSignatureException']);
    const query = await send(await sign(), { query: 'x=1' });
    assert.deepEqual([query.status, query.type], [403, 'InvalidSignatureException']);
  });

  it('stale or future date → 403 InvalidSignatureException (Signature expired)', async () => {
    const stale = await send(await sign({ date: new Date(Date.now() - 6 * 60_000) }));
    assert.deepEqual([stale.status, stale.type], [403, 'InvalidSignatureException']);
    assert.match(stale.message ?? '', /Signature expired/);
    const future = await send(await sign({ date: new Date(Date.now() + 6 * 60_000) }));
    assert.deepEqual([future.status, future.type], [403, 'InvalidSignatureException']);
  });

  it('wrong region or service scope → 403 InvalidSignatureException', async () => {
    for (const scope of [{ region: 'eu-west-1' }, { service: 'bedrock-mantle' }, { service: 's3' }]) {
      const answer = await send(await sign(scope));
      assert.deepEqual([answer.status, answer.type], [403, 'InvalidSignatureException'], JSON.stringify(scope));
    }
  });

  it('unknown access key id, or one with a session token → 403 UnrecognizedClientException', async () => {
    const unknown = await send(await sign({ pair: { accessKeyId: 'RELAYAAAAAAAAAAAAAAA', secretAccessKey: 'x' } }));
    assert.deepEqual([unknown.status, unknown.type], [403, 'UnrecognizedClientException']);
    const aws = await send(await sign({ pair: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' } }));
    assert.deepEqual([aws.status, aws.type], [403, 'UnrecognizedClientException']);
    const session = await send(await sign({ headers: { 'x-amz-security-token': 'lingering' } }));
    assert.deepEqual([session.status, session.type], [403, 'UnrecognizedClientException']);
  });

  it('malformed Authorization and presigned query strings → 400 IncompleteSignatureException', async () => {
    const malformed = await send({ authorization: 'AWS4-HMAC-SHA256 Credential=RELAYAAAAAAAAAAAAAAA/20260101', 'content-type': 'application/json' });
    assert.deepEqual([malformed.status, malformed.type], [400, 'IncompleteSignatureException']);
    const presigned = await send(
      { 'content-type': 'application/json' },
      {
        query: `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${issued.pair.accessKeyId}%2F20260101%2Fus-east-1%2Fbedrock%2Faws4_request&X-Amz-Signature=00`,
      },
    );
    assert.deepEqual([presigned.status, presigned.type], [400, 'IncompleteSignatureException']);
  });

  it('through the SDK: wrong secret and a skewed clock raise typed errors', async () => {
    const wrong = sigv4Client({ ...issued.pair, secretAccessKey: 'not-the-secret' });
    await rejectsWith(wrong.send(new ConverseCommand({ modelId: HAIKU, messages })), 'InvalidSignatureException', 403);
    wrong.destroy();
    const skewed = sigv4Client(issued.pair, { clockOffsetMs: -10 * 60_000 });
    await rejectsWith(skewed.send(new ConverseCommand({ modelId: HAIKU, messages })), 'InvalidSignatureException', 403);
    skewed.destroy();
  });

  afterEach(() => {
    // Every refusal in this group must have left the fake untouched (the baseline sends one).
    assert.equal(fake.requests.length, 0);
  });
});

describe('block, expiry, delete and regenerate apply to both forms at once', () => {
  it('block refuses the pair and the key; unblock restores both', async () => {
    const issued = await issue();
    const bearer = runtimeClient(relay.url, issued.key, undefined, 1);
    const signed = sigv4Client(issued.pair);
    await admin('/key/block', { key: issued.token });
    await rejectsWith(bearer.send(new ConverseCommand({ modelId: HAIKU, messages })), 'AccessDeniedException', 403);
    await rejectsWith(signed.send(new ConverseCommand({ modelId: HAIKU, messages })), 'AccessDeniedException', 403);
    assert.equal(fake.requests.length, 0);
    await admin('/key/unblock', { key: issued.token });
    assert.ok((await signed.send(new ConverseCommand({ modelId: HAIKU, messages }))).output);
    assert.ok((await bearer.send(new ConverseCommand({ modelId: HAIKU, messages }))).output);
    bearer.destroy();
    signed.destroy();
  });

  it('expiry: ExpiredTokenException for the pair as for the key', async () => {
    const issued = await issue({ duration: '1h' });
    clock.advance(2 * 3_600_000);
    // The SDK signs with the (moved) relay clock, as a client whose clock agrees with the relay's would.
    const signed = sigv4Client(issued.pair, { clockOffsetMs: clock() - Date.now() });
    await rejectsWith(signed.send(new ConverseCommand({ modelId: HAIKU, messages })), 'ExpiredTokenException', 401);
    signed.destroy();
    const bearer = runtimeClient(relay.url, issued.key, undefined, 1);
    await rejectsWith(bearer.send(new ConverseCommand({ modelId: HAIKU, messages })), 'ExpiredTokenException', 401);
    bearer.destroy();
    assert.equal(fake.requests.length, 0);
  });

  it('delete: both forms are unrecognised', async () => {
    const issued = await issue();
    assert.equal((await admin('/key/delete', { keys: [issued.token] })).status, 200);
    const signed = sigv4Client(issued.pair);
    await rejectsWith(signed.send(new ConverseCommand({ modelId: HAIKU, messages })), 'UnrecognizedClientException', 403);
    signed.destroy();
    const bearer = runtimeClient(relay.url, issued.key, undefined, 1);
    await rejectsWith(bearer.send(new ConverseCommand({ modelId: HAIKU, messages })), 'UnrecognizedClientException', 401);
    bearer.destroy();
    assert.equal(fake.requests.length, 0);
  });

  it('regenerate: a new pair works, the old pair and key stop', async () => {
    const issued = await issue();
    const answer = await admin('/key/regenerate', { key: issued.token });
    assert.equal(answer.status, 200);
    const next = fromAnswer(answer.json);
    assert.notEqual(next.pair.accessKeyId, issued.pair.accessKeyId);
    assert.notEqual(next.pair.secretAccessKey, issued.pair.secretAccessKey);
    const old = sigv4Client(issued.pair);
    await rejectsWith(old.send(new ConverseCommand({ modelId: HAIKU, messages })), 'UnrecognizedClientException', 403);
    old.destroy();
    assert.equal(fake.requests.length, 0);
    const fresh = sigv4Client(next.pair);
    assert.ok((await fresh.send(new ConverseCommand({ modelId: HAIKU, messages }))).output);
    fresh.destroy();
  });

  it('limits are the key’s, whichever form is used: rpm_limit 2 counts bearer and SigV4 calls together', async () => {
    const issued = await issue({ rpm_limit: 2 });
    const bearer = runtimeClient(relay.url, issued.key, undefined, 1);
    const signed = sigv4Client(issued.pair);
    assert.ok((await bearer.send(new ConverseCommand({ modelId: HAIKU, messages }))).output);
    assert.ok((await signed.send(new ConverseCommand({ modelId: HAIKU, messages }))).output);
    await rejectsWith(signed.send(new ConverseCommand({ modelId: HAIKU, messages })), 'ThrottlingException', 429);
    bearer.destroy();
    signed.destroy();
    assert.equal(fake.requests.length, 2);
  });
});

describe('model spellings from the same client trial (issue 13, item 4)', () => {
  it("a key listing openai.gpt-oss-120b-1:0 sees and may call mantle's openai.gpt-oss-120b", async () => {
    const issued = await issue({ models: ['openai.gpt-oss-120b-1:0'] });
    const listed = await rawRequest(relay.url, 'GET', '/bedrock-mantle/v1/models', { authorization: `Bearer ${issued.key}` });
    assert.equal(listed.status, 200);
    const ids = (JSON.parse(listed.body.toString()) as { data: Array<{ id: string }> }).data.map((model) => model.id);
    assert.deepEqual(ids, ['openai.gpt-oss-120b']);
    const chat = await rawRequest(
      relay.url,
      'POST',
      '/bedrock-mantle/v1/chat/completions',
      { authorization: `Bearer ${issued.key}`, 'content-type': 'application/json' },
      JSON.stringify({ model: 'openai.gpt-oss-120b', messages: [{ role: 'user', content: 'Hi' }] }),
    );
    assert.equal(chat.status, 200, chat.body.toString());
  });

  it("the README's mantle example model, anthropic.claude-haiku-4-5, is priced", async () => {
    const issued = await issue();
    const answer = await rawRequest(
      relay.url,
      'POST',
      '/bedrock-mantle/anthropic/v1/messages',
      { authorization: `Bearer ${issued.key}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      JSON.stringify({ model: 'anthropic.claude-haiku-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'Hi' }] }),
    );
    assert.equal(answer.status, 200, answer.body.toString());
    await waitFor(async () => ((await spendOf(issued.token)) > 0 ? true : undefined));
  });
});
