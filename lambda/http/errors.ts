import type { ApiFamily } from '../routes/table.js';
import { StoreUnavailableError } from '../store/items.js';

/**
 * Every error the relay itself answers with, and every shape it answers in. Errors that came
 * from Bedrock are not here: they pass through untouched.
 *
 * Two kinds, one renderer (renderError) with four dialects:
 *
 *   RelayError    a relayed call refused or failed (/bedrock…, /bedrock-mantle…). `type` is the
 *                 Bedrock exception name; rendered in the dialect of the API the client speaks,
 *                 so its SDK raises a typed exception:
 *                   bedrock    x-amzn-errortype: <type>, {"message"}
 *                   anthropic  {"type": "error", "error": {"type", "message"}}
 *                   openai     {"error": {"message", "type", "param": null, "code"}}
 *   KeyApiError   the admin API and health checks (lambda/http/surface.ts). `type` is LiteLLM's;
 *                 rendered in LiteLLM's dialect:
 *                   litellm    {"error": {"message", "type", "param", "code": "<status>"}}
 *                 StoreUnavailableError (the key store could not be read or written) renders
 *                 there as 503; anything else thrown as 500, without details.
 *
 * Messages never contain a secret.
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

/** An error of the admin API (key management), with what LiteLLM's shape needs. */
export type KeyErrorType = 'bad_request_error' | 'auth_error' | 'not_found_error' | 'service_unavailable' | 'internal_server_error';

export class KeyApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: KeyErrorType,
    message: string,
    /** The request field at fault, when there is one. */
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'KeyApiError';
  }
}

export function invalidField(param: string, message: string): KeyApiError {
  return new KeyApiError(400, 'bad_request_error', message, param);
}

export function keyNotFound(param: string, what: string): KeyApiError {
  return new KeyApiError(404, 'not_found_error', `Key not found: ${what}.`, param);
}

export function duplicateAlias(alias: string): KeyApiError {
  return new KeyApiError(400, 'bad_request_error', `A key with key_alias "${alias}" already exists; aliases must be unique.`, 'key_alias');
}

/** The table could not be read or written (network, throttling, permissions…). */
// Raised by the store layer (lambda/store/items.ts) when DynamoDB cannot be read or written;
// one class, so the renderers below recognise it wherever it was thrown.
export { StoreUnavailableError };

/** The API families of relayed calls, and LiteLLM's for the admin API and health checks. */
export type ErrorDialect = ApiFamily | 'litellm';

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

/**
 * Render in the shape the client's SDK parses into a typed exception. A relayed call's error
 * carries its request id in the headers each SDK reads; LiteLLM's admin answers carry none.
 */
export function renderError(error: RelayError, dialect: ApiFamily, requestId: string): RenderedError;
export function renderError(error: KeyApiError, dialect: 'litellm'): RenderedError;
export function renderError(error: RelayError | KeyApiError, dialect: ErrorDialect, requestId = ''): RenderedError {
  // The overloads pair each kind with its dialects: a KeyApiError is only ever rendered as LiteLLM's.
  if (error instanceof KeyApiError) {
    const body = { error: { message: error.message, type: error.type, param: error.param, code: String(error.status) } };
    return { status: error.status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
  }
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'x-amzn-requestid': requestId,
    ...error.extraHeaders,
  };
  switch (dialect) {
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

/** Anything thrown in a relayed call that is not a RelayError is a defect: 500 without details. */
export function asRelayError(thrown: unknown): RelayError {
  if (thrown instanceof RelayError) return thrown;
  return new RelayError(500, 'InternalServerException', 'The relay failed to process the request.');
}

/**
 * Anything thrown in the admin API that is not a KeyApiError: the store being unavailable
 * (503, nothing was changed) or a defect (500, without details).
 */
export function asKeyApiError(thrown: unknown): KeyApiError {
  if (thrown instanceof KeyApiError) return thrown;
  if (thrown instanceof StoreUnavailableError) {
    return new KeyApiError(503, 'service_unavailable', 'The key store is unavailable; nothing was changed. Retry shortly.');
  }
  return new KeyApiError(500, 'internal_server_error', 'The key management API failed.');
}
