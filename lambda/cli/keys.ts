import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KeyApiError } from '../http/errors.js';
import { KeyManagement } from '../keys/management.js';
import { tokenFromIdentifier } from '../keys/secrets.js';
import type { JsonValue } from '../keys/types.js';
import { CliError, EXIT, type CliCommand, type CliIo } from './io.js';
import { throughRelay, type KeyAdmin } from './local-relay.js';
import { withStoreTarget, type StoreTarget } from './target.js';

export const KEYS_HELP = `relay keys <command> [options]

Commands (JSON out; requests and answers have LiteLLM's field names):
  create                          create a key; prints it once ("key"), with its token
  list                            list keys (--alias, --user-id, --team-id, --page, --size, --tokens-only)
  info <key|token>                show a key
  update <key|token>              change fields (a value of null clears one)
  block <key|token>               refuse the key until unblocked
  unblock <key|token>
  regenerate <key|token>          new secret, same policy and spend; the old one stops working
  delete <key|token>...           delete keys (or --alias A, repeatable)
A key can also be named with --alias A instead of <key|token>.

Fields (create, update, regenerate):
  --alias A  --models M[,M…]  --duration 30d  --max-budget USD  --budget-duration 30d
  --tpm-limit N  --rpm-limit N  --max-parallel-requests N  --user-id U  --team-id T
  --allowed-operations Converse,ConverseStream  --allowed-routes converse,!agents
  --guardrails ID  --knowledge-bases ID  --agents ID[/ALIAS]  --flows ID[/ALIAS]   (object_permission)
  --metadata '{"team":"x"}'  --spend USD  --blocked  --json '{"any LiteLLM field": …}'

Where the keys are:
  (default)        the local store in --data-dir, else RELAY_DATA_DIR, else .relay/; while
                   \`npm start\` runs on it, changes go through its admin API and apply at once
                   (with the master key from RELAY_MASTER_KEY or the data dir's master-key file)
  --table NAME     a DynamoDB table (or RELAY_KEYS_TABLE), with your AWS credentials
  --stack NAME     the table from that stack's KeysTableName output
  --region R

Exit codes: 0 ok, 1 refused (unknown key, invalid field), 2 usage, 3 store unavailable.
`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  'data-dir': { type: 'string' },
  table: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  alias: { type: 'string', multiple: true },
  'key-alias': { type: 'string' },
  models: { type: 'string', multiple: true },
  duration: { type: 'string' },
  'max-budget': { type: 'string' },
  'budget-duration': { type: 'string' },
  spend: { type: 'string' },
  'tpm-limit': { type: 'string' },
  'rpm-limit': { type: 'string' },
  'max-parallel-requests': { type: 'string' },
  'user-id': { type: 'string' },
  'team-id': { type: 'string' },
  metadata: { type: 'string' },
  'allowed-operations': { type: 'string', multiple: true },
  'allowed-routes': { type: 'string', multiple: true },
  guardrails: { type: 'string', multiple: true },
  'knowledge-bases': { type: 'string', multiple: true },
  agents: { type: 'string', multiple: true },
  flows: { type: 'string', multiple: true },
  blocked: { type: 'boolean' },
  json: { type: 'string' },
  page: { type: 'string' },
  size: { type: 'string' },
  'tokens-only': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const NUMBER_FIELDS = {
  'max-budget': 'max_budget',
  spend: 'spend',
  'tpm-limit': 'tpm_limit',
  'rpm-limit': 'rpm_limit',
  'max-parallel-requests': 'max_parallel_requests',
} as const;
const STRING_FIELDS = { duration: 'duration', 'budget-duration': 'budget_duration', 'user-id': 'user_id', 'team-id': 'team_id' } as const;
const LIST_FIELDS = { models: 'models', 'allowed-operations': 'allowed_operations', 'allowed-routes': 'allowed_routes' } as const;
const PERMISSION_FIELDS = { guardrails: 'guardrails', 'knowledge-bases': 'knowledge_bases', agents: 'agents', flows: 'flows' } as const;

export const runKeys: CliCommand = async (args, io) => {
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new CliError(`${(error as Error).message}\n\n${KEYS_HELP}`, EXIT.usage);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command || command === 'help') {
    io.stdout(KEYS_HELP);
    return command || values.help ? EXIT.ok : EXIT.usage;
  }
  const action = ACTIONS[command];
  if (!action) throw new CliError(`Unknown command "keys ${command}".\n\n${KEYS_HELP}`, EXIT.usage);

  const options = { dataDir: values['data-dir'], table: values.table, stack: values.stack, region: values.region };
  return withStoreTarget(options, io, (target) => {
    const direct = new KeyManagement({ store: target.store });
    // A running local relay applies changes (and forgets its cached copy) at once; see local-relay.ts.
    const management = target.relay ? throughRelay(target.relay, direct, io) : direct;
    return action({ values, positionals: rest, target, management });
  });
};

interface ActionContext {
  readonly values: Values;
  readonly positionals: readonly string[];
  readonly target: StoreTarget;
  readonly management: KeyAdmin;
}

const ACTIONS: Readonly<Record<string, (context: ActionContext) => Promise<JsonValue>>> = {
  create: async ({ values, positionals, management }) => {
    noPositionals(positionals, 'create');
    return management.generate(fieldsFrom(values, { aliasFlag: true }));
  },
  list: async ({ values, positionals, management }) => {
    noPositionals(positionals, 'list');
    const query = new URLSearchParams();
    const alias = single(values.alias, '--alias');
    if (alias !== undefined) query.set('key_alias', alias);
    if (values['user-id'] !== undefined) query.set('user_id', values['user-id']);
    if (values['team-id'] !== undefined) query.set('team_id', values['team-id']);
    if (values.page !== undefined) query.set('page', values.page);
    query.set('size', values.size ?? '100');
    query.set('return_full_object', values['tokens-only'] ? 'false' : 'true');
    return management.list(query);
  },
  info: async (context) => context.management.info(await oneKey(context, 'info')),
  update: async (context) => context.management.update({ ...fieldsFrom(context.values, { aliasFlag: false }), key: await oneKey(context, 'update') }),
  block: async (context) => context.management.setBlocked({ key: await oneKey(context, 'block') }, true),
  unblock: async (context) => context.management.setBlocked({ key: await oneKey(context, 'unblock') }, false),
  regenerate: async (context) =>
    context.management.regenerate({ ...fieldsFrom(context.values, { aliasFlag: false }), key: await oneKey(context, 'regenerate') }),
  delete: async ({ values, positionals, management }) => {
    const aliases = values.alias ?? [];
    if (aliases.length > 0 && positionals.length > 0) throw new CliError('keys delete: name keys either as arguments or with --alias, not both.', EXIT.usage);
    if (aliases.length > 0) return management.delete({ key_aliases: aliases });
    if (positionals.length === 0) throw new CliError('keys delete: name at least one key, token, or --alias.', EXIT.usage);
    return management.delete({ keys: [...positionals] });
  },
};

/**
 * The key an action is about, as a token: a positional secret or token, or --alias. For
 * update and regenerate --key-alias sets a new alias, so --alias can keep naming the key.
 */
async function oneKey({ values, positionals, target }: ActionContext, command: string): Promise<string> {
  const alias = single(values.alias, '--alias');
  if (alias !== undefined && positionals.length > 0)
    throw new CliError(`keys ${command}: name the key either as an argument or with --alias, not both.`, EXIT.usage);
  if (alias !== undefined) {
    const record = await target.store.getByAlias(alias);
    if (!record) throw new KeyApiError(404, 'not_found_error', `Key not found: no key with key_alias "${alias}".`, 'key_alias');
    return record.token;
  }
  if (positionals.length !== 1) throw new CliError(`keys ${command}: name exactly one key (sk-…), token, or --alias.`, EXIT.usage);
  const identifier = positionals[0]!;
  // Let validation name the problem if it is neither; pass tokens on as they are.
  return tokenFromIdentifier(identifier) ?? identifier;
}

/** Flags → a LiteLLM request body; validation happens where the API's does, with its messages. */
function fieldsFrom(values: Values, options: { aliasFlag: boolean }): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (values.json !== undefined) {
    let extra: unknown;
    try {
      extra = JSON.parse(values.json);
    } catch {
      throw new CliError('--json must be a JSON object.', EXIT.usage);
    }
    if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) throw new CliError('--json must be a JSON object.', EXIT.usage);
    Object.assign(body, extra);
  }
  const alias = values['key-alias'] ?? (options.aliasFlag ? single(values.alias, '--alias') : undefined);
  if (alias !== undefined) body.key_alias = nullable(alias);
  for (const [flag, field] of Object.entries(NUMBER_FIELDS)) {
    const raw = values[flag as keyof typeof NUMBER_FIELDS];
    if (raw !== undefined) body[field] = raw === 'null' ? null : numberOrText(raw);
  }
  for (const [flag, field] of Object.entries(STRING_FIELDS)) {
    const raw = values[flag as keyof typeof STRING_FIELDS];
    if (raw !== undefined) body[field] = nullable(raw);
  }
  for (const [flag, field] of Object.entries(LIST_FIELDS)) {
    const raw = values[flag as keyof typeof LIST_FIELDS];
    if (raw !== undefined) body[field] = raw.length === 1 && raw[0] === 'null' ? null : splitList(raw);
  }
  const permission: Record<string, unknown> = {};
  for (const [flag, field] of Object.entries(PERMISSION_FIELDS)) {
    const raw = values[flag as keyof typeof PERMISSION_FIELDS];
    if (raw !== undefined) permission[field] = raw.length === 1 && raw[0] === 'null' ? null : splitList(raw);
  }
  if (Object.keys(permission).length > 0) {
    const existing = body.object_permission;
    body.object_permission = { ...(existing && typeof existing === 'object' ? existing : {}), ...permission };
  }
  if (values.metadata !== undefined) {
    try {
      body.metadata = values.metadata === 'null' ? null : (JSON.parse(values.metadata) as unknown);
    } catch {
      throw new CliError('--metadata must be JSON, e.g. \'{"team":"x"}\'.', EXIT.usage);
    }
  }
  if (values.blocked) body.blocked = true;
  return body;
}

function splitList(values: readonly string[]): string[] {
  return values
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter(Boolean);
}

function numberOrText(raw: string): number | string {
  const value = Number(raw);
  return raw.trim() !== '' && Number.isFinite(value) ? value : raw;
}

function nullable(raw: string): string | null {
  return raw === 'null' ? null : raw;
}

function single(values: readonly string[] | undefined, flag: string): string | undefined {
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw new CliError(`${flag} may be given once here.`, EXIT.usage);
  return values[0];
}

function noPositionals(positionals: readonly string[], command: string): void {
  if (positionals.length > 0) throw new CliError(`keys ${command} takes no arguments (got "${positionals[0]}").`, EXIT.usage);
}

export type { CliIo };
