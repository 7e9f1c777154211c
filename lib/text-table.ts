/** Rows of cells as aligned columns of plain text, for the commands that print tables. */
export function alignColumns(
  rows: readonly (readonly string[])[],
  options: { readonly gap: number; readonly indent?: string },
): string {
  const widths = rows.reduce<number[]>(
    (w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)),
    [],
  );
  const gap = " ".repeat(options.gap);
  return rows
    .map(
      (row) =>
        `${options.indent ?? ""}${row
          .map((cell, i) => cell.padEnd(widths[i] ?? 0))
          .join(gap)
          .trimEnd()}`,
    )
    .join("\n");
}
