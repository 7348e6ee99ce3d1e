/**
 * Meter for the SSE streams of the compatible APIs (Anthropic Messages, OpenAI Chat Completions
 * and Responses). Only events whose data mentions `"usage"` (or, for the estimate, one of the
 * keys content sits under) are parsed: anything else costs a byte search, not a JSON parse.
 */
import type { Meter, MeterResult } from '../pipeline.js';
import type { DocumentReader } from './json-body.js';
import { SseParser } from './sse.js';
import { isRecord, UsageState } from './usage.js';

/**
 * `"usage"` with its quotes cannot occur inside a JSON string value (there the quotes would be
 * escaped), so events without it cannot carry a usage object.
 */
const USAGE_KEY = Buffer.from('"usage"');
/** Keys generated content sits under in all three families (content_block: Anthropic's tool names). */
const CONTENT_KEYS = [Buffer.from('"delta"'), Buffer.from('"content_block"')];

/** Reads the generated content of one parsed event into the estimate (lambda/metering/content.ts). */
export type ContentReader = (doc: Record<string, unknown>, state: UsageState) => void;

export class SseMeter implements Meter {
  private readonly state: UsageState;
  private readonly parser: SseParser;
  private ended = false;

  /** With `content`, a stream that ends before its usage event is estimated (MeterResult.estimated). */
  constructor(read: DocumentReader, content?: ContentReader) {
    this.state = new UsageState(content !== undefined);
    this.parser = new SseParser((data) => {
      const usage = data.indexOf(USAGE_KEY) !== -1;
      if (!usage && (content === undefined || !CONTENT_KEYS.some((key) => data.indexOf(key) !== -1))) return;
      let doc: unknown;
      try {
        doc = JSON.parse(data.toString('utf8'));
      } catch {
        return;
      }
      if (content !== undefined && isRecord(doc)) content(doc, this.state);
      if (usage) read(doc, this.state);
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
