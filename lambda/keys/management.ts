import type { AwsCredentialDeriver } from './aws-credentials.js';
import type { KeyCache } from './cache.js';
import { keyNotFound } from './errors.js';
import type { KeyStore } from './store.js';
import { shortToken } from './store.js';
import { isExpired, spendInUsd, systemClock, type Clock, type JsonObject, type KeyRecord } from './types.js';
import { parseDeleteBody, parseGenerateBody, parseKeyBody, parseKeyIdentifier, parseListQuery, parseRegenerateBody, parseUpdateBody } from './validate.js';

export interface KeyManagementDeps {
  readonly store: KeyStore;
  /** This environment's key cache: admin changes take effect here at once. */
  readonly cache?: KeyCache;
  readonly clock?: Clock;
  /**
   * Derives each key's aws_secret_access_key (shown once, with the key). Absent where the
   * signing secret is not at hand (e.g. the CLI): the answer then has the access key id and
   * `aws_secret_access_key: null`.
   */
  readonly awsCredentials?: AwsCredentialDeriver;
}

/**
 * The key-management operations with LiteLLM's request and response shapes, shared by the
 * admin HTTP API (lambda/http/surface.ts) and the CLI. Inputs are untrusted JSON; failures are
 * KeyApiError (400/404) or StoreUnavailableError. Secrets appear in one place only: the answer
 * to generate and regenerate.
 */
export class KeyManagement {
  private readonly clock: Clock;

  constructor(private readonly deps: KeyManagementDeps) {
    this.clock = deps.clock ?? systemClock;
  }

  /** POST /key/generate → the key (once), its token, and the stored fields. */
  async generate(body: unknown): Promise<JsonObject> {
    const changes = parseGenerateBody(body);
    const { secret, record } = await this.deps.store.create(changes);
    this.deps.cache?.invalidate(record.token);
    return await this.withSecret(secret, record);
  }

  /** GET /key/info?key=… → {"key": <token>, "info": {...}} (the token, never the secret). */
  async info(key: string | null | undefined): Promise<JsonObject> {
    const token = parseKeyIdentifier(key ?? undefined, 'key');
    const record = await this.deps.store.getByHash(token);
    if (!record) throw keyNotFound('key', shortToken(token));
    const { token: _token, ...info } = this.view(record);
    return { key: token, info };
  }

  /** POST /key/update → {"key": <token>, ...fields}. */
  async update(body: unknown): Promise<JsonObject> {
    const { token, changes } = parseUpdateBody(body);
    try {
      const record = await this.deps.store.update(token, changes);
      return { ...this.view(record), key: token };
    } finally {
      this.deps.cache?.invalidate(token);
    }
  }

  /** POST /key/delete → {"deleted_keys": [...]}: tokens for `keys` (never the secrets sent), aliases for `key_aliases`. */
  async delete(body: unknown): Promise<JsonObject> {
    const request = parseDeleteBody(body);
    let deleted: KeyRecord[] = [];
    try {
      if ('tokens' in request) {
        deleted = await this.deps.store.delete(request.tokens);
        return { deleted_keys: request.tokens };
      }
      deleted = await this.deps.store.deleteByAliases(request.aliases);
      return { deleted_keys: request.aliases };
    } finally {
      if ('tokens' in request) request.tokens.forEach((token) => this.deps.cache?.invalidate(token));
      deleted.forEach((record) => this.deps.cache?.invalidate(record.token));
    }
  }

  /** GET /key/list → {keys, total_count, current_page, total_pages}; keys are tokens unless return_full_object=true. */
  async list(query: URLSearchParams): Promise<JsonObject> {
    const parsed = parseListQuery(query);
    const { records, total } = await this.deps.store.list(parsed);
    return {
      keys: records.map((record) => (parsed.return_full_object ? this.view(record) : record.token)),
      total_count: total,
      current_page: parsed.page,
      total_pages: Math.ceil(total / parsed.size),
    };
  }

  /** POST /key/regenerate ({key}) and /key/{key}/regenerate → like generate, with the new key. */
  async regenerate(body: unknown, pathKey?: string): Promise<JsonObject> {
    const { token, changes } = parseRegenerateBody(body, pathKey);
    try {
      const { secret, record } = await this.deps.store.regenerate(token, changes);
      this.deps.cache?.invalidate(record.token);
      return await this.withSecret(secret, record);
    } finally {
      this.deps.cache?.invalidate(token);
    }
  }

  /** POST /key/block and /key/unblock → the key's fields. */
  async setBlocked(body: unknown, blocked: boolean): Promise<JsonObject> {
    const { token } = parseKeyBody(body);
    try {
      return this.view(await this.deps.store.setBlocked(token, blocked));
    } finally {
      this.deps.cache?.invalidate(token);
    }
  }

  /** A key record as the API shows it (LiteLLM's field names; unset fields as null). */
  view(record: KeyRecord): JsonObject {
    return {
      token: record.token,
      key_name: record.key_name,
      key_alias: record.key_alias ?? null,
      aws_access_key_id: record.aws_access_key_id ?? null,
      spend: spendInUsd(record),
      max_budget: record.max_budget ?? null,
      budget_duration: record.budget_duration ?? null,
      budget_reset_at: record.budget_reset_at ?? null,
      expires: record.expires ?? null,
      expired: isExpired(record, this.clock()),
      models: [...record.models],
      allowed_operations: [...record.allowed_operations],
      allowed_routes: [...record.allowed_routes],
      object_permission: record.object_permission
        ? (Object.fromEntries(Object.entries(record.object_permission).map(([kind, entries]) => [kind, [...(entries as string[])]])) as JsonObject)
        : null,
      tpm_limit: record.tpm_limit ?? null,
      rpm_limit: record.rpm_limit ?? null,
      max_parallel_requests: record.max_parallel_requests ?? null,
      model_rpm_limit: record.model_rpm_limit ? { ...record.model_rpm_limit } : null,
      model_tpm_limit: record.model_tpm_limit ? { ...record.model_tpm_limit } : null,
      metadata: record.metadata,
      user_id: record.user_id ?? null,
      team_id: record.team_id ?? null,
      blocked: record.blocked,
      created_at: record.created_at,
      updated_at: record.updated_at,
    };
  }

  private async withSecret(secret: string, record: KeyRecord): Promise<JsonObject> {
    // The AWS secret is derived, not stored; like the key itself it is shown only here.
    const awsSecret = this.deps.awsCredentials && record.aws_access_key_id ? await this.deps.awsCredentials.secretFor(record.token) : null;
    // LiteLLM answers `token_id` (newer) and `token` (older clients); both are the hash.
    return { key: secret, ...this.view(record), aws_secret_access_key: awsSecret, token_id: record.token };
  }
}
