import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RelayError } from '../../lambda/http/errors.js';
import { RouteMatcher, awsUriEncode, encodeQuery } from '../../lambda/routes/match.js';

const matcher = new RouteMatcher();
const match = (method: string, path: string, query = '') => matcher.match(method, path, query);

function refuses(method: string, path: string, status: number, pattern?: RegExp) {
  assert.throws(
    () => match(method, path),
    (error: unknown) => error instanceof RelayError && error.status === status && (!pattern || pattern.test(error.message)),
    `${method} ${path} should be refused with ${status}`,
  );
}

describe('matching model identifiers by the route template', () => {
  const profileArn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0';

  it('reads a plain ID with a colon, raw or percent-encoded, as the same model and path', () => {
    const raw = match('POST', '/bedrock/model/cohere.command-r-v1:0/converse');
    const encoded = match('POST', '/bedrock/model/cohere.command-r-v1%3A0/converse');
    assert.equal(raw.route.operation, 'Converse');
    assert.equal(raw.params.modelId, 'cohere.command-r-v1:0');
    assert.deepEqual(encoded.params, raw.params);
    assert.equal(raw.upstreamPath, '/model/cohere.command-r-v1%3A0/converse');
    assert.equal(encoded.upstreamPath, raw.upstreamPath);
  });

  it('reads a full ARN sent raw (with / and :) and encoded as one label', () => {
    const raw = match('POST', `/bedrock/model/${profileArn}/converse-stream`);
    const encoded = match('POST', `/bedrock/model/${encodeURIComponent(profileArn)}/converse-stream`);
    assert.equal(raw.route.operation, 'ConverseStream');
    assert.equal(raw.params.modelId, profileArn);
    assert.deepEqual(encoded.params, raw.params);
    assert.equal(raw.upstreamPath, `/model/${awsUriEncode(profileArn)}/converse-stream`);
    assert.match(raw.upstreamPath, /inference-profile%2Fus\.anthropic/);
  });

  it('tells apart operations that share a prefix', () => {
    assert.equal(match('POST', '/bedrock/model/m/invoke').route.operation, 'InvokeModel');
    assert.equal(match('POST', '/bedrock/model/m/invoke-with-response-stream').route.operation, 'InvokeModelWithResponseStream');
    assert.equal(match('POST', '/bedrock/model/us.meta.llama3-3-70b-instruct-v1:0/count-tokens').route.operation, 'CountTokens');
  });

  it('reads the LiteLLM documentation paths', () => {
    const guardrail = match('POST', '/bedrock/guardrail/gr-123/version/1/apply');
    assert.equal(guardrail.route.operation, 'ApplyGuardrail');
    assert.deepEqual(guardrail.params, { guardrailIdentifier: 'gr-123', guardrailVersion: '1' });
    const kb = match('POST', '/bedrock/knowledgebases/KB12345/retrieve');
    assert.equal(kb.route.service, 'bedrock-agent-runtime');
    assert.equal(kb.params.knowledgeBaseId, 'KB12345');
  });
});

describe('templates with trailing slashes and several methods', () => {
  it('keeps the trailing slash that is part of the template', () => {
    assert.equal(match('PUT', '/bedrock/sessions/').route.operation, 'CreateSession');
    assert.equal(match('POST', '/bedrock/sessions/').route.operation, 'ListSessions');
    const get = match('GET', '/bedrock/sessions/abc-123/');
    assert.equal(get.route.operation, 'GetSession');
    assert.equal(get.upstreamPath, '/sessions/abc-123/');
    assert.equal(match('PATCH', '/bedrock/sessions/abc-123').route.operation, 'EndSession');
    assert.equal(match('PUT', '/bedrock/sessions/abc/invocationSteps/').route.operation, 'PutInvocationStep');
  });

  it('answers 405 for a known path with another method, 404 for a missing trailing slash variant', () => {
    refuses('GET', '/bedrock/model/m/converse', 405);
    refuses('GET', '/bedrock/sessions/abc-123', 405);
    refuses('PATCH', '/bedrock/sessions/abc-123/', 405);
  });

  it('routes mantle paths only under /bedrock-mantle', () => {
    assert.equal(match('POST', '/bedrock-mantle/v1/chat/completions').route.service, 'bedrock-mantle');
    assert.equal(match('POST', '/bedrock/v1/chat/completions').route.service, 'bedrock-runtime');
    assert.equal(match('GET', '/bedrock-mantle/openai/v1/models').route.operation, 'MantleOpenAIListModels');
    refuses('POST', '/bedrock-mantle/model/m/converse', 404);
  });

  it('reaches no control-plane operation beyond the read-only discovery calls', () => {
    assert.equal(match('GET', '/bedrock/inference-profiles').route.operation, 'ListInferenceProfiles');
    assert.equal(match('GET', '/bedrock/foundation-models/anthropic.claude-v2').route.operation, 'GetFoundationModel');
    refuses('DELETE', '/bedrock/inference-profiles/x', 405);
    refuses('POST', '/bedrock/model-customization-jobs', 404);
    refuses('GET', '/bedrock/guardrails', 404);
  });
});

describe('path abuse is answered by the relay and never routed', () => {
  for (const path of [
    '/bedrock/model/../guardrails/converse',
    '/bedrock/model/./x/converse',
    '/bedrock/model/%2e%2e/converse',
    '/bedrock/model/%2E/converse',
    '/bedrock/model/a%2F..%2Fb/converse',
    '/bedrock/model//converse',
    '/bedrock//model/x/converse',
    '/bedrock/model/x%00/converse',
    '/bedrock/model/x%0d%0aHost:evil/converse',
    '/bedrock/model/x%5c..%5cy/converse',
    '/bedrock/model/%zz/converse',
  ]) {
    it(`refuses ${path} with 400`, () => refuses('POST', path, 400));
  }

  for (const path of ['/bedrock', '/bedrock/', '/bedrock/nope', '/bedrock/model/x', '/bedrock/model/x/converse/extra', '/bedrockx/model/x/converse']) {
    it(`answers ${path} with 404`, () => refuses('POST', path, 404));
  }
});

describe('query strings', () => {
  it('keeps and canonically re-encodes the query', () => {
    const m = match('GET', '/bedrock/inference-profiles', 'type=SYSTEM_DEFINED&maxResults=10&nextToken=a%2Bb%3D');
    assert.deepEqual(m.query, [
      ['type', 'SYSTEM_DEFINED'],
      ['maxResults', '10'],
      ['nextToken', 'a+b='],
    ]);
    assert.equal(encodeQuery(m.query), 'type=SYSTEM_DEFINED&maxResults=10&nextToken=a%2Bb%3D');
  });

  it('keeps a literal + (RFC 3986, not form encoding)', () => {
    const m = match('POST', '/bedrock/anthropic/v1/messages', 'beta=true&x=a+b');
    assert.deepEqual(m.query, [
      ['beta', 'true'],
      ['x', 'a+b'],
    ]);
    assert.equal(encodeQuery(m.query), 'beta=true&x=a%2Bb');
  });

  it('refuses a broken percent-encoding in the query', () => {
    assert.throws(() => match('GET', '/bedrock/foundation-models', 'x=%G1'), RelayError);
  });
});
