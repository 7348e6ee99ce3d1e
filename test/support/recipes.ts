/** Runs a README recipe file (docs/examples/*) as a user would, against a running relay. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const EXAMPLES_DIR = join(import.meta.dirname, '..', '..', 'docs', 'examples');
export const README = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

export function recipeText(file: string): string {
  return readFileSync(join(EXAMPLES_DIR, file), 'utf8').trim();
}

export async function runRecipe(file: string, env: Record<string, string>, timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  const path = join(EXAMPLES_DIR, file);
  const [command, args] = file.endsWith('.sh') ? ['bash', [path]] : ['node', [path]];
  return run(command, args, { env: { ...process.env, ...env }, timeout: timeoutMs, cwd: EXAMPLES_DIR });
}
