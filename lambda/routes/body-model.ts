import { parseJsonDocument } from '../http/json-document.js';

/** Operations whose body names the model in `modelId` (a Smithy shape); the compatible APIs use `model`. */
const MODEL_ID_FIELD: ReadonlySet<string> = new Set(['StartAsyncInvoke']);

/**
 * The model a JSON request body names — `model` on the compatible APIs and mantle,
 * StartAsyncInvoke's `modelId` — read from the parsed document (CallContext.document.json): the
 * bytes that go upstream are never re-serialised, and a body naming a member twice never gets
 * here (lambda/http/json-document.ts). Only the field the operation's API reads counts, so a body
 * cannot offer one model to the relay in one field and another to Bedrock in the other.
 * Returns undefined when the body is not a JSON object or names no model as a string.
 */
export function modelFromDocument(json: unknown, operation?: string): string | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return undefined;
  const record = json as Record<string, unknown>;
  const model =
    operation === undefined
      ? typeof record.model === 'string'
        ? record.model
        : record.modelId
      : MODEL_ID_FIELD.has(operation)
        ? record.modelId
        : record.model;
  return typeof model === 'string' && model.trim() !== '' ? model : undefined;
}

/** modelFromDocument on a raw body, with the same strict parser (throws JsonBodyRefused). */
export function modelFromBody(body: Buffer, operation?: string): string | undefined {
  return modelFromDocument(parseJsonDocument(body).json, operation);
}
