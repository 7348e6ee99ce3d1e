import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { RelayError } from '../http/errors.js';

export interface UpstreamRequest {
  readonly method: string;
  readonly url: URL; // full URL: base + path + query
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** Aborts the call (client went away, or the relay gave up). */
  readonly signal: AbortSignal;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as it arrives; errors if the connection breaks or goes idle too long. */
  readonly body: AsyncIterable<Buffer>;
}

export type UpstreamSender = (request: UpstreamRequest) => Promise<UpstreamResponse>;

/**
 * Connections to Bedrock are kept alive across requests and across invocations of a warm
 * Lambda environment (the agents live at module scope of whoever creates the sender once).
 * No global HTTP client state is touched.
 */
export function createUpstreamSender(options: { timeoutMs: number; maxSockets?: number }): UpstreamSender {
  const agentOptions = { keepAlive: true, keepAliveMsecs: 10_000, maxSockets: options.maxSockets ?? 256, scheduling: 'lifo' as const };
  const httpAgent = new http.Agent(agentOptions);
  const httpsAgent = new https.Agent(agentOptions);

  return (request) =>
    new Promise<UpstreamResponse>((resolve, reject) => {
      const isHttps = request.url.protocol === 'https:';
      const send = isHttps ? https.request : http.request;
      const req = send(request.url, {
        method: request.method,
        headers: { ...request.headers, 'content-length': String(request.body.byteLength) },
        agent: isHttps ? httpsAgent : httpAgent,
        signal: request.signal,
        // Idle timeout on the socket: covers a stalled connect, a stalled header wait and a
        // stall between body chunks alike.
        timeout: options.timeoutMs,
      });
      req.on('timeout', () => req.destroy(new UpstreamTimeoutError()));
      req.on('error', (error) => reject(toRelayError(error, request.signal)));
      req.on('response', (res: IncomingMessage) => {
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: iterateBody(res, req, request.signal) });
      });
      req.end(request.body);
    });
}

class UpstreamTimeoutError extends Error {
  constructor() {
    super('Bedrock did not answer in time');
  }
}

async function* iterateBody(res: IncomingMessage, req: http.ClientRequest, signal: AbortSignal): AsyncIterable<Buffer> {
  // A stream that ends without error but was cut short (`aborted`/`!complete`) must not look
  // complete to the client: make it an error so the relay can end the client's stream badly.
  let failure: Error | undefined;
  req.on('error', (error) => {
    failure = error;
  });
  try {
    for await (const chunk of res) yield chunk as Buffer;
  } catch (error) {
    throw toRelayError(failure ?? error, signal);
  }
  if (failure || !res.complete) throw toRelayError(failure ?? new Error('upstream response was cut short'), signal);
}

function toRelayError(error: unknown, signal: AbortSignal): RelayError {
  if (signal.aborted) return new RelayError(499 as number, 'ValidationException', 'The client closed the request.');
  if (error instanceof UpstreamTimeoutError) {
    return new RelayError(504, 'ModelTimeoutException', 'Bedrock did not answer within the relay upstream timeout.');
  }
  return new RelayError(502, 'ServiceUnavailableException', 'The relay could not reach Bedrock. Try again.');
}
