import type { CallTelemetry } from './accounting/telemetry.js';
import { CallRecord } from './call-record.js';
import { KeyApiError, RelayError, asRelayError, renderError } from './http/errors.js';
import type { ResponseSink } from './http/sink.js';
import { failure, serveSurface, type PlainResponse, type SurfaceDeps } from './http/surface.js';
import type { RelayRequest } from './pipeline.js';
import { MidStreamFailure, relayCall, type RelayDeps } from './relay.js';
import { RouteMatcher } from './routes/match.js';
import type { ApiFamily } from './routes/table.js';

export interface AppDeps extends RelayDeps {
  /** Every path that is not relayed: health checks and the admin API (lambda/http/surface.ts). */
  readonly surface: SurfaceDeps;
  /** Told every relayed call's record when the app is done with it (metrics and the relay-call log line). */
  readonly telemetry?: Pick<CallTelemetry, 'emit'>;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
}

export type App = (request: RelayRequest, sink: ResponseSink) => Promise<void>;

/** The one HTTP entry both doors (Lambda and the local server) call. */
export function createApp(deps: AppDeps): App {
  return async (request, sink) => {
    const prefix = RouteMatcher.relayPrefixOf(request.rawPath);
    if (!prefix) return sendPlain(sink, await plainRoute(deps, request));
    // One record per relayed call, including those refused before admission and those that fail mid-stream.
    const record = new CallRecord(request, deps.log);
    try {
      await relayWithErrors(deps, request, record.observe(sink), record);
    } finally {
      deps.telemetry?.emit(record);
    }
  };
}

async function relayWithErrors(deps: AppDeps, request: RelayRequest, sink: ResponseSink, record: CallRecord): Promise<void> {
  try {
    await relayCall(deps, request, sink, record);
  } catch (thrown) {
    if (thrown instanceof MidStreamFailure) {
      record.log('warn', 'upstream failed mid-stream', { error: thrown.cause.message });
      // Rethrown so the runtime ends the client's stream abnormally (no clean end-of-stream).
      throw thrown;
    }
    const error = asRelayError(thrown);
    if (!(thrown instanceof RelayError)) {
      record.log('error', 'relay failure', { error: describe(thrown) });
    }
    if (sink.committed || sink.clientGone.aborted) return;
    const rendered = renderError(error, familyOfPath(request.rawPath), request.requestId);
    await sendPlain(sink, rendered);
  }
}

async function plainRoute(deps: AppDeps, request: RelayRequest): Promise<PlainResponse> {
  try {
    return await serveSurface(request, deps.surface);
  } catch (thrown) {
    deps.log('error', 'admin failure', { requestId: request.requestId, error: describe(thrown) });
    return failure(new KeyApiError(500, 'internal_server_error', 'Internal error'));
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
  await sink.write(Buffer.from(response.body));
  await sink.end();
}

function describe(thrown: unknown): string {
  return thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown);
}
