import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { RelayError } from '../http/errors.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The server-held secret the keys' AWS secret access keys are derived from
 * (lambda/keys/aws-credentials.ts). In Lambda the Secrets Manager secret named by
 * RELAY_SIGV4_SECRET_ARN (read once per cold start; a failed read is retried on the next call
 * and fails closed with 503 meanwhile); locally RELAY_SIGV4_SECRET, which `npm start` fills from
 * a 0600 file in the data dir. Undefined when neither is set: then keys have no AWS pair and
 * SigV4 requests are refused.
 */
export function signingSecretSource(env: Env = process.env, client?: SecretsManagerClient): (() => Promise<string>) | undefined {
  const secretArn = env.RELAY_SIGV4_SECRET_ARN;
  if (!secretArn) {
    const secret = env.RELAY_SIGV4_SECRET;
    if (!secret) return undefined;
    if (secret.length < 32) throw new Error('RELAY_SIGV4_SECRET must be at least 32 characters (it is a key, not a password).');
    return async () => secret;
  }
  let pending: Promise<string> | undefined;
  return () => {
    pending ??= (client ?? new SecretsManagerClient({}))
      .send(new GetSecretValueCommand({ SecretId: secretArn }))
      .then((answer) => {
        const value = answer.SecretString?.trim();
        if (!value) throw new Error('the SigV4 signing secret has no SecretString');
        return value;
      })
      .catch((error: unknown) => {
        pending = undefined;
        throw new RelayError(503, 'ServiceUnavailableException', `The relay could not read its SigV4 signing secret (${(error as Error).name}).`);
      });
    return pending;
  };
}
