import { RelayError, asRelayError, renderError } from './http/errors.js';
import type { ResponseSink } from './http/sink.js';
import type { RelayRequest } from './pipeline.js';
import { MidStreamFailure, relayCall, type RelayDeps } from './relay.js';
import { RouteMatcher } from './routes/match.js';
import type { ApiFamily } from './routes/table.js';

/** A complete (non-streamed) response, as the admin API and health checks produce them. */
export interface PlainResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Buffer;
}

export interface AppDeps extends RelayDeps {
  /** `/key/*` and other admin paths; absent when no key store is configured. */
  readonly admin?: (request: RelayRequest) => Promise<PlainResponse>;
  /** True when the key store answers (readiness). */
  readonly ready: () => Promise<boolean>;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

export type App = (request: RelayRequest, sink: ResponseSink) => Promise<void>;

/** The one HTTP entry both doors (Lambda and the local server) call. */
export function createApp(deps: AppDeps): App {
  return async (request, sink) => {
    const prefix = RouteMatcher.relayPrefixOf(request.rawPath);
    if (prefix) return relayWithErrors(deps, request, sink);
    return sendPlain(sink, await plainRoute(deps, request));
  };
}

async function relayWithErrors(deps: AppDeps, request: RelayRequest, sink: ResponseSink): Promise<void> {
  try {
    await relayCall(deps, request, sink);
  } catch (thrown) {
    if (thrown instanceof MidStreamFailure) {
      deps.log('warn', 'upstream failed mid-stream', { requestId: request.requestId, error: thrown.cause.message });
      // Rethrown so the runtime ends the client's stream abnormally (no clean end-of-stream).
      throw thrown;
    }
    const error = asRelayError(thrown);
    if (!(thrown instanceof RelayError)) {
      deps.log('error', 'relay failure', { requestId: request.requestId, error: describe(thrown) });
    }
    if (sink.committed || sink.clientGone.aborted) return;
    const rendered = renderError(error, familyOfPath(request.rawPath), request.requestId);
    await sendPlain(sink, { status: rendered.status, headers: rendered.headers, body: rendered.body });
  }
}

async function plainRoute(deps: AppDeps, request: RelayRequest): Promise<PlainResponse> {
  const path = request.rawPath;
  try {
    if (path === '/health/liveliness' || path === '/health/liveness') {
      return json(200, { status: 'healthy' });
    }
    if (path === '/health/readiness') {
      const ready = await deps.ready().catch(() => false);
      return ready ? json(200, { status: 'ready', key_store: 'reachable' }) : json(503, { status: 'unavailable', key_store: 'unreachable' });
    }
    if (deps.admin && (path.startsWith('/key/') || path === '/key')) return await deps.admin(request);
    return json(404, { error: { message: `Not found: ${request.method} ${path}`, type: 'not_found_error', param: null, code: '404' } });
  } catch (thrown) {
    deps.log('error', 'admin failure', { requestId: request.requestId, error: describe(thrown) });
    return json(500, { error: { message: 'Internal error', type: 'internal_server_error', param: null, code: '500' } });
  }
}

/**
 * Errors made by the relay speak the dialect of the API the client uses, so its SDK raises a
 * typed exception: the compatible APIs by path, everything else Bedrock's REST-JSON shape.
 */
export function familyOfPath(rawPath: string): ApiFamily {
  const prefix = RouteMatcher.relayPrefixOf(rawPath);
  const rest = prefix ? rawPath.slice(prefix.length) : rawPath;
  if (rest.startsWith('/anthropic/')) return 'anthropic';
  if (rest.startsWith('/openai/')) return 'openai';
  if (prefix === '/bedrock-mantle' || rest.startsWith('/v1/')) return 'openai';
  return 'bedrock';
}

async function sendPlain(sink: ResponseSink, response: PlainResponse): Promise<void> {
  sink.start(response.status, response.headers);
  await sink.write(typeof response.body === 'string' ? Buffer.from(response.body) : response.body);
  await sink.end();
}

function json(status: number, body: unknown): PlainResponse {
  return { status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

function describe(thrown: unknown): string {
  return thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
}
