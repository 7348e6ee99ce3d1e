import type { Writable } from 'node:stream';
import type { Context, LambdaFunctionURLEvent, StreamifyHandler } from 'aws-lambda';
import type { ResponseSink } from '../http/sink.js';
import type { RelayRequest } from '../pipeline.js';

/** A Function URL payload v2.0 event as the relay's request. */
export function requestFromEvent(event: LambdaFunctionURLEvent): RelayRequest {
  const body = event.body ? Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8') : Buffer.alloc(0);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers ?? {})) {
    if (value !== undefined) headers[name.toLowerCase()] = value;
  }
  return {
    method: event.requestContext.http.method,
    rawPath: event.rawPath,
    rawQueryString: event.rawQueryString ?? '',
    headers,
    body,
    requestId: event.requestContext.requestId,
    sourceIp: event.requestContext.http.sourceIp,
  };
}

const EMPTY = new Uint8Array(0);

/** The stream the managed runtime hands a streaming handler (typed by @types/aws-lambda). */
export type LambdaResponseStream = Writable & { setContentType(contentType: string): void };
type PreludeWriter = (stream: LambdaResponseStream, prelude: { statusCode: number; headers: Record<string, string> }) => LambdaResponseStream;

/**
 * The Lambda response stream as a ResponseSink. Status and headers go out through
 * awslambda.HttpResponseStream.from, whose prelude is written only by the first write():
 * an empty response therefore still writes an empty chunk before end(), or the Function URL
 * would answer 502 (see ../shared/design.md §5).
 */
export function lambdaSink(
  responseStream: LambdaResponseStream,
  from: PreludeWriter = (stream, prelude) => awslambda.HttpResponseStream.from(stream, prelude),
): ResponseSink {
  const gone = new AbortController();
  let prelude: { statusCode: number; headers: Record<string, string> } | undefined;
  let stream: LambdaResponseStream | undefined;
  responseStream.on('error', () => gone.abort());
  responseStream.on('close', () => {
    if (!responseStream.writableFinished) gone.abort();
  });

  const committed = (): LambdaResponseStream => {
    if (stream) return stream;
    if (!prelude) throw new Error('ResponseSink.start() must come first');
    stream = from(responseStream, prelude);
    return stream;
  };

  return {
    get committed() {
      return stream !== undefined;
    },
    clientGone: gone.signal,
    start(statusCode, headers) {
      if (stream) throw new Error('the response has already been committed');
      prelude = { statusCode, headers: { ...headers } };
    },
    async write(chunk) {
      if (gone.signal.aborted) throw new Error('client gone');
      const target = committed();
      if (target.write(chunk)) return;
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          target.off('drain', done);
          gone.signal.removeEventListener('abort', fail);
          resolve();
        };
        const fail = () => {
          target.off('drain', done);
          reject(new Error('client gone'));
        };
        target.once('drain', done);
        gone.signal.addEventListener('abort', fail, { once: true });
      });
    },
    async end() {
      const fresh = stream === undefined;
      const target = committed();
      if (fresh) target.write(EMPTY);
      await new Promise<void>((resolve) => target.end(resolve));
    },
  };
}

/**
 * The streaming Function URL handler around an app. The app is built on the first invocation
 * and kept for the life of the environment; a failed build is retried on the next one.
 */
export function functionUrlHandler(
  buildApp: () => Promise<(request: RelayRequest, sink: ResponseSink) => Promise<void>>,
): StreamifyHandler<LambdaFunctionURLEvent, void> {
  let app: ReturnType<typeof buildApp> | undefined;
  return awslambda.streamifyResponse(async (event: LambdaFunctionURLEvent, responseStream: LambdaResponseStream, _context: Context) => {
    app ??= buildApp().catch((error: unknown) => {
      app = undefined;
      throw error;
    });
    await (await app)(requestFromEvent(event), lambdaSink(responseStream));
  });
}
