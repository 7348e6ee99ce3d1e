import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as agentRuntime from '@aws-sdk/client-bedrock-agent-runtime';
import * as bedrockRuntime from '@aws-sdk/client-bedrock-runtime';
import { BODY_REFERENCES, HEADER_REFERENCES, valuesAt, type ReferenceKind } from '../../lambda/policy/resources.js';
import { ROUTE_GROUPS, canonicalOperation, normalizeRouteEntry } from '../../lambda/policy/routes.js';
import { ROUTES } from '../../lambda/routes/table.js';

/**
 * The policy must see every resource a request can name. The installed SDKs carry each
 * operation's Smithy input schema; walk it and require that every member naming a model,
 * knowledge base, guardrail, agent or flow is covered — as a path label (route table), a header
 * (HEADER_REFERENCES), the query (ListFlowExecutions) or a body path (BODY_REFERENCES).
 */
const REFERENCE_MEMBERS: Readonly<Record<string, ReferenceKind>> = {
  modelId: 'model',
  modelArn: 'model',
  foundationModel: 'model',
  targetModelId: 'model',
  knowledgeBaseId: 'knowledge-base',
  knowledgeBaseArn: 'knowledge-base',
  guardrailId: 'guardrail',
  guardrailIdentifier: 'guardrail',
  agentId: 'agent',
  agentAliasId: 'agent',
  agentAliasArn: 'agent',
  flowIdentifier: 'flow',
  flowAliasIdentifier: 'flow',
};

/** Members that look like references but choose no resource. */
const NOT_RESOURCE_CHOICES = new Map([
  // Return-control results echo the invoking agent's own ID back; the agent is the path's.
  ['InvokeAgent', ['sessionState.returnControlInvocationResults[].apiResult.agentId', 'sessionState.returnControlInvocationResults[].functionResult.agentId']],
  [
    'InvokeInlineAgent',
    ['inlineSessionState.returnControlInvocationResults[].apiResult.agentId', 'inlineSessionState.returnControlInvocationResults[].functionResult.agentId'],
  ],
]);

const QUERY_REFERENCES = new Set(['ListFlowExecutions:flowAliasIdentifier']);

interface Member {
  readonly path: string;
  readonly name: string;
  readonly header?: string;
  readonly query?: string;
}

type Schema = unknown;

function members(schema: Schema, path: string, out: Member[], seen: ReadonlySet<unknown>): void {
  let node = schema;
  // A member or list element may be wrapped with its traits: [schema, traits].
  if (Array.isArray(node) && node.length === 2) node = node[0];
  if (typeof node === 'function') node = (node as () => Schema)();
  if (!Array.isArray(node)) return;
  const kind = node[0];
  if (kind === 1) return members(node[4], `${path}[]`, out, seen);
  if (kind === 2) return members(node[5], `${path}{}`, out, seen);
  if (kind !== 3 && kind !== 4) return;
  if (seen.has(node)) return; // recursive shapes (document-like trees)
  const nextSeen = new Set(seen).add(node);
  const names = node[4] as string[];
  const schemas = node[5] as Schema[];
  names.forEach((name, index) => {
    const member = schemas[index];
    const memberPath = path ? `${path}.${name}` : name;
    const traits = Array.isArray(member) && member.length === 2 && typeof member[1] === 'object' ? (member[1] as Record<string, unknown>) : undefined;
    out.push({
      path: memberPath,
      name,
      header: typeof traits?.httpHeader === 'string' ? traits.httpHeader.toLowerCase() : undefined,
      query: typeof traits?.httpQuery === 'string' ? traits.httpQuery : undefined,
    });
    if (!traits) members(Array.isArray(member) && member.length === 2 ? member[0] : member, memberPath, out, nextSeen);
  });
}

const SDKS: Readonly<Record<string, Record<string, unknown>>> = {
  'bedrock-runtime': bedrockRuntime as unknown as Record<string, unknown>,
  'bedrock-agent-runtime': agentRuntime as unknown as Record<string, unknown>,
};

function inputMembers(service: string, operation: string): Member[] | undefined {
  const operationSchema = SDKS[service]?.[`${operation}$`] as unknown[] | undefined;
  if (!operationSchema) return undefined;
  const out: Member[] = [];
  members(operationSchema[4], '', out, new Set());
  return out;
}

describe('resource references', () => {
  const sdkRoutes = ROUTES.filter((route) => inputMembers(route.service, route.operation));

  it('finds the SDK schemas (the test would be vacuous otherwise)', () => {
    assert.ok(sdkRoutes.length >= 40, `only ${sdkRoutes.length} operations have schemas`);
    assert.ok(inputMembers('bedrock-agent-runtime', 'InvokeInlineAgent')!.some((m) => m.path === 'collaborators[].knowledgeBases[].knowledgeBaseId'));
  });

  for (const route of sdkRoutes) {
    it(`${route.operation}: every resource the request can name is checked`, () => {
      const labels = new Set([...route.template.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!));
      const body = BODY_REFERENCES[route.operation] ?? [];
      const ignored = NOT_RESOURCE_CHOICES.get(route.operation) ?? [];
      for (const member of inputMembers(route.service, route.operation)!) {
        const kind = REFERENCE_MEMBERS[member.name];
        if (!kind || ignored.includes(member.path)) continue;
        if (labels.has(member.path)) {
          assert.ok(route.resources[member.path], `path label ${member.path} has no resource kind in the route table`);
        } else if (member.header) {
          assert.ok(
            HEADER_REFERENCES.some((ref) => ref.header === member.header && ref.kind === kind),
            `header ${member.header} is not checked`,
          );
        } else if (member.query) {
          assert.ok(QUERY_REFERENCES.has(`${route.operation}:${member.query}`), `query ${member.query} is not checked`);
        } else {
          assert.ok(
            body.some((ref) => ref.path === member.path && ref.kind === kind),
            `body member ${member.path} (${kind}) is missing from BODY_REFERENCES.${route.operation}`,
          );
        }
      }
    });
  }

  it('lists only body paths that exist in the SDK schema', () => {
    for (const [operation, refs] of Object.entries(BODY_REFERENCES)) {
      const route = ROUTES.find((r) => r.operation === operation);
      assert.ok(route, `${operation} is not in the route table`);
      const schema = inputMembers(route.service, operation);
      if (!schema) continue; // compatible APIs and bedrock-mantle: no Smithy model
      const paths = new Set(schema.map((member) => member.path));
      for (const ref of refs) assert.ok(paths.has(ref.path), `${operation}: ${ref.path} is not in the SDK's input shape`);
    }
  });

  it('reads values at paths with [] steps', () => {
    const json = { a: [{ b: { c: 'x' } }, { b: { c: 'y' } }, { b: {} }], d: 'z' };
    assert.deepEqual(valuesAt(json, 'a[].b.c'), ['x', 'y']);
    assert.deepEqual(valuesAt(json, 'd'), ['z']);
    assert.deepEqual(valuesAt(json, 'missing.path'), []);
    assert.deepEqual(valuesAt({ a: { b: 1 } }, 'a[].b'), [1], 'a non-array where one is expected is still read (and then refused)');
  });
});

describe('route groups', () => {
  const SERVICE_GROUPS = new Set(['llm_api_routes', 'runtime', 'agent-runtime', 'mantle']);

  it('put every route in at least one functional group', () => {
    for (const route of ROUTES) {
      const groups = Object.entries(ROUTE_GROUPS).filter(([name, group]) => !SERVICE_GROUPS.has(name) && group.includes(route));
      assert.ok(groups.length > 0, `${route.operation} is in no functional group`);
    }
  });

  it('normalise entries and refuse ones that match nothing', () => {
    assert.deepEqual(normalizeRouteEntry(' Agents '), { entry: 'agents' });
    assert.deepEqual(normalizeRouteEntry('!Knowledge-Bases'), { entry: '!knowledge-bases' });
    assert.deepEqual(normalizeRouteEntry('/bedrock/model/*'), { entry: '/bedrock/model/*' });
    assert.ok('error' in normalizeRouteEntry('/bedrock/Model/*'), 'paths are case-sensitive');
    assert.ok('error' in normalizeRouteEntry('/model/*'), 'patterns are relay paths, with the prefix');
    assert.ok('error' in normalizeRouteEntry('chat'));
  });

  it('know every operation name, in any case', () => {
    for (const route of ROUTES) assert.equal(canonicalOperation(route.operation.toUpperCase()), route.operation);
    assert.equal(canonicalOperation('ConverseStreaming'), undefined);
  });
});
