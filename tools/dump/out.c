/* The dump's emitter: text lines or one JSON document from the same calls (out.h). */
#include "tools/dump/out.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void out_init(struct out *o, FILE *f, bool json)
{
	memset(o, 0, sizeof(*o));
	o->f = f;
	o->json = json;
}

static struct frame *out_top(struct out *o)
{
	return o->depth ? &o->fr[o->depth - 1] : NULL;
}

static void out_push(struct out *o, enum frame_kind kind, bool indented)
{
	/* Nesting is fixed by the dump's code, never by the image. */
	if (o->depth == OUT_MAX_DEPTH)
		abort();
	o->fr[o->depth++] = (struct frame){ .kind = kind, .indented = indented };
	if (indented)
		o->indent++;
}

static void out_pop(struct out *o)
{
	if (o->fr[--o->depth].indented)
		o->indent--;
}

/* Valid UTF-8 sequence at s (at most n bytes): its length, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (s[0] >= 0xf8 || len == 0 || len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	}
	return len;
}

/* A JSON string: valid UTF-8 passes, other bytes >= 0x80 become U+0080..U+00FF. */
static void json_string(FILE *f, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	for (size_t i = 0; i < n;) {
		size_t u = p[i] >= 0x80 ? utf8_len(p + i, n - i) : 0;
		if (u) {
			fwrite(p + i, 1, u, f);
			i += u;
			continue;
		}
		if (p[i] == '"' || p[i] == '\\')
			fprintf(f, "\\%c", p[i]);
		else if (p[i] < 0x20 || p[i] >= 0x7f)
			fprintf(f, "\\u%04x", p[i]);
		else
			fputc(p[i], f);
		i++;
	}
	fputc('"', f);
}

/* A quoted text string: control characters and '"' escaped, other bytes as they are. */
static void text_string(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void text_break(struct out *o)
{
	if (o->line_open)
		fputc('\n', o->f);
	o->line_open = false;
}

static void text_indent(struct out *o)
{
	for (int i = 0; i < o->indent; i++)
		fputc('\t', o->f);
}

/* JSON: the separator and key before a value. */
static void json_key(struct out *o, const char *key)
{
	struct frame *t = out_top(o);

	if (t && t->comma)
		fputc(',', o->f);
	if (t)
		t->comma = true;
	if (key && t && t->kind != FRAME_ARRAY) {
		json_string(o->f, key, strlen(key));
		fputc(':', o->f);
	}
}

/* Start an object: JSON `key: {`; text a line starting with `title` (none if NULL). */
void out_obj_begin(struct out *o, const char *key, const char *title, enum frame_kind kind)
{
	if (o->mute)
		return;
	if (o->json) {
		json_key(o, key);
		fputc('{', o->f);
		out_push(o, kind, false);
		return;
	}
	text_break(o);
	if (title) {
		text_indent(o);
		fputs(title, o->f);
		if (kind == FRAME_BLOCK)
			fputs(":\n", o->f);
		else
			o->line_open = true;
	}
	out_push(o, kind, title != NULL);
}

void out_obj_end(struct out *o)
{
	if (o->mute)
		return;
	if (o->json)
		fputc('}', o->f);
	else
		text_break(o);
	out_pop(o);
}

void out_arr_begin(struct out *o, const char *key, const char *title)
{
	if (o->mute)
		return;
	if (o->json) {
		json_key(o, key);
		fputc('[', o->f);
		out_push(o, FRAME_ARRAY, false);
		return;
	}
	text_break(o);
	if (title) {
		text_indent(o);
		fprintf(o->f, "%s:\n", title);
	}
	out_push(o, FRAME_ARRAY, title != NULL);
}

void out_arr_end(struct out *o)
{
	if (o->mute)
		return;
	if (o->json)
		fputc(']', o->f);
	else
		text_break(o);
	out_pop(o);
}

/*
 * Text: on a LINE object ` key value` (just ` value` when anon), on a BLOCK object one
 * `key  value` line. Returns false when muted (write nothing).
 */
bool out_field_begin(struct out *o, const char *key, bool anon)
{
	struct frame *t = out_top(o);

	if (o->mute)
		return false;
	if (o->json) {
		json_key(o, key);
		return true;
	}
	if (t && t->kind == FRAME_LINE) {
		if (o->line_open) {
			fputc(' ', o->f);
		} else {
			text_indent(o);
			o->line_open = true;
		}
		if (!anon)
			fprintf(o->f, "%s ", key);
	} else {
		text_break(o);
		text_indent(o);
		if (!anon)
			fprintf(o->f, "%-18s", key);
	}
	return true;
}

void out_field_end(struct out *o)
{
	struct frame *t = out_top(o);

	if (!o->json && !(t && t->kind == FRAME_LINE))
		fputc('\n', o->f);
}

void out_u64(struct out *o, const char *key, uint64_t v)
{
	if (!out_field_begin(o, key, false))
		return;
	fprintf(o->f, "%" PRIu64, v);
	out_field_end(o);
}

/* The same, without the name in text (the object's title says what it is). */
void out_anon_u64(struct out *o, const char *key, uint64_t v)
{
	if (!out_field_begin(o, key, true))
		return;
	fprintf(o->f, "%" PRIu64, v);
	out_field_end(o);
}

/* Text in hex; JSON an integer. */
void out_x64(struct out *o, const char *key, uint64_t v)
{
	if (!out_field_begin(o, key, false))
		return;
	fprintf(o->f, o->json ? "%" PRIu64 : "0x%" PRIx64, v);
	out_field_end(o);
}

/* A token known to be printable (names, states): unquoted in text. */
void out_str(struct out *o, const char *key, const char *s)
{
	if (!out_field_begin(o, key, false))
		return;
	if (o->json)
		json_string(o->f, s, strlen(s));
	else
		fputs(s, o->f);
	out_field_end(o);
}

/* A name: text `(s)` without the key, JSON "key": "s". */
void out_tag(struct out *o, const char *key, const char *s)
{
	if (!out_field_begin(o, key, true))
		return;
	if (o->json)
		json_string(o->f, s, strlen(s));
	else
		fprintf(o->f, "(%s)", s);
	out_field_end(o);
}

void out_bool(struct out *o, const char *key, bool v)
{
	if (!out_field_begin(o, key, false))
		return;
	fputs(o->json ? (v ? "true" : "false") : (v ? "yes" : "no"), o->f);
	out_field_end(o);
}

/* Bytes from the image or a message: quoted and escaped in both forms. */
void out_qstr(struct out *o, const char *key, const char *s, size_t n)
{
	if (!out_field_begin(o, key, false))
		return;
	if (o->json)
		json_string(o->f, s, n);
	else
		text_string(o->f, s, n);
	out_field_end(o);
}

void out_hex(struct out *o, const char *key, const void *p, size_t n)
{
	const unsigned char *b = p;

	if (!out_field_begin(o, key, false))
		return;
	if (o->json)
		fputc('"', o->f);
	for (size_t i = 0; i < n; i++)
		fprintf(o->f, "%02x", b[i]);
	if (o->json)
		fputc('"', o->f);
	out_field_end(o);
}
