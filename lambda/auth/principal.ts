import { createHash, timingSafeEqual } from 'node:crypto';
import { RelayError } from '../http/errors.js';
import type { WireRequest } from './sigv4.js';

/** Who is calling. Virtual-key principals carry the key's stored record (see lambda/keys). */
export type Principal<KeyRecord = unknown> = { readonly kind: 'master' } | { readonly kind: 'virtual-key'; readonly token: string; readonly record: KeyRecord };

/**
 * Resolves the credential a client presented into a principal, or throws a 401/403 RelayError.
 * `credential` is the bearer key (see credentialFrom); `request` is the whole request, for
 * authenticators that verify a SigV4 signature over it (lambda/keys/authenticator.ts).
 */
export type Authenticator = (credential: string | undefined, request?: WireRequest) => Promise<Principal>;

/**
 * The credential from `Authorization: Bearer <key>` or `x-api-key: <key>` (what the AWS SDK's
 * bearer-token auth, the Anthropic SDK and the OpenAI SDK send).
 */
export function credentialFrom(headers: Readonly<Record<string, string>>): string | undefined {
  const authorization = headers.authorization;
  if (authorization) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    return match ? match[1] : undefined;
  }
  const apiKey = headers['x-api-key']?.trim();
  return apiKey || undefined;
}

/**
 * Constant-time comparison of two secrets. Both sides are hashed first so that neither the
 * content nor the length of the expected secret leaks through timing.
 */
export function secretsEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

export function missingCredential(): RelayError {
  return new RelayError(401, 'UnrecognizedClientException', 'Missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>".');
}

export function invalidCredential(): RelayError {
  return new RelayError(401, 'UnrecognizedClientException', 'The API key is not valid.');
}

/** Accepts only the master key (the relay core, before virtual keys exist). */
export function masterKeyAuthenticator(masterKey: () => Promise<string>): Authenticator {
  return async (credential) => {
    if (!credential) throw missingCredential();
    if (secretsEqual(credential, await masterKey())) return { kind: 'master' };
    throw invalidCredential();
  };
}
