import { JsonBodyRefused, parseJsonDocument, type JsonDocument } from '../http/json-document.js';
import type { MatchedRoute } from '../routes/match.js';

/**
 * What a call refers to, for policy: models and the Bedrock resources a key may be limited to.
 * References come from path labels (the route table's `resources`), one header, and — for the
 * operations whose request body names resources — known JSON paths in the body. The body table
 * mirrors the Smithy models; test/unit/policy-references.test.ts walks the installed SDKs'
 * schemas and fails when an operation gains a reference this table does not list.
 */
export type ReferenceKind = 'model' | 'guardrail' | 'knowledge-base' | 'agent' | 'flow';
export type ResourceKind = Exclude<ReferenceKind, 'model'>;

export interface Reference {
  readonly kind: ReferenceKind;
  readonly value: string;
  /** Agent or flow alias the call goes through, when it names one. */
  readonly alias?: string;
  /** Where it was found (`path:agentId`, `body:foundationModel`…), for messages. */
  readonly source: string;
}

export interface BodyReference {
  readonly kind: ReferenceKind;
  /** Dot path; `[]` steps into every element of an array. */
  readonly path: string;
}

const RERANK_MODEL = 'rerankingConfiguration.bedrockRerankingConfiguration.modelConfiguration.modelArn';
/** Models a KnowledgeBaseRetrievalConfiguration can name. */
const retrievalModels = (prefix: string): BodyReference[] => [
  { kind: 'model', path: `${prefix}retrievalConfiguration.vectorSearchConfiguration.${RERANK_MODEL}` },
  { kind: 'model', path: `${prefix}retrievalConfiguration.vectorSearchConfiguration.implicitFilterConfiguration.modelArn` },
  { kind: 'model', path: `${prefix}retrievalConfiguration.managedSearchConfiguration.${RERANK_MODEL}` },
];
const inlineAgent = (prefix: string): BodyReference[] => [
  { kind: 'model', path: `${prefix}foundationModel` },
  { kind: 'knowledge-base', path: `${prefix}knowledgeBases[].knowledgeBaseId` },
  ...retrievalModels(`${prefix}knowledgeBases[].`),
  { kind: 'guardrail', path: `${prefix}guardrailConfiguration.guardrailIdentifier` },
  { kind: 'model', path: `${prefix}promptOverrideConfiguration.promptConfigurations[].foundationModel` },
  { kind: 'agent', path: `${prefix}collaboratorConfigurations[].agentAliasArn` },
];
const retrieveAndGenerate: BodyReference[] = [
  { kind: 'knowledge-base', path: 'retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.knowledgeBaseId' },
  { kind: 'model', path: 'retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.modelArn' },
  ...retrievalModels('retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.'),
  { kind: 'guardrail', path: 'retrieveAndGenerateConfiguration.knowledgeBaseConfiguration.generationConfiguration.guardrailConfiguration.guardrailId' },
  { kind: 'model', path: 'retrieveAndGenerateConfiguration.externalSourcesConfiguration.modelArn' },
  { kind: 'guardrail', path: 'retrieveAndGenerateConfiguration.externalSourcesConfiguration.generationConfiguration.guardrailConfiguration.guardrailId' },
];
const converse: BodyReference[] = [{ kind: 'guardrail', path: 'guardrailConfig.guardrailIdentifier' }];

export const BODY_REFERENCES: Readonly<Record<string, readonly BodyReference[]>> = {
  Converse: converse,
  ConverseStream: converse,
  StartAsyncInvoke: [{ kind: 'model', path: 'modelId' }],
  // Compatible APIs and bedrock-mantle name the model in the body (the route table says so).
  AnthropicMessages: [{ kind: 'model', path: 'model' }],
  OpenAIChatCompletions: [{ kind: 'model', path: 'model' }],
  OpenAIResponses: [{ kind: 'model', path: 'model' }],
  ChatCompletions: [{ kind: 'model', path: 'model' }],
  MantleChatCompletions: [{ kind: 'model', path: 'model' }],
  MantleResponses: [{ kind: 'model', path: 'model' }],
  MantleOpenAIChatCompletions: [{ kind: 'model', path: 'model' }],
  MantleOpenAIResponses: [{ kind: 'model', path: 'model' }],
  MantleAnthropicMessages: [{ kind: 'model', path: 'model' }],
  InvokeAgent: [
    { kind: 'knowledge-base', path: 'sessionState.knowledgeBaseConfigurations[].knowledgeBaseId' },
    ...retrievalModels('sessionState.knowledgeBaseConfigurations[].'),
  ],
  InvokeInlineAgent: [...inlineAgent(''), ...inlineAgent('collaborators[].')],
  Retrieve: [...retrievalModels(''), { kind: 'guardrail', path: 'guardrailConfiguration.guardrailId' }],
  RetrieveAndGenerate: retrieveAndGenerate,
  RetrieveAndGenerateStream: retrieveAndGenerate,
  AgenticRetrieveStream: [
    { kind: 'knowledge-base', path: 'retrievers[].configuration.knowledgeBase.knowledgeBaseId' },
    { kind: 'model', path: 'agenticRetrieveConfiguration.foundationModelConfiguration.bedrockFoundationModelConfiguration.modelConfiguration.modelArn' },
    { kind: 'model', path: 'agenticRetrieveConfiguration.foundationModelConfiguration.mantleFoundationModelConfiguration.modelConfiguration.modelArn' },
    { kind: 'model', path: `agenticRetrieveConfiguration.${RERANK_MODEL}` },
    { kind: 'guardrail', path: 'policyConfiguration.bedrockGuardrailConfiguration.guardrailId' },
  ],
  Rerank: [{ kind: 'model', path: RERANK_MODEL }],
  GenerateQuery: [{ kind: 'knowledge-base', path: 'transformationConfiguration.textToSqlConfiguration.knowledgeBaseConfiguration.knowledgeBaseArn' }],
  OptimizePrompt: [{ kind: 'model', path: 'targetModelId' }],
};

/** Headers that name a resource (InvokeModel's guardrail; checked on every route, it costs nothing). */
export const HEADER_REFERENCES: ReadonlyArray<{ readonly header: string; readonly kind: ResourceKind }> = [
  { header: 'x-amzn-bedrock-guardrailidentifier', kind: 'guardrail' },
];

/** References in path labels, the query (ListFlowExecutions' alias) and headers. */
export function requestReferences(match: MatchedRoute, headers: Readonly<Record<string, string>>): Reference[] {
  const refs: Reference[] = [];
  const { resources } = match.route;
  const labelOf = (kind: string) => Object.keys(resources).find((label) => resources[label] === kind);
  for (const [label, kind] of Object.entries(resources)) {
    const value = match.params[label];
    if (value === undefined) continue;
    const source = `path:${label}`;
    switch (kind) {
      case 'model':
        refs.push({ kind: 'model', value, source });
        break;
      case 'guardrail':
        refs.push({ kind: 'guardrail', value, source });
        break;
      case 'knowledge-base':
        refs.push({ kind: 'knowledge-base', value, source });
        break;
      case 'agent': {
        const aliasLabel = labelOf('agent-alias');
        refs.push({ kind: 'agent', value, alias: aliasLabel ? match.params[aliasLabel] : undefined, source });
        break;
      }
      case 'flow': {
        const aliasLabel = labelOf('flow-alias');
        const alias = aliasLabel ? match.params[aliasLabel] : match.query.find(([name]) => name === 'flowAliasIdentifier')?.[1];
        refs.push({ kind: 'flow', value, alias, source });
        break;
      }
      case 'resource-arn': {
        const kindOfArn = resourceKindOfArn(value);
        if (kindOfArn) refs.push({ kind: kindOfArn, value, source });
        break;
      }
      default:
        break;
    }
  }
  for (const { header, kind } of HEADER_REFERENCES) {
    const value = headers[header];
    if (value) refs.push({ kind, value, source: `header:${header}` });
  }
  return refs;
}

/**
 * References in a JSON body for the given kinds. Returns undefined when the body is not JSON
 * (or a referenced value is not a string): then nothing can be verified and policy refuses.
 * `document` is the call's parsed body (CallContext.document): the relay core parsed it once and
 * refused duplicate names there. A call built without one has its body read here with the same
 * strict parser (a body that parser refuses is one nothing can be verified in).
 */
export function bodyReferences(operation: string, body: Buffer, kinds: ReadonlySet<ReferenceKind>, document?: JsonDocument): Reference[] | undefined {
  const wanted = (BODY_REFERENCES[operation] ?? []).filter((ref) => kinds.has(ref.kind));
  if (wanted.length === 0 || body.length === 0) return [];
  let json: unknown;
  try {
    json = (document ?? parseJsonDocument(body)).json;
  } catch (error) {
    if (error instanceof JsonBodyRefused) return undefined;
    throw error;
  }
  if (json === undefined) return undefined;
  const refs: Reference[] = [];
  for (const { kind, path } of wanted) {
    for (const value of valuesAt(json, path)) {
      if (value === null || value === undefined) continue;
      if (typeof value !== 'string') return undefined;
      refs.push({ kind, value, source: `body:${path}` });
    }
  }
  return refs;
}

/** Values at a dot path with `[]` steps; missing steps yield nothing. */
export function valuesAt(root: unknown, path: string): unknown[] {
  let current: unknown[] = [root];
  for (const rawStep of path.split('.')) {
    const each = rawStep.endsWith('[]');
    const step = each ? rawStep.slice(0, -2) : rawStep;
    const next: unknown[] = [];
    for (const node of current) {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) continue;
      const value = (node as Record<string, unknown>)[step];
      if (value === undefined) continue;
      if (each) {
        if (Array.isArray(value)) next.push(...value);
        else next.push(value); // not an array where one is expected: keep it so the caller refuses
      } else {
        next.push(value);
      }
    }
    current = next;
  }
  return current;
}

// ── Resource names: IDs, ARNs and alias-qualified entries ──

/** A resource reference or allow-list entry reduced to what is compared. */
export interface ResourceName {
  readonly id: string;
  readonly alias?: string;
  /** Present when it was written as an ARN. */
  readonly scope?: { readonly partition: string; readonly region: string; readonly account: string };
}

const BEDROCK_ARN = /^arn:(aws[a-z-]*):bedrock:([a-z0-9-]*):(\d{0,12}):([a-z-]+)\/(.+)$/;
const PLAIN_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

function resourceKindOfArn(value: string): ResourceKind | undefined {
  const type = BEDROCK_ARN.exec(value)?.[4];
  switch (type) {
    case 'guardrail':
      return 'guardrail';
    case 'knowledge-base':
      return 'knowledge-base';
    case 'agent':
    case 'agent-alias':
      return 'agent';
    case 'flow':
      return 'flow';
    default:
      return undefined;
  }
}

/**
 * Parse an ID, an ARN of the right type, or — in allow-list entries only — `ID/ALIAS` for agents
 * and flows. Anything else (an ARN of another resource type, a `/` smuggled into a request's
 * path label as %2F, stray characters) is undefined and never matches.
 */
export function parseResourceName(kind: ResourceKind, value: string, form: 'entry' | 'request' = 'entry'): ResourceName | undefined {
  const trimmed = value.trim();
  const arn = BEDROCK_ARN.exec(trimmed);
  if (arn) {
    const [, partition, region, account, type, rest] = arn as unknown as [string, string, string, string, string, string];
    const scope = { partition, region, account };
    const parts = rest.split('/');
    switch (kind) {
      case 'guardrail':
      case 'knowledge-base':
        return type === kind && parts.length === 1 && PLAIN_ID.test(parts[0]!) ? { id: parts[0]!, scope } : undefined;
      case 'agent':
        if (type === 'agent' && parts.length === 1) return plain(parts[0]!, undefined, scope);
        if (type === 'agent-alias' && parts.length === 2) return plain(parts[0]!, parts[1], scope);
        return undefined;
      case 'flow':
        if (type !== 'flow') return undefined;
        if (parts.length === 1) return plain(parts[0]!, undefined, scope);
        if (parts.length === 3 && parts[1] === 'alias') return plain(parts[0]!, parts[2], scope);
        return undefined;
    }
  }
  if (trimmed.startsWith('arn:')) return undefined;
  const parts = trimmed.split('/');
  if (parts.length === 1) return plain(parts[0]!, undefined, undefined);
  if (form === 'entry' && parts.length === 2 && (kind === 'agent' || kind === 'flow')) return plain(parts[0]!, parts[1], undefined);
  return undefined;
}

function plain(id: string, alias: string | undefined, scope: ResourceName['scope']): ResourceName | undefined {
  if (!PLAIN_ID.test(id) || (alias !== undefined && !PLAIN_ID.test(alias))) return undefined;
  return { id, ...(alias !== undefined ? { alias } : {}), ...(scope ? { scope } : {}) };
}

/**
 * Does an allow-list entry admit the referenced resource? IDs compare exactly (Bedrock IDs are
 * case-sensitive); an ARN matches its ID, and two ARNs must also agree on partition, region and
 * account. An entry with an alias admits only that alias; one without admits every alias.
 */
export function resourceEntryAdmits(entry: string, kind: ResourceKind, ref: Reference): boolean {
  if (entry.trim() === '*') return true;
  const allowed = parseResourceName(kind, entry);
  const requested = parseResourceName(kind, ref.value, 'request');
  if (!allowed || !requested) return false;
  if (allowed.id !== requested.id) return false;
  const requestedAlias = requested.alias ?? ref.alias;
  if (allowed.alias !== undefined && allowed.alias !== requestedAlias) return false;
  if (allowed.scope && requested.scope) {
    const a = allowed.scope;
    const b = requested.scope;
    if (a.partition !== b.partition || a.account !== b.account || (a.region && b.region && a.region !== b.region)) return false;
  }
  return true;
}
