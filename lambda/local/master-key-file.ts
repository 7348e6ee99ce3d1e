import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalMasterKey {
  readonly key: string;
  readonly source: 'env' | 'file' | 'generated';
  readonly file?: string;
}

/**
 * The local server's master key: RELAY_MASTER_KEY or LITELLM_MASTER_KEY when set; otherwise
 * one generated at first start and kept (mode 0600) in the data dir, so it survives restarts.
 */
export function resolveLocalMasterKey(env: Readonly<Record<string, string | undefined>>, dataDir: string): LocalMasterKey {
  const fromEnv = env.RELAY_MASTER_KEY || env.LITELLM_MASTER_KEY;
  if (fromEnv) return { key: fromEnv, source: 'env' };
  const file = join(dataDir, 'master-key');
  if (existsSync(file)) return { key: readFileSync(file, 'utf8').trim(), source: 'file', file };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = `sk-${randomBytes(32).toString('base64url')}`;
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // in case a umask widened it
  return { key, source: 'generated', file };
}
