/**
 * The fake's own operation table. It is written out here rather than derived from the relay's
 * route table (lambda/routes/table.ts) so that a mistake there shows up as a disagreement with
 * the fake instead of being copied into it; test/unit/fake-bedrock.test.ts checks the two agree.
 *
 * Path labels match exactly one wire segment, as Bedrock's REST routing does: an ARN must arrive
 * with its `/` percent-encoded (as every AWS SDK sends it), or the request is an unknown operation.
 */
import * as agent from './agent-runtime.js';
import * as compat from './compat.js';
import type { OperationHandler } from './context.js';
import * as control from './control-plane.js';
import type { ApiFamily } from './reply.js';
import * as runtime from './runtime.js';
import type { StreamErrorStyle } from './simulations.js';

/**
 * The names an operation answers to, by the signing name the request was signed for: a path
 * shared by bedrock-runtime and bedrock-mantle (e.g. /anthropic/v1/messages) is a different
 * operation on each host, and a path only one host serves is unknown on the other.
 */
export interface OperationNames {
  readonly bedrock?: string;
  readonly mantle?: string;
}

export interface FakeOperation {
  readonly names: OperationNames;
  readonly method: string;
  readonly template: string;
  readonly family: ApiFamily;
  /** Where the model ID is: a path label or the JSON body's `model`. */
  readonly model?: { readonly label: string } | 'body';
  /** How the stream reports a mid-stream error (streamed operations only). */
  readonly streamError?: StreamErrorStyle;
  readonly handler: OperationHandler;
}

const RUNTIME_STREAM_ERROR: StreamErrorStyle = { kind: 'eventstream', exceptionType: 'modelStreamErrorException' };
const AGENT_STREAM_ERROR: StreamErrorStyle = { kind: 'eventstream', exceptionType: 'internalServerException' };
const MODEL_LABEL = { label: 'modelId' } as const;

function bedrock(operation: string, method: string, template: string, handler: OperationHandler, extra: Partial<FakeOperation> = {}): FakeOperation {
  return { names: { bedrock: operation }, method, template, family: 'bedrock', handler, ...extra };
}

function agentStream(operation: string, method: string, template: string, handler: OperationHandler): FakeOperation {
  return bedrock(operation, method, template, handler, { streamError: AGENT_STREAM_ERROR });
}

export const FAKE_OPERATIONS: readonly FakeOperation[] = [
  // bedrock-runtime, native
  bedrock('Converse', 'POST', '/model/{modelId}/converse', runtime.converse, { model: MODEL_LABEL }),
  bedrock('ConverseStream', 'POST', '/model/{modelId}/converse-stream', runtime.converseStream, { model: MODEL_LABEL, streamError: RUNTIME_STREAM_ERROR }),
  bedrock('InvokeModel', 'POST', '/model/{modelId}/invoke', runtime.invokeModel, { model: MODEL_LABEL }),
  bedrock('InvokeModelWithResponseStream', 'POST', '/model/{modelId}/invoke-with-response-stream', runtime.invokeModelWithResponseStream, {
    model: MODEL_LABEL,
    streamError: RUNTIME_STREAM_ERROR,
  }),
  bedrock('CountTokens', 'POST', '/model/{modelId}/count-tokens', runtime.countTokens, { model: MODEL_LABEL }),
  bedrock('ApplyGuardrail', 'POST', '/guardrail/{guardrailIdentifier}/version/{guardrailVersion}/apply', runtime.applyGuardrail),
  bedrock('InvokeGuardrailChecks', 'POST', '/guardrail-checks/invoke', runtime.invokeGuardrailChecks),
  bedrock('StartAsyncInvoke', 'POST', '/async-invoke', runtime.startAsyncInvoke, { model: 'body' }),
  bedrock('GetAsyncInvoke', 'GET', '/async-invoke/{invocationArn}', runtime.getAsyncInvoke),
  bedrock('ListAsyncInvokes', 'GET', '/async-invoke', runtime.listAsyncInvokes),

  // compatible APIs: bedrock-runtime and bedrock-mantle
  compatible({ bedrock: 'AnthropicMessages', mantle: 'MantleAnthropicMessages' }, '/anthropic/v1/messages', 'anthropic', compat.anthropicMessages, 'anthropic'),
  compatible(
    { bedrock: 'OpenAIChatCompletions', mantle: 'MantleOpenAIChatCompletions' },
    '/openai/v1/chat/completions',
    'openai',
    compat.openAIChatCompletions,
    'openai-chat',
  ),
  compatible({ bedrock: 'ChatCompletions', mantle: 'MantleChatCompletions' }, '/v1/chat/completions', 'openai', compat.openAIChatCompletions, 'openai-chat'),
  compatible({ bedrock: 'OpenAIResponses', mantle: 'MantleOpenAIResponses' }, '/openai/v1/responses', 'openai', compat.openAIResponses, 'openai-responses'),
  compatible({ mantle: 'MantleResponses' }, '/v1/responses', 'openai', compat.openAIResponses, 'openai-responses'),
  { names: { mantle: 'MantleListModels' }, method: 'GET', template: '/v1/models', family: 'openai', handler: compat.mantleListModels },
  { names: { mantle: 'MantleOpenAIListModels' }, method: 'GET', template: '/openai/v1/models', family: 'openai', handler: compat.mantleListModels },

  // bedrock control plane, read-only discovery
  bedrock('ListInferenceProfiles', 'GET', '/inference-profiles', control.listInferenceProfiles),
  bedrock('GetInferenceProfile', 'GET', '/inference-profiles/{inferenceProfileIdentifier}', control.getInferenceProfile, {
    model: { label: 'inferenceProfileIdentifier' },
  }),
  bedrock('ListFoundationModels', 'GET', '/foundation-models', control.listFoundationModels),
  bedrock('GetFoundationModel', 'GET', '/foundation-models/{modelIdentifier}', control.getFoundationModel, { model: { label: 'modelIdentifier' } }),

  // bedrock-agent-runtime
  agentStream('InvokeAgent', 'POST', '/agents/{agentId}/agentAliases/{agentAliasId}/sessions/{sessionId}/text', agent.invokeAgent),
  agentStream('InvokeInlineAgent', 'POST', '/agents/{sessionId}', agent.invokeInlineAgent),
  bedrock('GetAgentMemory', 'GET', '/agents/{agentId}/agentAliases/{agentAliasId}/memories', agent.getAgentMemory),
  bedrock('DeleteAgentMemory', 'DELETE', '/agents/{agentId}/agentAliases/{agentAliasId}/memories', agent.deleteAgentMemory),
  bedrock('Retrieve', 'POST', '/knowledgebases/{knowledgeBaseId}/retrieve', agent.retrieve),
  bedrock('RetrieveAndGenerate', 'POST', '/retrieveAndGenerate', agent.retrieveAndGenerate),
  agentStream('RetrieveAndGenerateStream', 'POST', '/retrieveAndGenerateStream', agent.retrieveAndGenerateStream),
  agentStream('AgenticRetrieveStream', 'POST', '/agenticRetrieveStream', agent.agenticRetrieveStream),
  bedrock('Rerank', 'POST', '/rerank', agent.rerank),
  bedrock('GenerateQuery', 'POST', '/generateQuery', agent.generateQuery),
  agentStream('OptimizePrompt', 'POST', '/optimize-prompt', agent.optimizePrompt),
  bedrock(
    'GetDocumentContent',
    'POST',
    '/knowledgebases/{knowledgeBaseId}/datasources/{dataSourceId}/documents/{documentId}/content',
    agent.getDocumentContent,
  ),
  bedrock(
    'CheckIngestedDocumentAcl',
    'POST',
    '/knowledgebases/{knowledgeBaseId}/datasources/{dataSourceId}/check-ingested-document-acl',
    agent.checkIngestedDocumentAcl,
  ),
  bedrock(
    'GetIngestedDocumentAcl',
    'POST',
    '/knowledgebases/{knowledgeBaseId}/datasources/{dataSourceId}/get-ingested-document-acl',
    agent.getIngestedDocumentAcl,
  ),
  agentStream('InvokeFlow', 'POST', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}', agent.invokeFlow),
  bedrock('StartFlowExecution', 'POST', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions', agent.startFlowExecution),
  bedrock('GetFlowExecution', 'GET', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}', agent.getFlowExecution),
  bedrock(
    'GetExecutionFlowSnapshot',
    'GET',
    '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}/flowsnapshot',
    agent.getExecutionFlowSnapshot,
  ),
  bedrock(
    'ListFlowExecutionEvents',
    'GET',
    '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}/events',
    agent.listFlowExecutionEvents,
  ),
  bedrock('StopFlowExecution', 'POST', '/flows/{flowIdentifier}/aliases/{flowAliasIdentifier}/executions/{executionIdentifier}/stop', agent.stopFlowExecution),
  bedrock('ListFlowExecutions', 'GET', '/flows/{flowIdentifier}/executions', agent.listFlowExecutions),
  bedrock('CreateSession', 'PUT', '/sessions/', agent.createSession),
  bedrock('ListSessions', 'POST', '/sessions/', agent.listSessions),
  bedrock('GetSession', 'GET', '/sessions/{sessionIdentifier}/', agent.getSession),
  bedrock('UpdateSession', 'PUT', '/sessions/{sessionIdentifier}/', agent.updateSession),
  bedrock('EndSession', 'PATCH', '/sessions/{sessionIdentifier}', agent.endSession),
  bedrock('DeleteSession', 'DELETE', '/sessions/{sessionIdentifier}/', agent.deleteSession),
  bedrock('CreateInvocation', 'PUT', '/sessions/{sessionIdentifier}/invocations/', agent.createInvocation),
  bedrock('ListInvocations', 'POST', '/sessions/{sessionIdentifier}/invocations/', agent.listInvocations),
  bedrock('PutInvocationStep', 'PUT', '/sessions/{sessionIdentifier}/invocationSteps/', agent.putInvocationStep),
  bedrock('ListInvocationSteps', 'POST', '/sessions/{sessionIdentifier}/invocationSteps/', agent.listInvocationSteps),
  bedrock('GetInvocationStep', 'POST', '/sessions/{sessionIdentifier}/invocationSteps/{invocationStepId}', agent.getInvocationStep),
  bedrock('TagResource', 'POST', '/tags/{resourceArn}', agent.tagResource),
  bedrock('UntagResource', 'DELETE', '/tags/{resourceArn}', agent.untagResource),
  bedrock('ListTagsForResource', 'GET', '/tags/{resourceArn}', agent.listTagsForResource),
];

function compatible(
  names: OperationNames,
  template: string,
  family: ApiFamily,
  handler: OperationHandler,
  dialect: 'anthropic' | 'openai-chat' | 'openai-responses',
): FakeOperation {
  return { names, method: 'POST', template, family, model: 'body', streamError: { kind: 'sse', dialect }, handler };
}

export interface MatchedOperation {
  readonly operation: FakeOperation;
  readonly name: string;
  /** Path labels, percent-decoded. */
  readonly params: Record<string, string>;
}

/**
 * Find the operation for a request. `signedFor` is the signing name of a verified request:
 * `bedrock-mantle` selects the mantle host's operations, anything else the `bedrock` hosts'.
 */
export function matchOperation(method: string, rawPath: string, signedFor: string): MatchedOperation | undefined {
  const host: keyof OperationNames = signedFor === 'bedrock-mantle' ? 'mantle' : 'bedrock';
  const segments = rawPath.split('/');
  for (const operation of FAKE_OPERATIONS) {
    const name = operation.names[host];
    if (name === undefined || operation.method !== method) continue;
    const params = matchTemplate(operation.template, segments);
    if (params) return { operation, name, params };
  }
  return undefined;
}

function matchTemplate(template: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = template.split('/');
  if (parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of parts.entries()) {
    const segment = segments[i]!;
    const label = /^\{(\w+)\}$/.exec(part)?.[1];
    if (label === undefined) {
      if (segment !== part) return undefined;
      continue;
    }
    if (segment === '') return undefined;
    try {
      params[label] = decodeURIComponent(segment);
    } catch {
      return undefined;
    }
  }
  return params;
}
