/**
 * Item calls on the relay's one table (layout: ./schema.ts), for the key store and accounting.
 *
 * - Conditional writes answer `applied` or `condition-failed`: a lost condition is an outcome
 *   the caller decides on (a race lost, a key gone), not an exception.
 * - Expressions are built from attribute paths and values; every name and value goes through a
 *   generated placeholder (#n0, :v0…), so reserved words, `rsv:<call id>` attributes and lease
 *   ids need no escaping, and no command carries a placeholder it does not use (DynamoDB refuses those).
 * - Every other failure is either passed on as the SDK raised it, or — for a table opened with
 *   `failures: 'store-unavailable'` — turned into StoreUnavailableError naming the operation.
 *
 * Only single-item writes: dynalite (the embedded store) has no TransactWriteItems, and one
 * implementation serves both.
 */
import { BatchGetCommand, DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { KEY_SORT_KEY, keyPartition } from './schema.js';

export type Item = Record<string, unknown>;

export interface ItemKey {
  readonly pk: string;
  readonly sk: string;
}

/** The key item of a token (KEY#<token> / KEY). */
export function keyItemKey(token: string): ItemKey {
  return { pk: keyPartition(token), sk: KEY_SORT_KEY };
}

export function isConditionalFailure(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}

/** The table could not be read or written (network, throttling, permissions…). */
export class StoreUnavailableError extends Error {
  constructor(
    readonly operation: string,
    cause: unknown,
  ) {
    super(`The key store is unavailable (${operation}: ${describeCause(cause)}).`, { cause });
    this.name = 'StoreUnavailableError';
  }
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.name && cause.name !== 'Error' ? cause.name : cause.message;
  return String(cause);
}

// ── expressions ──

/** An attribute, or a path into a map attribute: ['leases', id] is leases.<id>. */
export type Path = string | readonly string[];

/** The placeholders of one command; shared by its update, condition and projection. */
export class Placeholders {
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private readonly byName = new Map<string, string>();

  name(path: Path): string {
    return (typeof path === 'string' ? [path] : path)
      .map((part) => {
        let placeholder = this.byName.get(part);
        if (placeholder === undefined) {
          placeholder = `#n${this.byName.size}`;
          this.byName.set(part, placeholder);
          this.names[placeholder] = part;
        }
        return placeholder;
      })
      .join('.');
  }

  value(value: unknown): string {
    const placeholder = `:v${Object.keys(this.values).length}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  /** The ExpressionAttributeNames / Values of a command; an empty map is left out, as DynamoDB requires. */
  attributes(): { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> } {
    return {
      ...(Object.keys(this.names).length > 0 ? { ExpressionAttributeNames: this.names } : {}),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
    };
  }
}

/** A computed value on the right of SET. */
export type Operand = (p: Placeholders) => string;

/** `if_not_exists(path, fallback)`: the attribute's value, or the fallback when it has none. */
export function ifNotExists(path: Path, fallback: unknown): Operand {
  return (p) => `if_not_exists(${p.name(path)}, ${p.value(fallback)})`;
}

export function plus(operand: Operand, value: number): Operand {
  return (p) => `${operand(p)} + ${p.value(value)}`;
}

/** One UpdateItem's actions. */
export class Update {
  private readonly actions: Array<{ clause: 'SET' | 'REMOVE' | 'ADD' | 'DELETE'; render: (p: Placeholders) => string }> = [];

  /** Atomic increment (negative to decrement), or add members to a set. */
  add(path: Path, value: number | ReadonlySet<string>): this {
    this.actions.push({ clause: 'ADD', render: (p) => `${p.name(path)} ${p.value(value)}` });
    return this;
  }

  /** A plain value, or an Operand computed from the item (ifNotExists, plus). */
  set(path: Path, value: unknown): this {
    this.actions.push({
      clause: 'SET',
      render: (p) => `${p.name(path)} = ${typeof value === 'function' ? (value as Operand)(p) : p.value(value)}`,
    });
    return this;
  }

  /** SET when there is a value; REMOVE for null or undefined. */
  setOrRemove(path: Path, value: unknown): this {
    return value === null || value === undefined ? this.remove(path) : this.set(path, value);
  }

  remove(path: Path): this {
    this.actions.push({ clause: 'REMOVE', render: (p) => p.name(path) });
    return this;
  }

  /** Take members out of a set. */
  delete(path: Path, members: ReadonlySet<string>): this {
    this.actions.push({ clause: 'DELETE', render: (p) => `${p.name(path)} ${p.value(members)}` });
    return this;
  }

  render(p: Placeholders): string {
    const clauses = new Map<string, string[]>();
    for (const action of this.actions) {
      const rendered = action.render(p);
      clauses.set(action.clause, [...(clauses.get(action.clause) ?? []), rendered]);
    }
    return [...clauses].map(([clause, actions]) => `${clause} ${actions.join(', ')}`).join(' ');
  }
}

/** A ConditionExpression, rendered against one command's placeholders. */
export type Condition = (p: Placeholders) => string;

export function exists(path: Path): Condition {
  return (p) => `attribute_exists(${p.name(path)})`;
}

export function notExists(path: Path): Condition {
  return (p) => `attribute_not_exists(${p.name(path)})`;
}

export function equals(path: Path, value: unknown): Condition {
  return (p) => `${p.name(path)} = ${p.value(value)}`;
}

export function below(path: Path, value: number): Condition {
  return (p) => `${p.name(path)} < ${p.value(value)}`;
}

export function atMost(path: Path, value: number): Condition {
  return (p) => `${p.name(path)} <= ${p.value(value)}`;
}

export function sizeBelow(path: Path, value: number): Condition {
  return (p) => `size(${p.name(path)}) < ${p.value(value)}`;
}

/** A string set (or string, list) attribute holds `value`. */
export function contains(path: Path, value: string): Condition {
  return (p) => `contains(${p.name(path)}, ${p.value(value)})`;
}

export function not(condition: Condition): Condition {
  return (p) => `NOT ${condition(p)}`;
}

export function or(...conditions: Condition[]): Condition {
  return (p) => `(${conditions.map((c) => c(p)).join(' OR ')})`;
}

/** All of them; undefined entries are skipped, so optional terms can be written inline. */
export function and(...conditions: Array<Condition | undefined>): Condition {
  return (p) =>
    conditions
      .filter((c): c is Condition => c !== undefined)
      .map((c) => c(p))
      .join(' AND ');
}

/** The key item exists and is not a regenerated key's tombstone. */
export const liveKey: Condition = and(exists('pk'), notExists('superseded_by'));

// ── calls ──

export type WriteResult =
  | {
      readonly status: 'applied';
      /** The item after the write (update with returnNew) or before it (delete with returnOld). */
      readonly item?: Item;
    }
  | {
      readonly status: 'condition-failed';
      /** DynamoDB's ConditionalCheckFailedException, for callers that cannot expect a lost condition. */
      readonly cause: unknown;
    };

/**
 * For a write the caller counts on: a lost condition is thrown as DynamoDB raised it
 * (ConditionalCheckFailedException), to be handled like any other failure of the write.
 */
export function expectApplied(result: WriteResult): Extract<WriteResult, { status: 'applied' }> {
  if (result.status === 'condition-failed') throw result.cause;
  return result;
}

export interface TableOptions {
  /**
   * What a failure other than a lost condition becomes. The key store turns every one into
   * StoreUnavailableError (its callers answer 503 and fail closed); accounting keeps the SDK's
   * error, which its retries and logs name.
   */
  readonly failures?: 'as-raised' | 'store-unavailable';
}

export interface QueryRange {
  /** Query this global secondary index instead of the table. */
  readonly index?: string;
  /** The partition key's attribute and value. */
  readonly partition: readonly [attribute: string, value: string];
  /** Sort keys between these two, inclusive. */
  readonly sortBetween?: readonly [attribute: string, from: string, to: string];
  readonly descending?: boolean;
}

/** BatchGetItem's limit of keys per call. */
const BATCH_GET_LIMIT = 100;
const BATCH_GET_ROUNDS = 8;

export class ItemTable {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly name: string,
    private readonly options: TableOptions = {},
  ) {}

  /** Strongly consistent unless told otherwise; `projection` reads only those attributes. */
  async get(key: ItemKey, options: { consistent?: boolean; projection?: readonly Path[] } = {}): Promise<Item | undefined> {
    const p = new Placeholders();
    const projection = options.projection?.map((path) => p.name(path)).join(', ');
    const result = await this.call('GetItem', () =>
      this.doc.send(
        new GetCommand({
          TableName: this.name,
          Key: key,
          ...(options.consistent === false ? {} : { ConsistentRead: true }),
          ...(projection !== undefined ? { ProjectionExpression: projection } : {}),
          ...p.attributes(),
        }),
      ),
    );
    return result.Item;
  }

  async put<T extends ItemKey>(item: T, condition?: Condition): Promise<WriteResult> {
    const p = new Placeholders();
    const expression = condition?.(p);
    return this.write('PutItem', async () => {
      await this.doc.send(
        new PutCommand({ TableName: this.name, Item: item as Item, ...(expression ? { ConditionExpression: expression } : {}), ...p.attributes() }),
      );
      return undefined;
    });
  }

  /** Writes the item only if none with its key exists. */
  async putIfAbsent<T extends ItemKey>(item: T): Promise<WriteResult> {
    return this.put(item, notExists('pk'));
  }

  async update(key: ItemKey, update: Update, options: { condition?: Condition; returnNew?: boolean } = {}): Promise<WriteResult> {
    const p = new Placeholders();
    const expression = update.render(p);
    const condition = options.condition?.(p);
    return this.write('UpdateItem', async () => {
      const result = await this.doc.send(
        new UpdateCommand({
          TableName: this.name,
          Key: key,
          UpdateExpression: expression,
          ...(condition ? { ConditionExpression: condition } : {}),
          ...p.attributes(),
          ...(options.returnNew ? { ReturnValues: 'ALL_NEW' as const } : {}),
        }),
      );
      return result.Attributes;
    });
  }

  async delete(key: ItemKey, options: { condition?: Condition; returnOld?: boolean } = {}): Promise<WriteResult> {
    const p = new Placeholders();
    const condition = options.condition?.(p);
    return this.write('DeleteItem', async () => {
      const result = await this.doc.send(
        new DeleteCommand({
          TableName: this.name,
          Key: key,
          ...(condition ? { ConditionExpression: condition } : {}),
          ...p.attributes(),
          ...(options.returnOld ? { ReturnValues: 'ALL_OLD' as const } : {}),
        }),
      );
      return result.Attributes;
    });
  }

  /**
   * Items by key, read consistently, in batches of 100 (BatchGetItem's limit). Keys DynamoDB
   * leaves unprocessed (throttling) are asked for again with backoff; after 8 rounds the store
   * counts as unavailable.
   */
  async batchGet(keys: readonly ItemKey[]): Promise<Item[]> {
    const found: Item[] = [];
    for (let start = 0; start < keys.length; start += BATCH_GET_LIMIT) {
      let pending: Item[] = keys.slice(start, start + BATCH_GET_LIMIT).map((key) => ({ ...key }));
      for (let round = 0; pending.length > 0; round++) {
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 25 * 2 ** round)));
        if (round > BATCH_GET_ROUNDS) throw this.failure('BatchGetItem', new Error('keys left unprocessed'));
        const batch = pending;
        const result = await this.call('BatchGetItem', () =>
          this.doc.send(new BatchGetCommand({ RequestItems: { [this.name]: { Keys: batch, ConsistentRead: true } } })),
        );
        found.push(...(result.Responses?.[this.name] ?? []));
        pending = (result.UnprocessedKeys?.[this.name]?.Keys as Item[] | undefined) ?? [];
      }
    }
    return found;
  }

  /** Every item of a key range, page by page (the next page is read once the last item of this one was taken). */
  async *query(range: QueryRange): AsyncGenerator<Item> {
    const p = new Placeholders();
    const [partitionAttribute, partitionValue] = range.partition;
    let keyCondition = `${p.name(partitionAttribute)} = ${p.value(partitionValue)}`;
    if (range.sortBetween) {
      const [sortAttribute, from, to] = range.sortBetween;
      keyCondition += ` AND ${p.name(sortAttribute)} BETWEEN ${p.value(from)} AND ${p.value(to)}`;
    }
    let startKey: Item | undefined;
    do {
      const page = await this.call('Query', () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.name,
            ...(range.index ? { IndexName: range.index } : {}),
            KeyConditionExpression: keyCondition,
            ...p.attributes(),
            ...(range.descending ? { ScanIndexForward: false } : {}),
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      yield* page.Items ?? [];
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  }

  /** Raises what this table makes of a failure (see TableOptions). */
  failure(operation: string, error: unknown): unknown {
    return this.options.failures === 'store-unavailable' ? new StoreUnavailableError(operation, error) : error;
  }

  private async write(operation: string, send: () => Promise<Item | undefined>): Promise<WriteResult> {
    try {
      const item = await send();
      return item === undefined ? { status: 'applied' } : { status: 'applied', item };
    } catch (error) {
      if (isConditionalFailure(error)) return { status: 'condition-failed', cause: error };
      throw this.failure(operation, error);
    }
  }

  private async call<T>(operation: string, send: () => Promise<T>): Promise<T> {
    try {
      return await send();
    } catch (error) {
      throw this.failure(operation, error);
    }
  }
}
