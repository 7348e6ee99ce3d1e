/**
 * Failures a test triggers by naming a model (or any path label, e.g. a knowledge-base or agent
 * ID) after one of FAKE_FAILURE_MODELS, with no override plumbing. An ID matches when it equals
 * the name or ends with `.name` or `/name`, so `us.fake.throttle` and
 * `arn:aws:bedrock:us-east-1:123456789012:inference-profile/fake.throttle` work too.
 */
import { exceptionFrame } from './eventstream.js';
import { familyErrorReply, type ApiFamily, type Reply, type StreamReply } from './reply.js';
import { sseEvent } from './sse.js';

export const FAKE_FAILURE_MODELS = {
  /** 429 ThrottlingException (the SDKs retry it: set maxAttempts 1 to see it at once). */
  throttle: 'fake.throttle',
  /** 400 ValidationException. */
  validation: 'fake.validation',
  /** 403 AccessDeniedException (model access not granted). */
  accessDenied: 'fake.access-denied',
  /** 404 ResourceNotFoundException. */
  notFound: 'fake.not-found',
  /** 424 ModelErrorException (the model itself failed). */
  modelError: 'fake.model-error',
  /** 500 InternalServerException. */
  internal: 'fake.internal',
  /** 503 ServiceUnavailableException. */
  unavailable: 'fake.unavailable',
  /** The normal reply's first two frames/events (half the body, when not streamed), then the socket is destroyed. */
  midstreamReset: 'fake.midstream-reset',
  /**
   * Two frames/events, then the surface's mid-stream error: an event-stream `exception` frame
   * (`modelStreamErrorException` on bedrock-runtime, `internalServerException` on
   * bedrock-agent-runtime), an Anthropic `event: error`, an OpenAI `data: {"error":…}` or a
   * Responses `event: error`; then the stream ends. Unstreamed replies answer 424 ModelErrorException.
   */
  midstreamException: 'fake.midstream-exception',
  /** Status and headers, then silence until the client gives up (timeout tests). */
  stall: 'fake.stall',
} as const;

export type FakeFailureModel = (typeof FAKE_FAILURE_MODELS)[keyof typeof FAKE_FAILURE_MODELS];

interface StatusFailure {
  readonly status: number;
  readonly errorType: string;
  readonly message: string;
}

const STATUS_FAILURES: Readonly<Record<string, StatusFailure>> = {
  [FAKE_FAILURE_MODELS.throttle]: { status: 429, errorType: 'ThrottlingException', message: 'Too many requests, please wait before trying again.' },
  [FAKE_FAILURE_MODELS.validation]: {
    status: 400,
    errorType: 'ValidationException',
    message: 'Malformed input request, please reformat your input and try again.',
  },
  [FAKE_FAILURE_MODELS.accessDenied]: {
    status: 403,
    errorType: 'AccessDeniedException',
    message: "You don't have access to the model with the specified model ID.",
  },
  [FAKE_FAILURE_MODELS.notFound]: { status: 404, errorType: 'ResourceNotFoundException', message: 'The requested resource could not be found.' },
  [FAKE_FAILURE_MODELS.modelError]: { status: 424, errorType: 'ModelErrorException', message: 'The model returned an error.' },
  [FAKE_FAILURE_MODELS.internal]: { status: 500, errorType: 'InternalServerException', message: 'The server encountered an internal error.' },
  [FAKE_FAILURE_MODELS.unavailable]: { status: 503, errorType: 'ServiceUnavailableException', message: 'Bedrock is unable to process your request.' },
};

const MIDSTREAM_MESSAGE = 'The model stream was interrupted by a simulated failure.';

/** How a streamed surface reports an error mid-stream. */
export type StreamErrorStyle =
  | { readonly kind: 'eventstream'; readonly exceptionType: string }
  | { readonly kind: 'sse'; readonly dialect: 'anthropic' | 'openai-chat' | 'openai-responses' };

/** The failure named by the first candidate that names one. */
export function findFailure(candidates: readonly (string | undefined)[]): FakeFailureModel | undefined {
  const names = Object.values(FAKE_FAILURE_MODELS);
  for (const candidate of candidates) {
    if (candidate === undefined) continue;
    const found = names.find((name) => candidate === name || candidate.endsWith(`.${name}`) || candidate.endsWith(`/${name}`));
    if (found) return found;
  }
  return undefined;
}

/** A failure that replaces the reply outright (status errors), before the operation runs. */
export function statusFailureReply(failure: FakeFailureModel, family: ApiFamily): Reply | undefined {
  const status = STATUS_FAILURES[failure];
  return status && familyErrorReply(family, status.status, status.errorType, status.message);
}

/** A failure that breaks the operation's normal reply (mid-stream failures and stalls). */
export function breakReply(failure: FakeFailureModel, reply: Reply, family: ApiFamily, style: StreamErrorStyle | undefined): Reply {
  if (reply.kind === 'custom') return reply;
  if (failure === FAKE_FAILURE_MODELS.stall) {
    return { kind: 'stream', status: reply.status, headers: reply.headers, chunks: [], ending: 'stall' };
  }
  if (failure === FAKE_FAILURE_MODELS.midstreamReset) {
    if (reply.kind === 'stream') return { ...reply, chunks: reply.chunks.slice(0, 2), ending: 'reset' };
    // Announce the full length, deliver half: the client sees a truncated body, as on a dropped connection.
    const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : Buffer.from(reply.body);
    const headers = { ...reply.headers, 'content-length': body.byteLength };
    return { kind: 'stream', status: reply.status, headers, chunks: [body.subarray(0, Math.floor(body.byteLength / 2))], ending: 'reset' };
  }
  if (failure === FAKE_FAILURE_MODELS.midstreamException) {
    if (reply.kind === 'body' || style === undefined) {
      const modelError = STATUS_FAILURES[FAKE_FAILURE_MODELS.modelError]!;
      return familyErrorReply(family, modelError.status, modelError.errorType, modelError.message);
    }
    const withError: StreamReply = { ...reply, chunks: [...reply.chunks.slice(0, 2), midstreamError(style)], ending: 'end' };
    return withError;
  }
  return reply;
}

function midstreamError(style: StreamErrorStyle): string | Uint8Array {
  if (style.kind === 'eventstream') {
    const payload =
      style.exceptionType === 'modelStreamErrorException'
        ? { message: MIDSTREAM_MESSAGE, originalStatusCode: 500, originalMessage: MIDSTREAM_MESSAGE }
        : { message: MIDSTREAM_MESSAGE };
    return exceptionFrame(style.exceptionType, payload);
  }
  switch (style.dialect) {
    case 'anthropic':
      return sseEvent({ type: 'error', error: { type: 'overloaded_error', message: MIDSTREAM_MESSAGE } }, 'error');
    case 'openai-chat':
      return sseEvent({ error: { message: MIDSTREAM_MESSAGE, type: 'server_error', param: null, code: 'ModelStreamErrorException' } });
    case 'openai-responses':
      return sseEvent({ type: 'error', code: 'server_error', message: MIDSTREAM_MESSAGE, param: null, sequence_number: 2 }, 'error');
  }
}
