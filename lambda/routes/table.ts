/**
 * The route table: one entry per Bedrock operation the relay passes through.
 *
 * This is data, not code. Routing, the IAM actions the CDK stack grants, the README's endpoint
 * table and the tests all derive from it. Entries for the native operations mirror the Smithy
 * models shipped in `@aws-sdk/client-bedrock-runtime` and `@aws-sdk/client-bedrock-agent-runtime`
 * (test/unit/route-table.test.ts fails when the installed SDK has an operation missing here or a
 * different method/URI). Entries no Smithy model describes name their source.
 */

/** Upstream services, each with its own host and SigV4 signing name. */
export type UpstreamService = 'bedrock-runtime' | 'bedrock-agent-runtime' | 'bedrock' | 'bedrock-mantle';

/** Which relay prefix a route lives under. */
export type RelayPrefix = '/bedrock' | '/bedrock-mantle';

/** How the response body is framed, so the meter knows how to read it. */
export type StreamKind =
  | 'none' // a single JSON (or binary) body
  | 'eventstream' // application/vnd.amazon.eventstream frames
  | 'sse-when-requested'; // text/event-stream when the JSON body asks for `"stream": true`

/** The API family a client speaks on a route: decides the shape of errors the relay makes. */
export type ApiFamily = 'bedrock' | 'anthropic' | 'openai';

/** What a path (or body) parameter identifies, for policy. */
export type ResourceKind =
  | 'model'
  | 'guardrail'
  | 'guardrail-version'
  | 'knowledge-base'
  | 'data-source'
  | 'document'
  | 'agent'
  | 'agent-alias'
  | 'session'
  | 'flow'
  | 'flow-alias'
  | 'flow-execution'
  | 'async-invocation'
  | 'resource-arn'
  | 'invocation-step'
  | 'inference-profile';

export interface RouteSpec {
  /** Operation name as in the Smithy model (or our own name for surfaces without one). */
  readonly operation: string;
  readonly service: UpstreamService;
  readonly prefix: RelayPrefix;
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** URI template relative to the upstream host; `{name}` matches one path label. */
  readonly template: string;
  /** The status Bedrock answers on success (documentation only; upstream statuses pass through). */
  readonly successStatus: number;
  readonly stream: StreamKind;
  readonly family: ApiFamily;
  /** Path labels and what they identify. Labels that may hold an ARN may span raw `/`. */
  readonly resources: Readonly<Record<string, ResourceKind>>;
  /** Where the model comes from: a path label, the JSON body's `model` field, or nowhere. */
  readonly model?: { readonly from: 'path'; readonly label: string } | { readonly from: 'body' };
  /** IAM actions the execution role needs for this operation. */
  readonly iamActions: readonly string[];
  /** Where this entry comes from: `sdk` for the Smithy models, else a documentation reference. */
  readonly source: string;
  /** Set when the relay cannot carry the operation; the relay answers with this reason. */
  readonly unsupported?: string;
  /** Read-only discovery calls whose answers are filtered to what the key may use. */
  readonly discovery?: 'list-inference-profiles' | 'get-inference-profile' | 'list-foundation-models' | 'get-foundation-model' | 'list-mantle-models';
}

/** Labels that can carry an ARN (with `/` inside) when a client sends them unencoded. */
export const ARN_CAPABLE_LABELS: ReadonlySet<string> = new Set([
  'modelId',
  'invocationArn',
  'resourceArn',
  'guardrailIdentifier',
  'knowledgeBaseId',
  'flowIdentifier',
  'flowAliasIdentifier',
  'sessionIdentifier',
  'executionIdentifier',
]);

const SDK = 'sdk';
const RUNTIME_COMPAT_DOC = 'docs.aws.amazon.com/bedrock/latest/userguide';

function runtime(operation: string, method: RouteSpec['method'], template: string, extra: Partial<RouteSpec> & { iamActions: readonly string[] }): RouteSpec {
  return {
    operation,
    service: 'bedrock-runtime',
    prefix: '/bedrock',
    method,
    template,
    successStatus: 200,
    stream: 'none',
    family: 'bedrock',
    resources: {},
    source: SDK,
    ...extra,
  };
}

function agentRuntime(operation: string, method: RouteSpec['method'], template: string, extra: Partial<RouteSpec> = {}): RouteSpec {
  return {
    operation,
    service: 'bedrock-agent-runtime',
    prefix: '/bedrock',
    method,
    template,
    successStatus: 200,
    stream: 'none',
    family: 'bedrock',
    resources: {},
    // Agent-runtime actions share the operation's name, except where overridden below.
    iamActions: [`bedrock:${operation}`],
    source: SDK,
    ...extra,
  };
}

/** A compatible API on bedrock-runtime: model in the JSON body, SSE when it asks to stream. */
function runtimeCompat(operation: string, template: string, family: ApiFamily, docPage: string): RouteSpec {
  return runtime(operation, 'POST', template, {
    family,
    stream: 'sse-when-requested',
    model: { from: 'body' },
    // These APIs authorise as the native inference actions (streaming or not, by the body).
    iamActions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'],
    source: `${RUNTIME_COMPAT_DOC}/${docPage}`,
  });
}

const MODEL = { modelId: 'model' } as const;
const PATH_MODEL = { from: 'path', label: 'modelId' } as const;
const BODY_MODEL = { from: 'body' } as const;
const AGENT_ALIAS = { agentId: 'agent', agentAliasId: 'agent-alias' } as const;
const FLOW_ALIAS = { flowIdentifier: 'flow', flowAliasIdentifier: 'flow-alias' } as const;
const FLOW_EXECUTION = { ...FLOW_ALIAS, executionIdentifier: 'flow-execution' } as const;
const KB_DATA_SOURCE = { knowledgeBaseId: 'knowledge-base', dataSourceId: 'data-source' } as const;
const SESSION = { sessionIdentifier: 'session' } as const;

export const ROUTES: readonly RouteSpec[] = [
  // ── bedrock-runtime: native operations (Smithy model com.amazonaws.bedrockruntime) ──
  runtime('Converse', 'POST', '/model/{modelId}/converse', {
    resources: MODEL,
    model: PATH_MODEL,
    iamActions: ['bedrock:InvokeModel'],
  }),
  runtime('ConverseStream', 'POST', '/model/{modelId}/converse-stream', {
    resources: MODEL,
    model: PATH_MODEL,
    stream: 'eventstream',
    iamActions: ['bedrock:InvokeModelWithResponseStream'],
  }),
  runtime('InvokeModel', 'POST', '/model/{modelId}/invoke', {
    resources: MODEL,
    model: PATH_MODEL,
    iamActions: ['bedrock:InvokeModel'],
  }),
  runtime('InvokeModelWithResponseStream', 'POST', '/model/{modelId}/invoke-with-response-stream', {
    resources: MODEL,
    model: PATH_MODEL,
    stream: 'eventstream',
    iamActions: ['bedrock:InvokeModelWithResponseStream'],
  }),
  runtime('InvokeModelWithBidirectionalStream', 'POST', '/model/{modelId}/invoke-with-bidirectional-stream', {
    resources: MODEL,
    model: PATH_MODEL,
    stream: 'eventstream',
    iamActions: [],
    unsupported:
      'InvokeModelWithBidirectionalStream needs a bidirectional HTTP/2 stream, which a Lambda Function URL cannot carry (the request body must arrive whole before the function runs). Call bedrock-runtime directly for bidirectional streaming.',
  }),
  runtime('CountTokens', 'POST', '/model/{modelId}/count-tokens', {
    resources: MODEL,
    model: PATH_MODEL,
    iamActions: ['bedrock:CountTokens'],
  }),
  runtime('ApplyGuardrail', 'POST', '/guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply', {
    resources: { guardrailIdentifier: 'guardrail', guardrailVersion: 'guardrail-version' },
    iamActions: ['bedrock:ApplyGuardrail'],
  }),
  runtime('InvokeGuardrailChecks', 'POST', '/guardrail-checks/invoke', { iamActions: ['bedrock:InvokeGuardrailChecks'] }),
  runtime('StartAsyncInvoke', 'POST', '/async-invoke', {
    // The Service Authorization Reference defines no StartAsyncInvoke action: InvokeModel authorises it.
    model: BODY_MODEL,
    iamActions: ['bedrock:InvokeModel'],
  }),
  runtime('GetAsyncInvoke', 'GET', '/async-invoke/{invocationArn}', {
    resources: { invocationArn: 'async-invocation' },
    iamActions: ['bedrock:GetAsyncInvoke'],
  }),
  runtime('ListAsyncInvokes', 'GET', '/async-invoke', { iamActions: ['bedrock:ListAsyncInvokes'] }),

  // ── bedrock-runtime: compatible APIs (no Smithy model) ──
  runtimeCompat('AnthropicMessages', '/anthropic/v1/messages', 'anthropic', 'inference-messages-api.html'),
  runtimeCompat('OpenAIChatCompletions', '/openai/v1/chat/completions', 'openai', 'inference-chat-completions.html'),
  runtimeCompat('OpenAIResponses', '/openai/v1/responses', 'openai', 'inference-responses-api.html'),
  runtimeCompat('ChatCompletions', '/v1/chat/completions', 'openai', 'inference-chat-completions.html'),

  // ── bedrock control plane: read-only discovery only ──
  {
    operation: 'ListInferenceProfiles',
    service: 'bedrock',
    prefix: '/bedrock',
    method: 'GET',
    template: '/inference-profiles',
    successStatus: 200,
    stream: 'none',
    family: 'bedrock',
    resources: {},
    iamActions: ['bedrock:ListInferenceProfiles'],
    source: 'sdk:@aws-sdk/client-bedrock',
    discovery: 'list-inference-profiles',
  },
  {
    operation: 'GetInferenceProfile',
    service: 'bedrock',
    prefix: '/bedrock',
    method: 'GET',
    template: '/inference-profiles/{inferenceProfileIdentifier}',
    successStatus: 200,
    stream: 'none',
    family: 'bedrock',
    resources: { inferenceProfileIdentifier: 'model' },
    model: { from: 'path', label: 'inferenceProfileIdentifier' },
    iamActions: ['bedrock:GetInferenceProfile'],
    source: 'sdk:@aws-sdk/client-bedrock',
    discovery: 'get-inference-profile',
  },
  {
    operation: 'ListFoundationModels',
    service: 'bedrock',
    prefix: '/bedrock',
    method: 'GET',
    template: '/foundation-models',
    successStatus: 200,
    stream: 'none',
    family: 'bedrock',
    resources: {},
    iamActions: ['bedrock:ListFoundationModels'],
    source: 'sdk:@aws-sdk/client-bedrock',
    discovery: 'list-foundation-models',
  },
  {
    operation: 'GetFoundationModel',
    service: 'bedrock',
    prefix: '/bedrock',
    method: 'GET',
    template: '/foundation-models/{modelIdentifier}',
    successStatus: 200,
    stream: 'none',
    family: 'bedrock',
    resources: { modelIdentifier: 'model' },
    model: { from: 'path', label: 'modelIdentifier' },
    iamActions: ['bedrock:GetFoundationModel'],
    source: 'sdk:@aws-sdk/client-bedrock',
    discovery: 'get-foundation-model',
  },

  // ── bedrock-agent-runtime (Smithy model com.amazonaws.bedrockagentruntime) ──
  agentRuntime('InvokeAgent', 'POST', '/agents/{agentId}/agentAliases/{agentAliasId}/sessions/{sessionId}/text', {
    resources: { ...AGENT_ALIAS, sessionId: 'session' },
    stream: 'eventstream',
  }),
  agentRuntime('InvokeInlineAgent', 'POST', '/agents/{sessionId}', { resources: { sessionId: 'session' }, stream: 'eventstream' }),
  agentRuntime('GetAgentMemory', 'GET', '/agents/{agentId}/agentAliases/{agentAliasId}/memories', { resources: AGENT_ALIAS }),
  agentRuntime('DeleteAgentMemory', 'DELETE', '/agents/{agentId}/agentAliases/{agentAliasId}/memories', {
    resources: AGENT_ALIAS,
    successStatus: 202,
  }),
  agentRuntime('Retrieve', 'POST', '/knowledgebases/{knowledgeBaseId}/retrieve', { resources: { knowledgeBaseId: 'knowledge-base' } }),
  agentRuntime('RetrieveAndGenerate', 'POST', '/retrieveAndGenerate'),
  agentRuntime('RetrieveAndGenerateStream', 'POST', '/retrieveAndGenerateStream', {
    stream: 'eventstream',
    iamActions: ['bedrock:RetrieveAndGenerate'],
  }),
  agentRuntime('AgenticRetrieveStream', 'POST', '/agenticRetrieveStream', { stream: 'eventstream' }),
  agentRuntime('Rerank', 'POST', '/rerank'),
  agentRuntime('GenerateQuery', 'POST', '/generateQuery'),
  agentRuntime('OptimizePrompt', 'POST', '/optimize-prompt', { stream: 'eventstream' }),
  agentRuntime('GetDocumentContent', 'POST', '/knowledgebases/{knowledgeBaseId}/datasources/{dataSourceId}/documents/{documentId}/content', {
    resources: { ...KB_DATA_SOURCE, documentId: 'document' },
  }),
  agentRuntime('CheckIngestedDocumentAcl', 'POST', '/knowledgebases/{knowledgeBaseId}/datasources/{dataSourceId}/check-ingested-document-acl', {
    resources: KB_DATA_SOURCE,
  }),
  agentRuntime('GetIngestedDocumentAcl', 'POST', '/knowledgebases/{knowledgeBaseId}/datasources/{dataSourceId}/get-ingested-document-acl', {
    resources: KB_DATA_SOURCE,
  }),
  agentRuntime('InvokeFlow', 'POST', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}', { resources: FLOW_ALIAS, stream: 'eventstream' }),
  agentRuntime('StartFlowExecution', 'POST', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions', { resources: FLOW_ALIAS }),
  agentRuntime('GetFlowExecution', 'GET', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}', {
    resources: FLOW_EXECUTION,
  }),
  agentRuntime('GetExecutionFlowSnapshot', 'GET', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}/flowsnapshot', {
    resources: FLOW_EXECUTION,
  }),
  agentRuntime('ListFlowExecutionEvents', 'GET', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}/events', {
    resources: FLOW_EXECUTION,
  }),
  agentRuntime('StopFlowExecution', 'POST', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}/stop', {
    resources: FLOW_EXECUTION,
  }),
  agentRuntime('ListFlowExecutions', 'GET', '/flows/{flowIdentifier}/executions', { resources: { flowIdentifier: 'flow' } }),
  agentRuntime('CreateSession', 'PUT', '/sessions/', { successStatus: 201 }),
  agentRuntime('ListSessions', 'POST', '/sessions/'),
  agentRuntime('GetSession', 'GET', '/sessions/{sessionIdentifier}/', { resources: SESSION }),
  agentRuntime('UpdateSession', 'PUT', '/sessions/{sessionIdentifier}/', { resources: SESSION }),
  agentRuntime('EndSession', 'PATCH', '/sessions/{sessionIdentifier}', { resources: SESSION }),
  agentRuntime('DeleteSession', 'DELETE', '/sessions/{sessionIdentifier}/', { resources: SESSION }),
  agentRuntime('CreateInvocation', 'PUT', '/sessions/{sessionIdentifier}/invocations/', { resources: SESSION, successStatus: 201 }),
  agentRuntime('ListInvocations', 'POST', '/sessions/{sessionIdentifier}/invocations/', { resources: SESSION }),
  agentRuntime('PutInvocationStep', 'PUT', '/sessions/{sessionIdentifier}/invocationSteps/', { resources: SESSION, successStatus: 201 }),
  agentRuntime('ListInvocationSteps', 'POST', '/sessions/{sessionIdentifier}/invocationSteps/', { resources: SESSION }),
  agentRuntime('GetInvocationStep', 'POST', '/sessions/{sessionIdentifier}/invocationSteps/{invocationStepId}', {
    resources: { ...SESSION, invocationStepId: 'invocation-step' },
  }),
  agentRuntime('TagResource', 'POST', '/tags/{resourceArn}', { resources: { resourceArn: 'resource-arn' } }),
  agentRuntime('UntagResource', 'DELETE', '/tags/{resourceArn}', { resources: { resourceArn: 'resource-arn' } }),
  agentRuntime('ListTagsForResource', 'GET', '/tags/{resourceArn}', { resources: { resourceArn: 'resource-arn' } }),

  // ── bedrock-mantle (no Smithy model; relay prefix /bedrock-mantle) ──
  ...mantleRoutes(),
];

function mantleRoutes(): RouteSpec[] {
  const source = 'shared/reference/bedrock-http-surfaces.md (bedrock-mantle); docs.aws.amazon.com/bedrock/latest/userguide/bedrock-mantle.html';
  const inference = (operation: string, template: string, family: ApiFamily): RouteSpec => ({
    operation,
    service: 'bedrock-mantle',
    prefix: '/bedrock-mantle',
    method: 'POST',
    template,
    successStatus: 200,
    stream: 'sse-when-requested',
    family,
    resources: {},
    model: BODY_MODEL,
    iamActions: ['bedrock-mantle:CreateInference'],
    source,
  });
  const models = (operation: string, template: string): RouteSpec => ({
    operation,
    service: 'bedrock-mantle',
    prefix: '/bedrock-mantle',
    method: 'GET',
    template,
    successStatus: 200,
    stream: 'none',
    family: 'openai',
    resources: {},
    iamActions: ['bedrock-mantle:ListModels'],
    source,
    discovery: 'list-mantle-models',
  });
  return [
    inference('MantleChatCompletions', '/v1/chat/completions', 'openai'),
    inference('MantleResponses', '/v1/responses', 'openai'),
    inference('MantleOpenAIChatCompletions', '/openai/v1/chat/completions', 'openai'),
    inference('MantleOpenAIResponses', '/openai/v1/responses', 'openai'),
    inference('MantleAnthropicMessages', '/anthropic/v1/messages', 'anthropic'),
    models('MantleListModels', '/v1/models'),
    models('MantleOpenAIListModels', '/openai/v1/models'),
  ];
}

/** Every IAM action the route table needs, sorted, for the stack's role. */
export function requiredIamActions(routes: readonly RouteSpec[] = ROUTES): string[] {
  return [...new Set(routes.flatMap((r) => r.iamActions))].sort();
}
