/**
 * Meter for single JSON bodies (Converse, ApplyGuardrail, the compatible APIs without streaming).
 *
 * The body is copied as it passes, up to a cap, and parsed once at the end: a usage object can
 * sit anywhere in the document, so there is nothing cheaper to do per chunk than keep the bytes.
 * A body over the cap is given up on (usage not reported) rather than held in memory.
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
  ) {}

  observe(chunk: Uint8Array): void {
    if (this.gaveUp) return;
    this.size += chunk.byteLength;
    if (this.size > this.maxBytes) {
      this.gaveUp = true;
      this.chunks = [];
      return;
    }
    // A copy: the caller's buffer is on its way to the client and must stay theirs.
    this.chunks.push(Buffer.from(chunk));
  }

  finish(): MeterResult {
    if (this.gaveUp || this.size === 0) return unreported();
    const text = Buffer.concat(this.chunks, this.size).toString('utf8');
    this.chunks = [];
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      return unreported();
    }
    const state = new UsageState();
    this.read(doc, state);
    return state.result();
  }
}
