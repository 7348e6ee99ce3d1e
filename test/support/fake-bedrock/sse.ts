/** Server-sent events as the Anthropic and OpenAI compatible APIs send them. */

export const SSE_CONTENT_TYPE = 'text/event-stream; charset=utf-8';

/** One event: `event: <name>` (when named) and a single `data:` line, then a blank line. */
export function sseEvent(data: unknown, event?: string): string {
  const payload = typeof data === 'string' ? data : JSON.stringify(data);
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${payload}\n\n`;
}

export interface ParsedSseEvent {
  readonly event: string | undefined;
  readonly data: string;
  /** `data` parsed as JSON, or undefined (e.g. for `[DONE]`). */
  readonly json: unknown;
}

/** Parse a whole SSE body (tests use it on what the relay handed back). */
export function parseSse(text: string): ParsedSseEvent[] {
  const events: ParsedSseEvent[] = [];
  for (const block of text.replace(/\r\n/g, '\n').split('\n\n')) {
    if (block.trim() === '') continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    const joined = data.join('\n');
    let json: unknown;
    try {
      json = JSON.parse(joined);
    } catch {
      json = undefined;
    }
    events.push({ event, data: joined, json });
  }
  return events;
}
