/**
 * The execution role's Bedrock permissions, derived from the route table.
 *
 * The actions come only from `requiredIamActions(ROUTES)` (lambda/routes/table.ts); this file adds
 * nothing but the resources each action may touch. Every action is mapped to the resource types the
 * Service Authorization Reference lists for it, and the role gets one statement per resource type, so
 * an action is only ever allowed on resource types that AWS authorizes it against:
 *
 *   - Amazon Bedrock (prefix `bedrock`):
 *     https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html
 *   - Amazon Bedrock powered by AWS Mantle (prefix `bedrock-mantle`):
 *     https://docs.aws.amazon.com/service-authorization/latest/reference/list_bedrock-mantle.html
 *
 * A route-table action with no entry here fails the synth, so a new operation cannot ship with a
 * silently guessed (or missing) resource scope.
 */
import * as iam from 'aws-cdk-lib/aws-iam';

/** Resource types (as the Service Authorization Reference names them) the relay's actions use. */
export type BedrockResourceType =
  | 'foundation-model'
  | 'inference-profile'
  | 'application-inference-profile'
  | 'async-invoke'
  | 'guardrail'
  | 'guardrail-profile'
  | 'knowledge-base'
  | 'agent-alias'
  | 'flow'
  | 'session'
  | 'mantle-project'
  /** The action supports no resource-level permissions: only `Resource: "*"` authorizes it. */
  | 'none';

/**
 * Resource types per action, from the Service Authorization Reference (pages cited above).
 * Only types the relay can reach through its routes are listed; e.g. InvokeModel also accepts
 * provisioned, custom and imported models and prompt routers, which the relay does not grant.
 */
export const BEDROCK_ACTION_RESOURCES: Readonly<Record<string, readonly BedrockResourceType[]>> = {
  // Inference. Converse/ConverseStream and the Anthropic/OpenAI-compatible runtime routes authorize as
  // InvokeModel/InvokeModelWithResponseStream. InvokeModel also lists async-invoke: StartAsyncInvoke
  // is authorized as bedrock:InvokeModel on the model and on the new async-invoke resource
  // (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_StartAsyncInvoke.html).
  'bedrock:InvokeModel': ['foundation-model', 'inference-profile', 'application-inference-profile', 'async-invoke'],
  'bedrock:InvokeModelWithResponseStream': ['foundation-model', 'inference-profile', 'application-inference-profile'],
  'bedrock:CountTokens': ['foundation-model'],
  'bedrock:GetAsyncInvoke': ['async-invoke'],
  'bedrock:ListAsyncInvokes': ['none'],

  // Read-only discovery on the control plane.
  'bedrock:GetFoundationModel': ['foundation-model'],
  'bedrock:GetInferenceProfile': ['inference-profile', 'application-inference-profile'],
  'bedrock:ListFoundationModels': ['none'],
  'bedrock:ListInferenceProfiles': ['none'],

  // Guardrails. guardrail-profile is needed when a guardrail uses cross-Region inference.
  'bedrock:ApplyGuardrail': ['guardrail', 'guardrail-profile'],
  'bedrock:InvokeGuardrailChecks': ['none'],

  // Knowledge bases and retrieval.
  'bedrock:Retrieve': ['knowledge-base'],
  'bedrock:RetrieveAndGenerate': ['none'],
  'bedrock:AgenticRetrieveStream': ['none'],
  'bedrock:GenerateQuery': ['none'],
  'bedrock:Rerank': ['none'],
  'bedrock:GetDocumentContent': ['none'],
  'bedrock:CheckIngestedDocumentAcl': ['none'],
  'bedrock:GetIngestedDocumentAcl': ['none'],

  // Agents.
  'bedrock:InvokeAgent': ['agent-alias'],
  'bedrock:GetAgentMemory': ['agent-alias'],
  'bedrock:DeleteAgentMemory': ['agent-alias'],
  'bedrock:InvokeInlineAgent': ['none'],
  'bedrock:OptimizePrompt': ['none'],

  // Flows: flow, flow-alias and flow-execution ARNs all live under `flow/` (flow/ID/alias/ID/execution/ID).
  'bedrock:InvokeFlow': ['flow'],
  'bedrock:StartFlowExecution': ['flow'],
  'bedrock:GetFlowExecution': ['flow'],
  'bedrock:GetExecutionFlowSnapshot': ['flow'],
  'bedrock:ListFlowExecutionEvents': ['flow'],
  'bedrock:ListFlowExecutions': ['flow'],
  'bedrock:StopFlowExecution': ['flow'],

  // Agent-runtime sessions. CreateSession and ListSessions take no resource.
  'bedrock:CreateSession': ['none'],
  'bedrock:ListSessions': ['none'],
  'bedrock:GetSession': ['session'],
  'bedrock:UpdateSession': ['session'],
  'bedrock:EndSession': ['session'],
  'bedrock:DeleteSession': ['session'],
  'bedrock:CreateInvocation': ['session'],
  'bedrock:ListInvocations': ['session'],
  'bedrock:PutInvocationStep': ['session'],
  'bedrock:ListInvocationSteps': ['session'],
  'bedrock:GetInvocationStep': ['session'],
  // The agent-runtime tagging operations exist for sessions; the same IAM actions would also tag
  // agents, models and guardrails, which the relay has no business doing, so they stay on sessions.
  'bedrock:TagResource': ['session'],
  'bedrock:UntagResource': ['session'],
  'bedrock:ListTagsForResource': ['session'],

  // bedrock-mantle authorizes at project granularity, never per model (each account has a default
  // project), as the AmazonBedrockMantleInferenceAccess managed policy shows:
  // https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonBedrockMantleInferenceAccess.html
  'bedrock-mantle:CreateInference': ['mantle-project'],
  'bedrock-mantle:ListModels': ['mantle-project'],
};

export interface BedrockGrantOptions {
  /** `Aws.PARTITION` or the stack's partition. */
  readonly partition: string;
  /** The stack's account (may be a token). */
  readonly account: string;
  /** Regions to allow (may contain the stack-region token). */
  readonly regions: readonly string[];
  /** Model ID patterns; narrows foundation models and inference profiles. */
  readonly modelFamilies?: readonly string[];
}

/** Statement IDs, one per resource type, in a stable order. */
const STATEMENT_IDS: Readonly<Record<BedrockResourceType, string>> = {
  'foundation-model': 'BedrockFoundationModels',
  'inference-profile': 'BedrockInferenceProfiles',
  'application-inference-profile': 'BedrockApplicationInferenceProfiles',
  'async-invoke': 'BedrockAsyncInvocations',
  guardrail: 'BedrockGuardrails',
  'guardrail-profile': 'BedrockGuardrailProfiles',
  'knowledge-base': 'BedrockKnowledgeBases',
  'agent-alias': 'BedrockAgentAliases',
  flow: 'BedrockFlows',
  session: 'BedrockSessions',
  'mantle-project': 'BedrockMantleProjects',
  none: 'BedrockActionsWithoutResourceTypes',
};

/** Fails with a message that says what to do when an action has no resource mapping. */
export function resourceTypesFor(action: string): readonly BedrockResourceType[] {
  if (!action.startsWith('bedrock:') && !action.startsWith('bedrock-mantle:')) {
    throw new Error(`The route table asks for "${action}", which is not a bedrock: or bedrock-mantle: action; the stack grants Bedrock actions only.`);
  }
  const types = BEDROCK_ACTION_RESOURCES[action];
  if (types === undefined) {
    throw new Error(
      `The route table asks for "${action}" but lib/bedrock-iam.ts has no resource scope for it. ` +
        'Look the action up in the Service Authorization Reference and add it to BEDROCK_ACTION_RESOURCES.',
    );
  }
  return types;
}

/** Why a wildcard in each statement's resources is as narrow as IAM allows (for cdk-nag's IAM5). */
export const WILDCARD_REASONS: Readonly<Record<BedrockResourceType, string>> = {
  'foundation-model':
    'The relay passes through whatever model the caller names (per-key model allow-lists are enforced by the relay itself); narrow with the modelFamilies setting. Region "*" because cross-Region inference profiles are served by the model in their destination Regions.',
  'inference-profile':
    'Inference profile IDs follow the model IDs the callers name; narrowed by modelFamilies, limited to the configured regions and this account.',
  'application-inference-profile':
    "Application inference profiles are created by the account's users at any time; limited to the configured regions and this account, and left out entirely when modelFamilies is set.",
  'async-invoke': 'Async invocation IDs are generated by Bedrock per StartAsyncInvoke call; limited to the configured regions and this account.',
  guardrail: 'Callers name the guardrail per request; limited to the configured regions and this account (keys can be limited per guardrail by the relay).',
  'guardrail-profile':
    'Guardrail profiles are chosen by the guardrail configuration and serve from their destination Regions, which the profile (not the caller) picks; limited to this account.',
  'knowledge-base':
    'Callers name the knowledge base per request; limited to the configured regions and this account (keys can be limited per knowledge base by the relay).',
  'agent-alias':
    'Callers name the agent and alias per request; limited to the configured regions and this account (keys can be limited per agent by the relay).',
  flow: 'Callers name the flow, alias and execution per request; limited to the configured regions and this account (keys can be limited per flow by the relay).',
  session: 'Session IDs are generated by Bedrock per CreateSession call; limited to the configured regions and this account.',
  'mantle-project':
    'bedrock-mantle authorizes per project, not per model; limited to the configured regions and this account (per-key model allow-lists are enforced by the relay).',
  none: 'These actions support no resource-level permissions (Service Authorization Reference: no resource types), so only "*" authorizes them; the statement is limited to the configured regions with aws:RequestedRegion.',
};

/** A statement of the role's Bedrock policy and the resource type it covers. */
export interface BedrockGrant {
  readonly resourceType: BedrockResourceType;
  readonly statement: iam.PolicyStatement;
}

/**
 * One statement per resource type, each with exactly the route table's actions that AWS authorizes
 * against that type. Together the statements allow exactly `actions`, nothing more.
 */
export function bedrockPolicyStatements(actions: readonly string[], options: BedrockGrantOptions): BedrockGrant[] {
  const actionsByType = new Map<BedrockResourceType, Set<string>>();
  for (const action of actions) {
    for (const type of resourceTypesFor(action)) {
      const bucket = actionsByType.get(type) ?? new Set<string>();
      bucket.add(action);
      actionsByType.set(type, bucket);
    }
  }

  const grants: BedrockGrant[] = [];
  for (const type of Object.keys(STATEMENT_IDS) as BedrockResourceType[]) {
    const typeActions = actionsByType.get(type);
    if (typeActions === undefined) continue;
    const resources = resourceArns(type, options);
    // Application inference profiles have opaque IDs that do not name their model, so they cannot
    // be narrowed by model family; with modelFamilies set they are left out rather than allowed wholesale.
    if (resources.length === 0) continue;
    grants.push({
      resourceType: type,
      statement: new iam.PolicyStatement({
        sid: STATEMENT_IDS[type],
        actions: [...typeActions].sort(),
        resources,
        // These actions cannot be scoped by resource; at least keep them in the configured regions.
        conditions: type === 'none' ? { StringEquals: { 'aws:RequestedRegion': [...options.regions] } } : undefined,
      }),
    });
  }
  const granted = new Set(grants.flatMap((grant) => grant.statement.actions));
  const ungranted = actions.filter((action) => !granted.has(action));
  if (ungranted.length > 0) {
    throw new Error(`These route-table actions would get no resource with this configuration: ${ungranted.join(', ')}`);
  }
  return grants;
}

function resourceArns(type: BedrockResourceType, { partition, account, regions, modelFamilies }: BedrockGrantOptions): string[] {
  const regional = (resource: string): string[] => regions.map((region) => `arn:${partition}:bedrock:${region}:${account}:${resource}`);
  const families = modelFamilies ?? ['*'];
  switch (type) {
    case 'foundation-model':
      // Foundation models are AWS-owned (no account in the ARN). The region is "*" because a
      // cross-Region inference profile called in a configured region is served by the model in
      // whichever destination region Bedrock routes to (global profiles: any commercial region), and
      // the caller needs InvokeModel on the model there too. The entry region stays limited by the
      // inference-profile statement and by the one endpoint the relay calls. See
      // https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-prereq.html
      return families.map((family) => `arn:${partition}:bedrock:*::foundation-model/${family}`);
    case 'inference-profile':
      // System-defined (cross-Region) profile IDs are the model ID behind a geography prefix:
      // us.anthropic.claude-…, eu.…, apac.…, global.…
      return families.flatMap((family) => regional(`inference-profile/${family === '*' ? '*' : `*.${family}`}`));
    case 'application-inference-profile':
      return modelFamilies === undefined ? regional('application-inference-profile/*') : [];
    case 'async-invoke':
      return regional('async-invoke/*');
    case 'guardrail':
      return regional('guardrail/*');
    case 'guardrail-profile':
      // A guardrail with cross-Region inference runs in its profile's destination Regions, and
      // ApplyGuardrail (and any call carrying such a guardrail) needs the guardrail-profile ARN in
      // each of them, not only in the Region called:
      // https://docs.aws.amazon.com/bedrock/latest/userguide/guardrail-profiles-permissions.html
      // Region "*", as for foundation models: destinations are chosen by the profile (us., eu., apac.).
      return [`arn:${partition}:bedrock:*:${account}:guardrail-profile/*`];
    case 'knowledge-base':
      return regional('knowledge-base/*');
    case 'agent-alias':
      return regional('agent-alias/*');
    case 'flow':
      return regional('flow/*');
    case 'session':
      return regional('session/*');
    case 'mantle-project':
      return regions.map((region) => `arn:${partition}:bedrock-mantle:${region}:${account}:project/*`);
    case 'none':
      return ['*'];
  }
}

/**
 * s3:PutObject on exactly the named buckets, for StartAsyncInvoke: Bedrock writes the job's output
 * with the caller's permissions. Source (Amazon Nova user guide, "Video generation access and
 * usage": the minimum is bedrock:InvokeModel and s3:PutObject):
 * https://docs.aws.amazon.com/nova/latest/userguide/video-gen-access.html
 * Object ARNs per the S3 Service Authorization Reference (PutObject: resource type `object`):
 * https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
 */
export function asyncOutputStatement(partition: string, buckets: readonly string[]): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'AsyncInvokeOutput',
    actions: ['s3:PutObject'],
    resources: buckets.map((bucket) => `arn:${partition}:s3:::${bucket}/*`),
  });
}

/**
 * The first call to a third-party (AWS Marketplace) model in an account subscribes the account in
 * the background, with the caller's permissions: aws-marketplace:Subscribe and ViewSubscriptions
 * (https://docs.aws.amazon.com/bedrock/latest/userguide/model-access.html, "Prerequisites";
 * product-ID scoping with the aws-marketplace:ProductId condition key, same page,
 * "Grant IAM permissions to request access to Amazon Bedrock foundation models with a product ID").
 * Neither action supports resource-level permissions, so Resource is "*"
 * (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsmarketplace.html);
 * Subscribe is narrowed to the listed product IDs when given. Unsubscribe is never granted.
 */
export function marketplaceStatements(productIds: '*' | readonly string[]): iam.PolicyStatement[] {
  return [
    new iam.PolicyStatement({
      sid: 'MarketplaceSubscribe',
      actions: ['aws-marketplace:Subscribe'],
      resources: ['*'],
      conditions: productIds === '*' ? undefined : { 'ForAnyValue:StringEquals': { 'aws-marketplace:ProductId': [...productIds] } },
    }),
    new iam.PolicyStatement({ sid: 'MarketplaceViewSubscriptions', actions: ['aws-marketplace:ViewSubscriptions'], resources: ['*'] }),
  ];
}
