/**
 * The fake Bedrock in a process of its own, for load runs where the load generator must not
 * share an event loop with the fake. Prints `FAKE {"url":…}` when ready; stops on SIGTERM.
 *
 * FAKE_FORWARD_PORT=80 also opens a plain TCP forwarder on that port of 127.0.0.1 (see
 * bench/lib/forwarder.ts for why Portkey needs one).
 */
import { startFakeBedrock } from '../../test/support/fake-bedrock.js';
import { startForwarder } from '../lib/forwarder.js';

const fake = await startFakeBedrock();
// The fake records every request; a load run sends hundreds of thousands, so forget them.
const forget = setInterval(() => fake.requests.splice(0, fake.requests.length), 1_000);
const forwardPort = Number(process.env.FAKE_FORWARD_PORT || 0);
const forwarder = forwardPort ? await startForwarder(forwardPort, fake.port).catch(() => undefined) : undefined;

process.stdout.write(`FAKE ${JSON.stringify({ url: fake.url, forwardUrl: forwarder?.url })}\n`);

process.once('SIGTERM', () => {
  clearInterval(forget);
  void Promise.all([fake.close(), forwarder?.close()]).then(() => process.exit(0));
});
