import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Leases, RateWindows } from '../accounting/limits.js';
import { UsageReports } from '../accounting/report.js';
import { CliError, EXIT, type CliCommand } from './io.js';
import { withStoreTarget } from './target.js';

export const USAGE_HELP = `relay usage (--key <key|token> | --alias A | --master) [--start YYYY-MM-DD] [--end YYYY-MM-DD]

Per-day, per-model tokens, requests and cost of a key (the same JSON as GET /key/usage):
  {"key", "key_alias", "start", "end", "totals": {...}, "daily": [{"date", "model", "requests",
   "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_write_input_tokens",
   "spend", "spend_nanos", ...}]}
Days are UTC and inclusive; default: the 30 days up to today. --master reports master-key calls.

Where the data is: as for relay keys (--data-dir, --table NAME / RELAY_KEYS_TABLE, --stack NAME, --region R).
Exit codes: 0 ok, 1 refused (unknown key, bad date), 2 usage, 3 store unavailable.
`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  key: { type: 'string' },
  alias: { type: 'string' },
  master: { type: 'boolean' },
  start: { type: 'string' },
  end: { type: 'string' },
  'data-dir': { type: 'string' },
  table: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

export const runUsage: CliCommand = async (args, io) => {
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];
  try {
    ({ values } = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: false, strict: true }));
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${USAGE_HELP}`, EXIT.usage);
  }
  if (values.help) {
    io.stdout(USAGE_HELP);
    return EXIT.ok;
  }
  const named = [values.key !== undefined, values.alias !== undefined, values.master === true].filter(Boolean).length;
  if (named !== 1) throw new CliError(`relay usage: name the key with exactly one of --key, --alias or --master.\n\n${USAGE_HELP}`, EXIT.usage);

  const options = { dataDir: values['data-dir'], table: values.table, stack: values.stack, region: values.region };
  return withStoreTarget(
    options,
    io,
    (target) => {
      const deps = { doc: target.doc, table: target.store.tableName, clock: Date.now };
      const reports = new UsageReports({ ...deps, store: target.store, windows: new RateWindows(deps), leases: new Leases(deps) });
      return reports.usageFor({ key: values.master ? 'master' : values.key, alias: values.alias }, { start: values.start, end: values.end });
    },
    'relay usage',
  );
};
