import { Logger, LogLevel } from '@aws-lambda-powertools/logger';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

type Level = (typeof LogLevel)[keyof typeof LogLevel];
const LEVELS = new Set<string>(Object.values(LogLevel));

/**
 * Structured JSON logs through Powertools Logger. Callers never pass key material: requests
 * are identified by request id and key alias only.
 *
 * `logLevel` comes from the environment the app is built from (appFromEnv's `env`, which need
 * not be process.env); without it Powertools reads POWERTOOLS_LOG_LEVEL / AWS_LAMBDA_LOG_LEVEL itself.
 */
export function createLog(serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'bedrock-relay', logLevel?: string): { log: LogFn; logger: Logger } {
  const level = logLevel?.toUpperCase();
  const logger = new Logger({ serviceName, ...(level && LEVELS.has(level) ? { logLevel: level as Level } : {}) });
  const log: LogFn = (level, message, fields = {}) => logger[level](message, fields);
  return { log, logger };
}

/**
 * `log` with `keys` added to every line (a call's requestId): the fields stay where callers and
 * tests read them, first, as when they were passed by hand. A plain wrapper rather than
 * Powertools' createChild, so that a LogFn a test captures sees the same fields.
 */
export function childLog(log: LogFn, keys: Readonly<Record<string, unknown>>): LogFn {
  return (level, message, fields = {}) => log(level, message, { ...keys, ...fields });
}
