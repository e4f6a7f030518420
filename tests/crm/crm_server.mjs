#!/usr/bin/env node
// A small CRM as an MCP server over stdio (SPEC 15's tests and the `make run` demo), written with
// the official MCP SDK (tests/mcp/node_modules). Contacts and their notes live in a JSON file:
//
//   CRM_STATE      the JSON file (default ./crm.json), rewritten whole after each change
//   CRM_FAIL_FILE  while this file exists, any tool call makes the server exit 1 (a CRM that is
//                  down: the client restarts it with backoff and the call fails)
//
// Tools: find_contact {phone?, email?}, create_contact {name?, phone?, email?},
// update_contact {id, name?, phone?, email?}, add_note {contactId, text}. Phones are compared by
// their digits, emails without case.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const sdk = path.join(here, "..", "mcp", "node_modules", "@modelcontextprotocol", "sdk");
const { Server } = await import(path.join(sdk, "dist/esm/server/index.js"));
const { StdioServerTransport } = await import(path.join(sdk, "dist/esm/server/stdio.js"));
const { ListToolsRequestSchema, CallToolRequestSchema } = await import(
  path.join(sdk, "dist/esm/types.js"));

const stateFile = process.env.CRM_STATE || "crm.json";
const failFile = process.env.CRM_FAIL_FILE || "";

function load() {
  try {
    return JSON.parse(fs.readFileSync(stateFile, "utf8"));
  } catch {
    return { nextId: 1, contacts: [] };
  }
}

function save(db) {
  const tmp = stateFile + ".tmp";
  fs.writeFileSync(tmp, JSON.stringify(db, null, 2));
  fs.renameSync(tmp, stateFile);
}

const digits = (s) => String(s || "").replace(/\D/g, "");
const str = { type: "string" };

const tools = [
  {
    name: "find_contact",
    description: "Find a contact by phone number or email. Returns {found, contact?}.",
    inputSchema: { type: "object", properties: { phone: str, email: str } },
  },
  {
    name: "create_contact",
    description: "Create a contact. Returns {contact}.",
    inputSchema: { type: "object", properties: { name: str, phone: str, email: str } },
  },
  {
    name: "update_contact",
    description: "Update a contact's fields by id. Returns {contact}.",
    inputSchema: {
      type: "object", properties: { id: str, name: str, phone: str, email: str },
      required: ["id"],
    },
  },
  {
    name: "add_note",
    description: "Attach a note to a contact. Returns {note}.",
    inputSchema: {
      type: "object", properties: { contactId: str, text: str }, required: ["contactId", "text"],
    },
  },
];

function brief(c) {
  return { id: c.id, name: c.name, phone: c.phone, email: c.email, notes: c.notes.length };
}

function run(name, a) {
  const db = load();
  const byId = (id) => db.contacts.find((c) => c.id === id);
  switch (name) {
    case "find_contact": {
      const p = digits(a.phone), e = String(a.email || "").toLowerCase();
      if (!p && !e) throw new Error("give a phone or an email");
      const c = db.contacts.find((x) => (p && digits(x.phone) === p) ||
                                       (e && String(x.email || "").toLowerCase() === e));
      return c ? { found: true, contact: brief(c) } : { found: false };
    }
    case "create_contact": {
      const c = { id: "c_" + db.nextId++, name: a.name || null, phone: a.phone || null,
                  email: a.email || null, notes: [], createdAt: Date.now(), updatedAt: Date.now() };
      db.contacts.push(c);
      save(db);
      return { contact: brief(c) };
    }
    case "update_contact": {
      const c = byId(a.id);
      if (!c) throw new Error("no contact " + a.id);
      for (const k of ["name", "phone", "email"]) if (a[k]) c[k] = a[k];
      c.updatedAt = Date.now();
      c.updates = (c.updates || 0) + 1;
      save(db);
      return { contact: brief(c) };
    }
    case "add_note": {
      const c = byId(a.contactId);
      if (!c) throw new Error("no contact " + a.contactId);
      const note = { id: "n_" + db.nextId++, text: String(a.text || ""), at: Date.now() };
      c.notes.push(note);
      save(db);
      return { note: { id: note.id, contactId: c.id } };
    }
  }
  throw new Error("unknown tool " + name);
}

const server = new Server({ name: "switchboard-test-crm", version: "1.0.0" },
                          { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
server.setRequestHandler(CallToolRequestSchema, async (req) => {
  if (failFile && fs.existsSync(failFile)) process.exit(1);
  try {
    const out = run(req.params.name, req.params.arguments || {});
    return { content: [{ type: "text", text: JSON.stringify(out) }] };
  } catch (e) {
    return { content: [{ type: "text", text: String(e.message || e) }], isError: true };
  }
});
await server.connect(new StdioServerTransport());
