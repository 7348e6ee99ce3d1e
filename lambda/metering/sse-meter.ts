/**
 * Meter for the SSE streams of the compatible APIs (Anthropic Messages, OpenAI Chat Completions
 * and Responses). Only events whose data mentions `"usage"` are parsed: the many token deltas
 * in between cost a byte search each, not a JSON parse.
 */
import type { Meter, MeterResult } from '../pipeline.js';
import type { DocumentReader } from './json-body.js';
import { SseParser } from './sse.js';
import { UsageState } from './usage.js';

/**
 * `"usage"` with its quotes cannot occur inside a JSON string value (there the quotes would be
 * escaped), so events without it cannot carry a usage object.
 */
const USAGE_KEY = Buffer.from('"usage"');

export class SseMeter implements Meter {
  private readonly state = new UsageState();
  private readonly parser: SseParser;
  private ended = false;

  constructor(read: DocumentReader) {
    this.parser = new SseParser((data) => {
      if (data.indexOf(USAGE_KEY) === -1) return;
      let doc: unknown;
      try {
        doc = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      read(doc, this.state);
    });
  }

  observe(chunk: Uint8Array): void {
    if (!this.ended) this.parser.push(chunk);
  }

  finish(): MeterResult {
    if (!this.ended) this.parser.end();
    this.ended = true;
    return this.state.result();
  }
}
