/**
 * Starts a function under aws-lambda-ric the way the nodejs22.x managed runtime's bootstrap
 * does: Node 22 with --expose-gc, --max-http-header-size 81920 and heap sizes from the memory
 * setting, the RIC's index.mjs as the main module, the task root as working directory and
 * NODE_PATH, and the environment Lambda sets (_HANDLER, LAMBDA_TASK_ROOT,
 * AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_FUNCTION_*, AWS_EXECUTION_ENV…) plus the function's own.
 * Nothing else from the test process's environment leaks in, as in Lambda.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { RicInstall } from './ric-install.js';
import type { RuntimeApi } from './runtime-api.js';

export interface RicProcessOptions {
  readonly install: Pick<RicInstall, 'node' | 'ricEntry'>;
  readonly runtime: RuntimeApi;
  /** The unpacked deployment package (Lambda's /var/task). */
  readonly taskRoot: string;
  readonly handler?: string;
  /** The function's configured environment variables. */
  readonly environment?: Readonly<Record<string, string>>;
  readonly functionName?: string;
  readonly memoryMb?: number;
  readonly region?: string;
}

export interface RicProcess {
  readonly child: ChildProcess;
  /** Everything the runtime printed (stdout and stderr, interleaved). */
  output(): string;
  /** Settles with the exit code/signal when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

export function startRic(options: RicProcessOptions): RicProcess {
  const memoryMb = options.memoryMb ?? 1024;
  const functionName = options.functionName ?? 'bedrock-relay';
  const region = options.region ?? 'us-east-1';
  const newSpace = Math.floor(memoryMb / 10);
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    NODE_PATH: `${options.taskRoot}`,
    LAMBDA_TASK_ROOT: options.taskRoot,
    LAMBDA_RUNTIME_DIR: options.install.ricEntry.replace(/\/index\.mjs$/, ''),
    _HANDLER: options.handler ?? 'index.handler',
    AWS_LAMBDA_RUNTIME_API: options.runtime.hostPort,
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${functionName}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `2026/01/01/[$LATEST]${'0'.repeat(32)}`,
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    ...options.environment,
  };
  const child = spawn(
    options.install.node,
    [
      '--expose-gc',
      '--max-http-header-size',
      '81920',
      `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
      `--max-old-space-size=${memoryMb - newSpace}`,
      options.install.ricEntry,
    ],
    { cwd: options.taskRoot, env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const chunks: Buffer[] = [];
  child.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => chunks.push(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (error) => {
      chunks.push(Buffer.from(`spawn failed: ${error.message}\n`));
      resolve({ code: -1, signal: null });
    });
  });
  // A runtime that dies leaves its pending invocations without an answer: fail them.
  void exited.then(({ code, signal }) => options.runtime.failPending(`the runtime process exited (${signal ?? `code ${code}`})`));
  return {
    child,
    output: () => Buffer.concat(chunks).toString('utf8'),
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
