// The same echo round trip with the official TypeScript SDK client (the baseline for
// bench_mcp): node bench/mcp_direct.mjs N stdio <command> [args...] | N http <url>
// Prints "p50_us p99_us max_us calls".
import { createRequire } from "node:module";
import path from "node:path";
const require = createRequire(path.resolve("tests/mcp/node_modules/x.js"));
const { Client } = require("@modelcontextprotocol/sdk/client/index.js");
const { StdioClientTransport } = require("@modelcontextprotocol/sdk/client/stdio.js");
const { StreamableHTTPClientTransport } = require("@modelcontextprotocol/sdk/client/streamableHttp.js");

const [n, mode, ...rest] = process.argv.slice(2);
const transport = mode === "http"
  ? new StreamableHTTPClientTransport(new URL(rest[0]))
  : new StdioClientTransport({ command: rest[0], args: rest.slice(1), stderr: "ignore" });
const client = new Client({ name: "bench", version: "1" });
await client.connect(transport);
const us = [];
for (let k = -50; k < Number(n); k++) {
  const t0 = process.hrtime.bigint();
  await client.callTool({ name: "echo", arguments: { message: "hello" } });
  if (k >= 0) us.push(Number((process.hrtime.bigint() - t0) / 1000n));
}
us.sort((a, b) => a - b);
console.log(`${us[us.length >> 1]} ${us[Math.floor(us.length * 0.99)]} ${us[us.length - 1]} ${us.length}`);
await client.close();
