/**
 * Anthropic-shaped answers for fake.override(), on both transports Claude Code reads them from:
 * Bedrock's InvokeModelWithResponseStream (event-stream `chunk` frames with the JSON event in
 * base64 `bytes`, invocation metrics in the last one) and the Messages API's SSE (mantle).
 *
 * The usage figures follow the fake's own arithmetic (expectedAnthropicUsage of the request
 * body), so a test can check what the relay metered for an overridden call exactly as for a
 * built-in one.
 */
import type { AnthropicEvent } from '../../support/fake-bedrock/anthropic.js';
import { chunkFrame, eventStreamReply, expectedInvocationMetrics, sseEvent, sseReply, type Reply } from '../../support/fake-bedrock.js';

// The message's events come from the fake's own builder, so both tell one story.
export { messageEvents, type AnthropicBlock, type AnthropicEvent } from '../../support/fake-bedrock/anthropic.js';

/** InvokeModelWithResponseStream: one `chunk` frame per event, Bedrock's metrics on the last. */
export function invokeStreamReply(events: readonly AnthropicEvent[], body: Uint8Array): Reply {
  const last = events.length - 1;
  return eventStreamReply(
    events.map((event, index) => chunkFrame(index === last ? { ...event, 'amazon-bedrock-invocationMetrics': expectedInvocationMetrics(body) } : event, index)),
    { 'x-amzn-bedrock-content-type': 'application/json' },
  );
}

/** The Messages API's SSE: `event: <type>` and the JSON event per block. */
export function messagesSseReply(events: readonly AnthropicEvent[]): Reply {
  return sseReply(events.map((event) => sseEvent(event, event.type)));
}
