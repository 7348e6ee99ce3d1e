/**
 * Bedrock's compatible APIs through the relay with the real Anthropic and OpenAI SDKs as
 * callers, on bedrock-runtime (signed `bedrock`) and bedrock-mantle (signed `bedrock-mantle`),
 * against fakes that verify the signing name per host.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { FAKE_REPLY_CHUNKS, expectedAnthropicUsage, expectedOpenAIChatUsage, startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { rawRequest } from '../support/clients.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';

let runtimeFake: FakeBedrock;
let mantleFake: FakeBedrock;
let relay: RelayUnderTest;
const REPLY = FAKE_REPLY_CHUNKS.join('');

before(async () => {
  runtimeFake = await startFakeBedrock();
  mantleFake = await startFakeBedrock({ signingService: 'bedrock-mantle' });
  relay = await startRelay({ fake: runtimeFake, env: { AWS_ENDPOINT_URL_BEDROCK_MANTLE: mantleFake.url } });
});
after(async () => {
  await relay.close();
  await runtimeFake.close();
  await mantleFake.close();
});
beforeEach(() => {
  runtimeFake.reset();
  mantleFake.reset();
});

function signedFor(fake: FakeBedrock, service: string) {
  assert.ok(fake.requests.length > 0, 'a request reached the fake');
  for (const request of fake.requests) {
    assert.equal(request.signature.valid, true, JSON.stringify(request.signature));
    if (request.signature.valid) assert.equal(request.signature.service, service);
  }
}

const anthropicOn = (base: string, auth: 'authToken' | 'apiKey', key = TEST_MASTER_KEY) =>
  new Anthropic({ baseURL: base, [auth]: key, maxRetries: 0 } as ConstructorParameters<typeof Anthropic>[0]);
const openaiOn = (base: string, key = TEST_MASTER_KEY) => new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0 });

describe('Anthropic Messages API', () => {
  for (const auth of ['authToken', 'apiKey'] as const) {
    it(`on bedrock-runtime, key as ${auth}: plain and streamed`, async () => {
      const client = anthropicOn(`${relay.url}/bedrock/anthropic`, auth);
      const message = await client.messages.create({
        model: 'us.anthropic.claude-opus-4-7',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Hello' }],
      });
      assert.equal(message.content[0]?.type === 'text' ? message.content[0].text : '', REPLY);
      const stream = client.messages.stream({ model: 'us.anthropic.claude-opus-4-7', max_tokens: 64, messages: [{ role: 'user', content: 'Hi' }] });
      const final = await stream.finalMessage();
      assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', REPLY);
      assert.equal(final.usage.input_tokens, expectedAnthropicUsage(runtimeFake.requests[1]!.body).input_tokens);
      signedFor(runtimeFake, 'bedrock');
      assert.equal(runtimeFake.requests[0]!.path, '/anthropic/v1/messages');
    });
  }

  it("on bedrock-mantle (Claude Code's Mantle base URL ends in /anthropic)", async () => {
    const client = anthropicOn(`${relay.url}/bedrock-mantle/anthropic`, 'authToken');
    const final = await client.messages
      .stream({ model: 'anthropic.claude-opus-4-7', max_tokens: 32, messages: [{ role: 'user', content: 'Hi' }] })
      .finalMessage();
    assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', REPLY);
    signedFor(mantleFake, 'bedrock-mantle');
    assert.equal(runtimeFake.requests.length, 0);
  });

  it('keeps the streaming content-type and the query string (?beta=true)', async () => {
    const res = await rawRequest(
      relay.url,
      'POST',
      '/bedrock/anthropic/v1/messages?beta=true',
      { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      JSON.stringify({ model: 'us.anthropic.claude-opus-4-7', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'x' }] }),
    );
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/event-stream/);
    assert.match(res.body.toString(), /event: message_stop/);
    assert.equal(runtimeFake.requests[0]!.query, 'beta=true');
    assert.equal(runtimeFake.requests[0]!.headers['anthropic-version'], '2023-06-01');
  });

  it("a wrong key raises the SDK's AuthenticationError", async () => {
    const client = anthropicOn(`${relay.url}/bedrock/anthropic`, 'apiKey', 'sk-wrong');
    await assert.rejects(
      client.messages.create({ model: 'us.anthropic.claude-opus-4-7', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] }),
      Anthropic.AuthenticationError,
    );
    assert.equal(runtimeFake.requests.length, 0);
  });
});

describe('OpenAI-compatible APIs', () => {
  it('Chat Completions on bedrock-runtime: plain and streamed', async () => {
    const client = openaiOn(`${relay.url}/bedrock/openai/v1`);
    const completion = await client.chat.completions.create({ model: 'openai.gpt-oss-120b-1:0', messages: [{ role: 'user', content: 'Hello' }] });
    assert.equal(completion.choices[0]?.message.content, REPLY);
    assert.deepEqual(
      { prompt: completion.usage?.prompt_tokens, completion: completion.usage?.completion_tokens },
      {
        prompt: expectedOpenAIChatUsage(runtimeFake.requests[0]!.body).prompt_tokens,
        completion: expectedOpenAIChatUsage(runtimeFake.requests[0]!.body).completion_tokens,
      },
    );
    const stream = await client.chat.completions.create({ model: 'openai.gpt-oss-120b-1:0', stream: true, messages: [{ role: 'user', content: 'Hi' }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, REPLY);
    signedFor(runtimeFake, 'bedrock');
  });

  it('Responses on bedrock-runtime', async () => {
    const client = openaiOn(`${relay.url}/bedrock/openai/v1`);
    const response = await client.responses.create({ model: 'openai.gpt-oss-120b-1:0', input: 'Hello' });
    assert.equal(response.output_text, REPLY);
    assert.ok((response.usage?.input_tokens ?? 0) > 0);
  });

  it('Chat Completions, Responses and the model list on bedrock-mantle', async () => {
    const client = openaiOn(`${relay.url}/bedrock-mantle/v1`);
    const completion = await client.chat.completions.create({ model: 'openai.gpt-oss-120b', messages: [{ role: 'user', content: 'Hello' }] });
    assert.equal(completion.choices[0]?.message.content, REPLY);
    const streamed = await client.responses.create({ model: 'openai.gpt-oss-120b', input: 'Hi', stream: true });
    let text = '';
    for await (const event of streamed) if (event.type === 'response.output_text.delta') text += event.delta;
    assert.equal(text, REPLY);
    const models = await client.models.list();
    assert.ok(models.data.length > 0);
    signedFor(mantleFake, 'bedrock-mantle');
  });

  it("a wrong key raises the SDK's AuthenticationError; an unknown path a NotFoundError", async () => {
    await assert.rejects(
      openaiOn(`${relay.url}/bedrock/openai/v1`, 'sk-wrong').chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
      OpenAI.AuthenticationError,
    );
    await assert.rejects(openaiOn(`${relay.url}/bedrock/openai/v1`).embeddings.create({ model: 'm', input: 'x' }), OpenAI.NotFoundError);
    assert.equal(runtimeFake.requests.length, 0);
  });
});
