/**
 * The relay core end to end: the official AWS SDK clients call the relay (the Lambda handler
 * behind the Function URL emulator) with the master key; the relay signs with SigV4 and the
 * fake Bedrock verifies every signature as AWS does.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  type BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ListAsyncInvokesCommand,
  CountTokensCommand,
} from '@aws-sdk/client-bedrock-runtime';
import {
  type BedrockAgentRuntimeClient,
  CreateSessionCommand,
  GetSessionCommand,
  InvokeAgentCommand,
  RetrieveCommand,
} from '@aws-sdk/client-bedrock-agent-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { FAKE_REPLY_CHUNKS, expectedConverseUsage, startFakeBedrock, type FakeBedrock, type RecordedRequest } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';
import { agentRuntimeClient, rawRequest, runtimeClient } from '../support/clients.js';

let fake: FakeBedrock;
let relay: RelayUnderTest;
let runtime: BedrockRuntimeClient;
let agents: BedrockAgentRuntimeClient;

before(async () => {
  fake = await startFakeBedrock({ frameDelayMs: 5 });
  relay = await startRelay({ fake });
  runtime = runtimeClient(relay.url, TEST_MASTER_KEY);
  agents = agentRuntimeClient(relay.url, TEST_MASTER_KEY);
});
after(async () => {
  runtime.destroy();
  agents.destroy();
  await relay.close();
  await fake.close();
});
beforeEach(() => fake.reset());

function onlyRequest(): RecordedRequest {
  assert.equal(fake.requests.length, 1, 'exactly one request upstream');
  const request = fake.requests[0]!;
  assert.equal(request.signature.valid, true, `signature rejected: ${JSON.stringify(request.signature)}`);
  return request;
}

describe('native runtime operations through the AWS SDK (HTTP/2 to the relay, bearer token)', () => {
  it('Converse with a model ID containing ":" reaches Bedrock signed, on the same path', async () => {
    const input = { modelId: 'cohere.command-r-v1:0', messages: [{ role: 'user' as const, content: [{ text: 'Hello' }] }] };
    const answer = await runtime.send(new ConverseCommand(input));
    assert.equal(answer.output?.message?.content?.[0]?.text, FAKE_REPLY_CHUNKS.join(''));
    const upstream = onlyRequest();
    assert.equal(upstream.path, '/model/cohere.command-r-v1%3A0/converse');
    assert.equal(upstream.operation, 'Converse');
    assert.deepEqual(answer.usage, expectedConverseUsage(upstream.body));
    // The client's bearer token never leaves the relay; the role's session token does.
    assert.match(String(upstream.headers.authorization), /^AWS4-HMAC-SHA256 /);
    assert.ok(!JSON.stringify(upstream.headers).includes(TEST_MASTER_KEY));
    assert.ok(upstream.headers['x-amz-security-token']);
    assert.equal(upstream.headers['content-type'], 'application/json');
  });

  it('InvokeModel with a full inference-profile ARN (":" and "/") is one label upstream', async () => {
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0';
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] });
    const answer = await runtime.send(new InvokeModelCommand({ modelId: arn, body, contentType: 'application/json', accept: 'application/json' }));
    const upstream = onlyRequest();
    assert.equal(upstream.params.modelId, arn);
    assert.equal(upstream.path, `/model/${encodeURIComponent(arn)}/invoke`);
    assert.equal(upstream.body.toString(), body, 'request body goes upstream byte for byte');
    assert.ok(JSON.parse(Buffer.from(answer.body).toString()).content);
  });

  it('ConverseStream delivers every event, decoded by the SDK', async () => {
    const answer = await runtime.send(
      new ConverseStreamCommand({ modelId: 'us.amazon.nova-micro-v1:0', messages: [{ role: 'user', content: [{ text: 'Hi' }] }] }),
    );
    const text: string[] = [];
    let usage: unknown;
    for await (const event of answer.stream!) {
      if (event.contentBlockDelta?.delta?.text) text.push(event.contentBlockDelta.delta.text);
      if (event.metadata) usage = event.metadata.usage;
    }
    assert.deepEqual(text, [...FAKE_REPLY_CHUNKS]);
    assert.deepEqual(usage, expectedConverseUsage(onlyRequest().body));
  });

  it('InvokeModelWithResponseStream passes the chunks and the invocation metrics', async () => {
    const body = JSON.stringify({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 20, messages: [{ role: 'user', content: 'Hi' }] });
    const answer = await runtime.send(new InvokeModelWithResponseStreamCommand({ modelId: 'anthropic.claude-3-haiku-20240307-v1:0', body }));
    const events: Array<Record<string, unknown>> = [];
    for await (const event of answer.body!) {
      if (event.chunk?.bytes) events.push(JSON.parse(Buffer.from(event.chunk.bytes).toString()) as Record<string, unknown>);
    }
    assert.ok(events.length >= 3);
    assert.ok(events.at(-1)!['amazon-bedrock-invocationMetrics'], 'last chunk carries the invocation metrics');
  });

  it('keeps and signs the query string (ListAsyncInvokes)', async () => {
    await runtime.send(new ListAsyncInvokesCommand({ maxResults: 5, statusEquals: 'Completed' }));
    const upstream = onlyRequest();
    assert.equal(upstream.operation, 'ListAsyncInvokes');
    assert.match(upstream.query, /maxResults=5/);
    assert.match(upstream.query, /statusEquals=Completed/);
  });

  it('CountTokens over HTTP/1.1 as well', async () => {
    const h1 = runtimeClient(relay.url, TEST_MASTER_KEY, new NodeHttpHandler());
    try {
      const answer = await h1.send(
        new CountTokensCommand({
          modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
          input: { converse: { messages: [{ role: 'user', content: [{ text: 'count me' }] }] } },
        }),
      );
      assert.ok((answer.inputTokens ?? 0) > 0);
      assert.equal(onlyRequest().operation, 'CountTokens');
    } finally {
      h1.destroy();
    }
  });

  it('upstream errors pass through untouched and typed', async () => {
    const once = runtimeClient(relay.url, TEST_MASTER_KEY, undefined, 1);
    try {
      await assert.rejects(
        once.send(new ConverseCommand({ modelId: 'fake.throttle', messages: [{ role: 'user', content: [{ text: 'x' }] }] })),
        (error: Error & { $metadata?: { httpStatusCode?: number } }) => error.name === 'ThrottlingException' && error.$metadata?.httpStatusCode === 429,
      );
    } finally {
      once.destroy();
    }
  });
});

describe('agent runtime through the AWS SDK with a bearer header', () => {
  it('Retrieve, CreateSession (201, trailing slash) and GetSession', async () => {
    const retrieved = await agents.send(new RetrieveCommand({ knowledgeBaseId: 'KB12345678', retrievalQuery: { text: 'what is bedrock' } }));
    assert.ok((retrieved.retrievalResults ?? []).length > 0);
    const created = await agents.send(new CreateSessionCommand({}));
    assert.ok(created.sessionId);
    const got = await agents.send(new GetSessionCommand({ sessionIdentifier: created.sessionId! }));
    assert.ok(got.sessionId);
    const operations = fake.requests.map((r) => `${r.method} ${r.path} ${r.operation}`);
    assert.deepEqual(operations.slice(0, 2), ['POST /knowledgebases/KB12345678/retrieve Retrieve', 'PUT /sessions/ CreateSession']);
    assert.match(operations[2]!, /^GET \/sessions\/[^/]+\/ GetSession$/);
    assert.ok(fake.requests.every((r) => r.signature.valid));
  });

  it('InvokeAgent streams its event stream', async () => {
    const answer = await agents.send(new InvokeAgentCommand({ agentId: 'AGENT12345', agentAliasId: 'ALIAS12345', sessionId: 'session-1', inputText: 'hello' }));
    let text = '';
    for await (const event of answer.completion!) {
      if (event.chunk?.bytes) text += Buffer.from(event.chunk.bytes).toString();
    }
    assert.ok(text.length > 0);
    assert.ok(answer.sessionId, 'agent session header passes through');
  });
});

describe("the three calls of LiteLLM's Bedrock pass-through documentation, as raw HTTP", () => {
  const auth = { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' };

  it('converse on /bedrock/model/cohere.command-r-v1:0/converse', async () => {
    const res = await rawRequest(
      relay.url,
      'POST',
      '/bedrock/model/cohere.command-r-v1:0/converse',
      auth,
      JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }] }),
    );
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.body.toString()).output.message.role, 'assistant');
    assert.equal(onlyRequest().path, '/model/cohere.command-r-v1%3A0/converse');
  });

  it('apply guardrail', async () => {
    const res = await rawRequest(
      relay.url,
      'POST',
      '/bedrock/guardrail/guardrailIdentifier/version/1/apply',
      auth,
      JSON.stringify({ contents: [{ text: { text: 'Hello world' } }], source: 'INPUT' }),
    );
    assert.equal(res.status, 200);
    assert.ok(JSON.parse(res.body.toString()).usage);
    assert.equal(onlyRequest().operation, 'ApplyGuardrail');
  });

  it('retrieve from a knowledge base', async () => {
    const res = await rawRequest(
      relay.url,
      'POST',
      '/bedrock/knowledgebases/KB12345678/retrieve',
      auth,
      JSON.stringify({ retrievalQuery: { text: 'What is Bedrock?' } }),
    );
    assert.equal(res.status, 200);
    assert.ok(Array.isArray(JSON.parse(res.body.toString()).retrievalResults));
    assert.equal(onlyRequest().operation, 'Retrieve');
  });
});

describe('responses are relayed exactly', () => {
  it('status, body bytes and Bedrock headers arrive unchanged; hop-by-hop headers do not', async () => {
    const body =
      '{"output":{"message":{"role":"assistant","content":[{"text":"é ü 😀"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3},"metrics":{"latencyMs":1}}';
    fake.override(
      () => ({
        kind: 'body',
        status: 200,
        headers: { 'content-type': 'application/json', 'x-amzn-requestid': 'req-fixed-1', 'x-amzn-bedrock-custom': 'v', 'x-amz-bedrock-other': 'w' },
        body,
      }),
      { times: 1 },
    );
    const res = await rawRequest(relay.url, 'POST', '/bedrock/model/m/converse', { authorization: `Bearer ${TEST_MASTER_KEY}` }, '{}');
    assert.equal(res.status, 200);
    assert.equal(res.body.toString('utf8'), body);
    assert.equal(res.headers['x-amzn-requestid'], 'req-fixed-1');
    assert.equal(res.headers['x-amzn-bedrock-custom'], 'v');
    assert.equal(res.headers['x-amz-bedrock-other'], 'w');
    assert.equal(res.headers['content-type'], 'application/json');
  });

  it('an empty upstream body does not hang the stream', async () => {
    fake.override(() => ({ kind: 'body', status: 202, headers: { 'x-amzn-requestid': 'r' }, body: '' }), { times: 1 });
    const res = await rawRequest(relay.url, 'DELETE', '/bedrock/agents/A1/agentAliases/B1/memories', { authorization: `Bearer ${TEST_MASTER_KEY}` });
    assert.equal(res.status, 202);
    assert.equal(res.body.byteLength, 0);
  });

  it('frames reach the client while Bedrock is still sending', async () => {
    const slow = await startFakeBedrock({ frameDelayMs: 200 });
    const slowRelay = await startRelay({ fake: slow });
    try {
      const firstChunkSeenWhileUpstreamPending = await new Promise<boolean>((resolve, reject) => {
        const req = http.request(`${slowRelay.url}/bedrock/model/us.amazon.nova-micro-v1:0/converse-stream`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' },
        });
        req.on('response', (res) => {
          res.once('data', () => {
            resolve(slow.requests[0]?.outcome === 'pending');
            res.resume();
          });
        });
        req.on('error', reject);
        req.end('{"messages":[{"role":"user","content":[{"text":"Hi"}]}]}');
      });
      assert.equal(firstChunkSeenWhileUpstreamPending, true);
      assert.equal(await slow.requests[0]!.finished, 'complete');
    } finally {
      await slowRelay.close();
      await slow.close();
    }
  });
});

describe('failures', () => {
  it('an upstream reset mid-stream makes the SDK raise, never a clean truncated stream', async () => {
    const answer = await runtime.send(new ConverseStreamCommand({ modelId: 'fake.midstream-reset', messages: [{ role: 'user', content: [{ text: 'x' }] }] }));
    await assert.rejects(async () => {
      for await (const _event of answer.stream!) {
        // drain
      }
    });
  });

  it('a mid-stream exception frame reaches the SDK as its typed exception', async () => {
    const answer = await runtime.send(
      new ConverseStreamCommand({ modelId: 'fake.midstream-exception', messages: [{ role: 'user', content: [{ text: 'x' }] }] }),
    );
    await assert.rejects(
      async () => {
        for await (const _event of answer.stream!) {
          // drain
        }
      },
      (error: Error) => error.name === 'ModelStreamErrorException',
    );
  });

  it('a client that goes away mid-stream aborts the upstream call', async () => {
    const slow = await startFakeBedrock({ frameDelayMs: 300 });
    const slowRelay = await startRelay({ fake: slow });
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.request(`${slowRelay.url}/bedrock/model/m/converse-stream`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TEST_MASTER_KEY}` },
        });
        req.on('response', (res) =>
          res.once('data', () => {
            req.destroy();
            resolve();
          }),
        );
        req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
        req.end('{"messages":[]}');
      });
      assert.equal(await slow.requests[0]!.finished, 'client-aborted');
    } finally {
      await slowRelay.close();
      await slow.close();
    }
  });

  it('InvokeModelWithBidirectionalStream is refused with a typed error that says why', async () => {
    const res = await rawRequest(
      relay.url,
      'POST',
      '/bedrock/model/amazon.nova-sonic-v1:0/invoke-with-bidirectional-stream',
      { authorization: `Bearer ${TEST_MASTER_KEY}` },
      '',
    );
    assert.equal(res.status, 400);
    assert.equal(res.headers['x-amzn-errortype'], 'ValidationException');
    assert.match(JSON.parse(res.body.toString()).message, /Function URL/);
    assert.equal(fake.requests.length, 0);
  });

  it('a stalled upstream is cut by the upstream timeout', async () => {
    const quick = await startRelay({ fake, env: { RELAY_UPSTREAM_TIMEOUT_MS: '300' } });
    try {
      const res = await rawRequest(quick.url, 'POST', '/bedrock/model/fake.stall/converse', { authorization: `Bearer ${TEST_MASTER_KEY}` }, '{}').catch(
        (error: Error) => error,
      );
      // The fake sent its headers before stalling, so the relay had started: the stream is cut.
      assert.ok(res instanceof Error || res.status >= 500, 'no complete-looking answer');
    } finally {
      await quick.close();
    }
  });
});

describe('authentication and path safety', () => {
  it("missing and wrong keys get 401 in Bedrock's shape, typed in the SDK, nothing upstream", async () => {
    for (const key of ['sk-wrong', undefined]) {
      const client = key ? runtimeClient(relay.url, key, undefined, 1) : undefined;
      if (client) {
        await assert.rejects(
          client.send(new ConverseCommand({ modelId: 'm', messages: [] })),
          (error: Error & { $metadata?: { httpStatusCode?: number } }) =>
            error.name === 'UnrecognizedClientException' && error.$metadata?.httpStatusCode === 401,
        );
        client.destroy();
      } else {
        const res = await rawRequest(relay.url, 'POST', '/bedrock/model/m/converse', {}, '{}');
        assert.equal(res.status, 401);
        assert.equal(res.headers['x-amzn-errortype'], 'UnrecognizedClientException');
      }
    }
    const viaApiKeyHeader = await rawRequest(relay.url, 'POST', '/bedrock/model/m/converse', { 'x-api-key': TEST_MASTER_KEY }, '{}');
    assert.equal(viaApiKeyHeader.status, 200);
    assert.equal(fake.requests.length, 1, 'only the authenticated call went upstream');
  });

  for (const path of [
    '/bedrock/model/../../etc/converse',
    '/bedrock/model/%2e%2e/converse',
    '/bedrock//model/x/converse',
    '/bedrock/model/x%00/converse',
    '/bedrock/unknown/op',
  ]) {
    it(`answers ${path} itself and sends nothing upstream`, async () => {
      const res = await rawRequest(relay.url, 'POST', path, { authorization: `Bearer ${TEST_MASTER_KEY}` }, '{}');
      assert.ok(res.status === 400 || res.status === 404, `status ${res.status}`);
      assert.ok(res.headers['x-amzn-errortype']);
      assert.equal(fake.requests.length, 0);
    });
  }
});
