import type { CallRecord } from './call-record.js';
import { SIGNING_NAMES, type RelayConfig } from './config.js';
import { RelayError, asRelayError } from './http/errors.js';
import type { ResponseSink } from './http/sink.js';
import { credentialFrom, type Authenticator } from './auth/principal.js';
import type { AdmissionControl, CallContext, CallOutcome, Meter, MeterFactory, RelayRequest } from './pipeline.js';
import { encodeQuery, type MatchedRoute, type RouteMatcher } from './routes/match.js';
import type { RequestSigner } from './upstream/signer.js';
import type { UpstreamResponse, UpstreamSender } from './upstream/client.js';
import { forwardableRequestHeaders, passThroughResponseHeaders } from './upstream/headers.js';
import type { JsonDocument } from './http/json-document.js';
import { modelFromDocument } from './routes/body-model.js';
import { readRequestDocument } from './routes/request-document.js';

/** A body rewrite a route may need before going upstream (see lambda/metering/include-usage.ts). */
export interface PreparedBody {
  readonly body: Buffer;
  /** Undoes, on the client's copy of the stream, what the rewrite added. */
  readonly responseFilter?: { transform(chunk: Uint8Array): Uint8Array; flush(): Uint8Array };
}

export interface RelayDeps {
  readonly config: RelayConfig;
  readonly matcher: RouteMatcher;
  readonly authenticate: Authenticator;
  readonly admission: AdmissionControl;
  readonly sign: RequestSigner;
  readonly send: UpstreamSender;
  readonly meter?: MeterFactory;
  /** `document` is the call's parsed body (CallContext.document): decide from it, not from the bytes. */
  readonly prepareBody?: (match: MatchedRoute, body: Buffer, document?: JsonDocument) => PreparedBody;
  /** Rewrites discovery answers to what the principal may see (issue 8); bytes pass through otherwise. */
  readonly filterDiscovery?: (call: CallContext, status: number, body: Buffer) => Buffer;
}

/**
 * One pass-through call: route → authenticate → admit → sign → stream back → settle.
 * Errors made before the response starts are answered in the client's API dialect by the
 * caller (it knows the family from the route); errors after it has started end the stream
 * abnormally so the client's SDK raises instead of seeing a truncated, complete-looking body.
 */
export async function relayCall(deps: RelayDeps, request: RelayRequest, sink: ResponseSink, record: CallRecord): Promise<void> {
  const match = deps.matcher.match(request.method, request.rawPath, request.rawQueryString);
  if (match.route.unsupported) throw new RelayError(400, 'ValidationException', match.route.unsupported);

  // The whole request goes along: a SigV4-signed call is verified over its wire form.
  const principal = await deps.authenticate(credentialFrom(request.headers), request);
  // Parsed once, here; everything after reads this document (a body parsers could read
  // differently is refused with 400 before policy sees it).
  const document = readRequestDocument(match, request.body);
  const model = modelOf(match, document);
  const call: CallContext = { request, match, principal, model, document, record };
  const admission = await deps.admission.admit(call);

  record.goingUpstream();
  let outcome: CallOutcome | undefined;
  try {
    outcome = await forward(deps, call, sink, record);
  } catch (error) {
    outcome = error instanceof MidStreamFailure ? error.outcome : record.unanswered(error instanceof RelayError ? error.status : 500, sink.clientGone.aborted);
    throw error;
  } finally {
    record.outcome = outcome;
    // The invocation must not end before usage is durable; settle() retries and, failing
    // that, logs a replayable record (lambda/accounting/ledger.ts).
    if (outcome) await admission.settle(outcome);
  }
}

function modelOf(match: MatchedRoute, document: JsonDocument): string | undefined {
  const source = match.route.model;
  if (!source) return undefined;
  if (source.from === 'path') return match.params[source.label];
  return modelFromDocument(document.json, match.route.operation);
}

async function forward(deps: RelayDeps, call: CallContext, sink: ResponseSink, record: CallRecord): Promise<CallOutcome> {
  const { match, request } = call;
  const { route } = match;
  const prepared = deps.prepareBody?.(match, request.body, call.document) ?? { body: request.body };
  const base = deps.config.endpoints[route.service];
  const headers = forwardableRequestHeaders(request.headers);
  const signedHeaders = await deps
    .sign(
      { method: route.method, url: base, path: joinPath(base, match.upstreamPath), query: match.query, headers, body: prepared.body },
      SIGNING_NAMES[route.service],
    )
    .catch((error: unknown) => {
      // No credentials (none configured locally, or the role's could not be fetched): fail
      // closed with a message an operator can act on; nothing goes upstream unsigned.
      throw new RelayError(503, 'ServiceUnavailableException', `The relay has no AWS credentials to sign with (${(error as Error).name}).`);
    });

  const upstreamAbort = new AbortController();
  const onClientGone = () => upstreamAbort.abort();
  sink.clientGone.addEventListener('abort', onClientGone, { once: true });
  try {
    // The path is already encoded exactly as it was signed; URL keeps percent-escapes as given.
    const query = encodeQuery(match.query);
    const target = new URL(`${base.origin}${joinPath(base, match.upstreamPath)}${query ? `?${query}` : ''}`);
    const response = await deps.send({
      method: route.method,
      url: target,
      headers: signedHeaders,
      body: prepared.body,
      signal: upstreamAbort.signal,
    });
    record.upstreamAnswered();
    const responseHeaders = passThroughResponseHeaders(response.headers);
    const answer: UpstreamAnswer = {
      response,
      headers: responseHeaders,
      meter: deps.meter?.(call, { status: response.status, headers: responseHeaders }),
    };
    if (route.discovery && deps.filterDiscovery) return await relayFiltered(deps, call, answer, sink, record);
    return await relayStream(answer, prepared, sink, record);
  } finally {
    sink.clientGone.removeEventListener('abort', onClientGone);
  }
}

/** Bedrock's answer as it is relayed: status and body, the headers passed on, the meter reading it. */
interface UpstreamAnswer {
  readonly response: UpstreamResponse;
  readonly headers: Record<string, string>;
  readonly meter?: Meter;
}

async function relayStream({ response, headers, meter }: UpstreamAnswer, prepared: PreparedBody, sink: ResponseSink, record: CallRecord): Promise<CallOutcome> {
  sink.start(response.status, headers);
  // The filter undoes the include-usage rewrite on the SSE stream only; anything else
  // (errors, a JSON answer) passes untouched.
  const isSse = /^text\/event-stream/i.test(headers['content-type'] ?? '');
  const filter = response.status < 300 && isSse ? prepared.responseFilter : undefined;
  const emit = async (chunk: Uint8Array) => {
    if (chunk.byteLength === 0) return;
    record.sending(chunk.byteLength);
    await sink.write(chunk);
  };
  try {
    for await (const chunk of response.body) {
      // The write starts before the meter looks at the chunk, so metering never delays a byte.
      const written = emit(filter ? filter.transform(chunk) : chunk);
      meter?.observe(chunk);
      await written;
    }
    if (filter) await emit(filter.flush());
  } catch (error) {
    const aborted = sink.clientGone.aborted;
    const result = record.answered(response.status, meter?.finish(), { clientAborted: aborted, upstreamFailed: !aborted });
    // Client gone: nothing to tell it. Nothing sent yet: the caller answers a typed error.
    // Otherwise end the client's stream abnormally, never with a clean, truncated end.
    if (aborted) return result;
    if (!sink.committed) throw asRelayError(error);
    throw new MidStreamFailure(asRelayError(error), result);
  }
  await sink.end();
  return record.answered(response.status, meter?.finish(), { clientAborted: false, upstreamFailed: false });
}

async function relayFiltered(
  deps: RelayDeps,
  call: CallContext,
  { response, headers, meter }: UpstreamAnswer,
  sink: ResponseSink,
  record: CallRecord,
): Promise<CallOutcome> {
  const chunks: Buffer[] = [];
  for await (const chunk of response.body) {
    meter?.observe(chunk);
    chunks.push(chunk);
  }
  const body = deps.filterDiscovery!(call, response.status, Buffer.concat(chunks));
  sink.start(response.status, headers);
  record.sending(body.byteLength);
  await sink.write(body);
  await sink.end();
  return record.answered(response.status, meter?.finish(), { clientAborted: false, upstreamFailed: false });
}

/** The upstream broke after the response started; carries what was metered until then. */
export class MidStreamFailure extends Error {
  constructor(
    override readonly cause: RelayError,
    readonly outcome: CallOutcome,
  ) {
    super(`upstream failed mid-stream: ${cause.message}`);
  }
}

/** A base URL may carry a path prefix (e.g. a proxy); the route's path is appended to it. */
function joinPath(base: URL, path: string): string {
  const prefix = base.pathname.replace(/\/+$/, '');
  return `${prefix}${path}`;
}
