/**
 * Every virtual key (and the master key) is also an AWS credential pair, so clients that can
 * only sign SigV4 work unmodified against the relay.
 *
 * Scheme (README, "AWS credentials instead of a bearer key", has the threat model):
 *   aws_access_key_id      `RELAY` + 15 random base32 characters (AWS's length and alphabet, a
 *                          prefix no AWS key has). Public: stored on the key item, and in a
 *                          lookup item `AKID#<id>` → token, like the ALIAS#<alias> claims.
 *   aws_secret_access_key  base64url(HMAC-SHA256(signing secret, "…v1\n" + token)), where
 *                          token = SHA-256 of the virtual key (the key's id in the table) and
 *                          the signing secret is a server-held 256-bit value (Secrets Manager in
 *                          AWS, a 0600 file in the data dir locally). Never stored: the relay
 *                          recomputes it to verify a signature, so the table alone does not
 *                          reveal it; shown once, by /key/generate and /key/regenerate.
 *   master key             its pair is derived the same way from the master key's SHA-256,
 *                          with an access key id derived too (nothing about it is stored).
 * The pair resolves to the same key record as the bearer form, so block, delete, expiry and
 * regenerate (new token → new pair) apply to both forms at once.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { hashSecret } from './secrets.js';

export const ACCESS_KEY_ID_PREFIX = 'RELAY';
const ACCESS_KEY_ID = /^RELAY[A-Z2-7]{15}$/;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Domain separation: each derived value has its own label, so no output can stand in for another. */
const SECRET_LABEL = 'bedrock-relay aws_secret_access_key v1\n';
const MASTER_ID_LABEL = 'bedrock-relay master aws_access_key_id v1\n';

export interface AwsCredentialPair {
  readonly aws_access_key_id: string;
  readonly aws_secret_access_key: string;
}

/** A fresh access key id: 75 random bits, so collisions are negligible (and refused by the store's conditional write anyway). */
export function generateAccessKeyId(): string {
  return `${ACCESS_KEY_ID_PREFIX}${base32(randomBytes(10)).slice(0, 15)}`;
}

export function isAccessKeyId(value: string): boolean {
  return ACCESS_KEY_ID.test(value);
}

/**
 * Derives secrets from the server-held signing secret. The source may reject (Secrets Manager
 * unreachable); callers then fail closed.
 */
export class AwsCredentialDeriver {
  constructor(private readonly signingSecret: () => Promise<string>) {}

  /** The secret access key of the key whose token (SHA-256 of the key) is given. */
  async secretFor(token: string): Promise<string> {
    return hmac(await this.signingSecret(), `${SECRET_LABEL}${token}`).toString('base64url');
  }

  /** The master key's pair. */
  async masterPair(masterKey: string): Promise<AwsCredentialPair> {
    const token = hashSecret(masterKey);
    const secret = await this.signingSecret();
    return {
      aws_access_key_id: `${ACCESS_KEY_ID_PREFIX}${base32(hmac(secret, `${MASTER_ID_LABEL}${token}`)).slice(0, 15)}`,
      aws_secret_access_key: hmac(secret, `${SECRET_LABEL}${token}`).toString('base64url'),
    };
  }
}

function hmac(key: string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}
