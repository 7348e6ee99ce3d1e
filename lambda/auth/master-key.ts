import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { RelayError } from '../http/errors.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where the master key comes from: in Lambda the Secrets Manager secret the stack created
 * (read once per cold start; a failed read is retried on the next call, and until it succeeds
 * every call fails closed with 503); locally RELAY_MASTER_KEY or LITELLM_MASTER_KEY.
 */
export function masterKeySource(env: Env = process.env, client?: SecretsManagerClient): () => Promise<string> {
  const secretArn = env.RELAY_MASTER_KEY_SECRET_ARN;
  if (!secretArn) {
    const key = env.RELAY_MASTER_KEY || env.LITELLM_MASTER_KEY;
    return async () => {
      if (!key) throw new RelayError(503, 'ServiceUnavailableException', 'The relay has no master key configured.');
      return key;
    };
  }
  let pending: Promise<string> | undefined;
  return () => {
    pending ??= (client ?? new SecretsManagerClient({}))
      .send(new GetSecretValueCommand({ SecretId: secretArn }))
      .then((answer) => {
        if (!answer.SecretString) throw new Error('master key secret has no SecretString');
        return answer.SecretString.trim();
      })
      .catch((error: unknown) => {
        pending = undefined;
        throw new RelayError(503, 'ServiceUnavailableException', `The relay could not read its master key (${(error as Error).name}).`);
      });
    return pending;
  };
}
