/**
 * Runs the test suite's fake Bedrock (it verifies SigV4 like AWS and answers realistic JSON,
 * event streams and SSE) so a newcomer can try the relay without an AWS account:
 *
 *   npm run fake-bedrock      # prints the environment to start the relay with, then serves
 */
import { fakeBedrockEnv, startFakeBedrock } from '../test/support/fake-bedrock.js';

// One instance accepts both signing names, so it stands in for bedrock-mantle as well.
const fake = await startFakeBedrock({ signingService: ['bedrock', 'bedrock-mantle'], frameDelayMs: 50 });
const env = fakeBedrockEnv(fake);
const assignments = Object.entries(env).map(([name, value]) => `${name}='${value}'`);
process.stdout.write(`fake Bedrock on ${fake.url}; in another terminal:\n\n${assignments.join(' \\\n')} \\\nnpm start\n`);
const stop = () => void fake.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
