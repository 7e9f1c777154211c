import { Writable } from "node:stream";

/** Runs a `pingpong` command's function and resolves with what it printed. */
export async function commandOutput(
  command: (args: string[], out: NodeJS.WritableStream) => Promise<void>,
  args: string[],
): Promise<string> {
  let text = "";
  await command(
    args,
    new Writable({
      write: (chunk, _encoding, done) => {
        text += String(chunk);
        done();
      },
    }),
  );
  return text;
}
