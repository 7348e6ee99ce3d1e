/**
 * The fake Bedrock is only worth having if it accepts exactly what AWS accepts. These tests hold
 * its SigV4 verifier against the official SDK clients (which must all get through) and against
 * deliberately broken signatures (which must all be refused as AWS refuses them), and check that
 * every operation in the relay's route table is answered with its documented success status.
 */
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  ListAsyncInvokesCommand,
  type ServiceInputTypes,
  type ServiceOutputTypes,
} from '@aws-sdk/client-bedrock-runtime';
import { BedrockAgentRuntimeClient, CreateSessionCommand, RetrieveCommand } from '@aws-sdk/client-bedrock-agent-runtime';
import { BedrockClient, ListInferenceProfilesCommand } from '@aws-sdk/client-bedrock';
import { Hash } from '@smithy/hash-node';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { FinalizeRequestMiddleware } from '@smithy/types';
import fc from 'fast-check';
import { ROUTES } from '../../lambda/routes/table.js';
import {
  FAKE_CREDENTIALS,
  FAKE_DEFAULT_OUTPUT_TOKENS,
  FAKE_FAILURE_MODELS,
  FAKE_REPLY_CHUNKS,
  decodeEventStream,
  expectedAnthropicUsage,
  expectedConverseUsage,
  expectedCountTokens,
  expectedInvocationMetrics,
  expectedOpenAIChatUsage,
  expectedOpenAIResponsesUsage,
  fakeBedrockEnv,
  fakeTokenCounts,
  jsonReply,
  parseSse,
  rfc3986Encode,
  startFakeBedrock,
  verifySigV4,
  type FakeBedrock,
  type FakeCredentials,
  type RecordedRequest,
} from '../support/fake-bedrock.js';

delete process.env['AWS_BEARER_TOKEN_BEDROCK']; // would switch the SDK from SigV4 to bearer auth

const REGION = 'us-east-1';
const PROFILE_ARN = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0';
const CONVERSE_INPUT = { messages: [{ role: 'user' as const, content: [{ text: 'Hello' }] }] };

function clientConfig(fake: FakeBedrock, overrides: { credentials?: FakeCredentials; region?: string; socketTimeout?: number } = {}) {
  return {
    region: overrides.region ?? REGION,
    endpoint: fake.url,
    credentials: overrides.credentials ?? FAKE_CREDENTIALS,
    requestHandler: new NodeHttpHandler(overrides.socketTimeout ? { socketTimeout: overrides.socketTimeout } : {}),
    maxAttempts: 1,
  };
}

/** Every test talks to a socket: a broken fake must fail a test, never hang the suite. */
const NETWORK = { timeout: 15_000 } as const;

function last(fake: FakeBedrock): RecordedRequest {
  const req = fake.requests.at(-1);
  assert.ok(req, 'the fake recorded no request');
  return req;
}

function assertAccepted(req: RecordedRequest, service = 'bedrock'): void {
  assert.ok(req.signature.valid, `signature refused: ${req.signature.valid ? '' : `${req.signature.reason}\n${req.signature.message}`}`);
  assert.equal(req.signature.service, service);
  assert.equal(req.signature.region, REGION);
  assert.equal(req.signature.accessKeyId, FAKE_CREDENTIALS.accessKeyId);
}

async function rejection(call: Promise<unknown>): Promise<{ name: string; status: number | undefined; message: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
  assert.fail('the call was expected to be refused but succeeded');
}

// ── raw signing with the official signer, for requests the SDK clients will not make ──

interface RawRequest {
  readonly method: string;
  /** Path as put on the wire. */
  readonly path: string;
  /** Path as given to the signer (default: `path`); differs when a test re-encodes after signing. */
  readonly signPath?: string;
  readonly query?: Record<string, string>;
  readonly body?: string;
  readonly headers?: Record<string, string>;
  readonly service?: string;
  readonly region?: string;
  readonly credentials?: FakeCredentials;
  readonly signingDate?: Date;
  readonly applyChecksum?: boolean;
  /** Change the signed request before it is sent (tamper tests). */
  readonly mutate?: (signed: { headers: Record<string, string>; body: string; wirePath: string }) => void;
  readonly unsigned?: boolean;
}

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

async function signRaw(fake: FakeBedrock, r: RawRequest): Promise<{ headers: Record<string, string>; body: string; wirePath: string }> {
  const body = r.body ?? '';
  const headers: Record<string, string> = { host: `127.0.0.1:${fake.port}`, ...(body ? { 'content-type': 'application/json' } : {}), ...r.headers };
  let signedHeaders = headers;
  if (!r.unsigned) {
    const signer = new SignatureV4({
      service: r.service ?? 'bedrock',
      region: r.region ?? REGION,
      credentials: r.credentials ?? FAKE_CREDENTIALS,
      sha256: Hash.bind(null, 'sha256'),
      applyChecksum: r.applyChecksum ?? false,
    });
    const signed = await signer.sign(
      new HttpRequest({
        method: r.method,
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: fake.port,
        path: r.signPath ?? r.path,
        query: r.query ?? {},
        headers,
        body,
      }),
      r.signingDate ? { signingDate: r.signingDate } : {},
    );
    signedHeaders = signed.headers;
  }
  const query = Object.entries(r.query ?? {})
    .map(([k, v]) => `${rfc3986Encode(k)}=${rfc3986Encode(v)}`)
    .join('&');
  const out = { headers: { ...signedHeaders }, body, wirePath: query ? `${r.path}?${query}` : r.path };
  r.mutate?.(out);
  return out;
}

async function sendRaw(fake: FakeBedrock, r: RawRequest): Promise<RawResponse> {
  const signed = await signRaw(fake, r);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: fake.port,
        method: r.method,
        path: signed.wirePath,
        headers: { ...signed.headers, 'content-length': Buffer.byteLength(signed.body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(signed.body);
  });
}

function errorOf(res: RawResponse): { type: string | undefined; message: unknown } {
  const type = res.headers['x-amzn-errortype'];
  return { type: Array.isArray(type) ? type[0] : type, message: (JSON.parse(res.body.toString('utf8')) as { message?: unknown }).message };
}

// ────────────────────────────────────────────────────────────────────────────────────────────

describe('fake bedrock: the official SDK clients are accepted', NETWORK, () => {
  let fake: FakeBedrock;
  let runtime: BedrockRuntimeClient;
  before(async () => {
    fake = await startFakeBedrock();
    runtime = new BedrockRuntimeClient(clientConfig(fake));
  });
  after(async () => {
    runtime.destroy();
    await fake.close();
  });

  test('Converse with a model ID holding ":"', async () => {
    const out = await runtime.send(new ConverseCommand({ modelId: 'cohere.command-r-v1:0', ...CONVERSE_INPUT }));
    const req = last(fake);
    assertAccepted(req);
    assert.equal(req.rawUrl, '/model/cohere.command-r-v1%3A0/converse');
    assert.equal(req.operation, 'Converse');
    assert.equal(req.modelId, 'cohere.command-r-v1:0');
    assert.ok(req.headers['x-amz-security-token'], 'the session token travels');
    assert.equal(out.output?.message?.content?.[0]?.text, FAKE_REPLY_CHUNKS.join(''));
    assert.equal(out.stopReason, 'end_turn');
    assert.deepEqual(out.usage, expectedConverseUsage(req.body));
    assert.equal(out.$metadata.requestId, req.requestId);
  });

  test('Converse with an inference-profile ARN (":" and "/" in the label)', async () => {
    await runtime.send(new ConverseCommand({ modelId: PROFILE_ARN, ...CONVERSE_INPUT }));
    const req = last(fake);
    assertAccepted(req);
    assert.equal(req.rawUrl, `/model/${encodeURIComponent(PROFILE_ARN)}/converse`);
    assert.match(req.rawUrl, /%2F/);
    assert.equal(req.modelId, PROFILE_ARN);
  });

  test('ConverseStream: every event arrives and the usage matches the helper', async () => {
    const out = await runtime.send(new ConverseStreamCommand({ modelId: 'anthropic.claude-3-haiku-20240307-v1:0', ...CONVERSE_INPUT }));
    const kinds: string[] = [];
    let text = '';
    let usage: unknown;
    for await (const event of out.stream ?? []) {
      kinds.push(Object.keys(event).filter((k) => k !== '$unknown')[0] ?? '?');
      text += event.contentBlockDelta?.delta?.text ?? '';
      if (event.metadata) usage = event.metadata.usage;
    }
    const req = last(fake);
    assertAccepted(req);
    assert.deepEqual(kinds, ['messageStart', ...FAKE_REPLY_CHUNKS.map(() => 'contentBlockDelta'), 'contentBlockStop', 'messageStop', 'metadata']);
    assert.equal(text, FAKE_REPLY_CHUNKS.join(''));
    assert.deepEqual(usage, expectedConverseUsage(req.body));
  });

  test('InvokeModel with an Anthropic body, prompt caching included', async () => {
    const body = JSON.stringify({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 321,
      system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: 'Hello' }],
    });
    const out = await runtime.send(new InvokeModelCommand({ modelId: 'anthropic.claude-3-haiku-20240307-v1:0', body, contentType: 'application/json' }));
    const req = last(fake);
    assertAccepted(req);
    assert.equal(req.body.toString('utf8'), body);
    const answer = JSON.parse(Buffer.from(out.body).toString('utf8')) as { usage: unknown; content: Array<{ text: string }> };
    const expected = expectedAnthropicUsage(body);
    assert.deepEqual(answer.usage, expected);
    assert.equal(expected.output_tokens, 321);
    assert.ok(expected.cache_read_input_tokens > 0 && expected.cache_creation_input_tokens > 0);
    assert.equal(answer.content[0]?.text, FAKE_REPLY_CHUNKS.join(''));
  });

  test('ListAsyncInvokes with a query value that needs encoding', async () => {
    await runtime.send(new ListAsyncInvokesCommand({ nextToken: 'a/b+c= d~', maxResults: 5 }));
    const req = last(fake);
    assertAccepted(req);
    assert.match(req.query, /nextToken=a%2Fb%2Bc%3D%20d~/);
  });

  test('BedrockAgentRuntimeClient: Retrieve and CreateSession (201)', async () => {
    const agent = new BedrockAgentRuntimeClient(clientConfig(fake));
    try {
      const retrieved = await agent.send(new RetrieveCommand({ knowledgeBaseId: 'KB12345678', retrievalQuery: { text: 'what?' } }));
      assertAccepted(last(fake));
      assert.equal(retrieved.retrievalResults?.length, 2);
      assert.equal(retrieved.retrievalResults?.[0]?.content?.type, 'TEXT');

      const session = await agent.send(new CreateSessionCommand({ sessionMetadata: { team: 'a' } }));
      const req = last(fake);
      assertAccepted(req);
      assert.equal(req.rawUrl, '/sessions/');
      assert.equal(session.$metadata.httpStatusCode, 201);
      assert.equal(session.sessionStatus, 'ACTIVE');
      assert.ok(session.createdAt instanceof Date && !Number.isNaN(session.createdAt.getTime()));
    } finally {
      agent.destroy();
    }
  });

  test('BedrockClient: ListInferenceProfiles honours type=SYSTEM_DEFINED', async () => {
    const control = new BedrockClient(clientConfig(fake));
    try {
      const out = await control.send(new ListInferenceProfilesCommand({ typeEquals: 'SYSTEM_DEFINED', maxResults: 100 }));
      const req = last(fake);
      assertAccepted(req);
      assert.equal(req.operation, 'ListInferenceProfiles');
      assert.match(req.query, /type=SYSTEM_DEFINED/);
      const ids = (out.inferenceProfileSummaries ?? []).map((p) => p.inferenceProfileId ?? '');
      assert.ok(ids.length >= 5);
      assert.ok((out.inferenceProfileSummaries ?? []).every((p) => p.type === 'SYSTEM_DEFINED' && (p.models?.length ?? 0) > 0));
      for (const prefix of ['us.anthropic.', 'eu.anthropic.', 'global.anthropic.', 'us.meta.']) {
        assert.ok(
          ids.some((id) => id.startsWith(prefix)),
          `a ${prefix} profile is listed`,
        );
      }
      const all = await control.send(new ListInferenceProfilesCommand({}));
      assert.ok((all.inferenceProfileSummaries ?? []).some((p) => p.type === 'APPLICATION'));
    } finally {
      control.destroy();
    }
  });
});

describe('fake bedrock: bad signatures are refused as AWS refuses them', NETWORK, () => {
  let fake: FakeBedrock;
  before(async () => {
    fake = await startFakeBedrock();
  });
  after(async () => {
    await fake.close();
  });

  async function converseWith(config: ReturnType<typeof clientConfig>, tamper?: (body: string) => string) {
    const client = new BedrockRuntimeClient(config);
    if (tamper) {
      const tamperAfterSigning: FinalizeRequestMiddleware<ServiceInputTypes, ServiceOutputTypes> = (next) => async (args) => {
        const request = args.request;
        if (HttpRequest.isInstance(request) && request.body instanceof Uint8Array) {
          // Read the bytes without the SDK's string adapter methods (they warn when used).
          const body = request.body;
          request.body = tamper(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
        }
        return next(args);
      };
      client.middlewareStack.addRelativeTo(tamperAfterSigning, { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'tamperAfterSigning' });
    }
    try {
      return await rejection(client.send(new ConverseCommand({ modelId: 'cohere.command-r-v1:0', ...CONVERSE_INPUT })));
    } finally {
      client.destroy();
    }
  }

  function assertRecordedFailure(errorType: string, reason: RegExp): void {
    const sig = last(fake).signature;
    assert.equal(sig.valid, false);
    if (!sig.valid) {
      assert.equal(sig.errorType, errorType);
      assert.match(sig.reason, reason);
    }
  }

  test('wrong secret key', async () => {
    const err = await converseWith(clientConfig(fake, { credentials: { ...FAKE_CREDENTIALS, secretAccessKey: 'not-the-secret' } }));
    assert.deepEqual([err.name, err.status], ['InvalidSignatureException', 403]);
    assert.match(err.message, /does not match the signature you provided/);
    assertRecordedFailure('InvalidSignatureException', /signature mismatch/);
  });

  test('unknown access key', async () => {
    const err = await converseWith(clientConfig(fake, { credentials: { ...FAKE_CREDENTIALS, accessKeyId: 'ASIAUNKNOWNKEY000000' } }));
    assert.deepEqual([err.name, err.status], ['UnrecognizedClientException', 403]);
  });

  test('wrong region', async () => {
    const err = await converseWith(clientConfig(fake, { region: 'us-west-2' }));
    assert.deepEqual([err.name, err.status], ['InvalidSignatureException', 403]);
    assert.match(err.message, /scoped to a valid region/);
    assertRecordedFailure('InvalidSignatureException', /region us-west-2/);
  });

  test('wrong service name', async () => {
    const res = await sendRaw(fake, {
      method: 'POST',
      path: '/model/cohere.command-r-v1%3A0/converse',
      body: JSON.stringify(CONVERSE_INPUT),
      service: 'bedrock-runtime',
    });
    assert.equal(res.status, 403);
    assert.deepEqual(errorOf(res), { type: 'InvalidSignatureException', message: "Credential should be scoped to correct service: 'bedrock'." });
  });

  test('body changed after signing (SDK middleware)', async () => {
    const err = await converseWith(clientConfig(fake), (body) => body.replace('Hello', 'Jello'));
    assert.deepEqual([err.name, err.status], ['InvalidSignatureException', 403]);
    assert.match(last(fake).body.toString('utf8'), /Jello/);
    // The SDK also sends x-amz-content-sha256, which gives the change away first.
    assertRecordedFailure('InvalidSignatureException', /x-amz-content-sha256/);
  });

  test('body changed after signing, no x-amz-content-sha256 to give it away', async () => {
    const res = await sendRaw(fake, {
      method: 'POST',
      path: '/model/cohere.command-r-v1%3A0/converse',
      body: JSON.stringify(CONVERSE_INPUT),
      mutate: (signed) => {
        signed.body = signed.body.replace('Hello', 'Jello');
      },
    });
    assert.equal(res.status, 403);
    assert.equal(errorOf(res).type, 'InvalidSignatureException');
    assertRecordedFailure('InvalidSignatureException', /signature mismatch/);
  });

  test('x-amz-content-sha256 that does not match the body', async () => {
    const res = await sendRaw(fake, {
      method: 'POST',
      path: '/model/cohere.command-r-v1%3A0/converse',
      body: '{}',
      headers: { 'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' },
    });
    assert.equal(res.status, 403);
    assertRecordedFailure('InvalidSignatureException', /x-amz-content-sha256/);
  });

  test('path sent re-encoded differently from what was signed', async () => {
    const encoded = `/model/${encodeURIComponent(PROFILE_ARN)}/converse`;
    const body = JSON.stringify(CONVERSE_INPUT);
    // ":" decoded on the wire, "/" still encoded: same resource, different bytes.
    const res = await sendRaw(fake, { method: 'POST', path: encoded.replace(/%3A/g, ':'), signPath: encoded, body });
    assert.equal(res.status, 403);
    assert.equal(errorOf(res).type, 'InvalidSignatureException');
    assertRecordedFailure('InvalidSignatureException', /signature mismatch/);
    // The other way round: signed over the decoded form, sent encoded.
    const res2 = await sendRaw(fake, { method: 'POST', path: encoded, signPath: encoded.replace(/%3A/g, ':'), body });
    assert.equal(res2.status, 403);
    // And the control: signed and sent alike is accepted.
    const ok = await sendRaw(fake, { method: 'POST', path: encoded, body });
    assert.equal(ok.status, 200);
  });

  test('missing session token', async () => {
    const { sessionToken: _omitted, ...longTerm } = FAKE_CREDENTIALS;
    const err = await converseWith(clientConfig(fake, { credentials: longTerm }));
    assert.deepEqual([err.name, err.status], ['UnrecognizedClientException', 403]);
    assertRecordedFailure('UnrecognizedClientException', /x-amz-security-token is missing/);
  });

  test('session token sent but not signed', async () => {
    const { sessionToken, ...longTerm } = FAKE_CREDENTIALS;
    const res = await sendRaw(fake, {
      method: 'GET',
      path: '/foundation-models',
      credentials: longTerm,
      mutate: (signed) => {
        signed.headers['x-amz-security-token'] = sessionToken;
      },
    });
    assert.equal(res.status, 403);
    assertRecordedFailure('InvalidSignatureException', /x-amz-security-token is not signed/);
  });

  test('a signed header changed in transit', async () => {
    const res = await sendRaw(fake, {
      method: 'POST',
      path: '/model/cohere.command-r-v1%3A0/converse',
      body: '{}',
      mutate: (signed) => {
        signed.headers['content-type'] = 'application/x-amz-json-1.1';
      },
    });
    assert.equal(res.status, 403);
    assertRecordedFailure('InvalidSignatureException', /signature mismatch/);
  });

  test('a signature older than 15 minutes', async () => {
    const res = await sendRaw(fake, { method: 'GET', path: '/foundation-models', signingDate: new Date(Date.now() - 16 * 60_000) });
    assert.equal(res.status, 403);
    assert.match(String(errorOf(res).message), /^Signature expired/);
  });

  test('no Authorization header at all', async () => {
    const res = await sendRaw(fake, { method: 'GET', path: '/foundation-models', unsigned: true });
    assert.equal(res.status, 403);
    assert.deepEqual(errorOf(res), { type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
  });

  test('a bearer token is not a signature', async () => {
    const res = await sendRaw(fake, { method: 'GET', path: '/foundation-models', unsigned: true, headers: { authorization: 'Bearer sk-123' } });
    assert.equal(res.status, 403);
    assert.equal(errorOf(res).type, 'IncompleteSignatureException');
  });
});

describe('fake bedrock: spellings AWS normalises are accepted', NETWORK, () => {
  let fake: FakeBedrock;
  before(async () => {
    fake = await startFakeBedrock();
  });
  after(async () => {
    await fake.close();
  });

  test('query encoded differently on the wire than in the canonical form (decoded, then re-encoded)', async () => {
    const res = await sendRaw(fake, {
      method: 'GET',
      path: '/async-invoke',
      query: { nextToken: 'a~b/c', maxResults: '5', 'x~y': '1' },
      mutate: (signed) => {
        // "~" needlessly escaped, "/" escaped in lower-case hex, parameters in another order.
        signed.wirePath = '/async-invoke?x%7ey=1&nextToken=a%7Eb%2fc&maxResults=5';
      },
    });
    assert.equal(res.status, 200, res.body.toString('utf8'));
  });

  test('runs of spaces inside a signed header value', async () => {
    const res = await sendRaw(fake, { method: 'GET', path: '/foundation-models', headers: { 'x-relay-note': 'one   two \t three' } });
    assert.equal(res.status, 200, res.body.toString('utf8'));
    assert.ok(last(fake).signature.valid);
  });
});

describe('fake bedrock: the verifier in isolation', NETWORK, () => {
  test("AWS's published get-vanilla test vector", () => {
    const result = verifySigV4(
      {
        method: 'GET',
        rawUrl: '/',
        rawHeaders: [
          'Host',
          'example.amazonaws.com',
          'X-Amz-Date',
          '20150830T123600Z',
          'Authorization',
          'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
        ],
        body: new Uint8Array(),
      },
      {
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        region: 'us-east-1',
        services: ['service'],
        now: Date.UTC(2015, 7, 30, 12, 36, 0),
      },
    );
    assert.equal(result.valid, true);
  });

  test('property: whatever path, query and body the official signer signs is accepted; one changed body byte is not', async () => {
    const credentials = FAKE_CREDENTIALS;
    const signer = new SignatureV4({ service: 'bedrock', region: REGION, credentials, sha256: Hash.bind(null, 'sha256') });
    const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(text, { minLength: 1, maxLength: 4 }),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.boolean(),
        async (segments, query, body, trailingSlash) => {
          // Labels are encoded once, as the SDKs' serializers do; the signer then works on that path.
          const path = `/${segments.map(rfc3986Encode).join('/')}${trailingSlash ? '/' : ''}`;
          const signed = await signer.sign(
            new HttpRequest({ method: 'POST', hostname: 'fake', path, query, headers: { host: 'fake', 'content-type': 'application/json' }, body }),
          );
          const queryString = Object.entries(query)
            .map(([k, v]) => `${rfc3986Encode(k)}=${rfc3986Encode(v)}`)
            .join('&');
          const rawUrl = queryString ? `${path}?${queryString}` : path;
          const rawHeaders = Object.entries(signed.headers).flat();
          const expect = { credentials, region: REGION, services: ['bedrock'], now: Date.now() };
          const good = verifySigV4({ method: 'POST', rawUrl, rawHeaders, body: Buffer.from(body) }, expect);
          assert.ok(good.valid, good.valid ? '' : `${good.reason}: ${good.canonicalRequest ?? ''}`);
          const tampered = Buffer.from(body);
          tampered[0] = tampered[0]! ^ 0x01;
          assert.equal(verifySigV4({ method: 'POST', rawUrl, rawHeaders, body: tampered }, expect).valid, false);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('fake bedrock: the usage arithmetic is the documented one', () => {
  test('prompt = ceil(bytes / 4); output = the request limit or 16; cache markers split the prompt', () => {
    assert.deepEqual(fakeTokenCounts('x'.repeat(41)), { input: 11, cacheRead: 0, cacheWrite: 0, output: FAKE_DEFAULT_OUTPUT_TOKENS });
    assert.equal(FAKE_DEFAULT_OUTPUT_TOKENS, 16);
    const converse = JSON.stringify({ inferenceConfig: { maxTokens: 77 }, messages: [] });
    assert.equal(fakeTokenCounts(converse).output, 77);
    // 100 bytes with a cache marker: 25 prompt tokens = 12 read + 6 written + 7 uncached.
    const cached = JSON.stringify({ cache_control: 1, pad: 'p'.repeat(100 - 28) });
    assert.equal(Buffer.byteLength(cached), 100);
    assert.deepEqual(fakeTokenCounts(cached), { input: 7, cacheRead: 12, cacheWrite: 6, output: 16 });
    assert.deepEqual(expectedConverseUsage(cached), { inputTokens: 7, outputTokens: 16, totalTokens: 41, cacheReadInputTokens: 12, cacheWriteInputTokens: 6 });
    assert.deepEqual(expectedOpenAIChatUsage(cached), {
      prompt_tokens: 25,
      completion_tokens: 16,
      total_tokens: 41,
      prompt_tokens_details: { cached_tokens: 12 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    assert.equal(expectedCountTokens(Buffer.from('abcd'.repeat(10))), 10);
  });

  test('fakeBedrockEnv points every AWS_ENDPOINT_URL_* at the fakes', async () => {
    const fake = await startFakeBedrock();
    const mantle = await startFakeBedrock({ signingService: 'bedrock-mantle' });
    try {
      const env = fakeBedrockEnv(fake, mantle);
      assert.equal(env['AWS_ENDPOINT_URL_BEDROCK_RUNTIME'], fake.url);
      assert.equal(env['AWS_ENDPOINT_URL_BEDROCK_AGENT_RUNTIME'], fake.url);
      assert.equal(env['AWS_ENDPOINT_URL_BEDROCK'], fake.url);
      assert.equal(env['AWS_ENDPOINT_URL_BEDROCK_MANTLE'], mantle.url);
      assert.equal(env['AWS_SESSION_TOKEN'], FAKE_CREDENTIALS.sessionToken);
    } finally {
      await Promise.all([fake.close(), mantle.close()]);
    }
  });
});

describe('fake bedrock: every route-table operation is served', NETWORK, () => {
  let fake: FakeBedrock;
  before(async () => {
    fake = await startFakeBedrock({ signingService: ['bedrock', 'bedrock-mantle'] });
  });
  after(async () => {
    await fake.close();
  });

  const sampleLabel: Record<string, string> = {
    modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
    inferenceProfileIdentifier: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    modelIdentifier: 'cohere.command-r-v1:0',
    resourceArn: 'arn:aws:bedrock:us-east-1:123456789012:agent/AGENT12345',
    invocationArn: 'arn:aws:bedrock:us-east-1:123456789012:async-invoke/abc123',
  };

  for (const route of ROUTES.filter((r) => r.unsupported === undefined)) {
    test(`${route.operation}: ${route.method} ${route.template} → ${route.successStatus}`, async () => {
      const path = route.template.replace(/\{(\w+)\}/g, (_, label: string) => rfc3986Encode(sampleLabel[label] ?? `x-${label}`));
      const body =
        route.method === 'GET' || route.method === 'DELETE' ? '' : JSON.stringify({ model: 'anthropic.claude-opus-4-7', max_tokens: 10, messages: [] });
      const service = route.service === 'bedrock-mantle' ? 'bedrock-mantle' : 'bedrock';
      const res = await sendRaw(fake, { method: route.method, path, body, service });
      const req = last(fake);
      assert.equal(res.status, route.successStatus, res.body.toString('utf8'));
      assert.equal(req.operation, route.operation);
      assert.equal(req.signature.valid && req.signature.service, service);
      assert.equal(res.headers['x-amzn-requestid'], req.requestId);
      if (route.stream === 'eventstream') {
        assert.equal(res.headers['content-type'], 'application/vnd.amazon.eventstream');
        assert.ok(decodeEventStream(res.body).length > 0);
      } else {
        assert.match(String(res.headers['content-type']), /^application\/json/);
        JSON.parse(res.body.toString('utf8'));
      }
    });
  }

  test('the signing name decides the host: mantle-only paths are unknown to bedrock and native ones to mantle', async () => {
    const models = await sendRaw(fake, { method: 'GET', path: '/v1/models', service: 'bedrock' });
    assert.equal(models.status, 404);
    assert.equal(errorOf(models).type, 'UnknownOperationException');
    const converse = await sendRaw(fake, { method: 'POST', path: '/model/m/converse', body: '{}', service: 'bedrock-mantle' });
    assert.equal(converse.status, 404);
  });

  test('an ARN label with a raw "/" is an unknown operation, as on Bedrock', async () => {
    const res = await sendRaw(fake, { method: 'POST', path: `/model/${PROFILE_ARN}/converse`, body: '{}' });
    assert.equal(res.status, 404);
    assert.equal(errorOf(res).type, 'UnknownOperationException');
  });
});

describe('fake bedrock: streaming, usage and failure simulation', NETWORK, () => {
  let fake: FakeBedrock;
  before(async () => {
    fake = await startFakeBedrock({ frameDelayMs: 30 });
  });
  after(async () => {
    await fake.close();
  });

  test('event-stream frames leave one by one while the fake is still sending', async () => {
    const signed = await signRaw(fake, { method: 'POST', path: '/model/m/converse-stream', body: '{"messages":[]}' });
    const arrivals: Array<{ at: number; pending: boolean; bytes: Buffer }> = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: fake.port, method: 'POST', path: signed.wirePath, headers: signed.headers }, (res) => {
        res.on('data', (bytes: Buffer) => arrivals.push({ at: Date.now(), pending: last(fake).outcome === 'pending', bytes }));
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(signed.body);
    });
    const frames = decodeEventStream(Buffer.concat(arrivals.map((a) => a.bytes)));
    assert.equal(frames.length, FAKE_REPLY_CHUNKS.length + 4);
    assert.ok(arrivals.length >= frames.length - 1, `frames arrived in ${arrivals.length} reads`);
    assert.equal(arrivals[0]?.pending, true, 'the first frame arrived before the fake finished');
    assert.ok(arrivals.at(-1)!.at - arrivals[0]!.at >= 30 * (frames.length - 2), 'frames were paced');
    assert.deepEqual(
      frames.map((f) => f.headers[':message-type']),
      frames.map(() => 'event'),
    );
    assert.ok(frames.every((f) => f.headers[':content-type'] === 'application/json'));
    assert.equal(await last(fake).finished, 'complete');
  });

  test('InvokeModelWithResponseStream: Anthropic chunks, invocation metrics in the last', async () => {
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] });
    const res = await sendRaw(fake, { method: 'POST', path: '/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke-with-response-stream', body });
    const chunks = decodeEventStream(res.body).map((f) => f.chunk as Record<string, unknown>);
    assert.deepEqual(
      chunks.map((c) => c['type']),
      ['message_start', 'content_block_start', ...FAKE_REPLY_CHUNKS.map(() => 'content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop'],
    );
    assert.deepEqual(chunks.at(-1)?.['amazon-bedrock-invocationMetrics'], expectedInvocationMetrics(body));
    assert.equal((chunks.at(-2)?.['usage'] as { output_tokens: number }).output_tokens, 50);
  });

  test('InvokeModel reports token counts in headers', async () => {
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 7, messages: [] });
    const res = await sendRaw(fake, { method: 'POST', path: '/model/m/invoke', body });
    const metrics = expectedInvocationMetrics(body);
    assert.equal(res.headers['x-amzn-bedrock-input-token-count'], String(metrics.inputTokenCount));
    assert.equal(res.headers['x-amzn-bedrock-output-token-count'], '7');
    assert.ok(res.headers['x-amzn-bedrock-invocation-latency']);
  });

  test('Anthropic Messages: JSON, or SSE with usage in message_start and message_delta', async () => {
    const plain = JSON.stringify({ model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
    const json = await sendRaw(fake, { method: 'POST', path: '/anthropic/v1/messages', body: plain });
    assert.deepEqual((JSON.parse(json.body.toString('utf8')) as { usage: unknown }).usage, expectedAnthropicUsage(plain));

    const streamed = JSON.stringify({ model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', max_tokens: 64, stream: true, messages: [] });
    const sse = await sendRaw(fake, { method: 'POST', path: '/anthropic/v1/messages', body: streamed });
    assert.match(String(sse.headers['content-type']), /^text\/event-stream/);
    const events = parseSse(sse.body.toString('utf8'));
    assert.deepEqual(
      events.map((e) => e.event),
      [
        'message_start',
        'content_block_start',
        'ping',
        ...FAKE_REPLY_CHUNKS.map(() => 'content_block_delta'),
        'content_block_stop',
        'message_delta',
        'message_stop',
      ],
    );
    const expected = expectedAnthropicUsage(streamed);
    assert.deepEqual((events[0]?.json as { message: { usage: unknown } }).message.usage, { ...expected, output_tokens: 1 });
    assert.deepEqual((events.at(-2)?.json as { usage: unknown }).usage, { output_tokens: expected.output_tokens });
  });

  test('OpenAI Chat Completions streams usage only when include_usage asks for it', async () => {
    const without = JSON.stringify({ model: 'openai.gpt-oss-120b-1:0', stream: true, messages: [] });
    const a = parseSse((await sendRaw(fake, { method: 'POST', path: '/openai/v1/chat/completions', body: without })).body.toString('utf8'));
    assert.equal(a.at(-1)?.data, '[DONE]');
    assert.ok(a.every((e) => e.json === undefined || !('usage' in (e.json as object))));

    const withUsage = JSON.stringify({
      model: 'openai.gpt-oss-120b-1:0',
      stream: true,
      stream_options: { include_usage: true },
      max_completion_tokens: 9,
      messages: [],
    });
    const b = parseSse((await sendRaw(fake, { method: 'POST', path: '/v1/chat/completions', body: withUsage })).body.toString('utf8'));
    assert.equal(b.at(-1)?.data, '[DONE]');
    const usageChunk = b.at(-2)?.json as { choices: unknown[]; usage: unknown };
    assert.deepEqual(usageChunk.choices, []);
    assert.deepEqual(usageChunk.usage, expectedOpenAIChatUsage(withUsage));
    assert.equal(expectedOpenAIChatUsage(withUsage).completion_tokens, 9);
    assert.ok(b.slice(0, -2).every((e) => (e.json as { usage: unknown }).usage === null));
  });

  test('OpenAI Responses: response.completed carries the usage', async () => {
    const body = JSON.stringify({ model: 'openai.gpt-oss-120b', stream: true, input: 'Hi', prompt_cache_key: 'k' });
    const events = parseSse((await sendRaw(fake, { method: 'POST', path: '/openai/v1/responses', body })).body.toString('utf8'));
    assert.equal(events[0]?.event, 'response.created');
    assert.equal(events.filter((e) => e.event === 'response.output_text.delta').length, FAKE_REPLY_CHUNKS.length);
    const completed = events.at(-1);
    assert.equal(completed?.event, 'response.completed');
    const usage = (completed?.json as { response: { usage: unknown } }).response.usage;
    assert.deepEqual(usage, expectedOpenAIResponsesUsage(body));
    assert.ok(expectedOpenAIResponsesUsage(body).input_tokens_details.cached_tokens > 0);
  });

  test('bedrock-mantle lists its models', async () => {
    const mantle = await startFakeBedrock({ signingService: 'bedrock-mantle' });
    try {
      const res = await sendRaw(mantle, { method: 'GET', path: '/v1/models', service: 'bedrock-mantle' });
      const list = JSON.parse(res.body.toString('utf8')) as { object: string; data: Array<{ id: string; object: string }> };
      assert.equal(list.object, 'list');
      assert.ok(list.data.some((m) => m.id === 'anthropic.claude-opus-4-7' && m.object === 'model'));
      assert.ok(list.data.some((m) => m.id === 'openai.gpt-oss-120b'));
      assert.equal(last(mantle).operation, 'MantleListModels');
    } finally {
      await mantle.close();
    }
  });

  test('fake.throttle: 429 ThrottlingException through the SDK; Anthropic-shaped on the Messages API', async () => {
    const client = new BedrockRuntimeClient(clientConfig(fake));
    try {
      const err = await rejection(client.send(new ConverseCommand({ modelId: FAKE_FAILURE_MODELS.throttle, ...CONVERSE_INPUT })));
      assert.deepEqual([err.name, err.status], ['ThrottlingException', 429]);
    } finally {
      client.destroy();
    }
    const res = await sendRaw(fake, { method: 'POST', path: '/anthropic/v1/messages', body: JSON.stringify({ model: `us.${FAKE_FAILURE_MODELS.throttle}` }) });
    assert.equal(res.status, 429);
    assert.deepEqual(JSON.parse(res.body.toString('utf8')), {
      type: 'error',
      error: { type: 'rate_limit_error', message: 'Too many requests, please wait before trying again.' },
    });
  });

  test('fake.midstream-exception: the SDK raises modelStreamErrorException after the first events', async () => {
    const client = new BedrockRuntimeClient(clientConfig(fake));
    try {
      const out = await client.send(new ConverseStreamCommand({ modelId: FAKE_FAILURE_MODELS.midstreamException, ...CONVERSE_INPUT }));
      let seen = 0;
      const err = await rejection(
        (async () => {
          for await (const _event of out.stream ?? []) seen += 1;
        })(),
      );
      assert.equal(err.name, 'ModelStreamErrorException');
      assert.equal(seen, 2);
    } finally {
      client.destroy();
    }
  });

  test('fake.midstream-reset: two frames, then the connection drops', async () => {
    const res = await new Promise<{ frames: number; error: boolean }>((resolve) => {
      void signRaw(fake, { method: 'POST', path: `/model/${FAKE_FAILURE_MODELS.midstreamReset}/converse-stream`, body: '{}' }).then((signed) => {
        const chunks: Buffer[] = [];
        // Never throw from here: a decoding failure must fail the assertion below, not hang the test.
        const countFrames = () => {
          try {
            return decodeEventStream(Buffer.concat(chunks)).length;
          } catch {
            return -1;
          }
        };
        const done = (error: boolean) => resolve({ frames: countFrames(), error });
        const req = httpRequest({ host: '127.0.0.1', port: fake.port, method: 'POST', path: signed.wirePath, headers: signed.headers }, (r) => {
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('aborted', () => done(true));
          r.on('error', () => done(true));
          r.on('end', () => done(false));
        });
        req.on('error', () => done(true));
        req.end(signed.body);
      });
    });
    assert.deepEqual(res, { frames: 2, error: true });
    assert.equal(await last(fake).finished, 'reset');
  });

  test('fake.stall: headers, then silence until the client times out', async () => {
    const client = new BedrockRuntimeClient(clientConfig(fake, { socketTimeout: 200 }));
    try {
      const started = Date.now();
      const err = await rejection(client.send(new ConverseCommand({ modelId: FAKE_FAILURE_MODELS.stall, ...CONVERSE_INPUT })));
      assert.match(err.name, /Timeout/);
      assert.ok(Date.now() - started >= 150);
      assert.equal(last(fake).outcome, 'stalled');
    } finally {
      client.destroy();
    }
  });

  test('overrides answer first, for as many times as asked, and unknown paths are UnknownOperationException', async () => {
    fake.override((req) => (req.operation === 'ListFoundationModels' ? jsonReply(200, { modelSummaries: [] }) : undefined), { times: 1 });
    const first = await sendRaw(fake, { method: 'GET', path: '/foundation-models' });
    assert.deepEqual(JSON.parse(first.body.toString('utf8')), { modelSummaries: [] });
    assert.equal((await fake.waitForRequest((r) => r.operation === 'ListFoundationModels')).status, 200);
    const second = await sendRaw(fake, { method: 'GET', path: '/foundation-models' });
    assert.ok((JSON.parse(second.body.toString('utf8')) as { modelSummaries: unknown[] }).modelSummaries.length > 0);

    const unknown = await sendRaw(fake, { method: 'GET', path: '/no/such/operation' });
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown).type, 'UnknownOperationException');
  });

  test('a client that leaves mid-stream is recorded as client-aborted', async () => {
    const signed = await signRaw(fake, { method: 'POST', path: '/model/m/converse-stream', body: '{}' });
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: fake.port, method: 'POST', path: signed.wirePath, headers: signed.headers }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.end(signed.body);
    });
    assert.equal(await last(fake).finished, 'client-aborted');
  });
});
