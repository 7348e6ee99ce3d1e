/**
 * The floor a relay on this machine cannot go below: a plain TCP pipe in a process of its own
 * (one more hop over loopback, one more event loop, no HTTP parsing), forwarding to the fake at
 * PIPE_TARGET_PORT. Prints `PIPE {"url":…}` when ready; stops on SIGTERM.
 */
import { startForwarder } from '../lib/forwarder.js';

const forwarder = await startForwarder(0, Number(process.env.PIPE_TARGET_PORT));
process.stdout.write(`PIPE ${JSON.stringify({ url: forwarder.url })}\n`);
process.once('SIGTERM', () => void forwarder.close().then(() => process.exit(0)));
