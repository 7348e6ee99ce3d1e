/**
 * Verification of AWS Signature Version 4 on requests clients send to the relay, as AWS
 * verifies them (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html):
 *
 *   canonical request = METHOD \n canonical URI \n canonical query \n canonical headers \n
 *                       signed headers \n payload hash
 *   string to sign    = AWS4-HMAC-SHA256 \n X-Amz-Date \n scope \n hex(SHA-256(canonical request))
 *   signing key       = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request"
 *
 * Everything is computed from the request as it arrived on the wire (raw path, raw query
 * string, header values), never from a decoded or re-serialised form, so what is verified is
 * what the route matcher and policy see. Written independently of the fake Bedrock's verifier
 * (test/support/fake-bedrock/sigv4-verify.ts) so that one bug cannot hide in both.
 *
 * Only the Authorization-header form is accepted: none of the clients the relay supports signs
 * Bedrock calls in the query string, and a presigned URL's X-Amz-* parameters would otherwise
 * have to be stripped before the query goes upstream.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { RelayError } from '../http/errors.js';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** AWS's limit on the difference between X-Amz-Date and the server's clock, either way. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** The parts of a request that SigV4 covers (header names lower-cased, as a Function URL gives them). */
export interface WireRequest {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** The Authorization header's fields. */
export interface SigV4Authorization {
  readonly accessKeyId: string;
  /** YYYYMMDD */
  readonly scopeDate: string;
  readonly region: string;
  readonly service: string;
  readonly signedHeaders: readonly string[];
  /** 64 lower-case hex digits. */
  readonly signature: string;
  /** X-Amz-Date, YYYYMMDDTHHMMSSZ. */
  readonly amzDate: string;
}

export interface SigV4Expectation {
  /** Signing names accepted for this request (`bedrock`, or `bedrock-mantle` for mantle paths). */
  readonly services: readonly string[];
  /** Regions the relay serves. */
  readonly regions: readonly string[];
  /** The relay's clock, ms since the epoch. */
  readonly now: number;
}

/** Does the request carry SigV4 in its Authorization header? */
export function isSigV4Request(headers: Readonly<Record<string, string>>): boolean {
  return /^AWS4-HMAC-SHA256(\s|$)/.test(headers.authorization ?? '');
}

/** Does the query string carry presigned-URL parameters (which the relay does not accept)? */
export function hasPresignedQuery(rawQueryString: string): boolean {
  return /(^|&)X-Amz-(Credential|Signature)=/i.test(rawQueryString);
}

export function presignedNotAccepted(): RelayError {
  return new RelayError(
    400,
    'IncompleteSignatureException',
    'Presigned (query-string) SigV4 requests are not accepted by this relay; sign the Authorization header instead.',
  );
}

/**
 * Parses `AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/bedrock/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=…` and the X-Amz-Date header. Malformed → 400
 * IncompleteSignatureException, as AWS answers.
 */
export function parseAuthorization(headers: Readonly<Record<string, string>>): SigV4Authorization {
  const header = headers.authorization ?? '';
  const rest = header.slice(SIGV4_ALGORITHM.length).trim();
  const fields = new Map<string, string>();
  for (const part of rest.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw incomplete('Authorization header requires Credential, SignedHeaders and Signature, separated by commas.');
    fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature) {
    throw incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.");
  }
  const scope = credential.split('/');
  if (scope.length !== 5 || !scope[0]) throw incomplete(`Credential must be <access key id>/<date>/<region>/<service>/aws4_request.`);
  const [accessKeyId, scopeDate, region, service, terminator] = scope as [string, string, string, string, string];
  if (terminator !== 'aws4_request') throw incomplete("Credential should be scoped with a valid terminator: 'aws4_request'.");
  if (!/^\d{8}$/.test(scopeDate)) throw incomplete('Credential date must be YYYYMMDD.');
  if (!/^[0-9a-f]{64}$/.test(signature)) throw incomplete('Signature must be 64 lower-case hexadecimal digits.');
  const names = signedHeaders.split(';');
  if (names.some((name) => name === '' || name !== name.toLowerCase())) {
    throw incomplete('SignedHeaders must be lower-case header names separated by semicolons.');
  }
  const amzDate = headers['x-amz-date'];
  if (!amzDate) throw incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || Number.isNaN(parseAmzDate(amzDate))) throw incomplete('X-Amz-Date must be YYYYMMDDTHHMMSSZ.');
  return { accessKeyId, scopeDate, region, service, signedHeaders: names, signature, amzDate };
}

/**
 * What can be checked before the secret is known: scope (service, region, date), freshness,
 * that `host` is signed and that a stated payload hash matches the body. Each failure is a
 * 403 InvalidSignatureException, AWS's answer to the same mistakes.
 */
export function checkScope(auth: SigV4Authorization, expectation: SigV4Expectation): void {
  if (!expectation.services.includes(auth.service)) {
    throw invalidSignature(`Credential should be scoped to correct service: '${expectation.services[0]}'.`);
  }
  if (!expectation.regions.includes(auth.region)) {
    throw invalidSignature(`Credential should be scoped to a valid region (this relay serves ${expectation.regions.join(', ')}).`);
  }
  if (auth.scopeDate !== auth.amzDate.slice(0, 8)) {
    throw invalidSignature(
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.scopeDate}' != '${auth.amzDate.slice(0, 8)}'.`,
    );
  }
  const signedAt = parseAmzDate(auth.amzDate);
  if (Math.abs(expectation.now - signedAt) > MAX_CLOCK_SKEW_MS) {
    const now = amzDateOf(expectation.now);
    throw invalidSignature(
      signedAt < expectation.now
        ? `Signature expired: ${auth.amzDate} is now earlier than ${amzDateOf(expectation.now - MAX_CLOCK_SKEW_MS)} (${now} - 5 min.)`
        : `Signature not yet current: ${auth.amzDate} is still later than ${amzDateOf(expectation.now + MAX_CLOCK_SKEW_MS)} (${now} + 5 min.)`,
    );
  }
  if (!auth.signedHeaders.includes('host') && !auth.signedHeaders.includes(':authority')) {
    throw invalidSignature("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
}

/**
 * The payload hash the client signed: the x-amz-content-sha256 header when present (which
 * must then describe the body, or be UNSIGNED-PAYLOAD), else the body's own SHA-256.
 */
export function payloadHash(request: WireRequest): string {
  const actual = createHash('sha256').update(request.body).digest('hex');
  const stated = request.headers['x-amz-content-sha256'];
  if (stated === undefined) return actual;
  if (stated === UNSIGNED_PAYLOAD) return stated;
  if (stated.toLowerCase() !== actual) {
    throw invalidSignature('The provided x-amz-content-sha256 header does not match what was computed.');
  }
  return stated;
}

/** Verifies the signature with the secret of the access key it names; throws 403 InvalidSignatureException when it does not match. */
export function verifySignature(request: WireRequest, auth: SigV4Authorization, secretAccessKey: string): void {
  const canonical = canonicalRequest(request, auth);
  const scope = `${auth.scopeDate}/${auth.region}/${auth.service}/aws4_request`;
  const stringToSign = [SIGV4_ALGORITHM, auth.amzDate, scope, sha256Hex(canonical)].join('\n');
  let key: Buffer = hmac(`AWS4${secretAccessKey}`, auth.scopeDate);
  for (const part of [auth.region, auth.service, 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  const presented = Buffer.from(auth.signature, 'hex');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw invalidSignature(
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
}

/** The canonical request (exported for tests and for debugging clients, never logged with secrets). */
export function canonicalRequest(request: WireRequest, auth: Pick<SigV4Authorization, 'signedHeaders'>): string {
  return [
    request.method.toUpperCase(),
    canonicalUri(request.rawPath),
    canonicalQuery(request.rawQueryString),
    ...auth.signedHeaders.map((name) => `${name}:${canonicalHeaderValue(request.headers, name)}`),
    '',
    auth.signedHeaders.join(';'),
    payloadHash(request),
  ].join('\n');
}

/**
 * Every AWS service but S3 signs the path URI-encoded once more than it went on the wire,
 * segment by segment, after removing empty, `.` and `..` segments (what the SDKs' signers and
 * botocore do). A path that normalisation would change is refused rather than verified: the
 * route matcher reads the raw path, and a signature must not cover a different path than the
 * one that is routed.
 */
export function canonicalUri(rawPath: string): string {
  if (!rawPath.startsWith('/')) throw invalidSignature('The request path must start with "/".');
  const segments = rawPath.split('/').slice(1);
  const inner = segments.slice(0, -1);
  if (inner.some((segment) => segment === '' || segment === '.' || segment === '..') || segments.at(-1) === '.' || segments.at(-1) === '..') {
    throw invalidSignature('The request path must be normalised (no empty, "." or ".." segments) to be signed.');
  }
  try {
    return `/${segments.map(uriEncode).join('/')}`;
  } catch {
    throw invalidSignature('The request path is not valid UTF-8.');
  }
}

/** Query parameters decoded from the wire, re-encoded strictly (RFC 3986) and sorted by name, then value. */
export function canonicalQuery(rawQueryString: string): string {
  if (!rawQueryString) return '';
  const pairs: Array<[string, string]> = [];
  for (const part of rawQueryString.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    try {
      pairs.push([uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))]);
    } catch {
      throw invalidSignature('The query string has an invalid percent-encoding.');
    }
  }
  pairs.sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join('&');
}

/**
 * A signed header's value: trimmed, runs of spaces and tabs collapsed. Over HTTP/2 the SDK
 * signs `:authority`, which a Function URL (and the local emulator) delivers as `host`.
 */
function canonicalHeaderValue(headers: Readonly<Record<string, string>>, name: string): string {
  const value = headers[name] ?? (name === ':authority' ? headers.host : undefined);
  if (value === undefined) throw invalidSignature(`The signed header '${name}' is missing from the request.`);
  return value.replace(/[ \t]+/g, ' ').trim();
}

/** RFC 3986 percent-encoding of everything but the unreserved characters (A-Z a-z 0-9 - _ . ~). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function parseAmzDate(value: string): number {
  const iso = `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}T${value.slice(9, 11)}:${value.slice(11, 13)}:${value.slice(13, 15)}Z`;
  return Date.parse(iso);
}

function amzDateOf(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data: string): string {
  return createHash('sha256').update(data, 'utf8').digest('hex');
}

function incomplete(message: string): RelayError {
  return new RelayError(400, 'IncompleteSignatureException', message);
}

export function invalidSignature(message: string): RelayError {
  return new RelayError(403, 'InvalidSignatureException', message);
}

/** AWS's answer to an access key id it does not know (or one that no longer works). */
export function unrecognizedAccessKey(): RelayError {
  return new RelayError(403, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
}
