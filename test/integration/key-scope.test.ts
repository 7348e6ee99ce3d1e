/**
 * Issue 11, "model-scoped keys are scoped": through real HTTP, keys issued by the admin API and
 * the official bedrock-agent-runtime SDK client. A key limited by `models` cannot run agents or
 * flows (which run models of their own) unless object_permission names them; a key without
 * allowed_routes cannot delete or end sessions. Nothing refused may reach the fake Bedrock.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import {
  type BedrockAgentRuntimeClient,
  CreateSessionCommand,
  DeleteSessionCommand,
  EndSessionCommand,
  InvokeAgentCommand,
  InvokeFlowCommand,
  RetrieveAndGenerateCommand,
} from '@aws-sdk/client-bedrock-agent-runtime';
import { ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../lambda/store/embedded.js';
import { agentRuntimeClient, rawRequest, runtimeClient } from '../support/clients.js';
import { startFakeBedrock, type FakeBedrock } from '../support/fake-bedrock.js';
import { startRelay, TEST_MASTER_KEY, type RelayUnderTest } from '../support/relay-harness.js';

let fake: FakeBedrock;
let dynamo: EmbeddedDynamo;
let relay: RelayUnderTest;
const clients: BedrockAgentRuntimeClient[] = [];

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'anthropic.claude-3-5-sonnet-20240620-v1:0';
const AGENT = { agentId: 'AGENT12345', agentAliasId: 'ALIAS12345' };
const FLOW = { flowIdentifier: 'FLOW123456', flowAliasIdentifier: 'FLOWALIAS1' };

before(async () => {
  fake = await startFakeBedrock();
  dynamo = await startEmbeddedDynamo();
  relay = await startRelay({ fake, env: { RELAY_KEYS_TABLE: dynamo.tableName, RELAY_KEY_CACHE_TTL_SECONDS: '0' }, overrides: { dynamo: dynamo.clients } });
});
after(async () => {
  for (const client of clients) client.destroy();
  await relay.close();
  await dynamo.stop().catch(() => undefined);
  await fake.close();
});
beforeEach(() => fake.reset());

async function newKey(fields: Record<string, unknown>): Promise<string> {
  const res = await rawRequest(
    relay.url,
    'POST',
    '/key/generate',
    { authorization: `Bearer ${TEST_MASTER_KEY}`, 'content-type': 'application/json' },
    JSON.stringify(fields),
  );
  assert.equal(res.status, 200, res.body.toString());
  return JSON.parse(res.body.toString()).key as string;
}

async function agentsFor(fields: Record<string, unknown>): Promise<BedrockAgentRuntimeClient> {
  const client = agentRuntimeClient(relay.url, await newKey(fields));
  clients.push(client);
  return client;
}

/** The SDK's typed exception, with the message the relay wrote; nothing went upstream. */
async function refused(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: Error & { $metadata?: { httpStatusCode?: number } }) => {
    assert.equal(error.name, 'AccessDeniedException');
    assert.equal(error.$metadata?.httpStatusCode, 403);
    assert.match(error.message, message);
    return true;
  });
  assert.deepEqual(
    fake.requests.map((r) => r.operation),
    [],
    'a refused call reached Bedrock',
  );
}

async function agentText(client: BedrockAgentRuntimeClient): Promise<string> {
  const answer = await client.send(new InvokeAgentCommand({ ...AGENT, sessionId: 'session-1', inputText: 'hello' }));
  let text = '';
  for await (const event of answer.completion!) if (event.chunk?.bytes) text += Buffer.from(event.chunk.bytes).toString();
  return text;
}

async function flowOutput(client: BedrockAgentRuntimeClient): Promise<unknown> {
  const answer = await client.send(
    new InvokeFlowCommand({ ...FLOW, inputs: [{ nodeName: 'FlowInputNode', nodeOutputName: 'document', content: { document: 'hello' } }] }),
  );
  let output: unknown;
  for await (const event of answer.responseStream!) if (event.flowOutputEvent) output = event.flowOutputEvent.content?.document;
  return output;
}

describe('a key limited by models cannot run agents or flows it is not given', () => {
  it('InvokeAgent and InvokeFlow are AccessDeniedException naming object_permission; nothing reaches Bedrock', async () => {
    const client = await agentsFor({ models: [HAIKU] });
    await refused(agentText(client), /object_permission\.agents/);
    await refused(flowOutput(client), /object_permission\.flows/);
    // The same key still runs its model, and retrieval-augmented generation with it.
    const runtime = runtimeClient(relay.url, await newKey({ models: [HAIKU] }), undefined, 1);
    const converse = await runtime.send(new ConverseCommand({ modelId: HAIKU, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }));
    runtime.destroy();
    assert.ok(converse.output?.message);
    const rag = (modelArn: string) =>
      client.send(
        new RetrieveAndGenerateCommand({
          input: { text: 'q' },
          retrieveAndGenerateConfiguration: { type: 'KNOWLEDGE_BASE', knowledgeBaseConfiguration: { knowledgeBaseId: 'KB12345678', modelArn } },
        }),
      );
    assert.ok((await rag(`arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}`)).output?.text);
    fake.reset();
    await refused(rag(`arn:aws:bedrock:us-east-1::foundation-model/${SONNET}`), /model .*sonnet.*models/);
  });

  it('runs the agent and the flow that object_permission names, and no other', async () => {
    const client = await agentsFor({
      models: [HAIKU],
      object_permission: { agents: [`${AGENT.agentId}/${AGENT.agentAliasId}`], flows: [FLOW.flowIdentifier] },
    });
    assert.ok((await agentText(client)).length > 0);
    assert.ok(await flowOutput(client));
    assert.deepEqual(
      fake.requests.map((r) => r.operation),
      ['InvokeAgent', 'InvokeFlow'],
    );
    fake.reset();
    await refused(
      client.send(new InvokeAgentCommand({ agentId: AGENT.agentId, agentAliasId: 'TSTALIASID', sessionId: 'session-1', inputText: 'hi' })),
      /alias TSTALIASID.*object_permission\.agents/,
    );
    await refused(client.send(new InvokeFlowCommand({ flowIdentifier: 'FLOW999999', flowAliasIdentifier: 'FLOWALIAS1', inputs: [] })), /flow FLOW999999/);
  });

  it('a key without a models list runs any agent and flow, as before', async () => {
    const client = await agentsFor({});
    assert.ok((await agentText(client)).length > 0);
    assert.ok(await flowOutput(client));
    assert.deepEqual(
      fake.requests.map((r) => r.operation),
      ['InvokeAgent', 'InvokeFlow'],
    );
  });
});

describe('destructive session calls need allowed_routes', () => {
  it('a key without allowed_routes creates a session but may not end or delete it', async () => {
    const client = await agentsFor({});
    const { sessionId } = await client.send(new CreateSessionCommand({}));
    assert.ok(sessionId);
    fake.reset();
    await refused(client.send(new EndSessionCommand({ sessionIdentifier: sessionId })), /EndSession .*allowed_routes/);
    await refused(client.send(new DeleteSessionCommand({ sessionIdentifier: sessionId })), /DeleteSession .*"destructive".*allowed_routes/);
  });

  it('a key whose allowed_routes lists them ends and deletes sessions', async () => {
    for (const allowed_routes of [['sessions'], ['llm_api_routes'], ['/bedrock/sessions/{sessionIdentifier}', '/bedrock/sessions/{sessionIdentifier}/']]) {
      fake.reset();
      const client = await agentsFor({ allowed_routes });
      const ended = await client.send(new EndSessionCommand({ sessionIdentifier: 'session-1' }));
      assert.equal(ended.sessionStatus, 'ENDED');
      await client.send(new DeleteSessionCommand({ sessionIdentifier: 'session-1' }));
      assert.deepEqual(
        fake.requests.map((r) => r.operation),
        ['EndSession', 'DeleteSession'],
        JSON.stringify(allowed_routes),
      );
    }
  });

  it('the admin API accepts the "destructive" group', async () => {
    const client = await agentsFor({ allowed_routes: ['destructive'] });
    await client.send(new DeleteSessionCommand({ sessionIdentifier: 'session-1' }));
    assert.deepEqual(
      fake.requests.map((r) => r.operation),
      ['DeleteSession'],
    );
  });
});
