/**
 * Which headers cross the relay. Requests use an allow-list: the client's credentials
 * (Authorization, x-api-key), SigV4 headers, host and hop-by-hop headers never reach Bedrock.
 * Responses use a deny-list: everything Bedrock says reaches the client except hop-by-hop
 * framing, which the Function URL redoes.
 */

const FORWARDED_REQUEST_HEADERS = new Set(['content-type', 'accept', 'content-encoding']);
// Bedrock's own request headers (guardrails, trace, performance config, service tier, agent
// session ids) and the headers the compatible APIs define.
const FORWARDED_REQUEST_PREFIXES = ['x-amzn-bedrock-', 'x-amz-bedrock-', 'anthropic-', 'openai-'];

export function forwardableRequestHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (FORWARDED_REQUEST_HEADERS.has(lower) || FORWARDED_REQUEST_PREFIXES.some((p) => lower.startsWith(p))) {
      // CR/LF can't arrive through a parsed HTTP request, but a value must never split a header.
      if (!/[\r\n\0]/.test(value)) out[lower] = value;
    }
  }
  return out;
}

const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'set-cookie',
]);

export function passThroughResponseHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_RESPONSE_HEADERS.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
