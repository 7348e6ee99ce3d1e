/**
 * The fake Bedrock in its own process, answering ConverseStream for model `bench.frames-<N>` with N
 * contentBlockDelta frames, 1 ms apart so that each reaches the relay as its own chunk (as a
 * model's tokens do; frames written back to back arrive coalesced and would understate the
 * per-frame cost). CPU spent here is not the relay's, so it must not run in the process whose CPU
 * time bench/lambda-memory.ts reads. Prints `FAKE {"url":…}`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { EVENTSTREAM_CONTENT_TYPE, eventFrame, expectedConverseUsage, startFakeBedrock } from '../../test/support/fake-bedrock.js';

const fake = await startFakeBedrock();
const forget = setInterval(() => fake.requests.splice(0, fake.requests.length), 1_000);
fake.override((req) => {
  const deltas = /^bench\.frames-(\d+)$/.exec(req.modelId ?? '')?.[1];
  if (req.operation !== 'ConverseStream' || deltas === undefined) return undefined;
  return {
    kind: 'custom',
    write: async (res) => {
      res.writeHead(200, { 'content-type': EVENTSTREAM_CONTENT_TYPE });
      res.write(eventFrame('messageStart', { role: 'assistant' }));
      for (let i = 0; i < Number(deltas); i++) {
        await sleep(1);
        res.write(eventFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'token ' } }));
      }
      res.write(eventFrame('contentBlockStop', { contentBlockIndex: 0 }));
      res.write(eventFrame('messageStop', { stopReason: 'end_turn' }));
      res.end(eventFrame('metadata', { usage: expectedConverseUsage(req.body), metrics: { latencyMs: 1 } }));
    },
  };
});
process.stdout.write(`FAKE ${JSON.stringify({ url: fake.url })}\n`);
process.once('SIGTERM', () => {
  clearInterval(forget);
  void fake.close().then(() => process.exit(0));
});
