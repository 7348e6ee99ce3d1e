import { ROUTES, type RouteSpec } from '../routes/table.js';

/**
 * `allowed_routes` (LiteLLM's field: "the actual route or a wildcard pattern") on the relay.
 * An entry is one of
 *   - a group name from ROUTE_GROUPS, e.g. "converse", "agents", "knowledge-bases";
 *   - a relay path pattern, matched against the route's template path — `/bedrock/model/*`,
 *     `/bedrock/model/*\/converse`, `/bedrock-mantle/v1/*` — where `*` matches anything and
 *     path labels appear as written in the route table (`{modelId}`). Matching the template,
 *     never the raw request path, is what makes encodings (`%2F`, `..`) irrelevant;
 *   - either of the above prefixed with `!` to exclude it ("!agents").
 * A call passes when no positive entry exists or one matches, and no `!` entry matches.
 * Resources (which model, which agent) are not routes: `models` and `object_permission` cover them.
 */
export interface RouteGroup {
  readonly description: string;
  readonly includes: (route: RouteSpec) => boolean;
}

/**
 * Agent-runtime calls that delete, end, stop or overwrite state that already exists — possibly
 * another caller's: agent memory, a session (its metadata, or ending it so nothing more can be
 * written), a running flow execution, or the tags on a resource (tags can drive IAM and cost
 * allocation). Normal use stays open: invoking, reading, and adding to sessions (CreateSession,
 * CreateInvocation, PutInvocationStep are how an agent framework checkpoints a conversation).
 * These need an explicit grant: see destructiveGranted.
 */
export const DESTRUCTIVE_OPERATIONS: ReadonlySet<string> = new Set([
  'DeleteAgentMemory',
  'StopFlowExecution',
  'UpdateSession',
  'EndSession',
  'DeleteSession',
  'TagResource',
  'UntagResource',
]);

const ops = (...names: string[]) => {
  const set = new Set(names);
  return (route: RouteSpec) => set.has(route.operation);
};

export const ROUTE_GROUPS: Readonly<Record<string, RouteGroup>> = {
  llm_api_routes: { description: 'every pass-through route (LiteLLM’s group name)', includes: () => true },
  inference: {
    description: 'every call that runs a model',
    includes: (r) => (r.model !== undefined && r.discovery === undefined) || r.operation === 'Rerank' || r.operation === 'OptimizePrompt',
  },
  converse: { description: 'Converse, ConverseStream', includes: ops('Converse', 'ConverseStream') },
  invoke: {
    description: 'InvokeModel, InvokeModelWithResponseStream',
    includes: ops('InvokeModel', 'InvokeModelWithResponseStream', 'InvokeModelWithBidirectionalStream'),
  },
  'count-tokens': { description: 'CountTokens', includes: ops('CountTokens') },
  'async-invoke': {
    description: 'StartAsyncInvoke, GetAsyncInvoke, ListAsyncInvokes',
    includes: ops('StartAsyncInvoke', 'GetAsyncInvoke', 'ListAsyncInvokes'),
  },
  anthropic: { description: 'Anthropic Messages API routes', includes: (r) => r.family === 'anthropic' },
  openai: { description: 'OpenAI-compatible routes', includes: (r) => r.family === 'openai' },
  guardrails: { description: 'ApplyGuardrail, InvokeGuardrailChecks', includes: ops('ApplyGuardrail', 'InvokeGuardrailChecks') },
  'knowledge-bases': {
    description: 'Retrieve, RetrieveAndGenerate(Stream), AgenticRetrieveStream, GenerateQuery, document content and ACL calls',
    includes: ops(
      'Retrieve',
      'RetrieveAndGenerate',
      'RetrieveAndGenerateStream',
      'AgenticRetrieveStream',
      'GenerateQuery',
      'GetDocumentContent',
      'CheckIngestedDocumentAcl',
      'GetIngestedDocumentAcl',
    ),
  },
  agents: {
    description: 'InvokeAgent, InvokeInlineAgent, agent memory',
    includes: ops('InvokeAgent', 'InvokeInlineAgent', 'GetAgentMemory', 'DeleteAgentMemory'),
  },
  flows: { description: 'InvokeFlow and flow executions', includes: (r) => r.template.startsWith('/flows/') },
  sessions: { description: 'session, invocation and tagging calls', includes: (r) => r.template.startsWith('/sessions/') || r.template.startsWith('/tags/') },
  destructive: {
    description: `calls that delete, end, stop or rewrite existing state (${[...DESTRUCTIVE_OPERATIONS].join(', ')}); a key may make them only when allowed_routes grants them`,
    includes: (r) => DESTRUCTIVE_OPERATIONS.has(r.operation),
  },
  discovery: { description: 'read-only model and inference-profile listings', includes: (r) => r.discovery !== undefined },
  runtime: { description: 'every bedrock-runtime route', includes: (r) => r.service === 'bedrock-runtime' },
  'agent-runtime': { description: 'every bedrock-agent-runtime route', includes: (r) => r.service === 'bedrock-agent-runtime' },
  mantle: { description: 'every bedrock-mantle route', includes: (r) => r.service === 'bedrock-mantle' },
};

/** The path a route pattern is matched against: relay prefix + template. */
export function routePath(route: RouteSpec): string {
  return `${route.prefix}${route.template}`;
}

const patternCache = new Map<string, RegExp>();

function patternRegExp(pattern: string): RegExp {
  let compiled = patternCache.get(pattern);
  if (!compiled) {
    const body = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*');
    compiled = new RegExp(`^${body}$`);
    patternCache.set(pattern, compiled);
  }
  return compiled;
}

/** Does one entry (without its `!`) cover the route? */
export function routeEntryMatches(entry: string, route: RouteSpec): boolean {
  if (entry.startsWith('/')) return patternRegExp(entry).test(routePath(route));
  return ROUTE_GROUPS[entry.toLowerCase()]?.includes(route) ?? false;
}

export function routeAllowed(entries: readonly string[], route: RouteSpec): boolean {
  let hasPositive = false;
  let positiveMatched = false;
  for (const raw of entries) {
    const negative = raw.startsWith('!');
    const entry = negative ? raw.slice(1) : raw;
    const matches = routeEntryMatches(entry, route);
    if (negative) {
      if (matches) return false;
    } else {
      hasPositive = true;
      positiveMatched ||= matches;
    }
  }
  return !hasPositive || positiveMatched;
}

/**
 * Is a destructive route granted explicitly? Only by a positive `allowed_routes` entry that covers
 * it (a group such as `destructive`, `sessions` or `agent-runtime`, or a path pattern), or by
 * `allowed_operations` naming the operation. An empty `allowed_routes`, or one made only of `!`
 * exclusions, grants none: such a key gets inference, reads and normal agent use only.
 */
export function destructiveGranted(
  record: { readonly allowed_routes: readonly string[]; readonly allowed_operations: readonly string[] },
  route: RouteSpec,
): boolean {
  if (record.allowed_operations.includes(route.operation)) return true;
  const positives = record.allowed_routes.filter((entry) => !entry.startsWith('!'));
  return positives.some((entry) => routeEntryMatches(entry, route)) && routeAllowed(record.allowed_routes, route);
}

/**
 * Normalise one `allowed_routes` entry, or explain why it is not one. An entry that matches no
 * route at all is refused: it is a typo that would silently lock the key out (or, with `!`,
 * silently fail to bar anything).
 */
export function normalizeRouteEntry(raw: string, routes: readonly RouteSpec[] = ROUTES): { entry: string } | { error: string } {
  const trimmed = raw.trim();
  const negative = trimmed.startsWith('!');
  const body = (negative ? trimmed.slice(1) : trimmed).trim();
  if (!body) return { error: 'is empty' };
  let entry: string;
  if (body.startsWith('/')) {
    entry = body;
  } else {
    entry = body.toLowerCase();
    if (!ROUTE_GROUPS[entry]) {
      return { error: `"${body}" is neither a route group (${Object.keys(ROUTE_GROUPS).join(', ')}) nor a relay path pattern like /bedrock/model/*` };
    }
  }
  if (!routes.some((route) => routeEntryMatches(entry, route))) return { error: `"${body}" matches no relay route` };
  return { entry: negative ? `!${entry}` : entry };
}

const OPERATIONS = new Map(ROUTES.map((route) => [route.operation.toLowerCase(), route.operation]));

/** The route table's spelling of an operation name, or undefined if there is no such operation. */
export function canonicalOperation(name: string): string | undefined {
  return OPERATIONS.get(name.trim().toLowerCase());
}
