import { createHash, randomBytes } from 'node:crypto';
import { secretsEqual } from '../auth/principal.js';

/** LiteLLM's convention; also how the admin API tells a secret from a hash. */
export const KEY_PREFIX = 'sk-';
/** 256 bits from the CSPRNG: far beyond guessing, and base64url keeps it header- and shell-safe. */
export const KEY_RANDOM_BYTES = 32;

export function generateSecret(): string {
  return `${KEY_PREFIX}${randomBytes(KEY_RANDOM_BYTES).toString('base64url')}`;
}

/** The key's id: SHA-256 hex of the whole secret, `sk-` included (what LiteLLM's hash_token does). */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

/** LiteLLM's abbreviation (`sk-...abcd`): enough to recognise a key, useless to use it. */
export function displayForm(secret: string): string {
  return `${KEY_PREFIX}...${secret.slice(-4)}`;
}

const HASH = /^[0-9a-f]{64}$/i;

export function isKeyHash(value: string): boolean {
  return HASH.test(value);
}

/**
 * Admin calls name a key by its secret (`sk-…`) or by its token (the hash), as LiteLLM allows.
 * Returns the hash, or undefined when the value is neither.
 */
export function tokenFromIdentifier(value: string): string | undefined {
  const trimmed = value.trim();
  if (isKeyHash(trimmed)) return trimmed.toLowerCase();
  if (trimmed.startsWith(KEY_PREFIX) && trimmed.length > KEY_PREFIX.length) return hashSecret(trimmed);
  return undefined;
}

/** Constant-time comparison (hash-then-compare, so lengths do not leak either). */
export { secretsEqual };
