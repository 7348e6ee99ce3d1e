/**
 * What the local server decides from a request's head alone, before it reads a body byte: a
 * call to a relay route with no key, or with something that cannot be a key, is refused at
 * once, so unauthenticated clients cannot make it buffer megabytes. The answers take the
 * dialect of the API the client speaks (app.ts familyOfPath), exactly as the handler's would.
 */
import { familyOfPath } from '../app.js';
import { credentialFrom, invalidCredential, missingCredential, secretsEqual } from '../auth/principal.js';
import { isSigV4Request, parseAuthorization } from '../auth/sigv4.js';
import { RelayError, renderError } from '../http/errors.js';
import { RouteMatcher } from '../routes/match.js';
import type { LocalAnswer, Refusal, RequestHead } from './function-url-emulator.js';

/** Keys are `sk-` and URL-safe characters (generated: sk- + 43); a master key from the env may be anything. */
const KEY_SHAPE = /^sk-[A-Za-z0-9._~+/=-]{8,256}$/;

export interface ScreenOptions {
  /** The master key, when it is known at start (it may not look like `sk-…` if set by env). */
  readonly masterKey?: string;
  readonly requestId?: () => string;
}

export function relayScreen(options: ScreenOptions = {}): (head: RequestHead) => LocalAnswer | undefined {
  const requestId = options.requestId ?? (() => crypto.randomUUID());
  return (head) => {
    if (!RouteMatcher.relayPrefixOf(head.rawPath)) return undefined;
    const headers = flatten(head.headers);
    // SigV4 callers (SDKs with a key's AWS credentials): a well-formed Authorization header passes
    // to the handler, which verifies the signature once the body is there; a malformed one is
    // refused here with AWS's own 400.
    if (isSigV4Request(headers)) {
      try {
        parseAuthorization(headers);
        return undefined;
      } catch (error) {
        if (error instanceof RelayError) return render(error, head, requestId());
        throw error;
      }
    }
    const credential = credentialFrom(headers);
    if (credential === undefined) return render(missingCredential(), head, requestId());
    if (KEY_SHAPE.test(credential)) return undefined;
    if (options.masterKey !== undefined && secretsEqual(credential, options.masterKey)) return undefined;
    return render(invalidCredential(), head, requestId());
  };
}

/** The emulator's own refusals (408 stalled body, 503 too many bytes buffered) in the client's dialect. */
export function renderRelayRefusal(refusal: Refusal, head: RequestHead): LocalAnswer {
  const error =
    refusal.status === 503
      ? new RelayError(503, 'ServiceUnavailableException', refusal.message, retryAfter(refusal))
      : new RelayError(408, 'ValidationException', refusal.message);
  if (!RouteMatcher.relayPrefixOf(head.rawPath)) {
    // Admin and health paths: LiteLLM's error shape, as the admin API answers.
    const code = String(refusal.status);
    return {
      status: refusal.status,
      headers: { 'content-type': 'application/json', ...retryAfter(refusal) },
      body: JSON.stringify({
        error: { message: refusal.message, type: refusal.status === 503 ? 'service_unavailable' : 'request_timeout', param: null, code },
      }),
    };
  }
  return render(error, head, crypto.randomUUID());
}

function retryAfter(refusal: Refusal): Record<string, string> {
  return refusal.retryAfterSeconds !== undefined ? { 'retry-after': String(refusal.retryAfterSeconds) } : {};
}

function render(error: RelayError, head: RequestHead, requestId: string): LocalAnswer {
  const rendered = renderError(error, familyOfPath(head.rawPath), requestId);
  return { status: rendered.status, headers: rendered.headers, body: rendered.body };
}

function flatten(headers: RequestHead['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['authorization', 'x-api-key', 'x-amz-date']) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(',') : value;
  }
  return out;
}
