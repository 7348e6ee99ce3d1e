// A fresh Node process that loads the relay's Lambda bundle the way the managed runtime does and
// answers one Function URL event; or, with BOOT_MODE=direct, makes the same call straight to the
// fake (the baseline). Plain JavaScript on purpose: nothing but Node itself is loaded before the
// bundle, as in Lambda. Prints one JSON line of timings, in ms since this process started
// (performance.timeOrigin is the process start).
import http from 'node:http';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const scriptStartMs = performance.now();
let answeredMs;

/** The client has the whole answer: say so at once, so the parent's wall clock stops here. */
function answered() {
  answeredMs = performance.now();
  process.stdout.write('ANSWERED\n');
}

function report(timings) {
  process.stdout.write(`BOOT ${JSON.stringify(timings)}\n`);
  // Keep-alive sockets would hold the process open; the answer is all that is measured.
  process.exit(0);
}

// What the managed runtime provides: streamifyResponse marks the handler, and
// HttpResponseStream.from arranges for the JSON prelude + 8 NUL bytes to precede the first write.
function installAwslambdaGlobal() {
  const target = (globalThis.awslambda ??= {});
  target.streamifyResponse = (handler) => handler;
  target.HttpResponseStream = {
    from(stream, prelude) {
      stream.setContentType('application/vnd.awslambda.http-integration-response');
      stream._onBeforeFirstWrite = (write) => {
        write(JSON.stringify(prelude));
        write(Buffer.alloc(8));
      };
      return stream;
    },
  };
}

class ResponseStream extends Writable {
  statusCode = undefined;
  #first = true;
  #prelude = Buffer.alloc(0);
  done = new Promise((resolve) => {
    this.once('finish', resolve);
    this.once('close', resolve);
  });
  setContentType() {}
  write(chunk, encoding, callback) {
    if (this.#first) {
      this.#first = false;
      this._onBeforeFirstWrite?.((early) => super.write(early));
    }
    return super.write(chunk, encoding, callback);
  }
  _write(chunk, _encoding, callback) {
    if (this.#prelude !== undefined) {
      this.#prelude = Buffer.concat([this.#prelude, chunk]);
      const end = this.#prelude.indexOf(Buffer.alloc(8));
      if (end !== -1) {
        this.statusCode = JSON.parse(this.#prelude.subarray(0, end).toString('utf8')).statusCode;
        this.#prelude = undefined;
      }
    }
    callback();
  }
}

async function main(mode) {
  if (mode === 'direct') {
    const call = JSON.parse(process.env.BOOT_DIRECT);
    const status = await new Promise((resolve, reject) => {
      const req = http.request(call.url, { method: call.method, headers: call.headers }, (res) => {
        res.resume();
        res.on('end', () => {
          answered();
          resolve(res.statusCode);
        });
      });
      req.on('error', reject);
      req.end(Buffer.from(call.body, 'base64'));
    });
    const doneMs = performance.now();
    report({ scriptStartMs, initMs: scriptStartMs, answerMs: answeredMs, handlerDoneMs: doneMs, status });
  } else {
    installAwslambdaGlobal();
    const module = await import(pathToFileURL(process.env.BOOT_BUNDLE).href);
    const initMs = performance.now();
    const stream = new ResponseStream();
    stream.once('finish', answered);
    await module.handler(JSON.parse(process.env.BOOT_EVENT), stream, { awsRequestId: 'cold-start', getRemainingTimeInMillis: () => 900_000 });
    const handlerDoneMs = performance.now();
    if (!stream.writableEnded) stream.end();
    await stream.done;
    report({ scriptStartMs, initMs, answerMs: answeredMs ?? handlerDoneMs, handlerDoneMs, status: stream.statusCode });
  }
}

await main(process.env.BOOT_MODE);
