import type { ApiFamily } from '../routes/table.js';

/**
 * An error the relay itself answers with (never one that came from Bedrock: those pass
 * through untouched). `type` is the Bedrock exception name (`AccessDeniedException`…); the
 * renderers translate it into the dialect of the API family the client speaks so that its SDK
 * raises a typed exception.
 */
export class RelayError extends Error {
  constructor(
    readonly status: number,
    readonly type: BedrockErrorType,
    message: string,
    readonly extraHeaders: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = type;
  }
}

export type BedrockErrorType =
  | 'ValidationException'
  | 'UnknownOperationException'
  | 'UnrecognizedClientException'
  | 'InvalidSignatureException'
  | 'IncompleteSignatureException'
  | 'ExpiredTokenException'
  | 'AccessDeniedException'
  | 'ResourceNotFoundException'
  | 'ThrottlingException'
  | 'ServiceQuotaExceededException'
  | 'ServiceUnavailableException'
  | 'InternalServerException'
  | 'ModelTimeoutException';

export interface RenderedError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  503: 'overloaded_error',
};

const OPENAI_TYPES: Record<number, { type: string; code: string }> = {
  400: { type: 'invalid_request_error', code: 'invalid_request' },
  401: { type: 'invalid_request_error', code: 'invalid_api_key' },
  403: { type: 'permission_error', code: 'permission_denied' },
  404: { type: 'invalid_request_error', code: 'not_found' },
  429: { type: 'rate_limit_error', code: 'rate_limit_exceeded' },
};

/** Render in the shape the client's SDK parses into a typed exception. */
export function renderError(error: RelayError, family: ApiFamily, requestId: string): RenderedError {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amzn-requestid': requestId,
    ...error.extraHeaders,
  };
  switch (family) {
    case 'anthropic': {
      const type = ANTHROPIC_TYPES[error.status] ?? (error.status >= 500 ? 'api_error' : 'invalid_request_error');
      headers['request-id'] = requestId;
      return { status: error.status, headers, body: JSON.stringify({ type: 'error', error: { type, message: error.message } }) };
    }
    case 'openai': {
      const mapped = OPENAI_TYPES[error.status] ?? { type: error.status >= 500 ? 'server_error' : 'invalid_request_error', code: error.type };
      headers['x-request-id'] = requestId;
      return {
        status: error.status,
        headers,
        body: JSON.stringify({ error: { message: error.message, type: mapped.type, param: null, code: mapped.code } }),
      };
    }
    default:
      // Bedrock's REST-JSON protocol: the SDK reads the type from x-amzn-errortype.
      headers['x-amzn-errortype'] = error.type;
      return { status: error.status, headers, body: JSON.stringify({ message: error.message }) };
  }
}

/** Anything thrown that is not a RelayError is a defect: answer 500 without leaking details. */
export function asRelayError(thrown: unknown): RelayError {
  if (thrown instanceof RelayError) return thrown;
  return new RelayError(500, 'InternalServerException', 'The relay failed to process the request.');
}
