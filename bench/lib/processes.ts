/**
 * Child processes the benchmarks measure or lean on: the relay exactly as `npm start` runs it,
 * a fake Bedrock in its own process (so a load generator and the fake do not share one event
 * loop), and the Portkey gateway. Each is started, awaited until it says it is ready, and
 * stopped by its own pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Service {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The first match of the ready pattern. */
  readonly ready: RegExpExecArray;
  /** What the process printed (stdout and stderr, the last 64 KiB), for diagnostics. */
  output(): string;
  stop(): Promise<void>;
}

/** Children still running; killed if this process exits without stopping them (a crash). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface SpawnOptions {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly ready: RegExp;
  readonly timeoutMs?: number;
}

/**
 * Starts `node <args>` with stdout and stderr going straight to a file, not through a pipe this
 * process would have to drain: the relay writes a log line and metrics per call, and reading
 * them here would put that work on the benchmark's own event loop (client and fake). The child
 * still pays for its writes, as a Lambda function pays for writing to its log stream.
 */
export async function spawnService(options: SpawnOptions): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'relay-bench-out-'));
  const logFile = join(dir, 'output.log');
  const fd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...options.args], { cwd: PROJECT_ROOT, env: { ...options.env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  running.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );
  const output = () => {
    try {
      const text = readFileSync(logFile, 'utf8');
      return text.length > 64 * 1024 ? text.slice(-64 * 1024) : text;
    } catch {
      return '';
    }
  };
  const cleanup = () => rmSync(dir, { recursive: true, force: true });

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let ready: RegExpExecArray | null = null;
  while (!ready) {
    ready = options.ready.exec(readFileSync(logFile, 'utf8'));
    if (ready) break;
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      const why = child.exitCode !== null ? `exited with ${child.exitCode}` : `not ready within ${options.timeoutMs ?? 30_000} ms`;
      const text = output();
      child.kill('SIGKILL');
      cleanup();
      throw new Error(`${options.args.join(' ')}: ${why}\n${text.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    child,
    pid: child.pid!,
    ready,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(timer);
      }
      cleanup();
    },
  };
}

export interface RelayProcess extends Service {
  readonly url: string;
}

/**
 * `npm start` (lambda/local/main.ts) on a free port, configured by `env` only, with a key store
 * (embedded DynamoDB) of its own in a temporary data dir: two relays cannot share one.
 */
export async function spawnRelay(env: Readonly<Record<string, string>>): Promise<RelayProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), 'relay-bench-data-'));
  const removeDataDir = () => rmSync(dataDir, { recursive: true, force: true });
  try {
    const service = await spawnService({
      args: ['--import', 'tsx', 'lambda/local/main.ts'],
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PORT: '0', HOST: '127.0.0.1', RELAY_DATA_DIR: dataDir, ...env },
      ready: /listening on (http:\/\/[^\s]+)/,
    });
    return {
      ...service,
      url: service.ready[1]!,
      async stop() {
        await service.stop();
        removeDataDir();
      },
    };
  } catch (error) {
    removeDataDir();
    throw error;
  }
}

export interface FakeProcess extends Service {
  readonly url: string;
  /** `http://127.0.0.1` (port 80) forwarding to the fake, when asked for and allowed. */
  readonly forwardUrl?: string;
}

/** The fake Bedrock in its own process (bench/processes/fake-server.ts). */
export async function spawnFake(options: { forwardPort?: number } = {}): Promise<FakeProcess> {
  const service = await spawnService({
    args: ['--import', 'tsx', 'bench/processes/fake-server.ts'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...(options.forwardPort ? { FAKE_FORWARD_PORT: String(options.forwardPort) } : {}) },
    ready: /^FAKE (\{.*\})$/m,
  });
  const info = JSON.parse(service.ready[1]!) as { url: string; forwardUrl?: string };
  return { ...service, url: info.url, forwardUrl: info.forwardUrl };
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Resident set size now and at its peak, from /proc (Linux), in KiB. */
export function memoryOf(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssKb: field('VmRSS'), hwmKb: field('VmHWM') };
  } catch {
    return undefined;
  }
}

/**
 * Resets the kernel's peak-RSS mark (VmHWM) so a later reading covers only what follows, not
 * start-up. Returns false where that is not allowed (then sample VmRSS instead).
 */
export function resetPeakMemory(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export interface DynamoProcess extends Service {
  readonly endpoint: string;
  readonly tableName: string;
}

/** An embedded DynamoDB (dynalite, in memory) with the relay's table, in its own process. */
export async function spawnDynamo(): Promise<DynamoProcess> {
  const service = await spawnService({
    args: ['--import', 'tsx', 'bench/processes/dynamo-server.ts'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME },
    ready: /^DYNAMO (\{.*\})$/m,
  });
  const info = JSON.parse(service.ready[1]!) as { endpoint: string; tableName: string };
  return { ...service, ...info };
}

/** The two floors' names in the latency and throughput sections' rows. */
export const TCP_PIPE_FLOOR = 'tcp pipe (floor)';
export const SIGNING_PROXY_FLOOR = 'signing proxy (floor)';
export const FLOORS = [TCP_PIPE_FLOOR, SIGNING_PROXY_FLOOR];

/** A plain TCP pipe to `targetPort` in its own process (bench/processes/tcp-pipe.ts): the floor of any extra process. */
export function spawnTcpPipe(targetPort: number): Promise<Service & { readonly url: string }> {
  return spawnForwardingProcess('bench/processes/tcp-pipe.ts', { PIPE_TARGET_PORT: String(targetPort) }, /PIPE (\{.*\})/);
}

/**
 * The least relay node:http allows (bench/processes/signing-proxy.ts: parse, buffer, SigV4,
 * forward) to the fake at `targetPort`, in its own process: the floor of any Node.js relay.
 * It takes the relay's request shape (`/bedrock/…`, a bearer key it does not check).
 */
export function spawnSigningProxy(targetPort: number): Promise<Service & { readonly url: string }> {
  return spawnForwardingProcess('bench/processes/signing-proxy.ts', { PROXY_TARGET_PORT: String(targetPort) }, /PROXY (\{.*\})/);
}

async function spawnForwardingProcess(script: string, env: Record<string, string>, ready: RegExp): Promise<Service & { readonly url: string }> {
  const service = await spawnService({ args: ['--import', 'tsx', script], env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, ready });
  return { ...service, url: (JSON.parse(service.ready[1]!) as { url: string }).url };
}
