import { canonicalOperation, normalizeRouteEntry } from '../policy/routes.js';
import { parseResourceName, type ResourceKind } from '../policy/resources.js';
import { parseDuration } from './duration.js';
import { invalidField } from './errors.js';
import { tokenFromIdentifier } from './secrets.js';
import { OBJECT_PERMISSION_FIELDS, type JsonObject, type JsonValue, type ObjectPermission, type ObjectPermissionField } from './types.js';

/**
 * Request validation for the admin API and the CLI. Every problem is a 400 naming the field
 * (LiteLLM's `param`), raised before anything is written.
 *
 * In a change set, `null` clears a field (LiteLLM's update semantics) and an absent field is
 * left alone; on generate, `null` and absent both mean "not set".
 */
export interface KeyChanges {
  key_alias?: string | null;
  duration?: string | null;
  models?: string[] | null;
  allowed_operations?: string[] | null;
  allowed_routes?: string[] | null;
  object_permission?: ObjectPermission | null;
  max_budget?: number | null;
  budget_duration?: string | null;
  /** USD; sets the recorded spend (LiteLLM lets admins set or reset it). */
  spend?: number;
  tpm_limit?: number | null;
  rpm_limit?: number | null;
  max_parallel_requests?: number | null;
  model_rpm_limit?: Record<string, number> | null;
  model_tpm_limit?: Record<string, number> | null;
  metadata?: JsonObject | null;
  user_id?: string | null;
  team_id?: string | null;
  blocked?: boolean;
}

export const ALIAS_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:@+=/-]{0,255}$/;
const MAX_LIST_ENTRIES = 1000;
const MAX_ENTRY_LENGTH = 2048;
const MAX_ID_LENGTH = 256;
const MAX_METADATA_BYTES = 32 * 1024;

type FieldParser = (value: unknown, field: string) => unknown;

/** One parser per accepted field; issue 4 adds its own (e.g. per-model limits) here. */
const FIELD_PARSERS: Readonly<Record<keyof KeyChanges, FieldParser>> = {
  key_alias: nullable(parseAlias),
  duration: nullable(parseDurationField),
  models: nullable((value, field) => stringList(value, field, (entry) => (entry.trim() ? undefined : 'is empty'))),
  allowed_operations: nullable(parseOperations),
  allowed_routes: nullable(parseRoutes),
  object_permission: nullable(parseObjectPermission),
  max_budget: nullable(nonNegativeNumber),
  budget_duration: nullable(parseDurationField),
  spend: nonNegativeNumber,
  tpm_limit: nullable(nonNegativeInteger),
  rpm_limit: nullable(nonNegativeInteger),
  max_parallel_requests: nullable(nonNegativeInteger),
  model_rpm_limit: nullable(parseModelLimits),
  model_tpm_limit: nullable(parseModelLimits),
  metadata: nullable(parseMetadata),
  user_id: nullable(identifierString),
  team_id: nullable(identifierString),
  blocked: boolean,
};

/**
 * LiteLLM fields the relay does not implement. Its clients often send them with empty defaults
 * (`"aliases": {}`, `"tags": null`), which are accepted and ignored so their scripts keep
 * working; a meaningful value is refused rather than silently dropped.
 */
const UNSUPPORTED_LITELLM_FIELDS = new Set([
  'aliases',
  'config',
  'permissions',
  'model_max_budget',
  'soft_budget',
  'guardrails',
  'policies',
  'prompts',
  'tags',
  'allowed_cache_controls',
  'send_invite_email',
  'key_type',
  'budget_id',
  'organization_id',
  'project_id',
  'agent_id',
  'enforced_params',
  'auto_rotate',
  'rotation_interval',
  'temp_budget_increase',
  'temp_budget_expiry',
  'allowed_passthrough_routes',
  'rpm_limit_type',
  'tpm_limit_type',
  'router_settings',
  'access_group_ids',
  'object_permission_id',
  'team_member_key_duration',
  'user_email',
  'user_role',
  'max_budget_in_team',
  'budget_limits',
  'allowed_vector_store_indexes',
  'mcp_servers',
]);

export interface KeyReference {
  /** The key's token (SHA-256 hex). */
  readonly token: string;
}

/** POST /key/generate */
export function parseGenerateBody(body: unknown): KeyChanges {
  const object = requireObject(body);
  if ('key' in object && object.key !== null && object.key !== undefined) {
    throw invalidField('key', 'Custom key values are not supported: the relay generates every key (sk- + 32 random bytes).');
  }
  return parseChanges(object, new Set(['key']));
}

/** POST /key/update: `key` plus changes. */
export function parseUpdateBody(body: unknown): KeyReference & { changes: KeyChanges } {
  const object = requireObject(body);
  const token = parseKeyIdentifier(object.key, 'key');
  return { token, changes: parseChanges(object, new Set(['key'])) };
}

/** POST /key/regenerate and /key/{key}/regenerate: the key (body or path) and optional changes. */
export function parseRegenerateBody(body: unknown, pathKey?: string): KeyReference & { changes: KeyChanges } {
  const object = body === undefined ? {} : requireObject(body);
  for (const field of ['new_key', 'new_master_key'] as const) {
    if (object[field] !== undefined && object[field] !== null) {
      throw invalidField(field, `${field} is not supported: the relay generates the new key itself, and the master key is set in its configuration.`);
    }
  }
  const identifier = pathKey ?? object.key;
  const token = parseKeyIdentifier(identifier, 'key');
  return { token, changes: parseChanges(object, new Set(['key', 'new_key', 'new_master_key'])) };
}

/** POST /key/block, /key/unblock */
export function parseKeyBody(body: unknown): KeyReference {
  const object = requireObject(body);
  const extra = Object.keys(object).find((field) => field !== 'key');
  if (extra) throw invalidField(extra, `Unknown field "${extra}".`);
  return { token: parseKeyIdentifier(object.key, 'key') };
}

/** POST /key/delete: `keys` or `key_aliases`, never both (LiteLLM's rule). */
export function parseDeleteBody(body: unknown): { tokens: string[] } | { aliases: string[] } {
  const object = requireObject(body);
  const extra = Object.keys(object).find((field) => field !== 'keys' && field !== 'key_aliases');
  if (extra) throw invalidField(extra, `Unknown field "${extra}".`);
  const hasKeys = object.keys !== undefined && object.keys !== null;
  const hasAliases = object.key_aliases !== undefined && object.key_aliases !== null;
  if (hasKeys === hasAliases) throw invalidField('keys', 'Send either "keys" or "key_aliases" (a non-empty list).');
  if (hasKeys) {
    const keys = stringList(object.keys, 'keys', () => undefined);
    if (keys.length === 0) throw invalidField('keys', '"keys" must not be empty.');
    return { tokens: [...new Set(keys.map((key, index) => parseKeyIdentifier(key, `keys[${index}]`)))] };
  }
  const aliases = stringList(object.key_aliases, 'key_aliases', () => undefined);
  if (aliases.length === 0) throw invalidField('key_aliases', '"key_aliases" must not be empty.');
  return { aliases: [...new Set(aliases)] };
}

export interface ListQuery {
  readonly page: number;
  readonly size: number;
  readonly key_alias?: string;
  readonly user_id?: string;
  readonly team_id?: string;
  readonly key_hash?: string;
  readonly return_full_object: boolean;
}

const LIST_PARAMS = new Set([
  'page',
  'size',
  'key_alias',
  'user_id',
  'team_id',
  'key_hash',
  'return_full_object',
  'include_team_keys',
  'sort_by',
  'sort_order',
]);

/** GET /key/list (LiteLLM: page ≥ 1, 1 ≤ size ≤ 100, default 10). */
export function parseListQuery(query: URLSearchParams): ListQuery {
  for (const name of query.keys()) {
    if (!LIST_PARAMS.has(name)) throw invalidField(name, `Unknown query parameter "${name}".`);
  }
  const integer = (name: string, fallback: number, max: number): number => {
    const raw = query.get(name);
    if (raw === null || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 1 || value > max) throw invalidField(name, `"${name}" must be a whole number from 1 to ${max}.`);
    return value;
  };
  const text = (name: string): string | undefined => query.get(name) || undefined;
  const hash = text('key_hash');
  if (hash !== undefined && !/^[0-9a-f]{64}$/i.test(hash)) throw invalidField('key_hash', '"key_hash" must be a key token (64 hex characters).');
  const full = query.get('return_full_object');
  if (full !== null && full !== 'true' && full !== 'false') throw invalidField('return_full_object', '"return_full_object" must be true or false.');
  return {
    page: integer('page', 1, 1_000_000),
    size: integer('size', 10, 100),
    key_alias: text('key_alias'),
    user_id: text('user_id'),
    team_id: text('team_id'),
    key_hash: hash?.toLowerCase(),
    return_full_object: full === 'true',
  };
}

/** A key named by its secret or its token, as a token. */
export function parseKeyIdentifier(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw invalidField(field, `"${field}" is required: the key (sk-…) or its token.`);
  const token = tokenFromIdentifier(value);
  if (!token) throw invalidField(field, `"${field}" must be a virtual key (sk-…) or its token (64 hex characters).`);
  return token;
}

// ── field parsers ──

function parseChanges(object: Record<string, unknown>, ignored: ReadonlySet<string>): KeyChanges {
  const changes: Record<string, unknown> = {};
  for (const [field, value] of Object.entries(object)) {
    if (ignored.has(field) || value === undefined) continue;
    const parser = (FIELD_PARSERS as Record<string, FieldParser | undefined>)[field];
    if (parser) {
      changes[field] = parser(value, field);
    } else if (UNSUPPORTED_LITELLM_FIELDS.has(field)) {
      if (!isEmptyValue(value)) throw invalidField(field, `"${field}" is a LiteLLM field that bedrock-relay does not support.`);
    } else {
      throw invalidField(field, `Unknown field "${field}".`);
    }
  }
  return changes as KeyChanges;
}

function requireObject(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidField('body', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

function nullable(parser: FieldParser): FieldParser {
  return (value, field) => (value === null ? null : parser(value, field));
}

function isEmptyValue(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.values(value as object).every(isEmptyValue);
  return false;
}

function parseAlias(value: unknown, field: string): string {
  if (typeof value !== 'string' || !ALIAS_PATTERN.test(value)) {
    throw invalidField(field, `"${field}" must be 1–256 characters: letters, digits and _ . : @ + = / - (starting with a letter or digit).`);
  }
  return value;
}

function parseDurationField(value: unknown, field: string): string {
  if (typeof value !== 'string' || !parseDuration(value)) {
    throw invalidField(field, `"${field}" must be a duration like "30s", "30m", "12h", "30d", "2w" or "1mo".`);
  }
  return value.trim();
}

function nonNegativeNumber(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw invalidField(field, `"${field}" must be a number ≥ 0.`);
  // Beyond this, nano-USD stop being exact JavaScript integers.
  if (value > 9_000_000) throw invalidField(field, `"${field}" must be at most 9,000,000 (USD).`);
  return value;
}

function nonNegativeInteger(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw invalidField(field, `"${field}" must be a whole number ≥ 0.`);
  return value;
}

const MAX_MODEL_LIMITS = 100;

/** {model entry → whole number ≥ 0}; entries are matched like `models` entries (lambda/models/ids.ts). */
function parseModelLimits(value: unknown, field: string): Record<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidField(field, `"${field}" must be an object mapping model IDs to whole numbers, e.g. {"anthropic.claude-opus-4-7": 10}.`);
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length > MAX_MODEL_LIMITS) throw invalidField(field, `"${field}" may hold at most ${MAX_MODEL_LIMITS} models.`);
  const result: Record<string, number> = {};
  for (const [model, limit] of entries) {
    const entry = model.trim();
    if (!entry || entry.length > 512) throw invalidField(field, `"${field}" has an empty or over-long model ID.`);
    result[entry] = nonNegativeInteger(limit, `${field}.${entry}`);
  }
  return result;
}

function boolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalidField(field, `"${field}" must be true or false.`);
  return value;
}

function identifierString(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_ID_LENGTH) {
    throw invalidField(field, `"${field}" must be a non-empty string of at most ${MAX_ID_LENGTH} characters.`);
  }
  return value;
}

function stringList(value: unknown, field: string, check: (entry: string) => string | undefined): string[] {
  if (!Array.isArray(value)) throw invalidField(field, `"${field}" must be a list of strings.`);
  if (value.length > MAX_LIST_ENTRIES) throw invalidField(field, `"${field}" may hold at most ${MAX_LIST_ENTRIES} entries.`);
  return value.map((entry, index) => {
    if (typeof entry !== 'string' || entry.length > MAX_ENTRY_LENGTH) {
      throw invalidField(field, `"${field}[${index}]" must be a string of at most ${MAX_ENTRY_LENGTH} characters.`);
    }
    const problem = check(entry);
    if (problem) throw invalidField(field, `"${field}[${index}]" ${problem}.`);
    return entry.trim();
  });
}

function parseOperations(value: unknown, field: string): string[] {
  const names = stringList(value, field, (entry) => (canonicalOperation(entry) ? undefined : `("${entry}") is not a Bedrock operation the relay knows`));
  return [...new Set(names.map((name) => canonicalOperation(name)!))];
}

function parseRoutes(value: unknown, field: string): string[] {
  const entries = stringList(value, field, (entry) => {
    const normalized = normalizeRouteEntry(entry);
    return 'error' in normalized ? normalized.error : undefined;
  });
  return [...new Set(entries.map((entry) => (normalizeRouteEntry(entry) as { entry: string }).entry))];
}

const PERMISSION_KIND: Readonly<Record<ObjectPermissionField, ResourceKind>> = {
  guardrails: 'guardrail',
  knowledge_bases: 'knowledge-base',
  agents: 'agent',
  flows: 'flow',
};
/** LiteLLM's object_permission members that have no Bedrock counterpart: accepted only empty. */
const LITELLM_OBJECT_PERMISSION_FIELDS = new Set([
  'mcp_servers',
  'mcp_access_groups',
  'mcp_tool_permissions',
  'mcp_toolsets',
  'blocked_tools',
  'agent_access_groups',
  'models',
  'search_tools',
  'mcp_tool_search_enabled',
  'skills',
]);

function parseObjectPermission(value: unknown, field: string): ObjectPermission | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidField(field, `"${field}" must be an object.`);
  const result: Partial<Record<ObjectPermissionField, string[]>> = {};
  for (const [member, raw] of Object.entries(value as Record<string, unknown>)) {
    const path = `${field}.${member}`;
    if (raw === null || raw === undefined) continue;
    // LiteLLM maps Bedrock knowledge bases to "vector stores"; accept its name as a synonym.
    const target = member === 'vector_stores' ? 'knowledge_bases' : member;
    if ((OBJECT_PERMISSION_FIELDS as readonly string[]).includes(target)) {
      const kind = PERMISSION_KIND[target as ObjectPermissionField];
      const entries = stringList(raw, path, (entry) =>
        entry.trim() === '*' || parseResourceName(kind, entry)
          ? undefined
          : `is not a ${kind} ID or ARN${kind === 'agent' || kind === 'flow' ? ' (or ID/ALIAS_ID)' : ''}`,
      );
      const merged = [...(result[target as ObjectPermissionField] ?? []), ...entries];
      result[target as ObjectPermissionField] = [...new Set(merged)];
    } else if (LITELLM_OBJECT_PERMISSION_FIELDS.has(member)) {
      if (!isEmptyValue(raw)) throw invalidField(path, `"${path}" is a LiteLLM permission that bedrock-relay does not support.`);
    } else {
      throw invalidField(path, `Unknown field "${path}" (allowed: ${OBJECT_PERMISSION_FIELDS.join(', ')}, vector_stores).`);
    }
  }
  // Nothing left to restrict: store no object_permission at all.
  return Object.keys(result).length > 0 ? (result as ObjectPermission) : null;
}

function parseMetadata(value: unknown, field: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalidField(field, `"${field}" must be a JSON object.`);
  const size = Buffer.byteLength(JSON.stringify(value));
  if (size > MAX_METADATA_BYTES) throw invalidField(field, `"${field}" must be at most ${MAX_METADATA_BYTES} bytes as JSON.`);
  // Stored as a JSON string, so any JSON object fits; this only keeps it to what came in as JSON.
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

export type { JsonValue };
