import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyApiError } from '../../lambda/http/errors.js';
import { hashSecret } from '../../lambda/keys/secrets.js';
import { parseDeleteBody, parseGenerateBody, parseKeyBody, parseListQuery, parseRegenerateBody, parseUpdateBody } from '../../lambda/keys/validate.js';

/** Asserts a 400 whose `param` names the field. */
function rejects(fn: () => unknown, param: string, message?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof KeyApiError, `expected KeyApiError, got ${String(error)}`);
    assert.equal(error.status, 400);
    assert.equal(error.type, 'bad_request_error');
    assert.equal(error.param, param);
    if (message) assert.match(error.message, message);
    return true;
  });
}

describe('generate validation', () => {
  it('accepts the LiteLLM fields with their types', () => {
    const changes = parseGenerateBody({
      key_alias: 'team-a/app_1',
      duration: '30d',
      models: ['anthropic.claude-3-haiku-20240307-v1:0', ' us.amazon.nova-lite-v1:0 '],
      max_budget: 10.5,
      budget_duration: '1mo',
      tpm_limit: 1000,
      rpm_limit: 0,
      max_parallel_requests: 2,
      metadata: { team: 'a', nested: { n: 1 } },
      user_id: 'u1',
      team_id: 't1',
      blocked: false,
      allowed_routes: ['Converse', '/bedrock/model/*', '!agents'],
      allowed_operations: ['converse', 'ConverseStream', 'Converse'],
      object_permission: { agents: ['AGENT12345/ALIAS12345'], vector_stores: ['KB12345678'], knowledge_bases: ['KB00000000'] },
      aliases: {},
      tags: null,
      config: {},
    });
    assert.deepEqual(changes.models, ['anthropic.claude-3-haiku-20240307-v1:0', 'us.amazon.nova-lite-v1:0']);
    assert.deepEqual(changes.allowed_operations, ['Converse', 'ConverseStream']);
    assert.deepEqual(changes.allowed_routes, ['converse', '/bedrock/model/*', '!agents']);
    assert.deepEqual(changes.object_permission, { agents: ['AGENT12345/ALIAS12345'], knowledge_bases: ['KB12345678', 'KB00000000'] });
    assert.ok(!('aliases' in changes));
  });

  it('refuses unknown fields, naming them', () => {
    rejects(() => parseGenerateBody({ modles: ['x'] }), 'modles', /Unknown field/);
    rejects(() => parseGenerateBody({ object_permission: { vector_store: ['x'] } }), 'object_permission.vector_store');
  });

  it('refuses wrong types', () => {
    rejects(() => parseGenerateBody({ models: 'anthropic.claude' }), 'models');
    rejects(() => parseGenerateBody({ models: [1] }), 'models');
    rejects(() => parseGenerateBody({ max_budget: '10' }), 'max_budget');
    rejects(() => parseGenerateBody({ tpm_limit: 1.5 }), 'tpm_limit');
    rejects(() => parseGenerateBody({ blocked: 'yes' }), 'blocked');
    rejects(() => parseGenerateBody({ metadata: ['a'] }), 'metadata');
    rejects(() => parseGenerateBody({ user_id: 7 }), 'user_id');
    rejects(() => parseGenerateBody(['not', 'an', 'object']), 'body');
  });

  it('refuses negative budgets and limits', () => {
    rejects(() => parseGenerateBody({ max_budget: -1 }), 'max_budget', /≥ 0/);
    rejects(() => parseGenerateBody({ spend: -0.01 }), 'spend');
    rejects(() => parseGenerateBody({ rpm_limit: -5 }), 'rpm_limit');
    rejects(() => parseGenerateBody({ max_budget: Number.POSITIVE_INFINITY }), 'max_budget');
  });

  it('refuses unparsable durations', () => {
    for (const duration of ['30', '30 days', '1y', '0s', '', 'forever']) {
      rejects(() => parseGenerateBody({ duration }), 'duration', /30s/);
    }
    rejects(() => parseGenerateBody({ budget_duration: 'monthly' }), 'budget_duration');
  });

  it('refuses custom key values and meaningful unsupported LiteLLM fields', () => {
    rejects(() => parseGenerateBody({ key: 'sk-mine' }), 'key', /generates every key/);
    rejects(() => parseGenerateBody({ aliases: { a: 'b' } }), 'aliases', /does not support/);
    rejects(() => parseGenerateBody({ soft_budget: 5 }), 'soft_budget');
    rejects(() => parseGenerateBody({ object_permission: { mcp_servers: ['s'] } }), 'object_permission.mcp_servers');
    assert.doesNotThrow(() => parseGenerateBody({ key: null, soft_budget: null, permissions: {}, allowed_cache_controls: [] }));
  });

  it('refuses bad aliases, operations, routes and resources', () => {
    rejects(() => parseGenerateBody({ key_alias: '' }), 'key_alias');
    rejects(() => parseGenerateBody({ key_alias: 'has space' }), 'key_alias');
    rejects(() => parseGenerateBody({ key_alias: 'a'.repeat(300) }), 'key_alias');
    rejects(() => parseGenerateBody({ allowed_operations: ['Converse', 'ConverseStreaming'] }), 'allowed_operations', /ConverseStreaming/);
    rejects(() => parseGenerateBody({ allowed_routes: ['agent'] }), 'allowed_routes', /neither a route group/);
    rejects(() => parseGenerateBody({ allowed_routes: ['/bedrock/modle/*'] }), 'allowed_routes', /matches no relay route/);
    rejects(() => parseGenerateBody({ allowed_routes: ['!'] }), 'allowed_routes');
    rejects(
      () => parseGenerateBody({ object_permission: { guardrails: ['arn:aws:bedrock:us-east-1:123456789012:knowledge-base/KB12345678'] } }),
      'object_permission.guardrails',
    );
    rejects(() => parseGenerateBody({ object_permission: { knowledge_bases: ['KB1/ALIAS'] } }), 'object_permission.knowledge_bases');
    rejects(() => parseGenerateBody({ object_permission: { agents: 'AGENT' } }), 'object_permission.agents');
  });

  it('stores an empty object_permission as none', () => {
    assert.equal(parseGenerateBody({ object_permission: { agents: null, mcp_servers: [] } }).object_permission, null);
  });
});

describe('update, regenerate, block and delete validation', () => {
  const secret = 'sk-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
  const token = hashSecret(secret);

  it('names keys by secret or token', () => {
    assert.equal(parseUpdateBody({ key: secret, max_budget: null }).token, token);
    assert.deepEqual(parseUpdateBody({ key: token, max_budget: null }).changes, { max_budget: null });
    rejects(() => parseUpdateBody({ max_budget: 1 }), 'key', /required/);
    rejects(() => parseUpdateBody({ key: 'nope' }), 'key', /sk-/);
    rejects(() => parseKeyBody({ key: token, blocked: true }), 'blocked');
  });

  it('takes the regenerate key from the path or the body', () => {
    assert.equal(parseRegenerateBody(undefined, secret).token, token);
    assert.equal(parseRegenerateBody({ key: token }).token, token);
    rejects(() => parseRegenerateBody({}), 'key');
    rejects(() => parseRegenerateBody({ key: token, new_key: 'sk-chosen' }), 'new_key');
    rejects(() => parseRegenerateBody({ key: token, new_master_key: 'sk-m' }), 'new_master_key');
  });

  it('deletes by keys or by aliases, not both, not none', () => {
    assert.deepEqual(parseDeleteBody({ keys: [secret, token] }), { tokens: [token] });
    assert.deepEqual(parseDeleteBody({ key_aliases: ['a', 'a', 'b'] }), { aliases: ['a', 'b'] });
    rejects(() => parseDeleteBody({ keys: [token], key_aliases: ['a'] }), 'keys');
    rejects(() => parseDeleteBody({}), 'keys');
    rejects(() => parseDeleteBody({ keys: [] }), 'keys');
    rejects(() => parseDeleteBody({ keys: ['junk'] }), 'keys[0]');
  });

  it('parses list queries like LiteLLM (page ≥ 1, size ≤ 100)', () => {
    assert.deepEqual(parseListQuery(new URLSearchParams('')), {
      page: 1,
      size: 10,
      key_alias: undefined,
      user_id: undefined,
      team_id: undefined,
      key_hash: undefined,
      return_full_object: false,
    });
    assert.equal(parseListQuery(new URLSearchParams('page=3&size=100&return_full_object=true')).size, 100);
    rejects(() => parseListQuery(new URLSearchParams('size=101')), 'size');
    rejects(() => parseListQuery(new URLSearchParams('page=0')), 'page');
    rejects(() => parseListQuery(new URLSearchParams('key_hash=abc')), 'key_hash');
    rejects(() => parseListQuery(new URLSearchParams('team=x')), 'team');
  });
});
