/*
 * maintenance-flag: a backout rollback step written in C.
 *
 * Puts a site into maintenance mode by creating a flag file that the web
 * server checks (nginx: `if (-f /var/www/maintenance.flag) { return 503; }`),
 * or takes it out of maintenance mode by moving the flag aside. Built with
 * clang-16 and wasi-libc into a WebAssembly component: see README.md.
 *
 * The contract (wit/step.wit, world `plugin-wasi`) comes from bindings that
 * wit-bindgen generates at build time (plugin_wasi.h, plugin_wasi.c). Files
 * are reached with ordinary POSIX calls: wasi-libc turns them into WASI
 * preview1 calls, the preview1 adapter into wasi:filesystem calls, and the
 * host confines those to the directories the runbook grants (read-only during
 * plan and verify). The one thing preview1 cannot do, fsync a directory, goes
 * to wasi:filesystem directly (sync_dir).
 *
 * Memory, as wit-bindgen's C bindings define it: the arguments of an
 * exported function belong to it (it frees them); what it returns must be
 * on the heap (the generated post-return code frees it); the arguments of an
 * imported host function are borrowed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugin_wasi.h"

#define VERSION "0.1.0"
/* A flag file is small; this also bounds what outputs (and the journal) carry. */
#define MAX_CONTENT 65536
#define MAX_PATH 1024

typedef exports_backout_step_step_step_error_t step_error_t;

enum {
    INVALID_CONFIG = BACKOUT_STEP_TYPES_STEP_ERROR_INVALID_CONFIG,
    PRECONDITION = BACKOUT_STEP_TYPES_STEP_ERROR_PRECONDITION,
    FAILED = BACKOUT_STEP_TYPES_STEP_ERROR_FAILED,
};

/* ---------------------------------------------------------------- buffers */

/* A growable, always NUL-terminated byte buffer. */
typedef struct {
    char *ptr;
    size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        b->ptr = realloc(b->ptr, cap);
        if (!b->ptr) abort();
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, s, n);
    b->len += n;
    b->ptr[b->len] = 0;
}

static void buf_puts(buf_t *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_vprintf(buf_t *b, const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0) abort();
    char *tmp = malloc((size_t)n + 1);
    if (!tmp) abort();
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    buf_add(b, tmp, (size_t)n);
    free(tmp);
}

static void buf_printf(buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

/* Appends `s` as a JSON string literal. `s` must be valid UTF-8. */
static void buf_json(buf_t *b, const char *s, size_t n) {
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            buf_add(b, esc, 2);
        } else if (c == '\n') {
            buf_puts(b, "\\n");
        } else if (c == '\r') {
            buf_puts(b, "\\r");
        } else if (c == '\t') {
            buf_puts(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_add(b, (const char *)&c, 1);
        }
    }
    buf_add(b, "\"", 1);
}

/* Appends `s` (or `null`) as a JSON value. */
static void buf_json_or_null(buf_t *b, const char *s, size_t n) {
    if (s) buf_json(b, s, n);
    else buf_puts(b, "null");
}

/* Hands the buffer over as a component string (freed by post-return code). */
static plugin_wasi_string_t buf_take(buf_t *b) {
    plugin_wasi_string_t s;
    if (b->ptr) {
        s.ptr = (uint8_t *)b->ptr;
        s.len = b->len;
    } else {
        plugin_wasi_string_dup(&s, "");
    }
    *b = (buf_t){0};
    return s;
}

static bool utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p++;
        if (c < 0x80) continue;
        int more;
        unsigned cp, min;
        if (c >= 0xc2 && c <= 0xdf) more = 1, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef) more = 2, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4) more = 3, cp = c & 0x07, min = 0x10000;
        else return false;
        if (end - p < more) return false;
        while (more--) {
            if ((*p & 0xc0) != 0x80) return false;
            cp = cp << 6 | (*p++ & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    }
    return true;
}

/* Sets `err` to the error `tag` with a formatted message; returns false. */
static bool fail(step_error_t *err, uint8_t tag, const char *fmt, ...) {
    buf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    err->tag = tag;
    /* Every case of the variant holds a string at the same place. */
    err->val.failed = buf_take(&b);
    return false;
}

static void log_info(const char *fmt, ...) {
    buf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    plugin_wasi_string_t s = {(uint8_t *)b.ptr, b.len};
    backout_step_host_log(BACKOUT_STEP_HOST_LEVEL_INFO, &s);
    free(b.ptr);
}

/* ------------------------------------------------ a minimal JSON reader
 *
 * Reads one JSON object whose values are strings, booleans or null (numbers,
 * arrays and nested objects are parsed, so that a wrong type is reported as a
 * wrong type rather than as bad JSON). That is all the config and outputs of
 * this step need.
 */

typedef enum { J_NULL, J_BOOL, J_NUMBER, J_STRING, J_ARRAY, J_OBJECT } json_type_t;

typedef struct {
    char *key;
    json_type_t type;
    bool boolean;
    buf_t str; /* J_STRING: the decoded UTF-8 bytes */
} json_field_t;

#define MAX_FIELDS 16
typedef struct {
    json_field_t fields[MAX_FIELDS];
    size_t count;
} json_object_t;

typedef struct {
    const char *p, *start, *end;
    buf_t *err;
} parser_t;

static bool perr(parser_t *ps, const char *what) {
    buf_printf(ps->err, "%s at byte %zu", what, (size_t)(ps->p - ps->start));
    return false;
}

static void skip_ws(parser_t *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool expect(parser_t *ps, char c, const char *what) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != c) return perr(ps, what);
    ps->p++;
    return true;
}

static void add_utf8(buf_t *out, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) u[0] = (char)cp, n = 1;
    else if (cp < 0x800) u[0] = (char)(0xc0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xe0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3f)), u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        u[0] = (char)(0xf0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3f)), u[2] = (char)(0x80 | (cp >> 6 & 0x3f)),
        u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    buf_add(out, u, n);
}

static bool hex4(parser_t *ps, unsigned *out) {
    if (ps->end - ps->p < 4) return perr(ps, "short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *ps->p++;
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return perr(ps, "bad \\u escape");
    }
    *out = v;
    return true;
}

/* A string literal, decoded into `out`. The input is valid UTF-8 (it arrived
 * as a component string), so unescaped bytes are copied as they are. */
static bool parse_string(parser_t *ps, buf_t *out) {
    if (!expect(ps, '"', "expected a string")) return false;
    buf_add(out, "", 0); /* an empty string is still a string, not NULL */
    for (;;) {
        if (ps->p >= ps->end) return perr(ps, "unterminated string");
        unsigned char c = (unsigned char)*ps->p++;
        if (c == '"') return true;
        if (c < 0x20) return perr(ps, "control character in a string");
        if (c != '\\') {
            buf_add(out, (const char *)&c, 1);
            continue;
        }
        if (ps->p >= ps->end) return perr(ps, "unterminated string");
        char e = *ps->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            buf_add(out, &"\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"], 1);
        } else if (e == 'u') {
            unsigned cp, low;
            if (!hex4(ps, &cp)) return false;
            if (cp >= 0xdc00 && cp <= 0xdfff) return perr(ps, "lone surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u') return perr(ps, "lone surrogate in \\u escape");
                ps->p += 2;
                if (!hex4(ps, &low)) return false;
                if (low < 0xdc00 || low > 0xdfff) return perr(ps, "lone surrogate in \\u escape");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            }
            add_utf8(out, cp);
        } else {
            return perr(ps, "bad escape in a string");
        }
    }
}

static bool parse_value(parser_t *ps, json_field_t *v, int depth);

/* An array or object nested in a value: checked, then dropped. */
static bool skip_container(parser_t *ps, int depth) {
    if (depth > 32) return perr(ps, "nested too deeply");
    bool object = *ps->p++ == '{';
    char close = object ? '}' : ']';
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return true;
    }
    for (;;) {
        json_field_t item = {0};
        bool ok = (!object || (parse_string(ps, &item.str) && expect(ps, ':', "expected `:`"))) &&
                  parse_value(ps, &item, depth + 1);
        free(item.str.ptr);
        if (!ok) return false;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        return expect(ps, close, object ? "expected `,` or `}`" : "expected `,` or `]`");
    }
}

static bool literal(parser_t *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return perr(ps, "unexpected character");
    ps->p += n;
    return true;
}

static bool parse_value(parser_t *ps, json_field_t *v, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) return perr(ps, "expected a value");
    char c = *ps->p;
    if (c == '"') {
        v->type = J_STRING;
        free(v->str.ptr);
        v->str = (buf_t){0};
        return parse_string(ps, &v->str);
    }
    if (c == '{' || c == '[') {
        v->type = c == '{' ? J_OBJECT : J_ARRAY;
        return skip_container(ps, depth);
    }
    if (c == 't' || c == 'f') {
        v->type = J_BOOL;
        v->boolean = c == 't';
        return literal(ps, c == 't' ? "true" : "false");
    }
    if (c == 'n') {
        v->type = J_NULL;
        return literal(ps, "null");
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* Only its type matters here: checked loosely, never converted. */
        v->type = J_NUMBER;
        bool digit = false;
        for (; ps->p < ps->end && *ps->p && strchr("0123456789+-.eE", *ps->p); ps->p++) digit |= *ps->p >= '0' && *ps->p <= '9';
        return digit || perr(ps, "bad number");
    }
    return perr(ps, "unexpected character");
}

static void json_free(json_object_t *o) {
    for (size_t i = 0; i < o->count; i++) {
        free(o->fields[i].key);
        free(o->fields[i].str.ptr);
    }
    o->count = 0;
}

/* Parses `text` as one JSON object. On error, `err` says what and where. */
static bool json_parse_object(const char *text, size_t len, json_object_t *o, buf_t *err) {
    parser_t ps = {text, text, text + len, err};
    *o = (json_object_t){0};
    if (!expect(&ps, '{', "expected `{`")) return false;
    skip_ws(&ps);
    if (ps.p < ps.end && *ps.p == '}') {
        ps.p++;
    } else {
        for (;;) {
            buf_t key = {0};
            if (!parse_string(&ps, &key)) {
                free(key.ptr);
                goto fail;
            }
            for (size_t i = 0; i < o->count; i++) {
                if (strcmp(o->fields[i].key, key.ptr) == 0) {
                    buf_printf(err, "duplicate key `%s`", key.ptr);
                    free(key.ptr);
                    goto fail;
                }
            }
            if (o->count == MAX_FIELDS) {
                buf_printf(err, "more than %d keys", MAX_FIELDS);
                free(key.ptr);
                goto fail;
            }
            json_field_t *f = &o->fields[o->count++];
            *f = (json_field_t){.key = key.ptr};
            if (!expect(&ps, ':', "expected `:`") || !parse_value(&ps, f, 0)) goto fail;
            skip_ws(&ps);
            if (ps.p < ps.end && *ps.p == ',') {
                ps.p++;
                continue;
            }
            if (!expect(&ps, '}', "expected `,` or `}`")) goto fail;
            break;
        }
    }
    skip_ws(&ps);
    if (ps.p != ps.end) {
        perr(&ps, "unexpected text after the object");
        goto fail;
    }
    return true;
fail:
    json_free(o);
    return false;
}

/* Moves a string field's bytes out of the object. */
static char *take_str(json_field_t *f, size_t *len) {
    char *s = f->str.ptr;
    if (len) *len = f->str.len;
    f->str = (buf_t){0};
    return s;
}

/* ------------------------------------------------------------ the config */

typedef struct {
    char *file;    /* absolute guest path of the flag file */
    bool enabled;  /* true: maintenance on (flag present); false: off */
    char *content; /* what the flag holds when enabled */
    size_t content_len;
} config_t;

static void config_free(config_t *c) {
    free(c->file);
    free(c->content);
}

/* Whether `key` can follow `#/` in an `invalid-config` pointer as it is
   (letters, digits, `_`, `-`): other keys would need escaping. */
static bool plain_key(const char *key) {
    if (!*key) return false;
    for (const char *k = key; *k; k++)
        if (!(isalnum((unsigned char)*k) || *k == '_' || *k == '-')) return false;
    return true;
}

/* An absolute, normalized path: no `.` or `..` components, no `//`. */
static const char *path_problem(const char *p, size_t len) {
    if (len == 0 || p[0] != '/') return "must be an absolute path";
    if (strlen(p) != len) return "must not contain NUL characters";
    if (len > MAX_PATH) return "is too long";
    if (p[len - 1] == '/') return "must name a file, not end with `/`";
    for (const char *c = p; *c;) {
        const char *next = strchr(c + 1, '/');
        size_t n = (size_t)((next ? next : p + len) - (c + 1));
        if (n == 0 || (n == 1 && c[1] == '.') || (n == 2 && c[1] == '.' && c[2] == '.'))
            return "must be a plain absolute path (no `//`, `.` or `..`)";
        if (!next) break;
        c = next;
    }
    return NULL;
}

static bool parse_config(const plugin_wasi_string_t *json, config_t *c, step_error_t *err) {
    json_object_t o;
    buf_t why = {0};
    *c = (config_t){.enabled = true};
    bool ok = json_parse_object((const char *)json->ptr, json->len, &o, &why);
    if (!ok) {
        fail(err, INVALID_CONFIG, "the config is not a JSON object: %s", why.ptr);
        free(why.ptr);
        return false;
    }
    bool has_content = false;
    for (size_t i = 0; ok && i < o.count; i++) {
        json_field_t *f = &o.fields[i];
        if (strcmp(f->key, "file") == 0) {
            if (f->type != J_STRING) ok = fail(err, INVALID_CONFIG, "`#/file`: `file` must be a string, the flag file's absolute guest path");
            else c->file = take_str(f, NULL);
        } else if (strcmp(f->key, "enabled") == 0) {
            if (f->type != J_BOOL) ok = fail(err, INVALID_CONFIG, "`#/enabled`: `enabled` must be true or false");
            else c->enabled = f->boolean;
        } else if (strcmp(f->key, "content") == 0) {
            if (f->type != J_STRING) ok = fail(err, INVALID_CONFIG, "`#/content`: `content` must be a string");
            else c->content = take_str(f, &c->content_len), has_content = true;
        } else {
            /* Named by pointer only when the key needs no escaping in one. */
            const char *at = plain_key(f->key) ? "`#/" : "";
            ok = fail(err, INVALID_CONFIG, "%s%s%sunknown key `%s` (the keys are `file`, `enabled` and `content`)", at,
                      *at ? f->key : "", *at ? "`: " : "", f->key);
        }
    }
    json_free(&o);
    if (ok && !c->file)
        ok = fail(err, INVALID_CONFIG, "`file` is required: the flag file's absolute guest path, such as /var/www/maintenance.flag");
    const char *problem = ok ? path_problem(c->file, strlen(c->file)) : NULL;
    if (problem) ok = fail(err, INVALID_CONFIG, "`#/file`: `file` %s: `%s`", problem, c->file);
    if (ok && has_content && !c->enabled)
        ok = fail(err, INVALID_CONFIG, "`#/content`: `content` applies only when `enabled` is true");
    if (ok && c->content_len > MAX_CONTENT)
        ok = fail(err, INVALID_CONFIG, "`#/content`: `content` is %zu bytes; at most %d", c->content_len, MAX_CONTENT);
    if (ok && !c->content) c->content = strdup("");
    if (!ok) config_free(c);
    return ok;
}

/* --------------------------------------------------------------- files */

/* The flag file as it is now. */
typedef struct {
    bool exists;
    char *content;
    size_t len;
} flag_t;

static char *parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static bool same(const flag_t *f, const char *content, size_t len) {
    return f->exists && content && f->len == len && memcmp(f->content, content, len) == 0;
}

/* Reads the state of `path`. Refuses what a flag file should not be: a
 * symlink, a directory, a large or binary file. */
static bool probe(const char *path, flag_t *f, step_error_t *err) {
    struct stat st;
    *f = (flag_t){0};
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT)
            return fail(err, PRECONDITION, "cannot access `%s`: %s (is it inside a directory granted to this step?)", path,
                        strerror(errno));
        char *dir = parent_dir(path);
        bool ok = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
        if (!ok) fail(err, PRECONDITION, "the directory `%s` does not exist or is not granted to this step", dir);
        free(dir);
        return ok;
    }
    if (S_ISLNK(st.st_mode)) return fail(err, PRECONDITION, "`%s` is a symbolic link; refusing to follow it", path);
    if (!S_ISREG(st.st_mode)) return fail(err, PRECONDITION, "`%s` exists and is not a regular file", path);
    if (st.st_size > MAX_CONTENT)
        return fail(err, PRECONDITION, "`%s` is %lld bytes; a flag file holds at most %d", path, (long long)st.st_size,
                    MAX_CONTENT);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return fail(err, PRECONDITION, "cannot read `%s`: %s", path, strerror(errno));
    buf_t b = {0};
    char chunk[4096];
    ssize_t n;
    buf_add(&b, "", 0);
    while ((n = read(fd, chunk, sizeof chunk)) > 0 && b.len <= MAX_CONTENT) buf_add(&b, chunk, (size_t)n);
    int read_errno = errno;
    close(fd);
    if (n < 0 || b.len > MAX_CONTENT) {
        free(b.ptr);
        return fail(err, PRECONDITION, "cannot read `%s`: %s", path, n < 0 ? strerror(read_errno) : "it grew while being read");
    }
    if (!utf8_valid(b.ptr, b.len)) {
        free(b.ptr);
        return fail(err, PRECONDITION, "`%s` is not UTF-8 text; not a flag file this step manages", path);
    }
    *f = (flag_t){true, b.ptr, b.len};
    return true;
}

static void flag_free(flag_t *f) { free(f->content); }

static const char *const WASI_ERRORS[] = {
    "access", "would-block", "already", "bad-descriptor", "busy", "deadlock", "quota", "exist", "file-too-large",
    "illegal-byte-sequence", "in-progress", "interrupted", "invalid", "io", "is-directory", "loop", "too-many-links",
    "message-size", "name-too-long", "no-device", "no-entry", "no-lock", "insufficient-memory", "insufficient-space",
    "not-directory", "not-empty", "not-recoverable", "unsupported", "no-tty", "no-such-device", "overflow",
    "not-permitted", "pipe", "read-only", "invalid-seek", "text-file-busy", "cross-device",
};

static const char *wasi_error(wasi_filesystem_types_error_code_t code) {
    return code < sizeof WASI_ERRORS / sizeof *WASI_ERRORS ? WASI_ERRORS[code] : "unknown error";
}

/* fsyncs the directory `dir`, so that a rename or unlink in it survives a
 * crash. WASI preview1 has no way to (the adapter refuses fd_sync on a
 * directory), so this uses wasi:filesystem itself: it opens `dir` through
 * the granted directory (preopen) that holds it and syncs that descriptor. */
static bool sync_dir(const char *dir, buf_t *why) {
    wasi_filesystem_preopens_list_tuple2_own_descriptor_string_t preopens;
    wasi_filesystem_preopens_get_directories(&preopens);
    size_t len = strlen(dir), best = preopens.len, best_len = 0;
    for (size_t i = 0; i < preopens.len; i++) {
        const plugin_wasi_string_t *guest = &preopens.ptr[i].f1;
        bool holds = guest->len <= len && memcmp(guest->ptr, dir, guest->len) == 0 &&
                     (dir[guest->len] == 0 || dir[guest->len] == '/' || guest->len == 1);
        if (holds && (best == preopens.len || guest->len > best_len)) best = i, best_len = guest->len;
    }
    bool ok = false;
    if (best == preopens.len) {
        buf_printf(why, "cannot fsync `%s`: not in a granted directory", dir);
    } else {
        const char *relative = dir + best_len;
        while (*relative == '/') relative++;
        plugin_wasi_string_t path;
        plugin_wasi_string_set(&path, *relative ? relative : ".");
        wasi_filesystem_types_own_descriptor_t d;
        wasi_filesystem_types_error_code_t code;
        wasi_filesystem_types_borrow_descriptor_t granted = wasi_filesystem_types_borrow_descriptor(preopens.ptr[best].f0);
        if (!wasi_filesystem_types_method_descriptor_open_at(granted, 0, &path, WASI_FILESYSTEM_TYPES_OPEN_FLAGS_DIRECTORY,
                                                             WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_READ, &d, &code)) {
            buf_printf(why, "cannot open `%s` to fsync it: %s", dir, wasi_error(code));
        } else {
            ok = wasi_filesystem_types_method_descriptor_sync(wasi_filesystem_types_borrow_descriptor(d), &code);
            if (!ok) buf_printf(why, "cannot fsync `%s`: %s", dir, wasi_error(code));
            wasi_filesystem_types_descriptor_drop_own(d);
        }
    }
    for (size_t i = 0; i < preopens.len; i++) wasi_filesystem_types_descriptor_drop_own(preopens.ptr[i].f0);
    wasi_filesystem_preopens_list_tuple2_own_descriptor_string_free(&preopens);
    return ok;
}

/* Gives `target` the mode and owner of `source`: WASI has no chmod or chown,
 * so the host does it (copy-permissions in wit/step.wit). */
static bool copy_permissions(const char *source, const char *target, buf_t *why) {
    plugin_wasi_string_t s = {(uint8_t *)source, strlen(source)}, t = {(uint8_t *)target, strlen(target)}, e;
    if (backout_step_host_copy_permissions(&s, &t, &e)) return true;
    buf_printf(why, "cannot give it the mode and owner of `%s`: %.*s", source, (int)e.len, (const char *)e.ptr);
    plugin_wasi_string_free(&e);
    return false;
}

typedef enum { WRITE_OK, WRITE_UNCHANGED, WRITE_NOT_SYNCED } write_result_t;

/* Replaces (or creates) `path` atomically: a temp file beside it, given the
 * old file's mode and owner while still empty (a copy of a 0600 file is never
 * readable by others, not even while it is written), written, fsynced,
 * renamed over `path`; then the directory is fsynced. A new flag (`replaces`
 * false) has no file to take a mode from and keeps the host's default mode
 * (0666 less backout's umask) from creation on: the mode it ends with
 * anyway, since WASI has no chmod. On failure `why` says what went wrong. */
static write_result_t write_atomically(const char *path, const char *data, size_t len, bool replaces, buf_t *why) {
    char *dir = parent_dir(path);
    const char *name = strrchr(path, '/') + 1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    buf_t temp = {0};
    buf_printf(&temp, "%s/.%s.backout-tmp-%llx%08lx", strcmp(dir, "/") ? dir : "", name, (unsigned long long)now.tv_sec,
               (unsigned long)now.tv_nsec);
    write_result_t result = WRITE_UNCHANGED;
    /* 0600 is what this asks for, but wasi-libc ignores the mode (WASI has no
     * permissions): the file gets the host's default, hence copy_permissions. */
    int fd = open(temp.ptr, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        buf_printf(why, "cannot create `%s`: %s", temp.ptr, strerror(errno));
        goto out;
    }
    /* The mode and owner first, before a byte is written. */
    if (replaces && !copy_permissions(path, temp.ptr, why)) {
        close(fd);
        goto remove_temp;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, data + done, len - done);
        if (n < 0) {
            buf_printf(why, "cannot write `%s`: %s", temp.ptr, strerror(errno));
            close(fd);
            goto remove_temp;
        }
        done += (size_t)n;
    }
    if (fsync(fd) != 0) {
        buf_printf(why, "cannot fsync `%s`: %s", temp.ptr, strerror(errno));
        close(fd);
        goto remove_temp;
    }
    if (close(fd) != 0) {
        buf_printf(why, "cannot close `%s`: %s", temp.ptr, strerror(errno));
        goto remove_temp;
    }
    if (rename(temp.ptr, path) != 0) {
        buf_printf(why, "cannot rename `%s` to `%s`: %s", temp.ptr, path, strerror(errno));
        goto remove_temp;
    }
    result = WRITE_OK;
    if (!sync_dir(dir, why)) result = WRITE_NOT_SYNCED;
    goto out;
remove_temp:
    unlink(temp.ptr);
out:
    free(temp.ptr);
    free(dir);
    return result;
}

/* `<file>.backout-<UTC time>.bak` beside the file, not yet taken (NULL if
 * a hundred of them are). */
static char *safety_copy_path(const char *path) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    buf_t b = {0};
    for (int i = 0; i < 100; i++) {
        b.len = 0;
        buf_printf(&b, "%s.backout-%04d%02d%02dT%02d%02d%02dZ", path, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                   tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (i) buf_printf(&b, "-%d", i);
        buf_puts(&b, ".bak");
        struct stat st;
        if (lstat(b.ptr, &st) != 0) return b.ptr; /* free (or not even visible: rename will say why) */
    }
    free(b.ptr);
    return NULL;
}

/* Up to 60 bytes of `s` as a JSON literal, cut at a character boundary. */
static void buf_preview(buf_t *b, const char *s, size_t len) {
    size_t n = len;
    if (n > 60) {
        n = 60;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    }
    buf_json(b, s, n);
    if (n < len) buf_puts(b, "…");
}

/* ------------------------------------------------------------- outputs
 *
 * run records everything verify and undo need: what the file held before
 * (`existed_before`, `previous_content`), what run left there (`enabled`,
 * `content`), and where a flag that was switched off went (`safety_copy`).
 */

typedef struct {
    char *file;
    bool enabled, changed, existed_before;
    char *previous_content, *content, *safety_copy; /* NULL when null */
    size_t previous_len, content_len;
} outputs_t;

static void outputs_free(outputs_t *o) {
    free(o->file);
    free(o->previous_content);
    free(o->content);
    free(o->safety_copy);
}

static plugin_wasi_string_t outputs_json(const outputs_t *o) {
    buf_t b = {0};
    buf_puts(&b, "{\"file\":");
    buf_json(&b, o->file, strlen(o->file));
    buf_printf(&b, ",\"enabled\":%s,\"changed\":%s,\"existed_before\":%s,\"previous_content\":",
               o->enabled ? "true" : "false", o->changed ? "true" : "false", o->existed_before ? "true" : "false");
    buf_json_or_null(&b, o->previous_content, o->previous_len);
    buf_puts(&b, ",\"content\":");
    buf_json_or_null(&b, o->content, o->content_len);
    buf_puts(&b, ",\"safety_copy\":");
    buf_json_or_null(&b, o->safety_copy, o->safety_copy ? strlen(o->safety_copy) : 0);
    buf_puts(&b, "}");
    return buf_take(&b);
}

static bool parse_outputs(const plugin_wasi_string_t *json, outputs_t *o, step_error_t *err) {
    json_object_t obj;
    buf_t why = {0};
    *o = (outputs_t){0};
    if (!json_parse_object((const char *)json->ptr, json->len, &obj, &why)) {
        fail(err, FAILED, "run's outputs are not a JSON object: %s", why.ptr);
        free(why.ptr);
        return false;
    }
    int seen = 0;
    for (size_t i = 0; i < obj.count; i++) {
        json_field_t *f = &obj.fields[i];
        bool is_str = f->type == J_STRING, is_bool = f->type == J_BOOL;
        if (!strcmp(f->key, "file") && is_str) o->file = take_str(f, NULL), seen |= 1;
        else if (!strcmp(f->key, "enabled") && is_bool) o->enabled = f->boolean, seen |= 2;
        else if (!strcmp(f->key, "changed") && is_bool) o->changed = f->boolean, seen |= 4;
        else if (!strcmp(f->key, "existed_before") && is_bool) o->existed_before = f->boolean, seen |= 8;
        else if (!strcmp(f->key, "previous_content") && is_str) o->previous_content = take_str(f, &o->previous_len);
        else if (!strcmp(f->key, "content") && is_str) o->content = take_str(f, &o->content_len);
        else if (!strcmp(f->key, "safety_copy") && is_str) o->safety_copy = take_str(f, NULL);
    }
    json_free(&obj);
    bool ok = seen == 15 && !path_problem(o->file, strlen(o->file)) && (!o->enabled || o->content) &&
              (!o->existed_before || o->previous_content) && (o->enabled || !o->changed || o->safety_copy);
    if (!ok) {
        outputs_free(o);
        return fail(err, FAILED, "run's outputs lack what this plugin records (file, enabled, changed, ...)");
    }
    return true;
}

/* ------------------------------------------------------------ the step */

void exports_backout_step_step_describe(exports_backout_step_step_info_t *ret) {
    plugin_wasi_string_dup(&ret->name, "maintenance-flag");
    plugin_wasi_string_dup(&ret->version, VERSION);
    plugin_wasi_string_dup(&ret->summary, "put a site into or out of maintenance mode by creating or moving aside a flag file");
    plugin_wasi_string_dup(
        &ret->config_schema,
        "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
        "\"additionalProperties\":false,\"required\":[\"file\"],\"properties\":{"
        "\"file\":{\"type\":\"string\",\"pattern\":\"^/\",\"description\":"
        "\"absolute guest path of the flag file, inside a read-write grant\"},"
        "\"enabled\":{\"type\":\"boolean\",\"default\":true,\"description\":"
        "\"true: create or replace the flag (maintenance on); false: move it aside (maintenance off)\"},"
        "\"content\":{\"type\":\"string\",\"default\":\"\",\"description\":"
        "\"what the flag file holds (at most 64 KiB); only with enabled = true\"}}}");
    ret->needs.files = BACKOUT_STEP_TYPES_FILE_ACCESS_READ_WRITE;
    ret->needs.env = (plugin_wasi_list_string_t){NULL, 0};
    ret->needs.network = false;
}

/* What run would do, as one action, and its effect: a flag already as
 * requested is in place, so a re-run of the rollback has nothing to change. */
static backout_step_types_effect_t describe_change(const config_t *c, const flag_t *now, buf_t *summary,
                                                   buf_t *detail) {
    if (c->enabled && !now->exists) {
        buf_printf(summary, "create %s (maintenance on)", c->file);
        buf_printf(detail, "%zu bytes: ", c->content_len);
        buf_preview(detail, c->content, c->content_len);
    } else if (c->enabled && same(now, c->content, c->content_len)) {
        buf_printf(summary, "leave %s as it is (already in maintenance mode with this content)", c->file);
        return BACKOUT_STEP_TYPES_EFFECT_IN_PLACE;
    } else if (c->enabled) {
        buf_printf(summary, "replace the content of %s (maintenance on)", c->file);
        buf_printf(detail, "%zu bytes → %zu bytes: ", now->len, c->content_len);
        buf_preview(detail, c->content, c->content_len);
    } else if (now->exists) {
        buf_printf(summary, "move %s aside (maintenance off)", c->file);
        buf_printf(detail, "kept as %s.backout-<UTC time>.bak for undo", c->file);
    } else {
        buf_printf(summary, "leave %s absent (already out of maintenance mode)", c->file);
        return BACKOUT_STEP_TYPES_EFFECT_IN_PLACE;
    }
    return BACKOUT_STEP_TYPES_EFFECT_CHANGE;
}

bool exports_backout_step_step_plan(exports_backout_step_step_json_t *config, exports_backout_step_step_list_action_t *ret,
                                    step_error_t *err) {
    config_t c;
    flag_t now;
    bool ok = parse_config(config, &c, err);
    exports_backout_step_step_json_free(config);
    if (!ok) return false;
    if (!probe(c.file, &now, err)) {
        config_free(&c);
        return false;
    }
    buf_t summary = {0}, detail = {0};
    backout_step_types_effect_t effect = describe_change(&c, &now, &summary, &detail);
    exports_backout_step_step_action_t *action = calloc(1, sizeof *action);
    if (!action) abort();
    action->effect = effect;
    action->summary = buf_take(&summary);
    action->detail.is_some = detail.len > 0;
    if (detail.len) action->detail.val = buf_take(&detail);
    free(detail.ptr);
    *ret = (exports_backout_step_step_list_action_t){action, 1};
    flag_free(&now);
    config_free(&c);
    return true;
}

bool exports_backout_step_step_run(exports_backout_step_step_json_t *config, exports_backout_step_step_outcome_t *ret,
                                   step_error_t *err) {
    config_t c;
    flag_t now;
    bool ok = parse_config(config, &c, err);
    exports_backout_step_step_json_free(config);
    if (!ok) return false;
    /* Never trust plan: look again. */
    if (!probe(c.file, &now, err)) {
        config_free(&c);
        return false;
    }
    outputs_t o = {.file = c.file, .enabled = c.enabled, .existed_before = now.exists};
    if (now.exists) o.previous_content = now.content, o.previous_len = now.len;
    if (c.enabled) o.content = c.content, o.content_len = c.content_len;
    buf_t summary = {0}, why = {0};

    if (c.enabled && same(&now, c.content, c.content_len)) {
        buf_printf(&summary, "%s already holds this content; nothing changed", c.file);
    } else if (c.enabled) {
        write_result_t w = write_atomically(c.file, c.content, c.content_len, now.exists, &why);
        if (w == WRITE_UNCHANGED) {
            ok = fail(err, FAILED, "could not write `%s`: %s; nothing was changed", c.file, why.ptr);
        } else if (w == WRITE_NOT_SYNCED) {
            ok = fail(err, FAILED, "`%s` was written but may not survive a crash: %s", c.file, why.ptr);
        } else {
            o.changed = true;
            buf_printf(&summary, "%s %s (%zu bytes): maintenance on", now.exists ? "replaced" : "created", c.file,
                       c.content_len);
        }
    } else if (now.exists) {
        o.safety_copy = safety_copy_path(c.file);
        char *dir = parent_dir(c.file);
        if (!o.safety_copy) {
            ok = fail(err, FAILED, "could not move `%s` aside: too many safety copies beside it; nothing was changed",
                      c.file);
        } else if (rename(c.file, o.safety_copy) != 0) {
            ok = fail(err, FAILED, "could not move `%s` aside: %s; nothing was changed", c.file, strerror(errno));
        } else if (!sync_dir(dir, &why)) {
            ok = fail(err, FAILED, "`%s` was moved to `%s` but may not survive a crash: %s", c.file, o.safety_copy,
                      why.ptr);
        } else {
            o.changed = true;
            buf_printf(&summary, "moved %s to %s: maintenance off", c.file, o.safety_copy);
        }
        free(dir);
    } else {
        buf_printf(&summary, "%s is already absent; nothing changed", c.file);
    }

    if (ok) {
        log_info("%s", summary.ptr);
        ret->summary = buf_take(&summary);
        ret->outputs = outputs_json(&o);
    }
    free(summary.ptr);
    free(why.ptr);
    free(o.safety_copy);
    flag_free(&now);
    config_free(&c);
    return ok;
}

bool exports_backout_step_step_verify(exports_backout_step_step_json_t *config, exports_backout_step_step_json_t *outputs,
                                      step_error_t *err) {
    outputs_t o;
    flag_t now;
    exports_backout_step_step_json_free(config); /* everything verify needs is in the outputs */
    bool ok = parse_outputs(outputs, &o, err);
    exports_backout_step_step_json_free(outputs);
    if (!ok) return false;
    ok = probe(o.file, &now, err);
    if (ok && o.enabled && !now.exists)
        ok = fail(err, PRECONDITION, "`%s` is missing: the site is not in maintenance mode", o.file);
    else if (ok && o.enabled && !same(&now, o.content, o.content_len))
        ok = fail(err, PRECONDITION, "`%s` does not hold what run wrote (%zu bytes, expected %zu)", o.file, now.len,
                  o.content_len);
    else if (ok && !o.enabled && now.exists)
        ok = fail(err, PRECONDITION, "`%s` exists: the site is still in maintenance mode", o.file);
    flag_free(&now);
    outputs_free(&o);
    return ok;
}

bool exports_backout_step_step_undo(exports_backout_step_step_json_t *config, exports_backout_step_step_json_t *outputs,
                                    exports_backout_step_step_outcome_t *ret, step_error_t *err) {
    outputs_t o;
    flag_t now = {0}, copy = {0};
    exports_backout_step_step_json_free(config);
    bool ok = parse_outputs(outputs, &o, err);
    exports_backout_step_step_json_free(outputs);
    if (!ok) return false;
    buf_t summary = {0}, why = {0};
    char *dir = parent_dir(o.file);
    /* What the file held before run: present with this content, or absent. */
    bool before_present = o.existed_before;

    if (!o.changed) {
        buf_printf(&summary, "run changed nothing; nothing to undo");
    } else if (!probe(o.file, &now, err)) {
        ok = false;
    } else if (before_present ? same(&now, o.previous_content, o.previous_len) : !now.exists) {
        buf_printf(&summary, "%s is already as it was before run", o.file);
    } else if (o.enabled ? !same(&now, o.content, o.content_len) : now.exists) {
        ok = fail(err, PRECONDITION, "`%s` changed since run (it is now %s); nothing restored", o.file,
                  now.exists ? "present with other content" : "absent");
    } else if (o.enabled && before_present) {
        write_result_t w = write_atomically(o.file, o.previous_content, o.previous_len, true, &why);
        if (w == WRITE_UNCHANGED) ok = fail(err, FAILED, "could not restore `%s`: %s; nothing was changed", o.file, why.ptr);
        else if (w == WRITE_NOT_SYNCED) ok = fail(err, FAILED, "`%s` was restored but may not survive a crash: %s", o.file, why.ptr);
        else buf_printf(&summary, "restored the previous content of %s", o.file);
    } else if (o.enabled) {
        if (unlink(o.file) != 0)
            ok = fail(err, FAILED, "could not remove `%s`: %s; nothing was changed", o.file, strerror(errno));
        else if (!sync_dir(dir, &why))
            ok = fail(err, FAILED, "`%s` was removed but may not survive a crash: %s", o.file, why.ptr);
        else buf_printf(&summary, "removed %s: maintenance off again", o.file);
    } else {
        step_error_t ignored;
        bool copy_ok = probe(o.safety_copy, &copy, &ignored);
        if (!copy_ok) plugin_wasi_string_free(&ignored.val.failed);
        if (!copy_ok || !same(&copy, o.previous_content, o.previous_len))
            ok = fail(err, PRECONDITION, "the safety copy `%s` is missing or changed; nothing restored", o.safety_copy);
        else if (rename(o.safety_copy, o.file) != 0)
            ok = fail(err, FAILED, "could not move `%s` back to `%s`: %s; nothing was changed", o.safety_copy, o.file,
                      strerror(errno));
        else if (!sync_dir(dir, &why))
            ok = fail(err, FAILED, "`%s` was restored but may not survive a crash: %s", o.file, why.ptr);
        else buf_printf(&summary, "moved %s back to %s: maintenance on again", o.safety_copy, o.file);
    }

    if (ok) {
        log_info("%s", summary.ptr);
        ret->summary = buf_take(&summary);
        buf_t out = {0};
        buf_puts(&out, "{\"file\":");
        buf_json(&out, o.file, strlen(o.file));
        buf_printf(&out, ",\"restored\":%s}", o.changed ? "true" : "false");
        ret->outputs = buf_take(&out);
    }
    free(summary.ptr);
    free(why.ptr);
    free(dir);
    flag_free(&now);
    flag_free(&copy);
    outputs_free(&o);
    return ok;
}
