/**
 * Drives a streaming Function URL handler in-process, the way the Lambda runtime does: a payload
 * v2.0 event in, a response stream out, no HTTP between the caller and the handler. The stream
 * honours the runtime's contract that `awslambda.HttpResponseStream.from` relies on (the prelude
 * is written by the first write(), through `_onBeforeFirstWrite`) and parses the JSON prelude +
 * 8 NUL bytes back into a status and headers, timestamping every body chunk as it is written.
 */
import { randomUUID } from 'node:crypto';
import type { Context, LambdaFunctionURLEvent, StreamifyHandler } from 'aws-lambda';
import { PreludeResponseStream, type ResponseHead } from '../../lambda/local/response-stream.js';

export interface TimedChunk {
  /** performance.now() when the chunk reached the receiver. */
  readonly at: number;
  readonly data: Buffer;
}

export interface InvokeResult {
  /**
   * performance.now() when the response stream ended: what the client sees as the end of the
   * answer. The handler may go on after that (the relay settles usage after the last byte), as
   * an invocation does in Lambda, billed but not waited for.
   */
  readonly endedAt: number;
  /** performance.now() when the handler's promise settled. */
  readonly handlerDoneAt: number;
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly chunks: readonly TimedChunk[];
  /** False when the handler failed mid-stream (what a client sees as a cut connection). */
  readonly complete: boolean;
}

export type FunctionUrlHandler = StreamifyHandler<LambdaFunctionURLEvent, void>;

export interface FunctionUrlCall {
  readonly method: string;
  readonly rawPath: string;
  readonly rawQueryString?: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

export async function invokeFunctionUrl(handler: FunctionUrlHandler, call: FunctionUrlCall): Promise<InvokeResult> {
  const stream = new InMemoryResponseStream();
  const event = functionUrlEvent(call);
  let failed = false;
  try {
    await handler(event, stream as unknown as awslambda.HttpResponseStream, lambdaContext(event.requestContext.requestId));
    if (!stream.writableEnded) stream.end();
  } catch {
    failed = true;
    stream.destroy();
  }
  const handlerDoneAt = performance.now();
  await stream.done;
  // A Function URL answers 502 when the handler ends without a prelude (design.md §5).
  const head = stream.head ?? { statusCode: 502, headers: { 'content-type': 'application/json' } };
  return {
    endedAt: stream.endedAt ?? handlerDoneAt,
    handlerDoneAt,
    status: head.statusCode,
    headers: head.headers,
    chunks: stream.chunks,
    complete: !failed && stream.head !== undefined,
  };
}

/** A payload v2.0 event as a Function URL builds it (lower-cased headers, text bodies as text). */
export function functionUrlEvent(call: FunctionUrlCall): LambdaFunctionURLEvent {
  const now = new Date();
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.headers)) headers[name.toLowerCase()] = value;
  const isText = /^(text\/|application\/(json|[\w.+-]+\+json))/i.test(headers['content-type'] ?? '');
  const requestId = randomUUID();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: call.rawPath,
    rawQueryString: call.rawQueryString ?? '',
    headers,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'bench',
      domainName: 'bench.lambda-url.us-east-1.on.aws',
      domainPrefix: 'bench',
      http: { method: call.method, path: call.rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'bench' },
      requestId,
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body: call.body.byteLength === 0 ? undefined : isText ? call.body.toString('utf8') : call.body.toString('base64'),
    isBase64Encoded: call.body.byteLength > 0 && !isText,
  };
}

interface Head {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
}

/** Keeps the head and the timed body chunks (the prelude is read by the emulator's own base class). */
class InMemoryResponseStream extends PreludeResponseStream {
  readonly chunks: TimedChunk[] = [];
  head: Head | undefined;
  endedAt: number | undefined;
  readonly done: Promise<void>;

  constructor() {
    super();
    this.done = new Promise((resolve) => {
      this.once('finish', () => {
        this.endedAt = performance.now();
        resolve();
      });
      this.once('close', () => resolve());
    });
  }

  protected onHead(head: ResponseHead): void {
    this.head = { statusCode: head.statusCode, headers: head.headers };
  }

  protected onBody(chunk: Buffer, callback: () => void): void {
    if (chunk.byteLength > 0) this.chunks.push({ at: performance.now(), data: Buffer.from(chunk) });
    callback();
  }
}

function lambdaContext(requestId: string): Context {
  const deadline = Date.now() + 15 * 60 * 1000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'bedrock-relay-bench',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:bedrock-relay-bench',
    memoryLimitInMB: '1024',
    awsRequestId: requestId,
    logGroupName: '/aws/lambda/bedrock-relay-bench',
    logStreamName: 'bench',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}
