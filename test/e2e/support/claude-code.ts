/**
 * Claude Code (`@anthropic-ai/claude-code`) for the end-to-end test: a pinned release, installed
 * once into a cache folder outside the project (it is a native binary of several hundred MB that
 * comes as an optional dependency, so it must never become a dependency every `npm ci` fetches),
 * and run in print mode as a child process with an environment built from scratch.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The release the test and the README recipes were checked against (bump both together). */
export const CLAUDE_CODE_VERSION = '2.1.332';
const PACKAGE = '@anthropic-ai/claude-code';

/** `$CLAUDE_CODE_E2E_CACHE` or `~/.cache/bedrock-relay-e2e`; one folder per version. */
export function cacheRoot(): string {
  return process.env.CLAUDE_CODE_E2E_CACHE || join(homedir(), '.cache', 'bedrock-relay-e2e');
}

/** How to start the CLI: the native binary, or Node running the package's own fallback launcher. */
export interface ClaudeCommand {
  readonly file: string;
  readonly prefixArgs: readonly string[];
  readonly version: string;
  /** Where it was installed, and whether this run installed it. */
  readonly installDir: string;
  readonly installed: boolean;
}

export type ClaudeCodeAvailability = { readonly ok: true; readonly command: ClaudeCommand } | { readonly ok: false; readonly reason: string };

/**
 * Find the pinned release in the cache, installing it there first if needed. Answers
 * `{ ok: false }` only when the install failed for want of the npm registry (the one reason to
 * skip); any other failure throws, so a broken package or launcher fails the test.
 */
export async function ensureClaudeCode(version = CLAUDE_CODE_VERSION): Promise<ClaudeCodeAvailability> {
  const installDir = join(cacheRoot(), `claude-code-${version}`);
  const cached = await locate(installDir, version);
  if (cached) return { ok: true, command: { ...cached, installDir, installed: false } };

  await mkdir(cacheRoot(), { recursive: true });
  // Install beside the final folder and rename: an interrupted download never looks complete.
  const staging = mkdtempSync(join(cacheRoot(), `.claude-code-${version}-`));
  try {
    await execFileAsync(
      'npm',
      ['install', '--prefix', staging, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${PACKAGE}@${version}`],
      // npm resolves a project's .npmrc from the cwd: run it where no project is.
      { cwd: staging, timeout: 240_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } },
    );
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    const text = errorText(error);
    if (REGISTRY_UNREACHABLE.test(text)) {
      return { ok: false, reason: `npm could not reach the registry to install ${PACKAGE}@${version} (${npmErrorSummary(text)})` };
    }
    throw new Error(`npm install ${PACKAGE}@${version} failed: ${lastLines(text, 20)}`);
  }
  await rm(installDir, { recursive: true, force: true });
  await rename(staging, installDir);
  await chmod(installDir, 0o755); // mkdtemp made it private; the cache is an ordinary folder
  const found = await locate(installDir, version);
  if (!found) throw new Error(`${PACKAGE}@${version} installed in ${installDir}, but neither its binary nor cli-wrapper.cjs reports version ${version}`);
  return { ok: true, command: { ...found, installDir, installed: true } };
}

const REGISTRY_UNREACHABLE = /E(NOTFOUND|AI_AGAIN|CONNREFUSED|CONNRESET|TIMEDOUT|NETUNREACH|HOSTUNREACH)|ETIMEDOUT|network|socket hang up|getaddrinfo|proxy/i;

async function locate(installDir: string, version: string): Promise<Omit<ClaudeCommand, 'installDir' | 'installed'> | undefined> {
  const packageDir = join(installDir, 'node_modules', ...PACKAGE.split('/'));
  const manifest = join(packageDir, 'package.json');
  if (!existsSync(manifest)) return undefined;
  if ((JSON.parse(readFileSync(manifest, 'utf8')) as { version?: string }).version !== version) return undefined;
  // The package's postinstall puts the platform's native binary in place of bin/claude.exe;
  // where install scripts do not run, the package's cli-wrapper.cjs finds and spawns it.
  const candidates: Array<{ file: string; prefixArgs: readonly string[] }> = [
    { file: join(installDir, 'node_modules', '.bin', 'claude'), prefixArgs: [] },
    { file: process.execPath, prefixArgs: [join(packageDir, 'cli-wrapper.cjs')] },
  ];
  for (const candidate of candidates) {
    if (candidate.prefixArgs.length === 0 && !existsSync(candidate.file)) continue;
    const reported = await execFileAsync(candidate.file, [...candidate.prefixArgs, '--version'], { timeout: 30_000 }).then(
      ({ stdout }) => stdout,
      () => '',
    );
    if (reported.includes(version)) return { ...candidate, version };
  }
  return undefined;
}

export interface ClaudeRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface RunOptions {
  /** Variables on top of the minimal base (see runClaude). */
  readonly env: Record<string, string>;
  /** The working folder (default: a fresh empty one, removed afterwards). */
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

/**
 * Run `claude <args>` with exactly `options.env` on top of a minimal base (PATH, a fresh HOME,
 * nothing inherited from the test's own environment: no ANTHROPIC_*, AWS_*, CLAUDE_* or proxy
 * variables), killed after the timeout.
 */
export function runClaude(command: ClaudeCommand, args: readonly string[], options: RunOptions): Promise<ClaudeRun> {
  return runIsolated(command.file, [...command.prefixArgs, ...args], options, process.env.PATH ?? '/usr/bin:/bin');
}

/**
 * Run a shell recipe (docs/examples/claude-code-*.sh) as written, with `claude` on its PATH
 * and the same isolation as runClaude.
 */
export function runClaudeRecipe(command: ClaudeCommand, recipePath: string, options: RunOptions): Promise<ClaudeRun> {
  return runIsolated('bash', [recipePath], options, `${claudeBinDir(command)}${delimiter}${process.env.PATH ?? '/usr/bin:/bin'}`);
}

/** A folder holding an executable `claude`: the package's .bin, or a shim to its Node launcher. */
function claudeBinDir(command: ClaudeCommand): string {
  if (command.prefixArgs.length === 0) return dirname(command.file);
  const dir = join(command.installDir, 'shim');
  const shim = join(dir, 'claude');
  if (!existsSync(shim)) {
    mkdirSync(dir, { recursive: true });
    const quoted = [command.file, ...command.prefixArgs].map((part) => `'${part.replaceAll("'", "'\\''")}'`).join(' ');
    writeFileSync(shim, `#!/bin/sh\nexec ${quoted} "$@"\n`, { mode: 0o755 });
  }
  return dir;
}

async function runIsolated(file: string, args: readonly string[], options: RunOptions, path: string): Promise<ClaudeRun> {
  const home = mkdtempSync(join(tmpdir(), 'relay-e2e-claude-home-'));
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'relay-e2e-claude-work-'));
  const started = performance.now();
  try {
    const child = spawn(file, args, {
      cwd,
      env: { PATH: path, HOME: home, TMPDIR: tmpdir(), LANG: 'C.UTF-8', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 90_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (c, s) => resolve([c, s]));
    }).finally(() => clearTimeout(timer));
    return { code, signal, timedOut, stdout, stderr, ms: Math.round(performance.now() - started) };
  } finally {
    await rm(home, { recursive: true, force: true });
    if (options.cwd === undefined) await rm(cwd, { recursive: true, force: true });
  }
}

function errorText(error: unknown): string {
  const e = error as { message?: string; stderr?: string; stdout?: string };
  return [e.message, e.stderr, e.stdout].filter(Boolean).join('\n');
}

/** npm's `error code …` line and its FetchError line: enough to tell an outage from a proxy. */
function npmErrorSummary(text: string): string {
  const lines = text.split('\n').map((line) => line.replace(/^npm error\s*/, '').trim());
  const picked = [lines.find((line) => /^code\s/.test(line)), lines.find((line) => /FetchError|getaddrinfo|ETIMEDOUT/.test(line))].filter(Boolean);
  return picked.length > 0 ? picked.join('; ') : lastLines(text);
}

function lastLines(text: string, count = 5): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}
