import type { Writable } from 'node:stream';
import type { Context } from 'aws-lambda';

/** The globals the Node.js managed runtime (aws-lambda-ric) provides to streaming handlers. */
declare global {
  interface LambdaResponseStream extends Writable {
    setContentType(contentType: string): void;
  }
  // eslint-disable-next-line no-var
  var awslambda: {
    streamifyResponse<TEvent>(
      handler: (event: TEvent, responseStream: LambdaResponseStream, context: Context) => Promise<void>,
    ): (event: TEvent, responseStream: LambdaResponseStream, context: Context) => Promise<void>;
    HttpResponseStream: {
      from(
        stream: LambdaResponseStream,
        prelude: { statusCode: number; headers?: Record<string, string>; cookies?: string[] },
      ): LambdaResponseStream;
    };
  };
}

export {};
