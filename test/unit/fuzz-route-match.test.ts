/**
 * Property tests of the relay's path handling, the gate in front of "nothing upstream outside
 * the route table": whatever the path, the matcher either names a route (and then the path it
 * would send upstream is clean and names the same route again) or refuses with a 4xx RelayError.
 * Also: the headers that may cross upstream never include credentials, SigV4 or hop-by-hop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RelayError } from '../../lambda/http/errors.js';
import { RouteMatcher, type MatchedRoute } from '../../lambda/routes/match.js';
import { forwardableRequestHeaders } from '../../lambda/upstream/headers.js';
import { METHODS, pathArb } from './fuzz-arbitraries.js';

const matcher = new RouteMatcher();
const NUM_RUNS = 2_000;

function tryMatch(method: string, path: string, query: string): MatchedRoute | RelayError {
  try {
    return matcher.match(method, path, query);
  } catch (error) {
    // Anything but a RelayError would be a 500: a defect.
    assert.ok(error instanceof RelayError, `unexpected ${String(error)} for ${method} ${path}${query}`);
    return error;
  }
}

describe('RouteMatcher under random paths', () => {
  it('matches a route or refuses with 400/404/405, never anything else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...METHODS), pathArb, (method, { path, query }) => {
        const result = tryMatch(method, path, query.replace(/^\?/, ''));
        if (result instanceof RelayError) assert.ok([400, 404, 405].includes(result.status), `${result.status} for ${method} ${path}`);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('what it would send upstream is a clean path that names the same operation again', () => {
    let matched = 0;
    fc.assert(
      fc.property(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'), pathArb, (method, { path, query }) => {
        const result = tryMatch(method, path, query.replace(/^\?/, ''));
        if (result instanceof RelayError) return;
        matched++;
        const upstream = result.upstreamPath;
        assert.ok(upstream.startsWith('/') && !upstream.includes('//'), upstream);
        const segments = upstream.slice(1).split('/');
        assert.equal(segments.length, result.route.template.slice(1).split('/').length, `${upstream} vs ${result.route.template}`);
        for (const segment of segments) {
          const decoded = decodeURIComponent(segment);
          assert.ok(decoded !== '.' && decoded !== '..', `dot segment in ${upstream}`);
          // eslint-disable-next-line no-control-regex
          assert.ok(!/[\u0000-\u001f\u007f\\]/.test(decoded), `control character or backslash in ${upstream}`);
          // Every label is encoded into exactly one segment: no raw `/`, `?` or `#` to re-split it.
          assert.ok(!/[/?#]/.test(segment), `unencoded delimiter in ${upstream}`);
        }
        const again = matcher.match(method, `${result.route.prefix}${upstream}`, '');
        assert.equal(again.route, result.route);
        assert.deepEqual(again.params, result.params);
        assert.equal(again.upstreamPath, upstream);
      }),
      { numRuns: NUM_RUNS },
    );
    // A property that never met a matching path would prove nothing.
    assert.ok(matched > NUM_RUNS / 50, `only ${matched} of ${NUM_RUNS} random paths matched a route`);
  });

  it('raw, partly and fully percent-encoded model IDs are the same model on the same upstream path', () => {
    const id = fc.oneof(
      fc.stringMatching(/^(us\.|eu\.)?[a-z0-9]{2,10}\.[a-z0-9-]{2,20}(:[0-9]{1,2})?$/),
      fc
        .tuple(fc.constantFrom('us-east-1', 'eu-west-3'), fc.stringMatching(/^[a-z0-9]{2,10}\.[a-z0-9-]{2,20}:[0-9]$/))
        .map(([region, model]) => `arn:aws:bedrock:${region}:123456789012:inference-profile/us.${model}`),
    );
    const operation = fc.constantFrom('converse', 'converse-stream', 'invoke', 'invoke-with-response-stream', 'count-tokens');
    fc.assert(
      fc.property(id, operation, (modelId, op) => {
        const raw = matcher.match('POST', `/bedrock/model/${modelId}/${op}`, '');
        const colonsOnly = matcher.match('POST', `/bedrock/model/${modelId.replaceAll(':', '%3A')}/${op}`, '');
        const full = matcher.match('POST', `/bedrock/model/${encodeURIComponent(modelId)}/${op}`, '');
        assert.equal(raw.params.modelId, modelId);
        for (const other of [colonsOnly, full]) {
          assert.equal(other.route, raw.route);
          assert.deepEqual(other.params, raw.params);
          assert.equal(other.upstreamPath, raw.upstreamPath);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('headers that cross upstream', () => {
  const NEVER =
    /^(authorization|x-api-key|host|cookie|proxy-authorization|connection|keep-alive|transfer-encoding|te|upgrade|content-length|x-amz-(date|security-token|content-sha256|user-agent)|x-forwarded-.*)$/;
  const name = fc.oneof(
    fc.constantFrom(
      'authorization',
      'Authorization',
      'x-api-key',
      'X-Api-Key',
      'host',
      'cookie',
      'proxy-authorization',
      'connection',
      'transfer-encoding',
      'x-amz-date',
      'x-amz-security-token',
      'x-amz-content-sha256',
      'x-forwarded-host',
      'content-type',
      'accept',
      'x-amzn-bedrock-trace',
      'X-Amzn-Bedrock-GuardrailIdentifier',
      'anthropic-version',
      'anthropic-beta',
      'openai-organization',
    ),
    fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
  );
  const value = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('ok\r\nx-injected: 1', 'a\nb', 'nul\u0000', 'Bearer sk-secret'));

  it('never forwards credentials, SigV4, host or hop-by-hop headers, nor a value that could split a header', () => {
    fc.assert(
      fc.property(fc.dictionary(name, value, { maxKeys: 12 }), (headers) => {
        const out = forwardableRequestHeaders(headers);
        for (const [key, val] of Object.entries(out)) {
          assert.ok(!NEVER.test(key), `forwarded ${key}`);
          assert.equal(key, key.toLowerCase());
          // eslint-disable-next-line no-control-regex
          assert.ok(!/[\r\n\u0000]/.test(val), `forwarded a value with CR/LF/NUL in ${key}`);
          assert.ok(
            Object.entries(headers).some(([k, v]) => k.toLowerCase() === key && v === val),
            `invented ${key}`,
          );
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
