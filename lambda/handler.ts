import type { Context, LambdaFunctionURLEvent } from 'aws-lambda';
import type { App } from './app.js';
import { appFromEnv } from './deps.js';
import { lambdaSink, requestFromEvent } from './runtime/function-url.js';

// Built on the first invocation and kept for the life of the environment (connections,
// credentials and caches survive between invocations).
let app: Promise<App> | undefined;

export const handler = awslambda.streamifyResponse(
  async (event: LambdaFunctionURLEvent, responseStream: LambdaResponseStream, _context: Context): Promise<void> => {
    app ??= appFromEnv().then((built) => built.app).catch((error: unknown) => {
      app = undefined;
      throw error;
    });
    await (await app)(requestFromEvent(event), lambdaSink(responseStream));
  },
);
