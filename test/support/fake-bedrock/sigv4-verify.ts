/**
 * Server-side SigV4 verification, written from AWS's specification with node:crypto only.
 *
 * It deliberately shares no code with `@smithy/signature-v4`: the relay signs with that library,
 * so verifying with it too would let a shared mistake pass unseen. The rules are those AWS
 * applies to non-S3 services (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-create-signed-request.html):
 *
 * - canonical URI: the path exactly as it arrived on the wire, normalised (empty, `.` and `..`
 *   segments removed) and then URI-encoded a second time, segment by segment, so `%3A` on the
 *   wire becomes `%253A` in the canonical request;
 * - canonical query: every pair decoded, re-encoded with RFC 3986 rules, sorted by name then value;
 * - canonical headers: exactly the SignedHeaders, lower-cased, values trimmed with inner runs of
 *   spaces collapsed, repeated headers joined with `,`; `host` must be among them;
 * - payload hash: SHA-256 of the body as received (never a client-supplied value).
 *
 * Failures carry the exception type and message AWS answers with, so callers can reply as AWS does.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export interface FakeCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** What the verifier is told to accept. */
export interface SigV4Expectation {
  readonly credentials: FakeCredentials;
  readonly region: string;
  /** Signing names accepted in the credential scope (e.g. `bedrock`, `bedrock-mantle`). */
  readonly services: readonly string[];
  /** The verifier's clock, ms since the epoch. */
  readonly now: number;
  /** AWS allows 15 minutes of clock skew either way. */
  readonly maxSkewMs?: number;
}

/** The request as it arrived: nothing decoded, nothing re-serialised. */
export interface SigV4Input {
  readonly method: string;
  /** `req.url` as on the wire: path and query, still percent-encoded. */
  readonly rawUrl: string;
  /** Node's `req.rawHeaders`: alternating names and values, repeats kept. */
  readonly rawHeaders: readonly string[];
  readonly body: Uint8Array;
}

export type SigV4ErrorType =
  | 'MissingAuthenticationTokenException'
  | 'IncompleteSignatureException'
  | 'InvalidSignatureException'
  | 'UnrecognizedClientException';

export interface SigV4Success {
  readonly valid: true;
  readonly accessKeyId: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  readonly amzDate: string;
  readonly canonicalRequest: string;
  readonly stringToSign: string;
}

export interface SigV4Failure {
  readonly valid: false;
  readonly errorType: SigV4ErrorType;
  /** The message AWS would send in the JSON body. */
  readonly message: string;
  /** A precise, test-friendly account of what was wrong. */
  readonly reason: string;
  readonly accessKeyId?: string;
  readonly region?: string;
  readonly service?: string;
  readonly canonicalRequest?: string;
  readonly stringToSign?: string;
}

export type SigV4Result = SigV4Success | SigV4Failure;

const ALGORITHM = 'AWS4-HMAC-SHA256';
const FIFTEEN_MINUTES_MS = 15 * 60 * 1000;
const INVALID_TOKEN_MESSAGE = 'The security token included in the request is invalid.';
const SIGNATURE_MISMATCH_MESSAGE =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export function verifySigV4(input: SigV4Input, expect: SigV4Expectation): SigV4Result {
  const headers = collectHeaders(input.rawHeaders);
  const authorization = headers.get('authorization');
  if (authorization === undefined || authorization.length === 0) {
    return fail('MissingAuthenticationTokenException', 'Missing Authentication Token', 'no Authorization header');
  }
  const auth = parseAuthorization(authorization.join(','));
  if ('error' in auth) return fail('IncompleteSignatureException', auth.error, auth.error);

  const { accessKeyId, scopeDate, region, service, terminator } = auth.credential;
  const scoped = { accessKeyId, region, service };

  if (accessKeyId !== expect.credentials.accessKeyId) {
    return fail('UnrecognizedClientException', INVALID_TOKEN_MESSAGE, `unknown access key id ${accessKeyId}`, scoped);
  }

  const amzDate = headers.get('x-amz-date')?.[0] ?? fromHttpDate(headers.get('date')?.[0]);
  if (amzDate === undefined) {
    const message = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";
    return fail('IncompleteSignatureException', message, 'no x-amz-date or date header', scoped);
  }
  const signedAt = parseAmzDate(amzDate);
  if (signedAt === undefined) {
    return fail('IncompleteSignatureException', `Date must be in ISO-8601 'basic format'. Got '${amzDate}'.`, 'bad x-amz-date', scoped);
  }
  const skewLimit = expect.maxSkewMs ?? FIFTEEN_MINUTES_MS;
  if (signedAt < expect.now - skewLimit) {
    const message = `Signature expired: ${amzDate} is now earlier than ${toAmzDate(expect.now - skewLimit)} (${toAmzDate(expect.now)} - 15 min.)`;
    return fail('InvalidSignatureException', message, 'x-amz-date too old', scoped);
  }
  if (signedAt > expect.now + skewLimit) {
    const message = `Signature not yet current: ${amzDate} is still later than ${toAmzDate(expect.now + skewLimit)} (${toAmzDate(expect.now)} + 15 min.)`;
    return fail('InvalidSignatureException', message, 'x-amz-date in the future', scoped);
  }
  if (scopeDate !== amzDate.slice(0, 8)) {
    const message = `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`;
    return fail('InvalidSignatureException', message, 'credential scope date differs from x-amz-date', scoped);
  }
  if (region !== expect.region) {
    return fail(
      'InvalidSignatureException',
      'Credential should be scoped to a valid region.',
      `credential scope region ${region}, expected ${expect.region}`,
      scoped,
    );
  }
  if (!expect.services.includes(service)) {
    const message = `Credential should be scoped to correct service: '${expect.services[0] ?? ''}'.`;
    return fail('InvalidSignatureException', message, `credential scope service ${service}, expected ${expect.services.join(' or ')}`, scoped);
  }
  if (terminator !== 'aws4_request') {
    const message = `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`;
    return fail('InvalidSignatureException', message, 'bad credential scope terminator', scoped);
  }

  const signedHeaders = auth.signedHeaders;
  if (!signedHeaders.includes('host')) {
    const message = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";
    return fail('InvalidSignatureException', message, 'host is not signed', scoped);
  }
  // A date the client sent but did not sign could be replayed with a fresh value.
  const dateHeader = headers.has('x-amz-date') ? 'x-amz-date' : 'date';
  if (!signedHeaders.includes(dateHeader)) {
    const message = `'${dateHeader === 'date' ? 'Date' : 'X-Amz-Date'}' must be a 'SignedHeader' in the AWS Authorization.`;
    return fail('InvalidSignatureException', message, `${dateHeader} is not signed`, scoped);
  }
  for (const name of signedHeaders) {
    if (!headers.has(name)) {
      return fail('InvalidSignatureException', SIGNATURE_MISMATCH_MESSAGE, `signed header ${name} is missing from the request`, scoped);
    }
  }

  const token = headers.get('x-amz-security-token')?.join(',');
  if (expect.credentials.sessionToken !== undefined) {
    if (token === undefined) {
      return fail('UnrecognizedClientException', INVALID_TOKEN_MESSAGE, 'x-amz-security-token is missing', scoped);
    }
    if (token !== expect.credentials.sessionToken) {
      return fail('UnrecognizedClientException', INVALID_TOKEN_MESSAGE, 'x-amz-security-token does not match', scoped);
    }
    if (!signedHeaders.includes('x-amz-security-token')) {
      return fail('InvalidSignatureException', SIGNATURE_MISMATCH_MESSAGE, 'x-amz-security-token is not signed', scoped);
    }
  } else if (token !== undefined) {
    return fail('UnrecognizedClientException', INVALID_TOKEN_MESSAGE, 'x-amz-security-token sent for long-term credentials', scoped);
  }

  const payloadHash = sha256Hex(input.body);
  const claimedHash = headers.get('x-amz-content-sha256')?.[0];
  if (claimedHash !== undefined && claimedHash !== payloadHash) {
    const message = "The provided 'x-amz-content-sha256' header does not match what was computed.";
    return fail('InvalidSignatureException', message, 'x-amz-content-sha256 differs from the body hash', scoped);
  }

  const { path, query } = splitRawUrl(input.rawUrl);
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalUri(path),
    canonicalQuery(query),
    signedHeaders.map((name) => `${name}:${canonicalHeaderValue(headers.get(name) ?? [])}\n`).join(''),
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
  const scope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const expected = hmac(signingKey(expect.credentials.secretAccessKey, scopeDate, region, service), stringToSign).toString('hex');

  if (!constantTimeEqual(expected, auth.signature)) {
    // AWS echoes what it computed; tests print it when a signature unexpectedly fails.
    const message =
      `${SIGNATURE_MISMATCH_MESSAGE}\n\nThe Canonical String for this request should have been\n'${canonicalRequest}'\n\n` +
      `The String-to-Sign should have been\n'${stringToSign}'\n`;
    return fail('InvalidSignatureException', message, 'signature mismatch', { ...scoped, canonicalRequest, stringToSign });
  }
  return { valid: true, accessKeyId, region, service, signedHeaders, amzDate, canonicalRequest, stringToSign };
}

// ── canonical request pieces (exported for unit tests) ──

/** RFC 3986 encoding: everything except A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex, UTF-8). */
export function rfc3986Encode(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The non-S3 canonical URI: normalise the wire path, then encode each segment again. */
export function canonicalUri(rawPath: string): string {
  const segments: string[] = [];
  for (const segment of rawPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const leading = rawPath.startsWith('/') ? '/' : '';
  const trailing = segments.length > 0 && rawPath.endsWith('/') ? '/' : '';
  const path = `${leading}${segments.map(rfc3986Encode).join('/')}${trailing}`;
  return path === '' ? '/' : path;
}

/** Decode every raw pair, re-encode per RFC 3986, sort by encoded name then value. */
export function canonicalQuery(rawQuery: string): string {
  const pairs: Array<[string, string]> = [];
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([rfc3986Encode(percentDecode(name)), rfc3986Encode(percentDecode(value))]);
  }
  pairs.sort(([an, av], [bn, bv]) => compareCodeUnits(an, bn) || compareCodeUnits(av, bv));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

export function splitRawUrl(rawUrl: string): { path: string; query: string } {
  const q = rawUrl.indexOf('?');
  return q < 0 ? { path: rawUrl, query: '' } : { path: rawUrl.slice(0, q), query: rawUrl.slice(q + 1) };
}

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

// ── helpers ──

function fail(
  errorType: SigV4ErrorType,
  message: string,
  reason: string,
  extra: Partial<Pick<SigV4Failure, 'accessKeyId' | 'region' | 'service' | 'canonicalRequest' | 'stringToSign'>> = {},
): SigV4Failure {
  return { valid: false, errorType, message, reason, ...extra };
}

interface ParsedAuthorization {
  readonly credential: { accessKeyId: string; scopeDate: string; region: string; service: string; terminator: string };
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

function parseAuthorization(value: string): ParsedAuthorization | { error: string } {
  const space = value.indexOf(' ');
  const algorithm = space < 0 ? value : value.slice(0, space);
  if (algorithm !== ALGORITHM) {
    return { error: `Authorization header requires '${ALGORITHM}' algorithm, got '${algorithm}'.` };
  }
  const fields = new Map<string, string>();
  for (const part of value.slice(space + 1).split(',')) {
    const trimmed = part.trim();
    const eq = trimmed.indexOf('=');
    if (eq > 0) fields.set(trimmed.slice(0, eq), trimmed.slice(eq + 1));
  }
  for (const required of ['Credential', 'SignedHeaders', 'Signature']) {
    if (!fields.has(required)) {
      return { error: `Authorization header requires '${required}' parameter. Authorization=${value}` };
    }
  }
  const credentialParts = fields.get('Credential')!.split('/');
  if (credentialParts.length !== 5) {
    return { error: `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${fields.get('Credential')}'` };
  }
  const [accessKeyId, scopeDate, region, service, terminator] = credentialParts as [string, string, string, string, string];
  const signedHeaders = fields
    .get('SignedHeaders')!
    .split(';')
    .filter((h) => h.length > 0);
  return {
    credential: { accessKeyId, scopeDate, region, service, terminator },
    signedHeaders,
    signature: fields.get('Signature')!,
  };
}

/** Lower-cased header name to its values in arrival order. */
function collectHeaders(rawHeaders: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const values = map.get(name) ?? [];
    values.push(rawHeaders[i + 1]!);
    map.set(name, values);
  }
  return map;
}

function canonicalHeaderValue(values: readonly string[]): string {
  return values.map((v) => v.replace(/[ \t]+/g, ' ').trim()).join(',');
}

function percentDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value; // a malformed escape is signed as it stands
  }
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secret}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function constantTimeEqual(expectedHex: string, givenHex: string): boolean {
  const a = Buffer.from(expectedHex, 'utf8');
  const b = Buffer.from(givenHex, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

function parseAmzDate(value: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s);
}

export function toAmzDate(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

function fromHttpDate(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : toAmzDate(ms);
}
