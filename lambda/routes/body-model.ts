/**
 * The `model` field of a JSON request body (compatible APIs, StartAsyncInvoke's `modelId`),
 * read from a parsed copy: the bytes that go upstream are never re-serialised.
 * Returns undefined when the body is not JSON or names no model as a string.
 */
export function modelFromBody(body: Buffer): string | undefined {
  if (body.byteLength === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const record = parsed as Record<string, unknown>;
  const model = typeof record.model === 'string' ? record.model : record.modelId;
  return typeof model === 'string' && model.trim() !== '' ? model : undefined;
}
