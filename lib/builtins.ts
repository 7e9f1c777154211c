/**
 * Node built-ins the long-running programs use, loaded the CommonJS way.
 *
 * An ES module `import` of a built-in builds its namespace from every export, which evaluates the
 * ones Node otherwise loads only when touched: importing `node:http` loads http2 and Node's bundled
 * undici (for `http.WebSocket`), `node:crypto` the Web Crypto API, `node:util` a few dozen modules
 * more. `require` returns the module object and leaves those alone. In a ponger pod, which uses none
 * of them, the difference was 7 MiB of its ~55 MiB (`npm run bench -- workloads`).
 */
import type * as Crypto from "node:crypto";
import type * as Http from "node:http";
import type * as Https from "node:https";
import { createRequire } from "node:module";
import type * as Util from "node:util";

const require = createRequire(import.meta.url);

export const http = require("node:http") as typeof Http;
export const https = require("node:https") as typeof Https;
export const crypto = require("node:crypto") as typeof Crypto;
export const util = require("node:util") as typeof Util;
