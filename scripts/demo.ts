/**
 * `npm run demo`: the relay without an AWS account, in one command. Starts the test suite's
 * fake Bedrock (it verifies SigV4 like AWS and answers realistic JSON, event streams and SSE)
 * and the local relay (the very server `npm start` runs, with an in-memory key store) on fixed
 * ports, issues a virtual key, and prints the lines to paste into another terminal.
 *
 *   PORT                       the relay's port (default 4000)
 *   RELAY_DEMO_BEDROCK_PORT    the fake Bedrock's port (default 4001)
 *
 * Nothing is kept: keys and usage live in memory until Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { startLocalServer, type LocalServer } from '../lambda/local/server.js';
import { FAKE_CREDENTIALS, fakeBedrockEnv, startFakeBedrock, type FakeBedrock } from '../test/support/fake-bedrock.js';

const relayPort = Number(process.env.PORT ?? 4000);
const bedrockPort = Number(process.env.RELAY_DEMO_BEDROCK_PORT ?? 4001);
const masterKey = `sk-${randomBytes(32).toString('base64url')}`;

let fake: FakeBedrock | undefined;
let relay: LocalServer | undefined;
try {
  // One instance accepts both signing names, so it stands in for bedrock-mantle as well.
  fake = await startFakeBedrock({ signingService: ['bedrock', 'bedrock-mantle'], frameDelayMs: 50, port: bedrockPort });
  relay = await startLocalServer({
    env: {
      ...fakeBedrockEnv(fake),
      RELAY_MASTER_KEY: masterKey,
      PORT: String(relayPort),
      HOST: '127.0.0.1',
      // The per-call log line (tokens, cost) is worth seeing; EMF metric records are not, here.
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: process.env.POWERTOOLS_LOG_LEVEL ?? 'INFO',
    },
    dataDir: undefined,
    overrides: { credentials: async () => ({ ...FAKE_CREDENTIALS }) },
  });
} catch (error) {
  await fake?.close();
  const code = (error as NodeJS.ErrnoException)?.code;
  if (code === 'EADDRINUSE') {
    process.stderr.write(
      `A port the demo uses is taken (${(error as Error).message}). Is \`npm start\` or another demo running?\n` +
        `Choose others: PORT=4100 RELAY_DEMO_BEDROCK_PORT=4101 npm run demo\n`,
    );
    process.exit(1);
  }
  throw error;
}

const generated = await fetch(`${relay.url}/key/generate`, {
  method: 'POST',
  headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
  body: JSON.stringify({ key_alias: 'demo', max_budget: 1 }),
});
const { key } = (await generated.json()) as { key?: string };
if (!generated.ok || !key) throw new Error(`could not issue the demo key (${generated.status})`);

const json = (value: unknown) => `'${JSON.stringify(value)}'`;
process.stdout.write(
  [
    `bedrock-relay demo: the relay on ${relay.url}, in front of a fake Bedrock on ${fake.url}`,
    '(canned answers, SigV4 checked as AWS does; keys and usage in memory until Ctrl-C).',
    '',
    'Paste into another terminal:',
    '',
    `export RELAY_URL=${relay.url} RELAY_KEY=${key} RELAY_MASTER_KEY=${masterKey}`,
    '',
    '# Converse, the native Bedrock API',
    `curl -s "$RELAY_URL/bedrock/model/us.amazon.nova-micro-v1:0/converse" -H "Authorization: Bearer $RELAY_KEY" -H 'content-type: application/json' -d ${json({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }] })}`,
    '# Anthropic Messages API, streamed',
    `curl -sN "$RELAY_URL/bedrock/anthropic/v1/messages" -H "x-api-key: $RELAY_KEY" -H 'content-type: application/json' -d ${json({ model: 'global.anthropic.claude-haiku-4-5-20251001-v1:0', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Hello' }] })}`,
    '# OpenAI chat completions',
    `curl -s "$RELAY_URL/bedrock/openai/v1/chat/completions" -H "Authorization: Bearer $RELAY_KEY" -H 'content-type: application/json' -d ${json({ model: 'openai.gpt-oss-120b-1:0', messages: [{ role: 'user', content: 'Hello' }] })}`,
    '# What the key has used and spent (admin API, master key)',
    `curl -s "$RELAY_URL/key/info?key=$RELAY_KEY" -H "Authorization: Bearer $RELAY_MASTER_KEY"`,
    '',
    'Ctrl-C stops both.',
    '',
  ].join('\n'),
);

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) process.exit(signal === 'SIGINT' ? 130 : 143);
  stopping = true;
  void relay
    .stop(5_000)
    .then(() => fake.close())
    .then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
