import {
  BatchGetCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  ALIAS_SORT_KEY,
  KEY_LIST_PARTITION,
  KEY_LIST_SORT_KEY,
  KEY_SORT_KEY,
  TABLE_SCHEMA,
  aliasPartition,
  keyPartition,
} from '../store/schema.js';
import { generateAccessKeyId } from './aws-credentials.js';
import { addDuration, parseDuration } from './duration.js';
import { StoreUnavailableError, duplicateAlias, keyNotFound } from './errors.js';
import { displayForm, generateSecret, hashSecret } from './secrets.js';
import { RESERVATION_PREFIX, RESERVED_ATTRIBUTE } from '../accounting/items.js';
import { systemClock, usdToNanos, type Clock, type JsonObject, type KeyRecord, type ObjectPermission } from './types.js';
import type { KeyChanges, ListQuery } from './validate.js';

/** How long an expired key stays readable (so /key/info and 401s can say "expired") before DynamoDB's TTL removes it. */
export const EXPIRED_KEY_RETENTION_SECONDS = 7 * 86_400;
/** How long a regenerated key's tombstone stays, so ledger writes still in flight can follow it to its successor. */
export const REGENERATED_TOMBSTONE_SECONDS = 86_400;
/**
 * An alias claim whose key item does not (yet) exist is respected for this long: creating a key
 * writes the claim first and the key item right after. Older orphaned claims (a crash between
 * the two writes, or a key removed by TTL) may be taken over.
 */
export const ALIAS_CLAIM_GRACE_MS = 60_000;
const MAX_REGENERATION_HISTORY = 20;

export interface CreatedKey {
  /** The secret: returned once, never stored. */
  readonly secret: string;
  readonly record: KeyRecord;
}

export interface RegeneratedKey extends CreatedKey {
  readonly previousToken: string;
}

export interface ListResult {
  readonly records: KeyRecord[];
  readonly total: number;
}

/** What the authenticator needs: nothing else of the store. */
export interface KeyLookup {
  getByHash(token: string): Promise<KeyRecord | undefined>;
  /** The token an AWS access key id was issued to (the key itself may since be gone: check it with getByHash). */
  getTokenByAccessKeyId(accessKeyId: string): Promise<string | undefined>;
}

/**
 * The AWS access key id lookup item: one small item per id, in its own partition (like the
 * alias claims), so the id → key lookup is a single GetItem and adds no index.
 */
export const ACCESS_KEY_SORT_KEY = 'AKID';
export function accessKeyPartition(accessKeyId: string): string {
  return `AKID#${accessKeyId}`;
}

interface AccessKeyItem {
  readonly pk: string;
  readonly sk: string;
  readonly token: string;
  readonly created_at: string;
}

interface AliasItem {
  readonly pk: string;
  readonly sk: string;
  readonly token: string;
  readonly claimed_at: string;
}

type Item = Record<string, unknown>;

/**
 * Virtual keys in the relay's DynamoDB table, with single-item conditional writes only:
 * dynalite (the embedded store) has no TransactWriteItems, and one implementation must serve
 * both. Multi-item changes are ordered so every intermediate state is safe:
 *   - alias uniqueness: the ALIAS#<alias> item is claimed with attribute_not_exists before the
 *     key item is written (an orphaned claim is taken over after ALIAS_CLAIM_GRACE_MS);
 *   - regenerate: the old key item is first marked `superseded_by` in one conditional update —
 *     from that instant the old secret is refused — and only then is the new item written.
 * "Live" means: the key item exists, is not superseded, and its `ttl` has not passed (dynalite
 * never expires items, and DynamoDB may take days to).
 */
export class KeyStore implements KeyLookup {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    readonly tableName: string,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Create a key; `changes` is a validated generate request. */
  async create(changes: KeyChanges): Promise<CreatedKey> {
    const now = this.clock();
    const secret = generateSecret();
    const token = hashSecret(secret);
    // The id's lookup item goes first: a key item never names an id that does not lead back to it.
    const accessKeyId = await this.claimAccessKeyId(token, now);
    const record = { ...buildRecord(token, displayForm(secret), changes, now), aws_access_key_id: accessKeyId };
    try {
      if (record.key_alias) await this.claimAlias(record.key_alias, token);
    } catch (error) {
      await this.releaseAccessKeyId(accessKeyId, token).catch(() => undefined);
      throw error;
    }
    try {
      // The listing entry before the key: a crash in between leaves an entry without a key,
      // which listing skips, never a key that /key/list cannot show.
      await this.putListEntry(record);
      await this.send('PutItem', () =>
        this.doc.send(
          new PutCommand({
            TableName: this.tableName,
            Item: toItem(record),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      await this.deleteListEntry(token).catch(() => undefined);
      if (record.key_alias) await this.releaseAlias(record.key_alias, token).catch(() => undefined);
      await this.releaseAccessKeyId(accessKeyId, token).catch(() => undefined);
      throw error;
    }
    return { secret, record };
  }

  async getTokenByAccessKeyId(accessKeyId: string): Promise<string | undefined> {
    const result = await this.send('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: accessKeyPartition(accessKeyId), sk: ACCESS_KEY_SORT_KEY }, ConsistentRead: true })),
    );
    const token = (result.Item as AccessKeyItem | undefined)?.token;
    return typeof token === 'string' ? token : undefined;
  }

  async getByHash(token: string): Promise<KeyRecord | undefined> {
    const item = await this.getKeyItem(token);
    return item && this.isLive(item) ? item : undefined;
  }

  async getBySecret(secret: string): Promise<KeyRecord | undefined> {
    return this.getByHash(hashSecret(secret));
  }

  async getByAlias(alias: string): Promise<KeyRecord | undefined> {
    const claim = await this.getAliasItem(alias);
    if (!claim) return undefined;
    const owner = await this.followSuccessors(claim.token);
    return owner && owner.key_alias === alias ? owner : undefined;
  }

  /** Keys newest first, filtered, one page of them, plus how many match in all. */
  async list(query: Omit<ListQuery, 'return_full_object'>): Promise<ListResult> {
    let matching: KeyRecord[];
    if (query.key_hash !== undefined || query.key_alias !== undefined) {
      const found = query.key_hash !== undefined ? await this.getByHash(query.key_hash) : await this.getByAlias(query.key_alias!);
      matching = found ? [found] : [];
      if (query.key_alias !== undefined) matching = matching.filter((record) => record.key_alias === query.key_alias);
    } else {
      matching = await this.queryAll(query);
    }
    matching = matching.filter(
      (record) => (query.user_id === undefined || record.user_id === query.user_id) && (query.team_id === undefined || record.team_id === query.team_id),
    );
    const start = (query.page - 1) * query.size;
    return { records: matching.slice(start, start + query.size), total: matching.length };
  }

  /** Apply a validated change set (LiteLLM's /key/update semantics: null clears, absent keeps). */
  async update(token: string, changes: KeyChanges): Promise<KeyRecord> {
    const current = await this.getByHash(token);
    if (!current) throw keyNotFound('key', shortToken(token));
    const now = this.clock();
    const aliasChange = 'key_alias' in changes && (changes.key_alias ?? undefined) !== current.key_alias;
    const newAlias = aliasChange ? (changes.key_alias ?? undefined) : undefined;
    if (newAlias) await this.claimAlias(newAlias, token);
    let updated: KeyRecord;
    try {
      updated = await this.updateLive(token, buildUpdate(changes, now));
    } catch (error) {
      if (newAlias) await this.releaseAlias(newAlias, token).catch(() => undefined);
      throw error;
    }
    if (aliasChange && current.key_alias) await this.releaseAlias(current.key_alias, token).catch(() => undefined);
    return updated;
  }

  async setBlocked(token: string, blocked: boolean): Promise<KeyRecord> {
    return this.updateLive(token, buildUpdate({ blocked }, this.clock()));
  }

  /** Delete keys by token. All must exist, or nothing is deleted (404 naming the missing ones). */
  async delete(tokens: readonly string[]): Promise<KeyRecord[]> {
    const found = await Promise.all(tokens.map(async (token) => [token, await this.getByHash(token)] as const));
    const missing = found.filter(([, record]) => !record).map(([token]) => shortToken(token));
    if (missing.length > 0) throw keyNotFound('keys', missing.join(', '));
    const deleted: KeyRecord[] = [];
    for (const [token] of found) {
      try {
        const result = await this.send('DeleteItem', () =>
          this.doc.send(
            new DeleteCommand({
              TableName: this.tableName,
              Key: { pk: keyPartition(token), sk: KEY_SORT_KEY },
              ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(superseded_by)',
              ReturnValues: 'ALL_OLD',
            }),
          ),
        );
        const record = fromItem(result.Attributes);
        await this.deleteListEntry(token).catch(() => undefined);
        if (record) {
          deleted.push(record);
          if (record.key_alias) await this.releaseAlias(record.key_alias, token).catch(() => undefined);
          // Tidiness only: an id whose key is gone is refused anyway (getByHash finds nothing).
          if (record.aws_access_key_id) await this.releaseAccessKeyId(record.aws_access_key_id, token).catch(() => undefined);
        }
      } catch (error) {
        // Deleted or regenerated by someone else since we looked: it is gone either way.
        if (!isConditionalFailure(error)) throw error;
      }
    }
    return deleted;
  }

  /** Delete keys by alias. All must exist, or nothing is deleted. */
  async deleteByAliases(aliases: readonly string[]): Promise<KeyRecord[]> {
    const found = await Promise.all(aliases.map(async (alias) => [alias, await this.getByAlias(alias)] as const));
    const missing = found.filter(([, record]) => !record).map(([alias]) => alias);
    if (missing.length > 0) throw keyNotFound('key_aliases', `no key with key_alias ${missing.map((alias) => `"${alias}"`).join(', ')}`);
    return this.delete(found.map(([, record]) => record!.token));
  }

  /**
   * A new secret for the same key: policy, spend and alias carry over (plus optional changes).
   * The old secret stops working in the single conditional update that marks it superseded.
   */
  async regenerate(token: string, changes: KeyChanges = {}): Promise<RegeneratedKey> {
    const old = await this.getKeyItem(token);
    const now = this.clock();
    // A superseded key whose successor never got written (a crash mid-way) may be regenerated again.
    const resumable =
      old?.superseded_by !== undefined &&
      old.superseded_at !== undefined &&
      now - Date.parse(old.superseded_at) > ALIAS_CLAIM_GRACE_MS &&
      !(await this.getKeyItem(old.superseded_by));
    if (!old || (!resumable && !this.isLive(old)) || (old.ttl !== undefined && old.ttl * 1000 <= now)) {
      throw keyNotFound('key', shortToken(token));
    }

    const secret = generateSecret();
    const newToken = hashSecret(secret);
    // A new secret is a new AWS pair too: the old id keeps pointing at the superseded token, which is refused.
    const accessKeyId = await this.claimAccessKeyId(newToken, now);
    const aliasAfter = 'key_alias' in changes ? (changes.key_alias ?? undefined) : old.key_alias;
    const aliasChanged = aliasAfter !== old.key_alias;
    if (aliasChanged && aliasAfter) await this.claimAlias(aliasAfter, newToken);

    let frozen: KeyRecord;
    let result: { Attributes?: Item };
    try {
      result = await this.send('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: keyPartition(token), sk: KEY_SORT_KEY },
            UpdateExpression: 'SET superseded_by = :next, superseded_at = :now, updated_at = :now, #ttl = :ttl REMOVE gsi1pk, gsi1sk',
            ConditionExpression: resumable
              ? 'attribute_exists(pk) AND superseded_by = :previous'
              : 'attribute_exists(pk) AND attribute_not_exists(superseded_by)',
            ExpressionAttributeNames: { '#ttl': TABLE_SCHEMA.ttlAttribute },
            ExpressionAttributeValues: {
              ':next': newToken,
              ':now': iso(now),
              ':ttl': Math.ceil(now / 1000) + REGENERATED_TOMBSTONE_SECONDS,
              ...(resumable ? { ':previous': old.superseded_by } : {}),
            },
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      frozen = fromItem(result.Attributes)!;
    } catch (error) {
      if (aliasChanged && aliasAfter) await this.releaseAlias(aliasAfter, newToken).catch(() => undefined);
      await this.releaseAccessKeyId(accessKeyId, newToken).catch(() => undefined);
      if (isConditionalFailure(error)) throw keyNotFound('key', shortToken(token));
      throw error;
    }

    // The spend read here is final: ledger writes condition on the key not being superseded.
    const base: KeyRecord = {
      ...stripLifecycle(frozen),
      token: newToken,
      key_name: displayForm(secret),
      aws_access_key_id: accessKeyId,
      updated_at: iso(now),
      regenerated_from: [token, ...(frozen.regenerated_from ?? [])].slice(0, MAX_REGENERATION_HISTORY),
    };
    const record = applyChanges(base, changes, now);
    await this.putListEntry(record);
    // Reservations of calls still in flight move with the spend they are part of: their settle
    // follows superseded_by to this item (lambda/accounting/ledger.ts).
    const reservations = Object.fromEntries(Object.entries(result.Attributes ?? {}).filter(([name]) => name.startsWith(RESERVATION_PREFIX)));
    await this.send('PutItem', () =>
      this.doc.send(
        new PutCommand({ TableName: this.tableName, Item: { ...toItem(record), ...reservations }, ConditionExpression: 'attribute_not_exists(pk)' }),
      ),
    );
    await this.deleteListEntry(token).catch(() => undefined);
    if (record.key_alias && !aliasChanged) await this.moveAlias(record.key_alias, token, newToken, now);
    if (aliasChanged && old.key_alias) await this.releaseAlias(old.key_alias, token).catch(() => undefined);
    if (old.aws_access_key_id) await this.releaseAccessKeyId(old.aws_access_key_id, token).catch(() => undefined);
    return { secret, record, previousToken: token };
  }

  /** A cheap read that proves the table answers (readiness). */
  async ping(): Promise<void> {
    await this.send('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: 'HEALTH', sk: 'HEALTH' } })),
    );
  }

  // ── internals ──

  private isLive(record: KeyRecord): boolean {
    return record.superseded_by === undefined && (record.ttl === undefined || record.ttl * 1000 > this.clock());
  }

  private async getKeyItem(token: string): Promise<KeyRecord | undefined> {
    const result = await this.send('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: keyPartition(token), sk: KEY_SORT_KEY }, ConsistentRead: true })),
    );
    return fromItem(result.Item);
  }

  /** The live key a token leads to, following regenerations (a claim may lag one behind). */
  private async followSuccessors(token: string): Promise<KeyRecord | undefined> {
    let current = token;
    for (let hop = 0; hop < 3; hop++) {
      const item = await this.getKeyItem(current);
      if (!item) return undefined;
      if (item.superseded_by === undefined) return this.isLive(item) ? item : undefined;
      current = item.superseded_by;
    }
    return undefined;
  }

  private async getAliasItem(alias: string): Promise<AliasItem | undefined> {
    const result = await this.send('GetItem', () =>
      this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pk: aliasPartition(alias), sk: ALIAS_SORT_KEY }, ConsistentRead: true })),
    );
    return result.Item as AliasItem | undefined;
  }

  /** Claim an alias for a token, or throw 400 if another key holds it. */
  private async claimAlias(alias: string, token: string): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = this.clock();
      const claim: AliasItem = { pk: aliasPartition(alias), sk: ALIAS_SORT_KEY, token, claimed_at: iso(now) };
      try {
        await this.send('PutItem', () =>
          this.doc.send(new PutCommand({ TableName: this.tableName, Item: claim, ConditionExpression: 'attribute_not_exists(pk)' })),
        );
        return;
      } catch (error) {
        if (!isConditionalFailure(error)) throw error;
      }
      const existing = await this.getAliasItem(alias);
      if (!existing) continue; // released meanwhile: try again
      if (existing.token === token) return;
      const owner = await this.followSuccessors(existing.token);
      const fresh = now - Date.parse(existing.claimed_at) < ALIAS_CLAIM_GRACE_MS;
      if ((owner && owner.key_alias === alias) || fresh) throw duplicateAlias(alias);
      // Orphaned claim: take it over, unless someone else does first.
      try {
        await this.send('PutItem', () =>
          this.doc.send(
            new PutCommand({
              TableName: this.tableName,
              Item: claim,
              ConditionExpression: '#token = :token AND claimed_at = :claimed',
              ExpressionAttributeNames: { '#token': 'token' },
              ExpressionAttributeValues: { ':token': existing.token, ':claimed': existing.claimed_at },
            }),
          ),
        );
        return;
      } catch (error) {
        if (!isConditionalFailure(error)) throw error;
        throw duplicateAlias(alias);
      }
    }
    throw duplicateAlias(alias);
  }

  /** A fresh access key id claimed for a token (retried on the negligible chance of a collision). */
  private async claimAccessKeyId(token: string, now: number): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const accessKeyId = generateAccessKeyId();
      const item: AccessKeyItem = { pk: accessKeyPartition(accessKeyId), sk: ACCESS_KEY_SORT_KEY, token, created_at: iso(now) };
      try {
        await this.send('PutItem', () =>
          this.doc.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' })),
        );
        return accessKeyId;
      } catch (error) {
        if (!isConditionalFailure(error)) throw error;
      }
    }
    throw new StoreUnavailableError('PutItem', new Error('could not claim a unique AWS access key id'));
  }

  private async releaseAccessKeyId(accessKeyId: string, token: string): Promise<void> {
    try {
      await this.send('DeleteItem', () =>
        this.doc.send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: { pk: accessKeyPartition(accessKeyId), sk: ACCESS_KEY_SORT_KEY },
            ConditionExpression: '#token = :token',
            ExpressionAttributeNames: { '#token': 'token' },
            ExpressionAttributeValues: { ':token': token },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionalFailure(error)) throw error;
    }
  }

  private async releaseAlias(alias: string, token: string): Promise<void> {
    try {
      await this.send('DeleteItem', () =>
        this.doc.send(
          new DeleteCommand({
            TableName: this.tableName,
            Key: { pk: aliasPartition(alias), sk: ALIAS_SORT_KEY },
            ConditionExpression: '#token = :token',
            ExpressionAttributeNames: { '#token': 'token' },
            ExpressionAttributeValues: { ':token': token },
          }),
        ),
      );
    } catch (error) {
      if (!isConditionalFailure(error)) throw error;
    }
  }

  private async moveAlias(alias: string, from: string, to: string, now: number): Promise<void> {
    try {
      await this.send('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: aliasPartition(alias), sk: ALIAS_SORT_KEY },
            UpdateExpression: 'SET #token = :to, claimed_at = :now',
            ConditionExpression: '#token = :from',
            ExpressionAttributeNames: { '#token': 'token' },
            ExpressionAttributeValues: { ':to': to, ':from': from, ':now': iso(now) },
          }),
        ),
      );
    } catch (error) {
      // getByAlias follows superseded_by, so a claim left pointing at the old token still resolves.
      if (!isConditionalFailure(error)) throw error;
    }
  }

  private async updateLive(token: string, update: UpdateParts): Promise<KeyRecord> {
    try {
      const result = await this.send('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: keyPartition(token), sk: KEY_SORT_KEY },
            UpdateExpression: update.expression,
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(superseded_by)',
            ExpressionAttributeNames: update.names,
            ExpressionAttributeValues: update.values,
            ReturnValues: 'ALL_NEW',
          }),
        ),
      );
      const record = fromItem(result.Attributes)!;
      if (!this.isLive(record)) throw keyNotFound('key', shortToken(token));
      return record;
    } catch (error) {
      if (isConditionalFailure(error)) throw keyNotFound('key', shortToken(token));
      throw error;
    }
  }

  private async queryAll(query: Pick<ListQuery, 'user_id' | 'team_id'>): Promise<KeyRecord[]> {
    const records: KeyRecord[] = [];
    const listed: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.send('Query', () =>
        this.doc.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: TABLE_SCHEMA.gsi1.name,
            KeyConditionExpression: 'gsi1pk = :list',
            ExpressionAttributeValues: { ':list': KEY_LIST_PARTITION },
            ScanIndexForward: false,
            ExclusiveStartKey: startKey,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        if (item.sk === KEY_LIST_SORT_KEY && typeof item.token === 'string') {
          listed.push(item.token);
          continue;
        }
        // A key item written by an earlier version, still in the index itself: list it, and move
        // it to a listing entry so the ledger's writes to it stop reaching the index.
        const record = fromItem(item);
        if (!record || !this.isLive(record)) continue;
        await this.moveToListEntry(record);
        listed.push(record.token);
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const byToken = await this.getKeyItems(listed);
    for (const token of listed) {
      const record = byToken.get(token);
      // An entry without a live key: a crash between its two writes, or a key expired by TTL.
      if (!record || !this.isLive(record)) continue;
      if (query.user_id !== undefined && record.user_id !== query.user_id) continue;
      if (query.team_id !== undefined && record.team_id !== query.team_id) continue;
      records.push(record);
    }
    return records;
  }

  /** Key items by token, read consistently in batches of 100 (BatchGetItem's limit). */
  private async getKeyItems(tokens: readonly string[]): Promise<Map<string, KeyRecord>> {
    const found = new Map<string, KeyRecord>();
    const unique = [...new Set(tokens)];
    for (let start = 0; start < unique.length; start += 100) {
      let keys: Record<string, unknown>[] = unique.slice(start, start + 100).map((token) => ({ pk: keyPartition(token), sk: KEY_SORT_KEY }));
      for (let round = 0; keys.length > 0; round++) {
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 25 * 2 ** round)));
        if (round > 8) throw new StoreUnavailableError('BatchGetItem', new Error('keys left unprocessed'));
        const batch = keys;
        const result = await this.send('BatchGetItem', () =>
          this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: batch, ConsistentRead: true } } })),
        );
        for (const item of result.Responses?.[this.tableName] ?? []) {
          const record = fromItem(item);
          if (record) found.set(record.token, record);
        }
        keys = (result.UnprocessedKeys?.[this.tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    }
    return found;
  }

  private async putListEntry(record: Pick<KeyRecord, 'token' | 'created_at'>): Promise<void> {
    await this.send('PutItem', () =>
      this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: keyPartition(record.token),
            sk: KEY_LIST_SORT_KEY,
            token: record.token,
            // Newest first on the index; the token makes the sort key unique.
            gsi1pk: KEY_LIST_PARTITION,
            gsi1sk: `${record.created_at}#${record.token}`,
          },
        }),
      ),
    );
  }

  private async deleteListEntry(token: string): Promise<void> {
    await this.send('DeleteItem', () =>
      this.doc.send(new DeleteCommand({ TableName: this.tableName, Key: { pk: keyPartition(token), sk: KEY_LIST_SORT_KEY } })),
    );
  }

  /** An earlier version's key item, listed by itself: give it an entry, then take it out of the index. */
  private async moveToListEntry(record: KeyRecord): Promise<void> {
    await this.putListEntry(record);
    try {
      await this.send('UpdateItem', () =>
        this.doc.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { pk: keyPartition(record.token), sk: KEY_SORT_KEY },
            UpdateExpression: 'REMOVE gsi1pk, gsi1sk',
            ConditionExpression: 'attribute_exists(pk)',
          }),
        ),
      );
    } catch (error) {
      if (!isConditionalFailure(error)) throw error;
    }
  }

  /** Every DynamoDB call goes through here: failures other than lost conditions mean "store unavailable". */
  private async send<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (isConditionalFailure(error)) throw error;
      throw new StoreUnavailableError(operation, error);
    }
  }
}

// ── records and items ──

const KEY_ITEM_ATTRIBUTES = new Set([TABLE_SCHEMA.partitionKey, TABLE_SCHEMA.sortKey, TABLE_SCHEMA.gsi1.partitionKey, TABLE_SCHEMA.gsi1.sortKey, 'type']);

function toItem(record: KeyRecord): Item {
  return {
    pk: keyPartition(record.token),
    sk: KEY_SORT_KEY,
    type: 'key',
    ...record,
    // On the item, spend includes the reservations in flight (see fromItem).
    spend_nanos: record.spend_nanos + (record.reserved_nanos ?? 0),
    // Arbitrary JSON as a string: no DynamoDB limits on depth, empty sets or number ranges apply.
    metadata: JSON.stringify(record.metadata),
  };
}

function fromItem(item: Item | undefined): KeyRecord | undefined {
  if (!item || typeof item.token !== 'string') return undefined;
  const record: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(item)) {
    if (!KEY_ITEM_ATTRIBUTES.has(name) && !name.startsWith(RESERVATION_PREFIX)) record[name] = value;
  }
  // The item's spend_nanos holds the reservations of calls in flight; a record shows settled spend.
  const reserved = typeof item[RESERVED_ATTRIBUTE] === 'number' ? (item[RESERVED_ATTRIBUTE] as number) : 0;
  if (typeof item.spend_nanos === 'number') record.spend_nanos = item.spend_nanos - reserved;
  record.metadata = parseMetadata(item.metadata);
  record.models ??= [];
  record.allowed_operations ??= [];
  record.allowed_routes ??= [];
  record.spend_nanos ??= 0;
  record.blocked ??= false;
  return record as unknown as KeyRecord;
}

function parseMetadata(value: unknown): JsonObject {
  if (typeof value !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(value);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as JsonObject) : {};
  } catch {
    return {};
  }
}

function stripLifecycle(record: KeyRecord): KeyRecord {
  const { superseded_by: _next, superseded_at: _at, ttl: _ttl, ...rest } = record;
  // The tombstone's ttl is not the key's: recompute it from `expires`.
  return { ...rest, ...(rest.expires ? { ttl: expiryTtl(Date.parse(rest.expires)) } : {}) };
}

function buildRecord(token: string, keyName: string, changes: KeyChanges, now: number): KeyRecord {
  const base: KeyRecord = {
    token,
    key_name: keyName,
    models: [],
    allowed_operations: [],
    allowed_routes: [],
    spend_nanos: 0,
    metadata: {},
    blocked: false,
    created_at: iso(now),
    updated_at: iso(now),
  };
  return applyChanges(base, changes, now);
}

/** A record with a change set applied, for writes of whole items (create, regenerate). */
function applyChanges(base: KeyRecord, changes: KeyChanges, now: number): KeyRecord {
  const next: Record<string, unknown> = { ...base };
  const setOrClear = (field: string, value: unknown) => {
    if (value === null || value === undefined) delete next[field];
    else next[field] = value;
  };
  for (const [field, value] of Object.entries(changes) as Array<[keyof KeyChanges, unknown]>) {
    switch (field) {
      case 'models':
      case 'allowed_operations':
      case 'allowed_routes':
        next[field] = value ?? [];
        break;
      case 'metadata':
        next.metadata = value ?? {};
        break;
      case 'spend':
        next.spend_nanos = usdToNanos(value as number);
        break;
      case 'duration': {
        const expires = value === null ? undefined : addDuration(now, parseDuration(value as string)!);
        setOrClear('expires', expires === undefined ? undefined : iso(expires));
        setOrClear('ttl', expires === undefined ? undefined : expiryTtl(expires));
        break;
      }
      case 'budget_duration':
        setOrClear('budget_duration', value);
        setOrClear('budget_reset_at', value === null ? undefined : iso(addDuration(now, parseDuration(value as string)!)));
        break;
      default:
        setOrClear(field, value);
    }
  }
  return next as unknown as KeyRecord;
}

interface UpdateParts {
  readonly expression: string;
  readonly names: Record<string, string>;
  readonly values: Record<string, unknown>;
}

/** The same change set as an UpdateItem that touches only the changed attributes (never spend, unless asked: the ledger ADDs to it concurrently). */
function buildUpdate(changes: KeyChanges, now: number): UpdateParts {
  const sets: string[] = [];
  const removes: string[] = [];
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = {};
  const set = (attribute: string, value: unknown) => {
    names[`#${attribute}`] = attribute;
    values[`:${attribute}`] = value;
    sets.push(`#${attribute} = :${attribute}`);
  };
  const remove = (attribute: string) => {
    names[`#${attribute}`] = attribute;
    removes.push(`#${attribute}`);
  };
  const setOrRemove = (attribute: string, value: unknown) => (value === null || value === undefined ? remove(attribute) : set(attribute, value));

  for (const [field, value] of Object.entries(changes) as Array<[keyof KeyChanges, unknown]>) {
    switch (field) {
      case 'models':
      case 'allowed_operations':
      case 'allowed_routes':
        set(field, value ?? []);
        break;
      case 'metadata':
        set('metadata', JSON.stringify(value ?? {}));
        break;
      case 'spend':
        // Reservations of calls in flight stay inside spend_nanos (lambda/accounting/budget.ts).
        names['#spend_nanos'] = 'spend_nanos';
        names['#reserved_nanos'] = RESERVED_ATTRIBUTE;
        values[':spend_nanos'] = usdToNanos(value as number);
        values[':zero'] = 0;
        sets.push('#spend_nanos = if_not_exists(#reserved_nanos, :zero) + :spend_nanos');
        break;
      case 'duration': {
        const expires = value === null ? undefined : addDuration(now, parseDuration(value as string)!);
        setOrRemove('expires', expires === undefined ? undefined : iso(expires));
        setOrRemove(TABLE_SCHEMA.ttlAttribute, expires === undefined ? undefined : expiryTtl(expires));
        break;
      }
      case 'budget_duration':
        setOrRemove('budget_duration', value);
        setOrRemove('budget_reset_at', value === null ? undefined : iso(addDuration(now, parseDuration(value as string)!)));
        break;
      case 'object_permission':
        setOrRemove(field, value as ObjectPermission | null);
        break;
      default:
        setOrRemove(field, value);
    }
  }
  set('updated_at', iso(now));
  const expression = [`SET ${sets.join(', ')}`, removes.length > 0 ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
  return { expression, names, values };
}

function expiryTtl(expiresMs: number): number {
  return Math.ceil(expiresMs / 1000) + EXPIRED_KEY_RETENTION_SECONDS;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** Enough of a token to tell keys apart in messages (tokens are not secret, but long). */
export function shortToken(token: string): string {
  return `${token.slice(0, 12)}…`;
}

export function isConditionalFailure(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
