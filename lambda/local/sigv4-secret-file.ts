import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The local server's SigV4 signing secret (what the keys' AWS secret access keys are derived
 * from): RELAY_SIGV4_SECRET when set; otherwise 256 random bits generated at first start and
 * kept (mode 0600) in the data dir beside the master key, so pairs survive restarts. Losing or
 * replacing the file changes every key's aws_secret_access_key (the bearer keys still work).
 */
export function resolveLocalSigningSecret(env: Readonly<Record<string, string | undefined>>, dataDir: string): string {
  if (env.RELAY_SIGV4_SECRET) return env.RELAY_SIGV4_SECRET;
  const file = join(dataDir, 'sigv4-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // in case a umask widened it
  return secret;
}
