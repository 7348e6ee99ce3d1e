/** The Lambda entry: a Function URL (RESPONSE_STREAM) handler around the relay app. */
import { appFromEnv } from './deps.js';
import { functionUrlHandler } from './runtime/function-url.js';

export const handler = functionUrlHandler(async () => (await appFromEnv()).app);
