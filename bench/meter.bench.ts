/**
 * Meter overhead per chunk: how long observe() takes on the relay's hot path, per family, with
 * realistic chunks (one event-stream frame or one SSE event per chunk, as Bedrock sends them),
 * plus the include-usage stream filter. Run directly (`node --import tsx bench/meter.bench.ts`)
 * or through the bench runner, which imports runMeterBench().
 */
import { pathToFileURL } from 'node:url';
import { UsageChunkFilter } from '../lambda/metering/include-usage.js';
import { selectMeter } from '../lambda/metering/index.js';
import { anthropicSse, chatSse, converseStreamFrames, invokeStreamFrames, route, utf8 } from '../test/unit/meter-fixtures.js';

interface Case {
  readonly name: string;
  readonly chunks: readonly Uint8Array[];
  /** Processes the chunks once, as the relay would for one response. */
  readonly once: (chunks: readonly Uint8Array[]) => void;
}

const ES = { 'content-type': 'application/vnd.amazon.eventstream' };
const SSE = { 'content-type': 'text/event-stream' };
const TOKENS = 2000;

function sseEvents(text: string): Uint8Array[] {
  return text.split(/(?<=\n\n)/).map(utf8);
}

function meterCase(name: string, operation: string, headers: Record<string, string>, chunks: Uint8Array[]): Case {
  return {
    name,
    chunks,
    once: (cs) => {
      const meter = selectMeter(route(operation), 200, headers);
      for (const chunk of cs) meter.observe(chunk);
      if (!meter.finish().reported) throw new Error(`${name}: usage not read`);
    },
  };
}

function cases(): Case[] {
  const converse = converseStreamFrames({ inputTokens: 900, outputTokens: TOKENS }, TOKENS);
  return [
    // References: touching every chunk, and copying it (the least a meter reading a copy could cost).
    {
      name: 'reference copy per chunk',
      chunks: converse,
      once: (cs) => {
        for (const c of cs) Buffer.from(c);
      },
    },
    {
      name: 'baseline (no meter)',
      chunks: converse,
      once: (cs) => {
        let n = 0;
        for (const c of cs) n += c.byteLength;
        if (n < 0) throw new Error();
      },
    },
    meterCase('ConverseStream', 'ConverseStream', ES, converse),
    meterCase(
      'InvokeModelWithResponseStream',
      'InvokeModelWithResponseStream',
      ES,
      invokeStreamFrames({ inputTokenCount: 900, outputTokenCount: TOKENS }, TOKENS),
    ),
    meterCase(
      'Anthropic SSE',
      'AnthropicMessages',
      SSE,
      sseEvents(anthropicSse().replace(/(event: content_block_delta[^]*?\n\n)/, (m) => m.repeat(TOKENS / 8))),
    ),
    meterCase('Chat Completions SSE', 'OpenAIChatCompletions', SSE, sseEvents(chatSse(true, '\n', TOKENS))),
    filterCase('include-usage filter', sseEvents(chatSse(true, '\n', TOKENS))),
    filterCase('include-usage filter, "usage": null chunks', sseEvents(chatSse(true, '\n', TOKENS, true))),
  ];
}

function filterCase(name: string, chunks: Uint8Array[]): Case {
  return {
    name,
    chunks,
    once: (cs) => {
      const filter = new UsageChunkFilter();
      for (const chunk of cs) filter.transform(chunk);
      filter.flush();
    },
  };
}

function measure(c: Case, minMs: number): { nsPerChunk: number; mbPerS: number } {
  for (let i = 0; i < 3; i++) c.once(c.chunks); // warm up the JIT
  const bytes = c.chunks.reduce((n, chunk) => n + chunk.byteLength, 0);
  let runs = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < BigInt(minMs) * 1_000_000n) {
    c.once(c.chunks);
    runs++;
    elapsed = process.hrtime.bigint() - start;
  }
  const ns = Number(elapsed);
  return { nsPerChunk: ns / (runs * c.chunks.length), mbPerS: (bytes * runs) / (ns / 1e9) / 1e6 };
}

/** ns per chunk and MB/s for each case; keys like `meter.ConverseStream.ns_per_chunk`. */
export async function runMeterBench(options: { minMsPerCase?: number } = {}): Promise<Record<string, number>> {
  const results: Record<string, number> = {};
  for (const c of cases()) {
    const { nsPerChunk, mbPerS } = measure(c, options.minMsPerCase ?? 500);
    results[`meter.${c.name}.ns_per_chunk`] = Math.round(nsPerChunk);
    results[`meter.${c.name}.mb_per_s`] = Math.round(mbPerS);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const results = await runMeterBench();
  const rows = Object.entries(results).map(([key, value]) => `${key.padEnd(60)} ${String(value).padStart(10)}`);
  console.log(rows.join('\n'));
}
