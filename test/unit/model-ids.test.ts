import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { anyModelAllowed, modelAllowed, normalizeModelId } from '../../lambda/models/ids.js';

describe('normalizeModelId', () => {
  it('reduces profiles and ARNs to the model, and names the geography', () => {
    const plain = normalizeModelId('anthropic.claude-3-haiku-20240307-v1:0');
    assert.deepEqual(
      [plain.base, plain.family, plain.undated, plain.versioned, plain.profilePrefix],
      ['anthropic.claude-3-haiku-20240307-v1:0', 'anthropic.claude-3-haiku-20240307', 'anthropic.claude-3-haiku', true, undefined],
    );
    const profile = normalizeModelId('us.anthropic.claude-haiku-4-5-20251001-v1:0');
    assert.equal(profile.profilePrefix, 'us');
    assert.equal(profile.undated, 'anthropic.claude-haiku-4-5');
    const arn = normalizeModelId('arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-2-3b-instruct-v1:0');
    assert.deepEqual([arn.id, arn.profilePrefix, arn.opaque], ['eu.meta.llama3-2-3b-instruct-v1:0', 'eu', false]);
    assert.equal(normalizeModelId('arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0').base, 'amazon.nova-micro-v1:0');
    assert.equal(normalizeModelId('arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123').opaque, true);
    assert.equal(normalizeModelId('US.Anthropic.Claude-3-Haiku-20240307-V1:0').id, 'us.anthropic.claude-3-haiku-20240307-v1:0');
  });
});

describe('modelAllowed', () => {
  const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';

  it('admits a plain entry under every geography and ARN spelling, and nothing else', () => {
    for (const id of [HAIKU, `us.${HAIKU}`, `global.${HAIKU}`, `arn:aws:bedrock:us-east-1::foundation-model/${HAIKU}`]) assert.ok(modelAllowed(HAIKU, id), id);
    for (const id of ['anthropic.claude-3-haiku-20240307-v2:0', 'anthropic.claude-3-sonnet-20240229-v1:0', `us.anthropic.claude-3-sonnet-20240229-v1:0`])
      assert.ok(!modelAllowed(HAIKU, id), id);
  });

  it('limits a geography entry to that geography', () => {
    assert.ok(modelAllowed(`us.${HAIKU}`, `us.${HAIKU}`));
    assert.ok(!modelAllowed(`us.${HAIKU}`, `eu.${HAIKU}`));
    assert.ok(!modelAllowed(`us.${HAIKU}`, HAIKU));
  });

  it('lets one entry cover a dated runtime ID and its mantle spelling, both ways', () => {
    assert.ok(modelAllowed('anthropic.claude-haiku-4-5', 'us.anthropic.claude-haiku-4-5-20251001-v1:0'));
    assert.ok(modelAllowed('anthropic.claude-haiku-4-5-20251001-v1:0', 'anthropic.claude-haiku-4-5'));
    assert.ok(modelAllowed('anthropic.claude-opus-4-7', 'us.anthropic.claude-opus-4-7'));
    assert.ok(!modelAllowed('anthropic.claude-haiku-4-5', 'us.anthropic.claude-sonnet-4-5-20250929-v1:0'));
    // Two different dated releases are two models.
    assert.ok(!modelAllowed('anthropic.claude-3-5-sonnet-20240620-v1:0', 'anthropic.claude-3-5-sonnet-20241022-v2:0'));
  });

  it("reads gpt-oss's runtime `-1:0` as a version, so its mantle spelling is the same model (issue 13)", () => {
    assert.equal(normalizeModelId('openai.gpt-oss-120b-1:0').undated, 'openai.gpt-oss-120b');
    assert.ok(modelAllowed('openai.gpt-oss-120b-1:0', 'openai.gpt-oss-120b'));
    assert.ok(modelAllowed('openai.gpt-oss-120b', 'openai.gpt-oss-120b-1:0'));
    assert.ok(modelAllowed('openai.gpt-oss-120b-1:0', 'us.openai.gpt-oss-120b-1:0'));
    assert.ok(!modelAllowed('openai.gpt-oss-120b-1:0', 'openai.gpt-oss-20b'));
    // A bare trailing number is part of the name, not a version.
    assert.equal(normalizeModelId('anthropic.claude-haiku-4-5').family, 'anthropic.claude-haiku-4-5');
    assert.ok(!modelAllowed('anthropic.claude-haiku-4-5', 'anthropic.claude-haiku-4'));
  });

  it('matches wildcards on the model, not the geography', () => {
    assert.ok(modelAllowed('anthropic.claude-*', `eu.${HAIKU}`));
    assert.ok(!modelAllowed('anthropic.claude-*', 'meta.llama3-8b-instruct-v1:0'));
    assert.ok(modelAllowed('us.anthropic.*', `us.${HAIKU}`));
    assert.ok(!modelAllowed('us.anthropic.*', `eu.${HAIKU}`));
  });

  it('compares opaque ARNs only with themselves', () => {
    const app = 'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123';
    assert.ok(modelAllowed(app, app.toUpperCase()));
    assert.ok(!modelAllowed(HAIKU, app));
    assert.ok(!modelAllowed('anthropic.*', app));
    assert.ok(modelAllowed('*', app));
  });

  it('an empty list admits everything', () => {
    assert.ok(anyModelAllowed(undefined, 'anything'));
    assert.ok(anyModelAllowed([], 'anything'));
    assert.ok(!anyModelAllowed([HAIKU], 'meta.llama3-8b-instruct-v1:0'));
  });
});
