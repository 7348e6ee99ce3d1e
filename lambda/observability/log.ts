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
export function createLog(
  serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'bedrock-relay',
  logLevel?: string,
): { log: LogFn; logger: Logger } {
  const level = logLevel?.toUpperCase();
  const logger = new Logger({ serviceName, ...(level && LEVELS.has(level) ? { logLevel: level as Level } : {}) });
  const log: LogFn = (level, message, fields = {}) => logger[level](message, fields);
  return { log, logger };
}
