/**
 * `npm start` as a child process (node --import tsx lambda/local/main.ts), as a user runs it:
 * started against a fake Bedrock, its output captured, its listening URL read from its banner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fakeBedrockEnv, type FakeBedrock } from '../support/fake-bedrock.js';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly url: string;
  output(): string;
  /** Resolves with the exit code (or the signal's name). */
  readonly exited: Promise<number | string>;
}

/** Runs a TypeScript entry of the project with the environment given (nothing inherited but PATH and HOME). */
export function spawnEntry(entry: string, env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | string> } {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (data: Buffer) => (output += data.toString('utf8')));
  child.stderr!.on('data', (data: Buffer) => (output += data.toString('utf8')));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output: () => output, exited };
}

/** Resolves when the output matches `pattern` (with the match), rejects if the process exits first. */
export function waitForOutput(
  proc: { child: ChildProcess; output: () => string; exited: Promise<number | string> },
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${proc.output()}`))), timeoutMs);
    const check = () => {
      const match = pattern.exec(proc.output());
      if (match) finish(() => resolve(match));
    };
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      proc.child.stdout!.off('data', check);
      proc.child.stderr!.off('data', check);
      settle();
    };
    proc.child.stdout!.on('data', check);
    proc.child.stderr!.on('data', check);
    void proc.exited.then((code) => finish(() => reject(new Error(`exited (${code}) before ${pattern}:\n${proc.output()}`))));
    check();
  });
}

export async function startRelayProcess(fake: FakeBedrock, dataDir: string, env: Record<string, string> = {}): Promise<RelayProcess> {
  const proc = spawnEntry('lambda/local/main.ts', {
    ...fakeBedrockEnv(fake),
    RELAY_MASTER_KEY: TEST_MASTER_KEY,
    RELAY_DATA_DIR: dataDir,
    PORT: '0',
    HOST: '127.0.0.1',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
    ...env,
  });
  const match = await waitForOutput(proc, /listening on (http:\/\/\S+)/);
  return { ...proc, url: match[1]! };
}
