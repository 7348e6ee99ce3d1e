/**
 * One Lambda execution environment on this machine: a Runtime API, the real aws-lambda-ric
 * under Node 22 loading a deployment package from `taskRoot`, and a Function URL in front.
 *
 *   const lambda = await startLambda({ install, taskRoot, environment });
 *   await fetch(`${lambda.url}/health/liveliness`);
 *   lambda.diagnostics();        // what the runtime sent and printed, for assertion messages
 *   await lambda.close();
 */
import type { RicInstall } from './ric-install.js';
import { startFunctionUrlFront, type Exchange } from './function-url-front.js';
import { startRic, type RicProcess } from './ric-process.js';
import { startRuntimeApi, type RuntimeApi } from './runtime-api.js';

export interface LambdaOptions {
  readonly install: Pick<RicInstall, 'node' | 'ricEntry'>;
  readonly taskRoot: string;
  readonly handler?: string;
  readonly environment?: Readonly<Record<string, string>>;
  /** How long init (loading the handler) may take before the runtime's first poll. */
  readonly initTimeoutMs?: number;
  /** How long the function may take to start answering an invocation. */
  readonly answerTimeoutMs?: number;
}

export interface LocalLambda {
  readonly url: string;
  readonly runtime: RuntimeApi;
  readonly ric: RicProcess;
  readonly exchanges: readonly Exchange[];
  /** Init duration: process start → first poll for an invocation. */
  readonly initMs: number;
  /** The last exchanges and the tail of the runtime's output. */
  diagnostics(): string;
  close(): Promise<void>;
}

export async function startLambda(options: LambdaOptions): Promise<LocalLambda> {
  const runtime = await startRuntimeApi({ timeoutMs: options.answerTimeoutMs ?? 30_000 });
  const front = await startFunctionUrlFront({ runtime, answerTimeoutMs: options.answerTimeoutMs ?? 30_000 });
  const started = performance.now();
  const ric = startRic({ install: options.install, runtime, taskRoot: options.taskRoot, handler: options.handler, environment: options.environment });
  const close = async () => {
    await ric.stop();
    await front.close();
    await runtime.close();
  };
  const diagnostics = () =>
    `\n--- last exchanges ---\n${front.exchanges
      .slice(-3)
      .map((e) => JSON.stringify(e))
      .join('\n')}\n--- runtime output (tail) ---\n${ric.output().split('\n').slice(-40).join('\n')}`;

  const initTimeoutMs = options.initTimeoutMs ?? 20_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    runtime.firstPoll.then(() => 'ready' as const),
    ric.exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), initTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ready' || runtime.initError) {
    const why = runtime.initError
      ? `init error ${runtime.initError.errorType}: ${runtime.initError.body.toString('utf8').slice(0, 1000)}`
      : outcome === 'exited'
        ? 'the runtime process exited during init'
        : `no poll for an invocation within ${initTimeoutMs} ms`;
    const text = diagnostics();
    await close();
    throw new Error(`the function did not start under aws-lambda-ric: ${why}${text}`);
  }
  return {
    url: front.url,
    runtime,
    ric,
    exchanges: front.exchanges,
    initMs: Math.round(performance.now() - started),
    diagnostics,
    close,
  };
}
