import { RelayError } from '../http/errors.js';
import type { KeyRecord, ObjectPermission } from '../keys/types.js';
import { isKeyRecord } from '../keys/types.js';
import { anyModelAllowed } from '../models/ids.js';
import type { AdmissionControl, CallContext } from '../pipeline.js';
import { bodyReferences, requestReferences, resourceEntryAdmits, type Reference, type ReferenceKind, type ResourceKind } from './resources.js';
import { modelUse, type ModelUse } from './model-use.js';
import { DESTRUCTIVE_OPERATIONS, destructiveGranted, routeAllowed, routePath } from './routes.js';

/** The parts of a key record that policy reads. */
export type PolicyRecord = Pick<KeyRecord, 'models' | 'allowed_operations' | 'allowed_routes' | 'object_permission'>;

/** LiteLLM spells "every model" as an empty list, `*`, or `all-proxy-models`. */
const ALL_MODELS = new Set(['*', 'all-proxy-models']);

const PERMISSION_FIELD: Readonly<Record<ResourceKind, keyof ObjectPermission>> = {
  guardrail: 'guardrails',
  'knowledge-base': 'knowledge_bases',
  agent: 'agents',
  flow: 'flows',
};

const KIND_LABEL: Readonly<Record<ReferenceKind, string>> = {
  model: 'model',
  guardrail: 'guardrail',
  'knowledge-base': 'knowledge base',
  agent: 'agent',
  flow: 'flow',
};

/**
 * Decide whether a virtual key may make this call; throws a 403 AccessDeniedException (which
 * every SDK raises as a typed error) if not. Runs before anything goes upstream. Checks, in
 * order: allowed_operations, allowed_routes, the explicit grant destructive calls need, models
 * (including the models a call runs without naming them), object_permission. Messages name what
 * was refused (operation, model, resource) and the key field that would allow it — never the key.
 */
export function authorizeCall(record: PolicyRecord, call: CallContext): void {
  const { route } = call.match;

  if (record.allowed_operations.length > 0 && !record.allowed_operations.includes(route.operation)) {
    throw deny(`This API key is not allowed to call ${route.operation} (allowed_operations).`);
  }
  if (record.allowed_routes.length > 0 && !routeAllowed(record.allowed_routes, route)) {
    throw deny(`This API key is not allowed to use ${routePath(route)} (allowed_routes).`);
  }
  if (DESTRUCTIVE_OPERATIONS.has(route.operation) && !destructiveGranted(record, route)) {
    throw deny(
      `${route.operation} deletes, ends or changes existing state, so an API key may call it only when its allowed_routes grants it: ` +
        `add "destructive" or "${routePath(route)}" to allowed_routes (or "${route.operation}" to allowed_operations).`,
    );
  }

  const restricted = restrictedKinds(record);
  const modelScoped = restricted.has('model');
  if (restricted.size === 0) return;

  const use = modelScoped ? modelUse(route) : 'none';
  if (use === undefined) {
    throw deny(`This API key is limited to certain models (models), and ${route.operation} is not known to run only those; use a key without a models list.`);
  }
  // A model-scoped key must also see which agents, flows and knowledge bases a call reaches:
  // they run models the request does not name.
  const wanted = new Set<ReferenceKind>(restricted);
  if (modelScoped) for (const kind of SCOPED_RESOURCES) wanted.add(kind);

  const refs: Reference[] = requestReferences(call.match, call.request.headers);
  if (call.model !== undefined) refs.push({ kind: 'model', value: call.model, source: 'request' });
  const fromBody = bodyReferences(route.operation, call.request.body, wanted, call.document);
  if (fromBody === undefined) {
    const kinds = [...restricted].map((kind) => `${KIND_LABEL[kind]}s`).join(' and ');
    throw deny(`This API key is limited to certain ${kinds}, and the request body could not be read to check which ones it uses.`);
  }
  refs.push(...fromBody);

  if (modelScoped) {
    const models = refs.filter((ref) => ref.kind === 'model');
    // A call that runs a named model, but whose model we could not find, would otherwise slip past the allow-list.
    if ((route.model !== undefined || use === 'named') && models.length === 0) {
      throw deny('This API key is limited to certain models, and the request names none.');
    }
    for (const ref of models) {
      if (!anyModelAllowed(record.models, ref.value)) {
        throw deny(`This API key is not allowed to use model ${printable(ref.value)}; add it to the key's models.`);
      }
    }
    checkModelScope(record, route.operation, use, refs, models.length > 0);
  }

  for (const ref of refs) {
    if (ref.kind === 'model' || !restricted.has(ref.kind)) continue;
    const entries = record.object_permission?.[PERMISSION_FIELD[ref.kind]] ?? [];
    if (!entries.some((entry) => resourceEntryAdmits(entry, ref.kind as ResourceKind, ref))) {
      const alias = ref.alias ? ` (alias ${printable(ref.alias)})` : '';
      throw deny(
        `This API key is not allowed to use ${KIND_LABEL[ref.kind]} ${printable(ref.value)}${alias}; add it to object_permission.${PERMISSION_FIELD[ref.kind]}.`,
      );
    }
  }
}

/** Resources that run models of their own choosing: a model-scoped key must name them. */
const SCOPED_RESOURCES: readonly ResourceKind[] = ['agent', 'flow', 'knowledge-base'];

/**
 * A model-scoped key reaches agents and flows (anywhere in the request: path, collaborators,
 * tagged ARNs) and service-chosen models only through resources that object_permission names
 * explicitly. `*` in that list counts: it is the administrator saying "every agent". An empty or
 * missing list — which for an unscoped key means "no restriction" — here means "none".
 */
function checkModelScope(record: PolicyRecord, operation: string, use: ModelUse, refs: readonly Reference[], namesModel: boolean): void {
  const needs: ResourceKind[] = ['agent', 'flow'];
  if (use === 'knowledge-base' || (use === 'named-or-knowledge-base' && !namesModel)) needs.push('knowledge-base');
  const scoped = refs.filter((ref): ref is Reference & { kind: ResourceKind } => (needs as ReferenceKind[]).includes(ref.kind));
  const runsVia: ResourceKind | undefined = use === 'agent' || use === 'flow' ? use : needs.includes('knowledge-base') ? 'knowledge-base' : undefined;
  if (runsVia && !scoped.some((ref) => ref.kind === runsVia)) {
    throw deny(`This API key is limited to certain models (models), and ${operation} names no ${KIND_LABEL[runsVia]} it could check.`);
  }
  for (const ref of scoped) {
    const field = PERMISSION_FIELD[ref.kind];
    const entries = record.object_permission?.[field] ?? [];
    if (entries.some((entry) => resourceEntryAdmits(entry, ref.kind, ref))) continue;
    const alias = ref.alias ? ` (alias ${printable(ref.alias)})` : '';
    const why =
      ref.kind === 'knowledge-base'
        ? `${operation} runs a model Bedrock chooses for knowledge base ${printable(ref.value)}`
        : `${operation} would run ${KIND_LABEL[ref.kind]} ${printable(ref.value)}${alias}, which uses whatever models it is configured with`;
    throw deny(`This API key is limited to certain models (models), and ${why}. To allow it, name it in the key's object_permission.${field}.`);
  }
}

/** Which kinds of reference the key restricts (an empty or missing list restricts nothing). */
export function restrictedKinds(record: PolicyRecord): Set<ReferenceKind> {
  const kinds = new Set<ReferenceKind>();
  if (isModelScoped(record)) kinds.add('model');
  for (const [kind, field] of Object.entries(PERMISSION_FIELD) as Array<[ResourceKind, keyof ObjectPermission]>) {
    const entries = record.object_permission?.[field];
    if (entries && entries.length > 0 && !entries.some((entry) => entry.trim() === '*')) kinds.add(kind);
  }
  return kinds;
}

export function isModelScoped(record: Pick<KeyRecord, 'models'>): boolean {
  return record.models.length > 0 && !record.models.some((entry) => ALL_MODELS.has(entry.trim().toLowerCase()));
}

/** For discovery listings: may this key use that model? */
export function keyAllowsModel(record: Pick<KeyRecord, 'models'>, modelId: string): boolean {
  return !isModelScoped(record) || anyModelAllowed(record.models, modelId);
}

/**
 * The policy step as an AdmissionControl: virtual keys are authorised, the master key passes.
 * Budgets and limits (issue 4) wrap or replace this with their own admission.
 */
export const POLICY_ADMISSION: AdmissionControl = {
  admit: async (call) => {
    if (call.principal.kind === 'virtual-key') {
      if (!isKeyRecord(call.principal.record)) throw deny('The API key could not be checked.');
      authorizeCall(call.principal.record, call);
    }
    return { settle: async () => undefined };
  },
};

function deny(message: string): RelayError {
  return new RelayError(403, 'AccessDeniedException', message);
}

/** Client-supplied text in a message: no control characters, bounded length. */
function printable(value: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}
