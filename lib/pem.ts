const blockPattern = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;

export interface PemBlock {
  readonly type: string;
  readonly text: string;
}

/** Splits text into its PEM blocks, ignoring anything between them (comments, blank lines). */
export function splitPemBlocks(text: string): PemBlock[] {
  return [...text.matchAll(blockPattern)].map((m) => ({ type: m[1] ?? "", text: `${m[0]}\n` }));
}
