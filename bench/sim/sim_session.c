/*
 * The Realtime session configuration of the simulator: the GA default, the checks a
 * session.update must pass (the errors the reference lists for mixed-up GA and beta shapes),
 * the merge of an update, and the settings the session derives from it.
 * Thread: the simulator's only thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "bench/sim/sim_rt.h"

#define SESSION_MAX_DURATION_S    3600
#define DEFAULT_PREFIX_PADDING_MS 300
#define DEFAULT_SILENCE_MS        500
#define MAX_SILENCE_MS            10000

static const char default_session_json[] =
    "{\"type\":\"realtime\",\"object\":\"realtime.session\",\"id\":\"\",\"model\":\"\","
    "\"output_modalities\":[\"audio\"],\"instructions\":\"\",\"tools\":[],\"tool_choice\":\"auto\","
    "\"max_output_tokens\":\"inf\",\"tracing\":null,\"truncation\":\"auto\",\"prompt\":null,"
    "\"expires_at\":0,\"include\":null,"
    "\"audio\":{\"input\":{\"format\":{\"type\":\"audio/pcm\",\"rate\":24000},"
    "\"transcription\":null,\"noise_reduction\":null,"
    "\"turn_detection\":{\"type\":\"server_vad\",\"threshold\":0.5,\"prefix_padding_ms\":300,"
    "\"silence_duration_ms\":500,\"idle_timeout_ms\":null,\"create_response\":true,"
    "\"interrupt_response\":true}},"
    "\"output\":{\"format\":{\"type\":\"audio/pcm\",\"rate\":24000},\"voice\":\"marin\","
    "\"speed\":1.0}}}";

/* Fields of a GA session object; anything else is unknown_parameter (beta fields included). */
static const char *const ga_fields[] = {"type",
                                        "model",
                                        "output_modalities",
                                        "instructions",
                                        "audio",
                                        "tools",
                                        "tool_choice",
                                        "max_output_tokens",
                                        "tracing",
                                        "truncation",
                                        "prompt",
                                        "include",
                                        "parallel_tool_calls",
                                        "reasoning",
                                        "id",
                                        "object",
                                        "expires_at",
                                        NULL};
static const char *const audio_fields[] = {"input", "output", NULL};
static const char *const input_fields[] = {"format", "transcription", "noise_reduction",
                                           "turn_detection", NULL};
static const char *const output_fields[] = {"format", "voice", "speed", NULL};

cJSON *sim_session_default(const char *id, const char *model)
{
    cJSON *s = cJSON_Parse(default_session_json);
    if (s == NULL)
        abort(); /* the template is a constant: this cannot fail */
    cJSON_ReplaceItemInObjectCaseSensitive(s, "id", cJSON_CreateString(id));
    cJSON_ReplaceItemInObjectCaseSensitive(s, "model", cJSON_CreateString(model));
    cJSON_ReplaceItemInObjectCaseSensitive(
        s, "expires_at", cJSON_CreateNumber((double)(time(NULL) + SESSION_MAX_DURATION_S)));
    return s;
}

static bool known(const char *name, const char *const *fields)
{
    for (; *fields; fields++)
        if (strcmp(name, *fields) == 0)
            return true;
    return false;
}

/* Finds the first member of obj not in fields; writes "<prefix>.<name>" into param. */
static bool unknown_member(const cJSON *obj, const char *const *fields, const char *prefix,
                           char *param, size_t param_sz)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, obj)
    {
        if (!known(m->string, fields)) {
            snprintf(param, param_sz, "%s.%s", prefix, m->string);
            return true;
        }
    }
    return false;
}

/* A format object must be audio/pcm (rate 24000), audio/pcmu or audio/pcma. */
static bool format_ok(const cJSON *f)
{
    if (f == NULL || cJSON_IsNull(f))
        return true;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type");
    if (!cJSON_IsObject(f) || !cJSON_IsString(t))
        return false;
    if (strcmp(t->valuestring, "audio/pcm") == 0) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(f, "rate");
        return r == NULL || (cJSON_IsNumber(r) && r->valuedouble == SIM_AUDIO_PCM_RATE_HZ);
    }
    return strcmp(t->valuestring, "audio/pcmu") == 0 || strcmp(t->valuestring, "audio/pcma") == 0;
}

#define FAIL(c, p, ...)                                                                            \
    do {                                                                                           \
        *code = (c);                                                                               \
        str_copy(param, (p), param_sz);                                                            \
        snprintf(message, message_sz, __VA_ARGS__);                                                \
        return -1;                                                                                 \
    } while (0)

int sim_session_check(const cJSON *upd, const char **code, char *param, size_t param_sz,
                      char *message, size_t message_sz)
{
    if (!cJSON_IsObject(upd))
        FAIL("missing_required_parameter", "session", "Missing required parameter: 'session'.");
    char p[160];
    if (unknown_member(upd, ga_fields, "session", p, sizeof(p)))
        FAIL("unknown_parameter", p, "Unknown parameter: '%s'.", p);
    const cJSON *audio = cJSON_GetObjectItemCaseSensitive(upd, "audio");
    if (audio && !cJSON_IsObject(audio))
        FAIL("invalid_type", "session.audio",
             "Invalid type for 'session.audio': expected an "
             "object.");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(audio, "input");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(audio, "output");
    if (audio && unknown_member(audio, audio_fields, "session.audio", p, sizeof(p)))
        FAIL("unknown_parameter", p, "Unknown parameter: '%s'.", p);
    if (cJSON_IsObject(in) && unknown_member(in, input_fields, "session.audio.input", p, sizeof(p)))
        FAIL("unknown_parameter", p, "Unknown parameter: '%s'.", p);
    if (cJSON_IsObject(out) &&
        unknown_member(out, output_fields, "session.audio.output", p, sizeof(p)))
        FAIL("unknown_parameter", p, "Unknown parameter: '%s'.", p);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(upd, "type");
    if (type == NULL)
        FAIL("missing_required_parameter", "session.type",
             "Missing required parameter: 'session.type'.");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "realtime") != 0)
        FAIL("invalid_value", "session.type",
             "Invalid value for 'session.type': the simulator supports only 'realtime'.");
    if (!format_ok(cJSON_GetObjectItemCaseSensitive(in, "format")))
        FAIL("invalid_value", "session.audio.input.format",
             "Invalid 'session.audio.input.format': expected audio/pcm at 24000 Hz, audio/pcmu "
             "or audio/pcma.");
    if (!format_ok(cJSON_GetObjectItemCaseSensitive(out, "format")))
        FAIL("invalid_value", "session.audio.output.format",
             "Invalid 'session.audio.output.format': expected audio/pcm at 24000 Hz, "
             "audio/pcmu or audio/pcma.");
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(upd, "output_modalities");
    if (mods) {
        const cJSON *m0 = cJSON_GetArrayItem(mods, 0);
        if (!cJSON_IsArray(mods) || cJSON_GetArraySize(mods) != 1 || !cJSON_IsString(m0) ||
            (strcmp(m0->valuestring, "audio") != 0 && strcmp(m0->valuestring, "text") != 0))
            FAIL("invalid_value", "session.output_modalities",
                 "Invalid 'session.output_modalities': expected [\"audio\"] or [\"text\"].");
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(upd, "tools");
    if (tools) {
        if (!cJSON_IsArray(tools))
            FAIL("invalid_type", "session.tools",
                 "Invalid type for 'session.tools': expected "
                 "an array.");
        int i = 0;
        const cJSON *t;
        cJSON_ArrayForEach(t, tools)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
            const cJSON *tt = cJSON_GetObjectItemCaseSensitive(t, "type");
            if (cJSON_IsString(tt) && strcmp(tt->valuestring, "function") == 0 &&
                !cJSON_IsString(name)) {
                snprintf(p, sizeof(p), "session.tools[%d].name", i);
                FAIL("missing_required_parameter", p, "Missing required parameter: '%s'.", p);
            }
            i++;
        }
    }
    const cJSON *td = cJSON_GetObjectItemCaseSensitive(in, "turn_detection");
    if (td && !cJSON_IsNull(td)) {
        const cJSON *tdt = cJSON_GetObjectItemCaseSensitive(td, "type");
        if (!cJSON_IsString(tdt) || (strcmp(tdt->valuestring, "server_vad") != 0 &&
                                     strcmp(tdt->valuestring, "semantic_vad") != 0))
            FAIL("invalid_value", "session.audio.input.turn_detection.type",
                 "Invalid 'session.audio.input.turn_detection.type': expected server_vad or "
                 "semantic_vad.");
    }
    return 0;
}

/* Replaces (or adds) every member of src in dst. */
static void merge_members(cJSON *dst, const cJSON *src)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, src)
    {
        cJSON *copy = cJSON_Duplicate(m, true);
        if (cJSON_HasObjectItem(dst, m->string))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, m->string, copy);
        else
            cJSON_AddItemToObject(dst, m->string, copy);
    }
}

void sim_session_merge(cJSON *session, const cJSON *upd)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, upd)
    {
        /* The server owns these; a client echoing them back changes nothing. */
        if (strcmp(m->string, "id") == 0 || strcmp(m->string, "object") == 0 ||
            strcmp(m->string, "expires_at") == 0 || strcmp(m->string, "type") == 0)
            continue;
        cJSON *cur = cJSON_GetObjectItemCaseSensitive(session, m->string);
        if (strcmp(m->string, "audio") == 0 && cJSON_IsObject(cur) && cJSON_IsObject(m)) {
            const cJSON *sub;
            cJSON_ArrayForEach(sub, m)
            {
                cJSON *cs = cJSON_GetObjectItemCaseSensitive(cur, sub->string);
                if (cJSON_IsObject(cs) && cJSON_IsObject(sub)) {
                    merge_members(cs, sub);
                } else {
                    cJSON *copy = cJSON_Duplicate(sub, true);
                    if (cs)
                        cJSON_ReplaceItemInObjectCaseSensitive(cur, sub->string, copy);
                    else
                        cJSON_AddItemToObject(cur, sub->string, copy);
                }
            }
            continue;
        }
        cJSON *copy = cJSON_Duplicate(m, true);
        if (cur)
            cJSON_ReplaceItemInObjectCaseSensitive(session, m->string, copy);
        else
            cJSON_AddItemToObject(session, m->string, copy);
    }
}

static sim_fmt_t format_of(const cJSON *f)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(f, "type");
    if (cJSON_IsString(t) && strcmp(t->valuestring, "audio/pcmu") == 0)
        return SIM_FMT_PCMU;
    if (cJSON_IsString(t) && strcmp(t->valuestring, "audio/pcma") == 0)
        return SIM_FMT_PCMA;
    return SIM_FMT_PCM24;
}

static bool bool_or(const cJSON *obj, const char *name, bool dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static uint32_t ms_or(const cJSON *obj, const char *name, uint32_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0)
        return dflt;
    return v->valuedouble > MAX_SILENCE_MS ? MAX_SILENCE_MS : (uint32_t)v->valuedouble;
}

void sim_session_derive(sim_rt_t *rt)
{
    const cJSON *audio = cJSON_GetObjectItemCaseSensitive(rt->session, "audio");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(audio, "input");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(audio, "output");
    sim_fmt_t in_fmt = format_of(cJSON_GetObjectItemCaseSensitive(in, "format"));
    rt->out_fmt = format_of(cJSON_GetObjectItemCaseSensitive(out, "format"));
    const cJSON *mods = cJSON_GetObjectItemCaseSensitive(rt->session, "output_modalities");
    const cJSON *m0 = cJSON_GetArrayItem(mods, 0);
    rt->text_only = cJSON_IsString(m0) && strcmp(m0->valuestring, "text") == 0;

    const cJSON *td = cJSON_GetObjectItemCaseSensitive(in, "turn_detection");
    rt->vad_on = cJSON_IsObject(td);
    rt->create_response = bool_or(td, "create_response", true);
    rt->interrupt_response = bool_or(td, "interrupt_response", true);
    rt->prefix_ms = ms_or(td, "prefix_padding_ms", DEFAULT_PREFIX_PADDING_MS);
    rt->silence_ms = ms_or(td, "silence_duration_ms", DEFAULT_SILENCE_MS);
    if (in_fmt != rt->in_fmt || rt->vad.rate_hz == 0) {
        uint64_t ms = rt->vad.rate_hz ? sim_vad_now_ms(&rt->vad) : 0;
        rt->in_fmt = in_fmt;
        sim_vad_init(&rt->vad, sim_audio_rate(in_fmt), rt->silence_ms);
        rt->vad.pos = ms * rt->vad.rate_hz / SIM_MS_PER_S; /* the timeline goes on */
        rt->carry = -1;
    } else {
        sim_vad_t fresh;
        sim_vad_init(&fresh, rt->vad.rate_hz, rt->silence_ms);
        rt->vad.silence_windows = fresh.silence_windows;
    }

    rt->has_navigate = false;
    rt->has_transfer = false;
    rt->has_end_call = false;
    rt->section_enum = NULL;
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(rt->session, "tools"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (cJSON_IsString(name) && strcmp(name->valuestring, "transferCall") == 0)
            rt->has_transfer = true;
        if (cJSON_IsString(name) && strcmp(name->valuestring, "endCall") == 0)
            rt->has_end_call = true;
        if (!cJSON_IsString(name) || strcmp(name->valuestring, "navigate") != 0)
            continue;
        rt->has_navigate = true;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(t, "parameters");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(params, "properties");
        const cJSON *section = cJSON_GetObjectItemCaseSensitive(props, "section");
        const cJSON *en = cJSON_GetObjectItemCaseSensitive(section, "enum");
        rt->section_enum = cJSON_IsArray(en) ? en : NULL;
    }
}
