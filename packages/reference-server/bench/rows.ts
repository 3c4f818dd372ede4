// The shape every core measurement of `pnpm bench` reports in: the reference server's figure
// and its floor (or peer), each repeated, with the ratio of their medians and the goal the
// ratio is held to (issue 13). One shape, so the table and `--json` cannot drift apart.

/** Repeated measurements of one figure. */
export interface Summary {
  readonly min: number;
  readonly median: number;
  readonly runs: readonly number[];
}

/** Summarizes repeated measurements (NaN-free; an empty list gives NaN). */
export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length === 0 ? Number.NaN : sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { min: sorted[0] ?? Number.NaN, median, runs: values };
}

/** `p`-th percentile of sorted values (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

/** How the ratio (Continuity ÷ floor) is held: at least or at most a value; or Continuity's own median at most `valueAtMost`. */
export interface Goal {
  readonly atLeast?: number;
  readonly atMost?: number;
  readonly valueAtMost?: number;
}

/** One line of the table. */
export interface Row {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly continuity: Summary;
  /** What the floor is: "grpc-js echo", "y-websocket", "payload", … */
  readonly floorLabel: string;
  readonly floor: Summary;
  /** Continuity's median ÷ the floor's median. */
  readonly ratio: number;
  readonly goal: Goal | undefined;
  /** Undefined when the row has no goal. */
  readonly met: boolean | undefined;
  readonly note?: string;
}

/** Builds a row; the ratio is of the medians. */
export function row(
  id: string,
  label: string,
  unit: string,
  continuity: Summary,
  floorLabel: string,
  floor: Summary,
  goal?: Goal,
  note?: string,
): Row {
  const ratio = continuity.median / floor.median;
  const met =
    goal === undefined
      ? undefined
      : (goal.atLeast === undefined || ratio >= goal.atLeast) &&
        (goal.atMost === undefined || ratio <= goal.atMost) &&
        (goal.valueAtMost === undefined || continuity.median <= goal.valueAtMost);
  return { id, label, unit, continuity, floorLabel, floor, ratio, goal, met, ...(note === undefined ? {} : { note }) };
}

/** A constant, as a summary (the payload size a wire or disk figure is compared with). */
export function constant(value: number): Summary {
  return { min: value, median: value, runs: [value] };
}

function figure(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function goalText(goal: Goal | undefined): string {
  if (goal === undefined) return "";
  const parts: string[] = [];
  if (goal.atLeast !== undefined) parts.push(`>= ${goal.atLeast}x`);
  if (goal.atMost !== undefined) parts.push(`<= ${goal.atMost}x`);
  if (goal.valueAtMost !== undefined) parts.push(`<= ${figure(goal.valueAtMost)}`);
  return parts.join(" ");
}

/** The rows as a table: median (min) of each side, ratio, goal, met. */
export function formatRows(rows: readonly Row[]): string {
  const header = ["measurement", "unit", "continuity median (min)", "floor / peer", "floor median (min)", "ratio", "goal", ""];
  const lines = rows.map((r) => [
    r.label,
    r.unit,
    `${figure(r.continuity.median)} (${figure(r.continuity.min)})`,
    r.floorLabel,
    `${figure(r.floor.median)} (${figure(r.floor.min)})`,
    `${figure(r.ratio)}x`,
    goalText(r.goal),
    r.met === undefined ? "" : r.met ? "met" : "NOT MET",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const format = (cells: readonly string[]) => cells.map((c, i) => (i === 0 || i === 1 || i === 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `  ${r.label}: ${r.note}`);
  return [format(header), ...lines.map(format), ...(notes.length === 0 ? [] : ["notes:", ...notes])].join("\n");
}
