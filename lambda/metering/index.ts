/**
 * The meter factory the relay core calls once per upstream response.
 *
 * The meter is chosen by the route's operation and the response: non-2xx answers carry no usage
 * (the call is counted as a request only), InvokeModel reports in headers, the event-stream
 * operations in frames, the compatible APIs in a JSON body or an SSE stream depending on the
 * content-type Bedrock answered with. Operations that report no tokens (CountTokens, Retrieve,
 * Rerank, sessions, discovery…) get a meter that reads nothing: they are counted as requests.
 *
 * The meters of model answers (Converse, ConverseStream, InvokeModelWithResponseStream, the
 * compatible APIs) estimate when the answer ends before its usage report, so a client that
 * leaves early is never free (MeterResult.estimated, lambda/metering/usage.ts). InvokeModel's
 * usage is in its headers, so it is known before the first body byte. The agent operations are
 * not estimated: their usage is optional trace data with no end marker, and their answer is not
 * the model's output. Estimating, not reading the rest of the upstream for the exact count, is
 * the cheaper choice for the account owner: Bedrock generates and bills until the connection
 * closes, so reading on would pay for the whole answer; the relay aborts instead (relay.ts).
 *
 * Whatever is chosen is wrapped so that no exception ever leaves observe() or finish(): a
 * malformed response means "usage not reported", never a broken relay.
 */
import type { Meter, MeterFactory, MeterResult } from '../pipeline.js';
import type { RouteSpec } from '../routes/table.js';
import { EventStreamMeter } from './eventstream.js';
import { agentTraceReader, converseStreamReader, invokeStreamReader } from './eventstream-readers.js';
import { anthropicDocument, chatCompletionDocument, converseUsage, guardrailUsage, responsesDocument, responsesEvent } from './families.js';
import { HeaderMeter, headerValue } from './headers.js';
import { anthropicContent, chatContent, responsesContent } from './content.js';
import { JsonBodyMeter, MAX_JSON_BODY_BYTES } from './json-body.js';
import { SseMeter } from './sse-meter.js';
import { unreported } from './usage.js';

export { prepareRequestBody, type ChunkFilter, type PreparedBody, type RouteLike } from './include-usage.js';

/** The API a compatible-API route speaks, from its path (mantle and runtime share the shapes). */
export type CompatibleApi = 'anthropic-messages' | 'chat-completions' | 'responses';

export function compatibleApi(route: Pick<RouteSpec, 'family' | 'template'>): CompatibleApi | undefined {
  if (route.family === 'anthropic' && route.template.endsWith('/messages')) return 'anthropic-messages';
  if (route.family === 'openai' && route.template.endsWith('/chat/completions')) return 'chat-completions';
  if (route.family === 'openai' && route.template.endsWith('/responses')) return 'responses';
  return undefined;
}

const AGENT_TRACE_OPERATIONS: ReadonlySet<string> = new Set(['InvokeAgent', 'InvokeInlineAgent', 'InvokeFlow']);

export const createMeter: MeterFactory = (call, response) => {
  try {
    return new GuardedMeter(selectMeter(call.match.route, response.status, response.headers));
  } catch {
    return new GuardedMeter(REQUEST_ONLY);
  }
};

/** Exposed for tests and the benchmark, which have a route but no whole CallContext. */
export function selectMeter(
  route: Pick<RouteSpec, 'operation' | 'family' | 'template' | 'stream'>,
  status: number,
  headers: Readonly<Record<string, string>>,
): Meter {
  if (status < 200 || status > 299) return REQUEST_ONLY;
  switch (route.operation) {
    case 'Converse':
      return new JsonBodyMeter(converseUsage, MAX_JSON_BODY_BYTES, true);
    case 'ConverseStream':
      return new EventStreamMeter(converseStreamReader());
    case 'InvokeModel':
      return new HeaderMeter(headers);
    case 'InvokeModelWithResponseStream':
      return new EventStreamMeter(invokeStreamReader());
    case 'ApplyGuardrail':
      return new JsonBodyMeter(guardrailUsage);
  }
  if (AGENT_TRACE_OPERATIONS.has(route.operation)) return new EventStreamMeter(agentTraceReader());
  const api = compatibleApi(route);
  if (api === undefined) return REQUEST_ONLY;
  const sse = (headerValue(headers, 'content-type') ?? '').toLowerCase().includes('text/event-stream');
  switch (api) {
    case 'anthropic-messages':
      return sse ? new SseMeter(anthropicDocument, anthropicContent) : new JsonBodyMeter(anthropicDocument, MAX_JSON_BODY_BYTES, true);
    case 'chat-completions':
      return sse ? new SseMeter(chatCompletionDocument, chatContent) : new JsonBodyMeter(chatCompletionDocument, MAX_JSON_BODY_BYTES, true);
    case 'responses':
      return sse ? new SseMeter(responsesEvent, responsesContent) : new JsonBodyMeter(responsesDocument, MAX_JSON_BODY_BYTES, true);
  }
}

/** Reads nothing: the call counts as a request, with no tokens. */
const REQUEST_ONLY: Meter = {
  observe: () => undefined,
  finish: () => unreported(),
};

class GuardedMeter implements Meter {
  private failed = false;
  private done: MeterResult | undefined;

  constructor(private readonly inner: Meter) {}

  observe(chunk: Uint8Array): void {
    if (this.failed || this.done) return;
    try {
      this.inner.observe(chunk);
    } catch {
      // A defect in a reader must not reach the relay; what was read so far still counts.
      this.failed = true;
    }
  }

  finish(): MeterResult {
    if (this.done) return this.done;
    try {
      this.done = this.inner.finish();
    } catch {
      this.done = unreported();
    }
    return this.done;
  }
}
