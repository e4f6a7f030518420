/*
 * pgschema: the store's schema on PostgreSQL and the statements the store sends (pgschema.h).
 *
 * The tables hold what the SQLite file holds (storedb.c's schema after its last migration), with
 * three additions: calls.seq, the insertion order that SQLite's rowid gives the keyset paging;
 * calls.search, the call's search document (a tsvector, set at the call's end, as calls_fts is);
 * postcall_jobs.claimed_by and claimed_at, which node runs a job since when (a node that stopped
 * gets its own back at its next start; another node takes a job claimed more than 10 minutes
 * ago).
 *
 * The JSON answers are built by SQL functions that mirror the C code producing the same answer
 * on SQLite, member for member: sb_call_json() is storedb.c's call_tree(), sb_job_json()
 * jobsdb_job_json(), sb_calls() querydb_calls_json(), sb_chat_open() chatdb_thread_open() +
 * chatdb_history(). They build `json`, not `jsonb`, so that members keep their order and a tool
 * call's arguments keep theirs.
 *
 * Search: a document is the call's transcript with every ASCII character that is neither a
 * letter nor a digit made a space, then to_tsvector('simple', …): no stemming and no stop words,
 * and words split where FTS5's unicode61 tokenizer splits them ("555-1234" holds "1234"). A
 * search word goes through the same steps into a phrase (phraseto_tsquery: "o'brien" is "o"
 * followed by "brien", as a quoted FTS5 string is a phrase), and the words are AND-ed: no text
 * can make a tsquery syntax error, and a word with nothing left in it is ignored, as FTS5
 * ignores an empty phrase (a search made only of such words finds nothing, as on SQLite).
 *
 * Writes sent twice are stored once: a call start by its id, a transcript line by (call, time,
 * role, text), a tool call by (call, time, its tool call id), a chat message by its id, an agent
 * run by its record id; the tool call's counters move only when its row was inserted.
 */
#include <string.h>

#include "agents/store/pgschema.h"
#include "agents/store/store_int.h" /* JOBSDB_MAX_ATTEMPTS */
#include "base/util.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

#define STALE_CLAIM_MS    600000 /* a job running this long since its claim is taken again */
#define SEARCH_TEXT_CHARS 200000 /* of a transcript searched: a tsvector holds at most 1 MB */

/* The SQL below is laid out as SQL. */
/* clang-format off */

/* The tables, their indexes and the functions of version 1 (without the booking part). */
static const char schema_v1[] =
    "CREATE TABLE calls (\n"
    "  id text PRIMARY KEY,\n"
    "  seq bigserial NOT NULL UNIQUE,\n" /* insertion order: the cursor's tie-break */
    "  session_id text NOT NULL,\n"
    "  started_at bigint NOT NULL,\n" /* Unix ms */
    "  ended_at bigint,\n"
    "  end_reason text,\n"
    "  duration_ms bigint,\n"
    "  openai_session_id text,\n"
    "  request_id text,\n"
    "  input_tokens bigint NOT NULL DEFAULT 0,\n"
    "  output_tokens bigint NOT NULL DEFAULT 0,\n"
    "  tenant text NOT NULL DEFAULT 'default',\n"
    "  channel text NOT NULL DEFAULT 'web',\n"
    "  caller_from text,\n"
    "  caller_to text,\n"
    "  call_sid text,\n"
    "  transferred_to text,\n"
    "  summary text,\n"
    "  outcome text,\n"
    "  first_audio_ms bigint,\n"
    "  booked boolean NOT NULL DEFAULT false,\n"
    "  tools_total integer NOT NULL DEFAULT 0,\n"
    "  tools_ok integer NOT NULL DEFAULT 0,\n"
    "  search tsvector);\n" /* set at the call's end */
    "CREATE INDEX calls_started ON calls (started_at, seq);\n"
    "CREATE INDEX calls_tenant_started ON calls (tenant, started_at, seq);\n"
    "CREATE INDEX calls_search ON calls USING gin (search);\n"
    /* No foreign key to calls: a line that arrives for a call whose start was lost is kept. */
    "CREATE TABLE transcript_items (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  call_id text NOT NULL,\n"
    "  role text NOT NULL,\n"
    "  text text NOT NULL,\n"
    "  at bigint NOT NULL);\n"
    "CREATE UNIQUE INDEX transcript_items_line\n"
    "  ON transcript_items (call_id, at, role, md5(text));\n"
    "CREATE INDEX transcript_items_at ON transcript_items (at);\n"
    "CREATE TABLE tool_calls (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  call_id text NOT NULL,\n"
    "  tool_call_id text,\n"
    "  name text NOT NULL,\n"
    "  arguments text,\n"
    "  output text,\n"
    "  status text NOT NULL,\n"
    "  duration_ms bigint,\n"
    "  via text,\n"
    "  at bigint NOT NULL,\n"
    "  parent_call_id text);\n"
    "CREATE UNIQUE INDEX tool_calls_once\n"
    "  ON tool_calls (call_id, at, (coalesce(tool_call_id, '')));\n"
    "CREATE INDEX tool_calls_at ON tool_calls (at);\n"
    "CREATE TABLE chat_threads (\n"
    "  id text PRIMARY KEY,\n"
    "  user_id text NOT NULL,\n"
    "  tenant text NOT NULL DEFAULT 'default',\n"
    "  created_at bigint NOT NULL);\n"
    "CREATE TABLE chat_messages (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  thread_id text NOT NULL,\n"
    "  message_id text NOT NULL UNIQUE,\n"
    "  client_message_id text,\n"
    "  role text NOT NULL,\n"
    "  text text NOT NULL,\n"
    "  at bigint NOT NULL);\n"
    "CREATE INDEX chat_messages_thread ON chat_messages (thread_id, at, id);\n"
    "CREATE INDEX chat_messages_at ON chat_messages (at);\n"
    "CREATE TABLE agent_runs (\n"
    "  id bigint PRIMARY KEY,\n" /* the record id the agent-run actor chose */
    "  run_id text NOT NULL,\n"
    "  user_id text,\n"
    "  tenant text NOT NULL DEFAULT 'default',\n"
    "  task text NOT NULL,\n"
    "  status text NOT NULL,\n"
    "  result text,\n"
    "  error text,\n"
    "  started_at bigint NOT NULL,\n"
    "  ended_at bigint);\n"
    "CREATE TABLE postcall_jobs (\n"
    "  call_id text PRIMARY KEY,\n"
    "  tenant text NOT NULL,\n"
    "  state text NOT NULL,\n" /* pending, running, done, failed */
    "  attempts integer NOT NULL DEFAULT 0,\n"
    "  last_error text,\n"
    "  next_at bigint,\n"            /* NULL when nothing is due */
    "  step_summary text NOT NULL,\n" /* pending, done, failed */
    "  step_crm text NOT NULL,\n"     /* pending, done, failed, skipped */
    "  webhook_sent boolean NOT NULL DEFAULT false,\n"
    "  created_at bigint NOT NULL,\n"
    "  updated_at bigint NOT NULL,\n"
    "  claimed_by text,\n" /* running: the node that claimed it, when */
    "  claimed_at bigint);\n"
    "CREATE INDEX postcall_jobs_due ON postcall_jobs (state, next_at);\n"
    "CREATE TABLE server_keys (\n"
    "  name text PRIMARY KEY,\n"
    "  key bytea NOT NULL,\n"
    "  created_at bigint NOT NULL);\n"

    /* ---- JSON helpers ---- */

    /* A text column as storedb.c's add_json_col() shows it: the JSON it holds when it is valid
     * JSON, else the string; NULL stays NULL (JSON null once built in). */
    "CREATE FUNCTION sb_json_or_text(t text) RETURNS json\n"
    "LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$\n"
    "BEGIN\n"
    "  RETURN t::json;\n"
    "EXCEPTION WHEN OTHERS THEN\n"
    "  RETURN to_json(t);\n"
    "END\n"
    "$fn$;\n"
    /* A call's "postcall" member (jobsdb_job_json()); NULL without a job. */
    "CREATE FUNCTION sb_job_json(p_call text) RETURNS json\n"
    "LANGUAGE sql STABLE AS $fn$\n"
    "  SELECT json_build_object('state', state, 'attempts', attempts, 'lastError', last_error,\n"
    "    'nextAt', next_at,\n"
    "    'steps', json_build_object('summary', step_summary, 'crm', step_crm),\n"
    "    'updatedAt', updated_at)\n"
    "  FROM postcall_jobs WHERE call_id = p_call\n"
    "$fn$;\n"
    /* One entry of a call's "toolCalls" (storedb.c's tool_cols). */
    "CREATE FUNCTION sb_tool_json(t tool_calls) RETURNS json\n"
    "LANGUAGE sql STABLE AS $fn$\n"
    "  SELECT json_build_object('callId', t.tool_call_id, 'name', t.name,\n"
    "    'arguments', sb_json_or_text(t.arguments), 'output', sb_json_or_text(t.output),\n"
    "    'status', t.status, 'durationMs', t.duration_ms, 'via', t.via, 'at', t.at,\n"
    "    'parentCallId', t.parent_call_id)\n"
    "$fn$;\n"
    /* The call as storedb.c's call_tree() builds it: with p_max_tools > 0 only its newest
     * p_max_tools tool calls, and toolCallsTotal. NULL when there is no such call (of p_tenant
     * when not NULL). */
    "CREATE FUNCTION sb_call_json(p_id text, p_tenant text, p_max_tools integer) RETURNS json\n"
    "LANGUAGE plpgsql STABLE AS $fn$\n"
    "DECLARE\n"
    "  c calls;\n"
    "  transcript json;\n"
    "  tools json;\n"
    "  head json;\n"
    "BEGIN\n"
    "  SELECT * INTO c FROM calls WHERE id = p_id AND (p_tenant IS NULL OR tenant = p_tenant);\n"
    "  IF NOT FOUND THEN\n"
    "    RETURN NULL;\n"
    "  END IF;\n"
    "  SELECT coalesce(array_to_json(array_agg(\n"
    "      json_build_object('role', t.role, 'text', t.text, 'at', t.at) ORDER BY t.at, t.id)),\n"
    "      '[]')\n"
    "    INTO transcript FROM transcript_items t WHERE t.call_id = p_id;\n"
    "  IF p_max_tools > 0 THEN\n"
    "    SELECT coalesce(array_to_json(array_agg(sb_tool_json(s.r)\n"
    "                                            ORDER BY (s.r).at, (s.r).id)), '[]')\n"
    "      INTO tools FROM (SELECT t AS r FROM tool_calls t WHERE t.call_id = p_id\n"
    "                       ORDER BY t.at DESC, t.id DESC LIMIT p_max_tools) s;\n"
    "  ELSE\n"
    "    SELECT coalesce(array_to_json(array_agg(sb_tool_json(t) ORDER BY t.at, t.id)), '[]')\n"
    "      INTO tools FROM tool_calls t WHERE t.call_id = p_id;\n"
    "  END IF;\n"
    "  head := json_build_object('id', c.id, 'sessionId', c.session_id,\n"
    "    'startedAt', c.started_at, 'endedAt', c.ended_at, 'endReason', c.end_reason,\n"
    "    'durationMs', c.duration_ms,\n"
    "    'tenant', c.tenant, 'channel', c.channel, 'from', c.caller_from, 'to', c.caller_to,\n"
    "    'callSid', c.call_sid, 'transferredTo', c.transferred_to, 'outcome', c.outcome,\n"
    "    'openaiSessionId', c.openai_session_id, 'requestId', c.request_id,\n"
    "    'usage', json_build_object('inputTokens', c.input_tokens,\n"
    "                               'outputTokens', c.output_tokens),\n"
    "    'summary', sb_json_or_text(c.summary), 'firstAudioMs', c.first_audio_ms,\n"
    "    'postcall', sb_job_json(c.id), 'transcript', transcript);\n"
    "  IF p_max_tools > 0 THEN\n"
    "    head := sb_json_append(head, 'toolCallsTotal',\n"
    "      to_json((SELECT count(*) FROM tool_calls t WHERE t.call_id = p_id)));\n"
    "  END IF;\n"
    "  RETURN sb_json_append(head, 'toolCalls', tools);\n"
    "END\n"
    "$fn$;\n"
    /* obj (a JSON object's text) with the member key: value appended at its end. */
    "CREATE FUNCTION sb_json_append(obj json, key text, value json) RETURNS json\n"
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$\n"
    "  SELECT (left(rtrim(obj::text), -1) || ', ' || to_json(key)::text || ' : ' ||\n"
    "          coalesce(value::text, 'null') || '}')::json\n"
    "$fn$;\n"

    /* ---- Search ---- */

    /* The text a search document or a search word is made of (the file's comment says why). */
    "CREATE FUNCTION sb_search_text(t text) RETURNS text\n"
    "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fn$\n"
    "  SELECT regexp_replace(t, '[\\x01-\\x2f\\x3a-\\x40\\x5b-\\x60\\x7b-\\x7f]+', ' ', 'g')\n"
    "$fn$;\n"
    /* The query of the search words of q (split as querydb_fts_query() splits them): each a
     * phrase, all required. NULL when no word holds a letter or a digit. */
    "CREATE FUNCTION sb_search_query(q text) RETURNS tsquery\n"
    "LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$\n"
    "DECLARE\n"
    "  w text;\n"
    "  r tsquery;\n"
    "BEGIN\n"
    "  FOREACH w IN ARRAY regexp_split_to_array(q, '[ \"\\t\\n]+') LOOP\n"
    "    w := btrim(sb_search_text(w));\n"
    "    CONTINUE WHEN w = '';\n"
    "    r := CASE WHEN r IS NULL THEN phraseto_tsquery('simple', w)\n"
    "              ELSE r && phraseto_tsquery('simple', w) END;\n"
    "  END LOOP;\n"
    "  RETURN r;\n"
    "END\n"
    "$fn$;\n"

    /* ---- Records ---- */

    "CREATE FUNCTION sb_call_start(p_id text, p_session text, p_tenant text, p_at bigint)\n"
    "RETURNS void LANGUAGE sql AS $fn$\n"
    "  INSERT INTO calls (id, session_id, started_at, tenant)\n"
    "  VALUES (p_id, coalesce(p_session, ''), p_at, coalesce(p_tenant, 'default'))\n"
    "  ON CONFLICT (id) DO NOTHING\n"
    "$fn$;\n"
    /* The transcript becomes the call's search document at the first end that finds one (as
     * calls_fts gets a call's row once), its first SEARCH_TEXT_CHARS characters (4 bytes at
     * most each: the tsvector stays under its limit). */
    "CREATE FUNCTION sb_call_end(p_id text, p_at bigint, p_reason text, p_openai text,\n"
    "                            p_request text, p_input bigint, p_output bigint)\n"
    "RETURNS TABLE (tenant text, user_turns bigint) LANGUAGE sql AS $fn$\n"
    "  UPDATE calls c SET ended_at = p_at, end_reason = p_reason,\n"
    "    duration_ms = greatest(0, p_at - c.started_at), openai_session_id = p_openai,\n"
    "    request_id = p_request, input_tokens = p_input, output_tokens = p_output,\n"
    "    search = coalesce(c.search, (SELECT to_tsvector('simple', sb_search_text(\n"
    "        left(string_agg(t.text, ' ' ORDER BY t.at, t.id), " STR(SEARCH_TEXT_CHARS) ")))\n"
    "      FROM transcript_items t WHERE t.call_id = p_id))\n"
    "  WHERE c.id = p_id\n"
    "  RETURNING c.tenant, (SELECT count(*) FROM transcript_items t\n"
    "                       WHERE t.call_id = p_id AND t.role = 'user')\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_first_audio(p_id text, p_ms bigint) RETURNS void LANGUAGE sql AS $fn$\n"
    "  UPDATE calls SET first_audio_ms = p_ms WHERE id = p_id AND first_audio_ms IS NULL\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_call_phone(p_id text, p_from text, p_to text, p_sid text,\n"
    "                              p_transferred text) RETURNS void LANGUAGE sql AS $fn$\n"
    "  UPDATE calls SET channel = 'phone', caller_from = p_from, caller_to = p_to,\n"
    "    call_sid = p_sid, transferred_to = coalesce(p_transferred, transferred_to)\n"
    "  WHERE id = p_id\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_transcript(p_call text, p_role text, p_text text, p_at bigint)\n"
    "RETURNS void LANGUAGE sql AS $fn$\n"
    "  INSERT INTO transcript_items (call_id, role, text, at)\n"
    "  VALUES (p_call, coalesce(p_role, ''), coalesce(p_text, ''), p_at)\n"
    "  ON CONFLICT (call_id, at, role, md5(text)) DO NOTHING\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_tool_record(p_call text, p_tool_call text, p_parent text, p_name text,\n"
    "    p_arguments text, p_output text, p_status text, p_duration bigint, p_via text,\n"
    "    p_at bigint) RETURNS void LANGUAGE plpgsql AS $fn$\n"
    "BEGIN\n"
    "  p_name := coalesce(p_name, '');\n"
    "  p_status := coalesce(p_status, '');\n"
    "  INSERT INTO tool_calls (call_id, tool_call_id, name, arguments, output, status,\n"
    "                          duration_ms, via, at, parent_call_id)\n"
    "  VALUES (p_call, p_tool_call, p_name, p_arguments, p_output, p_status, p_duration,\n"
    "          p_via, p_at, nullif(p_parent, ''))\n"
    "  ON CONFLICT (call_id, at, (coalesce(tool_call_id, ''))) DO NOTHING;\n"
    "  IF FOUND THEN\n"
    "    UPDATE calls SET tools_total = tools_total + 1,\n"
    "      tools_ok = tools_ok + (p_status = 'completed')::integer,\n"
    "      booked = booked OR (p_status = 'completed' AND p_name = 'bookAppointment')\n"
    "    WHERE id = p_call;\n"
    "  END IF;\n"
    "END\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_chat_message(p_thread text, p_message text, p_client text,\n"
    "    p_role text, p_text text, p_at bigint) RETURNS void LANGUAGE sql AS $fn$\n"
    "  INSERT INTO chat_messages (thread_id, message_id, client_message_id, role, text, at)\n"
    "  VALUES (p_thread, p_message, p_client, p_role, coalesce(p_text, ''), p_at)\n"
    "  ON CONFLICT (message_id) DO NOTHING\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_agent_run(p_record bigint, p_run text, p_user text, p_tenant text,\n"
    "    p_task text, p_status text, p_result text, p_error text, p_started bigint,\n"
    "    p_ended bigint) RETURNS void LANGUAGE sql AS $fn$\n"
    "  INSERT INTO agent_runs (id, run_id, user_id, tenant, task, status, result, error,\n"
    "                          started_at, ended_at)\n"
    "  VALUES (p_record, p_run, p_user, coalesce(p_tenant, 'default'), coalesce(p_task, ''),\n"
    "          p_status, p_result, p_error, p_started, CASE WHEN p_ended > 0 THEN p_ended END)\n"
    "  ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result,\n"
    "    error = excluded.error, ended_at = excluded.ended_at\n"
    "$fn$;\n"
    /* storedb_expire(): the calls started before the cutoff with their rows and jobs, and
     * whatever rows and chat messages are older than it. Answers the calls deleted. A call's
     * row is locked before its job's, as everywhere else. */
    "CREATE FUNCTION sb_expire(p_cutoff bigint) RETURNS bigint LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  n bigint;\n"
    "BEGIN\n"
    "  DELETE FROM chat_messages WHERE at < p_cutoff;\n"
    "  DELETE FROM transcript_items WHERE at < p_cutoff;\n"
    "  DELETE FROM transcript_items\n"
    "    WHERE call_id IN (SELECT id FROM calls WHERE started_at < p_cutoff);\n"
    "  DELETE FROM tool_calls WHERE at < p_cutoff;\n"
    "  DELETE FROM tool_calls\n"
    "    WHERE call_id IN (SELECT id FROM calls WHERE started_at < p_cutoff);\n"
    "  WITH gone AS (DELETE FROM calls WHERE started_at < p_cutoff RETURNING id),\n"
    "  jobs AS (DELETE FROM postcall_jobs WHERE call_id IN (SELECT id FROM gone))\n"
    "  SELECT count(*) INTO n FROM gone;\n"
    "  RETURN n;\n"
    "END\n"
    "$fn$;\n"

    /* ---- Reads ---- */

    /* The stored key wins (the first insert of any node); DO UPDATE makes the row the answer
     * whichever insert came first. */
    "CREATE FUNCTION sb_server_key(p_name text, p_fresh text) RETURNS text\n"
    "LANGUAGE sql AS $fn$\n"
    "  INSERT INTO server_keys (name, key, created_at)\n"
    "  VALUES (p_name, decode(p_fresh, 'hex'),\n"
    "          (extract(epoch FROM clock_timestamp()) * 1000)::bigint)\n"
    "  ON CONFLICT (name) DO UPDATE SET key = server_keys.key\n"
    "  RETURNING encode(key, 'hex')\n"
    "$fn$;\n"
    /* chatdb_thread_open() and chatdb_history(): the newest p_limit messages, oldest first
     * (a negative limit is no limit, as in SQLite). */
    "CREATE FUNCTION sb_chat_open(p_thread text, p_user text, p_tenant text, p_at bigint,\n"
    "                             p_limit integer) RETURNS json LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  o chat_threads;\n"
    "  messages json;\n"
    "BEGIN\n"
    "  INSERT INTO chat_threads (id, user_id, tenant, created_at)\n"
    "  VALUES (p_thread, p_user, coalesce(p_tenant, 'default'), p_at)\n"
    "  ON CONFLICT (id) DO NOTHING;\n"
    "  SELECT * INTO o FROM chat_threads WHERE id = p_thread;\n"
    "  SELECT coalesce(array_to_json(array_agg(CASE WHEN m.client_message_id IS NULL\n"
    "      THEN json_build_object('role', m.role, 'text', m.text, 'messageId', m.message_id,\n"
    "                             'at', m.at)\n"
    "      ELSE json_build_object('role', m.role, 'text', m.text, 'messageId', m.message_id,\n"
    "                             'at', m.at, 'clientMessageId', m.client_message_id)\n"
    "      END ORDER BY m.at, m.id)), '[]')\n"
    "    INTO messages\n"
    "    FROM (SELECT * FROM chat_messages WHERE thread_id = p_thread ORDER BY at DESC, id DESC\n"
    "          LIMIT CASE WHEN p_limit >= 0 THEN p_limit END) m;\n"
    "  RETURN json_build_object('owner', o.user_id, 'tenant', o.tenant,\n"
    "                           'messages', messages);\n"
    "END\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_call_delete(p_id text, p_tenant text) RETURNS boolean\n"
    "LANGUAGE plpgsql AS $fn$\n"
    "BEGIN\n"
    "  IF p_tenant IS NOT NULL AND NOT EXISTS (SELECT 1 FROM calls\n"
    "                                          WHERE id = p_id AND tenant = p_tenant) THEN\n"
    "    RETURN false;\n"
    "  END IF;\n"
    "  DELETE FROM transcript_items WHERE call_id = p_id;\n"
    "  DELETE FROM tool_calls WHERE call_id = p_id;\n"
    "  DELETE FROM calls WHERE id = p_id;\n"
    "  IF NOT FOUND THEN\n"
    "    RETURN false;\n"
    "  END IF;\n"
    "  DELETE FROM postcall_jobs WHERE call_id = p_id;\n"
    "  RETURN true;\n"
    "END\n"
    "$fn$;\n"
    /* One entry of the calls list (querydb.c's list_keys and its postcall member). */
    "CREATE FUNCTION sb_list_entry(c calls, j postcall_jobs) RETURNS json\n"
    "LANGUAGE sql STABLE AS $fn$\n"
    "  SELECT json_build_object('id', c.id, 'sessionId', c.session_id,\n"
    "    'startedAt', c.started_at, 'endedAt', c.ended_at, 'endReason', c.end_reason,\n"
    "    'durationMs', c.duration_ms,\n"
    "    'tenant', c.tenant, 'channel', c.channel, 'from', c.caller_from, 'to', c.caller_to,\n"
    "    'callSid', c.call_sid, 'transferredTo', c.transferred_to, 'outcome', c.outcome,\n"
    "    'postcall', CASE WHEN j.state IS NOT NULL THEN json_build_object('state', j.state,\n"
    "      'steps', json_build_object('summary', j.step_summary, 'crm', j.step_crm)) END)\n"
    "$fn$;\n"
    /* querydb_calls_json(): newest first, keyset paging on (started_at, seq). The filters that
     * are set become part of the query (planned with them, as querydb.c builds its SQL). */
    "CREATE FUNCTION sb_calls(p_tenant text, p_from bigint, p_to bigint, p_channel text,\n"
    "    p_outcome text, p_q text, p_cursor_at bigint, p_cursor_seq bigint, p_limit integer)\n"
    "RETURNS json LANGUAGE plpgsql STABLE AS $fn$\n"
    "DECLARE\n"
    "  sql text := 'SELECT c.started_at, c.seq, sb_list_entry(c, j) AS e FROM calls c '\n"
    "              'LEFT JOIN postcall_jobs j ON j.call_id = c.id WHERE true';\n"
    "  r record;\n"
    "  items json[] := '{}';\n"
    "  n integer := 0;\n"
    "  more boolean := false;\n"
    "  last_key text := '';\n"
    "BEGIN\n"
    "  IF p_tenant IS NOT NULL THEN\n"
    "    sql := sql || ' AND c.tenant = $1';\n"
    "  END IF;\n"
    "  IF p_from <> 0 THEN\n"
    "    sql := sql || ' AND c.started_at >= $2';\n"
    "  END IF;\n"
    "  IF p_to <> 0 THEN\n"
    "    sql := sql || ' AND c.started_at < $3';\n"
    "  END IF;\n"
    "  IF p_channel IS NOT NULL THEN\n"
    "    sql := sql || ' AND c.channel = $4';\n"
    "  END IF;\n"
    "  IF p_outcome IS NOT NULL THEN\n"
    "    sql := sql || ' AND c.outcome = $5';\n"
    "  END IF;\n"
    "  IF p_q ~ '[^ \"\\t\\n]' THEN\n"
    "    sql := sql || ' AND c.search @@ $6';\n"
    "  END IF;\n"
    "  IF p_cursor_seq <> 0 THEN\n"
    "    sql := sql || ' AND (c.started_at, c.seq) < ($7, $8)';\n"
    "  END IF;\n"
    "  sql := sql || ' ORDER BY c.started_at DESC, c.seq DESC LIMIT $9';\n"
    "  FOR r IN EXECUTE sql USING p_tenant, p_from, p_to, p_channel, p_outcome,\n"
    "      sb_search_query(p_q), p_cursor_at, p_cursor_seq, p_limit + 1 LOOP\n"
    "    IF n = p_limit THEN\n"
    "      more := true;\n"
    "      EXIT;\n"
    "    END IF;\n"
    "    items := items || r.e;\n"
    "    last_key := r.started_at || '.' || r.seq;\n"
    "    n := n + 1;\n"
    "  END LOOP;\n"
    "  IF more THEN\n"
    "    RETURN json_build_object('calls', array_to_json(items), 'nextCursor', last_key);\n"
    "  END IF;\n"
    "  RETURN json_build_object('calls', array_to_json(items));\n"
    "END\n"
    "$fn$;\n"
    /* ---- Post-call jobs ---- */

    "CREATE FUNCTION sb_jobs_recover(p_node text, p_now bigint) RETURNS bigint\n"
    "LANGUAGE sql AS $fn$\n"
    "  WITH back AS (\n"
    "    UPDATE postcall_jobs SET state = 'pending', next_at = p_now, claimed_by = NULL,\n"
    "      claimed_at = NULL\n"
    "    WHERE state = 'running' AND claimed_by = p_node RETURNING 1)\n"
    "  SELECT count(*) FROM back\n"
    "$fn$;\n"
    "CREATE FUNCTION sb_call_info(p_id text, p_tenant text)\n"
    "RETURNS TABLE (tenant text, user_turns bigint) LANGUAGE sql STABLE AS $fn$\n"
    "  SELECT c.tenant, (SELECT count(*) FROM transcript_items t\n"
    "                    WHERE t.call_id = c.id AND t.role = 'user')\n"
    "  FROM calls c WHERE c.id = p_id AND (p_tenant IS NULL OR c.tenant = p_tenant)\n"
    "$fn$;\n"
    /* jobsdb_queue(): a new job, or one queued again from attempt 1 with the steps not done
     * pending. */
    "CREATE FUNCTION sb_job_queue(p_id text, p_tenant text, p_crm boolean, p_now bigint)\n"
    "RETURNS void LANGUAGE sql AS $fn$\n"
    "  INSERT INTO postcall_jobs (call_id, tenant, state, attempts, next_at, step_summary,\n"
    "                             step_crm, created_at, updated_at)\n"
    "  VALUES (p_id, coalesce(p_tenant, 'default'), 'pending', 0, p_now, 'pending',\n"
    "          CASE WHEN p_crm THEN 'pending' ELSE 'skipped' END, p_now, p_now)\n"
    "  ON CONFLICT (call_id) DO UPDATE SET state = 'pending', attempts = 0,\n"
    "    last_error = NULL, next_at = p_now, updated_at = p_now,\n"
    "    claimed_by = NULL, claimed_at = NULL,\n"
    "    step_summary = CASE WHEN postcall_jobs.step_summary = 'done' THEN 'done'\n"
    "                        ELSE 'pending' END,\n"
    "    step_crm = CASE WHEN postcall_jobs.step_crm = 'done' THEN 'done'\n"
    "                    ELSE excluded.step_crm END\n"
    "$fn$;\n"
    /* jobsdb_claim(), each job with its call (storedb_call_tail()) read after the claim. A
     * running job claimed more than 10 minutes ago belongs to a node that stopped: it is due
     * again, and counts in nextDue. */
    "CREATE FUNCTION sb_jobs_claim(p_now bigint, p_max integer, p_max_tools integer,\n"
    "                              p_node text) RETURNS json LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  stale bigint := p_now - " STR(STALE_CLAIM_MS) ";\n"
    "  ids text[];\n"
    "  jobs json;\n"
    "  next_due bigint;\n"
    "BEGIN\n"
    "  WITH due AS (\n"
    "    SELECT call_id, coalesce(next_at, claimed_at) AS due_at FROM postcall_jobs\n"
    "    WHERE (state IN ('pending', 'failed') AND next_at <= p_now)\n"
    "       OR (state = 'running' AND claimed_at < stale)\n"
    "    ORDER BY 2, 1 LIMIT CASE WHEN p_max >= 0 THEN p_max END\n"
    "    FOR UPDATE SKIP LOCKED),\n"
    "  claimed AS (\n"
    "    UPDATE postcall_jobs j SET state = 'running', attempts = j.attempts + 1,\n"
    "      next_at = NULL, updated_at = p_now, claimed_by = p_node, claimed_at = p_now\n"
    "    FROM due WHERE j.call_id = due.call_id\n"
    "    RETURNING j.call_id, due.due_at)\n"
    "  SELECT array_agg(call_id ORDER BY due_at, call_id) INTO ids FROM claimed;\n"
    "  SELECT coalesce(array_to_json(array_agg(json_build_object('callId', j.call_id,\n"
    "      'tenant', j.tenant, 'attempts', j.attempts, 'summary', j.step_summary,\n"
    "      'crm', j.step_crm, 'call', sb_call_json(j.call_id, NULL, p_max_tools))\n"
    "      ORDER BY o.n)), '[]')\n"
    "    INTO jobs\n"
    "    FROM unnest(ids) WITH ORDINALITY AS o(id, n) JOIN postcall_jobs j ON j.call_id = o.id;\n"
    "  SELECT min(d) INTO next_due FROM (\n"
    "    SELECT min(next_at) AS d FROM postcall_jobs WHERE state IN ('pending', 'failed')\n"
    "    UNION ALL\n"
    "    SELECT min(claimed_at) + " STR(STALE_CLAIM_MS) " FROM postcall_jobs\n"
    "    WHERE state = 'running') x;\n"
    "  RETURN json_build_object('jobs', jobs, 'nextDue', coalesce(next_due, -1));\n"
    "END\n"
    "$fn$;\n"
    /* Takes the call's webhook (jobsdb_webhook_take()): true when it had not been taken. */
    "CREATE FUNCTION sb_webhook_take(p_id text) RETURNS boolean LANGUAGE sql AS $fn$\n"
    "  WITH taken AS (\n"
    "    UPDATE postcall_jobs SET webhook_sent = true\n"
    "    WHERE call_id = p_id AND NOT webhook_sent\n"
    "    RETURNING 1)\n"
    "  SELECT count(*) > 0 FROM taken\n"
    "$fn$;\n"
    /* The summary step ended (store.c's postcall_report()): jobsdb_summary() and
     * jobsdb_step(); the call's JSON when the webhook is taken now. */
    "CREATE FUNCTION sb_job_summary(p_id text, p_summary text, p_outcome text, p_error text,\n"
    "    p_now bigint, p_take boolean) RETURNS json LANGUAGE plpgsql AS $fn$\n"
    "BEGIN\n"
    "  IF p_summary IS NULL THEN\n"
    "    UPDATE postcall_jobs SET step_summary = 'failed',\n"
    "      last_error = coalesce(p_error, last_error), updated_at = p_now\n"
    "    WHERE call_id = p_id;\n"
    "    RETURN NULL;\n"
    "  END IF;\n"
    "  UPDATE calls SET summary = p_summary, outcome = p_outcome WHERE id = p_id;\n"
    "  UPDATE postcall_jobs SET step_summary = 'done', updated_at = p_now\n"
    "  WHERE call_id = p_id;\n"
    "  IF p_take AND sb_webhook_take(p_id) THEN\n"
    "    RETURN sb_call_json(p_id, NULL, 0);\n"
    "  END IF;\n"
    "  RETURN NULL;\n"
    "END\n"
    "$fn$;\n"
    /* The attempt ended (jobsdb_step(crm) + jobsdb_end()): done, or failed with a retry after
     * p_base doubling per attempt made, none after the 5th. */
    "CREATE FUNCTION sb_job_end(p_id text, p_crm text, p_error text, p_now bigint,\n"
    "    p_base bigint, p_take boolean) RETURNS json LANGUAGE plpgsql AS $fn$\n"
    "DECLARE\n"
    "  j postcall_jobs;\n"
    "  done boolean;\n"
    "  final boolean;\n"
    "  delay bigint;\n"
    "  webhook json;\n"
    "BEGIN\n"
    "  SELECT * INTO j FROM postcall_jobs WHERE call_id = p_id AND state = 'running'\n"
    "    FOR UPDATE;\n"
    "  IF NOT FOUND THEN\n"
    "    RETURN NULL;\n"
    "  END IF;\n"
    "  j.step_crm := coalesce(p_crm, j.step_crm);\n"
    "  done := j.step_summary = 'done' AND j.step_crm IN ('done', 'skipped');\n"
    "  delay := CASE WHEN done OR j.attempts < 1\n"
    "                  OR j.attempts >= " STR(JOBSDB_MAX_ATTEMPTS) " THEN -1\n"
    "                ELSE p_base * (1::bigint << (j.attempts - 1)) END;\n"
    "  final := NOT done AND delay < 0;\n"
    "  UPDATE postcall_jobs SET step_crm = j.step_crm,\n"
    "    state = CASE WHEN done THEN 'done' ELSE 'failed' END,\n"
    "    next_at = CASE WHEN delay >= 0 THEN p_now + delay END,\n"
    "    last_error = CASE WHEN done THEN NULL ELSE p_error END,\n"
    "    updated_at = p_now, claimed_by = NULL, claimed_at = NULL\n"
    "  WHERE call_id = p_id;\n"
    "  IF final AND p_take AND sb_webhook_take(p_id) THEN\n"
    "    webhook := sb_call_json(p_id, NULL, 0);\n"
    "  END IF;\n"
    "  RETURN json_build_object('done', done, 'final', final, 'retryInMs', delay,\n"
    "                           'webhook', webhook);\n"
    "END\n"
    "$fn$;\n";

/*
 * What runs after each connect: one DO block (the advisory lock serialises the nodes that
 * connect at once, and what it applies commits with it), then the session's setting. Version
 * 1's text goes between setup_head and setup_tail; a later version adds its own `IF v < N`
 * step after version 1's.
 */
static const char setup_head[] =
    "DO $mig$\n"
    "DECLARE\n"
    "  v integer := 0;\n"
    "BEGIN\n"
    "  PERFORM pg_advisory_xact_lock(" STR(PGSCHEMA_LOCK_KEY) ");\n"
    "  IF to_regclass('schema_version') IS NULL THEN\n"
    "    CREATE TABLE schema_version (version integer NOT NULL);\n"
    "  END IF;\n"
    "  SELECT coalesce(max(version), 0) INTO v FROM schema_version;\n"
    "  IF v > " STR(PGSCHEMA_VERSION) " THEN\n"
    "    RAISE EXCEPTION 'the database''s schema is version %, newer than this build''s "
    "(version %)', v, " STR(PGSCHEMA_VERSION) ";\n"
    "  END IF;\n"
    "  IF v < 1 THEN\n"
    "    EXECUTE $v1$\n";
static const char setup_tail[] =
    "\n$v1$;\n"
    "    INSERT INTO schema_version (version) VALUES (1);\n"
    "  END IF;\n"
    "END\n"
    "$mig$;\n"
    "SET synchronous_commit = off";

/* clang-format on */

char *pgschema_setup(void)
{
    const char *const parts[] = {setup_head, schema_v1, PGSCHEMA_BOOKING_V1, setup_tail};
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++)
        n += strlen(parts[i]);
    char *s = xmalloc(n + 1);
    char *p = s;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) {
        size_t len = strlen(parts[i]);
        memcpy(p, parts[i], len);
        p += len;
    }
    *p = '\0';
    return s;
}

/* ---- The statements ------------------------------------------------------------------------ */

const char PGQ_CALL_START[] = "SELECT sb_call_start($1::text, $2::text, $3::text, $4::bigint)";
const char PGQ_CALL_END[] = "SELECT * FROM sb_call_end($1::text, $2::bigint, $3::text, $4::text, "
                            "$5::text, $6::bigint, $7::bigint)";
const char PGQ_FIRST_AUDIO[] = "SELECT sb_first_audio($1::text, $2::bigint)";
const char PGQ_CALL_PHONE[] = "SELECT sb_call_phone($1::text, $2::text, $3::text, $4::text, "
                              "$5::text)";
const char PGQ_TRANSCRIPT[] = "SELECT sb_transcript($1::text, $2::text, $3::text, $4::bigint)";
const char PGQ_TOOL_RECORD[] = "SELECT sb_tool_record($1::text, $2::text, $3::text, $4::text, "
                               "$5::text, $6::text, $7::text, $8::bigint, $9::text, $10::bigint)";
const char PGQ_CHAT_MESSAGE[] = "SELECT sb_chat_message($1::text, $2::text, $3::text, $4::text, "
                                "$5::text, $6::bigint)";
const char PGQ_AGENT_RUN[] = "SELECT sb_agent_run($1::bigint, $2::text, $3::text, $4::text, "
                             "$5::text, $6::text, $7::text, $8::text, $9::bigint, $10::bigint)";
const char PGQ_EXPIRE[] = "SELECT sb_expire($1::bigint)";

const char PGQ_SERVER_KEY[] = "SELECT sb_server_key($1::text, $2::text)";
const char PGQ_CHAT_OPEN[] = "SELECT sb_chat_open($1::text, $2::text, $3::text, $4::bigint, "
                             "$5::integer)";
const char PGQ_CALL_JSON[] = "SELECT sb_call_json($1::text, $2::text, 0)";
const char PGQ_CALL_DELETE[] = "SELECT sb_call_delete($1::text, $2::text)";
const char PGQ_CALLS[] = "SELECT sb_calls($1::text, $2::bigint, $3::bigint, $4::text, $5::text, "
                         "$6::text, $7::bigint, $8::bigint, $9::integer)";
const char PGQ_ANALYTICS[] =
    "WITH b AS (SELECT $2::bigint[] AS v), c AS (\n"
    "  SELECT width_bucket(started_at, b.v) - 1 AS d, duration_ms, outcome, booked, tools_total,\n"
    "         tools_ok, first_audio_ms\n"
    "    FROM calls, b\n"
    "   WHERE ($1::text IS NULL OR tenant = $1::text)\n"
    "     AND started_at >= b.v[1] AND started_at < b.v[array_length(b.v, 1)])\n"
    "SELECT 'd', d::text, count(*), coalesce(sum(duration_ms), 0)::bigint, count(duration_ms),\n"
    "       count(*) FILTER (WHERE booked) FROM c GROUP BY d\n"
    "UNION ALL\n"
    "SELECT 'o', outcome, count(*), NULL, NULL, NULL FROM c WHERE outcome IS NOT NULL\n"
    " GROUP BY outcome\n"
    "UNION ALL\n"
    "SELECT 't', NULL, coalesce(sum(tools_total), 0)::bigint, coalesce(sum(tools_ok), 0)::bigint,\n"
    "       percentile_disc(0.5) WITHIN GROUP (ORDER BY first_audio_ms),\n"
    "       percentile_disc(0.95) WITHIN GROUP (ORDER BY first_audio_ms) FROM c";

const char PGQ_JOBS_RECOVER[] = "SELECT sb_jobs_recover($1::text, $2::bigint)";
const char PGQ_CALL_INFO[] = "SELECT * FROM sb_call_info($1::text, $2::text)";
const char PGQ_JOB_QUEUE[] = "SELECT sb_job_queue($1::text, $2::text, $3::boolean, $4::bigint)";
const char PGQ_JOBS_CLAIM[] = "SELECT sb_jobs_claim($1::bigint, $2::integer, $3::integer, "
                              "$4::text)";
const char PGQ_JOB_SUMMARY[] = "SELECT sb_job_summary($1::text, $2::text, $3::text, $4::text, "
                               "$5::bigint, $6::boolean)";
const char PGQ_JOB_END[] = "SELECT sb_job_end($1::text, $2::text, $3::text, $4::bigint, "
                           "$5::bigint, $6::boolean)";
