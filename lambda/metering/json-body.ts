/**
 * Meter for single JSON bodies (Converse, ApplyGuardrail, the compatible APIs without streaming).
 *
 * The body is copied as it passes, up to a cap, and parsed once at the end: a usage object can
 * sit anywhere in the document, so there is nothing cheaper to do per chunk than keep the bytes.
 * A body over the cap is given up on (usage not reported) rather than held in memory.
 *
 * A model's answer (`estimates`) that cannot be read whole (cut off when the client left or the
 * upstream failed, or over the cap) is estimated instead: every byte received counts as
 * generated content, JSON punctuation and escapes included, which can only err upward. Bedrock
 * generated the whole answer before sending it, so the bill is for all of it either way; the
 * bytes received are the most the relay can vouch for.
 */
import type { Meter, MeterResult } from '../pipeline.js';
import { UsageState, unreported } from './usage.js';

export const MAX_JSON_BODY_BYTES = 8 * 1024 * 1024;

export type DocumentReader = (doc: unknown, state: UsageState) => void;

export class JsonBodyMeter implements Meter {
  private chunks: Buffer[] = [];
  private size = 0;
  private gaveUp = false;

  constructor(
    private readonly read: DocumentReader,
    private readonly maxBytes: number = MAX_JSON_BODY_BYTES,
    private readonly estimates = false,
  ) {}

  observe(chunk: Uint8Array): void {
    // Counted even once given up: the estimate for an answer over the cap is by its size.
    this.size += chunk.byteLength;
    if (this.gaveUp) return;
    if (this.size > this.maxBytes) {
      this.gaveUp = true;
      this.chunks = [];
      return;
    }
    // A copy: the caller's buffer is on its way to the client and must stay theirs.
    this.chunks.push(Buffer.from(chunk));
  }

  finish(): MeterResult {
    if (this.gaveUp || this.size === 0) return this.cutOff();
    const text = Buffer.concat(this.chunks, this.size).toString('utf8');
    this.chunks = [];
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return this.cutOff();
    }
    const state = new UsageState();
    this.read(doc, state);
    return state.result();
  }

  private cutOff(): MeterResult {
    if (!this.estimates) return unreported();
    const state = new UsageState(true);
    state.addContentBytes(this.size);
    return state.result();
  }
}
