import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RelayError } from '../../lambda/http/errors.js';
import type { KeyRecord } from '../../lambda/keys/types.js';
import { POLICY_ADMISSION, authorizeCall, keyAllowsModel } from '../../lambda/policy/authorize.js';
import type { CallContext } from '../../lambda/pipeline.js';
import { unclassifiedOperations } from '../../lambda/policy/model-use.js';
import { DESTRUCTIVE_OPERATIONS, normalizeRouteEntry } from '../../lambda/policy/routes.js';
import { RouteMatcher } from '../../lambda/routes/match.js';
import { ROUTES } from '../../lambda/routes/table.js';
import { keyRecord } from '../support/key-record.js';

const matcher = new RouteMatcher();

interface CallOptions {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  /** What the relay core extracted as the model (defaults: the path label, or the body's `model`). */
  readonly model?: string | null;
}

/** A call as the relay core builds it: the real route matcher, a raw path as a client sends it. */
function call(method: string, target: string, options: CallOptions = {}): CallContext {
  const [rawPath = '', rawQueryString = ''] = target.split('?');
  const match = matcher.match(method, rawPath, rawQueryString);
  const body = options.body === undefined ? Buffer.alloc(0) : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
  let model: string | undefined;
  if (options.model !== undefined) model = options.model ?? undefined;
  else if (match.route.model?.from === 'path') model = match.params[match.route.model.label];
  else if (match.route.model?.from === 'body' && typeof options.body === 'object') model = (options.body as { model?: string }).model;
  return {
    request: { method, rawPath, rawQueryString, headers: options.headers ?? {}, body, requestId: 'req-1' },
    match,
    principal: { kind: 'master' },
    model,
  };
}

function key(policy: Partial<Pick<KeyRecord, 'models' | 'allowed_operations' | 'allowed_routes' | 'object_permission'>>): KeyRecord {
  return keyRecord(policy);
}

function allowed(record: KeyRecord, context: CallContext): void {
  assert.doesNotThrow(() => authorizeCall(record, context));
}

function denied(record: KeyRecord, context: CallContext, message?: RegExp): void {
  assert.throws(
    () => authorizeCall(record, context),
    (error: unknown) => {
      assert.ok(error instanceof RelayError);
      assert.equal(error.status, 403);
      assert.equal(error.type, 'AccessDeniedException');
      assert.ok(!/sk-/.test(error.message), 'no key material in denials');
      if (message) assert.match(error.message, message);
      return true;
    },
  );
}

const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'anthropic.claude-3-sonnet-20240229-v1:0';
const converse = (modelPath: string, options?: CallOptions) => call('POST', `/bedrock/model/${modelPath}/converse`, options);

describe('models allow-list', () => {
  const haikuOnly = key({ models: [HAIKU] });

  it('admits the model in every spelling: %3A, raw colon, profiles, ARNs, case', () => {
    for (const spelling of [
      'anthropic.claude-3-haiku-20240307-v1%3A0',
      'anthropic.claude-3-haiku-20240307-v1:0',
      'us.anthropic.claude-3-haiku-20240307-v1%3A0',
      'eu.anthropic.claude-3-haiku-20240307-v1:0',
      'apac.anthropic.claude-3-haiku-20240307-v1:0',
      'global.anthropic.claude-3-haiku-20240307-v1:0',
      'arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-3-haiku-20240307-v1%3A0',
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0',
      'ANTHROPIC.CLAUDE-3-HAIKU-20240307-V1%3A0',
    ]) {
      allowed(haikuOnly, converse(spelling));
    }
  });

  it('refuses other models in every spelling', () => {
    for (const spelling of [
      'anthropic.claude-3-sonnet-20240229-v1%3A0',
      'anthropic.claude-3-sonnet-20240229-v1:0',
      'us.anthropic.claude-3-sonnet-20240229-v1:0',
      'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-sonnet-20240229-v1:0',
      'arn%3Aaws%3Abedrock%3Aus-east-1%3A%3Afoundation-model%2Fanthropic.claude-3-sonnet-20240229-v1%3A0',
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-sonnet-20240229-v1:0',
      'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abcdef123456',
      'anthropic.claude-3-haiku-20240307-v1%3A0x',
      'anthropic.claude-3-haiku-20240307-v1%253A0',
      'amazon.nova-lite-v1:0',
    ]) {
      denied(haikuOnly, converse(spelling), /not allowed to use model/);
    }
  });

  it('checks every model operation, the compatible APIs and bedrock-mantle', () => {
    allowed(haikuOnly, call('POST', `/bedrock/model/${HAIKU}/invoke-with-response-stream`));
    denied(haikuOnly, call('POST', `/bedrock/model/${SONNET}/count-tokens`));
    allowed(haikuOnly, call('POST', '/bedrock/anthropic/v1/messages', { body: { model: `us.${HAIKU}`, messages: [] } }));
    denied(haikuOnly, call('POST', '/bedrock/openai/v1/chat/completions', { body: { model: SONNET, messages: [] } }));
    denied(haikuOnly, call('POST', '/bedrock-mantle/v1/chat/completions', { body: { model: 'openai.gpt-oss-120b', messages: [] } }));
    allowed(haikuOnly, call('POST', '/bedrock/async-invoke', { body: { modelId: HAIKU, modelInput: {} }, model: null }));
    denied(haikuOnly, call('POST', '/bedrock/async-invoke', { body: { modelId: SONNET, modelInput: {} }, model: null }));
    denied(haikuOnly, call('GET', `/bedrock/foundation-models/${SONNET}`));
  });

  it('refuses a model route whose model cannot be found, and a body that disagrees with the core', () => {
    denied(haikuOnly, call('POST', '/bedrock/anthropic/v1/messages', { body: { messages: [] } }), /names none/);
    denied(haikuOnly, call('POST', '/bedrock/anthropic/v1/messages', { body: { model: SONNET }, model: HAIKU }));
    denied(haikuOnly, call('POST', '/bedrock/openai/v1/chat/completions', { body: 'not json', model: HAIKU }), /could not be read/);
    denied(haikuOnly, call('POST', '/bedrock/openai/v1/chat/completions', { body: { model: 42 }, model: HAIKU }));
  });

  it('follows wildcards and the "all models" spellings', () => {
    const claude = key({ models: ['anthropic.claude-*'] });
    allowed(claude, converse(SONNET));
    allowed(claude, converse(`eu.${SONNET}`));
    denied(claude, converse('amazon.nova-pro-v1:0'));
    denied(claude, converse('meta.llama3-70b-instruct-v1:0'));
    for (const all of [[], ['*'], ['all-proxy-models']]) allowed(key({ models: all }), converse('amazon.nova-pro-v1:0'));
  });

  it('keeps a profile entry to its geography', () => {
    const usOnly = key({ models: [`us.${HAIKU}`] });
    allowed(usOnly, converse(`us.${HAIKU}`));
    denied(usOnly, converse(`eu.${HAIKU}`));
    denied(usOnly, converse(HAIKU));
  });

  it('checks models named in agent-runtime bodies', () => {
    const rag = (modelArn: string) =>
      call('POST', '/bedrock/retrieveAndGenerate', {
        body: {
          input: { text: 'q' },
          retrieveAndGenerateConfiguration: { type: 'KNOWLEDGE_BASE', knowledgeBaseConfiguration: { knowledgeBaseId: 'KB12345678', modelArn } },
        },
      });
    allowed(haikuOnly, rag(`arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}`));
    denied(haikuOnly, rag(`arn:aws:bedrock:us-east-1::foundation-model/${SONNET}`));
    denied(haikuOnly, call('POST', '/bedrock/agents/session-1', { body: { foundationModel: SONNET, instruction: 'x' } }));
    denied(haikuOnly, call('POST', '/bedrock/agents/session-1', { body: { foundationModel: HAIKU, collaborators: [{ foundationModel: SONNET }] } }));
    allowed(haikuOnly, call('POST', '/bedrock/agents/session-1', { body: { foundationModel: HAIKU, collaborators: [{ foundationModel: `us.${HAIKU}` }] } }));
  });

  it('answers discovery filtering', () => {
    assert.ok(keyAllowsModel(haikuOnly, `apac.${HAIKU}`));
    assert.ok(!keyAllowsModel(haikuOnly, SONNET));
    assert.ok(keyAllowsModel(key({}), SONNET));
  });
});

describe('allowed_operations and allowed_routes', () => {
  it('limits a key to Converse and ConverseStream by operation', () => {
    const record = key({ allowed_operations: ['Converse', 'ConverseStream'] });
    allowed(record, converse(HAIKU));
    allowed(record, call('POST', `/bedrock/model/${HAIKU}/converse-stream`));
    denied(record, call('POST', `/bedrock/model/${HAIKU}/invoke`), /InvokeModel \(allowed_operations\)/);
    denied(record, call('POST', '/bedrock/knowledgebases/KB12345678/retrieve'));
  });

  it('limits by route group', () => {
    const record = key({ allowed_routes: ['converse'] });
    allowed(record, converse(HAIKU));
    denied(record, call('POST', `/bedrock/model/${HAIKU}/invoke`), /allowed_routes/);
  });

  it('bars agents and knowledge bases with ! entries, allowing the rest', () => {
    const record = key({ allowed_routes: ['!agents', '!knowledge-bases'] });
    allowed(record, converse(HAIKU));
    allowed(record, call('POST', '/bedrock/guardrail/gr1/version/1/apply'));
    denied(record, call('POST', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/sessions/s1/text'));
    denied(record, call('POST', '/bedrock/agents/session-1', { body: {} }));
    denied(record, call('POST', '/bedrock/knowledgebases/KB12345678/retrieve'));
    denied(record, call('POST', '/bedrock/retrieveAndGenerateStream', { body: {} }));
  });

  it('matches path patterns against the route table, not the raw path', () => {
    const modelsOnly = key({ allowed_routes: ['/bedrock/model/*'] });
    allowed(modelsOnly, call('POST', `/bedrock/model/${HAIKU}/invoke`));
    allowed(modelsOnly, converse('arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.x'));
    denied(modelsOnly, call('POST', '/bedrock/knowledgebases/KB12345678/retrieve'));
    const converseOnly = key({ allowed_routes: ['/bedrock/model/*/converse'] });
    allowed(converseOnly, converse(HAIKU));
    denied(converseOnly, call('POST', `/bedrock/model/${HAIKU}/converse-stream`));
    const mantle = key({ allowed_routes: ['/bedrock-mantle/*', '!/bedrock-mantle/v1/models'] });
    allowed(mantle, call('POST', '/bedrock-mantle/v1/responses', { body: { model: 'x' } }));
    denied(mantle, call('GET', '/bedrock-mantle/v1/models'));
    denied(mantle, converse(HAIKU));
  });
});

describe('resource allow-lists (object_permission)', () => {
  it('limits knowledge bases by ID, in paths and bodies', () => {
    const record = key({ object_permission: { knowledge_bases: ['KB12345678'] } });
    allowed(record, call('POST', '/bedrock/knowledgebases/KB12345678/retrieve', { body: { retrievalQuery: { text: 'q' } } }));
    denied(record, call('POST', '/bedrock/knowledgebases/KB99999999/retrieve'), /knowledge base KB99999999/);
    const rag = (knowledgeBaseId: string) =>
      call('POST', '/bedrock/retrieveAndGenerate', { body: { retrieveAndGenerateConfiguration: { knowledgeBaseConfiguration: { knowledgeBaseId } } } });
    allowed(record, rag('KB12345678'));
    denied(record, rag('KB99999999'));
    denied(record, call('POST', '/bedrock/retrieveAndGenerate', { body: '{broken' }), /could not be read/);
    const query = (knowledgeBaseArn: string) =>
      call('POST', '/bedrock/generateQuery', {
        body: { transformationConfiguration: { textToSqlConfiguration: { knowledgeBaseConfiguration: { knowledgeBaseArn } } } },
      });
    allowed(record, query('arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB12345678'));
    denied(record, query('arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB99999999'));
    denied(record, query('arn:aws:bedrock:us-east-1:123456789012:agent/KB12345678'), /knowledge base/);
    denied(
      record,
      call('POST', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/sessions/s1/text', {
        body: { inputText: 'hi', sessionState: { knowledgeBaseConfigurations: [{ knowledgeBaseId: 'KB99999999' }] } },
      }),
    );
    denied(record, call('POST', '/bedrock/tags/arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB99999999'));
    // Calls that cannot name a knowledge base are not affected, whatever their body.
    allowed(record, converse(HAIKU, { body: 'not json at all' }));
  });

  it('limits agents by ID or by ID/alias', () => {
    const anyAlias = key({ object_permission: { agents: ['AGENT12345'] } });
    const oneAlias = key({ object_permission: { agents: ['AGENT12345/ALIAS00001'] } });
    const invoke = (agent: string, alias: string) =>
      call('POST', `/bedrock/agents/${agent}/agentAliases/${alias}/sessions/s1/text`, { body: { inputText: 'x' } });
    allowed(anyAlias, invoke('AGENT12345', 'ALIAS00002'));
    denied(anyAlias, invoke('AGENT99999', 'ALIAS00001'), /agent AGENT99999/);
    allowed(oneAlias, invoke('AGENT12345', 'ALIAS00001'));
    denied(oneAlias, invoke('AGENT12345', 'TSTALIASID'), /alias TSTALIASID/);
    // A slash smuggled into the agent label does not turn into an alias.
    denied(oneAlias, invoke('AGENT12345%2FALIAS00001', 'OTHERALIAS'));
    const collaborator = (agentAliasArn: string) =>
      call('POST', '/bedrock/agents/session-1', { body: { foundationModel: HAIKU, collaboratorConfigurations: [{ agentAliasArn }] } });
    allowed(oneAlias, collaborator('arn:aws:bedrock:us-east-1:123456789012:agent-alias/AGENT12345/ALIAS00001'));
    denied(oneAlias, collaborator('arn:aws:bedrock:us-east-1:123456789012:agent-alias/AGENT12345/ALIAS00009'));
  });

  it('limits flows by ID or ARN, including the alias given in the query', () => {
    const record = key({ object_permission: { flows: ['arn:aws:bedrock:us-east-1:123456789012:flow/FLOW123456'] } });
    allowed(record, call('POST', '/bedrock/flows/FLOW123456/aliases/FLOWALIAS1', { body: {} }));
    allowed(record, call('POST', '/bedrock/flows/arn:aws:bedrock:us-east-1:123456789012:flow/FLOW123456/aliases/FLOWALIAS1', { body: {} }));
    denied(record, call('POST', '/bedrock/flows/arn:aws:bedrock:us-east-1:999999999999:flow/FLOW123456/aliases/FLOWALIAS1', { body: {} }), /flow/);
    denied(record, call('POST', '/bedrock/flows/FLOW999999/aliases/FLOWALIAS1', { body: {} }));
    const aliasOnly = key({ object_permission: { flows: ['FLOW123456/FLOWALIAS1'] } });
    allowed(aliasOnly, call('GET', '/bedrock/flows/FLOW123456/executions?flowAliasIdentifier=FLOWALIAS1'));
    denied(aliasOnly, call('GET', '/bedrock/flows/FLOW123456/executions?flowAliasIdentifier=FLOWALIAS2'));
    denied(aliasOnly, call('GET', '/bedrock/flows/FLOW123456/executions'));
  });

  it('limits guardrails in paths, headers and bodies', () => {
    const record = key({ object_permission: { guardrails: ['gr1abcdef'] } });
    allowed(record, call('POST', '/bedrock/guardrail/gr1abcdef/version/1/apply', { body: {} }));
    allowed(record, call('POST', '/bedrock/guardrail/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aguardrail%2Fgr1abcdef/version/DRAFT/apply'));
    denied(record, call('POST', '/bedrock/guardrail/gr9zzzzzz/version/1/apply'), /guardrail gr9zzzzzz/);
    // A call without a guardrail is not limited by the guardrail list.
    allowed(record, converse(HAIKU, { body: { messages: [] } }));
    allowed(record, converse(HAIKU, { body: { guardrailConfig: { guardrailIdentifier: 'gr1abcdef', guardrailVersion: '1' } } }));
    denied(record, converse(HAIKU, { body: { guardrailConfig: { guardrailIdentifier: 'gr9zzzzzz', guardrailVersion: '1' } } }));
    denied(record, call('POST', `/bedrock/model/${HAIKU}/invoke`, { headers: { 'x-amzn-bedrock-guardrailidentifier': 'gr9zzzzzz' } }));
    allowed(record, call('POST', `/bedrock/model/${HAIKU}/invoke`, { headers: { 'x-amzn-bedrock-guardrailidentifier': 'gr1abcdef' } }));
  });
});

describe('policy admission', () => {
  it('lets the master key through and checks virtual keys', async () => {
    const context = converse(SONNET);
    await assert.doesNotReject(POLICY_ADMISSION.admit(context));
    const record = key({ models: [HAIKU] });
    await assert.rejects(
      POLICY_ADMISSION.admit({ ...context, principal: { kind: 'virtual-key', token: record.token, record } }),
      (error: unknown) => error instanceof RelayError && error.status === 403,
    );
    await assert.doesNotReject(POLICY_ADMISSION.admit({ ...converse(HAIKU), principal: { kind: 'virtual-key', token: record.token, record } }));
  });
});

describe('a model-scoped key runs only the models it names (issue 11)', () => {
  const haikuOnly = key({ models: [HAIKU] });
  const ACCOUNT = 'arn:aws:bedrock:us-east-1:123456789012';
  const invokeAgent = (agent = 'AGENT12345', alias = 'ALIAS00001') =>
    call('POST', `/bedrock/agents/${agent}/agentAliases/${alias}/sessions/s1/text`, { body: { inputText: 'hi' } });
  const inline = (body: unknown) => call('POST', '/bedrock/agents/session-1', { body });
  const flowCalls = (flow = 'FLOW123456') => [
    call('POST', `/bedrock/flows/${flow}/aliases/FLOWALIAS1`, { body: { inputs: [] } }),
    call('POST', `/bedrock/flows/${flow}/aliases/FLOWALIAS1/executions`, { body: { inputs: [] } }),
    call('GET', `/bedrock/flows/${flow}/aliases/FLOWALIAS1/executions/EXEC1`),
    call('GET', `/bedrock/flows/${flow}/aliases/FLOWALIAS1/executions/EXEC1/events?eventType=Node`),
    call('GET', `/bedrock/flows/${flow}/executions`),
  ];

  it('refuses agents (InvokeAgent and agent memory) unless object_permission.agents names them', () => {
    denied(haikuOnly, invokeAgent(), /object_permission\.agents/);
    denied(haikuOnly, invokeAgent(), /agent AGENT12345 \(alias ALIAS00001\)/);
    denied(
      haikuOnly,
      call('GET', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/memories?memoryType=SESSION_SUMMARY&memoryId=m1'),
      /object_permission\.agents/,
    );
    const withAgent = key({ models: [HAIKU], object_permission: { agents: ['AGENT12345'] } });
    allowed(withAgent, invokeAgent());
    allowed(withAgent, invokeAgent('AGENT12345', 'ALIAS00002'));
    denied(withAgent, invokeAgent('AGENT99999'), /agent AGENT99999/);
    const oneAlias = key({ models: [HAIKU], object_permission: { agents: [`${ACCOUNT}:agent-alias/AGENT12345/ALIAS00001`] } });
    allowed(oneAlias, invokeAgent());
    denied(oneAlias, invokeAgent('AGENT12345', 'TSTALIASID'), /alias TSTALIASID/);
    // `*` is the administrator naming every agent.
    allowed(key({ models: [HAIKU], object_permission: { agents: ['*'] } }), invokeAgent('ANYAGENT01'));
    // Listing flows or knowledge bases does not open agents.
    denied(key({ models: [HAIKU], object_permission: { flows: ['*'], knowledge_bases: ['*'] } }), invokeAgent());
  });

  it('refuses every flow operation unless object_permission.flows names the flow', () => {
    for (const context of flowCalls()) denied(haikuOnly, context, /object_permission\.flows/);
    const withFlow = key({ models: [HAIKU], object_permission: { flows: [`${ACCOUNT}:flow/FLOW123456`] } });
    for (const context of flowCalls()) allowed(withFlow, context);
    for (const context of flowCalls('FLOW999999')) denied(withFlow, context, /flow FLOW999999/);
    const aliasOnly = key({ models: [HAIKU], object_permission: { flows: ['FLOW123456/FLOWALIAS2'] } });
    denied(aliasOnly, flowCalls()[0]!, /alias FLOWALIAS1/);
  });

  it('allows an inline agent only when every model it names is allowed, and its collaborator agents are listed', () => {
    allowed(haikuOnly, inline({ foundationModel: HAIKU, instruction: 'x' }));
    allowed(haikuOnly, inline({ foundationModel: `us.${HAIKU}`, collaborators: [{ foundationModel: HAIKU }] }));
    denied(haikuOnly, inline({ foundationModel: SONNET }), /model anthropic\.claude-3-sonnet/);
    denied(haikuOnly, inline({ foundationModel: HAIKU, collaborators: [{ foundationModel: SONNET }] }), /add it to the key's models/);
    denied(haikuOnly, inline({ foundationModel: HAIKU, promptOverrideConfiguration: { promptConfigurations: [{ foundationModel: SONNET }] } }));
    denied(haikuOnly, inline({ instruction: 'no model' }), /names none/);
    denied(haikuOnly, inline({ foundationModel: 42 }), /could not be read/);
    const collaborator = { foundationModel: HAIKU, collaboratorConfigurations: [{ agentAliasArn: `${ACCOUNT}:agent-alias/AGENT12345/ALIAS00001` }] };
    denied(haikuOnly, inline(collaborator), /object_permission\.agents/);
    allowed(key({ models: [HAIKU], object_permission: { agents: ['AGENT12345'] } }), inline(collaborator));
  });

  it('refuses prompt routers and application inference profiles unless the key lists that exact ARN', () => {
    const routers = [
      `${ACCOUNT}:default-prompt-router/anthropic.claude:1`,
      `${ACCOUNT}:prompt-router/abcdef123456`,
      `${ACCOUNT}:application-inference-profile/abcdef123456`,
      `${ACCOUNT}:provisioned-model/abcdef123456`,
    ];
    const claude = key({ models: ['anthropic.claude-*', HAIKU] });
    for (const arn of routers) {
      denied(claude, converse(encodeURIComponent(arn)), /not allowed to use model/);
      denied(
        claude,
        call('POST', '/bedrock/retrieveAndGenerate', {
          body: { retrieveAndGenerateConfiguration: { knowledgeBaseConfiguration: { knowledgeBaseId: 'KB12345678', modelArn: arn } } },
        }),
      );
      denied(claude, inline({ foundationModel: arn }));
      allowed(key({ models: [HAIKU, arn] }), converse(encodeURIComponent(arn)));
    }
    // A wildcard over router ARNs names none of them.
    denied(key({ models: [`${ACCOUNT}:prompt-router/*`] }), converse(encodeURIComponent(routers[1]!)));
  });

  it('checks RetrieveAndGenerate, Rerank and OptimizePrompt by the model they name, and refuses when none is named', () => {
    const RERANK = 'amazon.rerank-v1:0';
    const withRerank = key({ models: [HAIKU, RERANK] });
    const rag = (operation: 'retrieveAndGenerate' | 'retrieveAndGenerateStream', modelArn?: string) =>
      call('POST', `/bedrock/${operation}`, {
        body: {
          input: { text: 'q' },
          retrieveAndGenerateConfiguration: {
            type: 'KNOWLEDGE_BASE',
            knowledgeBaseConfiguration: { knowledgeBaseId: 'KB12345678', ...(modelArn ? { modelArn } : {}) },
          },
        },
      });
    for (const operation of ['retrieveAndGenerate', 'retrieveAndGenerateStream'] as const) {
      allowed(haikuOnly, rag(operation, HAIKU));
      denied(haikuOnly, rag(operation, SONNET), /not allowed to use model/);
      denied(haikuOnly, rag(operation), /names none/);
    }
    const external = call('POST', '/bedrock/retrieveAndGenerate', {
      body: { retrieveAndGenerateConfiguration: { type: 'EXTERNAL_SOURCES', externalSourcesConfiguration: { modelArn: SONNET, sources: [] } } },
    });
    denied(haikuOnly, external);
    const rerank = (modelArn?: string) =>
      call('POST', '/bedrock/rerank', {
        body: {
          queries: [],
          sources: [],
          rerankingConfiguration: { type: 'BEDROCK_RERANKING_MODEL', bedrockRerankingConfiguration: { modelConfiguration: modelArn ? { modelArn } : {} } },
        },
      });
    allowed(withRerank, rerank(`arn:aws:bedrock:us-west-2::foundation-model/${RERANK}`));
    denied(haikuOnly, rerank(`arn:aws:bedrock:us-west-2::foundation-model/${RERANK}`), /amazon\.rerank/);
    denied(withRerank, rerank(), /names none/);
    allowed(haikuOnly, call('POST', '/bedrock/optimize-prompt', { body: { input: { textPrompt: { text: 'x' } }, targetModelId: HAIKU } }));
    denied(haikuOnly, call('POST', '/bedrock/optimize-prompt', { body: { input: { textPrompt: { text: 'x' } }, targetModelId: SONNET } }));
    denied(haikuOnly, call('POST', '/bedrock/optimize-prompt', { body: { input: { textPrompt: { text: 'x' } } } }), /names none/);
  });

  it('refuses calls whose model Bedrock picks unless the knowledge base is named', () => {
    const generateQuery = call('POST', '/bedrock/generateQuery', {
      body: {
        queryGenerationInput: { type: 'TEXT', text: 'q' },
        transformationConfiguration: {
          mode: 'TEXT_TO_SQL',
          textToSqlConfiguration: { type: 'KNOWLEDGE_BASE', knowledgeBaseConfiguration: { knowledgeBaseArn: `${ACCOUNT}:knowledge-base/KB12345678` } },
        },
      },
    });
    denied(haikuOnly, generateQuery, /object_permission\.knowledge_bases/);
    denied(haikuOnly, call('POST', '/bedrock/generateQuery', { body: { queryGenerationInput: { type: 'TEXT', text: 'q' } } }), /names no knowledge base/);
    const withKb = key({ models: [HAIKU], object_permission: { knowledge_bases: ['KB12345678'] } });
    allowed(withKb, generateQuery);
    const agentic = (foundationModel?: string) =>
      call('POST', '/bedrock/agenticRetrieveStream', {
        body: {
          messages: [],
          retrievers: [{ configuration: { knowledgeBase: { knowledgeBaseId: 'KB12345678' } } }],
          agenticRetrieveConfiguration: foundationModel
            ? {
                foundationModelType: 'CUSTOM',
                foundationModelConfiguration: { type: 'BEDROCK', bedrockFoundationModelConfiguration: { modelConfiguration: { modelArn: foundationModel } } },
              }
            : { foundationModelType: 'MANAGED' },
        },
      });
    allowed(haikuOnly, agentic(HAIKU));
    denied(haikuOnly, agentic(SONNET), /not allowed to use model/);
    denied(haikuOnly, agentic(), /object_permission\.knowledge_bases/);
    allowed(withKb, agentic());
  });

  it('leaves retrieval, sessions and guardrails to a model-scoped key, and unscoped keys as they were', () => {
    allowed(haikuOnly, call('POST', '/bedrock/knowledgebases/KB12345678/retrieve', { body: { retrievalQuery: { text: 'q' } } }));
    allowed(haikuOnly, call('PUT', '/bedrock/sessions/', { body: {} }));
    allowed(haikuOnly, call('PUT', '/bedrock/sessions/s1/invocationSteps/', { body: {} }));
    allowed(haikuOnly, call('POST', '/bedrock/guardrail/gr1abcdef/version/1/apply', { body: {} }));
    allowed(haikuOnly, call('GET', '/bedrock/foundation-models'));
    for (const unscoped of [key({}), key({ models: ['*'] }), key({ models: ['all-proxy-models'] })]) {
      allowed(unscoped, invokeAgent('AGENT99999'));
      for (const context of flowCalls('FLOW999999')) allowed(unscoped, context);
      allowed(unscoped, inline({ foundationModel: SONNET }));
    }
  });
});

describe('destructive agent-runtime calls need an explicit allowed_routes grant (issue 11)', () => {
  const destructive = () => [
    call('DELETE', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/memories'),
    call('POST', '/bedrock/flows/FLOW123456/aliases/FLOWALIAS1/executions/EXEC1/stop'),
    call('PUT', '/bedrock/sessions/s1/', { body: { sessionMetadata: {} } }),
    call('PATCH', '/bedrock/sessions/s1'),
    call('DELETE', '/bedrock/sessions/s1/'),
    call('POST', '/bedrock/tags/arn:aws:bedrock:us-east-1:123456789012:session/s1', { body: { tags: { a: 'b' } } }),
    call('DELETE', '/bedrock/tags/arn:aws:bedrock:us-east-1:123456789012:session/s1?tagKeys=a'),
  ];
  const normalUse = () => [
    converse(HAIKU),
    call('POST', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/sessions/s1/text', { body: { inputText: 'x' } }),
    call('GET', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/memories?memoryType=SESSION_SUMMARY&memoryId=m'),
    call('POST', '/bedrock/flows/FLOW123456/aliases/FLOWALIAS1', { body: {} }),
    call('PUT', '/bedrock/sessions/', { body: {} }),
    call('GET', '/bedrock/sessions/s1/'),
    call('PUT', '/bedrock/sessions/s1/invocations/', { body: {} }),
    call('PUT', '/bedrock/sessions/s1/invocationSteps/', { body: {} }),
    call('GET', '/bedrock/tags/arn:aws:bedrock:us-east-1:123456789012:session/s1'),
  ];

  it('refuses them to a key without allowed_routes, naming the field, and leaves normal use open', () => {
    const plain = key({});
    const operations = destructive().map((context) => context.match.route.operation);
    assert.deepEqual(operations, ['DeleteAgentMemory', 'StopFlowExecution', 'UpdateSession', 'EndSession', 'DeleteSession', 'TagResource', 'UntagResource']);
    for (const context of destructive()) {
      denied(plain, context, new RegExp(`^${context.match.route.operation} .*add "destructive" or "/bedrock/.*" to allowed_routes`));
    }
    for (const context of normalUse()) allowed(plain, context);
  });

  it('refuses them to keys whose allowed_routes only excludes', () => {
    for (const context of destructive()) denied(key({ allowed_routes: ['!agents'] }), context, /allowed_routes/);
  });

  it('allows them when a positive allowed_routes entry or allowed_operations covers them', () => {
    for (const grant of [['destructive'], ['llm_api_routes'], ['agent-runtime'], ['/bedrock/*']]) {
      for (const context of destructive()) allowed(key({ allowed_routes: grant }), context);
    }
    const sessions = key({ allowed_routes: ['sessions'] });
    allowed(sessions, call('DELETE', '/bedrock/sessions/s1/'));
    allowed(sessions, call('PATCH', '/bedrock/sessions/s1'));
    denied(sessions, call('DELETE', '/bedrock/agents/AGENT12345/agentAliases/ALIAS00001/memories'), /allowed_routes/);
    const onePath = key({ allowed_routes: ['/bedrock/sessions/{sessionIdentifier}/'] });
    allowed(onePath, call('DELETE', '/bedrock/sessions/s1/'));
    denied(onePath, call('PATCH', '/bedrock/sessions/s1'));
    allowed(key({ allowed_operations: ['DeleteSession'] }), call('DELETE', '/bedrock/sessions/s1/'));
    // The grant does not reach past an exclusion.
    denied(key({ allowed_routes: ['llm_api_routes', '!destructive'] }), call('DELETE', '/bedrock/sessions/s1/'));
  });
});

describe('classification tables (issue 11)', () => {
  it('classifies the model use of every operation in the route table', () => {
    assert.deepEqual(unclassifiedOperations(), []);
  });

  it('lists as destructive every agent-runtime operation that deletes, ends, stops, updates or tags', () => {
    for (const route of ROUTES) {
      const mutating = route.method === 'DELETE' || route.method === 'PATCH' || /^(Delete|End|Stop|Update|Tag|Untag|Put)/.test(route.operation);
      // PutInvocationStep adds a step (normal use for agent frameworks' checkpoints).
      if (mutating && route.operation !== 'PutInvocationStep') assert.ok(DESTRUCTIVE_OPERATIONS.has(route.operation), route.operation);
    }
    for (const operation of DESTRUCTIVE_OPERATIONS)
      assert.ok(
        ROUTES.some((route) => route.operation === operation),
        operation,
      );
    assert.deepEqual(normalizeRouteEntry('Destructive'), { entry: 'destructive' });
  });
});
