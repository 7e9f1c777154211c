/**
 * PEM text split into its blocks, in time linear in the text's length whatever it holds: a file of
 * 500 KB of BEGIN lines without END lines used to take a backtracking regular expression seconds,
 * blocking whichever program read it (anyone who can write a Secret could hand one to the operator).
 */

export interface PemBlock {
  readonly type: string;
  /** The block from its BEGIN line through its END line, with a final newline. */
  readonly text: string;
}

export interface PemScan {
  readonly blocks: PemBlock[];
  /** The first BEGIN line without its END line, e.g. the end of a half-written file. */
  readonly unterminated?: { readonly type: string; readonly line: number } | undefined;
}

const begin = "-----BEGIN ";
const dashes = "-----";
const label = /^[A-Z0-9 ]{1,64}$/;

function lineOf(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < index; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

/** Splits text into its PEM blocks, ignoring anything between them (comments, blank lines). */
export function scanPem(text: string): PemScan {
  const blocks: PemBlock[] = [];
  let unterminated: PemScan["unterminated"];
  // Where "-----END <type>-----" next occurs at or after a position, per type. Positions only grow,
  // so each type's END lines are searched for once over the whole text.
  const nextEnd = new Map<string, number>();
  let at = text.indexOf(begin);
  while (at !== -1) {
    const labelEnd = text.indexOf(dashes, at + begin.length);
    const type = labelEnd === -1 ? "" : text.slice(at + begin.length, labelEnd);
    const bodyStart = labelEnd + dashes.length;
    if (labelEnd === -1 || !label.test(type) || !/^\r?\n/.test(text.slice(bodyStart, bodyStart + 2))) {
      at = text.indexOf(begin, at + begin.length);
      continue;
    }
    const endLine = `-----END ${type}-----`;
    let end = nextEnd.get(type);
    if (end === undefined || (end !== -1 && end < bodyStart)) {
      end = text.indexOf(endLine, bodyStart);
      nextEnd.set(type, end);
    }
    if (end === -1) {
      unterminated ??= { type, line: lineOf(text, at) };
      at = text.indexOf(begin, bodyStart);
      continue;
    }
    const nextBegin = text.indexOf(begin, bodyStart);
    if (nextBegin !== -1 && nextBegin < end) {
      // Another block starts before this one ends: this BEGIN line has no END line of its own.
      unterminated ??= { type, line: lineOf(text, at) };
      at = nextBegin;
      continue;
    }
    blocks.push({ type, text: `${text.slice(at, end + endLine.length)}\n` });
    at = text.indexOf(begin, end + endLine.length);
  }
  return { blocks, unterminated };
}

/** The blocks of scanPem, for callers that judge incomplete text by what blocks it lacks. */
export function splitPemBlocks(text: string): PemBlock[] {
  return scanPem(text).blocks;
}
