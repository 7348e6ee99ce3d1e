/** Rewrites the README's endpoint table from the route table. */
import { readFileSync, writeFileSync } from 'node:fs';
import { ENDPOINT_TABLE_BEGIN, ENDPOINT_TABLE_END, endpointTableMarkdown } from '../lambda/routes/endpoint-table.js';

const readme = readFileSync('docs/endpoints.md', 'utf8');
const start = readme.indexOf(ENDPOINT_TABLE_BEGIN);
const end = readme.indexOf(ENDPOINT_TABLE_END);
if (start === -1 || end === -1) throw new Error('docs/endpoints.md has no endpoint-table markers');
const updated = `${readme.slice(0, start + ENDPOINT_TABLE_BEGIN.length)}\n${endpointTableMarkdown()}\n${readme.slice(end)}`;
writeFileSync('docs/endpoints.md', updated);
