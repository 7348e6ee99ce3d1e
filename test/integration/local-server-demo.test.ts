/**
 * Issue 12, item 7: trying the relay without AWS. `npm run demo` (scripts/demo.ts, a child
 * process) prints an `export …` line and curl commands; pasted into bash as printed, each works,
 * and the key's usage shows the calls. `npm start` without AWS credentials says so at start and
 * points to the demo.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { parseSse } from '../support/fake-bedrock.js';
import { TEST_MASTER_KEY } from '../support/relay-harness.js';
import { waitFor } from './accounting-harness.js';
import { spawnEntry, waitForOutput } from './local-server-process.js';

const run = promisify(execFile);
const TEST = { timeout: 60_000 };
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the printed lines in bash exactly as printed, one after the other, as a paste would. */
async function paste(...lines: string[]): Promise<string> {
  const { stdout } = await run('bash', ['-c', `set -e\n${lines.join('\n')}`], { timeout: 20_000 });
  return stdout;
}

describe('npm run demo', () => {
  it('prints an export line and curls that work as pasted; usage shows on the key', TEST, async () => {
    // Port 0: tests run side by side; a user gets the fixed defaults 4000 and 4001.
    const demo = spawnEntry('scripts/demo.ts', { PORT: '0', RELAY_DEMO_BEDROCK_PORT: '0', POWERTOOLS_LOG_LEVEL: 'ERROR' });
    try {
      await waitForOutput(demo, /Ctrl-C stops both\./);
      const lines = demo.output().split('\n');
      const exportLine = lines.find((line) => line.startsWith('export RELAY_URL='));
      assert.ok(exportLine, demo.output());
      assert.match(exportLine, /^export RELAY_URL=http:\/\/127\.0\.0\.1:\d+ RELAY_KEY=sk-\S+ RELAY_MASTER_KEY=sk-\S+$/);
      const curls = lines.filter((line) => line.startsWith('curl '));
      assert.equal(curls.length, 4, demo.output());
      const [converse, anthropic, openai, keyInfo] = curls as [string, string, string, string];

      const converseAnswer = JSON.parse(await paste(exportLine, converse)) as {
        output: { message: { content: { text: string }[] } };
        usage: { outputTokens: number };
      };
      assert.ok(converseAnswer.output.message.content[0]!.text.length > 0);
      assert.ok(converseAnswer.usage.outputTokens > 0);

      const events = parseSse(await paste(exportLine, anthropic));
      assert.equal(events.at(-1)?.event, 'message_stop');

      const chat = JSON.parse(await paste(exportLine, openai)) as { choices: { message: { content: string } }[] };
      assert.ok(chat.choices[0]!.message.content.length > 0);

      // Usage is written after each call's last byte: read it until all three are there.
      const info = await waitFor(async () => {
        const answer = JSON.parse(await paste(exportLine, keyInfo)) as {
          info?: { key_alias?: string; usage_totals?: { requests: number; output_tokens: number } };
        };
        return answer.info?.usage_totals?.requests === 3 ? answer.info : undefined;
      }, 15_000);
      assert.equal(info.key_alias, 'demo');
      assert.ok(info.usage_totals!.output_tokens > 0);

      demo.child.kill('SIGINT');
      assert.equal(await demo.exited, 0, demo.output());
    } finally {
      if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    }
  });
});

describe('npm start without AWS credentials', () => {
  it('says so at start and points to npm run demo', TEST, async () => {
    const home = mkdtempSync(join(tmpdir(), 'relay-nocreds-'));
    dirs.push(home);
    const relay = spawnEntry('lambda/local/main.ts', {
      // An empty home (no ~/.aws), no AWS variables; instance metadata off, as on a laptop.
      HOME: home,
      AWS_EC2_METADATA_DISABLED: 'true',
      RELAY_MASTER_KEY: TEST_MASTER_KEY,
      RELAY_DATA_DIR: join(home, '.relay'),
      PORT: '0',
    });
    try {
      const match = await waitForOutput(relay, /no AWS credentials found[^\n]*\n(?:[^\n]*\n)*?[^\n]*npm run demo/);
      assert.match(match[0], /calls to Bedrock will answer 503/);
      relay.child.kill('SIGTERM');
      assert.equal(await relay.exited, 0, relay.output());
    } finally {
      if (relay.child.exitCode === null) relay.child.kill('SIGKILL');
    }
  });
});
