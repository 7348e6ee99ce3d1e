/**
 * Claude Code itself, end to end: the pinned release of `@anthropic-ai/claude-code` in print
 * mode, with a virtual key, against the local relay and fake Bedrock hosts that verify SigV4
 * with the signing name of each host, in Bedrock mode (bedrock-runtime and the control plane)
 * and in Mantle mode (bedrock-mantle).
 *
 * It checks what a team relies on: the README's env blocks work as written; Claude Code's own
 * calls (discovery, model probes, the streamed turn, a tool-use round trip) go through the relay
 * with the key as a bearer token and reach Bedrock signed by the relay, never carrying the key;
 * streamed answers keep their content-type (a proxy that changes it makes Claude Code re-run
 * every turn without streaming); every call is metered exactly, in the per-call record and in
 * the key's ledger; a key limited to one model works once Claude Code is told that model.
 *
 * Claude Code is installed once into ~/.cache (see support/claude-code.ts), never into the
 * project. The suite is skipped, with the reason, only when npm cannot reach the registry.
 * Run: node --import tsx --test test/e2e/claude-code.test.ts   (or .ci/claude-code-e2e.sh)
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { FAKE_REPLY_CHUNKS, fakeTokenCounts, type FakeBedrock, type Reply } from '../support/fake-bedrock.js';
import { EXAMPLES_DIR } from '../support/recipes.js';
import { invokeStreamReply, messageEvents, messagesSseReply, type AnthropicBlock } from './support/anthropic-replies.js';
import { CLAUDE_CODE_VERSION, ensureClaudeCode, runClaude, runClaudeRecipe, type ClaudeCommand, type ClaudeRun } from './support/claude-code.js';
import { startNetworkTrap, type NetworkTrap } from './support/network-trap.js';
import { startRecordedRelay, type RecordedRelay, type RelayExchange } from './support/recorded-relay.js';

const REPLY = FAKE_REPLY_CHUNKS.join('');

const availability = await ensureClaudeCode();
if (!availability.ok) console.error(`Claude Code end-to-end tests skipped: ${availability.reason}`);
else if (availability.command.installed) console.error(`installed Claude Code ${CLAUDE_CODE_VERSION} into ${availability.command.installDir}`);
const skip = availability.ok ? false : availability.reason;
const claude = (): ClaudeCommand => {
  assert.ok(availability.ok);
  return availability.command;
};

interface Mode {
  readonly name: 'bedrock' | 'mantle';
  readonly recipe: string;
  /** The variables the README's env block sets, for runs that call `claude` directly. */
  readonly env: (relayUrl: string, key: string) => Record<string, string>;
  readonly prefix: string;
  readonly signingName: string;
  readonly fake: (relay: RecordedRelay) => FakeBedrock;
  readonly otherFake: (relay: RecordedRelay) => FakeBedrock;
  /** The upstream operation that carries a conversation turn. */
  readonly turnOperation: string;
  readonly isTurn: (exchange: RelayExchange) => boolean;
  readonly streamContentType: RegExp;
  /** The model of an upstream turn request, as the fake saw it. */
  readonly modelOf: (params: Readonly<Record<string, string>>, body: Buffer) => string;
  readonly streamReply: (events: ReturnType<typeof messageEvents>, body: Buffer) => Reply;
}

const MODES: readonly Mode[] = [
  {
    name: 'bedrock',
    recipe: 'claude-code-bedrock.sh',
    env: (url, key) => ({ CLAUDE_CODE_USE_BEDROCK: '1', ANTHROPIC_BEDROCK_BASE_URL: `${url}/bedrock`, AWS_BEARER_TOKEN_BEDROCK: key }),
    prefix: '/bedrock/',
    signingName: 'bedrock',
    fake: (relay) => relay.runtime,
    otherFake: (relay) => relay.mantle,
    turnOperation: 'InvokeModelWithResponseStream',
    isTurn: (x) => x.request.method === 'POST' && /^\/bedrock\/model\/[^/]+\/invoke-with-response-stream$/.test(x.request.rawPath),
    streamContentType: /^application\/vnd\.amazon\.eventstream/,
    modelOf: (params) => params['modelId'] ?? '',
    streamReply: (events, body) => invokeStreamReply(events, body),
  },
  {
    name: 'mantle',
    recipe: 'claude-code-mantle.sh',
    env: (url, key) => ({ CLAUDE_CODE_USE_MANTLE: '1', ANTHROPIC_BEDROCK_MANTLE_BASE_URL: `${url}/bedrock-mantle/anthropic`, AWS_BEARER_TOKEN_BEDROCK: key }),
    prefix: '/bedrock-mantle/',
    signingName: 'bedrock-mantle',
    fake: (relay) => relay.mantle,
    otherFake: (relay) => relay.runtime,
    turnOperation: 'MantleAnthropicMessages',
    isTurn: (x) => x.request.method === 'POST' && x.request.rawPath === '/bedrock-mantle/anthropic/v1/messages' && jsonOf(x.request.body)['stream'] === true,
    streamContentType: /^text\/event-stream/,
    modelOf: (_params, body) => String(jsonOf(body)['model'] ?? ''),
    streamReply: (events) => messagesSseReply(events),
  },
];

/** Operations whose answers carry token usage, i.e. every model call Claude Code makes here. */
const MODEL_OPERATIONS = new Set(['InvokeModel', 'InvokeModelWithResponseStream', 'MantleAnthropicMessages']);

let relay: RecordedRelay;
let trap: NetworkTrap;

/** What keeps a run hermetic: no telemetry, updates or error reports, and no way out but the relay. */
function hermeticEnv(): Record<string, string> {
  return {
    DISABLE_TELEMETRY: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_ERROR_REPORTING: '1',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    ...trap.proxyEnv(),
  };
}

describe(`Claude Code ${CLAUDE_CODE_VERSION} through the relay`, { skip }, () => {
  before(async () => {
    relay = await startRecordedRelay();
    trap = await startNetworkTrap();
  });
  after(async () => {
    await relay?.close();
    await trap?.close();
  });
  beforeEach(() => {
    relay.reset();
    trap.attempts.length = 0;
  });

  for (const mode of MODES) {
    describe(`${mode.name} mode`, () => {
      it(`the README recipe (docs/examples/${mode.recipe}) runs as written with a virtual key`, async (t) => {
        const alias = `claude-code-${mode.name}-recipe`;
        const key = await relay.newKey({ key_alias: alias });
        const run = await runClaudeRecipe(claude(), join(EXAMPLES_DIR, mode.recipe), {
          env: { RELAY_URL: relay.url, RELAY_KEY: key, ...hermeticEnv() },
        });
        t.diagnostic(`claude ran ${run.ms} ms; ${relay.exchanges.length} calls to the relay`);
        assertSucceeded(run);
        assert.equal(run.stdout.trim(), REPLY, explain(run));

        const turns = relay.exchanges.filter(mode.isTurn);
        assert.equal(turns.length, 1, `one streamed turn for one prompt (a second, unstreamed one means the stream looked wrong)\n${describeExchanges()}`);
        assert.match(turns[0]!.request.body.toString('utf8'), /Say hi/);
        if (mode.name === 'bedrock') {
          const discovery = relay.exchanges.find((x) => x.request.rawPath === '/bedrock/inference-profiles');
          assert.ok(discovery, `Claude Code lists the inference profiles through the relay\n${describeExchanges()}`);
          assert.equal(discovery.request.method, 'GET');
          assert.equal(discovery.request.rawQueryString, 'type=SYSTEM_DEFINED');
          assert.equal(discovery.status, 200);
        }
        await assertThroughRelay(mode, key, alias);
      });

      it('a tool-use round trip (print mode, JSON output): Claude Code runs a tool and sends its result back through the relay', async (t) => {
        const alias = `claude-code-${mode.name}-tools`;
        const key = await relay.newKey({ key_alias: alias });
        // realpath: on some systems tmpdir() is a symlink, and Claude Code compares resolved paths.
        const workdir = realpathSync(mkdtempSync(join(tmpdir(), 'relay-e2e-claude-work-')));
        const secret = `relay-e2e-${randomUUID()}`;
        writeFileSync(join(workdir, 'relay-note.txt'), `${secret}\n`);
        const prompt = 'Read relay-note.txt and tell me what it says.';
        const fake = mode.fake(relay);
        fake.override((req) => {
          if (req.operation !== mode.turnOperation) return undefined;
          const text = req.body.toString('utf8');
          if (!text.includes(prompt) || (mode.name === 'mantle' && jsonOf(req.body)['stream'] !== true)) return undefined;
          const model = mode.modelOf(req.params, req.body);
          // The answer to the tool's result quotes what only the file held: proof that the
          // result went from Claude Code through the relay to Bedrock.
          const blocks: AnthropicBlock[] =
            text.includes('"tool_result"') && text.includes(secret)
              ? [{ type: 'text', text: `The note says ${secret}.` }]
              : [
                  { type: 'text', text: 'Reading the note.' },
                  { type: 'tool_use', name: 'Read', input: { file_path: join(workdir, 'relay-note.txt') } },
                ];
          return mode.streamReply(messageEvents(model, req.body, blocks), req.body);
        });
        try {
          const run = await runClaude(claude(), ['-p', prompt, '--output-format', 'json', '--allowedTools', 'Read'], {
            env: { ...mode.env(relay.url, key), ...hermeticEnv() },
            cwd: workdir,
          });
          t.diagnostic(`claude ran ${run.ms} ms; ${relay.exchanges.length} calls to the relay`);
          assertSucceeded(run);
          const result = JSON.parse(run.stdout) as { result?: unknown; is_error?: unknown; num_turns?: unknown };
          assert.equal(result.is_error, false, explain(run));
          assert.equal(result.result, `The note says ${secret}.`, explain(run));

          const turns = relay.exchanges.filter(mode.isTurn);
          assert.equal(turns.length, 2, `the tool_use turn and the tool_result turn\n${describeExchanges()}`);
          assert.ok(!turns[0]!.request.body.includes(secret), 'the first turn cannot know the note');
          const second = turns[1]!.request.body.toString('utf8');
          assert.match(second, /"tool_result"/);
          assert.ok(second.includes(secret), 'the tool result went to the relay');
          assert.ok(
            fake.requests.some((r) => r.operation === mode.turnOperation && r.body.includes(secret)),
            'and on to Bedrock',
          );
          await assertThroughRelay(mode, key, alias);
        } finally {
          rmSync(workdir, { recursive: true, force: true });
        }
      });

      it('a key limited to one model: other models are refused at the relay, and Claude Code answers with that model', async (t) => {
        // Each host's own spelling of Claude Haiku 4.5. (One entry does not yet cover both
        // spellings of a dated model: see test/e2e/relay-gaps.test.ts.)
        const [entry, model] =
          mode.name === 'bedrock'
            ? ['anthropic.claude-haiku-4-5-20251001-v1:0', 'us.anthropic.claude-haiku-4-5-20251001-v1:0']
            : ['anthropic.claude-haiku-4-5', 'anthropic.claude-haiku-4-5'];
        const alias = `claude-code-${mode.name}-haiku-only`;
        const key = await relay.newKey({ key_alias: alias, models: [entry] });
        const run = await runClaude(claude(), ['-p', 'Say hi', '--output-format', 'json'], {
          env: { ...mode.env(relay.url, key), ANTHROPIC_MODEL: model, ...hermeticEnv() },
        });
        t.diagnostic(`claude ran ${run.ms} ms; ${relay.exchanges.length} calls to the relay`);
        assertSucceeded(run);
        assert.equal((JSON.parse(run.stdout) as { result?: unknown }).result, REPLY, explain(run));

        const fake = mode.fake(relay);
        const upstreamModels = new Set(fake.requests.map((r) => r.modelId).filter((m): m is string => m !== undefined));
        assert.deepEqual([...upstreamModels], [model], 'only the allowed model reached Bedrock');
        const refused = relay.exchanges.filter((x) => x.status === 403);
        // In Bedrock mode Claude Code probes the Claude models it knows; the others must stop here.
        if (mode.name === 'bedrock') assert.ok(refused.length > 0, `probes of other models were refused\n${describeExchanges()}`);
        for (const x of refused) {
          const body = x.request.body.toString('utf8');
          assert.ok(!body.includes(`"model":"${model}"`) && !x.request.rawPath.includes(model), `an allowed call was refused: ${x.request.rawPath}`);
        }
        if (mode.name === 'bedrock') {
          // Discovery answers only with the key's model: Claude Code sees no other inference profile.
          const discovery = relay.exchanges.find((x) => x.request.rawPath === '/bedrock/inference-profiles');
          assert.equal(discovery?.status, 200);
          const listed = (
            JSON.parse(discovery!.responseBody().toString('utf8')) as { inferenceProfileSummaries: Array<{ inferenceProfileId: string }> }
          ).inferenceProfileSummaries.map((p) => p.inferenceProfileId);
          assert.ok(listed.length > 0 && listed.every((id) => id.endsWith(entry)), listed.join(', '));
        }
        await assertThroughRelay(mode, key, alias);
      });
    });
  }
});

/**
 * What every run must show, whatever Claude Code chose to call:
 * - each call reached the relay with the virtual key as a bearer token;
 * - every upstream request was signed by the relay for the mode's host, and nothing went to
 *   the other host;
 * - the key never left the relay;
 * - streamed answers kept Bedrock's content-type;
 * - every model call was metered exactly (the fake's token arithmetic on the bytes sent), in
 *   the per-call record and in the key's ledger (GET /key/usage);
 * - nothing tried to reach the network beyond the relay.
 */
async function assertThroughRelay(mode: Mode, key: string, alias: string): Promise<void> {
  const relayed = relay.exchanges.filter((x) => x.request.rawPath.startsWith(mode.prefix));
  assert.ok(relayed.length > 0, 'Claude Code called the relay');
  assert.deepEqual(
    relay.exchanges.filter((x) => !x.request.rawPath.startsWith(mode.prefix) && !x.request.rawPath.startsWith('/key/')).map((x) => x.request.rawPath),
    [],
    "every call used the mode's relay prefix",
  );
  for (const x of relayed) {
    assert.equal(x.request.headers['authorization'], `Bearer ${key}`, `${x.request.method} ${x.request.rawPath} carries the key as a bearer token`);
    if (x.status === 200 && mode.isTurn(x)) {
      assert.match(x.responseHeaders?.['content-type'] ?? '', mode.streamContentType, 'the streamed answer keeps its content-type');
    }
  }

  const fake = mode.fake(relay);
  assert.ok(fake.requests.length > 0, 'calls reached Bedrock');
  assert.equal(mode.otherFake(relay).requests.length, 0, 'nothing went to the other host');
  for (const r of fake.requests) {
    assert.ok(r.signature.valid, `${r.method} ${r.rawUrl}: ${JSON.stringify(r.signature)}`);
    assert.equal(r.signature.service, mode.signingName, `${r.rawUrl} signed for ${mode.signingName}`);
    assert.ok(!r.rawHeaders.join('\n').includes(key) && !r.body.includes(key), `${r.rawUrl}: the virtual key never goes upstream`);
  }
  const turns = fake.requests.filter((r) => r.operation === mode.turnOperation && (mode.name === 'bedrock' || jsonOf(r.body)['stream'] === true));
  assert.ok(turns.length > 0, 'a streamed turn reached Bedrock');
  for (const r of turns) {
    assert.equal(r.headers['anthropic-version'], '2023-06-01', 'anthropic-version reaches Bedrock');
    assert.match(String(r.headers['anthropic-beta'] ?? ''), /claude-code-20250219/, 'anthropic-beta reaches Bedrock');
  }

  // Metering: one record per relayed call; model calls carry the exact usage. A call's record
  // is written after its last byte reached Claude Code (the ledger settles first), so Claude
  // Code may have exited before the last one lands: wait for it.
  await waitFor(() => relay.calls.length >= relayed.length, `a call record for each of the ${relayed.length} relayed calls (have ${relay.calls.length})`);
  const byId = new Map(relay.exchanges.map((x) => [x.request.requestId, x]));
  assert.equal(relay.calls.length, relayed.length, 'one call record per relayed call');
  const expected = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, modelCalls: 0 };
  for (const call of relay.calls) {
    assert.equal(call['keyAlias'], alias);
    const exchange = byId.get(call.requestId);
    assert.ok(exchange, `call record ${call.requestId} matches a request`);
    if (call['status'] !== 200 || !MODEL_OPERATIONS.has(String(call['operation']))) continue;
    const counts = fakeTokenCounts(exchange.request.body);
    const label = `${String(call['operation'])} ${String(call['model'])}`;
    assert.equal(call['usageReported'], true, `${label}: usage reported`);
    assert.deepEqual(
      [call['inputTokens'], call['outputTokens'], call['cacheReadInputTokens'], call['cacheWriteInputTokens']],
      [counts.input, counts.output, counts.cacheRead, counts.cacheWrite],
      `${label}: metered exactly`,
    );
    expected.input += counts.input;
    expected.output += counts.output;
    expected.cacheRead += counts.cacheRead;
    expected.cacheWrite += counts.cacheWrite;
    expected.modelCalls += 1;
  }
  assert.ok(expected.modelCalls > 0, 'at least one model call was metered');

  const usage = await relay.admin(`/key/usage?key_alias=${encodeURIComponent(alias)}`);
  assert.equal(usage.status, 200, JSON.stringify(usage.json));
  const totals = usage.json['totals'] as Record<string, number>;
  assert.deepEqual(
    {
      input: totals['input_tokens'],
      output: totals['output_tokens'],
      cacheRead: totals['cache_read_input_tokens'],
      cacheWrite: totals['cache_write_input_tokens'],
    },
    { input: expected.input, output: expected.output, cacheRead: expected.cacheRead, cacheWrite: expected.cacheWrite },
    'the ledger holds the same tokens',
  );

  assert.deepEqual(trap.attempts, [], 'nothing tried to reach the network beyond the relay');
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(20);
  }
}

function assertSucceeded(run: ClaudeRun): void {
  assert.equal(run.timedOut, false, `claude timed out\n${explain(run)}`);
  assert.equal(run.code, 0, `claude exited ${run.code ?? run.signal}\n${explain(run)}`);
}

function explain(run: ClaudeRun): string {
  return `--- claude stdout ---\n${run.stdout.slice(0, 4000)}\n--- claude stderr ---\n${run.stderr.slice(0, 4000)}\n--- relay ---\n${describeExchanges()}`;
}

function describeExchanges(): string {
  return relay.exchanges
    .map((x) => `${x.request.method} ${x.request.rawPath}${x.request.rawQueryString ? `?${x.request.rawQueryString}` : ''} → ${x.status ?? '…'}`)
    .join('\n');
}

function jsonOf(body: Buffer): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
