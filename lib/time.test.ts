import { X509Certificate } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mintTestPki } from "./pki/testing/fixtures.ts";
import { certificateTimeMs, httpDate, isoTime } from "./time.ts";

/** Years 0 to 9999, the range Date#toISOString writes with four digits. */
const anyTime = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });

describe("time formatting without Date", () => {
  it("writes what Date#toISOString writes", () => {
    fc.assert(
      fc.property(anyTime, (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      {
        numRuns: 5000,
      },
    );
    for (const ms of [0, -1, 951_782_400_000, 4_107_542_400_000, Date.now()]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it("writes what Date#toUTCString writes, the HTTP date", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799_999 }), (ms) => {
        expect(httpDate(ms)).toBe(new Date(ms).toUTCString());
      }),
      { numRuns: 5000 },
    );
  });

  it("reads certificate times as X509Certificate gives them", async () => {
    const { ca, server } = await mintTestPki("time");
    for (const pem of [ca.certificatePem, server.certificatePem]) {
      const cert = new X509Certificate(pem);
      expect(certificateTimeMs(cert.validFrom)).toBe(Date.parse(cert.validFrom));
      expect(certificateTimeMs(cert.validTo)).toBe(Date.parse(cert.validTo));
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 253_402_300_799 }), (seconds) => {
        const ms = seconds * 1000;
        const [, day = "", month = "", year = "", time = ""] = new Date(ms).toUTCString().split(" ");
        const text = `${month} ${day.replace(/^0/, " ")} ${time} ${year} GMT`;
        expect(certificateTimeMs(text)).toBe(ms);
      }),
    );
    expect(certificateTimeMs("2026-11-21T19:58:30Z")).toBe(Date.parse("2026-11-21T19:58:30Z"));
  });
});
