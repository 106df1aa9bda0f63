// The official openai Node SDK against a tenant addressed by path (no Host header needed).
// Usage: node path_client.cjs BASE_URL KEY MODEL; prints one JSON object on stdout:
// {"models": [...ids], "json": "<content>", "stream": "<assembled text>", "chunks": N}
// or, when a call fails, {"error": {"status": N, "code": "...", "type": "<SDK class>"}}.
"use strict";
const { OpenAI } = require("openai");

async function main() {
  const [baseURL, apiKey, model] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10000 });
  try {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    const reply = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello from node" }],
    });
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "Hello from node" }],
      stream: true,
    });
    let text = "";
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      if (chunk.choices.length) text += chunk.choices[0].delta.content || "";
    }
    const out = { models: ids, json: reply.choices[0].message.content, stream: text, chunks };
    process.stdout.write(JSON.stringify(out) + "\n");
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    const error = { status: err.status, code: err.code, type: err.constructor.name };
    process.stdout.write(JSON.stringify({ error }) + "\n");
  }
}

main().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
