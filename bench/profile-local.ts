/**
 * Where the local server's time goes: `npm start` (lambda/local/main.ts) in a child process
 * under `node --cpu-prof`, against the fake Bedrock in this process, driven with N sequential
 * Converse calls (HTTP/1.1 keep-alive) with the master key or a cached virtual key. Prints the
 * functions and packages with the most self time on the relay's main thread.
 *
 *   node --import tsx bench/profile-local.ts [master|virtual] [calls] [concurrent clients, default 1]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fakeBedrockEnv, startFakeBedrock } from '../test/support/fake-bedrock.js';
import { PROJECT_ROOT } from './lib/processes.js';
import { MASTER_KEY } from './lib/bench-key.js';

const which = process.argv[2] ?? 'master';
const calls = Number(process.argv[3] ?? 3000);
const clients = Number(process.argv[4] ?? 1);
const fake = await startFakeBedrock();
const dir = mkdtempSync(join(tmpdir(), 'relay-profile-'));
const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', 'lambda/local/main.ts'], {
  cwd: PROJECT_ROOT,
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...fakeBedrockEnv(fake),
    RELAY_MASTER_KEY: MASTER_KEY,
    RELAY_DATA_DIR: join(dir, 'data'),
    PORT: '0',
    ...pick('POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_METRICS_DISABLED', 'RELAY_MASTER_USAGE', 'RELAY_USAGE_COALESCE_MS'),
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
const url = await new Promise<string>((resolve) => {
  const check = () => {
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(m[1]!);
  };
  child.stdout!.on('data', check);
});
// Drain (and drop) the relay's per-call output, as a terminal or a log file would take it.
child.stdout!.removeAllListeners('data');
child.stdout!.resume();

const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
const send = (path: string, key: string, body: string) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = http.request(
      `${url}${path}`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });

let key = MASTER_KEY;
if (which === 'virtual') {
  const made = await send('/key/generate', MASTER_KEY, JSON.stringify({ key_alias: 'profile' }));
  key = (JSON.parse(made.text) as { key: string }).key;
}
const body = JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hello' }] }], inferenceConfig: { maxTokens: 16 } });
const path = `/bedrock/model/${encodeURIComponent('amazon.nova-micro-v1:0')}/converse`;
const started = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (next++ < calls) {
      const answer = await send(path, key, body);
      if (answer.status !== 200) throw new Error(`${answer.status} ${answer.text}`);
    }
  }),
);
const elapsed = performance.now() - started;
process.stderr.write(`${calls} calls (${which} key, ${clients} at once) in ${elapsed.toFixed(0)} ms: ${(elapsed / calls).toFixed(3)} ms a call end to end\n`);
agent.destroy();
child.kill('SIGTERM');
await new Promise((resolve) => child.once('exit', resolve));
await fake.close();

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}
// Each thread writes its own profile (tsx's loader, the store's worker): the main thread's is
// the one that ran the emulator.
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.cpuprofile'))
  .map((f) => join(dir, f));
const profile = files
  .map((f) => JSON.parse(readFileSync(f, 'utf8')) as Profile)
  .find((p) => p.nodes.some((n) => n.callFrame.url.includes('function-url-emulator')))!;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const idle = [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const [id, us] of self) {
  const frame = byId.get(id)!.callFrame;
  const where = frame.url.replace(/^file:\/\//, '').replace(PROJECT_ROOT, '');
  const pkg =
    /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ??
    (where.startsWith('node:') || where === '' ? frame.url || `(${frame.functionName || 'native'})` : where.split('/').slice(0, 2).join('/'));
  const fn = `${frame.functionName || '(anonymous)'} ${where.split('/').slice(-2).join('/')}:${frame.lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
}
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => `${((us / total) * 100).toFixed(1).padStart(5)} %  ${(us / 1000 / calls).toFixed(3)} ms/call  ${name}`)
    .join('\n');
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
/** The call frames of a sample's stack, outermost first. */
const stackOf = (id: number): Node['callFrame'][] => {
  const frames: Node['callFrame'][] = [];
  for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) frames.unshift(byId.get(up)!.callFrame);
  return frames;
};
const nameOf = (frame: Node['callFrame']) => frame.functionName || '(anonymous)';
// Per sample: the nearest frame of the project's own code on its stack (which of the relay's
// steps the library and native time is spent for), what woke the event loop (the outermost two
// frames), and for promise continuations, the code they resumed.
const byProjectFrame = new Map<string, number>();
const byEntry = new Map<string, number>();
const byMicrotask = new Map<string, number>();
for (const [id, us] of self) {
  if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
  const stack = stackOf(id);
  const outer = stack.map(nameOf).filter((f) => f !== '(root)');
  const project = stack.findLast((frame) => frame.url.includes('/lambda/') && !frame.url.includes('node_modules'));
  // Without one, name it by the outermost frames instead (the event that woke the loop).
  const name = project
    ? `${nameOf(project)} ${project.url.replace(/^.*\/lambda\//, 'lambda/')}:${project.lineNumber + 1}`
    : `(no project frame) ${outer.slice(0, 3).join(' > ')} … ${byId.get(id)!.callFrame.functionName}`;
  byProjectFrame.set(name, (byProjectFrame.get(name) ?? 0) + us);
  const entry = outer.slice(0, 2).join(' > ');
  byEntry.set(entry, (byEntry.get(entry) ?? 0) + us);
  if (entry === 'processTicksAndRejections > runMicrotasks') {
    const resumed = stack
      .slice(3, 6)
      .map((f) => `${nameOf(f)}@${f.url.replace(/^.*\/(node_modules\/)?/, '')}`)
      .join(' > ');
    byMicrotask.set(resumed, (byMicrotask.get(resumed) ?? 0) + us);
  }
}
process.stdout.write(
  `\nmain thread: ${(total / 1000).toFixed(0)} ms sampled, ${(((total - idle) / total) * 100).toFixed(0)} % busy, ${((total - idle) / 1000 / calls).toFixed(3)} ms busy a call\nself time by package:\n${top(byPackage, 18)}\n\nby function:\n${top(byFunction, 30)}\n\nby nearest project frame:\n${top(byProjectFrame, 25)}\n\nby what woke the loop:\n${top(byEntry, 15)}\n\npromise continuations, by the code resumed:\n${top(byMicrotask, 25)}\n`,
);
rmSync(dir, { recursive: true, force: true });

function pick(...names: string[]): Record<string, string> {
  return Object.fromEntries(names.filter((n) => process.env[n] !== undefined).map((n) => [n, process.env[n]!]));
}
