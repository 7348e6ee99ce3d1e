/**
 * The relay's SigV4 verifier (lambda/auth/sigv4.ts) against two independent references:
 * vectors from AWS's Signature Version 4 test suite (docs.aws.amazon.com/general/latest/gr/
 * signature-v4-test-suite.html, as shipped in @smithy/signature-v4's suite fixture), and the
 * SDK's own signer (@smithy/signature-v4) on random requests, which the verifier must accept
 * as signed and refuse after any change to method, path, query, body or a signed header.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { canonicalQuery, canonicalUri, checkScope, parseAuthorization, payloadHash, verifySignature, type WireRequest } from '../../lambda/auth/sigv4.js';
import { RelayError } from '../../lambda/http/errors.js';

const SUITE_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SUITE_SCOPE = 'AKIDEXAMPLE/20150830/us-east-1/service/aws4_request';
const HOST = 'example.amazonaws.com';
const DATE = '20150830T123600Z';

/** [name, method, raw path, raw query, extra headers, body, signed headers, signature] */
const SUITE: ReadonlyArray<readonly [string, string, string, string, Record<string, string>, string, string, string]> = [
  ['get-vanilla', 'GET', '/', '', {}, '', 'host;x-amz-date', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
  ['post-vanilla', 'POST', '/', '', {}, '', 'host;x-amz-date', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'],
  ['post-vanilla-query', 'POST', '/', 'Param1=value1', {}, '', 'host;x-amz-date', '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11'],
  [
    'get-vanilla-query-order-key-case',
    'GET',
    '/',
    'Param2=value2&Param1=value1',
    {},
    '',
    'host;x-amz-date',
    'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  ],
  [
    'get-vanilla-query-unreserved',
    'GET',
    '/',
    '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    {},
    '',
    'host;x-amz-date',
    '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197',
  ],
  ['get-vanilla-utf8-query', 'GET', '/', '%E1%88%B4=bar', {}, '', 'host;x-amz-date', '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04'],
  // The request line carries the raw UTF-8 path, which is encoded once.
  ['get-utf8', 'GET', '/ሴ', '', {}, '', 'host;x-amz-date', '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85'],
  [
    'get-header-value-trim',
    'GET',
    '/',
    '',
    { 'my-header1': 'value1', 'my-header2': '"a   b   c"' },
    '',
    'host;my-header1;my-header2;x-amz-date',
    'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736',
  ],
  // Repeated headers arrive joined with ',' (as a Function URL delivers them).
  [
    'get-header-key-duplicate',
    'GET',
    '/',
    '',
    { 'my-header1': 'value2,value2,value1' },
    '',
    'host;my-header1;x-amz-date',
    'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea',
  ],
  [
    'post-x-www-form-urlencoded',
    'POST',
    '/',
    '',
    { 'content-type': 'application/x-www-form-urlencoded' },
    'Param1=value1',
    'content-type;host;x-amz-date',
    'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
  ],
];

function suiteRequest([, method, rawPath, rawQueryString, extra, body, signedHeaders, signature]: (typeof SUITE)[number]): WireRequest {
  return {
    method,
    rawPath,
    rawQueryString,
    headers: {
      host: HOST,
      'x-amz-date': DATE,
      ...extra,
      authorization: `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    },
    body: Buffer.from(body),
  };
}

function refusedAs(type: string, action: () => void): void {
  assert.throws(action, (error: unknown) => error instanceof RelayError && error.type === type);
}

describe('AWS Signature Version 4 test suite vectors', () => {
  for (const vector of SUITE) {
    it(vector[0], () => {
      const request = suiteRequest(vector);
      const auth = parseAuthorization(request.headers);
      checkScope(auth, { services: ['service'], regions: ['us-east-1'], now: Date.parse('2015-08-30T12:36:00Z') });
      verifySignature(request, auth, SUITE_SECRET);
      refusedAs('InvalidSignatureException', () => verifySignature(request, auth, `${SUITE_SECRET}x`));
    });
  }
});

describe('canonical forms', () => {
  it('encodes the wire path once more, segment by segment (what the SDKs sign for every service but S3)', () => {
    assert.equal(
      canonicalUri('/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse'),
      '/bedrock/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse',
    );
    assert.equal(canonicalUri('/'), '/');
    assert.equal(canonicalUri('/a/b/'), '/a/b/');
    assert.equal(canonicalUri("/a!'()*~"), '/a%21%27%28%29%2A~');
  });

  it('refuses paths whose normalisation would differ from what is routed', () => {
    for (const path of ['/bedrock//model', '/bedrock/./model', '/bedrock/../key/list', '/bedrock/model/..', 'relative']) {
      refusedAs('InvalidSignatureException', () => canonicalUri(path));
    }
  });

  it('sorts decoded-and-re-encoded query parameters by name, then value', () => {
    assert.equal(canonicalQuery('b=2&a=2&a=1&c'), 'a=1&a=2&b=2&c=');
    assert.equal(canonicalQuery('k=a%20b&k2=a+b&%7E=~'), 'k=a%20b&k2=a%2Bb&~=~');
    refusedAs('InvalidSignatureException', () => canonicalQuery('a=%E0%A4%A'));
  });

  it("takes the stated payload hash, UNSIGNED-PAYLOAD, or the body's own; a false statement is refused", () => {
    const base = { method: 'POST', rawPath: '/', rawQueryString: '', body: Buffer.from('{}') };
    const bodyHash = '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a';
    assert.equal(payloadHash({ ...base, headers: {} }), bodyHash);
    assert.equal(payloadHash({ ...base, headers: { 'x-amz-content-sha256': bodyHash } }), bodyHash);
    assert.equal(payloadHash({ ...base, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } }), 'UNSIGNED-PAYLOAD');
    refusedAs('InvalidSignatureException', () => payloadHash({ ...base, headers: { 'x-amz-content-sha256': bodyHash.replace('4', '5') } }));
  });

  it('checks the scope and the clock before any secret is involved', () => {
    const auth = parseAuthorization(suiteRequest(SUITE[0]!).headers);
    const now = Date.parse('2015-08-30T12:36:00Z');
    const ok = { services: ['service'], regions: ['us-east-1'], now };
    checkScope(auth, { ...ok, now: now + 5 * 60_000 });
    checkScope(auth, { ...ok, now: now - 5 * 60_000 });
    refusedAs('InvalidSignatureException', () => checkScope(auth, { ...ok, now: now + 5 * 60_000 + 1000 }));
    refusedAs('InvalidSignatureException', () => checkScope(auth, { ...ok, now: now - 5 * 60_000 - 1000 }));
    refusedAs('InvalidSignatureException', () => checkScope(auth, { ...ok, services: ['bedrock'] }));
    refusedAs('InvalidSignatureException', () => checkScope(auth, { ...ok, regions: ['eu-west-1'] }));
    refusedAs('InvalidSignatureException', () => checkScope({ ...auth, scopeDate: '20150831' }, ok));
    refusedAs('InvalidSignatureException', () => checkScope({ ...auth, signedHeaders: ['x-amz-date'] }, ok));
  });

  it('refuses malformed Authorization headers as IncompleteSignatureException', () => {
    const headers = { 'x-amz-date': DATE };
    for (const authorization of [
      'AWS4-HMAC-SHA256',
      `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=host`,
      `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/wrong, SignedHeaders=host, Signature=${'0'.repeat(64)}`,
      `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=Host, Signature=${'0'.repeat(64)}`,
      `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=host, Signature=xyz`,
    ]) {
      refusedAs('IncompleteSignatureException', () => parseAuthorization({ ...headers, authorization }));
    }
    refusedAs('IncompleteSignatureException', () =>
      parseAuthorization({ authorization: `AWS4-HMAC-SHA256 Credential=${SUITE_SCOPE}, SignedHeaders=host, Signature=${'0'.repeat(64)}` }),
    );
  });
});

describe('against the SDK signer on random requests', () => {
  const credentials = { accessKeyId: 'RELAYABCDEFGHIJKLMNO', secretAccessKey: 'secret-for-property-tests_0123456789abcdef' };
  const signer = new SignatureV4({ service: 'bedrock', region: 'us-east-1', credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: true });
  // Path segments as the SDK puts model IDs and other labels on the wire: percent-encoded once.
  const segment = fc.string({ minLength: 1, maxLength: 12, unit: 'grapheme' }).filter((s) => s !== '.' && s !== '..');
  const query = fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ maxLength: 8 }), { maxKeys: 3 });
  const body = fc.uint8Array({ maxLength: 64 });
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE');

  const rfc3986 = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  // How the SDK serialises a query on the wire (@smithy/querystring-builder): each name and value RFC 3986-encoded.
  const wireQuery = (q: Record<string, string>) =>
    Object.entries(q)
      .map(([name, value]) => `${rfc3986(name)}=${rfc3986(value)}`)
      .join('&');

  async function signedWire(m: string, segments: string[], q: Record<string, string>, b: Uint8Array, statePayload: boolean): Promise<WireRequest> {
    const path = `/bedrock/${segments.map(rfc3986).join('/')}`;
    const request = new HttpRequest({
      method: m,
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 4000,
      path,
      query: q,
      headers: { host: '127.0.0.1:4000', 'content-type': 'application/json' },
      body: b,
    });
    const signed = await (statePayload
      ? signer
      : new SignatureV4({ service: 'bedrock', region: 'us-east-1', credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: true, applyChecksum: false })
    ).sign(request);
    return { method: m, rawPath: path, rawQueryString: wireQuery(q), headers: signed.headers as Record<string, string>, body: b };
  }

  it('accepts what the SDK signs, and refuses it after any change', async () => {
    await fc.assert(
      fc.asyncProperty(method, fc.array(segment, { minLength: 1, maxLength: 4 }), query, body, fc.boolean(), async (m, segments, q, b, statePayload) => {
        const wire = await signedWire(m, segments, q, b, statePayload);
        const auth = parseAuthorization(wire.headers);
        verifySignature(wire, auth, credentials.secretAccessKey);

        const altered: WireRequest[] = [
          { ...wire, method: m === 'GET' ? 'POST' : 'GET' },
          { ...wire, rawPath: `${wire.rawPath}x` },
          { ...wire, rawQueryString: wire.rawQueryString ? `${wire.rawQueryString}&extra=1` : 'extra=1' },
          { ...wire, body: Buffer.concat([Buffer.from(b), Buffer.from('!')]) },
          { ...wire, headers: { ...wire.headers, 'content-type': 'text/plain' } },
        ];
        for (const request of altered) refusedAs('InvalidSignatureException', () => verifySignature(request, auth, credentials.secretAccessKey));
      }),
      { numRuns: 300 },
    );
  });
});
