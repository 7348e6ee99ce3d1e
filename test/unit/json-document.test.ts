import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { JsonBodyRefused, objectMembers, parseJsonDocument, type JsonBodyProblem } from '../../lambda/http/json-document.js';
import { RelayError } from '../../lambda/http/errors.js';
import { modelFromBody } from '../../lambda/routes/body-model.js';
import { RouteMatcher } from '../../lambda/routes/match.js';
import { readRequestDocument } from '../../lambda/routes/request-document.js';

const parse = (text: string | Buffer) => parseJsonDocument(Buffer.isBuffer(text) ? text : Buffer.from(text));

function refused(text: string | Buffer, problem: JsonBodyProblem, message?: RegExp): void {
  assert.throws(
    () => parse(text),
    (error: unknown) => {
      assert.ok(error instanceof JsonBodyRefused, String(error));
      assert.equal(error.problem, problem);
      if (message) assert.match(error.message, message);
      return true;
    },
    String(text),
  );
}

describe('parseJsonDocument: duplicate member names', () => {
  it('refuses a name given twice at the top level, whichever value comes last', () => {
    refused('{"model":"OTHER","model":"ALLOWED"}', 'duplicate-name', /"model"/);
    refused('{"model":"ALLOWED","messages":[],"model":"OTHER"}', 'duplicate-name', /"model"/);
    refused('{ "stream" : false ,\n "stream" : true }', 'duplicate-name', /"stream"/);
  });

  it('compares names after unescaping, as every parser does', () => {
    refused('{"model":"ALLOWED","mod\\u0065l":"OTHER"}', 'duplicate-name', /"model"/);
    refused('{"\\u006d\\u006f\\u0064\\u0065\\u006c":"a","model":"b"}', 'duplicate-name');
    refused('{"str\\u0065am":true,"stream":false}', 'duplicate-name', /"stream"/);
    refused('{"a\\/b":1,"a/b":2}', 'duplicate-name');
    refused('{"\\ud83d\\ude00":1,"😀":2}', 'duplicate-name');
    refused('{"__proto__":{},"__proto__":{}}', 'duplicate-name', /"__proto__"/);
    // Different names that look alike are different names: no normalisation, no case folding.
    assert.deepEqual(parse('{"model":1,"Model":2,"model ":3,"mode\\u006C\\u0000":4}').json, { model: 1, Model: 2, 'model ': 3, 'model\u0000': 4 });
  });

  it('refuses duplicates in nested objects, objects in arrays, and at any depth', () => {
    refused('{"guardrailConfig":{"guardrailIdentifier":"ok","guardrailIdentifier":"other"}}', 'duplicate-name', /"guardrailIdentifier"/);
    refused('{"messages":[{"role":"user","role":"system"}]}', 'duplicate-name', /"role"/);
    refused('[[{"a":1}],{"b":{"c":[{"d":1,"d":2}]}}]', 'duplicate-name', /"d"/);
    const deep = `${'{"x":'.repeat(5000)}{"k":1,"k":2}${'}'.repeat(5000)}`;
    refused(deep, 'duplicate-name', /"k"/);
  });

  it('allows the same name in sibling and nested objects', () => {
    const text = '{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}],"tool":{"model":"n","tool":{"model":"o"}}}';
    assert.deepEqual(parse(text).json, JSON.parse(text));
  });

  it('reads a quote, brace or name inside a string as text, not structure', () => {
    const text = '{"content":"\\"model\\":\\"x\\",\\"model\\":{\\\\","model":"m","k":"\\\\\\\\","s":"}]{[,:"}';
    assert.deepEqual(parse(text).json, JSON.parse(text));
  });

  it('never throws anything but JsonBodyRefused, and agrees with JSON.parse on every JSON text without duplicates', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.boolean(), (value, pretty) => {
        const text = JSON.stringify(value, null, pretty ? 2 : undefined);
        // JSON.stringify never writes a name twice.
        assert.deepEqual(parse(text).json, JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('finds a duplicate planted in a random document, one spelling fully escaped', () => {
    const escapeAll = (name: string) => [...Array(name.length).keys()].map((i) => `\\u${name.charCodeAt(i).toString(16).padStart(4, '0')}`).join('');
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.string(), fc.boolean(), (value, name, inArray) => {
        const dup = `{"${escapeAll(name)}":1,"other":[],${JSON.stringify(name)}:2}`;
        const text = JSON.stringify(value);
        const wrapped = inArray ? `[${text},${dup}]` : `{"a":${text},"b":{"c":${dup}}}`;
        assert.throws(
          () => parse(wrapped),
          (error: unknown) => error instanceof JsonBodyRefused && error.problem === 'duplicate-name',
          wrapped,
        );
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseJsonDocument: encodings', () => {
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

  it('refuses a UTF-8 byte order mark before a JSON body', () => {
    refused(Buffer.concat([BOM, Buffer.from('{"model":"m","stream":true}')]), 'byte-order-mark', /byte order mark/);
    refused(Buffer.concat([BOM, Buffer.from(' []')]), 'byte-order-mark');
  });

  it('leaves a body that starts with those bytes but is not JSON alone (binary payloads)', () => {
    assert.equal(parse(Buffer.concat([BOM, Buffer.from([0x00, 0xff, 0x10])])).json, undefined);
  });

  it('refuses a JSON body that is not valid UTF-8', () => {
    refused(Buffer.concat([Buffer.from('{"model":"m'), Buffer.from([0xff]), Buffer.from('"}')]), 'invalid-utf8');
    // CESU-8 / an encoded surrogate half: JSON.parse would read it, a strict decoder would not.
    refused(Buffer.concat([Buffer.from('{"mod'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('el":"m"}')]), 'invalid-utf8');
  });

  it('reads multi-byte UTF-8 names and values', () => {
    const text = '{"modèle":"é","😀":{"日本":"語"},"model":"m"}';
    const doc = parse(text);
    assert.deepEqual(doc.json, JSON.parse(text));
    const body = Buffer.from(text);
    const at = doc.members!.get('model')!;
    assert.equal(body.toString('utf8', at.start, at.end), '"m"', 'spans are byte offsets');
    refused('{"é":1,"\\u00e9":2}', 'duplicate-name');
  });
});

describe('parseJsonDocument: what is and is not JSON', () => {
  it('an empty body and a body that is not JSON have no document, and are not refused', () => {
    for (const text of ['', 'not json', '{"model":"m"} trailing', '{"model":"m",}', "{'model':'m'}", '{"a":1 /* c */}', '\u0000\u0001', 'NaN']) {
      const doc = parse(text);
      assert.equal(doc.json, undefined, text);
      assert.equal(doc.root, undefined, text);
    }
    // Binary bytes are not JSON either.
    assert.equal(parse(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])).json, undefined);
  });

  it('accepts any JSON value at the root, with leading and trailing whitespace', () => {
    for (const text of ['  {"a":1}\n', '[1,2]', '"s"', '12', 'null', 'true', ' {} ']) assert.deepEqual(parse(text).json, JSON.parse(text), text);
    const doc = parse('\r\n {"a":1} \t');
    assert.deepEqual(doc.root, { start: 3, end: 10 });
  });

  it('keeps big numbers as JSON.parse does, and their exact bytes in the spans', () => {
    const text = '{"seed":123456789012345678901234567890,"tiny":1e-400,"big":1.7976931348623157e309,"neg":-0.0e+0,"model":"m"}';
    const doc = parse(text);
    assert.deepEqual(doc.json, JSON.parse(text));
    const body = Buffer.from(text);
    const at = doc.members!.get('seed')!;
    assert.equal(body.toString('utf8', at.start, at.end), '123456789012345678901234567890');
    assert.equal(body.toString('utf8', doc.members!.get('neg')!.start, doc.members!.get('neg')!.end), '-0.0e+0');
  });

  it('handles deep nesting without overflowing the stack', () => {
    const depth = 200_000;
    const text = `{"model":"m","deep":${'['.repeat(depth)}${']'.repeat(depth)},"x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const doc = parse(text);
    assert.equal((doc.json as { model: string }).model, 'm');
    assert.deepEqual([...doc.members!.keys()], ['model', 'deep', 'x']);
    assert.equal(doc.members!.get('x')!.end, text.length - 1);
  });

  it('records where every top-level member value sits, and objectMembers those of a nested object', () => {
    const text = '{ "model" : "m" , "stream_options" : { "a" : [1, {"b":2}] , "include_usage" : false } , "n" : null }';
    const body = Buffer.from(text);
    const doc = parse(body);
    const slice = (span: { start: number; end: number }) => body.toString('utf8', span.start, span.end);
    assert.deepEqual(doc.root, { start: 0, end: text.length });
    assert.equal(slice(doc.members!.get('model')!), '"m"');
    assert.equal(slice(doc.members!.get('n')!), 'null');
    const options = doc.members!.get('stream_options')!;
    assert.equal(slice(options), '{ "a" : [1, {"b":2}] , "include_usage" : false }');
    const inner = objectMembers(body, options)!;
    assert.equal(slice(inner.get('a')!), '[1, {"b":2}]');
    assert.equal(slice(inner.get('include_usage')!), 'false');
    assert.equal(parse('[{"a":1}]').members, undefined, 'members only for an object root');
  });

  it('scans a multi-megabyte body with many names in linear time', () => {
    const members = Array.from({ length: 100_000 }, (_, i) => `"k${i}":"${'v'.repeat(20)}"`);
    const text = `{${members.join(',')},"big":"${'x'.repeat(4_000_000)}"}`;
    const started = performance.now();
    const doc = parse(text);
    assert.equal(doc.members!.size, 100_001);
    // A generous bound: a quadratic scan takes minutes here.
    assert.ok(performance.now() - started < 10_000);
  });
});

describe('modelFromBody', () => {
  it('reads the field the operation reads, and only that one', () => {
    assert.equal(modelFromBody(Buffer.from('{"model":"a","modelId":"b"}'), 'OpenAIChatCompletions'), 'a');
    assert.equal(modelFromBody(Buffer.from('{"model":"a","modelId":"b"}'), 'StartAsyncInvoke'), 'b');
    assert.equal(modelFromBody(Buffer.from('{"model":7,"modelId":"b"}'), 'AnthropicMessages'), undefined);
    assert.equal(modelFromBody(Buffer.from('{"mod\\u0065l":"a"}'), 'AnthropicMessages'), 'a');
    assert.throws(() => modelFromBody(Buffer.from('{"model":"OTHER","model":"ALLOWED"}')), JsonBodyRefused);
  });
});

describe('readRequestDocument', () => {
  const matcher = new RouteMatcher();
  const read = (path: string, body: string | Buffer) => readRequestDocument(matcher.match('POST', path, ''), Buffer.isBuffer(body) ? body : Buffer.from(body));
  const rejects400 = (path: string, body: string | Buffer, message: RegExp) =>
    assert.throws(
      () => read(path, body),
      (error: unknown) => error instanceof RelayError && error.status === 400 && error.type === 'ValidationException' && message.test(error.message),
      `${path} ${String(body)}`,
    );

  it('turns a refused body into 400 ValidationException on every route', () => {
    rejects400('/bedrock/openai/v1/chat/completions', '{"model":"a","model":"b"}', /"model" more than once/);
    rejects400('/bedrock/model/m/invoke', '{"max_tokens":1,"max_tokens":100000}', /"max_tokens"/);
    rejects400('/bedrock/model/m/converse', '{"inferenceConfig":{"maxTokens":1,"maxTokens":2}}', /"maxTokens"/);
    rejects400('/bedrock/retrieveAndGenerate', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]), /byte order mark/);
  });

  it('refuses a body that is not a JSON object on the routes that name the model in it', () => {
    for (const path of ['/bedrock/anthropic/v1/messages', '/bedrock/openai/v1/chat/completions', '/bedrock-mantle/v1/responses', '/bedrock/async-invoke']) {
      for (const body of ['not json', '{"model":"m","stream":true} x', '["model"]', '"m"', ' ']) rejects400(path, body, /JSON object/);
      assert.equal(read(path, '').json, undefined, "an empty body is Bedrock's to answer");
    }
  });

  it("lets any body through on the routes whose payload is the model's own format", () => {
    const binary = Buffer.from([0x00, 0xff, 0xfe, 0x7b]);
    assert.equal(read('/bedrock/model/m/invoke', binary).json, undefined);
    assert.equal(read('/bedrock/model/m/invoke', 'plain text').json, undefined);
  });

  it('refuses a Chat Completions `stream` or `stream_options` of the wrong type', () => {
    for (const path of [
      '/bedrock/openai/v1/chat/completions',
      '/bedrock/v1/chat/completions',
      '/bedrock-mantle/v1/chat/completions',
      '/bedrock-mantle/openai/v1/chat/completions',
    ]) {
      for (const stream of ['"true"', '1', '"yes"', '{}']) rejects400(path, `{"model":"m","stream":${stream}}`, /`stream` must be a boolean/);
      for (const options of ['"yes"', '[]', 'true'])
        rejects400(path, `{"model":"m","stream":true,"stream_options":${options}}`, /`stream_options` must be an object/);
      for (const ok of ['{"model":"m"}', '{"model":"m","stream":null}', '{"model":"m","stream":false,"stream_options":null}'])
        assert.ok(read(path, ok).json, ok);
    }
    // Other APIs define their own fields: not this check's business.
    assert.ok(read('/bedrock/openai/v1/responses', '{"model":"m","stream":"true"}').json);
  });
});
