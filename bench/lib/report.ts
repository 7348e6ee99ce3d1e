/** The rows every section produces, the printed table, and the JSON written to bench/results. */

export interface Row {
  readonly section: string;
  readonly metric: string;
  readonly unit: string;
  /** The figure for the relay (or the peer named in the metric). */
  readonly value: number;
  /** The same figure for the direct call to the fake, in the same run. */
  readonly direct?: number;
  /** A target the issue sets, in words, and whether this run met it. */
  readonly target?: string;
  readonly pass?: boolean;
  readonly note?: string;
}

export interface SectionResult {
  readonly name: string;
  readonly rows: readonly Row[];
  /** Everything measured, for the JSON file (raw summaries, settings, counts). */
  readonly details: Record<string, unknown>;
  /** Why the section (or part of it) could not run, when it could not. */
  readonly skipped?: string;
}

export function added(row: Row): number | undefined {
  return row.direct === undefined ? undefined : row.value - row.direct;
}

export function ratio(row: Row): number | undefined {
  return row.direct === undefined || row.direct === 0 ? undefined : row.value / row.direct;
}

export function formatTable(rows: readonly Row[]): string {
  const header = ['section', 'metric', 'relay', 'direct', 'added', 'ratio', 'target'];
  const lines = rows.map((row) => {
    const diff = added(row);
    const r = ratio(row);
    return [
      row.section,
      row.metric,
      `${fmt(row.value)} ${row.unit}`,
      row.direct === undefined ? '' : `${fmt(row.direct)} ${row.unit}`,
      diff === undefined ? '' : `${diff >= 0 ? '+' : ''}${fmt(diff)} ${row.unit}`,
      r === undefined ? '' : `${r.toFixed(2)}×`,
      row.target === undefined ? '' : `${row.target} ${row.pass === undefined ? '' : row.pass ? 'PASS' : 'MISS'}`,
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join(' │ ')
      .trimEnd();
  return [render(header), widths.map((w) => '─'.repeat(w)).join('─┼─'), ...lines.map(render)].join('\n');
}

/** The same table as Markdown, for docs/benchmarks.md. */
export function markdownTable(rows: readonly Row[]): string {
  const out = ['| section | metric | relay | direct | added | ratio | target |', '|---|---|---:|---:|---:|---:|---|'];
  for (const row of rows) {
    const diff = added(row);
    const r = ratio(row);
    out.push(
      `| ${row.section} | ${row.metric} | ${fmt(row.value)} ${row.unit} | ${row.direct === undefined ? '' : `${fmt(row.direct)} ${row.unit}`} | ${
        diff === undefined ? '' : `${diff >= 0 ? '+' : ''}${fmt(diff)} ${row.unit}`
      } | ${r === undefined ? '' : `${r.toFixed(2)}×`} | ${row.target === undefined ? '' : `${row.target}${row.pass === undefined ? '' : row.pass ? ' ✅' : ' ❌'}`} |`,
    );
  }
  return out.join('\n');
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 100) return value.toFixed(1);
  if (abs >= 10) return value.toFixed(2);
  return value.toFixed(3);
}
