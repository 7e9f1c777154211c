import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scanPem, splitPemBlocks } from "./pem.ts";

const block = (type: string, body = "QUJD\n") => `-----BEGIN ${type}-----\n${body}-----END ${type}-----`;

describe("scanPem", () => {
  it("finds every block, ignoring what lies between them", () => {
    const text = `comment\n${block("CERTIFICATE")}\n\n# more\n${block("PRIVATE KEY")}\r\n${block("CERTIFICATE", "REVG\r\n")}`;
    const { blocks, unterminated } = scanPem(text);
    expect(blocks.map((b) => b.type)).toEqual(["CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"]);
    expect(blocks[1]?.text).toBe(`${block("PRIVATE KEY")}\n`);
    expect(unterminated).toBeUndefined();
  });

  it("names the first BEGIN line without its END line", () => {
    expect(scanPem(`${block("CERTIFICATE")}\n-----BEGIN CERTIFICATE-----\nMIIB`)).toEqual({
      blocks: [{ type: "CERTIFICATE", text: `${block("CERTIFICATE")}\n` }],
      unterminated: { type: "CERTIFICATE", line: 4 },
    });
    // A BEGIN whose END only follows another block's BEGIN is not a block.
    const nested = `-----BEGIN CERTIFICATE-----\n${block("CERTIFICATE")}`;
    expect(scanPem(nested)).toEqual({
      blocks: [{ type: "CERTIFICATE", text: `${block("CERTIFICATE")}\n` }],
      unterminated: { type: "CERTIFICATE", line: 1 },
    });
  });

  it("handles a file of nothing but BEGIN lines", () => {
    const { blocks, unterminated } = scanPem("-----BEGIN CERTIFICATE-----\n".repeat(20_000));
    expect(blocks).toEqual([]);
    expect(unterminated).toEqual({ type: "CERTIFICATE", line: 1 });
  });

  it("agrees with the regular expression it replaced on well-formed text", () => {
    const old = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g;
    const type = fc.constantFrom("CERTIFICATE", "PRIVATE KEY", "RSA PRIVATE KEY");
    const piece = fc.oneof(
      fc.tuple(type, fc.stringMatching(/^[A-Za-z0-9+/=\n]{0,40}$/)).map(([t, body]) => block(t, `${body}\n`)),
      fc.stringMatching(/^[a-z #\n]{0,20}$/),
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), (pieces) => {
        const text = pieces.join("\n");
        const expected = [...text.matchAll(old)].map((m) => ({ type: m[1], text: `${m[0]}\n` }));
        expect(splitPemBlocks(text)).toEqual(expected);
      }),
    );
  });
});
