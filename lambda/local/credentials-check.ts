import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { AwsCredentialIdentityProvider } from '@smithy/types';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Tells a newcomer without AWS credentials why Bedrock calls will fail (503), and how to try
 * the relay anyway, at start rather than on their first call. Resolves to the message, or
 * undefined when the provider chain finds credentials. Bounded: the chain's last resort probes
 * instance metadata, which on a laptop only times out.
 */
export async function checkAwsCredentials(
  env: Env,
  provider: AwsCredentialIdentityProvider = defaultProvider(),
  timeoutMs = 5_000,
): Promise<string | undefined> {
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      provider(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`none found within ${timeoutMs / 1000} s`)), timeoutMs);
        timer.unref();
      }),
    ]);
    return undefined;
  } catch (error) {
    return [
      `no AWS credentials found (${(error as Error)?.message?.split('\n')[0] ?? 'unknown'}): calls to Bedrock will answer 503 until there are.`,
      '  Use a profile (AWS_PROFILE), SSO (aws sso login) or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY;',
      '  or try the relay without AWS: npm run demo (a fake Bedrock and the relay, ready-to-paste curls).',
    ].join('\n');
  } finally {
    clearTimeout(timer);
  }
}
