import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Ledger, replayRecordFromLine } from '../accounting/ledger.js';
import { CliError, EXIT, type CliCommand } from './io.js';
import { openStoreTarget } from './target.js';

export const LEDGER_HELP = `relay ledger replay [FILE | --file FILE] [--data-dir D | --table NAME | --stack NAME] [--region R]

Applies the ledger writes the relay could not make. When a usage write to DynamoDB fails past its
retries, the relay logs one JSON record with message "ledger-write-failed" and a "replay" object;
feed those log lines (JSON lines; other lines are skipped, CloudWatch prefixes are fine) from FILE
or standard input. Each record is applied exactly once: replaying the same records again changes
nothing (markers LEDGER#<request id>#<part>, kept 90 days). Run one replay at a time.

Prints one JSON line per record: {"callId", "parts": {"key": "applied" | "already-applied" | "key-missing", ...}}.
Exit codes: 0 ok, 1 some lines were damaged records (the others were applied), 2 usage, 3 store unavailable.
`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  file: { type: 'string' },
  'data-dir': { type: 'string' },
  table: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

/** `relay ledger replay`; `input` lets tests pass a stream instead of standard input. */
export function ledgerCommand(input: () => Readable = () => process.stdin): CliCommand {
  return async (args, io) => {
    let parsed: { values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values']; positionals: string[] };
    try {
      parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new CliError(`${(error as Error).message}\n\n${LEDGER_HELP}`, EXIT.usage);
    }
    const { values, positionals } = parsed;
    const [action, ...rest] = positionals;
    if (values.help || action === 'help') {
      io.stdout(LEDGER_HELP);
      return EXIT.ok;
    }
    if (action !== 'replay')
      throw new CliError(`${action ? `Unknown command "ledger ${action}".` : 'relay ledger: say "replay".'}\n\n${LEDGER_HELP}`, EXIT.usage);
    if (rest.length > 1 || (rest.length === 1 && values.file !== undefined))
      throw new CliError('relay ledger replay: give one file, as an argument or with --file.', EXIT.usage);
    const file = values.file ?? rest[0];
    const source = file && file !== '-' ? createReadStream(resolve(io.cwd, file)) : input();

    const target = await openStoreTarget({ dataDir: values['data-dir'], table: values.table, stack: values.stack, region: values.region }, io);
    // Replays run one at a time, so the idempotency scheme needs no coordination (see lambda/accounting/ledger.ts).
    const ledger = new Ledger({
      doc: target.doc,
      table: target.store.tableName,
      clock: Date.now,
      log: (level, message, fields) => io.stderr(`${JSON.stringify({ level, message, ...fields })}\n`),
    });
    let damaged = 0;
    let replayed = 0;
    let lineNumber = 0;
    try {
      for await (const line of createInterface({ input: source, crlfDelay: Infinity })) {
        lineNumber++;
        let record;
        try {
          record = replayRecordFromLine(line);
        } catch (error) {
          damaged++;
          io.stderr(`line ${lineNumber}: ${(error as Error).message}\n`);
          continue;
        }
        if (!record) continue;
        let parts;
        try {
          parts = await ledger.replay(record);
        } catch (error) {
          throw new CliError(
            `relay ledger replay: line ${lineNumber} (request ${record.callId}) could not be applied: ${(error as Error).name}: ${(error as Error).message}. ` +
              `Records before it are applied; run the replay again with the same input when the table is reachable.`,
            EXIT.unavailable,
          );
        }
        replayed++;
        io.stdout(`${JSON.stringify({ callId: record.callId, parts })}\n`);
      }
    } finally {
      await target.close();
    }
    io.stderr(`${replayed} record(s) replayed${damaged ? `, ${damaged} damaged line(s) skipped` : ''} (store: ${target.description}).\n`);
    return damaged > 0 ? EXIT.refused : EXIT.ok;
  };
}

export const runLedger: CliCommand = ledgerCommand();
