/**
 * The request body as every later step reads it: parsed once (lambda/http/json-document.ts),
 * before policy, and carried on the call (CallContext.document). A body that parsers could read
 * differently is refused here with 400 in the client's dialect, before anything is checked
 * against it or sent upstream.
 */
import { JsonBodyRefused, parseJsonDocument, type JsonDocument } from '../http/json-document.js';
import { RelayError } from '../http/errors.js';
import { chatCompletionsFieldProblem } from '../metering/include-usage.js';
import type { MatchedRoute } from './match.js';

export function readRequestDocument(match: MatchedRoute, body: Buffer): JsonDocument {
  let document: JsonDocument;
  try {
    document = parseJsonDocument(body);
  } catch (error) {
    if (error instanceof JsonBodyRefused) throw invalid(error.message);
    throw error;
  }
  const { route } = match;
  // The routes that name their model in the body (the compatible APIs, mantle, StartAsyncInvoke)
  // take only a JSON object. Anything else would leave the relay unable to tell the model or
  // whether the call streams, while a lenient upstream parser (trailing text, comments, another
  // encoding) might still run it: refused rather than relayed unchecked and unmetered. An empty
  // body names nothing and streams nothing; Bedrock answers it.
  if (route.model?.from === 'body' && body.byteLength > 0 && !isJsonObject(document.json)) {
    throw invalid(`${route.operation} takes a JSON object as its request body.`);
  }
  const problem = chatCompletionsFieldProblem(route, document.json);
  if (problem) throw invalid(problem);
  return document;
}

function isJsonObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(message: string): RelayError {
  return new RelayError(400, 'ValidationException', message);
}
