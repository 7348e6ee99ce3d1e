import { ROUTES, type RouteSpec } from '../routes/table.js';

/**
 * Which models an operation runs, and so what a key limited by `models` must show before the
 * call may go upstream. Every route in the table has an entry (test/unit/policy-scope.test.ts
 * fails when one is missing), so a new operation cannot slip past a model-scoped key unclassified.
 *
 * - `none`: runs no model the caller chooses — reads, session bookkeeping, discovery, guardrail
 *   checks (the guardrail's own policy; `object_permission.guardrails` governs those).
 * - `named`: runs only models the request names, in its path or body. A model-scoped key needs
 *   at least one named model, and every named model on its list.
 * - `agent`, `flow`: runs the models that agent or flow is configured with, which the request
 *   does not name: a model-scoped key needs `object_permission.agents` / `.flows` to name it.
 * - `knowledge-base`: Bedrock picks the model (GenerateQuery's text-to-SQL): a model-scoped key
 *   needs `object_permission.knowledge_bases` to name the knowledge base.
 * - `named-or-knowledge-base`: AgenticRetrieveStream, which runs the model it names or, without
 *   one (foundationModelType MANAGED), the service's default for its knowledge bases.
 *
 * A knowledge base's own embedding (and default reranking) model is part of querying it, like a
 * search index, so Retrieve is `none` and RetrieveAndGenerate is `named` by its generation model;
 * `object_permission.knowledge_bases` decides which knowledge bases a key may query.
 */
export type ModelUse = 'none' | 'named' | 'agent' | 'flow' | 'knowledge-base' | 'named-or-knowledge-base';

const AGENT_RUNTIME_MODEL_USE: Readonly<Record<string, ModelUse>> = {
  InvokeAgent: 'agent',
  // foundationModel is required and every collaborator names its own; collaborator agents by
  // alias ARN are agent references, which a model-scoped key must list like any other.
  InvokeInlineAgent: 'named',
  GetAgentMemory: 'none',
  DeleteAgentMemory: 'none',
  Retrieve: 'none',
  RetrieveAndGenerate: 'named',
  RetrieveAndGenerateStream: 'named',
  AgenticRetrieveStream: 'named-or-knowledge-base',
  Rerank: 'named',
  GenerateQuery: 'knowledge-base',
  // The prompt is rewritten for targetModelId (priced at that model's rates).
  OptimizePrompt: 'named',
  GetDocumentContent: 'none',
  CheckIngestedDocumentAcl: 'none',
  GetIngestedDocumentAcl: 'none',
  InvokeFlow: 'flow',
  StartFlowExecution: 'flow',
  GetFlowExecution: 'none',
  GetExecutionFlowSnapshot: 'none',
  ListFlowExecutionEvents: 'none',
  StopFlowExecution: 'none',
  ListFlowExecutions: 'none',
  CreateSession: 'none',
  ListSessions: 'none',
  GetSession: 'none',
  UpdateSession: 'none',
  EndSession: 'none',
  DeleteSession: 'none',
  CreateInvocation: 'none',
  ListInvocations: 'none',
  PutInvocationStep: 'none',
  ListInvocationSteps: 'none',
  GetInvocationStep: 'none',
  TagResource: 'none',
  UntagResource: 'none',
  ListTagsForResource: 'none',
};

/** undefined: an operation nobody has classified yet (policy refuses it to model-scoped keys). */
export function modelUse(route: RouteSpec): ModelUse | undefined {
  if (route.discovery !== undefined) return 'none';
  // Native model routes, the compatible APIs and bedrock-mantle name their model (route.model).
  if (route.model !== undefined) return 'named';
  if (route.service === 'bedrock-agent-runtime') return AGENT_RUNTIME_MODEL_USE[route.operation];
  switch (route.operation) {
    case 'ApplyGuardrail':
    case 'InvokeGuardrailChecks':
    case 'GetAsyncInvoke':
    case 'ListAsyncInvokes':
      return 'none';
    default:
      return undefined;
  }
}

/** Operations in the table that modelUse does not classify (for tests). */
export function unclassifiedOperations(routes: readonly RouteSpec[] = ROUTES): string[] {
  return routes.filter((route) => modelUse(route) === undefined).map((route) => route.operation);
}
