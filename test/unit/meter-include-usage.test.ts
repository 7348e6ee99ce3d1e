import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_HELD_EVENT_BYTES, prepareRequestBody, UsageChunkFilter, withoutNullUsage, type ChunkFilter } from '../../lambda/metering/include-usage.js';
import { JsonBodyRefused, parseJsonDocument } from '../../lambda/http/json-document.js';
import { selectMeter } from '../../lambda/metering/index.js';
import { RouteMatcher } from '../../lambda/routes/match.js';
import { chatSse, cutAt, everySplit, oneBytePerChunk, route, utf8 } from './meter-fixtures.js';

const CHAT = route('OpenAIChatCompletions');

function through(filter: ChunkFilter, chunks: Iterable<Uint8Array>): string {
  const out: Uint8Array[] = [];
  for (const chunk of chunks) out.push(filter.transform(chunk));
  out.push(filter.flush());
  return Buffer.concat(out).toString('utf8');
}

describe('prepareRequestBody', () => {
  it('splices stream_options.include_usage into a streamed request, leaving every other byte as sent', () => {
    const original = Buffer.from('  {"model":"openai.gpt-oss-120b-1:0","stream":true,"messages":[{"role":"user","content":"hi"}]}');
    const prepared = prepareRequestBody(CHAT, original);
    assert.equal(prepared.rewrite, 'spliced');
    assert.ok(prepared.responseFilter);
    assert.equal(
      prepared.body.toString(),
      '  {"stream_options":{"include_usage":true},"model":"openai.gpt-oss-120b-1:0","stream":true,"messages":[{"role":"user","content":"hi"}]}',
    );
    const doc = JSON.parse(prepared.body.toString());
    assert.deepEqual(doc, { ...JSON.parse(original.toString()), stream_options: { include_usage: true } });
  });

  it('splices into pretty-printed bodies too', () => {
    const original = Buffer.from('{\n  "stream": true,\n  "model": "m"\n}\n');
    const prepared = prepareRequestBody(CHAT, original);
    assert.equal(prepared.body.toString(), '{"stream_options":{"include_usage":true},\n  "stream": true,\n  "model": "m"\n}\n');
  });

  it('splices include_usage into an existing stream_options too, keeping every other byte (formatting, big numbers)', () => {
    const cases: Array<[string, string]> = [
      ['{"model":"m","stream":true,"stream_options":{}}', '{"model":"m","stream":true,"stream_options":{"include_usage":true}}'],
      ['{"model":"m","stream":true,"stream_options":{ }}', '{"model":"m","stream":true,"stream_options":{"include_usage":true }}'],
      [
        '{"model":"m","stream":true,"stream_options":{"continuous_usage_stats":false}}',
        '{"model":"m","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":false}}',
      ],
      ['{"stream":true,"stream_options":{"include_usage":false}}', '{"stream":true,"stream_options":{"include_usage":true}}'],
      ['{"stream":true,"stream_options": {"include_usage" : null , "x":1}}', '{"stream":true,"stream_options": {"include_usage" : true , "x":1}}'],
      [
        '{"stream":true,"stream_options":{"a":{"include_usage":true},"include_usage":"true"}}',
        '{"stream":true,"stream_options":{"a":{"include_usage":true},"include_usage":true}}',
      ],
      [
        '{"stream":true,\n  "stream_options": null,\n  "seed": 123456789012345678901234567890}',
        '{"stream":true,\n  "stream_options": {"include_usage":true},\n  "seed": 123456789012345678901234567890}',
      ],
    ];
    for (const [sent, expected] of cases) {
      const prepared = prepareRequestBody(CHAT, Buffer.from(sent));
      assert.equal(prepared.rewrite, 'spliced', sent);
      assert.ok(prepared.responseFilter);
      assert.equal(prepared.body.toString(), expected);
      const doc = JSON.parse(prepared.body.toString());
      assert.equal(doc.stream_options.include_usage, true);
    }
  });

  it('decides from the parsed document, not the bytes: an escaped "stream" streams and gets include_usage', () => {
    const sent = '{"model":"m","str\\u0065am":true,"messages":[]}';
    const prepared = prepareRequestBody(CHAT, Buffer.from(sent));
    assert.equal(prepared.rewrite, 'spliced');
    assert.equal(prepared.body.toString(), `{"stream_options":{"include_usage":true},${sent.slice(1)}`);
    // An escaped `stream_options` / `include_usage` is read as the member it is.
    const escapedOptions = '{"stream":true,"stream_opti\\u006fns":{"include_us\\u0061ge":false}}';
    assert.equal(prepareRequestBody(CHAT, Buffer.from(escapedOptions)).body.toString(), '{"stream":true,"stream_opti\\u006fns":{"include_us\\u0061ge":true}}');
    const escapedAlready = Buffer.from('{"stream":true,"stream_options":{"include_\\u0075sage":true}}');
    assert.equal(prepareRequestBody(CHAT, escapedAlready).body, escapedAlready);
    // "stream" inside a string is text.
    const inText = Buffer.from('{"model":"m","messages":[{"content":"\\"stream\\": true"}],"stream":false}');
    assert.equal(prepareRequestBody(CHAT, inText).body, inText);
  });

  it('uses the document the relay core parsed when it is given one', () => {
    const body = Buffer.from('{"model":"m","stream":false}');
    // A document that says otherwise wins: the body is not looked at again for the decision.
    const document = parseJsonDocument(Buffer.from('{"model":"m","stream":true}    '));
    assert.equal(prepareRequestBody(CHAT, body, document).rewrite, 'spliced');
  });

  it('refuses (throws) a body with a duplicate name when it has to parse it itself', () => {
    assert.throws(() => prepareRequestBody(CHAT, Buffer.from('{"stream":false,"stream":true}')), JsonBodyRefused);
  });

  it('returns the very same bytes when there is nothing to do', () => {
    const cases: Array<[string, string]> = [
      ['OpenAIChatCompletions', '{"model":"m","stream":true,"stream_options":{"include_usage":true}}'],
      ['OpenAIChatCompletions', '{"model":"m","stream":false}'],
      ['OpenAIChatCompletions', '{"model":"m"}'],
      ['OpenAIChatCompletions', '{"model":"m","messages":[{"role":"user","content":"\\"stream\\": true"}]}'],
      ['OpenAIChatCompletions', '{"model":"m","stream":"true"}'],
      ['OpenAIChatCompletions', '{"model":"m","stream":true,"stream_options":"yes"}'],
      ['OpenAIChatCompletions', 'not json "stream"'],
      ['OpenAIChatCompletions', '["stream", true]'],
      ['OpenAIResponses', '{"model":"m","stream":true}'],
      ['AnthropicMessages', '{"model":"m","stream":true}'],
      ['Converse', '{"stream":true}'],
    ];
    for (const [operation, text] of cases) {
      const body = Buffer.from(text);
      const prepared = prepareRequestBody(route(operation), body);
      assert.equal(prepared.body, body, `${operation} ${text}`);
      assert.equal(prepared.responseFilter, undefined);
    }
  });

  it("accepts a matched route, so it can be the relay core's prepareBody as is", () => {
    const match = new RouteMatcher().match('POST', '/bedrock-mantle/v1/chat/completions', '');
    assert.equal(prepareRequestBody(match, Buffer.from('{"stream":true}')).rewrite, 'spliced');
    const responses = new RouteMatcher().match('POST', '/bedrock-mantle/v1/responses', '');
    assert.equal(prepareRequestBody(responses, Buffer.from('{"stream":true}')).rewrite, undefined);
  });

  it('applies to every Chat Completions route, runtime and mantle', () => {
    for (const operation of ['OpenAIChatCompletions', 'ChatCompletions', 'MantleChatCompletions', 'MantleOpenAIChatCompletions']) {
      assert.equal(prepareRequestBody(route(operation), Buffer.from('{"stream":true}')).rewrite, 'spliced', operation);
    }
  });
});

describe('the usage chunk filter', () => {
  const withUsage = utf8(chatSse(true));
  const withoutUsage = chatSse(false);

  it('gives the client exactly the stream it would have had without usage, at every split', () => {
    for (const chunks of everySplit(withUsage)) assert.equal(through(new UsageChunkFilter(), chunks), withoutUsage, `split at ${chunks[0]!.byteLength}`);
  });

  it('also one byte per chunk, and with CRLF line endings at every split', () => {
    assert.equal(through(new UsageChunkFilter(), oneBytePerChunk(withUsage)), withoutUsage);
    const crlf = utf8(chatSse(true, '\r\n'));
    for (const chunks of everySplit(crlf)) assert.equal(through(new UsageChunkFilter(), chunks), chatSse(false, '\r\n'));
    assert.equal(through(new UsageChunkFilter(), oneBytePerChunk(crlf)), chatSse(false, '\r\n'));
  });

  it('removes the "usage": null that OpenAI-style servers add to every chunk, at every split', () => {
    for (const eol of ['\n', '\r\n']) {
      const bytes = utf8(chatSse(true, eol, 6, true));
      assert.ok(Buffer.from(bytes).toString().includes(',"usage":null}'));
      for (const chunks of everySplit(bytes)) assert.equal(through(new UsageChunkFilter(), chunks), chatSse(false, eol), `split at ${chunks[0]!.byteLength}`);
      assert.equal(through(new UsageChunkFilter(), oneBytePerChunk(bytes)), chatSse(false, eol));
    }
  });

  it('cuts out only a top-level "usage": null member, proven by parsing', () => {
    assert.equal(withoutNullUsage('{"a":1,"usage":null}'), '{"a":1}');
    assert.equal(withoutNullUsage('{"a":[{"b":"}"}],"usage":null}'), '{"a":[{"b":"}"}]}');
    assert.equal(withoutNullUsage('{"usage":5,"usage":null}'), undefined); // duplicate keys: no cut proves it
    assert.equal(withoutNullUsage('{"usage":null,"a":{"usage":null},"usage":null}'), undefined);
    assert.equal(withoutNullUsage('{"usage":null,"a":1}'), '{"a":1}');
    assert.equal(withoutNullUsage('{ "a": 1 , "usage" : null }'), '{ "a": 1  }'); // spacing around it is a guess either way
    assert.equal(withoutNullUsage('{"usage": null}'), '{}');
    assert.equal(withoutNullUsage('{"a":{"usage":null},"usage":null}'), '{"a":{"usage":null}}');
    assert.equal(withoutNullUsage('{"s":"\\"usage\\":null,","usage":null}'), '{"s":"\\"usage\\":null,"}');
    assert.equal(withoutNullUsage('{"a":{"usage":null}}'), undefined);
    assert.equal(withoutNullUsage('{"usage":{"prompt_tokens":1}}'), undefined);
    assert.equal(withoutNullUsage('[DONE]'), undefined);
  });

  it('whatever the chunking (property)', () => {
    for (const [eol, nullUsage] of [
      ['\n', false],
      ['\r\n', true],
      ['\r', false],
      ['\r', true],
    ] as const) {
      const bytes = utf8(chatSse(true, eol, 10, nullUsage));
      const expected = chatSse(false, eol, 10);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: bytes.byteLength }), { maxLength: 30 }), (offsets) => {
          assert.equal(through(new UsageChunkFilter(), cutAt(bytes, offsets)), expected);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('while the meter, reading the unfiltered bytes, still gets the usage', () => {
    const prepared = prepareRequestBody(CHAT, Buffer.from('{"model":"openai.gpt-oss-120b-1:0","stream":true}'));
    const filter = prepared.responseFilter!;
    const meter = selectMeter(CHAT, 200, { 'content-type': 'text/event-stream' });
    const toClient: Uint8Array[] = [];
    for (const chunk of cutAt(withUsage, [17, 400, 401, 950])) {
      meter.observe(chunk);
      toClient.push(filter.transform(chunk));
    }
    toClient.push(filter.flush());
    assert.equal(Buffer.concat(toClient).toString(), withoutUsage);
    assert.deepEqual(meter.finish(), {
      usage: { inputTokens: 100, outputTokens: 37, cacheReadInputTokens: 20, cacheWriteInputTokens: 0 },
      reported: true,
      responseModel: 'openai.gpt-oss-120b-1:0',
    });
  });

  it('holds back at most the event being received', () => {
    const filter = new UsageChunkFilter();
    const events = chatSse(true).split(/(?<=\n\n)/);
    let sent = '';
    let received = '';
    for (const event of events) {
      const half = Math.floor(event.length / 2);
      received += Buffer.from(filter.transform(utf8(event.slice(0, half)))).toString();
      received += Buffer.from(filter.transform(utf8(event.slice(half)))).toString();
      sent += event;
      // Everything up to the end of the last whole event is out, except a dropped usage chunk.
      assert.equal(received, sent.replace(/data: \{[^\n]*"choices":\[\],[^\n]*\n\n/, ''));
    }
  });

  it('keeps chunks with empty choices that carry no usage, and other events untouched', () => {
    const text = ': keep-alive\n\ndata: {"choices":[],"prompt_filter_results":[]}\n\nevent: other\ndata: {"choices":[],\ndata: "usage":null}\n\nid: 3\n\n';
    for (const chunks of everySplit(utf8(text))) assert.equal(through(new UsageChunkFilter(), chunks), text);
  });

  it('passes an event larger than its hold limit straight through', () => {
    const big = `data: {"choices":[{"delta":{"content":"${'x'.repeat(MAX_HELD_EVENT_BYTES + 10)}"}}]}\n\n`;
    const filter = new UsageChunkFilter();
    const firstPart = utf8(big.slice(0, MAX_HELD_EVENT_BYTES + 100));
    const out = filter.transform(firstPart);
    assert.equal(out.byteLength, firstPart.byteLength); // not held back
    const rest = filter.transform(utf8(big.slice(MAX_HELD_EVENT_BYTES + 100) + chatSse(true)));
    assert.equal(Buffer.concat([out, rest, filter.flush()]).toString(), big + chatSse(false));
  });

  it('returns an unfinished last event at flush', () => {
    const text = `${chatSse(false)}data: {"choices":[]`;
    assert.equal(through(new UsageChunkFilter(), oneBytePerChunk(utf8(text))), text);
  });

  it('does not keep views of the chunks it was given', () => {
    const filter = new UsageChunkFilter();
    const out: Uint8Array[] = [];
    for (const piece of cutAt(withUsage, [10, 200, 201, 700])) {
      const chunk = new Uint8Array(piece);
      out.push(filter.transform(chunk));
      chunk.fill(0x21);
    }
    out.push(filter.flush());
    assert.equal(Buffer.concat(out).toString(), withoutUsage);
  });
});
