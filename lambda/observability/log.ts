import { Logger } from '@aws-lambda-powertools/logger';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/**
 * Structured JSON logs through Powertools Logger. Callers never pass key material: requests
 * are identified by request id and key alias only.
 */
export function createLog(serviceName = process.env.POWERTOOLS_SERVICE_NAME ?? 'bedrock-relay'): { log: LogFn; logger: Logger } {
  const logger = new Logger({ serviceName });
  const log: LogFn = (level, message, fields = {}) => logger[level](message, fields);
  return { log, logger };
}
