/**
 * Secrets are compared in constant time. Three checks:
 *
 * 1. secretsEqual (lambda/auth/principal.ts) gives the right answer for equal, unequal and
 *    different-length inputs, and never throws (timingSafeEqual throws on a length mismatch,
 *    which is why both sides are hashed to fixed-length digests first).
 * 2. Its code path is that one: SHA-256 digests of both sides, compared with timingSafeEqual;
 *    and the authenticators call it for the master key.
 * 3. No `===`, `!==`, `==`, `!=`, startsWith/endsWith/includes or Map/Set lookup takes a raw
 *    secret (master key, presented credential, API key) anywhere in lambda/auth and lambda/keys.
 *    Key lookups go by the SHA-256 hash of the key (the "token"), which is not a secret.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { secretsEqual } from '../../lambda/auth/principal.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCANNED_DIRS = ['lambda/auth', 'lambda/keys'];

describe('secretsEqual', () => {
  it('is true for equal secrets and false otherwise, whatever the lengths', () => {
    const master = 'sk-test-master-key-0123456789abcdef';
    assert.equal(secretsEqual(master, master), true);
    assert.equal(secretsEqual(master, `${master}`.slice(0)), true);
    assert.equal(secretsEqual(master, master.replace(/f$/, 'e')), false, 'same length, last character differs');
    assert.equal(secretsEqual(master, `X${master.slice(1)}`), false, 'same length, first character differs');
    assert.equal(secretsEqual(master, master.slice(0, -1)), false, 'a prefix');
    assert.equal(secretsEqual(master, `${master}0`), false, 'an extension');
    assert.equal(secretsEqual('', ''), true);
    assert.equal(secretsEqual('', master), false);
    assert.equal(secretsEqual(master, ''), false);
    assert.equal(secretsEqual('é', 'e\u0301'), false, 'no unicode normalisation: different bytes are different keys');
    assert.equal(secretsEqual('x'.repeat(100_000), 'x'.repeat(100_000)), true);
  });

  it('agrees with plain equality on random inputs, including different lengths', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 80 }), (a, b) => {
        assert.equal(secretsEqual(a, b), a === b);
        assert.equal(secretsEqual(a, a), true);
      }),
      { numRuns: 1_000 },
    );
  });
});

/** The text of one function declaration, found by name (enough for these small modules). */
function functionSource(source: string, name: string): string {
  const start = source.indexOf(`function ${name}(`);
  assert.ok(start >= 0, `function ${name} not found`);
  let depth = 0;
  for (let i = source.indexOf('{', start); i < source.length; i++) {
    if (source[i] === '{') depth++;
    if (source[i] === '}' && --depth === 0) return source.slice(start, i + 1);
  }
  throw new Error(`unbalanced braces in ${name}`);
}

describe("secretsEqual's code path", () => {
  const principal = readFileSync(join(ROOT, 'lambda/auth/principal.ts'), 'utf8');

  it('hashes both sides to SHA-256 digests and compares them with timingSafeEqual', () => {
    const body = functionSource(principal, 'secretsEqual');
    assert.match(principal, /import \{[^}]*\btimingSafeEqual\b[^}]*\} from 'node:crypto'/);
    assert.equal((body.match(/createHash\('sha256'\)/g) ?? []).length, 2, 'both sides hashed to fixed-length digests');
    assert.match(body, /timingSafeEqual\(/);
    assert.doesNotMatch(stripStringsAndComments(body), /[!=]==?|\.length/, 'no early exit on content or length');
  });

  it('is what the master-key authenticators use', () => {
    assert.match(functionSource(principal, 'masterKeyAuthenticator'), /secretsEqual\(credential, await masterKey\(\)\)/);
    const keys = readFileSync(join(ROOT, 'lambda/keys/authenticator.ts'), 'utf8');
    assert.match(keys, /secretsEqual\(credential, await deps\.masterKey\(\)\)/);
  });
});

// ── the scan ──

/** Identifiers that hold a raw secret in these modules (not `token`: that is the key's hash). */
const SECRET_NAME = /\b\w*(secret|credential|masterkey|master_key|apikey|api_key|presented|plaintext|password|bearer)\w*\b/i;
const EQUALITY = /([\w.$\][)(?!]+(?:\([^()]*\))?)\s*(===|!==|==|!=)\s*([\w.$\][)(!]+(?:\([^()]*\))?)/g;
const TEXT_SEARCH = /\.(startsWith|endsWith|includes|indexOf|localeCompare)\(([^()]*)\)/g;
const LOOKUP = /\.(get|has)\(([^()]*)\)/g;
/** Comparisons with these on one side do not compare two secrets. */
const HARMLESS_OPERAND = /^(undefined|null|true|false|\d+|typeof\b.*|.*\.length|.*\.name|''|EMPTY)$/;

/** Blank out comments and string/template literals, keeping line structure. */
function stripStringsAndComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/\/\/[^\n]*/g, '')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, "''");
}

interface Finding {
  readonly line: number;
  readonly text: string;
}

/** Places where a raw secret is compared or looked up other than through secretsEqual. */
function scan(source: string): Finding[] {
  const findings: Finding[] = [];
  stripStringsAndComments(source)
    .split('\n')
    .forEach((line, index) => {
      for (const [, left = '', , right = ''] of line.matchAll(EQUALITY)) {
        // The operand patterns are greedy about brackets; `if (x === undefined)` → `x`, `undefined`.
        const operands = [left, right].map((operand) =>
          operand
            .trim()
            .replace(/^[(!]+/, '')
            .replace(/\)+$/, ''),
        );
        if (operands.some((operand) => HARMLESS_OPERAND.test(operand))) continue;
        if (operands.some((operand) => SECRET_NAME.test(operand))) findings.push({ line: index + 1, text: line.trim() });
      }
      for (const [, , argument = ''] of [...line.matchAll(TEXT_SEARCH), ...line.matchAll(LOOKUP)]) {
        if (SECRET_NAME.test(argument) && !/PREFIX/.test(argument)) findings.push({ line: index + 1, text: line.trim() });
      }
    });
  return findings;
}

describe('no plain comparison of secrets in lambda/auth and lambda/keys', () => {
  it('the scan finds the comparisons it is meant to find (so a clean result means something)', () => {
    const planted = [
      'if (credential === await masterKey()) return { kind: "master" };',
      'const ok = presentedKey !== expected;',
      'if (apiKey == stored.secret) allow();',
      'if (masterKey.startsWith(credential)) deny();',
      'const record = recordsBySecret.get(secret);',
    ];
    for (const line of planted) assert.equal(scan(line).length, 1, `not flagged: ${line}`);
    const harmless = [
      'if (credential === undefined) throw missingCredential();',
      'if (credential.length > MAX_CREDENTIAL_LENGTH) throw invalidCredential();',
      'if (trimmed.startsWith(KEY_PREFIX) && trimmed.length > KEY_PREFIX.length) return hashSecret(trimmed);',
      'if (existing.token === token) return;',
      "const note = 'credential === secret'; // credential === secret",
      'if (typeof credential === "string") use(credential);',
    ];
    for (const line of harmless) assert.deepEqual(scan(line), [], `flagged: ${line}`);
  });

  for (const dir of SCANNED_DIRS) {
    it(`${dir}: every secret comparison goes through secretsEqual`, () => {
      const files = readdirSync(join(ROOT, dir)).filter((file) => file.endsWith('.ts'));
      assert.ok(files.length > 0, `no sources in ${dir}`);
      const findings = files.flatMap((file) => scan(readFileSync(join(ROOT, dir, file), 'utf8')).map((f) => `${dir}/${file}:${f.line}: ${f.text}`));
      assert.deepEqual(findings, []);
    });
  }
});
